//! [`HnswIndex`]: a hierarchical navigable small-world graph (Malkov & Yashunin), written
//! here after hnswlib's algorithm rather than taken from `hnsw_rs` (see the crate docs for
//! why).

mod build;
mod check;
mod codec;
mod cursor;
mod snapshot;
mod store;

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::rc::Rc;

use build::Space;
pub use codec::{unframe, Decoder, Encoder, CHUNK_FRAME_BYTES, HNSW_FORMAT_VERSION, HNSW_MAGIC};
pub(crate) use cursor::HnswCursor;
use cursor::{Pool, Start};
pub use snapshot::HnswSnapshot;
pub use store::{BlockCount, CowVec};
use store::{Graph, ALIVE};

use super::{CursorInner, RowId, SearchCursor, SearchParams, Step, VectorIndex};
use crate::distance::Kernels;
use crate::error::VectorError;
use crate::limits::{
    HNSW_EF_CONSTRUCTION_MAX, HNSW_EF_CONSTRUCTION_MIN, HNSW_EF_SEARCH_MAX, HNSW_EF_SEARCH_MIN,
    HNSW_M_MAX, HNSW_M_MIN, HNSW_REBUILD_TOMBSTONE_PERCENT, MAX_K,
};
use crate::metric::Metric;
use crate::validate::check_dimensions;

/// The parameters of an HNSW index, with pgvector's names and defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HnswParams {
    /// Links per node on the upper layers; `2·m` on layer 0 (hnswlib's `M`).
    pub m: usize,
    /// Candidate-list size while inserting.
    pub ef_construction: usize,
    /// Candidate-list size of a search that does not give its own `ef`.
    pub ef_search: usize,
    /// Seed of the level draws: the same seed and writes give the same graph.
    pub seed: u64,
}

impl Default for HnswParams {
    /// pgvector's defaults (`m` 16, `ef_construction` 64, `ef_search` 40), seed 0.
    fn default() -> HnswParams {
        HnswParams {
            m: 16,
            ef_construction: 64,
            ef_search: 40,
            seed: 0,
        }
    }
}

/// `Ok` if `value` of parameter `name` is in `min..=max`.
fn check_range(
    name: &'static str,
    value: usize,
    min: usize,
    max: usize,
) -> Result<(), VectorError> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(VectorError::ParameterOutOfRange {
            name,
            value,
            min,
            max,
        })
    }
}

impl HnswParams {
    /// Checks every parameter against its range (limits.rs) and `ef_construction ≥ m`.
    pub fn validate(&self) -> Result<(), VectorError> {
        check_range("m", self.m, HNSW_M_MIN, HNSW_M_MAX)?;
        check_range(
            "ef_construction",
            self.ef_construction,
            HNSW_EF_CONSTRUCTION_MIN,
            HNSW_EF_CONSTRUCTION_MAX,
        )?;
        check_range(
            "ef_search",
            self.ef_search,
            HNSW_EF_SEARCH_MIN,
            HNSW_EF_SEARCH_MAX,
        )?;
        if self.ef_construction < self.m {
            return Err(VectorError::EfConstructionBelowM {
                ef_construction: self.ef_construction,
                m: self.m,
            });
        }
        Ok(())
    }
}

/// A graph index. Each row is one node; an update tombstones the row's node and inserts a
/// new one, a delete tombstones it. Tombstones are never returned but still route searches;
/// [`HnswIndex::needs_rebuild`] says when they exceed
/// [`crate::HNSW_REBUILD_TOMBSTONE_PERCENT`] and [`HnswIndex::rebuild_step`] rebuilds the
/// graph from the live rows in bounded steps.
pub struct HnswIndex {
    metric: Metric,
    dim: usize,
    kernels: Kernels,
    params: HnswParams,
    graph: Graph,
    nodes: HashMap<RowId, u32, foldhash::fast::RandomState>,
    /// The node searches start from: the first node of the highest layer.
    entry: Option<u32>,
    /// Writes so far; a node tombstoned by write `e` has `died = e`.
    epoch: u64,
    /// The largest squared norm inserted (`ip` only): `M²` of the inner-product reduction.
    max_norm2: f32,
    /// Visited list of inserts.
    scratch: store::Visited,
    pool: Pool,
    /// One reference per open cursor besides this one.
    pin: Rc<()>,
    rebuild: Option<Box<Rebuild>>,
}

/// A rebuild in progress: the fresh graph and the next old node to copy into it.
struct Rebuild {
    fresh: HnswIndex,
    next: u32,
}

/// What [`HnswIndex::rebuild_step`] left to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RebuildStep {
    /// Rows remain to copy: call again.
    More,
    /// Every row is copied but a search cursor is open: call again once it is dropped.
    WaitingForCursors,
    /// The rebuilt graph replaced the old one.
    Done,
}

