//! Validation of stream event batches and their split by home shard.
//!
//! Checks, whatever the input format (typed rows or JSON, see [`crate::ingest`]): at least one
//! event; at most the batch limit; every value of the column's type (with the same lossless
//! coercions as table upserts: `Int` → TIMESTAMP, `Int` → DOUBLE when |i| ≤ 2^53); TEXT/BYTES
//! at most [`tarn_types::MAX_VALUE_BYTES`]; DOUBLE finite; the event-time and partition
//! columns present and non-NULL in every event (`MissingValue`); and no event dated more than
//! the stream's `max_future` after the server's clock (`FutureEvent`). The first failing event
//! is reported with its 0-based index and the column. Nothing is written unless every event
//! passes.

use tarn_types::{encode_key, shard_for, Value};

use crate::batch::check_value;
use crate::catalog::Catalog;
use crate::record::{Events, Mutation, HOME_TARGET};
use crate::schema::StreamDef;
use crate::CoreError;

/// Typed rows (`columns` lists which stream column each value position is; unlisted columns
/// are NULL) → full rows in stream column order, validated. `now_us` is the server clock.
pub fn validate_event_rows(
    def: &StreamDef,
    columns: &[String],
    rows: Vec<Vec<Value>>,
    now_us: i64,
) -> Result<Vec<Vec<Value>>, CoreError> {
    if rows.is_empty() {
        return Err(CoreError::BatchEmpty);
    }
    let mut idx = Vec::with_capacity(columns.len());
    for name in columns {
        let i = def
            .column_index(name)
            .ok_or_else(|| CoreError::UnknownColumn {
                table: def.name.clone(),
                column: name.clone(),
            })?;
        if idx.contains(&i) {
            return Err(CoreError::DuplicateColumn {
                column: name.clone(),
            });
        }
        idx.push(i);
    }
    let width = def.columns.len();
    let mut out = Vec::with_capacity(rows.len());
    for (r, row) in rows.into_iter().enumerate() {
        if row.len() != idx.len() {
            return Err(CoreError::RowArity {
                row: Some(r),
                expected: idx.len(),
                got: row.len(),
            });
        }
        let mut full = vec![Value::Null; width];
        for (&ci, v) in idx.iter().zip(row) {
            full[ci] = match check_value(&def.columns[ci], r, &v)? {
                Some(coerced) => coerced,
                None => v,
            };
        }
        out.push(full);
    }
    check_events(def, &out, now_us)?;
    Ok(out)
}

/// The checks every format shares, on full rows whose values already have their columns'
/// types: required columns present, event time not too far in the future.
pub fn check_events(def: &StreamDef, rows: &[Vec<Value>], now_us: i64) -> Result<(), CoreError> {
    if rows.is_empty() {
        return Err(CoreError::BatchEmpty);
    }
    let limit = now_us.saturating_add(def.max_future_us);
    for (r, row) in rows.iter().enumerate() {
        debug_assert_eq!(row.len(), def.columns.len());
        for c in [def.event_time, def.partition] {
            if matches!(row[c], Value::Null) {
                return Err(CoreError::MissingValue {
                    row: Some(r),
                    column: Some(def.columns[c].name.clone()),
                });
            }
        }
        match row[def.event_time] {
            Value::Timestamp(t) if t > limit => {
                return Err(CoreError::FutureEvent {
                    row: Some(r),
                    column: Some(def.columns[def.event_time].name.clone()),
                    event_time_us: t,
                    now_us,
                    max_future_us: def.max_future_us,
                })
            }
            Value::Timestamp(_) => {}
            ref other => unreachable!("event time validated as TIMESTAMP, got {other:?}"),
        }
    }
    Ok(())
}

/// Splits validated events by the shards that must see them: each event goes to its home
/// shard (the partition value's key hash) for the stream's copy, and to the owner of its key in
/// every feature view over the stream whose `WHERE` it passes (an event whose view key is NULL
/// does not count in that view). A shard gets each event once, with a mask of what to do with
/// it. Returns `(shard, part)` pairs ascending by shard, each an [`Mutation::Events`] with a
/// zero append time (the owner's log stamps it). Batch order is kept within each part.
pub fn split_events(
    catalog: &Catalog,
    def: &StreamDef,
    rows: Vec<Vec<Value>>,
    producer: Option<(u64, u64)>,
    shard_count: u32,
) -> Vec<(u32, Mutation)> {
    let views = catalog.views_on(def.id);
    // targets[s]: target ids of shard s's part; parts[s]: its (mask, row) pairs.
    let mut targets: Vec<Vec<u32>> = vec![Vec::new(); shard_count as usize];
    let mut parts: Vec<Vec<(u64, Vec<Value>)>> = vec![Vec::new(); shard_count as usize];
    let mut key = Vec::with_capacity(32);
    let mut shard_of = |v: &Value| -> Option<u32> {
        key.clear();
        encode_key(v, &mut key).ok()?;
        Some(shard_for(&key, shard_count))
    };
    let mut masks: Vec<u64> = vec![0; shard_count as usize];
    for row in rows {
        masks.iter_mut().for_each(|m| *m = 0);
        let mut mark = |shard: u32, target: u32, targets: &mut Vec<Vec<u32>>| {
            let ts = &mut targets[shard as usize];
            let i = match ts.iter().position(|t| *t == target) {
                Some(i) => i,
                None => {
                    ts.push(target);
                    ts.len() - 1
                }
            };
            masks[shard as usize] |= 1u64 << i;
        };
        let home = shard_of(&row[def.partition]).expect("partition value validated");
        mark(home, HOME_TARGET, &mut targets);
        for v in &views {
            if v.filter.as_ref().is_some_and(|f| !f.matches(&row)) {
                continue;
            }
            if let Some(owner) = shard_of(&row[v.key_column]) {
                mark(owner, v.id, &mut targets);
            }
        }
        let last = masks
            .iter()
            .rposition(|m| *m != 0)
            .expect("the home shard at least");
        for s in 0..last {
            if masks[s] != 0 {
                parts[s].push((masks[s], row.clone()));
            }
        }
        parts[last].push((masks[last], row));
    }
    parts
        .into_iter()
        .zip(targets)
        .enumerate()
        .filter(|(_, (p, _))| !p.is_empty())
        .map(|(s, (rows, targets))| {
            (
                s as u32,
                Mutation::Events(Events {
                    stream_id: def.id,
                    append_time_us: 0,
                    producer,
                    duplicate: false,
                    routing_version: catalog.version,
                    targets,
                    rows,
                }),
            )
        })
        .collect()
}

/// Validates the keys of a feature-view read against the view's key column (same type rules
/// as table keys: `Int` is accepted for a TIMESTAMP key; NULL is `NullKey`), returning their
/// canonical bytes. The first bad key is reported with its index.
pub fn validate_view_keys(
    key_column: &crate::schema::ColumnDef,
    keys: &[Value],
) -> Result<Vec<Vec<u8>>, CoreError> {
    if keys.is_empty() {
        return Err(CoreError::BatchEmpty);
    }
    keys.iter()
        .enumerate()
        .map(|(i, k)| {
            let coerced = check_value(key_column, i, k)?;
            let v = coerced.as_ref().unwrap_or(k);
            let mut out = Vec::with_capacity(16);
            encode_key(v, &mut out).map_err(|_| CoreError::NullKey {
                row: Some(i),
                column: Some(key_column.name.clone()),
            })?;
            Ok(out)
        })
        .collect()
}
