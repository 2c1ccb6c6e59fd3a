//! One shard's in-memory state: its tables' rows ([`tables`]), its feature views' windows
//! ([`views`]), the per-stream counters of the events it is the home of, producer dedup windows
//! and multi-shard batch bookkeeping; the apply loop that changes them in log order; and the
//! checkpoint payload that saves them ([`checkpoint`]).

use std::collections::HashMap;

use tarn_types::Value;

use crate::catalog::Catalog;
use crate::producer::ProducerTable;
use crate::record::{Events, IndexOp, Mutation, Record, HOME_TARGET};
use crate::txn::{Prepared, TxnState};
use crate::view::ViewDef;
use crate::CoreError;

fn txn_corrupt(what: String) -> CoreError {
    CoreError::Corrupt(format!("log record: {what}"))
}
use tables::KeyRef;

mod checkpoint;
mod indexes;
pub(crate) mod recent;
mod tables;
mod views;

pub use indexes::{
    IndexProgress, IndexWork, KnnHit, KnnOutcome, KnnQuery, KnnSearch, INDEX_BUILD_STEP_ROWS,
    KNN_STEP_ROWS,
};

pub use checkpoint::{
    CheckpointBuilder, CHECKPOINT_CHUNK_ROWS, CHECKPOINT_FORMAT_VERSION, CHECKPOINT_MAGIC,
    CHECKPOINT_STEP_BYTES, MIN_CHECKPOINT_FORMAT_VERSION,
};
pub(crate) use views::ViewState;
pub use views::{view_specs, window_range, ViewCounters};

type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Everything one shard owns: for each table id, its rows keyed by canonical key bytes.
/// Single-threaded; no interior mutability. Equality compares contents (of indexes: which
/// rows they hold with which vectors, not their graphs).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ShardState {
    tables: FastMap<u32, tables::Table>,
    indexes: indexes::Indexes,
    txns: TxnState,
    producers: ProducerTable,
    streams: FastMap<u32, StreamCounters>,
    views: FastMap<u32, ViewState>,
    /// Per stream with `recent = N` whose events this shard is the home of: the rings.
    recent: FastMap<u32, recent::RecentState>,
    applied: AppliedLsn,
}

/// The log position of the last record applied (0: none since the state was created or
/// restored). Bookkeeping for the apply loop's precondition, not content: equality ignores it,
/// so a state restored from a checkpoint equals the state it was taken from.
#[derive(Clone, Copy, Debug, Default)]
struct AppliedLsn(u64);

impl PartialEq for AppliedLsn {
    fn eq(&self, _: &AppliedLsn) -> bool {
        true
    }
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
    ///
    /// Precondition (asserted): log positions strictly increase from one apply to the next.
    pub fn apply_owned_at(&mut self, catalog: &Catalog, lsn: u64, m: Mutation) -> u64 {
        self.check_next_lsn(lsn);
        self.indexes.frozen = self.indexes_cover(lsn);
        let n = self.apply_at(catalog, lsn, m);
        self.indexes.frozen = false;
        self.set_applied(lsn);
        n
    }

    /// Whether the record at `lsn` is already in the indexes (restored from a checkpoint that
    /// took them as of a later position than its rows: see `checkpoint`'s index chunks).
    fn indexes_cover(&self, lsn: u64) -> bool {
        lsn != 0 && lsn <= self.indexes.as_of_lsn
    }

    /// Applies an index record (see [`IndexOp`]). A Create of an index the catalog no longer
    /// has, or that exists already, and a Step of an index this shard does not have, change
    /// nothing: the catalog is the newest one, the log may be older.
    fn apply_index_op(&mut self, catalog: &Catalog, op: IndexOp) -> Result<(), CoreError> {
        match op {
            IndexOp::Create { index_id } => {
                let Some(def) = catalog.index_by_id(index_id) else {
                    return Ok(());
                };
                if self.index_progress(index_id).is_some() {
                    return Ok(());
                }
                self.create_index(
                    index_id,
                    def.table_id,
                    usize::from(def.column),
                    def.metric,
                    def.dim as usize,
                    def.params,
                )
            }
            IndexOp::Step { index_id, rows } => {
                self.index_build_step(index_id, rows as usize);
                Ok(())
            }
        }
    }

    /// The log position of the last record applied at a position (0 if none since this state
    /// was created or restored).
    pub fn applied_lsn(&self) -> u64 {
        self.applied.0
    }

    /// Records are applied in log order, each once: a position must be past the last one.
    fn check_next_lsn(&self, lsn: u64) {
        assert!(
            lsn == 0 || lsn > self.applied.0,
            "record {lsn} applied after record {}: records apply in log order, once",
            self.applied.0
        );
    }

