//! Every limit of the crate: a named constant with why it exists and what raising it costs.

/// Largest number of dimensions of a vector (`VECTOR(n)` with `1 <= n <= MAX_DIMENSIONS`).
///
/// Why 4,096: it covers the embeddings in use (384–1,536 for most text models, 3,072 for the
/// largest OpenAI model, 4,096 for LLM-derived embedders such as e5-mistral) while keeping one
/// vector at 16 KiB. pgvector stores up to 16,000 dimensions but indexes at most 2,000 with
/// HNSW; here every stored vector can be indexed. What it costs: at 4,096 dimensions one exact
/// distance is ~4k FMAs (about 0.3–0.5 µs with AVX2), an HNSW search touches a few hundred of
/// them, an 8 MiB frame carries at most ~500 such vectors, and the overflow bound of
/// [`MAX_COMPONENT_MAGNITUDE`] is computed for this many terms: raising this limit means
/// lowering that one.
pub const MAX_DIMENSIONS: usize = 4_096;

/// Largest `k` of a search.
///
/// Why 1,000: Tarn answers real-time context requests (k = 10–100 in practice); an HNSW search
/// needs `ef >= k`, and pgvector caps `ef_search` at 1,000 for the same reason (beyond it a
/// graph search costs about what an exact scan does). What it costs: per shard a heap of `k`
/// candidates (16 bytes each), a fan-out merge of `shards × k` neighbours, and a reply of `k`
/// rows; raising it makes one request able to occupy every shard and fill a frame.
pub const MAX_K: usize = 1_000;

/// Largest magnitude of a vector component (|x| ≤ 1e16; NaN and ±infinity are refused too).
///
/// Why: it makes every distance finite. With at most [`MAX_DIMENSIONS`] components, a squared
/// L2 distance is at most 4,096 · (2·10^16)² ≈ 1.6·10^36 and a dot product at most
/// 4,096 · 10^32 ≈ 4.1·10^35, both about 200× below `f32::MAX` ≈ 3.4·10^38 (rounding cannot
/// close that gap), so no kernel overflows to infinity or produces ∞ − ∞ = NaN, and ordering
/// by distance is always total. What it costs: vectors with larger components are refused with
/// [`crate::VectorError::TooLarge`]; no embedding model produces such values.
pub const MAX_COMPONENT_MAGNITUDE: f32 = 1.0e16;

// The bound above, checked at compile time (with a factor 2 of slack for rounding).
const _: () = {
    let d = 2.0 * MAX_COMPONENT_MAGNITUDE as f64;
    assert!(MAX_DIMENSIONS as f64 * d * d * 2.0 < f32::MAX as f64);
};

/// Bytes of one storage block of [`crate::ExactIndex`]: vectors are kept contiguously in
/// blocks of `max(1, BLOCK_BYTES / (4 · dim))` vectors.
///
/// Why blocks and not one `Vec<f32>` of `n × dim`: growing one vector of a million 128-dim
/// rows doubles it from 256 MiB to 512 MiB in one call (a copy plus first-touch page faults:
/// tens of milliseconds on the reactor); with blocks an insert allocates at most one block and
/// never copies older vectors. What it costs: up to one partly used block per index (1 MiB),
/// and a scan restarts its inner loop once per block (≈ every 2,048 rows at dim 128).
///
/// HNSW graphs use the block as the unit of copy-on-write too (`CowVec`): a snapshot costs
/// one pointer per block, and the first write after it to a block copies the whole block, so
/// smaller blocks would make snapshots dearer and first writes cheaper.
pub const BLOCK_BYTES: usize = 1 << 20;

/// Vector components a search cursor reads per step when the caller uses
/// [`rows_per_step`]: the step size in rows is this divided by the dimension.
///
/// Why 2^18 (1 MiB of vectors): one step then costs about the same at every dimension — on
/// the development machine (AVX2+FMA, vectors beyond the cache) 33–40 µs median and at most
/// ~150 µs at dim 128 (`bench/results/distances-2026-12-02.md`), comparable to a point read's
/// ~60 µs, so a shard that yields after each step keeps serving its other requests. What it costs: a search of `n` rows of dimension `d` takes `n·d / 2^18` steps;
/// each yield costs a task switch (well under a microsecond on glommio), so smaller steps add
/// overhead and larger ones add latency to everyone else on the shard.
pub const SEARCH_STEP_COMPONENTS: usize = 1 << 18;

/// Rows per search step for vectors of `dim` components (at least 1): see
/// [`SEARCH_STEP_COMPONENTS`].
pub const fn rows_per_step(dim: usize) -> usize {
    let rows = SEARCH_STEP_COMPONENTS / if dim == 0 { 1 } else { dim };
    if rows == 0 {
        1
    } else {
        rows
    }
}

/// Tombstoned slots an [`crate::ExactIndex`] write removes (swap-remove) before its own
/// change, once no search cursor is open.
///
/// Why: while a cursor is open, deletes and updates leave tombstones so the cursor's snapshot
/// stays valid (see the crate docs); they must drain afterwards without a long loop on the
/// reactor. Eight per write drains them eight times faster than writes created them. What it
/// costs: up to eight vector copies per write (≤ 8 × 16 KiB at the largest dimension,
/// ~0.1 µs each at dim 128); [`crate::ExactIndex::compact`] drains the rest in caller-sized
/// steps.
pub const COMPACT_PER_WRITE: usize = 8;

