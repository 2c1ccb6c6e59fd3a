//! Vector indexes on one shard: one [`tarn_vectors::Index`] per index definition over the rows
//! of its table that this shard owns, kept current by every applied upsert and delete.
//!
//! # Rows and row ids
//!
//! The index speaks [`RowId`]s; this container maps them to the table's canonical keys (the
//! same `Rc<[u8]>` the table holds, so a key is stored once). A key keeps its row id while it
//! has a vector; a freed id is reused by a later key. A search that yielded between its steps
//! answers only if no write touched the table meanwhile ([`KnnSearch`]'s epoch), so a reused
//! id can never be reported under a key it did not have when it was found.
//!
//! # Building over existing rows
//!
//! An index created on a table with rows (or rebuilt at recovery) gets a row id for each of
//! them at once, listed in `unbuilt`, and inserts their vectors into the graph in bounded
//! steps ([`ShardState::index_build_step`]), in list order. Until the build passes a row it is
//! *pending*: a search scans the pending rows exactly next to the graph and merges, so a
//! search during a build returns the rows a finished index would (the graph part being
//! approximate as always).
//!
//! The rule that keeps this exact while build steps run between a search's steps: a pending
//! row enters the graph only through the build (a write to it changes the table row, which
//! the build reads when it gets there; a delete frees its key but not its id until the build
//! passes it). So the rows pending when a search starts are exactly `unbuilt[build_pos..]`,
//! none of them is in the graph snapshot the search's cursor sees (a cursor never visits
//! nodes inserted after it started), and the search scans that range with the table's
//! vectors. The list is shared (`Rc`) with the searches scanning it.
//!
//! # A function of the log
//!
//! A graph depends on the order in which rows enter it, so everything that puts rows into
//! one happens at a logged position: the index comes into being on a shard at its
//! [`IndexOp::Create`](crate::record::IndexOp) record (row ids in key-byte order), each build
//! or rebuild step at an `IndexOp::Step` record (its row count in the record), each write at
//! its own record. Replaying the same records therefore gives the same graph, row ids and free
//! list. Checkpoints save the indexes exactly as of one position (`index_checkpoint`) and
//! replay gives them only later records ([`Indexes::frozen`] while an earlier one is applied).
//!
//! # What is not indexed
//!
//! A row whose vector column is NULL. A zero vector under `cosine` (no direction): new ones
//! are refused by batch validation; ones already in the table when the index is created are
//! left out of it (counted in [`IndexProgress::skipped`]).

use std::rc::Rc;

use tarn_types::Value;
use tarn_vectors::Plan;
use tarn_vectors::{
    CowVec, HnswIndex, HnswParams, Index, Metric, Neighbor, RowId, SearchCursor, VectorIndex,
};

use super::{FastMap, ShardState};
use crate::expr::Expr;
use crate::CoreError;

/// Rows of an index's build inserted per [`ShardState::index_build_step`] call by the
/// server's maintenance task before it yields: one HNSW insert costs about `ef_construction`
/// distance computations (~20–50 µs at dim 128), so 64 keep a step near a millisecond.
pub const INDEX_BUILD_STEP_ROWS: usize = 64;

/// Rows (nodes or table rows) a search visits per [`ShardState::knn_step`] before the shard
/// yields: a visit costs at most one filter evaluation and one distance (~0.1–1 µs), so a
/// step stays well under a millisecond while a typical graph search finishes in one step.
pub const KNN_STEP_ROWS: usize = 4096;

/// One index on this shard.
#[derive(Debug)]
pub(super) struct IndexState {
    table_id: u32,
    column: usize,
    index: Index,
    /// Row id → key (None: free, on `free`).
    /// Copy-on-write blocks, so a checkpoint takes them in O(blocks) (`index_checkpoint`).
    keys: CowVec<Option<Rc<[u8]>>>,
    ids: FastMap<Rc<[u8]>, RowId>,
    free: Vec<RowId>,
    /// Row ids given at creation, built in this order; `unbuilt[build_pos..]` are pending.
    unbuilt: Rc<[RowId]>,
    build_pos: usize,
    /// One bit per row id below `unbuilt`'s largest: set while the row is pending.
    pending: Vec<u64>,
    skipped: u64,
    /// Bumped by every write applied to the table (rows, not only vectors: a filter reads
    /// every column).
    epoch: u64,
    /// The last rebuild step found every row copied and a search open on the old graph.
    waiting: bool,
    /// Recent filters' planner samples and verdicts (`filter_memo.rs`: when they are dropped).
    memos: std::cell::RefCell<FilterMemos>,
}

