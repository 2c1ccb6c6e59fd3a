//! The checkpoint payload of a shard's state (format in [`CHECKPOINT_FORMAT_VERSION`] and
//! `storage/FORMAT.md` §4): writing it incrementally ([`CheckpointBuilder`]) and loading it
//! ([`ShardState::from_checkpoint`]).

use std::rc::Rc;

use rkyv::rancor;
use rkyv::with::InlineAsBox;
use tarn_features::WindowState;
use tarn_types::Value;

use super::indexes::index_checkpoint::{IndexesLoad, IndexesSnapshot};
use super::recent::{RecentEvent, RecentState, Ring};
use super::views::{KeyWindow, ViewCounters, ViewState};
use super::{ShardState, StreamCounters};
use crate::catalog::Catalog;
use crate::producer::{ProducerTable, Window};
use crate::record::{self, TxnId, TxnPart};
use crate::txn::{Prepared, TxnState};
use crate::CoreError;

/// Magic at the start of a checkpoint payload.
pub const CHECKPOINT_MAGIC: [u8; 8] = *b"TARNCKPT";

/// Checkpoint payload format. Layout: 8-byte [`CHECKPOINT_MAGIC`], u32 LE format version,
/// 4 reserved zero bytes, then a sequence of chunks, each
///
/// ```text
/// +----------------+---------+-----------------+------------------------------+-------------+
/// | len: u64 LE    | kind: u8| reserved: 7 × 0 | rkyv archive                 | zero pad to |
/// | (archive bytes)|         |                 | (CkMeta, CkTable or CkView)  | 16 bytes    |
/// +----------------+---------+-----------------+------------------------------+-------------+
/// ```
///
/// so every archive starts 16-byte aligned when the payload does. Chunk kinds:
/// - kind 1 (`CHUNK_META`): a `CkMeta`, always the first chunk and the only one of its kind:
///   feature-view counters, multi-shard batch bookkeeping (link high-water marks and parts set
///   aside, see [`crate::txn`]), producer windows (see [`crate::producer`]) and per-stream
///   counters, exact as of the checkpoint's LSN;
/// - kind 0 (`CHUNK_TABLE`): a `CkTable` with some of one table's rows;
/// - kind 2 (`CHUNK_VIEW`): a `CkView` with some keys of one feature view, each with its
///   window encoding and the LSN of the last record applied to it;
/// - kind 7 (`CHUNK_RECENT`, version 7): a `CkRecent` with some keys of one stream that keeps
///   recent events, each with its ring (events oldest first: event time, LSN, position in the
///   record, full row).
///
/// A table's rows (a view's keys) may span several chunks; a key appears at most once. Any
/// other kind, a second meta chunk or a first chunk that is not the meta chunk is corrupt.
/// Bumped on any change of the layout or the archived types; the version is read before
/// anything else, so an old reader rejects a new checkpoint cleanly. (Version 1 was a single
/// archive of all tables; version 2 had no meta chunk; version 3's meta chunk had no
/// producers, streams or views, and there were no view chunks; version 4 had no VECTOR
/// values; version 5 had no index chunks.)
///
/// Version 6 adds the vector indexes after every table and view chunk, exact as of one log
/// position (kinds 3–6: `index_checkpoint`); the index position chunk (kind 3) is required.
///
/// Version 7 adds the recent-event rings (kind 7), among the table and view chunks. Rings are
/// fuzzy like tables: inserting an event into a ring is idempotent and order-insensitive
/// (`state::recent`), so replay from the checkpoint's LSN is exact without per-key tags.
pub const CHECKPOINT_FORMAT_VERSION: u32 = 7;

/// Oldest checkpoint format this build reads: version 4 is version 5 without VECTOR values
/// (the value variant was appended, so the older variants archive identically), version 5 is
/// version 6 without index chunks (indexes are then created again from the rows), version 6
/// is version 7 without recent-event rings (a stream then starts with empty rings: no build
/// that wrote version 6 had the `recent` option).
pub const MIN_CHECKPOINT_FORMAT_VERSION: u32 = 4;

/// Chunk kind of a `CkTable`.
const CHUNK_TABLE: u8 = 0;
/// Chunk kind of the `CkMeta` chunk.
const CHUNK_META: u8 = 1;
/// Chunk kind of a `CkView` (some keys of one feature view).
const CHUNK_VIEW: u8 = 2;
/// Chunk kind of the log position the index chunks are exact as of (always written, once,
/// after every table and view chunk). See `index_checkpoint` for kinds 3–6.
pub(super) const CHUNK_INDEXES_AT: u8 = 3;
/// Chunk kind of one index's lists (row count, free ids, rows still to build, rebuild state).
pub(super) const CHUNK_INDEX: u8 = 4;
/// Chunk kind of some of one index's row keys, by row id.
pub(super) const CHUNK_INDEX_KEYS: u8 = 5;
/// Chunk kind of one framed chunk of one index's graph (`vectors/FORMAT.md`).
pub(super) const CHUNK_INDEX_GRAPH: u8 = 6;
/// Chunk kind of a `CkRecent` (some keys of one stream's recent-event rings).
const CHUNK_RECENT: u8 = 7;

