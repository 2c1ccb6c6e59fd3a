//! Every limit of the crate: a named constant with why it exists and what raising it costs.

/// Most inputs of one model (linear inputs, or `num_feature` of a tree ensemble).
///
/// Why 1,024: fraud and ranking models over feature views use tens to a few hundred inputs;
/// a request names each input (a column or feature) and carries one value per input, so the
/// bound keeps one scoring request under ~10 KiB of values and ~300 KiB of names at the
/// longest names. What it costs: a linear score is one multiply-add per input (1,024 ≈ 1 µs);
/// a tree ensemble's cost does not depend on it, but each request still converts every input.
pub const MAX_MODEL_INPUTS: usize = 1_024;

/// Longest input name (a linear input's name or an XGBoost feature name), in bytes.
///
/// Why 256: Tarn's own identifiers are at most 64 bytes, and inputs may be qualified
/// (`view.feature`) or come from a data frame's column names; 256 covers both. Names appear in
/// error messages and the catalog, so the bound keeps those small. What it costs: at most
/// 256 KiB of names per model at [`MAX_MODEL_INPUTS`].
pub const MAX_INPUT_NAME_BYTES: usize = 256;

/// Most trees of one ensemble.
///
/// Why 10,000: gradient-boosted models in production use 100–2,000 trees (XGBoost's examples
/// and Kaggle-style models rarely go beyond a few thousand with early stopping). What it
/// costs: one score walks every tree, ~23 ns per tree at depth 6 (4.7 µs per row for the
/// 200-tree fixture, release build, on the 2-core development machine), so 10,000 trees cost
/// ~0.25 ms of CPU per row on the shard that scores.
pub const MAX_TREES: usize = 10_000;

/// Most nodes of one tree, as stored in the model (reachable or not).
///
/// Why 65,535: a full binary tree of depth 15 (2^16 − 1 nodes) — far beyond XGBoost's default
/// `max_depth` of 6 (127 nodes) and what `lossguide` trees reach at sensible `max_leaves`.
/// What it costs: 13 bytes per node in memory (feature, value, child, default direction), so
/// at most ~850 KiB per tree; together with [`MAX_TREES`] it keeps every node index below
/// 2^32 (checked at compile time below), which lets child links be `u32`.
pub const MAX_TREE_NODES: usize = 65_535;

/// Deepest leaf of a tree (the root is at depth 0); a deeper tree is refused at import.
///
/// Why 64: it bounds the walk of one tree to 64 comparisons whatever the model says, while
/// admitting every depth-limited tree XGBoost grows (`max_depth` ≤ 64 in practice) and
/// unbalanced `lossguide` trees far deeper than the balanced bound of [`MAX_TREE_NODES`].
/// What it costs: a score is bounded by `MAX_TREES × MAX_TREE_DEPTH` = 640,000 node visits
/// (a few ms); raising it allows longer walks of degenerate trees.
pub const MAX_TREE_DEPTH: usize = 64;

/// Largest XGBoost JSON model accepted by the importer, in bytes.
///
/// Why 64 MiB: a tree node takes ~60 bytes of XGBoost JSON (ten per-node arrays; 62 in the
/// fixture `logistic.json`), so 64 MiB holds ~1M nodes — 500 full trees of depth 10, or 8,000
/// of depth 6. What it costs: the importer holds the text and the parsed per-node arrays at once
/// (each number read becomes 4–8 bytes, less than its text), so an import peaks at about twice
/// the text size; the resulting ensemble takes 13 bytes per kept node (~13 MiB at 1M nodes).
/// Importing runs at ~130 MiB/s (7.5 ms for the 1 MiB fixture), so ~0.5 s at the limit.
pub const MAX_MODEL_JSON_BYTES: usize = 64 << 20;

/// Most rows of one training set ([`crate::TrainingSet`]).
///
/// Why 2^24 (16.8M): a retrain joins logged inputs with their labels over days to weeks of
/// traffic, sampled; millions of rows pin logistic coefficients far below their sampling
/// noise. What it costs: every Newton iteration reads every row — four `exp`/`ln` and
/// `(d+1)(d+2)/2 + 2(d+1)` multiply-adds per row for `d` inputs: 86–106 ns per row at 8
/// inputs, 1.5–1.9 µs at 100, 0.22–0.32 ms at 1,024 (release build, on the 2-core development
/// machine while it ran CI; two runs), so ~1.6 s of CPU per iteration at 8 inputs at the limit — and a row holds
/// 16 bytes besides its inputs (label and sample weight): 256 MiB at the limit.
pub const MAX_TRAIN_ROWS: usize = 1 << 24;

/// Most input values (rows × inputs) of one training set.
///
/// Why 2^26 (67M): it bounds the memory of a training set, whatever its shape, to 512 MiB of
/// f64 inputs (the trainer standardises them in place, so training adds no copy): 8 inputs at
/// [`MAX_TRAIN_ROWS`], or 1,024 inputs at 65,536 rows. What it costs: that memory, held by
/// the shard that trains until the trainer is dropped.
pub const MAX_TRAIN_CELLS: usize = 1 << 26;

/// Most Newton iterations of one training run (`TrainOptions::max_iter`).
///
/// Why 1,000: Newton's method converges quadratically; L2-penalised logistic regression
/// reaches 1e-10 in 5–30 iterations (the fixtures take 5–7). More iterations than this
/// only happen without a penalty on separable classes, where the weights grow without bound.
/// What it costs: one pass over the training set per iteration (see [`MAX_TRAIN_ROWS`]).
pub const MAX_TRAIN_ITERATIONS: usize = 1_000;

/// Work of one [`crate::LogisticTrainer::step`], in multiply-adds (the default step size).
///
/// Why 2^22: about 3 ms of CPU (release build, development machine), short enough that a
/// shard can train between requests without a request waiting noticeably. The rows per step
/// are this divided by the cost of a row, `(d+1)(d+2)/2 + 2(d+1)` multiply-adds plus 100 for
/// its four `exp`/`ln` (~25,700 rows at 8 inputs, 7 rows at 1,024). Two kinds of step do
/// more: preparing one input (impute, log1p, mean, std, standardise: ~7 ns per row, so
/// 7 ms at 1M rows and 0.12 s at [`MAX_TRAIN_ROWS`]; at least one whole input per step), and
/// solving the Newton system (a dense Cholesky, `(d+1)³/3` multiply-adds: 20–110 ms at
/// 1,024 inputs, measured). What it costs: a smaller budget means more steps, each with a fixed
/// overhead of a few hundred ns.
pub const TRAIN_STEP_MADDS: usize = 1 << 22;

// Node indices of a whole ensemble are u32, with u32::MAX reserved as the leaf marker.
const _: () = assert!((MAX_TREES as u64) * (MAX_TREE_NODES as u64) < u32::MAX as u64);
// A full tree of depth MAX_TREE_DEPTH is not required to fit: depth is checked separately.
const _: () = assert!(MAX_TREE_DEPTH < MAX_TREE_NODES);
// Every cell count of a training set fits usize arithmetic without overflow, and rows fit u32.
const _: () = assert!(MAX_TRAIN_ROWS <= u32::MAX as usize);
const _: () = assert!(MAX_TRAIN_CELLS.checked_mul(MAX_MODEL_INPUTS).is_some());
