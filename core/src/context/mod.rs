//! Context requests: a list of named items — a table row, a feature-view read, a kNN search,
//! the last events of a stream key — whose keys are constants, parameters, or values taken
//! from an earlier item's result, answered in one round trip.
//!
//! Three stages, each pure:
//! - **parse** (`crate::sql::context`): text → [`ContextSpec`] (names as written);
//! - **plan** ([`plan::plan`]): a spec resolved against the catalog → [`ContextDef`]: every
//!   object an id, every column a position, every key operand typed and checked against the
//!   key it feeds, references ordered into *phases* (a cycle is an error naming it), kNN
//!   filters checked. A named context is planned once, at `CREATE CONTEXT` (and again when the
//!   catalog file is loaded, against the same objects: they cannot be dropped while it exists);
//! - **bind** ([`bind`]): at each call, parameters checked and the keys of each item computed
//!   from the parameters and the results of the items it refers to.
//!
//! **Single and list items.** `row` and `features` items keyed by a constant, a parameter or
//! a value of a *single* item are single: one row. `knn` and `recent` items give a list of
//! rows, and an item whose key is a column of a list item is a *list item*: its key is every
//! distinct non-NULL value of that column, in order of first appearance, at most
//! [`MAX_CONTEXT_FANOUT_KEYS`] (more is an error naming the item), and its result has one
//! group per key. A reference that finds nothing (a missing row, a NULL column) gives no key,
//! and the item an empty result: missing keys are never errors.

use tarn_types::{ColumnType, Value};

use crate::expr::Expr;
use crate::schema::ColumnDef;

pub mod bind;
pub mod plan;

pub use bind::{bind_params, item_keys, ItemResult, ResultGroup};
pub use plan::plan;

/// Most items in one context. Each item is at least one read on some shard and one section
/// of the reply; the bound keeps a request's work and its plan small. Raising it costs reply
/// size and planning time only.
pub const MAX_CONTEXT_ITEMS: usize = 64;

/// Most parameters of a named context (each a typed value of every call).
pub const MAX_CONTEXT_PARAMS: usize = 32;

/// Most keys a list item fans out to (the distinct values of the column it refers to). Each
/// key is a read on its owner shard and a group in the reply; exceeding it is an error naming
/// the item, never a silent truncation. Raising it costs reply bytes and shard work per call.
pub const MAX_CONTEXT_FANOUT_KEYS: usize = 256;

/// Most phases of a plan: a phase is one round of messages to the shards (items whose keys
/// are known), so this bounds the latency of a request at this many mesh round trips.
/// References deeper than this are refused at planning.
pub const MAX_CONTEXT_PHASES: usize = 8;

/// Most result rows of one call over all its items. Bounds the reply and the shards' work;
/// a call that would exceed it is refused (LIMIT_EXCEEDED) before it is answered.
pub const MAX_CONTEXT_ROWS: usize = 8192;

/// Most events a `recent` item asks for (its `n`): the most a stream keeps per key.
pub const MAX_CONTEXT_RECENT_N: u64 = crate::MAX_RECENT_EVENTS_PER_KEY as u64;

/// A context as written: parameters and items, names not yet resolved.
#[derive(Clone, Debug, PartialEq)]
pub struct ContextSpec {
    /// The context's name (`CREATE CONTEXT name`); empty for an ad hoc request.
    pub name: String,
    /// Declared parameters, in order.
    pub params: Vec<(String, ColumnType)>,
    /// The items, in the order written (the reply's order).
    pub items: Vec<ItemSpec>,
}

/// One item as written: `kind(object, key, options…) AS name`.
#[derive(Clone, Debug, PartialEq)]
pub struct ItemSpec {
    /// The item's name (the `AS` alias), unique in its context.
    pub name: String,
    /// What it reads.
    pub kind: KindSpec,
    /// `columns => (a, b)`: the columns to return; `None` for all.
    pub columns: Option<Vec<String>>,
}

/// What an item reads, as written.
#[derive(Clone, Debug, PartialEq)]
pub enum KindSpec {
    /// `row(table, key)`.
    Row {
        /// The table.
        table: String,
        /// Its primary key.
        key: OperandSpec,
    },
    /// `features(view, key [, as_of => t])`.
    Features {
        /// The feature view.
        view: String,
        /// Its key.
        key: OperandSpec,
        /// A past moment (TIMESTAMP) to read at; `None`: now.
        as_of: Option<OperandSpec>,
    },
    /// `knn(index, like => key | vector => v, k => n [, ef => n] [, filter => '…'])`.
    Knn {
        /// The vector index.
        index: String,
        /// What to search near.
        query: KnnQuerySpec,
        /// Rows wanted.
        k: u64,
        /// Candidate list of the graph search; `None`: the index's `ef_search`.
        ef: Option<u64>,
        /// A SQL condition on the index's table (`filter => 'flagged = false'`).
        filter: Option<String>,
    },
    /// `recent(stream, key, n)`: the key's last `n` events, newest first.
    Recent {
        /// The stream (created `WITH (recent = N)`).
        stream: String,
        /// A value of the stream's partition column.
        key: OperandSpec,
        /// Events wanted.
        n: u64,
    },
}

