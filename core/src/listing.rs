//! Catalog introspection result sets: `SHOW TABLES`, `SHOW STREAMS`, `SHOW VIEWS`, `SHOW
//! INDEXES`, `SHOW CONTEXTS`, `SHOW MODELS` and `DESCRIBE` (a table, a stream, a feature view,
//! an index, a context or a model), as pure functions
//! of the catalog and, for the counters, of totals the caller already gathered (the server
//! sums them over shards).
//!
//! Every function returns a [`Listing`]: the result set's columns, its rows (one value per
//! column, rows in name order) and the statement's message. The schemas are part of the
//! protocol's observable behaviour and pinned by unit tests.

use std::collections::BTreeMap;

use tarn_types::{ColumnType, Value};

use crate::catalog::Catalog;
use crate::context::{ContextDef, Operand, Source};
use crate::duration::format_duration_us;
use crate::index_def::{IndexDef, INDEX_METHOD};
use crate::model_def::ModelDef;
use crate::schema::{ColumnDef, StreamDef, TableDef};
use crate::view::{ViewDef, WindowSpec};

/// A result set and the statement's message.
#[derive(Clone, Debug, PartialEq)]
pub struct Listing {
    /// Names and types of the result columns.
    pub columns: Vec<ColumnDef>,
    /// Rows, each with one value per column.
    pub rows: Vec<Vec<Value>>,
    /// The statement's message (`3 table(s)`, `table cards`, …).
    pub message: String,
}

/// What the shards hold of one stream, summed over the shards.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StreamTotals {
    /// Events appended (on their home shards).
    pub events: u64,
    /// The newest event time appended (µs since the epoch), if any event was.
    pub newest_event_time_us: Option<i64>,
}

/// What the shards hold of one feature view, summed over the shards.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ViewTotals {
    /// Keys with a window.
    pub keys: u64,
    /// Heap bytes of those windows.
    pub window_bytes: u64,
    /// Events applied to a window.
    pub events: u64,
    /// Events dropped as late.
    pub late_events: u64,
}

fn col(name: &str, ty: ColumnType) -> ColumnDef {
    ColumnDef {
        name: name.into(),
        ty,
    }
}

fn text(s: &str) -> Value {
    Value::Text(s.to_string())
}

/// `SHOW TABLES`: `table`, `key` (TEXT), `columns` (BIGINT) per table.
pub fn show_tables(catalog: &Catalog) -> Listing {
    let rows: Vec<Vec<Value>> = catalog
        .tables()
        .map(|t| {
            vec![
                text(&t.name),
                text(t.key_name()),
                Value::Int(t.columns.len() as i64),
            ]
        })
        .collect();
    Listing {
        columns: vec![
            col("table", ColumnType::Text),
            col("key", ColumnType::Text),
            col("columns", ColumnType::BigInt),
        ],
        message: format!("{} table(s)", rows.len()),
        rows,
    }
}

/// `SHOW STREAMS`: `stream`, `event_time`, `partition`, `retention`, `max_future` (TEXT),
/// `events` (BIGINT), `newest_event_time` (TIMESTAMP, NULL when none), `recent` (BIGINT:
/// events kept per partition key, 0 = none) per stream. `totals`
/// by stream id; a stream missing from it has no events.
pub fn show_streams(catalog: &Catalog, totals: &BTreeMap<u32, StreamTotals>) -> Listing {
    let rows: Vec<Vec<Value>> = catalog
        .streams()
        .map(|s| {
            let t = totals.get(&s.id).copied().unwrap_or_default();
            vec![
                text(&s.name),
                text(&s.columns[s.event_time].name),
                text(&s.columns[s.partition].name),
                Value::Text(format_duration_us(s.retention_us)),
                Value::Text(format_duration_us(s.max_future_us)),
                Value::Int(t.events as i64),
                t.newest_event_time_us.map_or(Value::Null, Value::Timestamp),
                Value::Int(i64::from(s.recent)),
            ]
        })
        .collect();
    let t = |n: &str| col(n, ColumnType::Text);
    Listing {
        columns: vec![
            t("stream"),
            t("event_time"),
            t("partition"),
            t("retention"),
            t("max_future"),
            col("events", ColumnType::BigInt),
            col("newest_event_time", ColumnType::Timestamp),
            col("recent", ColumnType::BigInt),
        ],
        message: format!("{} stream(s)", rows.len()),
        rows,
    }
}

/// How `SHOW VIEWS` writes a window: `lifetime`, or `<window> / <bucket>`.
fn window_text(w: WindowSpec) -> String {
    match w {
        WindowSpec::Lifetime => "lifetime".to_string(),
        WindowSpec::Sliding {
            window_us,
            bucket_us,
        } => format!(
            "{} / {}",
            format_duration_us(window_us),
            format_duration_us(bucket_us)
        ),
    }
}

