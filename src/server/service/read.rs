//! Reads: GET rows and feature-view reads (now or as of a past time) from their owners, put
//! back in request order.

use std::rc::Rc;

use crate::server::error::ServerError;
use tarn_core::batch;
use tarn_net::limits::{MAX_BATCH_ROWS, MAX_RECENT_KEYS};
use tarn_net::{Column, ErrorCode, FeatureRow};
use tarn_types::Value;

use crate::server::fanout;

use crate::server::shard::Shard;

/// The rows of `keys` (canonical, validated) in request order, each from its owner.
pub(super) async fn get_rows(
    shard: &Rc<Shard>,
    table_id: u32,
    keys: Vec<Vec<u8>>,
) -> Result<Vec<Option<Vec<Value>>>, ServerError> {
    let n = keys.len();
    let parts = batch::by_owner(keys, shard.count, |_, k| k);
    fanout::ask_owners(parts, n, |owner, keys| {
        let shard = shard.clone();
        async move { shard.get(owner, table_id, keys).await }
    })
    .await
}

/// A checked view read: the view id, its reply columns (key first), the canonical keys.
pub(super) type ViewRead = (u32, Vec<tarn_core::schema::ColumnDef>, Vec<Vec<u8>>);

/// The checks every view read shares: the view exists, at most `MAX_BATCH_ROWS` keys, each
/// typed by the view's key column. Returns the view id, its reply columns (key first) and
/// the canonical keys.
pub(super) fn prepare_view_read(
    shard: &Shard,
    view: &str,
    keys: &[Value],
) -> Result<ViewRead, ServerError> {
    let catalog = shard.catalog();
    let def = catalog.view(view).ok_or_else(|| ServerError {
        code: ErrorCode::UnknownView,
        message: format!("feature view {view:?} does not exist"),
        row: None,
        column: None,
    })?;
    let stream = catalog
        .stream_by_id(def.stream_id)
        .expect("a view's stream exists while the view does");
    let columns = def.result_columns(stream);
    if keys.len() > MAX_BATCH_ROWS as usize {
        return Err(ServerError::new(
            ErrorCode::BatchTooLarge,
            format!(
                "{} keys in one read; the limit is {MAX_BATCH_ROWS}",
                keys.len()
            ),
        ));
    }
    let encoded =
        tarn_core::events::validate_view_keys(&columns[0], keys).map_err(ServerError::from)?;
    Ok((def.id, columns, encoded))
}

/// Reads feature view `view` for `keys`: as of now (each owner answers at its latest
/// consistent point and each row states it), or as of a past time through the history path.
/// Returns the earliest as-of time, the reply columns (key, then aggregates) and one row per
/// key.
pub(super) async fn read_features(
    shard: &Rc<Shard>,
    view: &str,
    keys: &[Value],
    as_of_us: Option<i64>,
) -> Result<(i64, Vec<Column>, Vec<FeatureRow>), ServerError> {
    if let Some(t) = as_of_us {
        // A past as-of time: recomputed from the retained log (point-in-time history).
        let (columns, rows) =
            read_history(shard, view, keys.iter().map(|k| (k.clone(), t)).collect()).await?;
        return Ok((t, columns, rows));
    }
    let (view_id, result_columns, encoded) = prepare_view_read(shard, view, keys)?;
    let parts = batch::by_owner(encoded, shard.count, |_, k| k);
    let answers = fanout::ask_owners(parts, keys.len(), |owner, keys| {
        let shard = shard.clone();
        async move { shard.features(owner, view_id, keys).await }
    })
    .await?;
    let rows = feature_rows(answers, reply_keys(&result_columns[0], keys));
    let as_of = rows.iter().map(|r| r.as_of_us).min().unwrap_or(i64::MIN);
    Ok((as_of, to_columns(result_columns), rows))
}

/// Point-in-time history: the view's features for each `(key, as_of)` pair, from the owners'
/// retained logs. As-of times after the server's clock are refused (the future is not written
/// yet).
pub(super) async fn read_history(
    shard: &Rc<Shard>,
    view: &str,
    pairs: Vec<(Value, i64)>,
) -> Result<(Vec<Column>, Vec<FeatureRow>), ServerError> {
    let keys: Vec<Value> = pairs.iter().map(|(k, _)| k.clone()).collect();
    let (view_id, result_columns, encoded) = prepare_view_read(shard, view, &keys)?;
    let now = crate::server::now_us();
    if let Some(i) = pairs.iter().position(|(_, t)| *t >= now) {
        return Err(ServerError::new(
            ErrorCode::InvalidArgument,
            format!(
                "as-of time {} is not in the past (server clock {now}); read the current values without as_of",
                pairs[i].1
            ),
        )
        .with_row(i as u32));
    }
    let parts = batch::by_owner(encoded, shard.count, |i, k| (k, pairs[i].1));
    let answers = fanout::ask_owners(parts, keys.len(), |owner, queries| {
        let shard = shard.clone();
        async move { shard.history(owner, view_id, queries).await }
    })
    .await?;
    let rows = feature_rows(answers, reply_keys(&result_columns[0], &keys));
    Ok((to_columns(result_columns), rows))
}

