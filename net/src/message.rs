//! Protocol messages. Layouts are in `docs/PROTOCOL.md`; the codec is in `codec.rs`.

use serde::{Deserialize, Serialize};
pub use tarn_types::UpsertMode;
use tarn_types::{ColumnType, Value};

use crate::error::ErrorCode;
use crate::frame::Opcode;

/// A client -> server message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Request {
    Hello(Hello),
    /// Echoed back in a `Pong`; at most `MAX_PING_BYTES`.
    Ping(Vec<u8>),
    /// One or more SQL statements separated by `;`; at most `MAX_SQL_BYTES` in all.
    Sql(String),
    Upsert(UpsertRequest),
    Get(KeysRequest),
    Delete(KeysRequest),
    Stats,
    Ingest(IngestRequest),
    Features(FeaturesRequest),
    History(HistoryRequest),
    Knn(KnnRequest),
    Context(ContextRequest),
    Recent(RecentRequest),
}

impl Request {
    pub fn opcode(&self) -> Opcode {
        match self {
            Request::Hello(_) => Opcode::Hello,
            Request::Ping(_) => Opcode::Ping,
            Request::Sql(_) => Opcode::Sql,
            Request::Upsert(_) => Opcode::Upsert,
            Request::Get(_) => Opcode::Get,
            Request::Delete(_) => Opcode::Delete,
            Request::Stats => Opcode::Stats,
            Request::Ingest(_) => Opcode::Ingest,
            Request::Features(_) => Opcode::Features,
            Request::History(_) => Opcode::History,
            Request::Knn(_) => Opcode::Knn,
            Request::Context(_) => Opcode::Context,
            Request::Recent(_) => Opcode::Recent,
        }
    }
}

/// First request on every connection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    pub min_version: u16,
    pub max_version: u16,
    /// Free-form, for logs and STATS (e.g. `tarn-client-rust/0.1.0`).
    pub client_name: String,
    /// Empty = no token.
    pub auth_token: String,
}

/// Insert-or-update a batch of rows. Each row is encoded with its own value count, so a row of
/// the wrong arity is reported by the server's validator with its index (not as MALFORMED).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UpsertRequest {
    pub table: String,
    pub mode: UpsertMode,
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Value>>,
}

/// A producer's tag on a batch: the server applies a batch with the same (id, seq) at most
/// once (see docs/PROTOCOL.md for the window of sequence numbers it remembers).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Producer {
    pub id: u64,
    pub seq: u64,
}

/// Append a batch of events to a stream.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IngestRequest {
    pub stream: String,
    pub producer: Option<Producer>,
    pub body: IngestBody,
}

/// The events of an INGEST: JSON text (simd-json parses it on the server) or typed rows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum IngestBody {
    /// `layout`: 0 = detect (`[` first means an array), 1 = JSON lines, 2 = one JSON array.
    Json { layout: u8, data: Vec<u8> },
    /// Typed rows, values in `columns` order (columns not listed are NULL).
    Rows {
        columns: Vec<String>,
        rows: Vec<Vec<Value>>,
    },
}

/// Read a feature view for a batch of keys. `as_of_us`: None = now (the freshest consistent
/// moment); a past time is recomputed like a HISTORY request (a time not in the past is
/// INVALID_ARGUMENT).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FeaturesRequest {
    pub view: String,
    pub keys: Vec<Value>,
    pub as_of_us: Option<i64>,
}

/// Point-in-time history: the view's features for each `(key, as_of_us)` pair, recomputed from
/// the retained log with the same code as the online path (equal to what an online read as of
/// that time returned, bit for bit).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HistoryRequest {
    pub view: String,
    pub pairs: Vec<(Value, i64)>,
}

/// One row per requested pair, in request order (same layout as a FEATURES reply row).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HistoryReply {
    pub columns: Vec<Column>,
    pub rows: Vec<FeatureRow>,
}

/// The `k` rows of an index's table nearest to a query vector, among the rows matching
/// `filter`. Only the layout is checked by the decoder; `k`, `ef` and the names are checked by
/// the server (docs/PROTOCOL.md, KNN), so those errors carry the offending value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KnnRequest {
    /// The vector index (`CREATE INDEX … USING hnsw`) to search; it names its table.
    pub index: String,
    pub query: KnnQuery,
    /// Rows wanted, `1..=MAX_KNN_K`.
    pub k: u32,
    /// Candidate-list size of the graph search, `1..=MAX_KNN_EF`; `None` = the index's
    /// `ef_search`. An `ef` below `k` searches with `k`.
    pub ef: Option<u32>,
    /// A SQL condition on the table's columns (the text after `WHERE`); empty = every row.
    /// At most `MAX_FILTER_BYTES`.
    pub filter: String,
    /// Columns to return, in this order; empty = every column, in table order.
    pub columns: Vec<String>,
}

