//! The SQL opcode: statements run in order; listings come from `tarn_core::listing`, DDL goes
//! to shard 0.

use std::rc::Rc;

use crate::server::error::ServerError;
use tarn_core::sql::Statement;
use tarn_net::limits::MAX_BATCH_ROWS;
use tarn_net::{Column, ErrorCode, Response, SqlReply};
use tarn_types::Value;

use super::read::read_features;
use super::unknown_table;
use crate::server::shard::Shard;

/// How far a SQL request got: statements in it, statements that completed. A failing
/// statement's error says which one it was and that the ones before it were applied.
#[derive(Default)]
struct SqlProgress {
    statements: usize,
    done: usize,
}

impl SqlProgress {
    /// For SQL, `row` is the 0-based index of the failing statement in a request of several
    /// (= the statements applied before it), never a key index; absent for a single statement
    /// and when the text does not parse (nothing ran).
    fn error(&self, mut e: ServerError) -> ServerError {
        e.row = None;
        if self.statements > 1 {
            let (n, i) = (self.statements, self.done);
            let before = match i {
                0 => "nothing was applied".to_string(),
                1 => "statement 1 was applied, the statements after it were not run".to_string(),
                _ => format!(
                    "statements 1 to {i} were applied, the statements after it were not run"
                ),
            };
            e.message = format!(
                "statement {} of {n} failed ({before}): {}",
                i + 1,
                e.message
            );
            e.row = Some(i as u32);
        }
        e
    }
}

/// Runs the statements of one SQL request in order (see docs/PROTOCOL.md, SQL): an error names
/// the failing statement when there are several.
pub(super) async fn sql_request(shard: &Rc<Shard>, sql: &str) -> Result<Response, ServerError> {
    let mut progress = SqlProgress::default();
    let reply = run_statements(shard, sql, &mut progress).await;
    reply.map_err(|e| progress.error(e))
}

