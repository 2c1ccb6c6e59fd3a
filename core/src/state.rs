//! One shard's in-memory state and its checkpoint payload.

use std::collections::HashMap;
use std::rc::Rc;

use rkyv::rancor;
use rkyv::with::InlineAsBox;
use tarn_types::Value;

use crate::batch::UpsertMode;
use crate::catalog::Catalog;
use crate::producer::{ProducerTable, Window};
use crate::record::{self, Events, Mutation, Record, TxnId, TxnPart, HOME_TARGET};
use crate::txn::{Prepared, TxnState};
use crate::view::{AggFunc, ViewDef, WindowSpec};
use crate::CoreError;
use tarn_features::{AggKind, AggSpec, WindowState};

type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Magic at the start of a checkpoint payload.
pub const CHECKPOINT_MAGIC: [u8; 8] = *b"TARNCKPT";

/// Checkpoint payload format. Layout: 8-byte [`CHECKPOINT_MAGIC`], u32 LE format version,
/// 4 reserved zero bytes, then a sequence of chunks, each
///
/// ```text
/// +----------------+---------+-----------------+--------------------------+-------------+
/// | len: u64 LE    | kind: u8| reserved: 7 × 0 | rkyv archive             | zero pad to |
/// | (archive bytes)|         |                 | (CkTxns or one CkTable)  | 16 bytes    |
/// +----------------+---------+-----------------+--------------------------+-------------+
/// ```
///
/// so every archive starts 16-byte aligned when the payload does. The first chunk is the one
/// kind-1 chunk: a `CkMeta` (multi-shard batch bookkeeping, see [`crate::txn`]; producer
/// windows, see [`crate::producer`]; per-stream counters). Every other chunk is kind 0: a
/// `CkTable` with some of one table's rows. A table's rows may span several chunks; a key
/// appears at most once. Bumped on any change of the layout or the archived types; the version
/// is read before anything else, so an old reader rejects a new checkpoint cleanly. (Version 1
/// was a single archive of all tables; version 2 had no meta chunk; version 3's meta chunk had
/// no producers or streams.)
pub const CHECKPOINT_FORMAT_VERSION: u32 = 4;

/// Chunk kind of a `CkTable`.
const CHUNK_TABLE: u8 = 0;
/// Chunk kind of the `CkMeta` chunk.
const CHUNK_META: u8 = 1;
/// Chunk kind of a `CkView` (some keys of one feature view).
const CHUNK_VIEW: u8 = 2;

/// Rows per checkpoint chunk in [`ShardState::to_checkpoint`] (the incremental
/// [`CheckpointBuilder`] takes its own step size). Bounds the size of one rkyv archive.
pub const CHECKPOINT_CHUNK_ROWS: usize = 16_384;

const CHUNK_HEADER_LEN: usize = 16;

const HEADER_LEN: usize = 16;

/// Rows of one table on this shard: canonical key bytes → full row in column order.
#[derive(Clone, Debug, Default, PartialEq)]
struct Table {
    /// Keys are reference-counted so a checkpoint can snapshot the key list with refcount
    /// bumps instead of copying every key (that copy was the longest checkpoint pause).
    rows: FastMap<Rc<[u8]>, Box<[Value]>>,
}

/// Everything one shard owns: for each table id, its rows keyed by canonical key bytes.
/// Single-threaded; no interior mutability. Equality compares contents.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ShardState {
    tables: FastMap<u32, Table>,
    txns: TxnState,
    producers: ProducerTable,
    streams: FastMap<u32, StreamCounters>,
    views: FastMap<u32, ViewState>,
}

/// One feature view's state on this shard: a window per key this shard owns.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ViewState {
    /// The aggregate kernels' specs, from the view definition (views never change).
    specs: Rc<[AggSpec]>,
    keys: FastMap<Rc<[u8]>, KeyWindow>,
    counters: ViewCounters,
}

