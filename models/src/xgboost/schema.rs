//! The parts of XGBoost's JSON model (`Booster.save_model("m.json")`, xgboost 1.0–3.x) the
//! importer reads. Every field is optional here so that a missing one is reported by its
//! dotted path (see `super::required`) rather than by serde's position; fields not listed
//! (statistics such as `loss_changes`, `sum_hessian`, `base_weights`, `parents`, the
//! categories, attributes) are skipped.

use serde::Deserialize;

#[derive(Deserialize)]
pub(super) struct Document {
    pub learner: Option<Learner>,
}

#[derive(Deserialize)]
pub(super) struct Learner {
    /// Absent before xgboost 1.4, and empty when the model was trained without names.
    pub feature_names: Option<Vec<String>>,
    pub gradient_booster: Option<GradientBooster>,
    pub learner_model_param: Option<LearnerModelParam>,
    pub objective: Option<Objective>,
}

#[derive(Deserialize)]
pub(super) struct Objective {
    pub name: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct GradientBooster {
    /// `gbtree`, `dart` (whose trees sit under `gbtree`, not `model`) or `gblinear`.
    pub name: Option<String>,
    pub model: Option<GbTreeModel>,
}

#[derive(Deserialize)]
pub(super) struct GbTreeModel {
    pub gbtree_model_param: Option<GbTreeModelParam>,
    pub trees: Option<Vec<Tree>>,
    /// The output group of each tree.
    pub tree_info: Option<Vec<i64>>,
}

#[derive(Deserialize)]
pub(super) struct GbTreeModelParam {
    pub num_trees: Option<Param>,
}

#[derive(Deserialize)]
pub(super) struct LearnerModelParam {
    /// A decimal string: `"5E-1"` (xgboost 1.x), `"[5E-1]"` (a vector of one, xgboost ≥ 3).
    pub base_score: Option<Param>,
    pub num_class: Option<Param>,
    pub num_feature: Option<Param>,
    /// Absent before xgboost 2.0 (one target).
    pub num_target: Option<Param>,
}

#[derive(Deserialize)]
pub(super) struct Tree {
    pub tree_param: Option<TreeParam>,
    pub left_children: Option<Vec<i64>>,
    pub right_children: Option<Vec<i64>>,
    pub split_indices: Option<Vec<i64>>,
    /// Split conditions of split nodes and leaf values of leaves (one float32 per node).
    pub split_conditions: Option<Vec<f32>>,
    /// Booleans before xgboost 1.6, 0/1 integers since.
    pub default_left: Option<Vec<Flag>>,
    /// 0 numerical, 1 categorical; absent before xgboost 1.3 (all numerical).
    pub split_type: Option<Vec<i64>>,
}

#[derive(Deserialize)]
pub(super) struct TreeParam {
    pub num_nodes: Option<Param>,
    pub num_deleted: Option<Param>,
    /// 0 or 1 for a tree with scalar leaves; more for multi-target trees.
    pub size_leaf_vector: Option<Param>,
}

/// XGBoost writes parameters as strings (`"10"`); a number is accepted too.
#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum Param {
    Text(String),
    Number(f64),
}

/// One entry of `default_left`.
#[derive(Deserialize, Clone, Copy)]
#[serde(untagged)]
pub(super) enum Flag {
    Bool(bool),
    Int(i64),
}
