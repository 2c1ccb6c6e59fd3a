//! [`ExactIndex`]: brute-force search over vectors stored contiguously in blocks.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};
use std::fmt;
use std::rc::Rc;

use super::{CursorInner, Neighbor, RowId, SearchCursor, SearchParams, Step, VectorIndex};
use crate::distance::Kernels;
use crate::error::VectorError;
use crate::limits::{BLOCK_BYTES, COMPACT_PER_WRITE, MAX_K};
use crate::metric::Metric;
use crate::validate::check_dimensions;

/// `died` of a live slot.
const ALIVE: u64 = u64::MAX;

/// An exact index: every search computes the distance to every row the filter accepts and
/// keeps the best `k` in a bounded max-heap, so it returns exactly `min(k, accepted rows)`
/// rows, the true nearest ones (ties broken by row id).
///
/// Layout: slot `p` (dense, `0..slots`) holds one vector at block `p / rows_per_block`,
/// offset `p % rows_per_block` (blocks of [`BLOCK_BYTES`], see there why), its row id in
/// `rows[p]` and its death epoch in `died[p]`; a hash map takes a live row to its slot. With
/// no search cursor open, an update overwrites the slot and a delete swap-removes it (the
/// last slot moves into the hole): O(dim) each, and the slots stay dense. While a cursor is
/// open (its snapshot must stay valid), a delete or an update instead marks the old slot dead
/// at the current epoch — a tombstone — and an update appends a new slot; tombstones are
/// swap-removed later, [`COMPACT_PER_WRITE`] per write once no cursor is open, or by
/// [`ExactIndex::compact`].
pub struct ExactIndex {
    metric: Metric,
    dim: usize,
    kernels: Kernels,
    rows_per_block: usize,
    blocks: Vec<Box<[f32]>>,
    rows: Vec<RowId>,
    died: Vec<u64>,
    slots: HashMap<RowId, usize, foldhash::fast::RandomState>,
    /// Positions of tombstones (may also hold stale positions, skipped when popped).
    dead: Vec<usize>,
    /// Writes so far: write number `e` kills slots with `died = e`.
    epoch: u64,
    /// One reference per open cursor besides this one.
    pin: Rc<()>,
}

impl ExactIndex {
    /// An empty index of `dim`-dimensional vectors (`1..=MAX_DIMENSIONS`) using
    /// [`Kernels::detected`].
    pub fn new(metric: Metric, dim: usize) -> Result<ExactIndex, VectorError> {
        ExactIndex::with_kernels(metric, dim, Kernels::detected())
    }

    /// An empty index using the given kernels (the same results with any kernels).
    pub fn with_kernels(
        metric: Metric,
        dim: usize,
        kernels: Kernels,
    ) -> Result<ExactIndex, VectorError> {
        check_dimensions(dim)?;
        Ok(ExactIndex {
            metric,
            dim,
            kernels,
            rows_per_block: (BLOCK_BYTES / (4 * dim)).max(1),
            blocks: Vec::new(),
            rows: Vec::new(),
            died: Vec::new(),
            slots: HashMap::default(),
            dead: Vec::new(),
            epoch: 0,
            pin: Rc::new(()),
        })
    }

    /// The kernels this index computes distances with.
    pub fn kernels(&self) -> Kernels {
        self.kernels
    }

    /// Reserves room for `additional` more rows in the row tables (not the vector blocks,
    /// which are allocated one at a time).
    pub fn reserve(&mut self, additional: usize) {
        self.rows.reserve(additional);
        self.died.reserve(additional);
        self.slots.reserve(additional);
    }

    /// Search cursors open on this index.
    pub fn open_cursors(&self) -> usize {
        Rc::strong_count(&self.pin) - 1
    }

    /// Tombstoned slots not yet removed.
    pub fn tombstones(&self) -> usize {
        self.rows.len() - self.slots.len()
    }