/// One (view, key): its window and the log position that last changed it.
#[derive(Clone, Debug, PartialEq)]
struct KeyWindow {
    /// LSN of the last record applied to this window (0 for applies without an LSN).
    last_lsn: u64,
    /// Set only when restored from a fuzzy checkpoint: records with an LSN up to this one are
    /// already in `win`, so replay skips them for this key.
    skip_until: u64,
    win: WindowState,
}

/// Counters of one feature view on this shard.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ViewCounters {
    /// Events applied to a window.
    pub events: u64,
    /// Events dropped because their bucket had already left the window when they arrived.
    pub late: u64,
}

/// What a shard keeps in memory about a stream whose events it is the home of.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StreamCounters {
    /// Events appended here.
    pub events: u64,
    /// Largest event time appended here (µs; `i64::MIN` when none).
    pub newest_event_time_us: i64,
    /// Append time of the last events appended here (µs; 0 when none).
    pub last_append_us: i64,
}

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

/// A key either borrowed from a `&Mutation` or moved out of an owned one.
enum KeyRef<'a> {
    Borrowed(&'a Vec<u8>),
    Owned(Vec<u8>),
}

impl KeyRef<'_> {
    fn as_slice(&self) -> &[u8] {
        match self {
            KeyRef::Borrowed(k) => k,
            KeyRef::Owned(k) => k,
        }
    }
    fn into_owned(self) -> Vec<u8> {
        match self {
            KeyRef::Borrowed(k) => k.clone(),
            KeyRef::Owned(k) => k,
        }
    }
}

fn corrupt(what: impl std::fmt::Display) -> CoreError {
    CoreError::Corrupt(format!("checkpoint: {what}"))
}

impl ShardState {
    /// An empty state.
    pub fn new() -> Self {
        ShardState::default()
    }

    /// Applies a decoded mutation. Records for a table id the catalog does not have (dropped,
    /// or never created) are skipped and count 0. Returns rows applied (upsert) or rows that
    /// existed and were deleted (delete). Column indices beyond the table's width are ignored
    /// (cannot happen for validated batches). Deterministic: same mutations, same state.
    ///
    /// Values and new keys are cloned out of `m` (replay decodes into a temporary anyway, so
    /// prefer [`ShardState::apply_owned`] there and on the live write path: it moves them).
    pub fn apply(&mut self, catalog: &Catalog, m: &Mutation) -> u64 {
        match m {
            Mutation::Upsert {
                table_id,
                mode,
                column_idx,
                rows,
            } => self.upsert(
                catalog,
                *table_id,
                *mode,
                column_idx,
                rows.iter()
                    .map(|(k, v)| (KeyRef::Borrowed(k), v.iter().cloned())),
            ),
            Mutation::Delete { table_id, keys } => self.delete(catalog, *table_id, keys),
            Mutation::Events(e) => self.append_events(catalog, 0, e),
        }
    }

    /// [`ShardState::apply`] taking the mutation by value: keys and values are moved into the
    /// state, no per-value clone. Same result as `apply(catalog, &m)`.
    pub fn apply_owned(&mut self, catalog: &Catalog, m: Mutation) -> u64 {
        self.apply_owned_at(catalog, 0, m)
    }

    /// [`ShardState::apply_owned`] of the record at log position `lsn` (0 = none). Feature
    /// views tag each key's window with the LSN that last changed it, which is what makes a
    /// fuzzy checkpoint plus replay exact for them (see [`ShardState::checkpoint_builder`]).
    pub fn apply_owned_at(&mut self, catalog: &Catalog, lsn: u64, m: Mutation) -> u64 {
        if let Mutation::Events(e) = &m {
            return self.append_events(catalog, lsn, e);
        }
        self.apply_table_mutation(catalog, m)
    }

    fn apply_table_mutation(&mut self, catalog: &Catalog, m: Mutation) -> u64 {
        match m {
            Mutation::Upsert {
                table_id,
                mode,
                column_idx,
                rows,
            } => self.upsert(
                catalog,
                table_id,
                mode,
                &column_idx,
                rows.into_iter()
                    .map(|(k, v)| (KeyRef::Owned(k), v.into_iter())),
            ),
            Mutation::Delete { table_id, keys } => self.delete(catalog, table_id, &keys),
            Mutation::Events(_) => unreachable!("events are applied by append_events"),
        }
    }

