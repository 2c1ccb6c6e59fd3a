//! Import of XGBoost tree ensembles from its JSON model: [`TreeEnsemble::from_xgboost_json`].
//!
//! # What is read
//!
//! ```text
//! learner.objective.name                         binary:logistic | reg:squarederror
//! learner.gradient_booster.name                  gbtree
//! learner.learner_model_param.num_feature        "10"            number of inputs
//! learner.learner_model_param.base_score         "5E-1" | "[5E-1]"   one float32
//! learner.learner_model_param.num_class          "0" (≤ 1)       (absent: 0)
//! learner.learner_model_param.num_target         "1" (≤ 1)       (absent: 1)
//! learner.feature_names                          [..] | [] | absent  (then f0, f1, …)
//! learner.gradient_booster.model.trees[t]:
//!     left_children, right_children              −1 at leaves
//!     split_indices                              feature of each split
//!     split_conditions                           float32 condition; the leaf value at leaves
//!     default_left                               0/1 (booleans before 1.6)
//!     split_type                                 0 only (absent before 1.3)
//!     tree_param.num_nodes / num_deleted / size_leaf_vector
//! learner.gradient_booster.model.tree_info       all 0 (one output group)
//! learner.gradient_booster.model.gbtree_model_param.num_trees   = number of trees
//! ```
//!
//! A leaf's value is its `split_conditions` entry (XGBoost keeps the split condition and the
//! leaf value in one union); `base_weights` is the node's weight before the learning rate is
//! applied and is not used. `base_score` is stored as XGBoost's user-facing value (a
//! probability for `binary:logistic`); the margin start is computed from it at load, as
//! XGBoost does (see [`TreeEnsemble::base_margin`]).
//!
//! # What is refused
//!
//! With [`ModelError::Unsupported`]: other objectives, the `dart` and `gblinear` boosters,
//! several outputs (`num_class > 1`, `num_target > 1`, a `base_score` of several values,
//! `tree_info` ≠ 0, multi-target trees), categorical splits (naming the feature). With
//! [`ModelError::InvalidJson`]: text that is not JSON, a missing field (named by its dotted
//! path) or a field of the wrong type. With [`ModelError::LimitExceeded`]: more than
//! [`MAX_MODEL_JSON_BYTES`] of JSON, [`MAX_TREES`] trees, [`MAX_MODEL_INPUTS`] features,
//! [`crate::limits::MAX_TREE_NODES`] nodes in a tree, [`crate::limits::MAX_TREE_DEPTH`]
//! levels. With [`ModelError::Invalid`]: every structural fault of a tree (see
//! `TreeEnsemble::push_tree`), feature names that do not match `num_feature`, an unreadable
//! `base_score`.
//!
//! Numbers of the JSON are read as f64 and rounded to f32. XGBoost writes each float32 as the
//! shortest decimal that reads back to it, closest to it among those; such a decimal is far
//! (relative to an f64 ulp) from the midpoint between two float32s, so the f64 step cannot
//! change the float32 it rounds to.

mod schema;

use crate::error::{echo, ModelError};
use crate::limits::{MAX_MODEL_INPUTS, MAX_MODEL_JSON_BYTES, MAX_TREES};
use crate::trees::{RawTree, TreeEnsemble, TreeObjective};
use schema::{Document, Flag, GbTreeModel, Learner, LearnerModelParam, Param, Tree};

/// Dotted path of the trees array, for messages.
const TREES: &str = "learner.gradient_booster.model.trees";

impl TreeEnsemble {
    /// Imports a gradient-boosted tree ensemble from XGBoost's JSON model format (what
    /// `Booster.save_model("m.json")` writes, xgboost 1.x–3.x): see the module docs of
    /// `xgboost` for what is read and what is refused. The result scores as XGBoost
    /// predicts (crate docs).
    pub fn from_xgboost_json(json: &[u8]) -> Result<TreeEnsemble, ModelError> {
        ModelError::check_limit("bytes of JSON", json.len(), MAX_MODEL_JSON_BYTES)?;
        let doc: Document = serde_json::from_slice(json).map_err(|e| json_error(e, json))?;
        let learner = required(doc.learner, "learner")?;
        import_learner(learner)
    }
}