/// One chunk of the payload (see [`CHECKPOINT_FORMAT_VERSION`]).
pub(super) type Chunk = rkyv::util::AlignedVec<16>;

/// Rows per checkpoint chunk in [`ShardState::to_checkpoint`] (the incremental
/// [`CheckpointBuilder`] takes its own step size). Bounds the size of one rkyv archive.
pub const CHECKPOINT_CHUNK_ROWS: usize = 16_384;

/// Most row bytes (keys plus values, approximately as archived) one
/// [`CheckpointBuilder::step`] archives, whatever its row count: a step ends after the row
/// that reaches it.
///
/// Why: the step's row count alone bounds time and memory only for small rows; a table of
/// `VECTOR(4096)` columns has rows of 16 KiB and more, so 4,096 rows would archive 64 MiB
/// (and hold the reactor for it) in one step. 1 MiB is about what 4,096 rows of ~250 bytes
/// take, the size steps were tuned for. What it costs: more, shorter steps (and chunks) for
/// states of large rows; one row larger than this is still archived whole.
pub const CHECKPOINT_STEP_BYTES: usize = 1 << 20;

const CHUNK_HEADER_LEN: usize = 16;

const HEADER_LEN: usize = 16;

// ---- checkpoint archive types (private mirror of the state; borrowed on write) ----

#[derive(rkyv::Archive, rkyv::Serialize)]
#[rkyv(bytecheck())]
enum CkValue<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Double(f64),
    Text(#[rkyv(with = InlineAsBox)] &'a str),
    Bytes(#[rkyv(with = InlineAsBox)] &'a [u8]),
    Timestamp(i64),
    /// Added in version 5, after the others so versions 4 and 5 archive the older variants
    /// identically (a version-4 checkpoint is a valid version-5 one without vectors).
    Vector(#[rkyv(with = InlineAsBox)] &'a [f32]),
}

#[derive(rkyv::Archive, rkyv::Serialize)]
#[rkyv(bytecheck())]
struct CkRow<'a> {
    #[rkyv(with = InlineAsBox)]
    key: &'a [u8],
    values: Vec<CkValue<'a>>,
}

#[derive(rkyv::Archive, rkyv::Serialize)]
#[rkyv(bytecheck())]
struct CkTable<'a> {
    table_id: u32,
    rows: Vec<CkRow<'a>>,
}

/// One prepared part: its id, participants, and its mutation as a log-record payload.
#[derive(rkyv::Archive, rkyv::Serialize)]
#[rkyv(bytecheck())]
struct CkPrepared {
    coordinator: u32,
    seq: u64,
    part_shards: Vec<u32>,
    part_seqs: Vec<u64>,
    record: Vec<u8>,
}

#[derive(rkyv::Archive, rkyv::Serialize)]
#[rkyv(bytecheck())]
struct CkProducer {
    id: u64,
    high: u64,
    seen_lo: u64,
    seen_hi: u64,
    tick: u64,
}

#[derive(rkyv::Archive, rkyv::Serialize)]
#[rkyv(bytecheck())]
struct CkStream {
    id: u32,
    events: u64,
    newest_event_time_us: i64,
    last_append_us: i64,
}

#[derive(rkyv::Archive, rkyv::Serialize)]
#[rkyv(bytecheck())]
struct CkViewCounters {
    id: u32,
    events: u64,
    late: u64,
}

/// One (view, key) window: the key, the LSN that last changed it, the window's encoding.
#[derive(rkyv::Archive, rkyv::Serialize)]
#[rkyv(bytecheck())]
struct CkViewKey<'a> {
    #[rkyv(with = InlineAsBox)]
    key: &'a [u8],
    last_lsn: u64,
    window: Vec<u8>,
}

#[derive(rkyv::Archive, rkyv::Serialize)]
#[rkyv(bytecheck())]
struct CkView<'a> {
    view_id: u32,
    keys: Vec<CkViewKey<'a>>,
}

/// One event of a ring: its order (event time, LSN, position in the record) and its row.
#[derive(rkyv::Archive, rkyv::Serialize)]
#[rkyv(bytecheck())]
struct CkRecentEvent<'a> {
    event_time_us: i64,
    lsn: u64,
    pos: u32,
    values: Vec<CkValue<'a>>,
}