    /// Applies an Events part: the home copy (counters; the rows themselves stay in the log)
    /// and every feature view it targets. A producer-tagged part seen before is a duplicate:
    /// nothing is applied and 0 is returned; otherwise the number of rows.
    fn append_events(&mut self, catalog: &Catalog, lsn: u64, e: &Events) -> u64 {
        let Some(def) = catalog.stream_by_id(e.stream_id) else {
            return 0;
        };
        if e.duplicate {
            return 0;
        }
        for (i, &target) in e.targets.iter().enumerate() {
            let bit = 1u64 << i;
            let rows = e.rows.iter().filter(|(m, _)| m & bit != 0).map(|(_, r)| r);
            if target == HOME_TARGET {
                let c = self.streams.entry(e.stream_id).or_insert(StreamCounters {
                    newest_event_time_us: i64::MIN,
                    ..StreamCounters::default()
                });
                c.last_append_us = c.last_append_us.max(e.append_time_us);
                for r in rows {
                    c.events += 1;
                    if let Some(Value::Timestamp(t)) = r.get(def.event_time) {
                        c.newest_event_time_us = c.newest_event_time_us.max(*t);
                    }
                }
            } else if let Some(view) = catalog.view_by_id(target) {
                let vs = self
                    .views
                    .entry(target)
                    .or_insert_with(|| ViewState::new(view, def));
                for r in rows {
                    vs.apply(view, def, lsn, e.append_time_us, r);
                }
            }
        }
        e.rows.len() as u64
    }

    /// Reads one key of a feature view as of time `as_of_us` (the window ending in the bucket
    /// of `as_of_us`; lifetime views: everything). Returns the aggregates' values (their empty
    /// values for an unknown key) and the newest event time held for the key.
    pub fn read_view(
        &self,
        view: &ViewDef,
        stream: &crate::schema::StreamDef,
        key: &[u8],
        as_of_us: i64,
    ) -> (Vec<Value>, Option<i64>) {
        match self.views.get(&view.id) {
            Some(vs) => vs.read(view, key, as_of_us),
            None => ViewState::new(view, stream).read(view, key, as_of_us),
        }
    }

    /// Counters of a feature view on this shard.
    pub fn view_counters(&self, view_id: u32) -> Option<ViewCounters> {
        self.views.get(&view_id).map(|v| v.counters)
    }

    /// Keys of a feature view held on this shard, and the heap bytes of their windows.
    pub fn view_memory(&self, view_id: u32) -> (usize, usize) {
        self.views.get(&view_id).map_or((0, 0), |v| {
            (
                v.keys.len(),
                v.keys.values().map(|k| k.win.heap_bytes()).sum(),
            )
        })
    }

    /// Forgets a dropped feature view.
    pub fn drop_view(&mut self, view_id: u32) {
        self.views.remove(&view_id);
    }

    /// Counters of the streams whose events this shard is the home of.
    pub fn stream_counters(&self, stream_id: u32) -> Option<StreamCounters> {
        self.streams.get(&stream_id).copied()
    }

    /// The latest append time of any events held here (µs; 0 when none): a restarted shard
    /// never stamps earlier than this, even if the clock went backwards.
    pub fn max_append_time_us(&self) -> i64 {
        self.streams
            .values()
            .map(|c| c.last_append_us)
            .max()
            .unwrap_or(0)
    }

    /// Producers whose tags this shard remembers.
    pub fn producer_count(&self) -> usize {
        self.producers.len()
    }

    /// Forgets a dropped stream's counters.
    ///
    /// (Its views are dropped first: the catalog refuses to drop a stream with views.)
    pub fn drop_stream(&mut self, stream_id: u32) {
        self.streams.remove(&stream_id);
    }

