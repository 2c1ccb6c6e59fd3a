//! Gradient-boosted tree ensembles: [`TreeEnsemble`], its validated flat layout and its walk.
//!
//! The ensemble is stored as a struct of arrays over the nodes of all trees, each tree laid out
//! breadth-first from its root with the two children of a node next to each other: a split
//! node keeps only its left child's index (`u32`), the right child is the next node. So a
//! child's index is always greater than its parent's, and a walk ends after at most
//! [`MAX_TREE_DEPTH`] steps. Nodes of the source model that no path reaches (XGBoost's pruned,
//! "deleted" nodes) are not kept.
//!
//! The source's `right_children` are followed as given. XGBoost's own predictor computes the
//! right child as `left + 1` (its trees always allocate the two children together, as every
//! model of the fixtures shows); the two readings differ only for a hand-edited model whose
//! right child is stored elsewhere, where this one follows what the file says.
//!
//! Scoring follows XGBoost's CPU predictor exactly (module docs of [`crate`]): inputs are
//! rounded to f32, a present value goes left when `value < condition`, a missing one (NULL or
//! NaN) follows the node's default direction, and leaf values are summed in f32 in tree order,
//! starting from the base margin.

use crate::error::{echo, ModelError};
use crate::limits::{MAX_TREE_DEPTH, MAX_TREE_NODES};
use crate::names::check_input_names;
use crate::Scorer;

/// `children` value of a leaf.
const LEAF: u32 = u32::MAX;

/// What the margin becomes, from XGBoost's `objective`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TreeObjective {
    /// `binary:logistic`: the base score is a probability; the score is `σ(margin)`.
    BinaryLogistic,
    /// `reg:squarederror`: the base score is the starting margin; the score is the margin.
    SquaredError,
}

impl TreeObjective {
    /// XGBoost's name of the objective.
    pub fn xgboost_name(self) -> &'static str {
        match self {
            TreeObjective::BinaryLogistic => "binary:logistic",
            TreeObjective::SquaredError => "reg:squarederror",
        }
    }
}

/// One tree as a model file describes it, before validation: per node (indexed from 0, the
/// root) the left and right child (−1 for none), the split feature, the split condition (or
/// the leaf value at a leaf) and whether a missing value goes left.
pub(crate) struct RawTree<'a> {
    pub left: &'a [i64],
    pub right: &'a [i64],
    pub feature: &'a [i64],
    pub value: &'a [f32],
    pub default_left: &'a [bool],
    /// How many nodes no path reaches (XGBoost's `num_deleted`): any other count is an error.
    pub unreachable: usize,
}

/// A validated ensemble of regression trees with one output (crate docs, "Tree ensembles").
#[derive(Debug, Clone, PartialEq)]
pub struct TreeEnsemble {
    objective: TreeObjective,
    feature_names: Vec<String>,
    base_score: f32,
    base_margin: f32,
    /// Index of each tree's root in the node arrays.
    roots: Vec<u32>,
    /// Per node: split feature (0 at a leaf).
    features: Vec<u32>,
    /// Per node: split condition, or the leaf value at a leaf.
    values: Vec<f32>,
    /// Per node: index of the left child (the right child is the next), or [`LEAF`].
    children: Vec<u32>,
    /// Per node: whether a missing value goes left (false at a leaf).
    default_left: Vec<bool>,
    /// Depth of the deepest leaf (0 for an ensemble of single-leaf trees or of no tree).
    max_depth: usize,
}

impl TreeEnsemble {
    /// An ensemble without trees; `base_score` as XGBoost stores it (a probability for
    /// [`TreeObjective::BinaryLogistic`], clamped to [1e−6, 1 − 1e−6] before the logit as
    /// XGBoost does).
    pub(crate) fn new(
        objective: TreeObjective,
        feature_names: Vec<String>,
        base_score: f32,
    ) -> Result<TreeEnsemble, ModelError> {
        check_input_names(feature_names.iter().map(String::as_str))?;
        let base_margin = base_margin(objective, base_score)?;
        Ok(TreeEnsemble {
            objective,
            feature_names,
            base_score,
            base_margin,
            roots: Vec::new(),
            features: Vec::new(),
            values: Vec::new(),
            children: Vec::new(),
            default_left: Vec::new(),
            max_depth: 0,
        })
    }