/// Build progress of one index on one shard.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IndexProgress {
    /// Rows whose vectors are in the graph.
    pub indexed: u64,
    /// Rows still to insert (searched exactly until then).
    pub pending: u64,
    /// Rows left out: a zero vector under cosine, present before the index was created.
    pub skipped: u64,
    /// Graph nodes that are tombstones (updated or deleted rows), until the next rebuild.
    pub tombstones: u64,
    /// Heap bytes of the index and its row map.
    pub memory_bytes: u64,
}

impl IndexProgress {
    /// Adds another shard's part of the same index.
    pub fn add(&mut self, other: &IndexProgress) {
        self.indexed += other.indexed;
        self.pending += other.pending;
        self.skipped += other.skipped;
        self.tombstones += other.tombstones;
        self.memory_bytes += other.memory_bytes;
    }
}

/// Chunk size of the codec round trip that clones a graph: any size gives the same copy;
/// 1 MiB keeps the chunks few without holding much more than the graph itself.
const CLONE_CHUNK_BYTES: usize = 1 << 20;

/// The vector indexes of one shard, and which table each belongs to.
#[derive(Clone, Debug, Default)]
pub(super) struct Indexes {
    by_id: FastMap<u32, IndexState>,
    by_table: FastMap<u32, Vec<u32>>,
    /// The log position the indexes reflect exactly when they were restored from a
    /// checkpoint (0 otherwise): replay applies records up to it to the tables only.
    pub(super) as_of_lsn: u64,
    /// Set while a record at or below `as_of_lsn` is applied: writes leave the indexes alone.
    pub(super) frozen: bool,
}

/// What an index needs from the maintenance task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IndexWork {
    /// Nothing: built, and tombstones under the rebuild share.
    Idle,
    /// Rows to insert or a rebuild to advance: log a step.
    Step,
    /// A rebuild copied every row and waits for the searches open on the old graph to end
    /// before it swaps: a step now would do nothing, so wait.
    WaitingForCursors,
}

impl PartialEq for Indexes {
    /// Same indexes over the same rows with the same stored vectors (graph shape aside: a
    /// restored state rebuilds its graphs).
    fn eq(&self, other: &Indexes) -> bool {
        self.by_id.len() == other.by_id.len()
            && self.by_id.iter().all(|(id, a)| {
                other.by_id.get(id).is_some_and(|b| {
                    a.table_id == b.table_id
                        && a.column == b.column
                        && a.ids.len() == b.ids.len()
                        && a.ids.iter().all(|(k, &r)| {
                            b.ids.get(k).is_some_and(|&r2| a.stored(r) == b.stored(r2))
                        })
                })
            })
    }
}

impl Clone for IndexState {
    /// An exact copy of the graph through its codec (a rebuild in progress is not copied:
    /// the copy starts it again when it needs one). Used by tests that compare states.
    fn clone(&self) -> IndexState {
        let index = match &self.index {
            Index::Hnsw(h) => {
                let mut d = tarn_vectors::Decoder::new();
                for chunk in h.encode(CLONE_CHUNK_BYTES) {
                    d.feed(&chunk).expect("a fresh encoding decodes");
                }
                Index::Hnsw(d.finish().expect("a fresh encoding decodes"))
            }
            Index::Exact(_) => unreachable!("shards hold HNSW indexes only"),
        };
        IndexState {
            table_id: self.table_id,
            column: self.column,
            index,
            keys: self.keys.clone(),
            ids: self.ids.clone(),
            free: self.free.clone(),
            unbuilt: self.unbuilt.clone(),
            build_pos: self.build_pos,
            pending: self.pending.clone(),
            skipped: self.skipped,
            epoch: self.epoch,
            waiting: self.waiting,
            memos: Default::default(),
        }
    }
}

impl IndexState {
    /// The vector stored for `row` (None while unbuilt).
    fn stored(&self, row: RowId) -> Option<&[f32]> {
        self.index.vector(row)
    }

    fn alloc(&mut self, key: Rc<[u8]>) -> RowId {
        let row = match self.free.pop() {
            Some(r) => {
                self.keys.set(r as usize, Some(key.clone()));
                r
            }
            None => {
                self.keys.push(Some(key.clone()));
                (self.keys.len() - 1) as RowId
            }
        };
        self.ids.insert(key, row);
        // A reused id's verdicts were on its former row.
        self.memos.get_mut().forget(row);
        row
    }