    /// Applies one log record on shard `shard` (the shard whose log it is):
    /// [`Record::Apply`] as [`ShardState::apply_owned`]; [`Record::Prepare`] sets the part
    /// aside and raises the coordinator's high-water mark; [`Record::Commit`] applies the part
    /// set aside; [`Record::Abort`] forgets it. Returns the rows applied (0 for Prepare and
    /// Abort).
    ///
    /// A record that contradicts the state — a Prepare that is not the next seq of its link,
    /// is already set aside, or does not list `shard`; a Commit/Abort of a part that is not set
    /// aside — is [`CoreError::Corrupt`] and changes nothing.
    pub fn apply_record(
        &mut self,
        catalog: &Catalog,
        shard: u32,
        lsn: u64,
        rec: Record,
    ) -> Result<u64, CoreError> {
        let txn_corrupt = |what: String| CoreError::Corrupt(format!("log record: {what}"));
        match rec {
            Record::Apply(m) => Ok(self.apply_owned_at(catalog, lsn, m)),
            Record::Prepare { txn, mutation } => {
                let id = txn.id_on(shard).ok_or_else(|| {
                    txn_corrupt(format!(
                        "prepared part does not list shard {shard} among {:?}",
                        txn.parts
                    ))
                })?;
                let expected = self.txns.hwm(id.coordinator) + 1;
                if id.seq != expected {
                    return Err(txn_corrupt(format!(
                        "prepared part {}:{} out of link order (expected seq {expected})",
                        id.coordinator, id.seq
                    )));
                }
                self.txns.set_hwm(id.coordinator, id.seq);
                let prev = self.txns.stash.insert(id, Prepared { txn, mutation });
                assert!(prev.is_none(), "a fresh link seq cannot be in the stash");
                Ok(0)
            }
            Record::Commit(id, stamp) => {
                let mut p = self.txns.stash.remove(&id).ok_or_else(|| {
                    txn_corrupt(format!(
                        "commit of part {}:{} that was never prepared",
                        id.coordinator, id.seq
                    ))
                })?;
                // Committed events take the Commit's append time: append times then follow
                // the order in which events are applied, which is what as-of reads rely on.
                if let Mutation::Events(e) = &mut p.mutation {
                    e.append_time_us = stamp;
                }
                Ok(self.apply_owned_at(catalog, lsn, p.mutation))
            }
            Record::Abort(id) => {
                let p = self.txns.stash.remove(&id).ok_or_else(|| {
                    txn_corrupt(format!(
                        "abort of part {}:{} that was never prepared",
                        id.coordinator, id.seq
                    ))
                })?;
                if let Mutation::Events(Events {
                    producer: Some((pid, seq)),
                    duplicate: false,
                    ..
                }) = p.mutation
                {
                    self.producers.release(pid, seq);
                }
                Ok(0)
            }
        }
    }

    /// Takes producer `(id, seq)` for a part being appended now: true if it is new (apply it),
    /// false if it was taken before (the part is a duplicate). See [`crate::producer`].
    pub fn take_producer_seq(&mut self, id: u64, seq: u64) -> bool {
        self.producers.admit(id, seq)
    }

    /// [`ShardState::apply_record`] for recovery: also takes the producer seq of a logged
    /// part not flagged duplicate, as the append did at run time, so the producer table is
    /// rebuilt in log order.
    pub fn replay_record(
        &mut self,
        catalog: &Catalog,
        shard: u32,
        lsn: u64,
        rec: Record,
    ) -> Result<u64, CoreError> {
        if let Record::Apply(Mutation::Events(e))
        | Record::Prepare {
            mutation: Mutation::Events(e),
            ..
        } = &rec
        {
            if let (Some((id, seq)), false) = (e.producer, e.duplicate) {
                self.producers.admit(id, seq);
            }
        }
        self.apply_record(catalog, shard, lsn, rec)
    }

    /// Multi-shard batch bookkeeping: high-water marks and parts set aside.
    pub fn txns(&self) -> &TxnState {
        &self.txns
    }

