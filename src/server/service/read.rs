//! Reads: GET rows and feature-view reads (now or as of a past time) from their owners, put
//! back in request order.

use std::rc::Rc;

use tarn_core::batch;
use tarn_net::limits::MAX_BATCH_ROWS;
use tarn_net::{Column, ErrorCode, ErrorReply, FeatureRow};
use tarn_types::{shard_for, Value};

use super::fail;
use crate::server::shard::{Failure, Shard};

pub(super) async fn get_rows(
    shard: &Rc<Shard>,
    table_id: u32,
    keys: Vec<Vec<u8>>,
) -> Result<Vec<Option<Vec<Value>>>, Failure> {
    let n = shard.count;
    let mut rows: Vec<Option<Vec<Value>>> = vec![None; keys.len()];
    let tasks: Vec<_> = batch::split_keys_by_shard(keys, n)
        .into_iter()
        .enumerate()
        .filter(|(_, part)| !part.is_empty())
        .map(|(s, part)| {
            let (idx, keys): (Vec<usize>, Vec<Vec<u8>>) = part.into_iter().unzip();
            let shard = shard.clone();
            glommio::spawn_local(async move { (idx, shard.get(s as u32, table_id, keys).await) })
        })
        .collect();
    for t in tasks {
        let (idx, found) = t.await;
        for (i, row) in idx.into_iter().zip(found?) {
            rows[i] = row;
        }
    }
    Ok(rows)
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
) -> Result<ViewRead, ErrorReply> {
    let catalog = shard.catalog();
    let def = catalog.view(view).ok_or_else(|| ErrorReply {
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
        return Err(ErrorReply::new(
            ErrorCode::BatchTooLarge,
            format!(
                "{} keys in one read; the limit is {MAX_BATCH_ROWS}",
                keys.len()
            ),
        ));
    }
    let encoded = tarn_core::events::validate_view_keys(&columns[0], keys)
        .map_err(crate::server::core_error)?;
    Ok((def.id, columns, encoded))
}

/// Splits request items by the shard owning their key: per owner, the request indexes and
/// the items, in request order.
pub(super) fn by_owner<T: Clone>(
    shard: &Shard,
    keys: Vec<Vec<u8>>,
    item: impl Fn(usize, Vec<u8>) -> T,
) -> Vec<(u32, Vec<usize>, Vec<T>)> {
    let mut groups: Vec<(Vec<usize>, Vec<T>)> =
        vec![(Vec::new(), Vec::new()); shard.count as usize];
    for (i, k) in keys.into_iter().enumerate() {
        let s = shard_for(&k, shard.count) as usize;
        groups[s].0.push(i);
        groups[s].1.push(item(i, k));
    }
    groups
        .into_iter()
        .enumerate()
        .filter(|(_, (idx, _))| !idx.is_empty())
        .map(|(s, (idx, items))| (s as u32, idx, items))
        .collect()
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
) -> Result<(i64, Vec<Column>, Vec<FeatureRow>), ErrorReply> {
    if let Some(t) = as_of_us {
        // A past as-of time: recomputed from the retained log (point-in-time history).
        let (columns, rows) =
            read_history(shard, view, keys.iter().map(|k| (k.clone(), t)).collect()).await?;
        return Ok((t, columns, rows));
    }
    let (view_id, result_columns, encoded) = prepare_view_read(shard, view, keys)?;
    let tasks: Vec<_> = by_owner(shard, encoded, |_, k| k)
        .into_iter()
        .map(|(s, idx, ks)| {
            let shard = shard.clone();
            glommio::spawn_local(async move { (idx, shard.features(s, view_id, ks).await) })
        })
        .collect();
    let rows = gather_feature_rows(tasks, &reply_keys(&result_columns[0], keys)).await?;
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
) -> Result<(Vec<Column>, Vec<FeatureRow>), ErrorReply> {
    let keys: Vec<Value> = pairs.iter().map(|(k, _)| k.clone()).collect();
    let (view_id, result_columns, encoded) = prepare_view_read(shard, view, &keys)?;
    let now = crate::server::now_us();
    if let Some(i) = pairs.iter().position(|(_, t)| *t >= now) {
        return Err(ErrorReply::new(
            ErrorCode::InvalidArgument,
            format!(
                "as-of time {} is not in the past (server clock {now}); read the current values without as_of",
                pairs[i].1
            ),
        )
        .with_row(i as u32));
    }
    let tasks: Vec<_> = by_owner(shard, encoded, |i, k| (k, pairs[i].1))
        .into_iter()
        .map(|(s, idx, qs)| {
            let shard = shard.clone();
            glommio::spawn_local(async move { (idx, shard.history(s, view_id, qs).await) })
        })
        .collect();
    let rows = gather_feature_rows(tasks, &reply_keys(&result_columns[0], &keys)).await?;
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

/// One owner's answer to a feature read: the request indexes it answered and its rows.
pub(super) type OwnerAnswer = (
    Vec<usize>,
    Result<crate::server::shard::FeatureRows, Failure>,
);

/// The reply columns of a view.
pub(super) fn to_columns(cols: Vec<tarn_core::schema::ColumnDef>) -> Vec<Column> {
    cols.into_iter()
        .map(|c| Column {
            name: c.name,
            ty: c.ty,
        })
        .collect()
}

/// Awaits every owner's answer and puts the rows back in request order (the key first).
pub(super) async fn gather_feature_rows(
    tasks: Vec<glommio::Task<OwnerAnswer>>,
    keys: &[Value],
) -> Result<Vec<FeatureRow>, ErrorReply> {
    let mut rows: Vec<Option<FeatureRow>> = vec![None; keys.len()];
    let mut first_err = None;
    for t in tasks {
        let (idx, got) = t.await;
        match got {
            Ok(values) => {
                for (i, (as_of, vals, newest)) in idx.into_iter().zip(values) {
                    let mut all = Vec::with_capacity(vals.len() + 1);
                    all.push(keys[i].clone());
                    all.extend(vals);
                    rows[i] = Some(FeatureRow {
                        as_of_us: as_of,
                        newest_event_time_us: newest,
                        values: all,
                    });
                }
            }
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    if let Some(e) = first_err {
        return Err(fail(e));
    }
    Ok(rows
        .into_iter()
        .map(|r| r.expect("every key answered"))
        .collect())
}