    fn release(&mut self, key: &[u8]) {
        if let Some(row) = self.ids.remove(key) {
            self.index.delete(row);
            self.keys.set(row as usize, None);
            if !self.is_pending(row) {
                // A pending id is freed by the build when it passes it (module docs).
                self.free.push(row);
            }
        }
    }

    fn is_pending(&self, row: RowId) -> bool {
        let (w, b) = ((row / 64) as usize, row % 64);
        self.pending.get(w).is_some_and(|x| x >> b & 1 == 1)
    }

    fn clear_pending(&mut self, row: RowId) {
        let (w, b) = ((row / 64) as usize, row % 64);
        self.pending[w] &= !(1 << b);
    }

    /// Sets `key`'s vector (`None`: the row has none, or is gone). Every write of the row
    /// comes here, so its filter verdicts are dropped here.
    fn set(&mut self, key: &Rc<[u8]>, v: Option<&[f32]>) {
        self.epoch += 1;
        if let Some(&r) = self.ids.get(&**key) {
            self.memos.get_mut().forget(r);
        }
        let Some(v) = v else {
            return self.release(key);
        };
        let row = match self.ids.get(&**key) {
            Some(&r) if self.is_pending(r) => return, // the build reads the table row
            Some(&r) => r,
            None => self.alloc(key.clone()),
        };
        if let Err(e) = self.index.upsert(row, v) {
            // Only a zero vector under cosine can fail here, and batch validation refuses
            // those for an indexed column: the row stays out of the index.
            debug_assert!(false, "validated vector refused by the index: {e}");
            self.release(key);
        }
    }

    /// An index read back from a checkpoint (`index_checkpoint`): `unbuilt` are the rows
    /// still to build, in build order. Checks that keys, graph and lists agree.
    #[allow(clippy::too_many_arguments)]
    fn restored(
        table_id: u32,
        column: usize,
        index: Index,
        keys: CowVec<Option<Rc<[u8]>>>,
        ids: FastMap<Rc<[u8]>, RowId>,
        free: Vec<RowId>,
        unbuilt: Vec<RowId>,
        skipped: u64,
    ) -> Result<IndexState, String> {
        let rows = keys.len();
        for &r in unbuilt.iter().chain(&free) {
            if r as usize >= rows {
                return Err(format!("row id {r} beyond the {rows} rows"));
            }
        }
        let pending = pending_bits(&unbuilt, rows);
        let marked: u32 = pending.iter().map(|w| w.count_ones()).sum();
        if marked as usize != unbuilt.len() {
            return Err("a row id pending twice".to_string());
        }
        let ix = IndexState {
            table_id,
            column,
            index,
            keys,
            ids,
            free,
            unbuilt: Rc::from(unbuilt),
            build_pos: 0,
            pending,
            skipped,
            epoch: 0,
            waiting: false,
            memos: Default::default(),
        };
        ix.check_rows()?;
        Ok(ix)
    }

    /// Every row id is exactly one of: free (no key), pending (unbuilt, key or not), in the
    /// graph (with a key); every key has its row id.
    fn check_rows(&self) -> Result<(), String> {
        let mut free = vec![false; self.keys.len()];
        for &r in &self.free {
            if std::mem::replace(&mut free[r as usize], true) || self.keys.get(r as usize).is_some()
            {
                return Err(format!("free row id {r} listed twice or holding a key"));
            }
        }
        for (r, &is_free) in free.iter().enumerate() {
            let (key, pending) = (self.keys.get(r), self.is_pending(r as RowId));
            let in_graph = self.index.contains(r as RowId);
            let ok = match (key, pending, is_free) {
                (_, true, false) => !in_graph,
                (Some(_), false, false) => in_graph,
                (None, false, true) => !in_graph,
                _ => false,
            };
            if !ok {
                return Err(format!(
                    "row id {r}: key {}, pending {pending}, free {is_free}, in graph {in_graph}",
                    key.is_some(),
                ));
            }
        }
        if self.index.len()
            + self
                .unbuilt
                .iter()
                .filter(|&&r| self.keys.get(r as usize).is_some())
                .count()
            != self.ids.len()
        {
            return Err("row ids and keys disagree in number".to_string());
        }
        Ok(())
    }

