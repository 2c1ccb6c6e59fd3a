//! Feature-view definitions ("materialized views" computed continuously over a stream): what a
//! view is, independent of the SQL that declares it (the grammar is in [`crate::sql::view`],
//! the condition language in [`crate::expr`], the live windows in [`crate::state`]).
//!
//! A view keeps, per value of its GROUP BY column (its *key*), the aggregates of the events of
//! one stream that pass its `WHERE`, over a sliding window of time buckets or over the stream's
//! whole lifetime.
//!
//! One type, two stages: a [`ViewDef<String>`] ([`ViewSpec`]) is a view as parsed, naming
//! stream columns; [`ViewSpec::resolve`] checks it against its stream and gives the
//! [`ViewDef`] (`ViewDef<usize>`) that the catalog stores, whose column references are stream
//! column indexes. The catalog assigns `id` and `created_version`.
//!
//! **Aggregates** and their result types (an input column of another type is `UNSUPPORTED`,
//! naming the function, the column and its type):
//!
//! | call | input | result |
//! |---|---|---|
//! | `count(*)` | — | BIGINT: events passing the filters |
//! | `count(col)`, `count(DISTINCT col)` | any | BIGINT (non-NULL values / distinct non-NULL values) |
//! | `sum(col)` | BIGINT, DOUBLE | same as input |
//! | `min(col)`, `max(col)` | BIGINT, DOUBLE, TIMESTAMP | same as input |
//! | `avg`, `variance` (= `var_samp`), `stddev` (= `stddev_samp`), `var_pop`, `stddev_pop` | BIGINT, DOUBLE | DOUBLE |
//! | `first(col)`, `last(col)` | any | same as input (value of the earliest / latest event time) |
//!
//! The exact numeric semantics are those of the aggregate kernels (`tarn-features`).

use serde::{Deserialize, Serialize};
use tarn_types::ColumnType;

use crate::expr::check::{check_condition, Scope};
use crate::expr::print::to_sql;
use crate::expr::{Expr, MAX_EXPR_NODES};
use crate::schema::{quote_ident, ColumnDef, StreamDef};
use crate::CoreError;

/// Most buckets a sliding window may hold (`window / bucket`). Every key of a view keeps up to
/// this many partial states per aggregate and a read combines them, so the bound caps per-key
/// memory and read cost. Raising it costs memory per key and read latency.
pub const MAX_WINDOW_BUCKETS: i64 = 4096;

/// Most aggregates one view may have. Each costs a partial state per bucket per key and work
/// per event; the bound keeps a key's state and an output row small.
pub const MAX_VIEW_AGGREGATES: usize = 64;

/// The time span a view aggregates over.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum WindowSpec {
    /// The last `window_us / bucket_us` buckets of `bucket_us` µs each (`window_us` is a
    /// positive multiple of `bucket_us`, at most [`MAX_WINDOW_BUCKETS`] buckets).
    Sliding {
        /// Window length, µs.
        window_us: i64,
        /// Bucket width, µs.
        bucket_us: i64,
    },
    /// Every event since the view was created; nothing expires.
    Lifetime,
}

/// An aggregate function.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AggFunc {
    /// `count(*)`.
    CountStar,
    /// `count(col)`.
    Count,
    /// `sum(col)`.
    Sum,
    /// `min(col)`.
    Min,
    /// `max(col)`.
    Max,
    /// `avg(col)`.
    Avg,
    /// `variance(col)` = `var_samp(col)`.
    Variance,
    /// `stddev(col)` = `stddev_samp(col)`.
    Stddev,
    /// `var_pop(col)`.
    VarPop,
    /// `stddev_pop(col)`.
    StddevPop,
    /// `count(DISTINCT col)`.
    CountDistinct,
    /// `first(col)`.
    First,
    /// `last(col)`.
    Last,
}