async fn run_statements(
    shard: &Rc<Shard>,
    sql: &str,
    progress: &mut SqlProgress,
) -> Result<Response, ServerError> {
    let statements = tarn_core::sql::parse(sql).map_err(ServerError::from)?;
    progress.statements = statements.len();
    let mut reply = SqlReply {
        message: String::new(),
        columns: Vec::new(),
        rows: Vec::new(),
    };
    let mut messages = Vec::new();
    for stmt in statements {
        match stmt {
            Statement::ShowContexts => {
                messages.push(put(
                    &mut reply,
                    tarn_core::listing::show_contexts(&shard.catalog()),
                ));
            }
            Statement::ShowModels => {
                messages.push(put(
                    &mut reply,
                    tarn_core::listing::show_models(&shard.catalog()),
                ));
            }
            Statement::DescribeModel { name } => {
                let catalog = shard.catalog();
                let model = catalog.model(&name).ok_or_else(|| {
                    ServerError::from(tarn_core::CoreError::UnknownModel(name.clone()))
                })?;
                messages.push(put(&mut reply, tarn_core::listing::describe_model(model)));
            }
            Statement::ShowTables => {
                messages.push(put(
                    &mut reply,
                    tarn_core::listing::show_tables(&shard.catalog()),
                ));
            }
            Statement::Insert {
                table,
                columns,
                rows,
            } => {
                let n = insert(shard, &table, columns, rows).await?;
                messages.push(format!("INSERT {n}"));
            }
            Statement::SelectFeatures {
                view,
                columns,
                key_column,
                keys,
            } if shard.catalog().view(&view).is_none()
                && shard.catalog().table(&view).is_some() =>
            {
                let table = view;
                let (cols, rows) = select_table(shard, &table, columns, &key_column, &keys).await?;
                (reply.columns, reply.rows) = (cols, rows);
                messages.push(format!("{} row(s)", reply.rows.len()));
            }
            Statement::SelectFeatures {
                view,
                columns,
                key_column,
                keys,
            } => {
                let catalog = shard.catalog();
                let def = catalog.view(&view).ok_or_else(|| ServerError {
                    code: ErrorCode::UnknownView,
                    message: format!("feature view {view:?} does not exist"),
                    row: None,
                    column: None,
                })?;
                if key_column != def.key_name {
                    return Err(ServerError::new(
                        ErrorCode::Unsupported,
                        format!(
                            "feature view {view} is read by its key column {}: WHERE {} = ... or IN (...)",
                            def.key_name, def.key_name
                        ),
                    ));
                }
                let (as_of, all_cols, rows) = read_features(shard, &view, &keys, None).await?;
                let pick = pick_columns(
                    &all_cols,
                    columns.as_deref(),
                    &format!("feature view {view}"),
                )?;
                reply.columns = pick.iter().map(|&i| all_cols[i].clone()).collect();
                reply.rows = rows
                    .into_iter()
                    .map(|r| pick.iter().map(|&i| r.values[i].clone()).collect())
                    .collect();
                messages.push(format!(
                    "{} key(s) as of {}",
                    reply.rows.len(),
                    tarn_core::ingest::format_rfc3339_us(as_of)
                ));
            }
            Statement::SelectKnn(query) => {
                let (cols, rows) = super::knn::select_knn(shard, &query).await?;
                (reply.columns, reply.rows) = (cols, rows);
                messages.push(format!("{} row(s)", reply.rows.len()));
            }
            Statement::ShowViews => {
                let catalog = shard.catalog();
                let mut totals = std::collections::BTreeMap::new();
                for v in catalog.views() {
                    let [keys, window_bytes, events, late_events] = shard.view_totals(v.id).await?;
                    let t = tarn_core::listing::ViewTotals {
                        keys,
                        window_bytes,
                        events,
                        late_events,
                    };
                    totals.insert(v.id, t);
                }
                messages.push(put(
                    &mut reply,
                    tarn_core::listing::show_views(&catalog, &totals),
                ));
            }
            Statement::ShowStreams => {
                let catalog = shard.catalog();
                let mut totals = std::collections::BTreeMap::new();
                for s in catalog.streams() {
                    let (events, newest_event_time_us) = shard.stream_totals(s.id).await?;
                    let t = tarn_core::listing::StreamTotals {
                        events,
                        newest_event_time_us,
                    };
                    totals.insert(s.id, t);
                }
                messages.push(put(
                    &mut reply,
                    tarn_core::listing::show_streams(&catalog, &totals),
                ));
            }
            Statement::ShowIndexes => {
                let progress = progress_of(shard).await?;
                messages.push(put(
                    &mut reply,
                    tarn_core::listing::show_indexes(&shard.catalog(), &progress),
                ));
            }
            Statement::Describe { table } => {
                let progress = progress_of(shard).await?;
                let listing = tarn_core::listing::describe(&shard.catalog(), &table, &progress)
                    .ok_or_else(|| unknown_table(&table))?;
                messages.push(put(&mut reply, listing));
            }
            ddl => {
                let view = match &ddl {
                    Statement::CreateView { spec, .. } => Some(spec.name.clone()),
                    _ => None,
                };
                let (message, backfilled) = shard.ddl(ddl).await?;
                if let Some(view) = view {
                    (reply.columns, reply.rows) = backfill_result(view, backfilled);
                }
                messages.push(message);
            }
        }
        progress.done += 1;
    }
    reply.message = messages.join("\n");
    Ok(Response::Sql(reply))
}

/// `INSERT INTO table …`: the rows resolved against the table (vector literals become
/// vectors) and written as an upsert replacing whole rows. Returns the rows applied.
async fn insert(
    shard: &Rc<Shard>,
    table: &str,
    columns: Option<Vec<String>>,
    rows: Vec<Vec<tarn_core::sql::insert::InsertValue>>,
) -> Result<u64, ServerError> {
    if rows.len() > MAX_BATCH_ROWS as usize {
        return Err(ServerError::new(
            ErrorCode::BatchTooLarge,
            format!(
                "INSERT of {} rows; the limit is {MAX_BATCH_ROWS}",
                rows.len()
            ),
        ));
    }
    let (columns, rows) = {
        let catalog = shard.catalog();
        let def = catalog.table(table).ok_or_else(|| unknown_table(table))?;
        tarn_core::sql::insert::resolve_insert(def, columns, rows).map_err(ServerError::from)?
    };
    super::upsert(
        shard,
        table,
        tarn_types::UpsertMode::Replace,
        &columns,
        rows,
    )
    .await
}