    fn progress(&self) -> IndexProgress {
        let tombstones = match &self.index {
            Index::Hnsw(h) => h.tombstones() as u64,
            Index::Exact(_) => 0,
        };
        let map_bytes = self.keys.memory_bytes()
            + self.ids.capacity() * (std::mem::size_of::<(Rc<[u8]>, RowId)>() + 1)
            + self.unbuilt.len() * 8
            + self.pending.capacity() * 8;
        IndexProgress {
            indexed: self.index.len() as u64,
            pending: (self.unbuilt.len() - self.build_pos) as u64,
            skipped: self.skipped,
            tombstones,
            memory_bytes: (self.index.memory_bytes() + map_bytes) as u64,
        }
    }
}

/// One bit per row id below `rows`, set for the ids in `unbuilt` (all below `rows`).
fn pending_bits(unbuilt: &[RowId], rows: usize) -> Vec<u64> {
    let mut bits = vec![0u64; rows.div_ceil(64)];
    for &r in unbuilt {
        bits[(r / 64) as usize] |= 1 << (r % 64);
    }
    bits
}

/// The vector of a row as stored in the table (`None` for NULL or a missing column).
fn row_vector(row: &[Value], column: usize) -> Option<&[f32]> {
    match row.get(column) {
        Some(Value::Vector(v)) => Some(v),
        _ => None,
    }
}

impl Indexes {
    pub(super) fn of_table(&self, table_id: u32) -> &[u32] {
        self.by_table.get(&table_id).map_or(&[], |v| v)
    }

    /// After a write to `key` of table `table_id`: every index of the table takes the row's
    /// new vector (`row` None: deleted).
    pub(super) fn on_write(&mut self, table_id: u32, key: &Rc<[u8]>, row: Option<&[Value]>) {
        if self.frozen {
            return self.forget_verdicts(table_id);
        }
        let Some(ids) = self.by_table.get(&table_id) else {
            return;
        };
        for id in ids {
            let ix = self.by_id.get_mut(id).expect("by_table lists live indexes");
            let v = row.and_then(|r| row_vector(r, ix.column));
            ix.set(key, v);
        }
    }

    /// After a write that left every vector as it was (a merge of other columns): searches
    /// that yielded must still see that the table changed.
    pub(super) fn touch(&mut self, table_id: u32) {
        self.forget_verdicts(table_id);
        if self.frozen {
            return;
        }
        for id in self.by_table.get(&table_id).into_iter().flatten() {
            self.by_id.get_mut(id).expect("listed").epoch += 1;
        }
    }

    /// Drops the filter verdicts of every index of `table_id` (a write whose rows the indexes
    /// are not shown).
    fn forget_verdicts(&mut self, table_id: u32) {
        for id in self.by_table.get(&table_id).into_iter().flatten() {
            let ix = self.by_id.get_mut(id).expect("listed");
            ix.memos.get_mut().forget_all();
        }
    }

    /// Whether a write to `column_idx` of `table_id` may change an indexed vector.
    pub(super) fn touches_vectors(&self, table_id: u32, column_idx: &[u16]) -> bool {
        self.of_table(table_id).iter().any(|id| {
            let c = self.by_id[id].column;
            column_idx.iter().any(|&ci| usize::from(ci) == c)
        })
    }

    fn remove(&mut self, index_id: u32) {
        if let Some(ix) = self.by_id.remove(&index_id) {
            let list = self.by_table.get_mut(&ix.table_id).expect("listed");
            list.retain(|&i| i != index_id);
            if list.is_empty() {
                self.by_table.remove(&ix.table_id);
            }
        }
    }
}

/// What a kNN search is asked.
#[derive(Clone, Copy, Debug)]
pub struct KnnQuery<'a> {
    /// The index (its catalog id).
    pub index_id: u32,
    /// The query vector (checked here against the index's metric and dimension).
    pub vector: &'a [f32],
    /// Rows wanted, `1..=tarn_vectors::MAX_K`.
    pub k: usize,
    /// Candidate-list size; None for the index's `ef_search`.
    pub ef: Option<usize>,
}

/// An open kNN search on one shard, advanced by [`ShardState::knn_step`].
#[derive(Debug)]
pub struct KnnSearch {
    index_id: u32,
    epoch: u64,
    k: usize,
    /// The query as the index stores vectors (normalized for cosine).
    query: Vec<f32>,
    plan: Plan,
    cursor: Option<SearchCursor>,
    /// The rows pending at the start: `unbuilt[unbuilt_pos..]` still to scan.
    unbuilt: Rc<[RowId]>,
    unbuilt_pos: usize,
    /// Best `k` of the unbuilt rows scanned so far.
    unbuilt_best: Vec<Neighbor>,
    unbuilt_distances: u64,
}