impl AggFunc {
    /// The function's canonical SQL name (`count` for all three counts).
    pub fn sql_name(self) -> &'static str {
        match self {
            AggFunc::CountStar | AggFunc::Count | AggFunc::CountDistinct => "count",
            AggFunc::Sum => "sum",
            AggFunc::Min => "min",
            AggFunc::Max => "max",
            AggFunc::Avg => "avg",
            AggFunc::Variance => "variance",
            AggFunc::Stddev => "stddev",
            AggFunc::VarPop => "var_pop",
            AggFunc::StddevPop => "stddev_pop",
            AggFunc::First => "first",
            AggFunc::Last => "last",
        }
    }

    /// The result type for an input column of type `input` (`None` = no input, `count(*)`
    /// only); `None` if the function does not accept that input.
    pub fn result_type(self, input: Option<ColumnType>) -> Option<ColumnType> {
        use ColumnType::*;
        match (self, input) {
            (_, Some(Vector(_))) => None,
            (AggFunc::CountStar, None) => Some(BigInt),
            (AggFunc::CountStar, Some(_)) | (_, None) => None,
            (AggFunc::Count | AggFunc::CountDistinct, Some(_)) => Some(BigInt),
            (AggFunc::Sum, Some(t @ (BigInt | Double))) => Some(t),
            (AggFunc::Min | AggFunc::Max, Some(t @ (BigInt | Double | Timestamp))) => Some(t),
            (
                AggFunc::Avg
                | AggFunc::Variance
                | AggFunc::Stddev
                | AggFunc::VarPop
                | AggFunc::StddevPop,
                Some(BigInt | Double),
            ) => Some(Double),
            (AggFunc::First | AggFunc::Last, Some(t)) => Some(t),
            _ => None,
        }
    }

    /// The function for a (lower-case) name; counts give [`AggFunc::Count`].
    pub fn from_name(name: &str) -> Option<AggFunc> {
        Some(match name {
            "count" => AggFunc::Count,
            "sum" => AggFunc::Sum,
            "min" => AggFunc::Min,
            "max" => AggFunc::Max,
            "avg" => AggFunc::Avg,
            "variance" | "var_samp" => AggFunc::Variance,
            "stddev" | "stddev_samp" => AggFunc::Stddev,
            "var_pop" => AggFunc::VarPop,
            "stddev_pop" => AggFunc::StddevPop,
            "first" => AggFunc::First,
            "last" => AggFunc::Last,
            _ => return None,
        })
    }

    /// The accepted input types, for messages.
    fn accepts(self) -> &'static str {
        match self {
            AggFunc::Sum
            | AggFunc::Avg
            | AggFunc::Variance
            | AggFunc::Stddev
            | AggFunc::VarPop
            | AggFunc::StddevPop => "BIGINT or DOUBLE",
            AggFunc::Min | AggFunc::Max => "BIGINT, DOUBLE or TIMESTAMP",
            _ => "any type",
        }
    }

    /// `count(DISTINCT col)`, `sum(col)`, … with `col` already quoted.
    pub fn call_sql(self, col: Option<&str>) -> String {
        match (self, col) {
            (AggFunc::CountStar, _) | (_, None) => "count(*)".into(),
            (AggFunc::CountDistinct, Some(c)) => format!("count(DISTINCT {c})"),
            (f, Some(c)) => format!("{}({c})", f.sql_name()),
        }
    }

    /// The output name of an aggregate written without `AS`: `count` for `count(*)`,
    /// `count_distinct_<col>` for `count(DISTINCT col)`, `<function>_<col>` otherwise.
    pub fn default_name(self, input: Option<&str>) -> String {
        match (self, input) {
            (AggFunc::CountStar, _) | (_, None) => "count".to_string(),
            (AggFunc::CountDistinct, Some(c)) => format!("count_distinct_{c}"),
            (f, Some(c)) => format!("{}_{c}", f.sql_name()),
        }
    }
}

/// One aggregate of a view; `C` names stream columns as in [`ViewDef`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ViewAgg<C = usize> {
    /// Output column name (the alias, or the default name).
    pub name: String,
    /// The function.
    pub func: AggFunc,
    /// Input stream column; `None` only for [`AggFunc::CountStar`].
    pub input: Option<C>,
    /// `FILTER (WHERE …)`, over stream columns.
    pub filter: Option<Expr<C>>,
}