/// `SELECT * | cols FROM table WHERE key = … | IN (…)`: the rows found, in key order (absent
/// keys give no row). The WHERE must name the key column; a VECTOR column cannot be compared.
async fn select_table(
    shard: &Rc<Shard>,
    table: &str,
    columns: Option<Vec<String>>,
    key_column: &str,
    keys: &[Value],
) -> Result<(Vec<Column>, Vec<Vec<Value>>), ServerError> {
    {
        let catalog = shard.catalog();
        let def = catalog.table(table).ok_or_else(|| unknown_table(table))?;
        let compared = def.column_index(key_column).map(|i| &def.columns[i]);
        if let Some(c) = compared.filter(|c| !c.ty.is_comparable()) {
            return Err(ServerError {
                code: ErrorCode::Unsupported,
                message: format!(
                    "column {:?} is {}: vectors cannot be compared (=, <, IN); read rows by the key column {:?}",
                    c.name, c.ty, def.key_name()
                ),
                row: None,
                column: Some(c.name.clone()),
            });
        }
        if key_column != def.key_name() {
            return Err(ServerError::new(
                ErrorCode::Unsupported,
                format!(
                    "table {table} is read by its key column {}: WHERE {} = ... or IN (...)",
                    def.key_name(),
                    def.key_name()
                ),
            ));
        }
    }
    let (all_cols, rows) = super::get(shard, table, keys).await?;
    let pick = pick_columns(&all_cols, columns.as_deref(), table)?;
    let cols = pick.iter().map(|&i| all_cols[i].clone()).collect();
    let rows = rows
        .into_iter()
        .flatten()
        .map(|r| pick.iter().map(|&i| r[i].clone()).collect())
        .collect();
    Ok((cols, rows))
}

/// Indexes of the listed columns in `all` (every column for `None`).
fn pick_columns(
    all: &[Column],
    names: Option<&[String]>,
    object: &str,
) -> Result<Vec<usize>, ServerError> {
    let Some(names) = names else {
        return Ok((0..all.len()).collect());
    };
    names
        .iter()
        .map(|n| {
            all.iter()
                .position(|c| &c.name == n)
                .ok_or_else(|| ServerError {
                    code: ErrorCode::UnknownColumn,
                    message: format!("{object} has no column {n:?}"),
                    row: None,
                    column: Some(n.clone()),
                })
        })
        .collect()
}

/// CREATE MATERIALIZED VIEW's result set: one row, the view and the events back-filled into
/// it (0 when `IF NOT EXISTS` skipped an existing view).
pub(super) fn backfill_result(
    view: String,
    backfilled: Option<u64>,
) -> (Vec<Column>, Vec<Vec<Value>>) {
    let columns = vec![
        Column {
            name: "view".into(),
            ty: tarn_types::ColumnType::Text,
        },
        Column {
            name: "backfilled_events".into(),
            ty: tarn_types::ColumnType::BigInt,
        },
    ];
    let n = backfilled.unwrap_or(0) as i64;
    (columns, vec![vec![Value::Text(view), Value::Int(n)]])
}

/// Sets the reply's result set from a core listing; returns its message.
pub(super) fn put(reply: &mut SqlReply, listing: tarn_core::listing::Listing) -> String {
    reply.columns = listing
        .columns
        .into_iter()
        .map(|c| Column {
            name: c.name,
            ty: c.ty,
        })
        .collect();
    reply.rows = listing.rows;
    listing.message
}

/// Build progress of every index summed over the shards, as the listings take it:
/// `(rows_indexed, rows_pending)` by index id.
async fn progress_of(shard: &Rc<Shard>) -> Result<impl Fn(u32) -> (u64, u64), ServerError> {
    let all = shard.index_progress_all().await?;
    Ok(move |id: u32| {
        all.iter()
            .find(|(i, _)| *i == id)
            .map_or((0, 0), |(_, p)| (p.indexed, p.pending))
    })
}