    fn upsert<'k, V: Iterator<Item = Value>>(
        &mut self,
        catalog: &Catalog,
        table_id: u32,
        mode: UpsertMode,
        column_idx: &[u16],
        rows: impl ExactSizeIterator<Item = (KeyRef<'k>, V)>,
    ) -> u64 {
        let Some(def) = catalog.table_by_id(table_id) else {
            return 0;
        };
        let width = def.columns.len();
        let n = rows.len() as u64;
        let table = self.tables.entry(table_id).or_default();
        for (key, values) in rows {
            let put = |row: &mut [Value], values: V| {
                for (&ci, v) in column_idx.iter().zip(values) {
                    if let Some(slot) = row.get_mut(usize::from(ci)) {
                        *slot = v;
                    }
                }
            };
            match (mode, table.rows.get_mut(key.as_slice())) {
                (UpsertMode::Merge, Some(row)) => put(row, values),
                (UpsertMode::Replace, Some(row)) => {
                    row.fill(Value::Null);
                    put(row, values);
                }
                (_, None) => {
                    let mut row = vec![Value::Null; width].into_boxed_slice();
                    put(&mut row, values);
                    table.rows.insert(Rc::from(key.into_owned()), row);
                }
            }
        }
        n
    }

    fn delete(&mut self, catalog: &Catalog, table_id: u32, keys: &[Vec<u8>]) -> u64 {
        if catalog.table_by_id(table_id).is_none() {
            return 0;
        }
        let Some(table) = self.tables.get_mut(&table_id) else {
            return 0;
        };
        keys.iter()
            .filter(|k| table.rows.remove(k.as_slice()).is_some())
            .count() as u64
    }

    /// The full row (in column order) stored under canonical key `key`, borrowed.
    pub fn get(&self, table_id: u32, key: &[u8]) -> Option<&[Value]> {
        self.tables.get(&table_id)?.rows.get(key).map(|r| &**r)
    }

    /// Forgets every row of a table (on DROP TABLE).
    pub fn drop_table(&mut self, table_id: u32) {
        self.tables.remove(&table_id);
    }

    /// Rows of one table on this shard.
    pub fn table_len(&self, table_id: u32) -> u64 {
        self.tables
            .get(&table_id)
            .map_or(0, |t| t.rows.len() as u64)
    }

    /// Rows of all tables on this shard.
    pub fn total_rows(&self) -> u64 {
        self.tables.values().map(|t| t.rows.len() as u64).sum()
    }