/// A feature view. `C` is how it names stream columns: `String` as parsed ([`ViewSpec`]),
/// `usize` (stream column indexes) once resolved against its stream — the form stored in the
/// catalog JSON.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ViewDef<C = usize> {
    /// Catalog-assigned id (shared id space, never reused); 0 until the catalog assigns one.
    pub id: u32,
    /// View name.
    pub name: String,
    /// Id of the stream it reads (0 until resolved).
    pub stream_id: u32,
    /// Name of the stream it reads (the `FROM`).
    pub stream: String,
    /// The GROUP BY column: the view's key.
    pub key_column: C,
    /// Output name of the key column (its alias, or the column's name).
    pub key_name: String,
    /// The window.
    pub window: WindowSpec,
    /// `WHERE`, over stream columns: events it does not match are ignored.
    pub filter: Option<Expr<C>>,
    /// Aggregates in select-list order (1..=[`MAX_VIEW_AGGREGATES`]).
    pub aggregates: Vec<ViewAgg<C>>,
    /// The catalog version that created the view (set by the catalog; 0 before). Events
    /// routed under an older catalog version never reached the view: they are the ones
    /// back-filled from the stream's retained home copies.
    #[serde(default)]
    pub created_version: u64,
}

// See `Expr`'s `Eq`: DOUBLE literals are always finite.
impl<C: Eq> Eq for ViewAgg<C> {}
impl<C: Eq> Eq for ViewDef<C> {}

/// A parsed `CREATE MATERIALIZED VIEW`, not yet checked against its stream: column names
/// unresolved, types unchecked, `id`, `stream_id` and `created_version` 0. Everything
/// checkable without the stream is checked by the parser: options and window, clause shapes,
/// aggregate names and arity, output-name uniqueness and length, literal syntax, expression
/// size.
pub type ViewSpec = ViewDef<String>;

fn unsupported(msg: impl Into<String>) -> CoreError {
    CoreError::Unsupported(msg.into())
}

impl ViewDef<String> {
    /// Checks the spec against `stream` (the stream named `self.stream`) and resolves it:
    /// column names to indexes, the key's type (`UNSUPPORTED` for DOUBLE), aggregate input
    /// types, condition types (integer literals compared with a TIMESTAMP become TIMESTAMP
    /// literals). `id` and `created_version` stay 0; `stream_id` is `stream.id`.
    ///
    /// Errors: `UNKNOWN_STREAM` if `stream` is not the named stream, `UNKNOWN_COLUMN`,
    /// `UNSUPPORTED`, `TYPE_MISMATCH` (see [`crate::expr`]).
    pub fn resolve(&self, stream: &StreamDef) -> Result<ViewDef, CoreError> {
        if stream.name != self.stream {
            return Err(CoreError::UnknownStream(self.stream.clone()));
        }
        let scope = Scope::new(&stream.name, &stream.columns);
        let key_column = scope.index(&self.key_column)?;
        let key_ty = stream.columns[key_column].ty;
        if !key_ty.can_be_key() {
            return Err(unsupported(format!(
                "GROUP BY column \"{}\" is {key_ty}; a view key must be BOOLEAN, BIGINT, TEXT, BYTES or TIMESTAMP (NaN and -0.0 make DOUBLE equality ambiguous)",
                self.key_column
            )));
        }
        let aggregates = self
            .aggregates
            .iter()
            .map(|a| a.resolve(&scope))
            .collect::<Result<Vec<_>, _>>()?;
        let filter = match &self.filter {
            Some(f) => Some(check_condition(f, &scope, "WHERE")?),
            None => None,
        };
        Ok(ViewDef {
            id: self.id,
            name: self.name.clone(),
            stream_id: stream.id,
            stream: stream.name.clone(),
            key_column,
            key_name: self.key_name.clone(),
            window: self.window,
            filter,
            aggregates,
            created_version: self.created_version,
        })
    }

    /// The stream columns the conditions mention, in order of first mention (aggregate
    /// filters in select-list order, then `WHERE`).
    pub fn expr_columns(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let filters = self.aggregates.iter().filter_map(|a| a.filter.as_ref());
        for e in filters.chain(self.filter.as_ref()) {
            for c in e.columns() {
                if !out.contains(c) {
                    out.push(c.clone());
                }
            }
        }
        out
    }