fn import_learner(learner: Learner) -> Result<TreeEnsemble, ModelError> {
    let objective = objective(learner.objective.and_then(|o| o.name))?;
    let booster = required(learner.gradient_booster, "learner.gradient_booster")?;
    let name = required(booster.name, "learner.gradient_booster.name")?;
    if name != "gbtree" {
        return Err(ModelError::unsupported(format!(
            "booster `{}` (only gbtree is supported)",
            echo(&name)
        )));
    }
    let param = required(learner.learner_model_param, "learner.learner_model_param")?;
    check_one_output(&param)?;
    let num_feature = count(
        param.num_feature.as_ref(),
        "learner.learner_model_param.num_feature",
    )?;
    ModelError::check_limit("features", num_feature, MAX_MODEL_INPUTS)?;
    let base_score = base_score(param.base_score.as_ref())?;
    let names = feature_names(learner.feature_names, num_feature)?;
    let model = required(booster.model, "learner.gradient_booster.model")?;
    let trees = check_trees(&model)?;
    let mut ensemble = TreeEnsemble::new(objective, names, base_score)?;
    for (t, tree) in trees.iter().enumerate() {
        push_tree(&mut ensemble, t, tree)?;
    }
    Ok(ensemble)
}

/// The objective from `learner.objective.name`.
fn objective(name: Option<String>) -> Result<TreeObjective, ModelError> {
    let name = required(name, "learner.objective.name")?;
    match name.as_str() {
        "binary:logistic" => Ok(TreeObjective::BinaryLogistic),
        "reg:squarederror" => Ok(TreeObjective::SquaredError),
        other => Err(ModelError::unsupported(format!(
            "objective `{}` (supported: binary:logistic, reg:squarederror)",
            echo(other)
        ))),
    }
}

/// Refuses models with several outputs: multi-class or multi-target.
fn check_one_output(param: &LearnerModelParam) -> Result<(), ModelError> {
    let path = "learner.learner_model_param";
    let num_class = optional_count(param.num_class.as_ref(), &format!("{path}.num_class"))?;
    if num_class.unwrap_or(0) > 1 {
        return Err(ModelError::unsupported(format!(
            "multi-class models (num_class = {})",
            num_class.unwrap_or(0)
        )));
    }
    let num_target = optional_count(param.num_target.as_ref(), &format!("{path}.num_target"))?;
    if num_target.unwrap_or(1) > 1 {
        return Err(ModelError::unsupported(format!(
            "multi-target models (num_target = {})",
            num_target.unwrap_or(1)
        )));
    }
    Ok(())
}

/// `base_score`: `"5E-1"` or, in xgboost ≥ 3, a vector of one `"[5E-1]"`.
fn base_score(param: Option<&Param>) -> Result<f32, ModelError> {
    let path = "learner.learner_model_param.base_score";
    let text = match required(param, path)? {
        Param::Number(v) => return Ok(*v as f32),
        Param::Text(text) => text.trim(),
    };
    let inner = match text.strip_prefix('[') {
        Some(rest) => rest.strip_suffix(']').ok_or_else(|| bad_base_score(text))?,
        None => text,
    };
    let values: Vec<&str> = inner.split(',').map(str::trim).collect();
    if values.len() > 1 {
        return Err(ModelError::unsupported(format!(
            "a base_score of {} values (several outputs)",
            values.len()
        )));
    }
    values[0].parse::<f32>().map_err(|_| bad_base_score(text))
}

fn bad_base_score(text: &str) -> ModelError {
    ModelError::Invalid(format!(
        "learner.learner_model_param.base_score `{}` is not a number",
        echo(text)
    ))
}

/// Feature names: the model's (exactly `num_feature` of them), or `f0..f{n-1}` when absent or
/// empty (XGBoost's own default names).
fn feature_names(
    names: Option<Vec<String>>,
    num_feature: usize,
) -> Result<Vec<String>, ModelError> {
    match names {
        Some(names) if !names.is_empty() => {
            if names.len() != num_feature {
                return Err(ModelError::Invalid(format!(
                    "learner.feature_names has {} names, num_feature is {num_feature}",
                    names.len()
                )));
            }
            Ok(names)
        }
        _ => Ok((0..num_feature).map(|i| format!("f{i}")).collect()),
    }
}