/// One key's ring, events oldest first.
#[derive(rkyv::Archive, rkyv::Serialize)]
#[rkyv(bytecheck())]
struct CkRecentKey<'a> {
    #[rkyv(with = InlineAsBox)]
    key: &'a [u8],
    events: Vec<CkRecentEvent<'a>>,
}

#[derive(rkyv::Archive, rkyv::Serialize)]
#[rkyv(bytecheck())]
struct CkRecent<'a> {
    stream_id: u32,
    keys: Vec<CkRecentKey<'a>>,
}

#[derive(rkyv::Archive, rkyv::Serialize)]
#[rkyv(bytecheck())]
struct CkMeta {
    views: Vec<CkViewCounters>,
    hwm: Vec<u64>,
    stash: Vec<CkPrepared>,
    producers: Vec<CkProducer>,
    producer_tick: u64,
    streams: Vec<CkStream>,
}

fn corrupt(what: impl std::fmt::Display) -> CoreError {
    CoreError::Corrupt(format!("checkpoint: {what}"))
}

impl ShardState {
    /// The whole checkpoint payload in one step (tests, small states). The server uses
    /// [`ShardState::checkpoint_builder`] to spread the work over many short steps.
    pub fn to_checkpoint(&self) -> rkyv::util::AlignedVec<16> {
        let mut b = self.checkpoint_builder();
        while !b.step(self, CHECKPOINT_CHUNK_ROWS) {}
        let mut out = rkyv::util::AlignedVec::<16>::new();
        for part in b.finish() {
            out.extend_from_slice(&part);
        }
        out
    }

    /// Starts an incremental checkpoint: snapshots the list of (table, key) pairs now; each
    /// [`CheckpointBuilder::step`] then archives the *current* row of the next keys.
    ///
    /// The result is a *fuzzy* checkpoint: a row may include mutations applied after the
    /// builder was created. It is exact to restore it and replay the log from the LSN that was
    /// applied when the builder was created, because every table mutation is an idempotent
    /// overwrite (replace a row, set listed columns, delete a key): replaying a suffix of the
    /// mutation sequence over rows that already reflect part of that suffix gives the same
    /// rows. Keys inserted after the snapshot come back from that replay; keys deleted after it
    /// are skipped by `step` and deleted again by the replay.
    ///
    /// Feature-view windows are not idempotent (an aggregate counts an event once); each key's
    /// window is archived with the LSN of the last record applied to it, and replay skips,
    /// for that key, the records up to that LSN. Counters (per stream, per view) are archived
    /// exactly as of the builder's creation, in the meta chunk, and replay brings them
    /// forward.
    ///
    /// The multi-shard bookkeeping (high-water marks, parts set aside) is captured exactly,
    /// as of the builder's creation.
    pub fn checkpoint_builder(&self) -> CheckpointBuilder {
        let view_keys: usize = self.views.values().map(|v| v.keys.len()).sum();
        let ring_keys: usize = self.recent.values().map(|r| r.keys.len()).sum();
        let mut keys = Vec::with_capacity(self.total_rows() as usize + view_keys + ring_keys);
        for (&id, table) in &self.tables {
            keys.extend(table.rows.keys().map(|k| (id, k.clone())));
        }
        // Table and view ids come from one catalog id space, so an id names one or the other
        // (`CheckpointBuilder::step` looks an id up as a table first).
        assert!(
            self.views.keys().all(|id| !self.tables.contains_key(id))
                && (self.recent.keys())
                    .all(|id| !self.tables.contains_key(id) && !self.views.contains_key(id)),
            "a catalog id names one object"
        );
        for (&id, view) in &self.views {
            keys.extend(view.keys.keys().map(|k| (id, k.clone())));
        }
        for (&id, rings) in &self.recent {
            keys.extend(rings.keys.keys().map(|k| (id, k.clone())));
        }
        let mut header = rkyv::util::AlignedVec::<16>::new();
        header.extend_from_slice(&CHECKPOINT_MAGIC);
        header.extend_from_slice(&CHECKPOINT_FORMAT_VERSION.to_le_bytes());
        header.extend_from_slice(&[0u8; 4]);
        let meta = self.meta();
        CheckpointBuilder {
            keys,
            pos: 0,
            parts: vec![header, chunk(CHUNK_META, &meta)],
            indexes: None,
        }
    }