    /// The `CREATE MATERIALIZED VIEW` text of this spec: every aggregate with an explicit
    /// `AS`, the key first, identifiers quoted where needed. [`crate::sql::parse`] of it gives
    /// back an equal spec.
    pub fn create_sql(&self) -> String {
        let name = |n: &String| quote_ident(n);
        let window = match self.window {
            WindowSpec::Lifetime => "window = 'lifetime'".to_string(),
            WindowSpec::Sliding {
                window_us,
                bucket_us,
            } => format!(
                "window = '{}', bucket = '{}'",
                crate::duration::format_duration_us(window_us),
                crate::duration::format_duration_us(bucket_us)
            ),
        };
        let mut items = vec![if self.key_name == self.key_column {
            quote_ident(&self.key_column)
        } else {
            format!(
                "{} AS {}",
                quote_ident(&self.key_column),
                quote_ident(&self.key_name)
            )
        }];
        for a in &self.aggregates {
            let input = a.input.as_deref().map(quote_ident);
            let mut s = a.func.call_sql(input.as_deref());
            if let Some(f) = &a.filter {
                s.push_str(&format!(" FILTER (WHERE {})", to_sql(f, &name)));
            }
            s.push_str(" AS ");
            s.push_str(&quote_ident(&a.name));
            items.push(s);
        }
        let mut sql = format!(
            "CREATE MATERIALIZED VIEW {} WITH ({window}) AS SELECT {} FROM {}",
            quote_ident(&self.name),
            items.join(", "),
            quote_ident(&self.stream)
        );
        if let Some(f) = &self.filter {
            sql.push_str(" WHERE ");
            sql.push_str(&to_sql(f, &name));
        }
        sql.push_str(" GROUP BY ");
        sql.push_str(&quote_ident(&self.key_column));
        sql
    }
}

impl ViewAgg<String> {
    /// Resolves one aggregate: its input column and type, its FILTER.
    fn resolve(&self, scope: &Scope<'_>) -> Result<ViewAgg, CoreError> {
        let input = self.input.as_deref().map(|c| scope.index(c)).transpose()?;
        let in_ty = input.map(|i| scope.columns[i].ty);
        if let (Some(c), Some(t @ ColumnType::Vector(_))) = (self.input.as_deref(), in_ty) {
            return Err(unsupported(format!(
                "{}: column \"{c}\" is {t}; vectors cannot be aggregated",
                self.func.call_sql(Some(&quote_ident(c)))
            )));
        }
        if self.func.result_type(in_ty).is_none() {
            return Err(match (self.input.as_deref(), in_ty) {
                (Some(c), Some(t)) => unsupported(format!(
                    "{}: column \"{c}\" is {t}; {}() takes {}",
                    self.func.call_sql(Some(&quote_ident(c))),
                    self.func.sql_name(),
                    self.func.accepts()
                )),
                _ => unsupported(format!(
                    "aggregate \"{}\": {}() needs one input column",
                    self.name,
                    self.func.sql_name()
                )),
            });
        }
        let filter = match &self.filter {
            Some(f) => Some(check_condition(
                f,
                scope,
                &format!("FILTER of \"{}\"", self.name),
            )?),
            None => None,
        };
        Ok(ViewAgg {
            name: self.name.clone(),
            func: self.func,
            input,
            filter,
        })
    }
}

impl ViewDef {
    /// The view's output columns: the key (named `key_name`, the stream column's type), then
    /// one per aggregate with its result type (see the module documentation).
    ///
    /// A def that [`ViewDef::check`] accepts (every def [`ViewSpec::resolve`] returns) has a
    /// result type for every aggregate; for one it would reject, an impossible combination
    /// falls back to BIGINT rather than panicking.
    pub fn result_columns(&self, stream: &StreamDef) -> Vec<ColumnDef> {
        let ty = |i: usize| stream.columns.get(i).map(|c| c.ty);
        let mut out = Vec::with_capacity(1 + self.aggregates.len());
        out.push(ColumnDef {
            name: self.key_name.clone(),
            ty: ty(self.key_column).unwrap_or(ColumnType::BigInt),
        });
        for a in &self.aggregates {
            out.push(ColumnDef {
                name: a.name.clone(),
                ty: a
                    .func
                    .result_type(a.input.and_then(ty))
                    .unwrap_or(ColumnType::BigInt),
            });
        }
        out
    }