impl KnnSearch {
    /// How the graph part runs.
    pub fn plan(&self) -> Plan {
        self.plan
    }

    /// Whether every step is done.
    pub fn is_done(&self) -> bool {
        self.cursor.as_ref().is_none_or(SearchCursor::is_done)
            && self.unbuilt_pos >= self.unbuilt.len()
    }

    /// Distances computed so far (graph and unbuilt rows).
    pub fn distances(&self) -> u64 {
        self.cursor.as_ref().map_or(0, |c| c.distances() as u64) + self.unbuilt_distances
    }
}

/// One row of a search's answer.
#[derive(Clone, Copy, Debug)]
pub struct KnnHit<'a> {
    /// What answers are ordered by with the row ([`Neighbor::key`]): merging shards' answers
    /// orders by it, never by the rounded distance.
    pub key: f32,
    /// The reported distance.
    pub distance: f32,
    /// The stored row, in column order.
    pub row: &'a [Value],
}

/// Why a finished search has no answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KnnOutcome {
    /// The table was written while the search yielded: run it again.
    Changed,
}

/// Whether `row` of the table passes `filter` (SQL: only TRUE passes).
fn passes(filter: Option<&Expr<usize>>, row: &[Value]) -> bool {
    filter.is_none_or(|f| f.matches(row))
}

fn keep_best(best: &mut Vec<Neighbor>, n: Neighbor, k: usize) {
    let at = best.partition_point(|b| b.rank_cmp(&n).is_lt());
    if at < k {
        best.insert(at, n);
        best.truncate(k);
    }
}

impl ShardState {
    /// Creates index `index_id` over column `column` of table `table_id` on this shard: every
    /// row gets a row id now, in key-byte order (so the same rows give the same ids whatever
    /// order the table's map holds them in), and their vectors enter the graph through
    /// [`ShardState::index_build_step`]. Errors: the parameters (checked by the catalog first,
    /// so only on a corrupt catalog).
    pub fn create_index(
        &mut self,
        index_id: u32,
        table_id: u32,
        column: usize,
        metric: Metric,
        dim: usize,
        params: HnswParams,
    ) -> Result<(), CoreError> {
        assert!(
            !self.indexes.by_id.contains_key(&index_id),
            "index {index_id} exists"
        );
        let hnsw = HnswIndex::new(metric, dim, params)
            .map_err(|e| CoreError::Corrupt(format!("index {index_id}: {e}")))?;
        let mut ix = IndexState {
            table_id,
            column,
            index: Index::Hnsw(hnsw),
            keys: CowVec::new(),
            ids: FastMap::default(),
            free: Vec::new(),
            unbuilt: Rc::from([]),
            build_pos: 0,
            pending: Vec::new(),
            skipped: 0,
            epoch: 0,
            waiting: false,
            memos: Default::default(),
        };
        let mut unbuilt = Vec::new();
        if let Some(t) = self.tables.get(&table_id) {
            let mut rows: Vec<_> = t.rows.iter().collect();
            rows.sort_unstable_by(|a, b| a.0.cmp(b.0));
            for (key, row) in rows {
                match row_vector(row, column) {
                    Some(v) if metric.check(v, dim).is_ok() => unbuilt.push(ix.alloc(key.clone())),
                    Some(_) => ix.skipped += 1,
                    None => {}
                }
            }
        }
        // Exactly the unbuilt ids: a row id allocated later (a row written during the build)
        // must not look pending, or its writes would wait for a build that never reaches it.
        ix.pending = pending_bits(&unbuilt, ix.keys.len());
        ix.unbuilt = Rc::from(unbuilt);
        self.indexes.by_id.insert(index_id, ix);
        self.indexes
            .by_table
            .entry(table_id)
            .or_default()
            .push(index_id);
        Ok(())
    }

    /// Whether a tombstone rebuild of an index is in progress.
    pub fn index_rebuilding(&self, index_id: u32) -> bool {
        self.indexes
            .by_id
            .get(&index_id)
            .is_some_and(|ix| matches!(&ix.index, Index::Hnsw(h) if h.rebuilding()))
    }