/// What a KNN request searches near.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum KnnQuery {
    /// The query vector itself: exactly the index's dimension, finite components.
    Vector(Vec<f32>),
    /// The primary key of a row of the index's table: its indexed vector is the query (the row
    /// itself is among the results when it matches the filter).
    Like(Value),
}

/// The nearest rows, nearest first (equal distances in a deterministic order, not the key
/// order).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KnnReply {
    /// The returned columns (the request's `columns`, or every column of the table).
    pub columns: Vec<Column>,
    /// At most `k` rows; fewer when fewer rows have a vector and match the filter. Every row
    /// has exactly `columns.len()` values.
    pub rows: Vec<KnnRow>,
    /// Distances computed by the search on all shards: a measure of its work that does not
    /// depend on the machine (graph searches compute a few hundred, exact scans one per row).
    pub distances: u64,
}

/// One result row: its distance to the query under the index's metric (l2: Euclidean
/// distance; cosine: 1 − cos; ip: −a·b) and its values, one per reply column.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KnnRow {
    pub distance: f32,
    pub values: Vec<Value>,
}

/// A context call: a named context with its parameters, or an ad hoc item list.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ContextRequest {
    pub call: ContextCall,
    /// Parameter values by name (a named context's declared parameters, each once).
    pub params: Vec<(String, Value)>,
}

/// What a CONTEXT request calls.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ContextCall {
    /// A context created with `CREATE CONTEXT` (planned once, at creation).
    Named(String),
    /// Items in the syntax of `CREATE CONTEXT … AS` (docs/SQL.md), planned for this call; at
    /// most `MAX_SQL_BYTES`. Ad hoc items take no parameters.
    AdHoc(String),
}

/// A context's answer: per shard the as-of time its items were read at, and per item (in
/// the context's order) its columns and one group per key.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ContextReply {
    /// Every shard that answered part of the call, ascending, with its as-of time.
    pub shards: Vec<ShardAsOf>,
    pub items: Vec<ContextItemReply>,
}

/// The as-of time a shard read a call's items at: every event appended there at or before it
/// is included, none after; every item it served saw that one state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardAsOf {
    pub shard: u32,
    pub as_of_us: i64,
}

/// One item of a context reply.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ContextItemReply {
    pub name: String,
    pub columns: Vec<Column>,
    /// One group per key the item read (none when a reference it depends on found nothing).
    pub groups: Vec<ContextGroup>,
}

/// The rows of one key of an item: a `row` or `features` item has exactly one (a missing
/// table row is all NULL), `knn` up to k (nearest first, the distance first), `recent` up to
/// n (newest first). Every row has one value per column of the item.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ContextGroup {
    pub key: Value,
    pub rows: Vec<Vec<Value>>,
}

/// GET or DELETE by primary key.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KeysRequest {
    pub table: String,
    pub keys: Vec<Value>,
}

/// A server -> client message. Every variant but `Error` answers the request of the same
/// opcode (`Pong` answers PING).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Response {
    Hello(HelloReply),
    Pong(Vec<u8>),
    Sql(SqlReply),
    Upsert(UpsertReply),
    Get(GetReply),
    Delete(DeleteReply),
    Stats(StatsReply),
    Ingest(IngestReply),
    Features(FeaturesReply),
    History(HistoryReply),
    Knn(KnnReply),
    Context(ContextReply),
    Error(ErrorReply),
    Recent(RecentReply),
}

impl Response {
    pub fn opcode(&self) -> Opcode {
        match self {
            Response::Hello(_) => Opcode::Hello,
            Response::Pong(_) => Opcode::Ping,
            Response::Sql(_) => Opcode::Sql,
            Response::Upsert(_) => Opcode::Upsert,
            Response::Get(_) => Opcode::Get,
            Response::Delete(_) => Opcode::Delete,
            Response::Stats(_) => Opcode::Stats,
            Response::Ingest(_) => Opcode::Ingest,
            Response::Features(_) => Opcode::Features,
            Response::History(_) => Opcode::History,
            Response::Knn(_) => Opcode::Knn,
            Response::Context(_) => Opcode::Context,
            Response::Error(_) => Opcode::Error,
            Response::Recent(_) => Opcode::Recent,
        }
    }