    /// The spec this definition was resolved from, up to literal coercion: column indexes back
    /// to `stream`'s column names; `id`, `stream_id` and `created_version` 0, as parsed.
    pub fn to_spec(&self, stream: &StreamDef) -> ViewSpec {
        let cname = |i: &usize| {
            stream
                .columns
                .get(*i)
                .map_or_else(|| format!("#{i}"), |c| c.name.clone())
        };
        let aggregates = self
            .aggregates
            .iter()
            .map(|a| ViewAgg {
                name: a.name.clone(),
                func: a.func,
                input: a.input.as_ref().map(cname),
                filter: a.filter.as_ref().map(|f| f.map_columns(&mut |i| cname(i))),
            })
            .collect();
        ViewDef {
            id: 0,
            name: self.name.clone(),
            stream_id: 0,
            stream: self.stream.clone(),
            key_column: cname(&self.key_column),
            key_name: self.key_name.clone(),
            window: self.window,
            filter: self
                .filter
                .as_ref()
                .map(|f| f.map_columns(&mut |i| cname(i))),
            aggregates,
            created_version: 0,
        }
    }

    /// The `CREATE MATERIALIZED VIEW` statement that re-creates this view over `stream`;
    /// parsing it and resolving against `stream` gives back this definition (with id 0).
    pub fn create_sql(&self, stream: &StreamDef) -> String {
        self.to_spec(stream).create_sql()
    }

    /// Consistency check of a stored definition against its stream (for loading a catalog):
    /// stream id, column indexes in range, key keyable, aggregate count and input types,
    /// unique non-empty output names, window bounds, condition column indexes and sizes. The
    /// error says what is wrong. Types inside conditions are not re-checked (evaluation is
    /// total anyway).
    pub fn check(&self, stream: &StreamDef) -> Result<(), String> {
        let width = stream.columns.len();
        if self.stream_id != stream.id {
            return Err(format!(
                "stream id {} is not {}'s ({})",
                self.stream_id, stream.name, stream.id
            ));
        }
        if self.key_column >= width || !stream.columns[self.key_column].ty.can_be_key() {
            return Err("key column out of range or not keyable".into());
        }
        if self.aggregates.is_empty() || self.aggregates.len() > MAX_VIEW_AGGREGATES {
            return Err(format!("{} aggregates", self.aggregates.len()));
        }
        check_window(self.window)?;
        let expr_ok =
            |e: &Expr| e.columns().iter().all(|&&i| i < width) && e.node_count() <= MAX_EXPR_NODES;
        let mut names: Vec<&str> = vec![&self.key_name];
        for a in &self.aggregates {
            if a.input.is_some_and(|i| i >= width) {
                return Err(format!(
                    "aggregate \"{}\": input column out of range",
                    a.name
                ));
            }
            let in_ty = a.input.map(|i| stream.columns[i].ty);
            if a.func.result_type(in_ty).is_none() {
                return Err(format!(
                    "aggregate \"{}\": {:?} does not take {:?}",
                    a.name, a.func, in_ty
                ));
            }
            if a.filter.as_ref().is_some_and(|f| !expr_ok(f)) {
                return Err(format!("aggregate \"{}\": invalid FILTER", a.name));
            }
            names.push(&a.name);
        }
        if self.filter.as_ref().is_some_and(|f| !expr_ok(f)) {
            return Err("invalid WHERE".into());
        }
        for (i, n) in names.iter().enumerate() {
            if n.is_empty() || names[..i].contains(n) {
                return Err(format!("output name \"{n}\" empty or repeated"));
            }
        }
        Ok(())
    }
}

/// A stored window's bounds: positive, a whole number of buckets, at most
/// [`MAX_WINDOW_BUCKETS`] of them.
fn check_window(w: WindowSpec) -> Result<(), String> {
    match w {
        WindowSpec::Lifetime => Ok(()),
        WindowSpec::Sliding {
            window_us,
            bucket_us,
        } => {
            if bucket_us <= 0
                || window_us <= 0
                || window_us % bucket_us != 0
                || window_us / bucket_us > MAX_WINDOW_BUCKETS
            {
                return Err(format!(
                    "invalid window {window_us} µs / bucket {bucket_us} µs"
                ));
            }
            Ok(())
        }
    }
}