    /// Validates tree number `tree` and appends its reachable nodes breadth-first.
    ///
    /// Refused: no nodes or more than [`MAX_TREE_NODES`], arrays of unequal lengths, a node
    /// with one child, a child index out of range, a node reached twice (a cycle or a shared
    /// subtree; the root is never a child), another number of unreachable nodes than
    /// `raw.unreachable`, a split feature outside `0..num_features`, a non-finite condition
    /// or leaf value, a leaf deeper than [`MAX_TREE_DEPTH`].
    pub(crate) fn push_tree(&mut self, tree: usize, raw: &RawTree<'_>) -> Result<(), ModelError> {
        let n = check_lengths(tree, raw)?;
        let order = breadth_first(tree, raw, n)?;
        let base = self.children.len();
        // Positions of the next pair of children, relative to `base`.
        let mut next_child = 1usize;
        for &(old, depth) in &order {
            let i = old as usize;
            let value = raw.value[i];
            if !value.is_finite() {
                let what = if raw.left[i] < 0 {
                    "leaf value"
                } else {
                    "split condition"
                };
                return Err(invalid(tree, i, &format!("{what} is {value}")));
            }
            self.values.push(value);
            self.max_depth = self.max_depth.max(depth as usize);
            if raw.left[i] < 0 {
                self.features.push(0);
                self.children.push(LEAF);
                self.default_left.push(false);
                continue;
            }
            self.features
                .push(self.split_feature(tree, i, raw.feature[i])?);
            self.default_left.push(raw.default_left[i]);
            // Fits u32: the ensemble holds fewer than u32::MAX nodes (limits.rs).
            self.children.push((base + next_child) as u32);
            next_child += 2;
        }
        debug_assert_eq!(next_child, order.len());
        self.roots.push(base as u32);
        Ok(())
    }

    /// The split feature of node `node`, checked against the number of features.
    fn split_feature(&self, tree: usize, node: usize, feature: i64) -> Result<u32, ModelError> {
        let count = self.feature_names.len();
        match usize::try_from(feature) {
            Ok(f) if f < count => Ok(f as u32),
            _ => Err(invalid(
                tree,
                node,
                &format!("split feature index {feature} is out of range: num_feature is {count}"),
            )),
        }
    }

    /// The objective (what the margin becomes).
    pub fn objective(&self) -> TreeObjective {
        self.objective
    }

    /// Input names in input order (XGBoost's `feature_names`, or `f0`, `f1`, … without them).
    pub fn feature_names(&self) -> &[String] {
        &self.feature_names
    }

    /// XGBoost's `base_score` (a probability for [`TreeObjective::BinaryLogistic`]).
    pub fn base_score(&self) -> f32 {
        self.base_score
    }

    /// The margin every row starts from: `logit(base_score)` in f32 for
    /// [`TreeObjective::BinaryLogistic`], `base_score` for [`TreeObjective::SquaredError`].
    pub fn base_margin(&self) -> f32 {
        self.base_margin
    }

    /// Number of trees.
    pub fn tree_count(&self) -> usize {
        self.roots.len()
    }

    /// Number of nodes kept (reachable nodes of all trees).
    pub fn node_count(&self) -> usize {
        self.children.len()
    }

    /// Depth of the deepest leaf (the root is at depth 0).
    pub fn max_depth(&self) -> usize {
        self.max_depth
    }

    /// The margin of one row: the base margin plus every tree's leaf value, summed in f32 in
    /// tree order (as XGBoost does), returned as f64. `values` in feature order; `None` or
    /// NaN is missing.
    pub fn margin(&self, values: &[Option<f64>]) -> Result<f64, ModelError> {
        self.check_values(values)?;
        Ok(f64::from(self.margin_f32(values)))
    }