/// Smallest and largest `m` of an HNSW index (links per node on the upper layers; `2·m` on
/// layer 0).
///
/// Why 2..=100: one link cannot make a navigable graph (hnswlib also refuses `m < 2` in
/// effect), and past ~64 links recall stops improving while memory (`8·m` bytes per node on
/// layer 0) and insert time (each insert prunes up to `m` lists of `2·m`) keep growing;
/// pgvector allows 2..=100. What it costs: at the top, 800 bytes of links per vector.
pub const HNSW_M_MIN: usize = 2;
/// See [`HNSW_M_MIN`].
pub const HNSW_M_MAX: usize = 100;

/// Smallest and largest `ef_construction` (candidate-list size while inserting); it must also
/// be at least `m`, so an insert can find `m` neighbours to link.
///
/// Why 4..=1,000 (pgvector's range): below 4 the graph is poor at any `m`; an insert costs
/// about `ef_construction · 2·m` distances, so 1,000 already makes one insert at dim 1,536 cost
/// ~10 ms of CPU, which the shard spreads over steps. What it costs: insert time grows about
/// linearly with it.
pub const HNSW_EF_CONSTRUCTION_MIN: usize = 4;
/// See [`HNSW_EF_CONSTRUCTION_MIN`].
pub const HNSW_EF_CONSTRUCTION_MAX: usize = 1_000;

/// Smallest and largest `ef_search` (candidate-list size of a query), the index default and
/// the per-query `ef`.
///
/// Why up to 1,000: equal to [`MAX_K`] (a search needs `ef ≥ k`) and to pgvector's cap; beyond
/// it a graph search costs about as much as an exact scan of a few hundred thousand rows.
/// What it costs: a query keeps up to `ef` results and visits roughly `ef · 2·m` nodes.
pub const HNSW_EF_SEARCH_MIN: usize = 1;
/// See [`HNSW_EF_SEARCH_MIN`].
pub const HNSW_EF_SEARCH_MAX: usize = 1_000;

/// Highest layer of an HNSW node (layers `0..=HNSW_MAX_LEVEL`).
///
/// Why 16: levels are drawn with `P(level ≥ l) = m^−l`, so at `m = 2` a level above 16 has
/// probability 2⁻¹⁷ per node (at `m = 16`, 16⁻¹⁷): capping it changes nothing measurable and
/// bounds the greedy descent of every search and the upper-layer memory of one node. What it
/// costs: nothing at the supported sizes.
pub const HNSW_MAX_LEVEL: usize = 16;

/// Share of tombstoned nodes (deleted or replaced rows, in percent of all nodes) above which
/// [`crate::HnswIndex::needs_rebuild`] says the graph should be rebuilt.
///
/// Why 20 %: tombstones still route searches (so recall holds) but cost their memory and a
/// distance each time a search passes through them; at 20 % a search does up to ~25 % more
/// work. A rebuild inserts every live row again (about the cost of the original build). What
/// it costs: lower means more frequent rebuilds, higher means more memory and slower searches.
pub const HNSW_REBUILD_TOMBSTONE_PERCENT: usize = 20;

/// Visited lists an HNSW index keeps for reuse by later searches.
///
/// Why 4: a search needs one stamp per node (2 bytes); a shard runs few searches at once
/// (one per in-flight KNN request that yields), and keeping a few avoids allocating
/// `2 · nodes` bytes per query. What it costs: up to 4 × 2 bytes per node (8 MiB at a million
/// nodes) held while idle.
pub const HNSW_POOLED_VISITED_LISTS: usize = 4;

/// Rows the filtered-search planner passes through the filter to estimate its selectivity.
///
/// Why 512: the share of matching rows is then known to about ±2.2 percentage points (one
/// standard error at 50 %), enough to tell "most rows match" from "few rows match" from
/// "almost none"; a filter call costs tens of nanoseconds, so the estimate costs ~10–30 µs.
/// What it costs: that time on every filtered query.
pub const PLANNER_SAMPLE_ROWS: usize = 512;

/// The planner scans exactly when the estimated matching rows are at most this many times
/// `max(ef, k)`.
///
/// Why 64: a graph search at `ef` computes about `ef · m` (~16·ef to 32·ef) distances and
/// its filter rejects most of what it visits when few rows match, so the search grows as the
/// filter gets more selective; a scan computes one distance per *matching* row (the filter
/// runs first). Below ~64·ef matching rows the scan does no more distance work than the graph
/// and is exact. What it costs: a scan calls the filter on every row of the shard.
pub const PLANNER_EXACT_ROWS_PER_EF: usize = 64;

/// Share of matching rows (percent) at or above which the planner searches the graph with
/// the query's own `ef`.
///
/// Why 50 %: when at least half the rows match, an `ef`-bounded beam that keeps only matching
/// rows fills its result list about as fast as without a filter; below that the plan is
/// reported as a filtered graph search (same `ef`; the beam runs until it holds `ef` accepted
/// rows). What it costs: nothing — it
/// only chooses between two ways of the same search.
pub const PLANNER_GRAPH_MIN_PERCENT: usize = 50;