    /// Removes up to `max` tombstones if no cursor is open; returns how many it removed.
    pub fn compact(&mut self, max: usize) -> usize {
        if self.pinned() {
            return 0;
        }
        let mut removed = 0;
        while removed < max && self.compact_one() {
            removed += 1;
        }
        if self.tombstones() == 0 {
            self.dead.clear();
        }
        removed
    }

    fn pinned(&self) -> bool {
        Rc::strong_count(&self.pin) > 1
    }

    fn slot_vector(&self, p: usize) -> &[f32] {
        let (b, o) = (p / self.rows_per_block, p % self.rows_per_block);
        &self.blocks[b][o * self.dim..(o + 1) * self.dim]
    }

    fn slot_vector_mut(&mut self, p: usize) -> &mut [f32] {
        let (b, o) = (p / self.rows_per_block, p % self.rows_per_block);
        &mut self.blocks[b][o * self.dim..(o + 1) * self.dim]
    }

    /// Writes `v` prepared into slot `p`.
    fn write_slot(&mut self, p: usize, v: &[f32]) {
        let metric = self.metric;
        metric.prepare_into(v, self.slot_vector_mut(p));
    }

    /// Appends a live slot for `row` (not in `slots`).
    fn append(&mut self, row: RowId, v: &[f32]) {
        let p = self.rows.len();
        if p == self.blocks.len() * self.rows_per_block {
            let block = vec![0.0f32; self.rows_per_block * self.dim];
            self.blocks.push(block.into_boxed_slice());
        }
        self.rows.push(row);
        self.died.push(ALIVE);
        self.write_slot(p, v);
        let old = self.slots.insert(row, p);
        debug_assert!(old.is_none());
    }

    /// Tombstones slot `p` (its row already left `slots`) at the current epoch.
    fn kill(&mut self, p: usize) {
        debug_assert_eq!(self.died[p], ALIVE);
        self.died[p] = self.epoch;
        self.dead.push(p);
    }

    /// Swap-removes slot `p` (dead, or live with its row already out of `slots`).
    fn remove_slot(&mut self, p: usize) {
        let last = self.rows.len() - 1;
        if p != last {
            self.copy_slot(last, p);
            self.rows[p] = self.rows[last];
            self.died[p] = self.died[last];
            if self.died[p] == ALIVE {
                let s = self
                    .slots
                    .get_mut(&self.rows[p])
                    .expect("live slot has a row");
                *s = p;
            }
        }
        self.rows.pop();
        self.died.pop();
        // Keep at most one empty block beyond the slots in use.
        let needed = self.rows.len().div_ceil(self.rows_per_block);
        while self.blocks.len() > needed + 1 {
            self.blocks.pop();
        }
    }

    /// Copies the vector of slot `from` over slot `to < from`.
    fn copy_slot(&mut self, from: usize, to: usize) {
        debug_assert!(to < from);
        let (d, rpb) = (self.dim, self.rows_per_block);
        let (bf, of) = (from / rpb, from % rpb);
        let (bt, ot) = (to / rpb, to % rpb);
        if bf == bt {
            self.blocks[bf].copy_within(of * d..(of + 1) * d, ot * d);
        } else {
            let (lo, hi) = self.blocks.split_at_mut(bf);
            lo[bt][ot * d..(ot + 1) * d].copy_from_slice(&hi[0][of * d..(of + 1) * d]);
        }
    }

    /// Removes one tombstone; `false` if there is none.
    fn compact_one(&mut self) -> bool {
        while let Some(p) = self.dead.pop() {
            if p >= self.rows.len() || self.died[p] == ALIVE {
                continue; // stale: truncated away, or the position was reused
            }
            self.remove_slot(p);
            if p < self.rows.len() && self.died[p] != ALIVE {
                self.dead.push(p); // another tombstone moved into the hole
            }
            return true;
        }
        false
    }

    /// Starts a write: a new epoch, and with no cursor open some compaction. Returns whether
    /// a cursor is open.
    fn begin_write(&mut self) -> bool {
        self.epoch += 1;
        let pinned = self.pinned();
        if !pinned && self.tombstones() > 0 {
            self.compact(COMPACT_PER_WRITE);
        }
        pinned
    }