    /// The meta chunk's content: counters, producer windows and multi-shard bookkeeping,
    /// exactly as they are now.
    fn meta(&self) -> CkMeta {
        let (producers, producer_tick) = self.producers.export();
        let mut streams: Vec<CkStream> = self
            .streams
            .iter()
            .map(|(id, c)| CkStream {
                id: *id,
                events: c.events,
                newest_event_time_us: c.newest_event_time_us,
                last_append_us: c.last_append_us,
            })
            .collect();
        streams.sort_unstable_by_key(|s| s.id);
        let mut views: Vec<CkViewCounters> = self
            .views
            .iter()
            .map(|(id, v)| CkViewCounters {
                id: *id,
                events: v.counters.events,
                late: v.counters.late,
            })
            .collect();
        views.sort_unstable_by_key(|v| v.id);
        CkMeta {
            views,
            producers: producers
                .into_iter()
                .map(|(id, w)| CkProducer {
                    id,
                    high: w.high,
                    seen_lo: w.seen as u64,
                    seen_hi: (w.seen >> 64) as u64,
                    tick: w.tick,
                })
                .collect(),
            producer_tick,
            streams,
            hwm: self.txns.hwm.clone(),
            stash: self
                .txns
                .stash
                .iter()
                .map(|(id, p)| CkPrepared {
                    coordinator: id.coordinator,
                    seq: id.seq,
                    part_shards: p.txn.parts.iter().map(|&(s, _)| s).collect(),
                    part_seqs: p.txn.parts.iter().map(|&(_, q)| q).collect(),
                    record: record::encode_to_vec(&p.mutation),
                })
                .collect(),
        }
    }

    /// Rebuilds a state from a checkpoint payload (16-byte aligned, as storage maps it).
    /// The archive is validated with bytecheck; a bad header, a failed validation, duplicate
    /// tables or keys, or rows whose width or value types disagree with the table's definition
    /// are [`CoreError::Corrupt`]. Rows of tables missing from `catalog` (dropped) are skipped.
    pub fn from_checkpoint(bytes: &[u8], catalog: &Catalog) -> Result<ShardState, CoreError> {
        let version = check_header(bytes)?;
        let mut pos = HEADER_LEN;
        let mut state = ShardState::new();
        let mut indexes = IndexesLoad::default();
        if bytes.len() == HEADER_LEN {
            return Err(corrupt("the meta chunk is missing"));
        }
        while pos < bytes.len() {
            let (kind, body, next) = next_chunk(bytes, pos)?;
            let first = pos == HEADER_LEN;
            match (kind, first) {
                (CHUNK_META, true) => meta_into(&mut state, catalog, body, pos)?,
                (CHUNK_TABLE, false) => table_chunk_into(&mut state, catalog, body, pos)?,
                (CHUNK_VIEW, false) => view_chunk_into(&mut state, catalog, body, pos)?,
                (CHUNK_RECENT, false) if version >= 7 => {
                    recent_chunk_into(&mut state, catalog, body, pos)?
                }
                (CHUNK_INDEXES_AT..=CHUNK_INDEX_GRAPH, false) => {
                    indexes.chunk(catalog, kind, body, pos)?
                }
                (CHUNK_META, false) => {
                    return Err(corrupt(format_args!(
                        "chunk at offset {pos}: a second meta chunk"
                    )))
                }
                (CHUNK_TABLE | CHUNK_INDEXES_AT..=CHUNK_INDEX_GRAPH, true) => {
                    return Err(corrupt("the first chunk is not the meta chunk"));
                }
                (k, _) => {
                    return Err(corrupt(format_args!(
                        "chunk at offset {pos}: unknown chunk kind {k}"
                    )))
                }
            }
            assert!(next > pos, "every chunk advances the position");
            pos = next;
        }
        indexes.finish(&mut state, version >= 6)?;
        Ok(state)
    }
}

/// The payload header: length, magic, version.
fn check_header(bytes: &[u8]) -> Result<u32, CoreError> {
    if bytes.len() < HEADER_LEN {
        return Err(corrupt(format_args!(
            "{} bytes is shorter than the header",
            bytes.len()
        )));
    }
    if bytes[..8] != CHECKPOINT_MAGIC {
        return Err(corrupt("bad magic"));
    }
    let version = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
    if !(MIN_CHECKPOINT_FORMAT_VERSION..=CHECKPOINT_FORMAT_VERSION).contains(&version) {
        return Err(corrupt(format_args!(
            "unsupported format version {version} (this build reads \
             {MIN_CHECKPOINT_FORMAT_VERSION}..={CHECKPOINT_FORMAT_VERSION})"
        )));
    }
    Ok(version)
}