/// The keys as a reply row shows them: of the key column's type (a BIGINT key of a TIMESTAMP
/// key column, the one coercion keys get, becomes the TIMESTAMP it was read as).
pub(super) fn reply_keys(key_column: &tarn_core::schema::ColumnDef, keys: &[Value]) -> Vec<Value> {
    keys.iter()
        .map(|k| match (key_column.ty, k) {
            (tarn_types::ColumnType::Timestamp, Value::Int(t)) => Value::Timestamp(*t),
            _ => k.clone(),
        })
        .collect()
}

/// The reply columns of a view.
pub(super) fn to_columns(cols: Vec<tarn_core::schema::ColumnDef>) -> Vec<Column> {
    cols.into_iter()
        .map(|c| Column {
            name: c.name,
            ty: c.ty,
        })
        .collect()
}

/// The reply rows of a feature read: per key (in request order) its owner's answer, the key
/// first.
fn feature_rows(answers: crate::server::shard::FeatureRows, keys: Vec<Value>) -> Vec<FeatureRow> {
    answers
        .into_iter()
        .zip(keys)
        .map(|((as_of_us, vals, newest), key)| {
            let mut values = Vec::with_capacity(vals.len() + 1);
            values.push(key);
            values.extend(vals);
            FeatureRow {
                as_of_us,
                newest_event_time_us: newest,
                values,
            }
        })
        .collect()
}

/// RECENT: the newest `n` events of each partition key of a stream kept with `recent = N`,
/// from each key's home shard, in request order. Checks, before any shard is asked: the
/// stream exists and keeps recent events, `n` in `1..=MAX_RECENT_EVENTS_PER_KEY`, at most
/// `MAX_RECENT_KEYS` keys typed by the partition column, known columns named once.
pub(super) async fn read_recent(
    shard: &Rc<Shard>,
    req: tarn_net::RecentRequest,
) -> Result<tarn_net::RecentReply, ServerError> {
    let catalog = shard.catalog();
    let def = catalog.stream(&req.stream).ok_or_else(|| {
        ServerError::new(
            ErrorCode::UnknownStream,
            format!("stream {:?} does not exist", req.stream),
        )
    })?;
    if def.recent == 0 {
        return Err(ServerError::new(
            ErrorCode::Unsupported,
            format!(
                "stream {:?} keeps no recent events; create it WITH (recent = N) to read them",
                def.name
            ),
        ));
    }
    let max = tarn_core::MAX_RECENT_EVENTS_PER_KEY;
    if req.n == 0 || req.n > max {
        return Err(ServerError::new(
            ErrorCode::InvalidArgument,
            format!(
                "n = {} events per key; it must be in 1..={max} (stream {:?} keeps {})",
                req.n, def.name, def.recent
            ),
        ));
    }
    if req.keys.len() > MAX_RECENT_KEYS as usize {
        return Err(ServerError::new(
            ErrorCode::BatchTooLarge,
            format!(
                "{} keys in one RECENT request; the limit is {MAX_RECENT_KEYS}",
                req.keys.len()
            ),
        ));
    }
    let columns = recent_columns(def, &req.columns)?;
    let encoded = tarn_core::events::validate_view_keys(&def.columns[def.partition], &req.keys)
        .map_err(ServerError::from)?;
    let parts = batch::by_owner(encoded, shard.count, |_, k| k);
    let (stream_id, n) = (def.id, req.n as usize);
    let cols: Rc<[usize]> = columns.iter().map(|&(i, _)| i).collect();
    let keys = fanout::ask_owners(parts, req.keys.len(), |owner, keys| {
        let (shard, cols) = (shard.clone(), cols.clone());
        async move { shard.recent(owner, stream_id, keys, n, cols).await }
    })
    .await?;
    Ok(tarn_net::RecentReply {
        columns: columns.into_iter().map(|(_, c)| c).collect(),
        keys,
    })
}

/// The stream columns a RECENT reply holds (all, in stream order, when `names` is empty):
/// their indexes and reply columns. An unknown or repeated name is an error naming it.
fn recent_columns(
    def: &tarn_core::schema::StreamDef,
    names: &[String],
) -> Result<Vec<(usize, Column)>, ServerError> {
    let column = |i: usize| {
        let c = &def.columns[i];
        (
            i,
            Column {
                name: c.name.clone(),
                ty: c.ty,
            },
        )
    };
    if names.is_empty() {
        return Ok((0..def.columns.len()).map(column).collect());
    }
    let mut out: Vec<(usize, Column)> = Vec::with_capacity(names.len());
    for name in names {
        let i = def.column_index(name).ok_or_else(|| {
            ServerError::from(tarn_core::CoreError::UnknownColumn {
                table: def.name.clone(),
                column: name.clone(),
            })
        })?;
        if out.iter().any(|(j, _)| *j == i) {
            return Err(ServerError::from(tarn_core::CoreError::DuplicateColumn {
                column: name.clone(),
            }));
        }
        out.push(column(i));
    }
    Ok(out)
}