impl HnswIndex {
    /// An empty index of `dim`-dimensional vectors with `params` (validated).
    pub fn new(metric: Metric, dim: usize, params: HnswParams) -> Result<HnswIndex, VectorError> {
        HnswIndex::with_kernels(metric, dim, params, Kernels::detected())
    }

    /// An empty index using the given kernels (the same graph and results with any kernels).
    pub fn with_kernels(
        metric: Metric,
        dim: usize,
        params: HnswParams,
        kernels: Kernels,
    ) -> Result<HnswIndex, VectorError> {
        check_dimensions(dim)?;
        params.validate()?;
        Ok(HnswIndex {
            metric,
            dim,
            kernels,
            params,
            graph: Graph::new(dim, params.m),
            nodes: HashMap::default(),
            entry: None,
            epoch: 0,
            max_norm2: 0.0,
            scratch: store::Visited::default(),
            pool: Rc::new(RefCell::new(Vec::new())),
            pin: Rc::new(()),
            rebuild: None,
        })
    }

    pub fn params(&self) -> HnswParams {
        self.params
    }

    pub fn kernels(&self) -> Kernels {
        self.kernels
    }

    fn space(&self) -> Space {
        Space {
            metric: self.metric,
            kernels: self.kernels,
        }
    }

    /// The kernels of the construction distance ([`build::Builder`]): the metric's key, L2
    /// (plus the reduction's extra component) for `ip`.
    fn build_space(&self) -> Space {
        let metric = match self.metric {
            Metric::InnerProduct => Metric::L2,
            m => m,
        };
        Space {
            metric,
            kernels: self.kernels,
        }
    }

    /// Nodes in the graph, live and tombstoned.
    pub fn nodes(&self) -> usize {
        self.graph.nodes()
    }

    /// Tombstoned nodes (deleted rows and replaced vectors).
    pub fn tombstones(&self) -> usize {
        self.graph.nodes() - self.nodes.len()
    }

    /// Search cursors open on this index.
    pub fn open_cursors(&self) -> usize {
        Rc::strong_count(&self.pin) - 1
    }

    /// Whether tombstones exceed [`HNSW_REBUILD_TOMBSTONE_PERCENT`] of the nodes.
    pub fn needs_rebuild(&self) -> bool {
        self.tombstones() * 100 > HNSW_REBUILD_TOMBSTONE_PERCENT * self.graph.nodes()
    }

    /// Whether a rebuild is in progress.
    pub fn rebuilding(&self) -> bool {
        self.rebuild.is_some()
    }

    /// Copies up to `max_rows` live rows into a fresh graph (starting one if none is in
    /// progress) and swaps it in when every row is copied and no cursor is open. Writes meanwhile go to both graphs, so the fresh one is complete when swapped
    /// in. Each copied row costs one insert (about `ef_construction · 2·m` distances).
    pub fn rebuild_step(&mut self, max_rows: usize) -> RebuildStep {
        if self.rebuild.is_none() {
            let fresh = HnswIndex::with_kernels(self.metric, self.dim, self.params, self.kernels)
                .expect("parameters were valid");
            self.rebuild = Some(Box::new(Rebuild { fresh, next: 0 }));
        }
        let mut r = self.rebuild.take().expect("set above");
        let mut copied = 0;
        while copied < max_rows.max(1) && (r.next as usize) < self.graph.nodes() {
            let n = r.next;
            r.next += 1;
            let row = self.graph.rows[n as usize];
            if self.graph.is_alive(n) && !r.fresh.contains(row) {
                r.fresh.insert_node_for(row, self.graph.vector(n));
                copied += 1;
            }
        }
        if (r.next as usize) < self.graph.nodes() {
            self.rebuild = Some(r);
            return RebuildStep::More;
        }
        if self.open_cursors() > 0 {
            self.rebuild = Some(r);
            return RebuildStep::WaitingForCursors;
        }
        let mut fresh = r.fresh;
        fresh.epoch = self.epoch;
        debug_assert_eq!(fresh.nodes.len(), self.nodes.len());
        *self = fresh;
        RebuildStep::Done
    }

    /// Adds a new node for `row` with the prepared vector `v` (the row must not be live).
    fn insert_node_for(&mut self, row: RowId, v: &[f32]) {
        let node = self.insert_node(row, v);
        let old = self.nodes.insert(row, node);
        debug_assert!(old.is_none());
    }

    /// A search that scans every node of the snapshot (the planner's exact plan): exactly
    /// `min(k, accepted rows)` rows, the nearest.
    pub fn start_exact_search(&self, query: &[f32], k: usize) -> Result<SearchCursor, VectorError> {
        self.open_cursor(query, k, &SearchParams::default(), true)
    }