/// The chunk at `pos`: its kind, its archive bytes (16-byte aligned) and the position of the
/// next chunk. Header, length, padding and alignment are checked.
fn next_chunk(bytes: &[u8], pos: usize) -> Result<(u8, &[u8], usize), CoreError> {
    let header = bytes
        .get(pos..pos + CHUNK_HEADER_LEN)
        .ok_or_else(|| corrupt(format_args!("truncated chunk header at offset {pos}")))?;
    let len = u64::from_le_bytes(header[..8].try_into().expect("8 bytes"));
    let kind = header[8];
    if header[9..].iter().any(|&b| b != 0) {
        return Err(corrupt(format_args!(
            "chunk at offset {pos}: reserved bytes are not zero"
        )));
    }
    let start = pos + CHUNK_HEADER_LEN;
    let end = usize::try_from(len)
        .ok()
        .and_then(|l| start.checked_add(l))
        .filter(|&e| e <= bytes.len())
        .ok_or_else(|| {
            corrupt(format_args!(
                "chunk at offset {pos}: length {len} runs past the end"
            ))
        })?;
    let padded = start + (end - start).next_multiple_of(16);
    if padded > bytes.len() || bytes[end..padded].iter().any(|&b| b != 0) {
        return Err(corrupt(format_args!("chunk at offset {pos}: bad padding")));
    }
    let body = &bytes[start..end];
    if !(body.as_ptr() as usize).is_multiple_of(16) {
        return Err(corrupt("payload is not 16-byte aligned"));
    }
    Ok((kind, body, padded))
}

/// Validates one table chunk and installs its rows (skipped if the table was dropped): every
/// row as wide as the table, every value of its column's type, no key twice.
fn table_chunk_into(
    state: &mut ShardState,
    catalog: &Catalog,
    body: &[u8],
    pos: usize,
) -> Result<(), CoreError> {
    let t = rkyv::access::<ArchivedCkTable<'static>, rancor::Error>(body)
        .map_err(|e| corrupt(format_args!("chunk at offset {pos}: invalid archive: {e}")))?;
    let id = t.table_id.to_native();
    let Some(def) = catalog.table_by_id(id) else {
        return Ok(()); // dropped since the checkpoint
    };
    let table = state.tables.entry(id).or_default();
    table.rows.reserve(t.rows.len());
    for row in t.rows.iter() {
        if row.values.len() != def.columns.len() {
            return Err(corrupt(format_args!(
                "table {id}: row has {} values, the table has {} columns",
                row.values.len(),
                def.columns.len()
            )));
        }
        let mut vals = Vec::with_capacity(row.values.len());
        for (v, col) in row.values.iter().zip(&def.columns) {
            let v = value_from(v);
            if let Some(t) = v.column_type() {
                if t != col.ty {
                    return Err(corrupt(format_args!(
                        "table {id}, column \"{}\": {t} value in a {} column",
                        col.name, col.ty
                    )));
                }
            }
            vals.push(v);
        }
        let key: &[u8] = &row.key;
        if table
            .rows
            .insert(Rc::from(key), vals.into_boxed_slice())
            .is_some()
        {
            return Err(corrupt(format_args!("table {id}: duplicate key")));
        }
    }
    Ok(())
}

/// One chunk: 16-byte header (length, kind) + rkyv archive + zero padding to 16 bytes.
pub(super) fn chunk<T>(kind: u8, value: &T) -> rkyv::util::AlignedVec<16>
where
    T: for<'a> rkyv::Serialize<
        rkyv::api::high::HighSerializer<
            rkyv::util::AlignedVec<16>,
            rkyv::ser::allocator::ArenaHandle<'a>,
            rancor::Error,
        >,
    >,
{
    let mut part = rkyv::util::AlignedVec::<16>::new();
    part.extend_from_slice(&[0u8; CHUNK_HEADER_LEN]);
    let mut part = rkyv::api::high::to_bytes_in::<_, rancor::Error>(value, part)
        .expect("checkpoint serialization cannot fail in memory");
    let len = (part.len() - CHUNK_HEADER_LEN) as u64;
    part[..8].copy_from_slice(&len.to_le_bytes());
    part[8] = kind;
    let pad = part.len().next_multiple_of(16) - part.len();
    part.extend_from_slice(&[0u8; 16][..pad]);
    debug_assert_eq!(part.len() % 16, 0);
    part
}

/// Validates the meta chunk at `pos` and installs it in `state`.
fn meta_into(
    state: &mut ShardState,
    catalog: &Catalog,
    body: &[u8],
    pos: usize,
) -> Result<(), CoreError> {
    let t = rkyv::access::<ArchivedCkMeta, rancor::Error>(body).map_err(|e| {
        corrupt(format_args!(
            "meta chunk at offset {pos}: invalid archive: {e}"
        ))
    })?;
    let producers = t
        .producers
        .iter()
        .map(|p| {
            (
                p.id.to_native(),
                Window {
                    high: p.high.to_native(),
                    seen: u128::from(p.seen_lo.to_native())
                        | (u128::from(p.seen_hi.to_native()) << 64),
                    tick: p.tick.to_native(),
                },
            )
        })
        .collect();
    state.producers = ProducerTable::import(producers, t.producer_tick.to_native())
        .map_err(|e| corrupt(format_args!("meta chunk: {e}")))?;
    for s in t.streams.iter() {
        let c = StreamCounters {
            events: s.events.to_native(),
            newest_event_time_us: s.newest_event_time_us.to_native(),
            last_append_us: s.last_append_us.to_native(),
        };
        if state.streams.insert(s.id.to_native(), c).is_some() {
            return Err(corrupt("meta chunk: a stream appears twice"));
        }
    }
    for v in t.views.iter() {
        // Counters only; windows come in view chunks. A dropped view's counters are dropped.
        let id = v.id.to_native();
        let counters = ViewCounters {
            events: v.events.to_native(),
            late: v.late.to_native(),
        };
        let Some(view) = catalog.view_by_id(id) else {
            continue;
        };
        let Some(stream) = catalog.stream_by_id(view.stream_id) else {
            return Err(corrupt(format_args!("view {id}: its stream is missing")));
        };
        let mut vs = ViewState::new(view, stream);
        vs.counters = counters;
        if state.views.insert(id, vs).is_some() {
            return Err(corrupt("meta chunk: a view appears twice"));
        }
    }
    state.txns = txns_from(t)?;
    Ok(())
}