    fn scan<F: Fn(&[f32], &[f32]) -> f32>(
        &self,
        c: &mut ExactCursor,
        filter: &dyn Fn(RowId) -> bool,
        stop: usize,
        key: F,
    ) {
        let (d, rpb) = (self.dim, self.rows_per_block);
        let mut p = c.next;
        while p < stop {
            let (b, o) = (p / rpb, p % rpb);
            let n = (rpb - o).min(stop - p);
            let vectors = &self.blocks[b][o * d..(o + n) * d];
            let rows = &self.rows[p..p + n];
            let died = &self.died[p..p + n];
            for ((v, &row), &died) in vectors.chunks_exact(d).zip(rows).zip(died) {
                if died <= c.epoch {
                    continue; // dead before the cursor started
                }
                c.visited += 1;
                if !filter(row) {
                    continue;
                }
                c.matched += 1;
                c.offer(key(&c.query, v), row);
            }
            p += n;
        }
        c.next = stop;
    }
}

impl VectorIndex for ExactIndex {
    fn metric(&self) -> Metric {
        self.metric
    }

    fn dim(&self) -> usize {
        self.dim
    }

    fn len(&self) -> usize {
        self.slots.len()
    }

    fn memory_bytes(&self) -> usize {
        use std::mem::size_of;
        size_of::<ExactIndex>()
            + self.blocks.capacity() * size_of::<Box<[f32]>>()
            + self.blocks.len() * self.rows_per_block * self.dim * size_of::<f32>()
            + self.rows.capacity() * size_of::<RowId>()
            + self.died.capacity() * size_of::<u64>()
            + self.dead.capacity() * size_of::<usize>()
            // hashbrown: one bucket and one control byte per slot of capacity (approximately).
            + self.slots.capacity() * (size_of::<(RowId, usize)>() + 1)
    }

    fn contains(&self, row: RowId) -> bool {
        self.slots.contains_key(&row)
    }

    fn vector(&self, row: RowId) -> Option<&[f32]> {
        self.slots.get(&row).map(|&p| self.slot_vector(p))
    }

    fn upsert(&mut self, row: RowId, vector: &[f32]) -> Result<bool, VectorError> {
        self.metric.check(vector, self.dim)?;
        let pinned = self.begin_write();
        match self.slots.get(&row).copied() {
            Some(p) if !pinned => {
                self.write_slot(p, vector);
                Ok(false)
            }
            Some(p) => {
                self.slots.remove(&row);
                self.kill(p);
                self.append(row, vector);
                Ok(false)
            }
            None => {
                self.append(row, vector);
                Ok(true)
            }
        }
    }

    fn delete(&mut self, row: RowId) -> bool {
        if !self.slots.contains_key(&row) {
            return false;
        }
        let pinned = self.begin_write();
        // Looked up after `begin_write`: compaction may have moved the slot.
        let p = self.slots.remove(&row).expect("checked above");
        if pinned {
            self.kill(p);
        } else {
            self.remove_slot(p);
        }
        true
    }

    fn start_search(
        &self,
        query: &[f32],
        k: usize,
        _params: &SearchParams,
    ) -> Result<SearchCursor, VectorError> {
        if k == 0 || k > MAX_K {
            return Err(VectorError::k_out_of_range(k));
        }
        let query = self.metric.prepare(query, self.dim)?;
        Ok(SearchCursor {
            inner: CursorInner::Exact(ExactCursor {
                pin: Rc::clone(&self.pin),
                metric: self.metric,
                query,
                k,
                epoch: self.epoch,
                next: 0,
                end: self.rows.len(),
                heap: BinaryHeap::with_capacity(k.min(self.len())),
                visited: 0,
                matched: 0,
            }),
        })
    }