    /// The `ef` of a search of `k` rows with `params` (the index default if none), after
    /// checking `k` and `ef` against their ranges.
    pub fn search_ef(&self, k: usize, params: &SearchParams) -> Result<usize, VectorError> {
        if k == 0 || k > MAX_K {
            return Err(VectorError::k_out_of_range(k));
        }
        let ef = params.ef.unwrap_or(self.params.ef_search);
        check_range("ef", ef, HNSW_EF_SEARCH_MIN, HNSW_EF_SEARCH_MAX)?;
        Ok(ef)
    }

    fn open_cursor(
        &self,
        query: &[f32],
        k: usize,
        params: &SearchParams,
        exact: bool,
    ) -> Result<SearchCursor, VectorError> {
        let ef = self.search_ef(k, params)?;
        let query = self.metric.prepare(query, self.dim)?;
        let start = Start {
            graph: &self.graph,
            pin: &self.pin,
            pool: &self.pool,
            space: self.space(),
            entry: self.entry,
            epoch: self.epoch,
        };
        Ok(SearchCursor {
            inner: CursorInner::Hnsw(HnswCursor::new(start, query, k, ef, exact)),
        })
    }

    /// Up to `max` live rows spread evenly over the nodes (deterministic), for estimates.
    pub fn sample_rows(&self, max: usize, out: &mut Vec<RowId>) {
        let n = self.graph.nodes();
        if n == 0 || max == 0 {
            return;
        }
        let stride = n.div_ceil(max).max(1);
        for i in (0..n).step_by(stride) {
            if self.graph.died[i] == ALIVE {
                out.push(self.graph.rows[i]);
            }
        }
    }
}

impl VectorIndex for HnswIndex {
    fn metric(&self) -> Metric {
        self.metric
    }

    fn dim(&self) -> usize {
        self.dim
    }

    fn len(&self) -> usize {
        self.nodes.len()
    }

    fn memory_bytes(&self) -> usize {
        std::mem::size_of::<HnswIndex>()
            + self.graph.memory_bytes()
            + self.nodes.capacity() * (std::mem::size_of::<(RowId, u32)>() + 1)
            + self.scratch.memory_bytes()
            + self
                .pool
                .borrow()
                .iter()
                .map(|v| v.memory_bytes())
                .sum::<usize>()
            + self.rebuild.as_ref().map_or(0, |r| r.fresh.memory_bytes())
    }

    fn contains(&self, row: RowId) -> bool {
        self.nodes.contains_key(&row)
    }

    fn vector(&self, row: RowId) -> Option<&[f32]> {
        self.nodes.get(&row).map(|&n| self.graph.vector(n))
    }

    fn upsert(&mut self, row: RowId, vector: &[f32]) -> Result<bool, VectorError> {
        let v = self.metric.prepare(vector, self.dim)?;
        if let Some(r) = self.rebuild.as_mut() {
            r.fresh.upsert(row, vector).expect("checked above");
        }
        self.epoch += 1;
        let new = match self.nodes.remove(&row) {
            Some(old) => {
                self.graph.died[old as usize] = self.epoch;
                false
            }
            None => true,
        };
        self.insert_node_for(row, &v);
        Ok(new)
    }

    fn delete(&mut self, row: RowId) -> bool {
        let Some(node) = self.nodes.remove(&row) else {
            return false;
        };
        if let Some(r) = self.rebuild.as_mut() {
            r.fresh.delete(row);
        }
        self.epoch += 1;
        self.graph.died[node as usize] = self.epoch;
        true
    }

    fn start_search(
        &self,
        query: &[f32],
        k: usize,
        params: &SearchParams,
    ) -> Result<SearchCursor, VectorError> {
        self.open_cursor(query, k, params, false)
    }

    fn search_step(
        &self,
        cursor: &mut SearchCursor,
        filter: &dyn Fn(RowId) -> bool,
        max_rows: usize,
    ) -> Step {
        let CursorInner::Hnsw(c) = &mut cursor.inner else {
            panic!("search cursor stepped on another index than the one that opened it");
        };
        assert!(
            Rc::ptr_eq(&c.pin, &self.pin),
            "search cursor stepped on another index than the one that opened it"
        );
        c.step(&self.graph, self.space(), filter, max_rows);
        if c.is_done() {
            Step::Done
        } else {
            Step::More
        }
    }
}

impl fmt::Debug for HnswIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HnswIndex")
            .field("metric", &self.metric)
            .field("dim", &self.dim)
            .field("params", &self.params)
            .field("kernels", &self.kernels.name())
            .field("len", &self.nodes.len())
            .field("tombstones", &self.tombstones())
            .field("epoch", &self.epoch)
            .field("open_cursors", &self.open_cursors())
            .field("rebuilding", &self.rebuild.is_some())
            .finish()
    }
}