    /// Refuses another number of values than features, and values XGBoost refuses: ±∞ and
    /// finite values beyond the f32 range, which become ±∞ as f32 (`DMatrix` construction
    /// fails on them with "Input data contains `inf` or a value too large").
    fn check_values(&self, values: &[Option<f64>]) -> Result<(), ModelError> {
        ModelError::check_input_count(self.feature_names.len(), values.len())?;
        let bad = values
            .iter()
            .position(|v| v.is_some_and(|v| (v as f32).is_infinite()));
        match bad {
            None => Ok(()),
            Some(i) => Err(ModelError::InvalidInput {
                input: echo(&self.feature_names[i]),
                reason: format!(
                    "{} is infinite or beyond the float32 range (±3.4e38), which XGBoost \
                     refuses",
                    values[i].unwrap_or(0.0)
                ),
            }),
        }
    }

    fn margin_f32(&self, values: &[Option<f64>]) -> f32 {
        let mut margin = self.base_margin;
        for &root in &self.roots {
            margin += self.leaf_value(root, values);
        }
        margin
    }

    /// The leaf `values` reach from `root`.
    #[inline]
    fn leaf_value(&self, root: u32, values: &[Option<f64>]) -> f32 {
        let mut node = root as usize;
        loop {
            let child = self.children[node];
            if child == LEAF {
                return self.values[node];
            }
            debug_assert!(child as usize > node, "children follow their parent");
            // XGBoost reads inputs as f32 (NaN marks a missing value there too).
            let x = values[self.features[node] as usize].map_or(f32::NAN, |v| v as f32);
            let left = if x.is_nan() {
                self.default_left[node]
            } else {
                x < self.values[node]
            };
            node = child as usize + usize::from(!left);
        }
    }
}

impl Scorer for TreeEnsemble {
    fn input_names(&self) -> Vec<&str> {
        self.feature_names.iter().map(String::as_str).collect()
    }

    fn score(&self, inputs: &[Option<f64>]) -> Result<f64, ModelError> {
        self.check_values(inputs)?;
        let margin = self.margin_f32(inputs);
        Ok(f64::from(match self.objective {
            TreeObjective::BinaryLogistic => xgboost_sigmoid(margin),
            TreeObjective::SquaredError => margin,
        }))
    }
}

/// XGBoost's `common::Sigmoid(float)`, operation for operation in f32: `1 / (exp(min(−x,
/// 88.7)) + 1 + 1e−16)` (the clamp keeps `exp` finite; the 1e−16 vanishes in f32 but is kept
/// to mirror the source).
fn xgboost_sigmoid(x: f32) -> f32 {
    const EPS: f32 = 1e-16;
    let e = (-x).min(88.7f32).exp();
    1.0f32 / (e + 1.0f32 + EPS)
}

/// The starting margin for `base_score`, as XGBoost's `ProbToMargin` computes it in f32.
fn base_margin(objective: TreeObjective, base_score: f32) -> Result<f32, ModelError> {
    if !base_score.is_finite() {
        return Err(ModelError::Invalid(format!(
            "base_score is {base_score}: it must be finite"
        )));
    }
    match objective {
        TreeObjective::SquaredError => Ok(base_score),
        TreeObjective::BinaryLogistic => {
            if !(0.0..=1.0).contains(&base_score) {
                return Err(ModelError::Invalid(format!(
                    "base_score is {base_score}: binary:logistic needs a probability in [0, 1]"
                )));
            }
            // LogisticProbToMargin: clamp to [kRtEps, 1 − kRtEps], then -logf(1/p − 1).
            const RT_EPS: f32 = 1e-6;
            let p = base_score.clamp(RT_EPS, 1.0 - RT_EPS);
            Ok(-(1.0f32 / p - 1.0f32).ln())
        }
    }
}