    /// Ids of the tables with state on this shard (unordered).
    pub fn table_ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.tables.keys().copied()
    }

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
    /// are skipped by `step` and deleted again by the replay. State whose mutations are not
    /// idempotent (counters, aggregates) must not be checkpointed this way.
    ///
    /// The multi-shard bookkeeping (high-water marks, parts set aside) is captured exactly,
    /// as of the builder's creation.
    pub fn checkpoint_builder(&self) -> CheckpointBuilder {
        let view_keys: usize = self.views.values().map(|v| v.keys.len()).sum();
        let mut keys = Vec::with_capacity(self.total_rows() as usize + view_keys);
        for (&id, table) in &self.tables {
            keys.extend(table.rows.keys().map(|k| (id, k.clone())));
        }
        // Table and view ids come from one catalog id space, so an id names one or the other.
        for (&id, view) in &self.views {
            keys.extend(view.keys.keys().map(|k| (id, k.clone())));
        }
        let mut header = rkyv::util::AlignedVec::<16>::new();
        header.extend_from_slice(&CHECKPOINT_MAGIC);
        header.extend_from_slice(&CHECKPOINT_FORMAT_VERSION.to_le_bytes());
        header.extend_from_slice(&[0u8; 4]);
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
        let meta = CkMeta {
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
        };
        CheckpointBuilder {
            keys,
            pos: 0,
            parts: vec![header, chunk(CHUNK_META, &meta)],
        }
    }

    /// Rebuilds a state from a checkpoint payload (16-byte aligned, as storage maps it).
    /// The archive is validated with bytecheck; a bad header, a failed validation, duplicate
    /// tables or keys, or rows whose width or value types disagree with the table's definition
    /// are [`CoreError::Corrupt`]. Rows of tables missing from `catalog` (dropped) are skipped.
    pub fn from_checkpoint(bytes: &[u8], catalog: &Catalog) -> Result<ShardState, CoreError> {
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
        if version != CHECKPOINT_FORMAT_VERSION {
            return Err(corrupt(format_args!(
                "unsupported format version {version} (this build reads {CHECKPOINT_FORMAT_VERSION})"
            )));
        }
        let mut pos = HEADER_LEN;
        let mut state = ShardState::new();
        if bytes.len() == HEADER_LEN {
            return Err(corrupt("the meta chunk is missing"));
        }
        while pos < bytes.len() {
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
            let first = pos == HEADER_LEN;
            match (kind, first) {
                (CHUNK_META, true) => {
                    meta_into(&mut state, catalog, body, pos)?;
                    pos = padded;
                    continue;
                }
                (CHUNK_TABLE, false) => {}
                (CHUNK_VIEW, false) => {
                    view_chunk_into(&mut state, catalog, body, pos)?;
                    pos = padded;
                    continue;
                }
                (CHUNK_META, false) => {
                    return Err(corrupt(format_args!(
                        "chunk at offset {pos}: a second meta chunk"
                    )))
                }
                (CHUNK_TABLE, true) => {
                    return Err(corrupt("the first chunk is not the meta chunk"));
                }
                (k, _) => {
                    return Err(corrupt(format_args!(
                        "chunk at offset {pos}: unknown chunk kind {k}"
                    )))
                }
            }
            let t = rkyv::access::<ArchivedCkTable<'static>, rancor::Error>(body).map_err(|e| {
                corrupt(format_args!("chunk at offset {pos}: invalid archive: {e}"))
            })?;
            pos = padded;
            let id = t.table_id.to_native();
            let Some(def) = catalog.table_by_id(id) else {
                continue; // dropped since the checkpoint
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
        }
        Ok(state)
    }
}

/// One chunk: 16-byte header (length, kind) + rkyv archive + zero padding to 16 bytes.
fn chunk<T>(kind: u8, value: &T) -> rkyv::util::AlignedVec<16>
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

/// The bucket-id range a read as of `as_of_us` combines: the `window / bucket` buckets ending
/// with the one holding `as_of_us`; a lifetime view has the single bucket 0.
pub fn window_range(w: &WindowSpec, as_of_us: i64) -> (i64, i64) {
    match *w {
        WindowSpec::Sliding {
            window_us,
            bucket_us,
        } => {
            let cur = as_of_us.div_euclid(bucket_us);
            (cur - (window_us / bucket_us) + 1, cur)
        }
        WindowSpec::Lifetime => (0, 0),
    }
}

/// The aggregate kernels' specs of a view.
pub fn view_specs(view: &ViewDef, stream: &crate::schema::StreamDef) -> Vec<AggSpec> {
    view.aggregates
        .iter()
        .map(|a| {
            let kind = match a.func {
                AggFunc::CountStar => AggKind::CountStar,
                AggFunc::Count => AggKind::Count,
                AggFunc::Sum => AggKind::Sum,
                AggFunc::Min => AggKind::Min,
                AggFunc::Max => AggKind::Max,
                AggFunc::Avg => AggKind::Avg,
                AggFunc::Variance => AggKind::Variance,
                AggFunc::Stddev => AggKind::Stddev,
                AggFunc::VarPop => AggKind::VarPop,
                AggFunc::StddevPop => AggKind::StddevPop,
                AggFunc::CountDistinct => AggKind::CountDistinct,
                AggFunc::First => AggKind::First,
                AggFunc::Last => AggKind::Last,
            };
            AggSpec::new(kind, a.input.map(|c| stream.columns[c].ty))
        })
        .collect()
}