    fn search_step(
        &self,
        cursor: &mut SearchCursor,
        filter: &dyn Fn(RowId) -> bool,
        max_rows: usize,
    ) -> Step {
        let CursorInner::Exact(c) = &mut cursor.inner else {
            panic!("search cursor stepped on another index than the one that opened it");
        };
        assert!(
            Rc::ptr_eq(&c.pin, &self.pin),
            "search cursor stepped on another index than the one that opened it"
        );
        let stop = c.end.min(c.next.saturating_add(max_rows.max(1)));
        let k = self.kernels;
        match self.metric {
            Metric::L2 => self.scan(c, filter, stop, |q, v| Metric::L2.key(k, q, v)),
            Metric::Cosine => self.scan(c, filter, stop, |q, v| Metric::Cosine.key(k, q, v)),
            Metric::InnerProduct => {
                self.scan(c, filter, stop, |q, v| Metric::InnerProduct.key(k, q, v))
            }
        }
        if c.is_done() {
            Step::Done
        } else {
            Step::More
        }
    }
}

impl Clone for ExactIndex {
    /// A copy with its own (unshared) cursor pin: cursors of the original do not pin it.
    fn clone(&self) -> ExactIndex {
        ExactIndex {
            metric: self.metric,
            dim: self.dim,
            kernels: self.kernels,
            rows_per_block: self.rows_per_block,
            blocks: self.blocks.clone(),
            rows: self.rows.clone(),
            died: self.died.clone(),
            slots: self.slots.clone(),
            dead: self.dead.clone(),
            epoch: self.epoch,
            pin: Rc::new(()),
        }
    }
}

impl fmt::Debug for ExactIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExactIndex")
            .field("metric", &self.metric)
            .field("dim", &self.dim)
            .field("kernels", &self.kernels.name())
            .field("len", &self.slots.len())
            .field("tombstones", &self.tombstones())
            .field("epoch", &self.epoch)
            .field("open_cursors", &self.open_cursors())
            .finish()
    }
}

/// A heap entry, ordered like the results: `(key, row)` (also the HNSW cursor's results).
#[derive(Clone, Copy, Debug)]
pub(super) struct Candidate {
    pub(super) key: f32,
    pub(super) row: RowId,
}

impl Ord for Candidate {
    fn cmp(&self, other: &Candidate) -> Ordering {
        self.key
            .total_cmp(&other.key)
            .then(self.row.cmp(&other.row))
    }
}

impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Candidate) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Candidate {
    fn eq(&self, other: &Candidate) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Candidate {}

/// The state of one exact search: the slots `next..end` of the snapshot still to visit and
/// the best `k` so far in a max-heap (its top is the worst kept).
pub(super) struct ExactCursor {
    pin: Rc<()>,
    metric: Metric,
    query: Vec<f32>,
    k: usize,
    /// Writes before the search: slots dead at or before it are not in the snapshot.
    epoch: u64,
    next: usize,
    /// Slots at the start; later appends are not in the snapshot.
    end: usize,
    heap: BinaryHeap<Candidate>,
    visited: usize,
    matched: usize,
}

impl ExactCursor {
    pub(super) fn is_done(&self) -> bool {
        self.next == self.end
    }

    pub(super) fn rows_visited(&self) -> usize {
        self.visited
    }

    pub(super) fn rows_matched(&self) -> usize {
        self.matched
    }

    #[inline]
    fn offer(&mut self, key: f32, row: RowId) {
        let cand = Candidate { key, row };
        if self.heap.len() < self.k {
            self.heap.push(cand);
        } else if let Some(mut top) = self.heap.peek_mut() {
            if cand < *top {
                *top = cand;
            }
        }
    }

    pub(super) fn finish(self) -> Vec<Neighbor> {
        assert!(
            self.is_done(),
            "search cursor finished before its last step"
        );
        let metric = self.metric;
        self.heap
            .into_sorted_vec()
            .into_iter()
            .map(|c| Neighbor {
                row: c.row,
                distance: metric.distance_from_key(c.key),
                key: c.key,
            })
            .collect()
    }
}

impl fmt::Debug for ExactCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExactCursor")
            .field("metric", &self.metric)
            .field("k", &self.k)
            .field("epoch", &self.epoch)
            .field("next", &self.next)
            .field("end", &self.end)
            .field("kept", &self.heap.len())
            .finish()
    }
}