/// `SHOW VIEWS`: `view`, `stream`, `key`, `window` (TEXT), `keys`, `window_bytes`, `events`,
/// `late_events` (BIGINT) per feature view. `totals` by view id; a view missing from it holds
/// nothing.
pub fn show_views(catalog: &Catalog, totals: &BTreeMap<u32, ViewTotals>) -> Listing {
    let rows: Vec<Vec<Value>> = catalog
        .views()
        .map(|v| {
            let t = totals.get(&v.id).copied().unwrap_or_default();
            vec![
                text(&v.name),
                text(&v.stream),
                text(&v.key_name),
                Value::Text(window_text(v.window)),
                Value::Int(t.keys as i64),
                Value::Int(t.window_bytes as i64),
                Value::Int(t.events as i64),
                Value::Int(t.late_events as i64),
            ]
        })
        .collect();
    let t = |n: &str| col(n, ColumnType::Text);
    let i = |n: &str| col(n, ColumnType::BigInt);
    Listing {
        columns: vec![
            t("view"),
            t("stream"),
            t("key"),
            t("window"),
            i("keys"),
            i("window_bytes"),
            i("events"),
            i("late_events"),
        ],
        message: format!("{} view(s)", rows.len()),
        rows,
    }
}

/// Build progress of one index, summed over the shards: `(rows_indexed, rows_pending)` by
/// index id. Only the server knows it.
pub type IndexProgress<'a> = &'a dyn Fn(u32) -> (u64, u64);

/// The columns of `SHOW INDEXES` and `DESCRIBE index`: `name`, `table`, `column`, `method`,
/// `metric` (TEXT), `dim`, `m`, `ef_construction`, `ef_search`, `rows_indexed`,
/// `rows_pending` (BIGINT).
fn index_columns() -> Vec<ColumnDef> {
    let t = |n: &str| col(n, ColumnType::Text);
    let i = |n: &str| col(n, ColumnType::BigInt);
    vec![
        t("name"),
        t("table"),
        t("column"),
        t("method"),
        t("metric"),
        i("dim"),
        i("m"),
        i("ef_construction"),
        i("ef_search"),
        i("rows_indexed"),
        i("rows_pending"),
    ]
}

/// One index's row of [`index_columns`].
fn index_row(catalog: &Catalog, i: &IndexDef, progress: IndexProgress<'_>) -> Vec<Value> {
    let table = catalog
        .table_by_id(i.table_id)
        .expect("an index's table exists");
    let (indexed, pending) = progress(i.id);
    let int = |n: u64| Value::Int(i64::try_from(n).unwrap_or(i64::MAX));
    vec![
        text(&i.name),
        text(&table.name),
        text(&table.columns[usize::from(i.column)].name),
        text(INDEX_METHOD),
        text(i.metric.name()),
        int(u64::from(i.dim)),
        int(i.params.m as u64),
        int(i.params.ef_construction as u64),
        int(i.params.ef_search as u64),
        int(indexed),
        int(pending),
    ]
}

/// `SHOW INDEXES`: one row per vector index ([`index_columns`]), in name order; the build
/// counters come from `progress`.
pub fn show_indexes(catalog: &Catalog, progress: IndexProgress<'_>) -> Listing {
    let rows: Vec<Vec<Value>> = catalog
        .indexes()
        .map(|i| index_row(catalog, i, progress))
        .collect();
    Listing {
        columns: index_columns(),
        message: format!("{} index(es)", rows.len()),
        rows,
    }
}

/// `DESCRIBE index`: the `SHOW INDEXES` row of that one index; the message is the `CREATE
/// INDEX` statement that re-creates it.
pub fn describe_index(catalog: &Catalog, i: &IndexDef, progress: IndexProgress<'_>) -> Listing {
    let table = catalog
        .table_by_id(i.table_id)
        .expect("an index's table exists");
    Listing {
        columns: index_columns(),
        rows: vec![index_row(catalog, i, progress)],
        message: i.create_sql(table),
    }
}

/// `DESCRIBE name`: the columns of the table, stream or feature view called `name`, or the
/// row of the index called `name` (its build counters from `progress`); `None` if there is
/// none (the server answers `UNKNOWN_TABLE`).
pub fn describe(catalog: &Catalog, name: &str, progress: IndexProgress<'_>) -> Option<Listing> {
    if let Some(c) = catalog.context(name) {
        return Some(describe_context(catalog, c));
    }
    if let Some(m) = catalog.model(name) {
        return Some(describe_model(m));
    }
    if let Some(i) = catalog.index(name) {
        return Some(describe_index(catalog, i, progress));
    }
    if let Some(v) = catalog.view(name) {
        let stream = catalog
            .stream_by_id(v.stream_id)
            .expect("a view's stream exists");
        return Some(describe_view(v, stream));
    }
    if let Some(s) = catalog.stream(name) {
        return Some(describe_stream(s));
    }
    catalog.table(name).map(describe_table)
}