/// The node count of `raw` after checking that its arrays agree and it is within limits.
fn check_lengths(tree: usize, raw: &RawTree<'_>) -> Result<usize, ModelError> {
    let n = raw.left.len();
    if n == 0 {
        return Err(ModelError::Invalid(format!("tree {tree} has no nodes")));
    }
    ModelError::check_limit("nodes in one tree", n, MAX_TREE_NODES)?;
    let lengths = [
        ("right_children", raw.right.len()),
        ("split_indices", raw.feature.len()),
        ("split_conditions", raw.value.len()),
        ("default_left", raw.default_left.len()),
    ];
    for (name, len) in lengths {
        if len != n {
            return Err(ModelError::Invalid(format!(
                "tree {tree}: {name} has {len} entries, left_children has {n}"
            )));
        }
    }
    Ok(n)
}

/// The reachable nodes of `raw` breadth-first, each with its depth, the two children of a
/// node pushed together (left first). Checks the structure: see [`TreeEnsemble::push_tree`].
fn breadth_first(tree: usize, raw: &RawTree<'_>, n: usize) -> Result<Vec<(u32, u32)>, ModelError> {
    let mut seen = vec![false; n];
    seen[0] = true;
    let mut order: Vec<(u32, u32)> = Vec::with_capacity(n);
    order.push((0, 0));
    let mut next = 0;
    while next < order.len() {
        let (node, depth) = order[next];
        next += 1;
        let i = node as usize;
        let (left, right) = (raw.left[i], raw.right[i]);
        if left == -1 && right == -1 {
            continue;
        }
        if left == -1 || right == -1 {
            return Err(invalid(
                tree,
                i,
                &format!("has one child ({left}, {right})"),
            ));
        }
        if depth as usize >= MAX_TREE_DEPTH {
            return Err(ModelError::LimitExceeded {
                what: "levels of depth in one tree",
                value: depth as usize + 1,
                max: MAX_TREE_DEPTH,
            });
        }
        for child in [left, right] {
            let c = child_index(tree, i, child, n)?;
            if seen[c] {
                return Err(invalid(
                    tree,
                    i,
                    &format!("child {c} is reached twice (a cycle or a shared subtree)"),
                ));
            }
            seen[c] = true;
            order.push((c as u32, depth + 1));
        }
    }
    let unreachable = n - order.len();
    if unreachable != raw.unreachable {
        let first = seen.iter().position(|s| !s).unwrap_or(0);
        return Err(invalid(
            tree,
            first,
            &format!(
                "is not reachable from the root ({unreachable} unreachable nodes, the model \
                 declares {} deleted)",
                raw.unreachable
            ),
        ));
    }
    Ok(order)
}

/// `child` of node `node` as an index, checked to be in `0..n`.
fn child_index(tree: usize, node: usize, child: i64, n: usize) -> Result<usize, ModelError> {
    match usize::try_from(child) {
        Ok(c) if c < n => Ok(c),
        _ => Err(invalid(
            tree,
            node,
            &format!("child index {child} is out of range 0..{n}"),
        )),
    }
}

