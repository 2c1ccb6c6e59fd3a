//! `tarn-vectors`: vector indexes, distances and their rules.
//!
//! Pure computation: no I/O, no clocks, no threads. A shard owns one index per vector index
//! definition over the rows it owns and drives it: it validates and upserts vectors, deletes
//! rows, and runs searches in bounded steps between which it yields to its other tasks.
//!
//! # Metrics
//!
//! [`Metric`] has pgvector's three, names and semantics. Every metric is a distance (smaller
//! is nearer):
//!
//! - **`l2`** (`vector_l2_ops`, `<->`): the Euclidean distance `√Σ(aᵢ − bᵢ)²`. Results are
//!   ordered by the squared distance (the same order; the square root is taken only for the
//!   reported value, correctly rounded).
//! - **`cosine`** (`vector_cosine_ops`, `<=>`): `1 − cos(a, b)`, in `[0, 2]`. Vectors are
//!   normalized when stored and when searched for (`v / ‖v‖`, norm and quotient in f64,
//!   rounded to f32), and the distance is `1 − clamp(â · b̂, −1, 1)` in f32.
//! - **`ip`** (`vector_ip_ops`, `<#>`): the *negative* inner product `−Σ aᵢ·bᵢ`, so that the
//!   largest inner product is the nearest, as in pgvector.
//!
//! Names parse ASCII case-insensitively ([`Metric::parse`]); [`Metric::name`] gives the short
//! name back.
//!
//! # Rules
//!
//! - **Validation** ([`check_vector`], [`Metric::check`]): a vector has exactly the declared
//!   number of components, `1 ≤ dim ≤` [`MAX_DIMENSIONS`] = 4,096; every component is finite
//!   (the error names the 0-based position of the first NaN or ±infinity) and at most
//!   [`MAX_COMPONENT_MAGNITUDE`] = 10¹⁶ in magnitude, which keeps every distance finite so
//!   ordering never meets NaN or infinity.
//! - **The zero vector under cosine** has no direction: a cosine index refuses it, to store
//!   and as a query, with [`VectorError::ZeroVector`] (pgvector returns NaN distances, which
//!   sort last and hide the mistake). [`Metric::distance`] on unchecked input stays total: a
//!   zero vector's cosine distance to anything is exactly 1. `l2` and `ip` accept it.
//! - **k**: `1 ≤ k ≤` [`MAX_K`] = 1,000, else [`VectorError::KOutOfRange`]. Fewer matching
//!   rows than `k` give fewer results, never an error.
//! - **Order and ties**: results are sorted by `(key, row id)` ([`Neighbor::rank_cmp`]) where
//!   the key is the squared distance for `l2` and the distance otherwise; keys are never NaN
//!   or −0.0, so equal distances are broken by the smaller row id, deterministically. Per-shard
//!   results merge with [`merge_neighbors`] into what one index over all rows returns.
//! - **Determinism**: the same vectors and query give the same bits on every x86-64 CPU,
//!   with or without AVX2 (below).
//!
//! # Kernels and their accumulation order
//!
//! [`dot`], [`l2_squared`] and [`norm`] (and [`Kernels`] to pick a path) have a scalar path and
//! an AVX2+FMA path chosen at run time (detected once, cached) that return identical bits:
//! both accumulate elements `i < n − n mod 8` into 4 accumulators × 8 lanes (element `i` into
//! accumulator `(i / 8) mod 4`, lane `i mod 8`) with one fused multiply-add each, combine them
//! as `(acc0 + acc1) + (acc2 + acc3)`, reduce the 8 lanes pairwise (`l` with `l + 4`, then
//! `0` with `2` and `1` with `3`, then the two), and add the last `n mod 8` elements in order
//! with fused multiply-adds. The scalar path uses [`f32::mul_add`], a correctly rounded FMA
//! like `vfmadd`. Details in the `distance` module.
//!
//! # Indexes
//!
//! [`VectorIndex`] is the trait every index implements (upsert, delete, search with a row
//! filter, stepwise search, length, memory); [`Index`] is the enum the shard holds and that
//! dispatches to an implementation (Qdrant-style trait + enum):
//!
//! - [`ExactIndex`]: vectors stored contiguously in blocks of [`BLOCK_BYTES`] (row ids and a
//!   slot map beside them; delete by swap-remove in O(dim)), brute-force top-k with a bounded
//!   max-heap. The filter is called once per row, before its distance is computed, so a search
//!   returns exactly `min(k, rows the filter accepts)` rows, the nearest ones.
//! - [`HnswIndex`]: a hierarchical navigable small-world graph after hnswlib's algorithm
//!   (levels `⌊−ln u / ln m⌋` drawn from the seed and the node number, so the same writes give
//!   the same graph; a greedy descent, an `ef_construction` beam, hnswlib's heuristic neighbour
//!   selection for new links and for pruning). Parameters [`HnswParams`] with pgvector's names,
//!   ranges and defaults (`m` 16, `ef_construction` 64, `ef_search` 40). Storage is flat:
//!   vectors and layer-0 lists (`2·m` u32 slots) in fixed-stride blocks, upper layers only for
//!   the ~1/m nodes that have them. An update tombstones the row's node and inserts a new one,
//!   a delete tombstones it; tombstones route searches but are never returned, and
//!   [`HnswIndex::rebuild_step`] rebuilds from the live rows in bounded steps once
//!   [`HnswIndex::needs_rebuild`] (over [`HNSW_REBUILD_TOMBSTONE_PERCENT`] % tombstones).
//!   Every node has a *parent* whose link to it is never pruned, so no node becomes
//!   unreachable ([`HnswIndex::unreachable_rows`], [`HnswIndex::check_invariants`]). For `ip`
//!   the graph is linked by the L2 distance of the MIPS-to-nearest-neighbour reduction (the
//!   `build` module says why and what was measured). The filter runs inside the traversal:
//!   rejected rows route but never enter the results, a beam with fewer than `ef` accepted
//!   rows keeps going, and one that ends with fewer than `k` finishes with an exact scan of
//!   the rows it did not visit, so a search returns `min(k, accepted rows)` rows.
//!
//! Why our own HNSW and not `hnsw_rs` (the design's first choice): its main line has no
//! delete (a `mark_deleted` PR is unmerged); `search_filter` applies the filter only when a
//! candidate enters the result heap; `parallel_insert` uses rayon, which may not run on the
//! pinned cores; every edge is an `Arc` (more memory per vector than flat arrays); dumps are
//! whole and the loaded index borrows its loader; and it has open reports of points not found
//! by a search for their own vector (hnswlib-rs #32) and back-links on the wrong layer (#37),
//! the two defect classes `tests/hnsw.rs` checks here.
//!
//! **The planner** ([`plan`], [`start_planned`], [`search_planned`]) chooses an exact scan or
//! a graph search from the share of [`PLANNER_SAMPLE_ROWS`] sampled rows the filter accepts;
//! the rule is in the `planner` module.
//!
//! **Stepwise search and snapshots.** [`VectorIndex::start_search`] opens a [`SearchCursor`];
//! [`VectorIndex::search_step`] visits a bounded number of rows ([`rows_per_step`] gives a
//! step of [`SEARCH_STEP_COMPONENTS`] components, the same work at every dimension); the shard
//! yields between steps and may apply writes meanwhile. A cursor answers **as of its start**:
//! rows live then are visited exactly once with the vector they had then; rows inserted,
//! updated or deleted later do not affect it. To keep that snapshot without copying, an index
//! with an open cursor turns deletes and updates into tombstones (plus an appended slot for an
//! update) instead of overwriting or moving vectors; once no cursor is open, writes remove
//! tombstones, [`COMPACT_PER_WRITE`] at a time, and [`ExactIndex::compact`] removes them in
//! caller-sized steps. A cursor dropped without finishing releases its snapshot; one held
//! open indefinitely keeps every tombstone and every replaced vector alive (memory grows with
//! the writes meanwhile), so a shard drops a cursor with its request. [`HnswIndex`] never
//! overwrites or removes a node at all (writes tombstone and append; a rebuild is swapped in
//! only when no cursor is open), so its cursors keep the same rule; links may change between
//! steps, which changes only the route. Its step bound counts distance computations plus
//! filter calls. The one-call
//! [`VectorIndex::search`] is the same search without yielding.
//!
//! Writes ([`VectorIndex::upsert`]) check the vector completely before changing anything.
//!
//! **Point-in-time snapshots for checkpoints.** Every column of an HNSW graph (rows,
//! tombstones, levels, parents, norms, vectors, links) is stored in copy-on-write blocks of
//! about [`BLOCK_BYTES`] (`Rc<[T]>`; [`CowVec`] is the public one-value-per-slot form, which
//! the core crate also uses for its own per-index columns). [`HnswIndex::snapshot`] therefore
//! costs O(blocks), not O(nodes), and the [`HnswSnapshot`] it returns is frozen: the index's
//! later writes copy each block they touch once, on its first write after the snapshot
//! (`Rc::make_mut`), and leave the snapshot's blocks alone. A snapshot borrows nothing, may
//! outlive its index, and [`HnswSnapshot::encode`] gives an owned [`Encoder`] that a shard
//! steps between requests (byte for byte the stream of [`HnswIndex::encode`], which is
//! implemented through it). A rebuild in progress is part of the snapshot
//! ([`HnswSnapshot::rebuild`]: the fresh graph's snapshot and the next node to copy), encoded
//! as a second stream ([`HnswSnapshot::split_rebuild`]); after decoding both,
//! [`HnswIndex::resume_rebuild`] restores it (checked: anything inconsistent is
//! [`VectorError::Corrupt`]) and the rebuild continues exactly as the original would have.
//! [`HnswIndex::block_count`] says how many blocks a snapshot still shares.
//!
//! # Not built yet
//!
//! - **Persistence on a shard**: [`HnswIndex::snapshot`], [`HnswSnapshot::encode`] and
//!   [`Decoder`] write and read an index in bounded, checksummed chunks
//!   (`vectors/FORMAT.md`); saving them with a shard's checkpoint is the core crate's part.
//! - **SQL, catalog and wire**: `VECTOR(n)` columns, `CREATE INDEX … USING hnsw`, the KNN
//!   opcode and the fan-out live in `core`, `net` and the server, none of which uses this
//!   crate yet.