/// The columns of a DESCRIBE of a table or a view: `column`, `type` (TEXT), `key` (BOOLEAN).
fn keyed_columns() -> Vec<ColumnDef> {
    vec![
        col("column", ColumnType::Text),
        col("type", ColumnType::Text),
        col("key", ColumnType::Boolean),
    ]
}

/// `DESCRIBE table`: one row per column, the key marked; message `table <name>`.
pub fn describe_table(t: &TableDef) -> Listing {
    Listing {
        columns: keyed_columns(),
        rows: t
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| {
                vec![
                    text(&c.name),
                    text(&c.ty.sql_name()),
                    Value::Bool(i == t.key_column),
                ]
            })
            .collect(),
        message: format!("table {}", t.name),
    }
}

/// `DESCRIBE view`: its output columns (the key first, marked); the message is the `CREATE
/// MATERIALIZED VIEW` statement that re-creates it.
pub fn describe_view(v: &ViewDef, stream: &StreamDef) -> Listing {
    Listing {
        columns: keyed_columns(),
        rows: v
            .result_columns(stream)
            .into_iter()
            .enumerate()
            .map(|(i, c)| {
                vec![
                    Value::Text(c.name),
                    text(&c.ty.sql_name()),
                    Value::Bool(i == 0),
                ]
            })
            .collect(),
        message: v.create_sql(stream),
    }
}

/// `DESCRIBE stream`: `column`, `type`, `role` (TEXT: `event time`, `partition` or empty);
/// message `stream <name>`, followed by `, keeps the last N events per partition key` when
/// the stream was created with `recent = N`.
pub fn describe_stream(s: &StreamDef) -> Listing {
    let role = |i: usize| {
        if i == s.event_time {
            "event time"
        } else if i == s.partition {
            "partition"
        } else {
            ""
        }
    };
    Listing {
        columns: vec![
            col("column", ColumnType::Text),
            col("type", ColumnType::Text),
            col("role", ColumnType::Text),
        ],
        rows: s
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| vec![text(&c.name), text(&c.ty.sql_name()), text(role(i))])
            .collect(),
        message: match s.recent {
            0 => format!("stream {}", s.name),
            n => format!(
                "stream {}, keeps the last {n} events per partition key",
                s.name
            ),
        },
    }
}

/// `SHOW CONTEXTS`: `context`, `parameters` (TEXT: `name TYPE, …`), `items` (BIGINT),
/// `phases` (BIGINT: rounds of messages between shards per call) per named context.
pub fn show_contexts(catalog: &Catalog) -> Listing {
    let rows: Vec<Vec<Value>> = catalog
        .contexts()
        .map(|c| {
            vec![
                text(&c.name),
                text(&params_text(c)),
                Value::Int(c.items.len() as i64),
                Value::Int(c.phases as i64),
            ]
        })
        .collect();
    Listing {
        columns: vec![
            col("context", ColumnType::Text),
            col("parameters", ColumnType::Text),
            col("items", ColumnType::BigInt),
            col("phases", ColumnType::BigInt),
        ],
        message: format!("{} context(s)", rows.len()),
        rows,
    }
}

fn params_text(c: &ContextDef) -> String {
    let p: Vec<String> = c
        .params
        .iter()
        .map(|p| format!("{} {}", p.name, p.ty.sql_name()))
        .collect();
    p.join(", ")
}

/// `DESCRIBE context`: one row per item — `item`, `kind`, `source` (the object it reads),
/// `key` (where its key comes from), `columns`, `list` (BOOLEAN: one group per key of a
/// list), `phase` (BIGINT: the round in which its keys are known); the message is the
/// `CREATE CONTEXT` statement.
pub fn describe_context(catalog: &Catalog, c: &ContextDef) -> Listing {
    let rows = c
        .items
        .iter()
        .map(|i| {
            let cols: Vec<&str> = i.columns.iter().map(|c| c.name.as_str()).collect();
            vec![
                text(&i.name),
                text(i.source.kind_name()),
                text(&source_name(catalog, &i.source)),
                text(&operand_text(c, &i.key)),
                text(&cols.join(", ")),
                Value::Bool(i.list),
                Value::Int(i.ready as i64),
            ]
        })
        .collect();
    Listing {
        columns: vec![
            col("item", ColumnType::Text),
            col("kind", ColumnType::Text),
            col("source", ColumnType::Text),
            col("key", ColumnType::Text),
            col("columns", ColumnType::Text),
            col("list", ColumnType::Boolean),
            col("phase", ColumnType::BigInt),
        ],
        rows,
        message: c.sql.clone(),
    }
}