/// Validates one view chunk and installs its windows (skipped if the view was dropped).
fn view_chunk_into(
    state: &mut ShardState,
    catalog: &Catalog,
    body: &[u8],
    pos: usize,
) -> Result<(), CoreError> {
    let t = rkyv::access::<ArchivedCkView<'static>, rancor::Error>(body).map_err(|e| {
        corrupt(format_args!(
            "view chunk at offset {pos}: invalid archive: {e}"
        ))
    })?;
    let id = t.view_id.to_native();
    let Some(view) = catalog.view_by_id(id) else {
        return Ok(());
    };
    let Some(stream) = catalog.stream_by_id(view.stream_id) else {
        return Err(corrupt(format_args!("view {id}: its stream is missing")));
    };
    let vs = state
        .views
        .entry(id)
        .or_insert_with(|| ViewState::new(view, stream));
    for k in t.keys.iter() {
        let win = WindowState::decode(&vs.specs, &k.window)
            .map_err(|e| corrupt(format_args!("view {id}: window: {e}")))?;
        let last_lsn = k.last_lsn.to_native();
        let key: &[u8] = &k.key;
        let kw = KeyWindow {
            last_lsn,
            skip_until: last_lsn,
            win,
        };
        if vs.keys.insert(Rc::from(key), kw).is_some() {
            return Err(corrupt(format_args!("view {id}: duplicate key")));
        }
    }
    Ok(())
}

/// Validates one recent-events chunk and installs its rings (skipped if the stream was
/// dropped): every row as wide as the stream with values of its columns' types, events
/// strictly ascending, at most the stream's `recent` per key, no key twice.
fn recent_chunk_into(
    state: &mut ShardState,
    catalog: &Catalog,
    body: &[u8],
    pos: usize,
) -> Result<(), CoreError> {
    let t = rkyv::access::<ArchivedCkRecent<'static>, rancor::Error>(body).map_err(|e| {
        corrupt(format_args!(
            "recent-events chunk at offset {pos}: invalid archive: {e}"
        ))
    })?;
    let id = t.stream_id.to_native();
    let Some(def) = catalog.stream_by_id(id) else {
        return Ok(()); // dropped since the checkpoint
    };
    if def.recent == 0 {
        return Err(corrupt(format_args!(
            "stream {id}: recent events of a stream that keeps none"
        )));
    }
    let rings = state
        .recent
        .entry(id)
        .or_insert_with(|| RecentState::new(def.recent));
    for k in t.keys.iter() {
        let bad = |why: &str| corrupt(format_args!("stream {id}: recent events: {why}"));
        if k.events.len() > def.recent as usize {
            return Err(bad("more events in a ring than the stream keeps"));
        }
        let mut ring = Ring::default();
        for e in k.events.iter() {
            let row = stream_row(def, &e.values).map_err(|why| bad(&why))?;
            let order = (
                e.event_time_us.to_native(),
                e.lsn.to_native(),
                e.pos.to_native(),
            );
            if ring.events.last().is_some_and(|last| last.order >= order) {
                return Err(bad("ring not in ascending order"));
            }
            ring.events.push(RecentEvent { order, row });
        }
        let key: &[u8] = &k.key;
        if rings.keys.insert(Rc::from(key), ring).is_some() {
            return Err(bad("duplicate key"));
        }
    }
    Ok(())
}

/// An archived event row checked against its stream: as wide, values of the columns' types.
fn stream_row(
    def: &crate::schema::StreamDef,
    values: &rkyv::vec::ArchivedVec<ArchivedCkValue<'_>>,
) -> Result<Box<[Value]>, String> {
    if values.len() != def.columns.len() {
        return Err(format!(
            "a row has {} values, the stream has {} columns",
            values.len(),
            def.columns.len()
        ));
    }
    let mut row = Vec::with_capacity(values.len());
    for (v, col) in values.iter().zip(&def.columns) {
        let v = value_from(v);
        if let Some(t) = v.column_type() {
            if t != col.ty {
                return Err(format!("{t} value in {} column \"{}\"", col.ty, col.name));
            }
        }
        row.push(v);
    }
    Ok(row.into_boxed_slice())
}