mod distance;
mod error;
mod index;
mod limits;
mod metric;
mod planner;
mod validate;

pub use distance::{dot, l2_squared, norm, Kernels, ACCUMULATORS, LANES};
pub use error::VectorError;
pub use index::{
    merge_neighbors, unframe, BlockCount, CowVec, Decoder, Encoder, ExactIndex, HnswIndex,
    HnswParams, HnswSnapshot, Index, Neighbor, RebuildStep, RowId, SearchCursor, SearchParams,
    Step, VectorIndex, CHUNK_FRAME_BYTES, HNSW_FORMAT_VERSION, HNSW_MAGIC,
};
pub use limits::{
    rows_per_step, BLOCK_BYTES, COMPACT_PER_WRITE, HNSW_EF_CONSTRUCTION_MAX,
    HNSW_EF_CONSTRUCTION_MIN, HNSW_EF_SEARCH_MAX, HNSW_EF_SEARCH_MIN, HNSW_MAX_LEVEL, HNSW_M_MAX,
    HNSW_M_MIN, HNSW_POOLED_VISITED_LISTS, HNSW_REBUILD_TOMBSTONE_PERCENT, MAX_COMPONENT_MAGNITUDE,
    MAX_DIMENSIONS, MAX_K, PLANNER_EXACT_ROWS_PER_EF, PLANNER_GRAPH_MIN_PERCENT,
    PLANNER_SAMPLE_ROWS, SEARCH_STEP_COMPONENTS,
};
pub use metric::Metric;
pub use planner::{
    plan, plan_hnsw, plan_hnsw_with, sample_selectivity, search_planned, start_planned, Plan,
    Selectivity,
};
pub use validate::{check_dimensions, check_vector};