/// The trees, after checking their count and that they all belong to output group 0.
fn check_trees(model: &GbTreeModel) -> Result<&[Tree], ModelError> {
    let trees = required(model.trees.as_deref(), TREES)?;
    ModelError::check_limit("trees", trees.len(), MAX_TREES)?;
    let path = "learner.gradient_booster.model.tree_info";
    let info = required(model.tree_info.as_deref(), path)?;
    if info.len() != trees.len() {
        return Err(ModelError::Invalid(format!(
            "{path} has {} entries for {} trees",
            info.len(),
            trees.len()
        )));
    }
    if let Some((t, group)) = info.iter().enumerate().find(|(_, &g)| g != 0) {
        return Err(ModelError::unsupported(format!(
            "several output groups (tree {t} is in group {group})"
        )));
    }
    let declared = model
        .gbtree_model_param
        .as_ref()
        .and_then(|p| p.num_trees.as_ref());
    let path = "learner.gradient_booster.model.gbtree_model_param.num_trees";
    if let Some(declared) = optional_count(declared, path)? {
        if declared != trees.len() {
            return Err(ModelError::Invalid(format!(
                "{path} is {declared}, but there are {} trees",
                trees.len()
            )));
        }
    }
    Ok(trees)
}

/// Reads tree `t`, refuses what XGBoost-specific fields rule out, and appends it.
fn push_tree(ensemble: &mut TreeEnsemble, t: usize, tree: &Tree) -> Result<(), ModelError> {
    let field = |name: &str| format!("{TREES}[{t}].{name}");
    let left = required(tree.left_children.as_deref(), &field("left_children"))?;
    let right = required(tree.right_children.as_deref(), &field("right_children"))?;
    let feature = required(tree.split_indices.as_deref(), &field("split_indices"))?;
    let value = required(tree.split_conditions.as_deref(), &field("split_conditions"))?;
    let flags = required(tree.default_left.as_deref(), &field("default_left"))?;
    let default_left = flags
        .iter()
        .enumerate()
        .map(|(node, &flag)| flag_value(flag, t, node))
        .collect::<Result<Vec<bool>, ModelError>>()?;
    let unreachable = check_tree_param(tree, t, left.len())?;
    if let Some(types) = &tree.split_type {
        check_numerical(ensemble, t, types, left, feature)?;
    }
    let raw = RawTree {
        left,
        right,
        feature,
        value,
        default_left: &default_left,
        unreachable,
    };
    ensemble.push_tree(t, &raw)
}

fn flag_value(flag: Flag, t: usize, node: usize) -> Result<bool, ModelError> {
    match flag {
        Flag::Bool(b) => Ok(b),
        Flag::Int(0) => Ok(false),
        Flag::Int(1) => Ok(true),
        Flag::Int(other) => Err(ModelError::Invalid(format!(
            "tree {t}, node {node}: default_left is {other}, expected 0 or 1"
        ))),
    }
}

/// Checks `tree_param` (when present) against the arrays; returns `num_deleted`, the number of
/// nodes no path may reach (0 when absent).
fn check_tree_param(tree: &Tree, t: usize, nodes: usize) -> Result<usize, ModelError> {
    let Some(param) = &tree.tree_param else {
        return Ok(0);
    };
    let field = |name: &str| format!("{TREES}[{t}].tree_param.{name}");
    if let Some(leaf_size) =
        optional_count(param.size_leaf_vector.as_ref(), &field("size_leaf_vector"))?
    {
        if leaf_size > 1 {
            return Err(ModelError::unsupported(format!(
                "multi-target trees (tree {t} has leaves of {leaf_size} values)"
            )));
        }
    }
    if let Some(declared) = optional_count(param.num_nodes.as_ref(), &field("num_nodes"))? {
        if declared != nodes {
            return Err(ModelError::Invalid(format!(
                "tree {t}: tree_param.num_nodes is {declared}, left_children has {nodes} entries"
            )));
        }
    }
    let deleted = optional_count(param.num_deleted.as_ref(), &field("num_deleted"))?;
    Ok(deleted.unwrap_or(0))
}

/// Refuses a categorical split at any split node, naming its feature.
fn check_numerical(
    ensemble: &TreeEnsemble,
    t: usize,
    types: &[i64],
    left: &[i64],
    feature: &[i64],
) -> Result<(), ModelError> {
    if types.len() != left.len() {
        return Err(ModelError::Invalid(format!(
            "tree {t}: split_type has {} entries, left_children has {}",
            types.len(),
            left.len()
        )));
    }
    let names = ensemble.feature_names();
    for (node, (&kind, &l)) in types.iter().zip(left).enumerate() {
        if kind == 0 || l == -1 {
            continue;
        }
        let index = feature.get(node).copied().unwrap_or(-1);
        let name = usize::try_from(index)
            .ok()
            .and_then(|i| names.get(i))
            .map_or_else(|| format!("index {index}"), |n| format!("`{}`", echo(n)));
        return Err(ModelError::unsupported(format!(
            "categorical split on feature {name} (tree {t}, node {node}); only numerical \
             splits are supported"
        )));
    }
    Ok(())
}