    /// Shorthand for an ERROR reply without row or column.
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Response {
        Response::Error(ErrorReply::new(code, message))
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HelloReply {
    /// The negotiated version: the highest in the client's range the server speaks.
    pub version: u16,
    pub server_version: String,
    pub shard_count: u32,
    pub max_frame_payload_bytes: u32,
    pub max_batch_rows: u32,
    pub max_in_flight: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Column {
    pub name: String,
    pub ty: ColumnType,
}

/// Result of a SQL request: a message (one line per statement, e.g. "CREATE TABLE cards") and
/// the result set of the last statement that has one (SHOW, DESCRIBE, SELECT, CREATE
/// MATERIALIZED VIEW; docs/PROTOCOL.md lists their columns). Every row has exactly
/// `columns.len()` values.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SqlReply {
    pub message: String,
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<Value>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpsertReply {
    pub rows_applied: u64,
}

/// One entry per requested key, in request order; `None` = not found. Every `Some` row has
/// exactly `columns.len()` values (the table's columns, in definition order).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GetReply {
    pub columns: Vec<Column>,
    pub rows: Vec<Option<Vec<Value>>>,
}

/// `events`: events in the batch (all appended, unless `duplicate`). `duplicate`: the
/// producer's (id, seq) was already applied; nothing was appended again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngestReply {
    pub events: u64,
    pub duplicate: bool,
}

/// Feature values. Each row states its own as-of time (keys on different shards are read at
/// each shard's latest consistent point); `as_of_us` is the earliest of them (the requested
/// time for a past read). `columns`: the view's key column then its aggregates. One row per
/// requested key, in request order; an unknown key gets the aggregates' empty values (count 0,
/// NULL otherwise).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FeaturesReply {
    pub as_of_us: i64,
    pub columns: Vec<Column>,
    pub rows: Vec<FeatureRow>,
}

/// One key's features: `as_of_us`: the as-of time of these values (every event appended at or
/// before it included, none after); `values` has one entry per reply column (the key first);
/// `newest_event_time_us`: the event time of the newest event applied to this key (None when
/// no event is held).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FeatureRow {
    pub as_of_us: i64,
    pub newest_event_time_us: Option<i64>,
    pub values: Vec<Value>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteReply {
    pub rows_deleted: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsReply {
    pub shards: Vec<ShardStats>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardStats {
    pub shard: u32,
    /// CPU the shard is pinned to; -1 = unpinned.
    pub cpu: i32,
    pub rows: u64,
    pub log_bytes: u64,
    pub durable_lsn: u64,
    pub connections: u32,
    pub ops: Vec<OpStats>,
    /// This shard's part of every vector index, in index name order.
    pub indexes: Vec<IndexStats>,
}

/// One vector index on one shard.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexStats {
    /// The index's name.
    pub index: String,
    /// Rows whose vectors are in the graph.
    pub rows_indexed: u64,
    /// Rows still to insert (a build after CREATE INDEX or a start-up); searched exactly.
    pub rows_pending: u64,
    /// Graph nodes of updated or deleted rows, until the next rebuild.
    pub tombstones: u64,
    /// Heap bytes of the graph and its row map.
    pub memory_bytes: u64,
}

/// Latency summary of one operation kind on one shard, in microseconds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpStats {
    /// Opcode name, e.g. "GET".
    pub op: String,
    pub count: u64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
}

/// An ERROR reply. On the wire `row` is a u32 with `u32::MAX` = none, and `column` a string
/// with empty = none.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorReply {
    pub code: ErrorCode,
    pub message: String,
    /// 0-based index of the offending item of the request: the row (UPSERT), key (GET, DELETE,
    /// FEATURES), event (INGEST), pair (HISTORY) or statement (SQL of several statements).
    pub row: Option<u32>,
    pub column: Option<String>,
}

impl ErrorReply {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ErrorReply {
        ErrorReply {
            code,
            message: message.into(),
            row: None,
            column: None,
        }
    }

    pub fn with_row(mut self, row: u32) -> ErrorReply {
        self.row = Some(row);
        self
    }

    pub fn with_column(mut self, column: impl Into<String>) -> ErrorReply {
        self.column = Some(column.into());
        self
    }
}

impl From<crate::error::DecodeError> for ErrorReply {
    fn from(e: crate::error::DecodeError) -> ErrorReply {
        ErrorReply::new(e.code, e.message)
    }
}

impl std::fmt::Display for ErrorReply {
    /// `UNKNOWN_TABLE: table "x" does not exist (row 3, column "y")`
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)?;
        match (&self.row, &self.column) {
            (Some(r), Some(c)) => write!(f, " (row {r}, column {c:?})"),
            (Some(r), None) => write!(f, " (row {r})"),
            (None, Some(c)) => write!(f, " (column {c:?})"),
            (None, None) => Ok(()),
        }
    }
}

/// The newest events of partition keys of a stream created with `recent = N`. Only the layout
/// is checked by the decoder; the stream, `n` and the column names are judged by the server
/// (docs/PROTOCOL.md, RECENT).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecentRequest {
    pub stream: String,
    /// Partition-column values, at most `MAX_RECENT_KEYS`.
    pub keys: Vec<Value>,
    /// Events wanted per key, `1..=MAX_RECENT_N`; a key keeps at most the stream's `N`, so a
    /// larger `n` returns what is kept.
    pub n: u32,
    /// Columns to return, in this order; empty = every column, in stream order.
    pub columns: Vec<String>,
}

/// Per requested key, in request order: its newest events, newest first (by event time, ties
/// by log order), each with one value per reply column. A key with no events has an empty
/// list.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecentReply {
    pub columns: Vec<Column>,
    pub keys: Vec<Vec<Vec<Value>>>,
}