    /// A digest of an index's graph (rows, liveness, levels, links, vectors): equal for
    /// indexes given the same records. For tests and consistency checks.
    pub fn index_digest(&self, index_id: u32) -> Option<u64> {
        match &self.indexes.by_id.get(&index_id)?.index {
            Index::Hnsw(h) => Some(h.digest()),
            Index::Exact(_) => None,
        }
    }

    /// Installs an index restored from a checkpoint.
    fn install_index(&mut self, index_id: u32, ix: IndexState) {
        let table_id = ix.table_id;
        assert!(
            self.indexes.by_id.insert(index_id, ix).is_none(),
            "index {index_id} restored twice"
        );
        self.indexes
            .by_table
            .entry(table_id)
            .or_default()
            .push(index_id);
    }

    /// Forgets an index (DROP INDEX, or its table dropped).
    pub fn drop_index(&mut self, index_id: u32) {
        self.indexes.remove(index_id);
    }

    /// Ids of the indexes on this shard (unordered).
    pub fn index_ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.indexes.by_id.keys().copied()
    }

    /// Build progress of an index (None: no such index here).
    pub fn index_progress(&self, index_id: u32) -> Option<IndexProgress> {
        self.indexes.by_id.get(&index_id).map(IndexState::progress)
    }

    /// Work left on an index: unbuilt rows, or a graph past its tombstone share (or being
    /// rebuilt).
    pub fn index_needs_work(&self, index_id: u32) -> bool {
        self.indexes.by_id.get(&index_id).is_some_and(|ix| {
            ix.build_pos < ix.unbuilt.len()
                || matches!(&ix.index, Index::Hnsw(h) if h.needs_rebuild() || h.rebuilding())
        })
    }

    /// What the maintenance task should do for an index next.
    pub fn index_work(&self, index_id: u32) -> IndexWork {
        if !self.index_needs_work(index_id) {
            return IndexWork::Idle;
        }
        let ix = &self.indexes.by_id[&index_id];
        match &ix.index {
            Index::Hnsw(h) if ix.waiting && h.open_cursors() > 0 => IndexWork::WaitingForCursors,
            _ => IndexWork::Step,
        }
    }

    /// One bounded step of an index's maintenance: inserts up to `max_rows` unbuilt rows, or
    /// else advances a tombstone rebuild by as many rows. Returns whether work is left.
    ///
    /// The server calls it only as the apply of an [`IndexOp::Step`](crate::record::IndexOp)
    /// record, so the graph is a function of the log (replay takes the same steps between the
    /// same writes).
    pub fn index_build_step(&mut self, index_id: u32, max_rows: usize) -> bool {
        let Some(ix) = self.indexes.by_id.get_mut(&index_id) else {
            return false;
        };
        ix.waiting = false;
        if ix.build_pos < ix.unbuilt.len() {
            let table = self.tables.get(&ix.table_id);
            let end = ix
                .build_pos
                .saturating_add(max_rows.max(1))
                .min(ix.unbuilt.len());
            for i in ix.build_pos..end {
                let row = ix.unbuilt[i];
                ix.clear_pending(row);
                let Some(key) = ix.keys.get(row as usize).clone() else {
                    ix.free.push(row); // deleted while pending
                    continue;
                };
                let v = table
                    .and_then(|t| t.rows.get(&key))
                    .and_then(|r| row_vector(r, ix.column));
                let v = v.expect("a pending row with a key has its vector in the table");
                if ix.index.upsert(row, v).is_err() {
                    // Checked at creation; a later write of a zero cosine vector is refused
                    // by validation. Leave the row out rather than stop the build.
                    ix.skipped += 1;
                    ix.release(&key);
                }
            }
            ix.build_pos = end;
            if ix.build_pos == ix.unbuilt.len() {
                ix.unbuilt = Rc::from([]);
                ix.build_pos = 0;
                ix.pending = Vec::new();
            }
        } else if let Index::Hnsw(h) = &mut ix.index {
            if h.needs_rebuild() || h.rebuilding() {
                let step = h.rebuild_step(max_rows);
                ix.waiting = step == tarn_vectors::RebuildStep::WaitingForCursors;
            }
        }
        self.index_needs_work(index_id)
    }
}

#[path = "filter_memo.rs"]
mod filter_memo;
#[path = "knn.rs"]
mod knn;

use filter_memo::FilterMemos;

#[path = "index_checkpoint.rs"]
pub(super) mod index_checkpoint;