/// Rebuilds the multi-shard bookkeeping of a meta chunk.
fn txns_from(t: &ArchivedCkMeta) -> Result<TxnState, CoreError> {
    let mut txns = TxnState {
        hwm: t.hwm.iter().map(|h| h.to_native()).collect(),
        ..TxnState::default()
    };
    for p in t.stash.iter() {
        let id = TxnId {
            coordinator: p.coordinator.to_native(),
            seq: p.seq.to_native(),
        };
        if p.part_shards.len() != p.part_seqs.len() || p.part_shards.len() < 2 {
            return Err(corrupt(format_args!(
                "meta chunk: part {}:{} has a bad participant list",
                id.coordinator, id.seq
            )));
        }
        let parts: Vec<(u32, u64)> = p
            .part_shards
            .iter()
            .zip(p.part_seqs.iter())
            .map(|(s, q)| (s.to_native(), q.to_native()))
            .collect();
        let mutation = record::decode(&p.record).map_err(|e| {
            corrupt(format_args!(
                "meta chunk: part {}:{}: {e}",
                id.coordinator, id.seq
            ))
        })?;
        if id.seq > txns.hwm(id.coordinator) {
            return Err(corrupt(format_args!(
                "meta chunk: part {}:{} is above its link's high-water mark",
                id.coordinator, id.seq
            )));
        }
        let txn = TxnPart {
            coordinator: id.coordinator,
            parts,
        };
        if txns.stash.insert(id, Prepared { txn, mutation }).is_some() {
            return Err(corrupt(format_args!(
                "meta chunk: part {}:{} appears twice",
                id.coordinator, id.seq
            )));
        }
    }
    Ok(txns)
}

fn ck_value(v: &Value) -> CkValue<'_> {
    match v {
        Value::Null => CkValue::Null,
        Value::Bool(b) => CkValue::Bool(*b),
        Value::Int(i) => CkValue::Int(*i),
        Value::Double(d) => CkValue::Double(*d),
        Value::Text(s) => CkValue::Text(s),
        Value::Bytes(b) => CkValue::Bytes(b),
        Value::Timestamp(t) => CkValue::Timestamp(*t),
        Value::Vector(v) => CkValue::Vector(v),
    }
}

/// One key's ring as archived.
fn ck_ring<'a>(key: &'a [u8], ring: &'a Ring) -> CkRecentKey<'a> {
    CkRecentKey {
        key,
        events: (ring.events.iter())
            .map(|e| CkRecentEvent {
                event_time_us: e.order.0,
                lsn: e.order.1,
                pos: e.order.2,
                values: e.row.iter().map(ck_value).collect(),
            })
            .collect(),
    }
}

/// Approximate archived size of a value, for [`CHECKPOINT_STEP_BYTES`].
fn value_bytes(v: &Value) -> usize {
    match v {
        Value::Null | Value::Bool(_) => 1,
        Value::Int(_) | Value::Double(_) | Value::Timestamp(_) => 8,
        Value::Text(s) => 8 + s.len(),
        Value::Bytes(b) => 8 + b.len(),
        Value::Vector(x) => 8 + 4 * x.len(),
    }
}

fn value_from(v: &ArchivedCkValue<'_>) -> Value {
    match v {
        ArchivedCkValue::Null => Value::Null,
        ArchivedCkValue::Bool(b) => Value::Bool(*b),
        ArchivedCkValue::Int(i) => Value::Int(i.to_native()),
        ArchivedCkValue::Double(d) => Value::Double(d.to_native()),
        ArchivedCkValue::Text(s) => Value::Text(s.as_ref().to_owned()),
        ArchivedCkValue::Bytes(b) => Value::Bytes(b.as_ref().to_vec()),
        ArchivedCkValue::Timestamp(t) => Value::Timestamp(t.to_native()),
        ArchivedCkValue::Vector(v) => Value::Vector(v.iter().map(|x| x.to_native()).collect()),
    }
}

/// An incremental checkpoint in progress; see [`ShardState::checkpoint_builder`].
pub struct CheckpointBuilder {
    /// The (table id, key) pairs that existed when the checkpoint started.
    keys: Vec<(u32, Rc<[u8]>)>,
    /// The indexes, taken when every key was visited; written after the rows.
    indexes: Option<IndexesSnapshot>,
    /// Next index into `keys`.
    pos: usize,
    /// The payload so far, as parts to be written back to back: the header, then one part
    /// per chunk. Every part's length is a multiple of 16, so archives stay aligned. Parts,
    /// not one growing buffer: regrowing a buffer of a large state copies all of it.
    parts: Vec<rkyv::util::AlignedVec<16>>,
}

