//! `tarn-core`: the catalog, SQL front end, batch validation, in-memory shard state and the
//! byte encodings of log-record payloads and checkpoint payloads.
//!
//! Invariants:
//! - **No I/O.** Nothing in this crate opens files or sockets or reads clocks. Every encoding is
//!   a pure byte transform; `tarn-storage` frames, checksums and persists the bytes.
//! - **Validate, then apply.** [`batch::validate_upsert`] / [`batch::validate_keys`] reject a
//!   bad batch completely before anything is written; [`state::ShardState::apply`] cannot fail.
//! - **Deterministic replay.** Applying the same mutations in the same order to the same
//!   checkpoint gives the same state.
//! - Corruption ([`CoreError::Corrupt`]) is always distinct from user errors.

#![warn(missing_docs)]

pub mod batch;
pub mod catalog;
pub mod context;
pub mod duration;
mod error;
pub mod events;
pub mod expr;
pub mod history;
pub mod index_def;
pub mod ingest;
pub mod listing;
pub mod model_def;
pub mod producer;
pub mod record;
pub mod schema;
pub mod sql;
pub mod state;
pub mod timestamp;
pub mod txn;
pub mod vector;
pub mod view;

pub use error::{CoreError, ErrorKind};
pub use tarn_types::{
    ColumnType, Value, MAX_VALUE_BYTES, MAX_VECTOR_COMPONENTS_PER_ROW, MAX_VECTOR_DIMENSIONS,
};

/// Longest table or column name, in bytes (after case folding). Names appear in every error
/// message, `DESCRIBE` output and the catalog file; the bound keeps those small. Raising it only
/// costs catalog and message size.
pub const MAX_IDENTIFIER_BYTES: usize = 64;

/// Most tables a catalog may hold at once (dropped tables do not count). The catalog is one small
/// JSON file rewritten atomically on every DDL change and every shard keeps a table map, so this
/// bounds the catalog write cost and per-shard bookkeeping. Raising it costs catalog rewrite time
/// (and a linear count when a table is created).
pub const MAX_TABLES: usize = 1024;

/// Most columns one table may have. Column indices travel as `u16` in log records; this bound
/// (far below `u16::MAX`) keeps one row's metadata and a full-width NULL row small. Raising it
/// costs per-row memory for wide `Replace` upserts.
pub const MAX_COLUMNS: usize = 1024;

/// Most streams a catalog may hold at once. Every stream costs a catalog entry and, per shard,
/// bookkeeping for its retained events; the bound keeps the catalog file and that bookkeeping
/// small. Raising it costs catalog rewrite time.
pub const MAX_STREAMS: usize = 256;

/// Most events per partition key a stream keeps with `WITH (recent = N)` (the `N` in
/// `1..=` this). The last `N` events of every key live in memory on the key's home shard,
/// full rows, whatever the stream's retention: a key costs about `N × (40 + row bytes)` plus
/// ~100 bytes of map entry and key (`docs/SQL.md`, "Recent events"), and every key of the
/// stream pays it, so the bound keeps one stream from taking the shard's memory by mistake.
/// Raising it costs that memory per key and makes an insert into a full ring (a sorted
/// vector) move more entries.
pub const MAX_RECENT_EVENTS_PER_KEY: u32 = 256;

/// At most `max` bytes of `s` (cut on a character boundary, `…` appended when cut): client
/// text quoted in messages.
pub(crate) fn excerpt(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[cfg(test)]
mod tests;