/// What a kNN item searches near, as written.
#[derive(Clone, Debug, PartialEq)]
pub enum KnnQuerySpec {
    /// `like => key`: the indexed vector of the row with this primary key.
    Like(OperandSpec),
    /// `vector => v`: a VECTOR literal (`'[…]'`), parameter or column.
    Vector(OperandSpec),
}

/// A key (or other value) of an item, as written.
#[derive(Clone, Debug, PartialEq)]
pub enum OperandSpec {
    /// A literal (`'c-1'`, `42`, `TRUE`, `'[0.1, 0.2]'`).
    Literal(Value),
    /// A bare name: a declared parameter.
    Param(String),
    /// `item.column`: a column of another item's result.
    Ref {
        /// The item referred to.
        item: String,
        /// Its column.
        column: String,
    },
}

/// A planned context: what the catalog stores and every call executes.
#[derive(Clone, Debug, PartialEq)]
pub struct ContextDef {
    /// Catalog id (0 for an ad hoc request).
    pub id: u32,
    /// Name (empty for an ad hoc request).
    pub name: String,
    /// Parameters in declaration order.
    pub params: Vec<ColumnDef>,
    /// Items in the order written.
    pub items: Vec<Item>,
    /// Number of phases (1 + the largest `done` phase of any item).
    pub phases: usize,
    /// Catalog ids of every object the items read (tables, views, indexes, streams), sorted,
    /// once each: these cannot be dropped while the context exists.
    pub uses: Vec<u32>,
    /// The `CREATE CONTEXT` text it was planned from (stored in the catalog file).
    pub sql: String,
}

// Contexts live in the catalog, which is `Eq`. Every value a definition holds was checked
// finite (no NaN), so equality is reflexive.
impl Eq for ContextDef {}

impl ContextDef {
    /// True when some shard may be visited more than once or runs a search in steps: the
    /// calls then hold the shards they read (see the server's context path) so that every
    /// item served by one shard sees one state.
    pub fn needs_hold(&self) -> bool {
        self.phases > 1
            || self
                .items
                .iter()
                .any(|i| matches!(i.source, Source::Knn(_)))
    }
}

/// One planned item.
#[derive(Clone, Debug, PartialEq)]
pub struct Item {
    /// Its name.
    pub name: String,
    /// What it reads, resolved.
    pub source: Source,
    /// Where its key comes from (for kNN: the like-key or the vector).
    pub key: Operand,
    /// The reply's columns of this item, in order.
    pub columns: Vec<ColumnDef>,
    /// For each reply column, its position in the source's full row (table row, view result
    /// row, stream event); for kNN the first reply column is the distance and has none.
    pub positions: Vec<usize>,
    /// True for a list item (see the module docs): the key may be several values.
    pub list: bool,
    /// The phase in which its keys are known (0: constants and parameters).
    pub ready: usize,
    /// The phase in which its result is complete (`ready`, or `ready + 1` for a kNN search
    /// near a row: the row's vector is read first).
    pub done: usize,
}

/// What a planned item reads.
#[derive(Clone, Debug, PartialEq)]
pub enum Source {
    /// A table row by primary key.
    Row {
        /// The table's id.
        table_id: u32,
    },
    /// A feature-view read.
    Features {
        /// The view's id.
        view_id: u32,
        /// A past moment to read at (a TIMESTAMP operand); `None`: now.
        as_of: Option<Operand>,
    },
    /// A kNN search.
    Knn(KnnSource),
    /// The last `n` events of a stream key.
    Recent {
        /// The stream's id.
        stream_id: u32,
        /// Events wanted.
        n: usize,
    },
}

/// A planned kNN search.
#[derive(Clone, Debug, PartialEq)]
pub struct KnnSource {
    /// The index's id.
    pub index_id: u32,
    /// Its table's id.
    pub table_id: u32,
    /// True: the key is a row's primary key whose indexed vector is the query; false: the key
    /// is the query vector itself.
    pub like: bool,
    /// Rows wanted.
    pub k: usize,
    /// Candidate list (`None`: the index's `ef_search`).
    pub ef: Option<usize>,
    /// The filter, checked against the table.
    pub filter: Option<Expr<usize>>,
}

/// Where a planned item's key comes from.
#[derive(Clone, Debug, PartialEq)]
pub enum Operand {
    /// A constant, already of the key's type.
    Const(Value),
    /// Parameter number `n`.
    Param(usize),
    /// Column `column` (a reply-column position) of item `item`.
    Ref {
        /// The item's index.
        item: usize,
        /// The reply column's index in that item.
        column: usize,
    },
}

impl Source {
    /// The kind as the syntax names it.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Source::Row { .. } => "row",
            Source::Features { .. } => "features",
            Source::Knn(_) => "knn",
            Source::Recent { .. } => "recent",
        }
    }
}
