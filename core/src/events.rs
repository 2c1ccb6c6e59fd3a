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
use crate::record::{Events, Mutation};
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

/// Splits validated events by home shard (the partition column's key hash), keeping batch
/// order within each part. Returns `(shard, part)` pairs ascending by shard, each part an
/// [`Mutation::Events`] with a zero append time (the owner's log stamps it).
pub fn split_events(
    def: &StreamDef,
    rows: Vec<Vec<Value>>,
    producer: Option<(u64, u64)>,
    shard_count: u32,
) -> Vec<(u32, Mutation)> {
    let mut parts: Vec<Vec<Vec<Value>>> = vec![Vec::new(); shard_count as usize];
    let mut key = Vec::with_capacity(32);
    for row in rows {
        key.clear();
        encode_key(&row[def.partition], &mut key).expect("partition value validated");
        parts[shard_for(&key, shard_count) as usize].push(row);
    }
    parts
        .into_iter()
        .enumerate()
        .filter(|(_, p)| !p.is_empty())
        .map(|(s, rows)| {
            (
                s as u32,
                Mutation::Events(Events {
                    stream_id: def.id,
                    append_time_us: 0,
                    producer,
                    rows,
                }),
            )
        })
        .collect()
}