    fn set_applied(&mut self, lsn: u64) {
        if lsn != 0 {
            self.applied.0 = lsn;
        }
    }

    fn apply_at(&mut self, catalog: &Catalog, lsn: u64, m: Mutation) -> u64 {
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

    /// Applies an Events part: the home copy (counters and, for a stream with `recent = N`,
    /// the key's ring; the rows themselves stay in the log) and every feature view it targets. A producer-tagged part seen before is a duplicate:
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
                self.keep_recent(def, lsn, bit, e);
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

    /// Inserts the home rows (`bit` of their mask) of `e`, the record at `lsn`, into their
    /// keys' rings when `def` keeps recent events. Idempotent: see [`recent`].
    fn keep_recent(&mut self, def: &crate::schema::StreamDef, lsn: u64, bit: u64, e: &Events) {
        if def.recent == 0 {
            return;
        }
        let rs = self
            .recent
            .entry(def.id)
            .or_insert_with(|| recent::RecentState::new(def.recent));
        for (pos, (mask, row)) in e.rows.iter().enumerate() {
            if mask & bit != 0 {
                rs.insert(def, lsn, pos as u32, row);
            }
        }
    }

    /// The newest `n` events this shard holds for partition key `key` (canonical bytes) of
    /// `stream`, newest first (by event time, then log position), each projected on `columns`
    /// (indexes into the stream's columns, in the order wanted). Empty for a key with no
    /// events, and for a stream without `recent`. At most the stream's `recent` events are
    /// held, so `n` above it returns what is kept.
    pub fn recent(
        &self,
        stream: &crate::schema::StreamDef,
        key: &[u8],
        n: usize,
        columns: &[usize],
    ) -> Vec<Vec<Value>> {
        debug_assert!(columns.iter().all(|&c| c < stream.columns.len()));
        recent::read(self.recent.get(&stream.id), key, n, columns)
    }

    /// Keys with recent events of a stream on this shard, and the heap bytes of their rings.
    pub fn recent_memory(&self, stream_id: u32) -> (usize, usize) {
        self.recent
            .get(&stream_id)
            .map_or((0, 0), |r| (r.keys.len(), r.heap_bytes()))
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

    /// Forgets a dropped stream's counters and recent events.
    ///
    /// (Its views are dropped first: the catalog refuses to drop a stream with views.)
    pub fn drop_stream(&mut self, stream_id: u32) {
        self.streams.remove(&stream_id);
        self.recent.remove(&stream_id);
    }

    /// Applies one log record on shard `shard` (the shard whose log it is):
    /// [`Record::Apply`] as [`ShardState::apply_owned`]; [`Record::Prepare`] sets the part
    /// aside and raises the coordinator's high-water mark; [`Record::Commit`] applies the part
    /// set aside; [`Record::Abort`] forgets it; [`Record::Index`] creates or steps an index
    /// (not if a restored index already reflects the record). Returns the rows applied (0 for
    /// Prepare, Abort and Index).
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
        self.check_next_lsn(lsn);
        let covered = self.indexes_cover(lsn);
        self.indexes.frozen = covered;
        let n = self.apply_record_at(catalog, shard, lsn, rec, covered);
        self.indexes.frozen = false;
        let n = n?;
        self.set_applied(lsn);
        Ok(n)
    }

    fn apply_record_at(
        &mut self,
        catalog: &Catalog,
        shard: u32,
        lsn: u64,
        rec: Record,
        covered: bool,
    ) -> Result<u64, CoreError> {
        Ok(match rec {
            Record::Apply(m) => self.apply_at(catalog, lsn, m),
            Record::Prepare { txn, mutation } => {
                self.prepare(shard, txn, mutation)?;
                0
            }
            Record::Commit(id, stamp) => {
                let mut p = self.txns.take(id).ok_or_else(|| {
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
                self.apply_at(catalog, lsn, p.mutation)
            }
            Record::Abort(id) => {
                let p = self.txns.take(id).ok_or_else(|| {
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
                0
            }
            Record::Index(op) => {
                if !covered {
                    self.apply_index_op(catalog, op)?;
                }
                0
            }
        })
    }

    /// A Prepare: the next seq of its coordinator's link, listing this shard; set aside.
    fn prepare(
        &mut self,
        shard: u32,
        txn: crate::record::TxnPart,
        mutation: Mutation,
    ) -> Result<(), CoreError> {
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
        self.txns.stash_part(id, Prepared { txn, mutation });
        Ok(())
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
}