impl CheckpointBuilder {
    /// Archives the current rows of up to `max_rows` more snapshot keys (keys deleted since the
    /// snapshot are skipped); once every key was visited, takes the indexes as of the last
    /// record applied (`index_checkpoint`: exactly, not fuzzily) and then writes one index
    /// chunk per step. Returns true when everything is written.
    pub fn step(&mut self, state: &ShardState, max_rows: usize) -> bool {
        if self.pos == self.keys.len() {
            return self.index_step(state);
        }
        self.row_step(state, max_rows);
        false
    }

    fn index_step(&mut self, state: &ShardState) -> bool {
        match &mut self.indexes {
            None => {
                let (at, snap) = state.indexes.snapshot(state.applied_lsn());
                self.parts.push(at);
                self.indexes = Some(snap);
                false
            }
            Some(snap) => snap.step(&mut self.parts),
        }
    }

    fn row_step(&mut self, state: &ShardState, max_rows: usize) {
        assert!(max_rows > 0, "a step must make progress");
        let end = self.step_end(state, max_rows);
        assert!(end > self.pos || self.pos == self.keys.len());
        let mut i = self.pos;
        while i < end {
            // One chunk per run of keys of the same table.
            let id = self.keys[i].0;
            let run_end = i + self.keys[i..end]
                .iter()
                .take_while(|(t, _)| *t == id)
                .count();
            if let Some(table) = state.tables.get(&id) {
                let rows: Vec<CkRow<'_>> = self.keys[i..run_end]
                    .iter()
                    .filter_map(|(_, k)| {
                        table.rows.get(&**k).map(|vals| CkRow {
                            key: k,
                            values: vals.iter().map(ck_value).collect(),
                        })
                    })
                    .collect();
                if !rows.is_empty() {
                    self.parts
                        .push(chunk(CHUNK_TABLE, &CkTable { table_id: id, rows }));
                }
            } else if let Some(rings) = state.recent.get(&id) {
                let keys: Vec<CkRecentKey<'_>> = self.keys[i..run_end]
                    .iter()
                    .filter_map(|(_, k)| rings.keys.get(&**k).map(|r| ck_ring(k, r)))
                    .collect();
                if !keys.is_empty() {
                    let ck = CkRecent {
                        stream_id: id,
                        keys,
                    };
                    self.parts.push(chunk(CHUNK_RECENT, &ck));
                }
            } else if let Some(view) = state.views.get(&id) {
                let keys: Vec<CkViewKey<'_>> = self.keys[i..run_end]
                    .iter()
                    .filter_map(|(_, k)| {
                        view.keys.get(&**k).map(|kw| {
                            let mut window = Vec::new();
                            kw.win.encode(&mut window);
                            CkViewKey {
                                key: k,
                                last_lsn: kw.last_lsn,
                                window,
                            }
                        })
                    })
                    .collect();
                if !keys.is_empty() {
                    self.parts
                        .push(chunk(CHUNK_VIEW, &CkView { view_id: id, keys }));
                }
            }
            i = run_end;
        }
        self.pos = end;
    }

    /// Where the next step ends: after `max_rows` keys or after the key whose row reaches
    /// [`CHECKPOINT_STEP_BYTES`], whichever comes first.
    fn step_end(&self, state: &ShardState, max_rows: usize) -> usize {
        let limit = self.keys.len().min(self.pos.saturating_add(max_rows));
        let mut bytes = 0usize;
        let mut end = self.pos;
        while end < limit && bytes < CHECKPOINT_STEP_BYTES {
            let (id, key) = &self.keys[end];
            bytes += key.len();
            if let Some(row) = state.tables.get(id).and_then(|t| t.rows.get(&**key)) {
                bytes += row.iter().map(value_bytes).sum::<usize>();
            } else if let Some(ring) = state.recent.get(id).and_then(|r| r.keys.get(&**key)) {
                bytes += (ring.events.iter())
                    .map(|e| 24 + e.row.iter().map(value_bytes).sum::<usize>())
                    .sum::<usize>();
            }
            end += 1;
        }
        end
    }

    /// Rows still to visit.
    pub fn remaining(&self) -> usize {
        self.keys.len() - self.pos
    }

    /// The finished payload, as parts to write back to back. Call after
    /// [`CheckpointBuilder::step`] returned true.
    pub fn finish(self) -> Vec<rkyv::util::AlignedVec<16>> {
        assert_eq!(
            self.pos,
            self.keys.len(),
            "checkpoint finished before every key was visited"
        );
        assert!(
            self.indexes.as_ref().is_some_and(|s| s.is_done()),
            "checkpoint finished before every index was written"
        );
        self.parts
    }
}