fn source_name(catalog: &Catalog, s: &Source) -> String {
    let id = match s {
        Source::Row { table_id } => *table_id,
        Source::Features { view_id, .. } => *view_id,
        Source::Knn(k) => k.index_id,
        Source::Recent { stream_id, .. } => *stream_id,
    };
    catalog
        .object_by_id(id)
        .map(|o| o.name().to_string())
        .unwrap_or_else(|| format!("#{id}"))
}

fn operand_text(c: &ContextDef, o: &Operand) -> String {
    match o {
        Operand::Const(Value::Text(t)) => format!("'{}'", t.replace('\'', "''")),
        Operand::Const(Value::Vector(v)) => format!("'{}'", crate::vector::to_text(v)),
        Operand::Const(Value::Int(i)) => i.to_string(),
        Operand::Const(Value::Timestamp(t)) => crate::timestamp::format_rfc3339_us(*t),
        Operand::Const(v) => format!("{v:?}"),
        Operand::Param(n) => c.params[*n].name.clone(),
        Operand::Ref { item, column } => {
            let it = &c.items[*item];
            format!("{}.{}", it.name, it.columns[*column].name)
        }
    }
}

/// `SHOW MODELS`: `model`, `context`, `kind` (TEXT: `logistic_regression` or
/// `linear_regression`), `inputs` (BIGINT), `version` (BIGINT), `threshold` (DOUBLE; NULL
/// when the model makes no decision) per model.
pub fn show_models(catalog: &Catalog) -> Listing {
    let rows: Vec<Vec<Value>> = catalog
        .models()
        .map(|m| {
            vec![
                text(&m.name),
                text(&context_name(catalog, m)),
                text(m.kind_name()),
                Value::Int(m.inputs.len() as i64),
                Value::Int(i64::from(m.version)),
                m.threshold.map_or(Value::Null, Value::Double),
            ]
        })
        .collect();
    Listing {
        columns: vec![
            col("model", ColumnType::Text),
            col("context", ColumnType::Text),
            col("kind", ColumnType::Text),
            col("inputs", ColumnType::BigInt),
            col("version", ColumnType::BigInt),
            col("threshold", ColumnType::Double),
        ],
        message: format!("{} model(s)", rows.len()),
        rows,
    }
}

fn context_name(catalog: &Catalog, m: &ModelDef) -> String {
    catalog
        .object_by_id(m.context_id)
        .map(|o| o.name().to_string())
        .unwrap_or_else(|| format!("#{}", m.context_id))
}

/// `DESCRIBE MODEL m` (and `DESCRIBE m`): a first row `(intercept)` (its `weight` is the
/// intercept, its `type` the model's kind, its `impute`/`mean`/`std` NULL and its `log1p`
/// FALSE), then one row per input in the model's order — `input` (TEXT: `item.column`),
/// `type` (TEXT: the column's SQL type), `weight`, `impute`, `mean`, `std` (DOUBLE), `log1p`
/// (BOOLEAN) — and a last row `(threshold)` (its `weight` the threshold, NULL for none). The
/// message is the `CREATE MODEL` statement.
pub fn describe_model(m: &ModelDef) -> Listing {
    let mut rows = vec![vec![
        text("(intercept)"),
        text(m.kind_name()),
        Value::Double(m.model.intercept()),
        Value::Null,
        Value::Null,
        Value::Null,
        Value::Bool(false),
    ]];
    for ((input, li), &w) in m.inputs.iter().zip(m.model.inputs()).zip(m.model.weights()) {
        rows.push(vec![
            text(&input.name),
            text(&input.ty.sql_name()),
            Value::Double(w),
            Value::Double(li.impute),
            Value::Double(li.mean),
            Value::Double(li.std),
            Value::Bool(li.log1p),
        ]);
    }
    rows.push(vec![
        text("(threshold)"),
        text("score >= threshold"),
        m.threshold.map_or(Value::Null, Value::Double),
        Value::Null,
        Value::Null,
        Value::Null,
        Value::Bool(false),
    ]);
    Listing {
        columns: vec![
            col("input", ColumnType::Text),
            col("type", ColumnType::Text),
            col("weight", ColumnType::Double),
            col("impute", ColumnType::Double),
            col("mean", ColumnType::Double),
            col("std", ColumnType::Double),
            col("log1p", ColumnType::Boolean),
        ],
        rows,
        message: m.sql.clone(),
    }
}
