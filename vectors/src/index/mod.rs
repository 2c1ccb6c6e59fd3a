//! The index abstraction: the [`VectorIndex`] trait, the [`Index`] enum that dispatches to
//! its implementations (Qdrant-style), and the types of a search.

mod exact;
mod hnsw;

use std::cmp::Ordering;

pub use exact::ExactIndex;
pub use hnsw::{
    unframe, BlockCount, CowVec, Decoder, Encoder, HnswIndex, HnswParams, HnswSnapshot,
    RebuildStep, CHUNK_FRAME_BYTES, HNSW_FORMAT_VERSION, HNSW_MAGIC,
};

use crate::error::VectorError;
use crate::metric::Metric;

/// A row's handle in an index: assigned by the owner of the rows (the shard), opaque here.
pub type RowId = u64;

/// One search result.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Neighbor {
    pub row: RowId,
    /// The reported distance ([`Metric`]'s table): what `<->`, `<=>` or `<#>` would return.
    pub distance: f32,
    /// What results are ordered by, with `row`: the squared distance for L2, equal to
    /// `distance` for cosine and inner product. Never NaN, never −0.0. A merge of several
    /// indexes' results (one per shard) must order by `(key, row)` — [`merge_neighbors`] —
    /// since two L2 keys can round to the same `distance`.
    pub key: f32,
}

impl Neighbor {
    /// The result order: ascending `key`, then ascending `row`.
    #[inline]
    pub fn rank_cmp(&self, other: &Neighbor) -> Ordering {
        self.key
            .total_cmp(&other.key)
            .then(self.row.cmp(&other.row))
    }
}

/// The `k` best of several result lists (e.g. one per shard, over disjoint rows) in result
/// order: the same list one index over all their rows would return.
pub fn merge_neighbors(lists: impl IntoIterator<Item = Vec<Neighbor>>, k: usize) -> Vec<Neighbor> {
    let mut all: Vec<Neighbor> = lists.into_iter().flatten().collect();
    all.sort_unstable_by(Neighbor::rank_cmp);
    all.truncate(k);
    all
}

/// Tuning of one search. The exact index ignores every field.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SearchParams {
    /// HNSW's candidate-list size (`ef_search`); `None` for the index's default.
    pub ef: Option<usize>,
}

/// What a search step left to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// More rows to visit: call `search_step` again (after yielding).
    More,
    /// Every row was visited: [`SearchCursor::finish`] returns the result.
    Done,
}

/// An open search, advanced in bounded steps by [`VectorIndex::search_step`] so a shard can
/// yield between steps. It answers as of the moment it was started (see the crate docs on
/// snapshots); while it lives, its index keeps the vectors it still has to visit.
#[derive(Debug)]
pub struct SearchCursor {
    inner: CursorInner,
}

#[derive(Debug)]
enum CursorInner {
    Exact(exact::ExactCursor),
    Hnsw(hnsw::HnswCursor),
}

impl SearchCursor {
    /// Whether every row has been visited.
    pub fn is_done(&self) -> bool {
        match &self.inner {
            CursorInner::Exact(c) => c.is_done(),
            CursorInner::Hnsw(c) => c.is_done(),
        }
    }

    /// Rows visited so far (live at the cursor's start; filtered out ones included).
    pub fn rows_visited(&self) -> usize {
        match &self.inner {
            CursorInner::Exact(c) => c.rows_visited(),
            CursorInner::Hnsw(c) => c.rows_visited(),
        }
    }

    /// Rows passed through the filter so far: every visited row of an exact scan; of a graph
    /// search only those that could enter its results (a farther row's verdict cannot matter).
    pub fn filter_calls(&self) -> usize {
        match &self.inner {
            CursorInner::Exact(c) => c.rows_visited(),
            CursorInner::Hnsw(c) => c.filter_calls(),
        }
    }

    /// Rows that passed the filter so far (their distance was computed).
    pub fn rows_matched(&self) -> usize {
        match &self.inner {
            CursorInner::Exact(c) => c.rows_matched(),
            CursorInner::Hnsw(c) => c.rows_matched(),
        }
    }

    /// Distances computed so far (the drift-free measure of a search's work).
    pub fn distances(&self) -> usize {
        match &self.inner {
            CursorInner::Exact(c) => c.rows_matched(),
            CursorInner::Hnsw(c) => c.distances(),
        }
    }

    /// The result: at most `k` neighbours in result order ([`Neighbor::rank_cmp`]). Panics if
    /// the search is not [done](SearchCursor::is_done).
    pub fn finish(self) -> Vec<Neighbor> {
        match self.inner {
            CursorInner::Exact(c) => c.finish(),
            CursorInner::Hnsw(c) => c.finish(),
        }
    }
}

/// A vector index over rows: one vector per row, all of one dimension, compared by one metric.
///
/// Writes check the vector completely before changing anything: on an error the index is
/// unchanged.
pub trait VectorIndex {
    /// The metric the index orders by.
    fn metric(&self) -> Metric;