fn invalid(tree: usize, node: usize, what: &str) -> ModelError {
    ModelError::Invalid(format!("tree {tree}, node {node}: {what}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A depth-1 tree on feature 0: `x < 1.5` → −1, else +1, missing → default side.
    fn stump(default_left: bool) -> TreeEnsemble {
        let mut e = TreeEnsemble::new(
            TreeObjective::SquaredError,
            vec!["x".into(), "y".into()],
            0.5,
        )
        .unwrap();
        let raw = RawTree {
            left: &[1, -1, -1],
            right: &[2, -1, -1],
            feature: &[0, 0, 0],
            value: &[1.5, -1.0, 1.0],
            default_left: &[default_left, false, false],
            unreachable: 0,
        };
        e.push_tree(0, &raw).unwrap();
        e
    }

    #[test]
    fn split_condition_on_both_sides_and_at_it() {
        let e = stump(true);
        let below = f64::from(1.5f32.next_down());
        assert_eq!(e.score(&[Some(below), None]).unwrap(), -0.5);
        assert_eq!(e.score(&[Some(1.5), None]).unwrap(), 1.5);
        assert_eq!(e.score(&[Some(1.5f64.next_up()), None]).unwrap(), 1.5);
        // Rounded to f32 first: the f64 just below 1.5 becomes 1.5, so it goes right.
        assert_eq!(e.score(&[Some(1.5f64.next_down()), None]).unwrap(), 1.5);
    }

    #[test]
    fn missing_follows_the_default_direction() {
        for (default_left, expected) in [(true, -0.5), (false, 1.5)] {
            let e = stump(default_left);
            assert_eq!(e.score(&[None, Some(3.0)]).unwrap(), expected);
            assert_eq!(e.score(&[Some(f64::NAN), None]).unwrap(), expected);
        }
    }

    #[test]
    fn values_beyond_f32_are_refused_like_xgboost_does() {
        let e = stump(false);
        let largest = f64::from(f32::MAX);
        assert_eq!(e.score(&[Some(largest), None]).unwrap(), 1.5);
        assert_eq!(e.score(&[Some(-largest), None]).unwrap(), -0.5);
        for v in [f64::INFINITY, f64::NEG_INFINITY, 1e39, -1e39] {
            let err = e.score(&[None, Some(v)]).unwrap_err();
            assert!(
                matches!(&err, ModelError::InvalidInput { input, .. } if input == "y"),
                "{err:?}"
            );
            assert!(e.margin(&[Some(v), None]).is_err());
        }
    }

    #[test]
    fn sigmoid_matches_f64_closely_and_saturates() {
        for x in [-20.0f32, -3.0, -0.5, 0.0, 0.5, 3.0, 20.0] {
            let exact = 1.0 / (1.0 + (-f64::from(x)).exp());
            assert!((f64::from(xgboost_sigmoid(x)) - exact).abs() < 1e-7, "{x}");
        }
        assert_eq!(xgboost_sigmoid(100.0), 1.0);
        assert!(
            xgboost_sigmoid(-100.0) > 0.0,
            "the clamp at 88.7 keeps it above 0"
        );
    }

    #[test]
    fn logistic_base_margin_is_the_f32_logit() {
        assert_eq!(
            base_margin(TreeObjective::BinaryLogistic, 0.5).unwrap(),
            0.0
        );
        let m = base_margin(TreeObjective::BinaryLogistic, 0.1).unwrap();
        assert!((f64::from(m) - (0.1f64 / 0.9).ln()).abs() < 1e-6);
        assert!(base_margin(TreeObjective::BinaryLogistic, 0.0)
            .unwrap()
            .is_finite());
        assert!(base_margin(TreeObjective::BinaryLogistic, 1.0)
            .unwrap()
            .is_finite());
        assert!(base_margin(TreeObjective::BinaryLogistic, 1.0f32.next_up()).is_err());
        assert!(base_margin(TreeObjective::BinaryLogistic, -0.0f32.next_up()).is_err());
        assert_eq!(
            base_margin(TreeObjective::SquaredError, -7.0).unwrap(),
            -7.0
        );
    }

    #[test]
    fn depth_limit_on_both_sides() {
        // A chain: node 2k splits into leaf 2k+1 and node 2k+2.
        let chain = |depth: usize| {
            let n = 2 * depth + 1;
            let mut left = vec![-1i64; n];
            let mut right = vec![-1i64; n];
            for k in 0..depth {
                left[2 * k] = (2 * k + 1) as i64;
                right[2 * k] = (2 * k + 2) as i64;
            }
            let mut e =
                TreeEnsemble::new(TreeObjective::SquaredError, vec!["x".into()], 0.0).unwrap();
            let raw = RawTree {
                left: &left,
                right: &right,
                feature: &vec![0; n],
                value: &vec![0.0; n],
                default_left: &vec![false; n],
                unreachable: 0,
            };
            e.push_tree(0, &raw).map(|()| e)
        };
        assert_eq!(chain(MAX_TREE_DEPTH).unwrap().max_depth(), MAX_TREE_DEPTH);
        assert!(matches!(
            chain(MAX_TREE_DEPTH + 1),
            Err(ModelError::LimitExceeded { .. })
        ));
    }
}