impl ViewState {
    /// The read of one key as of `as_of_us` ([`ShardState::read_view`]).
    pub(crate) fn read(
        &self,
        view: &ViewDef,
        key: &[u8],
        as_of_us: i64,
    ) -> (Vec<Value>, Option<i64>) {
        let (lo, hi) = window_range(&view.window, as_of_us);
        match self.keys.get(key) {
            Some(k) => (k.win.read(&self.specs, lo, hi), k.win.newest_event_time()),
            None => (
                WindowState::new(&self.specs).read(&self.specs, lo, hi),
                None,
            ),
        }
    }

    pub(crate) fn new(view: &ViewDef, stream: &crate::schema::StreamDef) -> ViewState {
        ViewState {
            specs: view_specs(view, stream).into(),
            keys: FastMap::default(),
            counters: ViewCounters::default(),
        }
    }

    /// Applies one event row appended at `append_us` by the record at `lsn`.
    pub(crate) fn apply(
        &mut self,
        view: &ViewDef,
        stream: &crate::schema::StreamDef,
        lsn: u64,
        append_us: i64,
        row: &[Value],
    ) {
        let Some(Value::Timestamp(ts)) = row.get(stream.event_time) else {
            return; // validated at ingest: never happens
        };
        let ts = *ts;
        let (bucket, oldest) = match view.window {
            WindowSpec::Sliding { bucket_us, .. } => {
                let (oldest, _) = window_range(&view.window, append_us);
                (ts.div_euclid(bucket_us), oldest)
            }
            WindowSpec::Lifetime => (0, i64::MIN),
        };
        if bucket < oldest {
            // Its bucket left the window before it arrived: no read at or after its append
            // time could include it, and reads before that exclude it anyway.
            self.counters.late += 1;
            return;
        }
        let mut key = Vec::with_capacity(16);
        if tarn_types::encode_key(&row[view.key_column], &mut key).is_err() {
            return; // NULL key: not routed to views
        }
        let specs = &self.specs;
        let entry = match self.keys.get_mut(key.as_slice()) {
            Some(e) => e,
            None => self.keys.entry(Rc::from(key)).or_insert_with(|| KeyWindow {
                last_lsn: 0,
                skip_until: 0,
                win: WindowState::new(specs),
            }),
        };
        self.counters.events += 1;
        if lsn != 0 && lsn <= entry.skip_until {
            return; // already in the window restored from a fuzzy checkpoint
        }
        let inputs: Vec<Option<&Value>> = view
            .aggregates
            .iter()
            .map(|a| {
                if a.filter.as_ref().is_some_and(|f| !f.matches(row)) {
                    None
                } else {
                    Some(a.input.map_or(&Value::Null, |c| &row[c]))
                }
            })
            .collect();
        entry.win.update(specs, bucket, ts, &inputs);
        if oldest != i64::MIN {
            entry.win.expire_before(oldest);
        }
        if lsn != 0 {
            entry.last_lsn = lsn;
        }
    }
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
    }
}

/// An incremental checkpoint in progress; see [`ShardState::checkpoint_builder`].
pub struct CheckpointBuilder {
    /// The (table id, key) pairs that existed when the checkpoint started.
    keys: Vec<(u32, Rc<[u8]>)>,
    /// Next index into `keys`.
    pos: usize,
    /// The payload so far, as parts to be written back to back: the header, then one part
    /// per chunk. Every part's length is a multiple of 16, so archives stay aligned. Parts,
    /// not one growing buffer: regrowing a buffer of a large state copies all of it.
    parts: Vec<rkyv::util::AlignedVec<16>>,
}

impl CheckpointBuilder {
    /// Archives the current rows of up to `max_rows` more snapshot keys (keys deleted since the
    /// snapshot are skipped). Returns true when every key has been visited.
    pub fn step(&mut self, state: &ShardState, max_rows: usize) -> bool {
        assert!(max_rows > 0, "a step must make progress");
        let end = self.keys.len().min(self.pos.saturating_add(max_rows));
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
        self.pos == self.keys.len()
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
        self.parts
    }
}