    /// Components of every vector.
    fn dim(&self) -> usize;

    /// Live rows.
    fn len(&self) -> usize;

    /// Whether there are no live rows.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Heap bytes held (capacity, not length), plus the index value itself.
    fn memory_bytes(&self) -> usize;

    /// Whether `row` is live.
    fn contains(&self, row: RowId) -> bool;

    /// The stored (prepared: normalized for cosine) vector of `row`.
    fn vector(&self, row: RowId) -> Option<&[f32]>;

    /// Sets the vector of `row`, inserting the row or replacing its vector; `Ok(true)` if the
    /// row was new. Errors ([`Metric::check`]) leave the index unchanged.
    fn upsert(&mut self, row: RowId, vector: &[f32]) -> Result<bool, VectorError>;

    /// Removes `row`; `true` if it was live.
    fn delete(&mut self, row: RowId) -> bool;

    /// Opens a search for the `k` nearest rows to `query` ([`Metric::check`]ed; `k` in
    /// `1..=MAX_K`). Nothing is visited yet.
    fn start_search(
        &self,
        query: &[f32],
        k: usize,
        params: &SearchParams,
    ) -> Result<SearchCursor, VectorError>;

    /// Visits up to `max_rows` more rows (at least one) of `cursor`'s snapshot. `filter` is
    /// called once per visited row, before its distance is computed; only rows it accepts
    /// are candidates. Panics if `cursor` was opened on another index.
    fn search_step(
        &self,
        cursor: &mut SearchCursor,
        filter: &dyn Fn(RowId) -> bool,
        max_rows: usize,
    ) -> Step;

    /// The whole search in one call: the `k` nearest rows accepted by `filter`, in result
    /// order; `min(k, accepted rows)` of them for an exact index. Runs without yielding:
    /// on a shard, use [`VectorIndex::start_search`] and bounded steps instead.
    fn search(
        &self,
        query: &[f32],
        k: usize,
        filter: &dyn Fn(RowId) -> bool,
        params: &SearchParams,
    ) -> Result<Vec<Neighbor>, VectorError> {
        let mut cursor = self.start_search(query, k, params)?;
        while self.search_step(&mut cursor, filter, usize::MAX) == Step::More {}
        Ok(cursor.finish())
    }
}

/// Every index kind, dispatching to its implementation.
// One value per index per shard, long-lived: the size difference costs nothing, and a box
// would add an indirection to every search step.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Index {
    Exact(ExactIndex),
    Hnsw(HnswIndex),
}

impl VectorIndex for Index {
    fn metric(&self) -> Metric {
        match self {
            Index::Exact(i) => i.metric(),
            Index::Hnsw(i) => i.metric(),
        }
    }

    fn dim(&self) -> usize {
        match self {
            Index::Exact(i) => i.dim(),
            Index::Hnsw(i) => i.dim(),
        }
    }

    fn len(&self) -> usize {
        match self {
            Index::Exact(i) => i.len(),
            Index::Hnsw(i) => i.len(),
        }
    }

    fn memory_bytes(&self) -> usize {
        match self {
            Index::Exact(i) => i.memory_bytes(),
            Index::Hnsw(i) => i.memory_bytes(),
        }
    }

    fn contains(&self, row: RowId) -> bool {
        match self {
            Index::Exact(i) => i.contains(row),
            Index::Hnsw(i) => i.contains(row),
        }
    }

    fn vector(&self, row: RowId) -> Option<&[f32]> {
        match self {
            Index::Exact(i) => i.vector(row),
            Index::Hnsw(i) => i.vector(row),
        }
    }

    fn upsert(&mut self, row: RowId, vector: &[f32]) -> Result<bool, VectorError> {
        match self {
            Index::Exact(i) => i.upsert(row, vector),
            Index::Hnsw(i) => i.upsert(row, vector),
        }
    }

    fn delete(&mut self, row: RowId) -> bool {
        match self {
            Index::Exact(i) => i.delete(row),
            Index::Hnsw(i) => i.delete(row),
        }
    }

    fn start_search(
        &self,
        query: &[f32],
        k: usize,
        params: &SearchParams,
    ) -> Result<SearchCursor, VectorError> {
        match self {
            Index::Exact(i) => i.start_search(query, k, params),
            Index::Hnsw(i) => i.start_search(query, k, params),
        }
    }

    fn search_step(
        &self,
        cursor: &mut SearchCursor,
        filter: &dyn Fn(RowId) -> bool,
        max_rows: usize,
    ) -> Step {
        match self {
            Index::Exact(i) => i.search_step(cursor, filter, max_rows),
            Index::Hnsw(i) => i.search_step(cursor, filter, max_rows),
        }
    }
}

impl From<ExactIndex> for Index {
    fn from(i: ExactIndex) -> Index {
        Index::Exact(i)
    }
}

impl From<HnswIndex> for Index {
    fn from(i: HnswIndex) -> Index {
        Index::Hnsw(i)
    }
}