/// `value`, or [`ModelError::InvalidJson`] naming the missing field by its dotted path.
fn required<T>(value: Option<T>, path: &str) -> Result<T, ModelError> {
    value.ok_or_else(|| ModelError::InvalidJson(format!("missing field `{path}`")))
}

/// A required non-negative integer parameter.
fn count(param: Option<&Param>, path: &str) -> Result<usize, ModelError> {
    optional_count(param, path)?
        .ok_or_else(|| ModelError::InvalidJson(format!("missing field `{path}`")))
}

/// An optional non-negative integer parameter (`"10"` or `10`).
fn optional_count(param: Option<&Param>, path: &str) -> Result<Option<usize>, ModelError> {
    let bad = |shown: String| {
        ModelError::InvalidJson(format!(
            "`{path}` is `{}`, expected a non-negative integer",
            echo(&shown)
        ))
    };
    match param {
        None => Ok(None),
        Some(Param::Text(text)) => text
            .trim()
            .parse::<usize>()
            .map(Some)
            .map_err(|_| bad(text.clone())),
        Some(Param::Number(v)) => {
            if v.fract() == 0.0 && *v >= 0.0 && *v <= u32::MAX as f64 {
                Ok(Some(*v as usize))
            } else {
                Err(bad(v.to_string()))
            }
        }
    }
}

/// A serde error as [`ModelError::InvalidJson`], telling bad syntax from a bad field. The typed
/// parse stops at the first wrong type, which may come before a syntax error further on: on
/// that (error) path the text is parsed again untyped, so text that is not JSON is always
/// reported as such.
fn json_error(e: serde_json::Error, json: &[u8]) -> ModelError {
    use serde_json::error::Category;
    let e = match e.classify() {
        Category::Data => match serde_json::from_slice::<serde::de::IgnoredAny>(json) {
            Ok(_) => return ModelError::InvalidJson(format!("a field has the wrong type: {e}")),
            Err(syntax) => syntax,
        },
        _ => e,
    };
    ModelError::InvalidJson(format!("not valid JSON: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Param {
        Param::Text(s.into())
    }

    #[test]
    fn base_score_in_every_spelling() {
        assert_eq!(base_score(Some(&text("5E-1"))).unwrap(), 0.5);
        assert_eq!(base_score(Some(&text("[5E-1]"))).unwrap(), 0.5);
        assert_eq!(base_score(Some(&text(" [1.324E-1] "))).unwrap(), 0.1324f32);
        assert_eq!(base_score(Some(&Param::Number(0.25))).unwrap(), 0.25);
        assert!(matches!(
            base_score(Some(&text("[1E-1,2E-1]"))),
            Err(ModelError::Unsupported { .. })
        ));
        assert!(matches!(
            base_score(Some(&text("[5E-1"))),
            Err(ModelError::Invalid(_))
        ));
        assert!(matches!(
            base_score(Some(&text("half"))),
            Err(ModelError::Invalid(_))
        ));
        assert!(matches!(base_score(None), Err(ModelError::InvalidJson(_))));
    }

    #[test]
    fn counts_as_text_or_number() {
        assert_eq!(optional_count(Some(&text("10")), "p").unwrap(), Some(10));
        assert_eq!(
            optional_count(Some(&Param::Number(3.0)), "p").unwrap(),
            Some(3)
        );
        assert_eq!(optional_count(None, "p").unwrap(), None);
        assert!(optional_count(Some(&text("-1")), "p").is_err());
        assert!(optional_count(Some(&Param::Number(1.5)), "p").is_err());
        assert!(count(None, "a.b")
            .unwrap_err()
            .to_string()
            .contains("`a.b`"));
    }

    #[test]
    fn default_feature_names() {
        assert_eq!(feature_names(None, 2).unwrap(), vec!["f0", "f1"]);
        assert_eq!(feature_names(Some(vec![]), 1).unwrap(), vec!["f0"]);
        assert!(feature_names(Some(vec!["a".into()]), 2).is_err());
    }
}
