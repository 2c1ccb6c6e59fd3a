//! Every refusal of the importer and of the linear model names what was wrong: each test
//! asserts the error variant and a key phrase of its message. XGBoost cases start from the
//! committed regression fixture and change one thing.

use serde_json::{json, Value};
use tarn_models::limits::{MAX_MODEL_JSON_BYTES, MAX_TREES};
use tarn_models::{LinearInput, LinearKind, LinearModel, ModelError, Scorer, TreeEnsemble};

fn fixture() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/xgboost/regression.json"
    );
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// The fixture with `change` applied, imported.
fn import_changed(change: impl FnOnce(&mut Value)) -> Result<TreeEnsemble, ModelError> {
    let mut model = fixture();
    change(&mut model);
    TreeEnsemble::from_xgboost_json(&serde_json::to_vec(&model).unwrap())
}

fn tree(model: &mut Value, t: usize) -> &mut Value {
    &mut model["learner"]["gradient_booster"]["model"]["trees"][t]
}

/// Asserts `result` is an error matching `variant` whose message contains `phrase`.
fn assert_error<T: std::fmt::Debug>(
    result: Result<T, ModelError>,
    variant: fn(&ModelError) -> bool,
    phrase: &str,
) {
    let err = result.unwrap_err();
    let message = err.to_string();
    assert!(variant(&err), "wrong variant: {err:?}");
    assert!(message.contains(phrase), "`{message}` lacks `{phrase}`");
}

fn is_invalid(e: &ModelError) -> bool {
    matches!(e, ModelError::Invalid(_))
}
fn is_json(e: &ModelError) -> bool {
    matches!(e, ModelError::InvalidJson(_))
}
fn is_unsupported(e: &ModelError) -> bool {
    matches!(e, ModelError::Unsupported { .. })
}
fn is_limit(e: &ModelError) -> bool {
    matches!(e, ModelError::LimitExceeded { .. })
}

#[test]
fn the_unchanged_fixture_imports() {
    let model = import_changed(|_| {}).unwrap();
    assert_eq!(model.tree_count(), 50);
}

#[test]
fn text_that_is_not_json() {
    let result = TreeEnsemble::from_xgboost_json(b"{\"learner\": [1, 2");
    assert_error(result, is_json, "not valid JSON");
    assert_error(
        TreeEnsemble::from_xgboost_json(b""),
        is_json,
        "not valid JSON",
    );
}

#[test]
fn json_without_learner() {
    let result = TreeEnsemble::from_xgboost_json(br#"{"version": [3, 2, 0]}"#);
    assert_error(result, is_json, "missing field `learner`");
}

#[test]
fn a_missing_nested_field_is_named_by_its_path() {
    let result = import_changed(|m| {
        tree(m, 7)
            .as_object_mut()
            .unwrap()
            .remove("split_conditions");
    });
    assert_error(
        result,
        is_json,
        "`learner.gradient_booster.model.trees[7].split_conditions`",
    );
    let result = import_changed(|m| {
        m["learner"]["learner_model_param"]
            .as_object_mut()
            .unwrap()
            .remove("num_feature");
    });
    assert_error(result, is_json, "learner.learner_model_param.num_feature");
}

#[test]
fn a_field_of_the_wrong_type() {
    let result = import_changed(|m| tree(m, 0)["left_children"] = json!("many"));
    assert_error(result, is_json, "wrong type");
}

#[test]
fn other_objectives() {
    let result = import_changed(|m| m["learner"]["objective"]["name"] = json!("multi:softprob"));
    assert_error(result, is_unsupported, "objective `multi:softprob`");
    let result = import_changed(|m| m["learner"]["objective"]["name"] = json!("rank:pairwise"));
    assert_error(result, is_unsupported, "rank:pairwise");
}

#[test]
fn other_boosters() {
    let result = import_changed(|m| m["learner"]["gradient_booster"]["name"] = json!("dart"));
    assert_error(result, is_unsupported, "booster `dart`");
    let result = import_changed(|m| {
        m["learner"]["gradient_booster"] = json!({"name": "gblinear", "model": {"weights": [0.5]}});
    });
    assert_error(result, is_unsupported, "booster `gblinear`");
}

#[test]
fn several_outputs() {
    let result = import_changed(|m| m["learner"]["learner_model_param"]["num_class"] = json!("3"));
    assert_error(result, is_unsupported, "multi-class models (num_class = 3)");
    let result = import_changed(|m| m["learner"]["learner_model_param"]["num_target"] = json!("2"));
    assert_error(result, is_unsupported, "multi-target models");
    let result = import_changed(|m| {
        m["learner"]["gradient_booster"]["model"]["tree_info"][4] = json!(1);
    });
    assert_error(
        result,
        is_unsupported,
        "several output groups (tree 4 is in group 1)",
    );
    let result = import_changed(|m| {
        m["learner"]["learner_model_param"]["base_score"] = json!("[1E0,2E0]");
    });
    assert_error(result, is_unsupported, "base_score of 2 values");
    let result = import_changed(|m| tree(m, 2)["tree_param"]["size_leaf_vector"] = json!("3"));
    assert_error(result, is_unsupported, "multi-target trees");
}

#[test]
fn a_categorical_split_names_its_feature() {
    let result = import_changed(|m| {
        // The root of tree 0 splits on feature 5, distance_km.
        assert_eq!(tree(m, 0)["split_indices"][0], json!(5));
        tree(m, 0)["split_type"][0] = json!(1);
    });
    assert_error(
        result,
        is_unsupported,
        "categorical split on feature `distance_km`",
    );
}

#[test]
fn a_child_index_out_of_range() {
    let result = import_changed(|m| tree(m, 3)["left_children"][0] = json!(9_999));
    assert_error(result, is_invalid, "child index 9999 is out of range");
    let result = import_changed(|m| tree(m, 3)["right_children"][1] = json!(-7));
    assert_error(result, is_invalid, "child index -7 is out of range");
}

#[test]
fn a_cycle() {
    // Node 1's left child points back at the root.
    let result = import_changed(|m| tree(m, 3)["left_children"][1] = json!(0));
    assert_error(
        result,
        is_invalid,
        "reached twice (a cycle or a shared subtree)",
    );
    // Node 3's right child points at its own parent, node 1.
    let result = import_changed(|m| tree(m, 3)["right_children"][3] = json!(1));
    assert_error(result, is_invalid, "reached twice");
}

#[test]
fn a_node_with_one_child_or_unreachable_nodes() {
    let result = import_changed(|m| tree(m, 3)["right_children"][0] = json!(-1));
    assert_error(result, is_invalid, "has one child");
    // Both children of node 1 made leaves: nodes 3, 4 and their subtrees become unreachable.
    let result = import_changed(|m| {
        tree(m, 3)["left_children"][1] = json!(-1);
        tree(m, 3)["right_children"][1] = json!(-1);
    });
    assert_error(result, is_invalid, "is not reachable from the root");
}

#[test]
fn a_feature_index_beyond_num_feature() {
    let result = import_changed(|m| tree(m, 0)["split_indices"][0] = json!(10));
    assert_error(
        result,
        is_invalid,
        "split feature index 10 is out of range: num_feature is 10",
    );
    let result = import_changed(|m| tree(m, 0)["split_indices"][0] = json!(9));
    assert!(result.is_ok(), "the last feature is in range");
}

#[test]
fn arrays_of_unequal_length() {
    let result = import_changed(|m| {
        tree(m, 1)["default_left"].as_array_mut().unwrap().pop();
    });
    assert_error(result, is_invalid, "default_left has");
    let result = import_changed(|m| tree(m, 1)["default_left"][0] = json!(2));
    assert_error(result, is_invalid, "expected 0 or 1");
}

#[test]
fn feature_names_of_another_count() {
    let result = import_changed(|m| {
        m["learner"]["feature_names"].as_array_mut().unwrap().pop();
    });
    assert_error(result, is_invalid, "9 names, num_feature is 10");
    let result = import_changed(|m| m["learner"]["feature_names"][1] = json!("amount"));
    assert_error(result, is_invalid, "duplicate input name `amount`");
}

#[test]
fn limits_of_size_and_trees() {
    let huge = vec![b' '; MAX_MODEL_JSON_BYTES + 1];
    assert_error(
        TreeEnsemble::from_xgboost_json(&huge),
        is_limit,
        "bytes of JSON",
    );
    let result = import_changed(|m| {
        let model = &mut m["learner"]["gradient_booster"]["model"];
        let one = model["trees"][0].clone();
        model["trees"] = Value::Array(vec![one; MAX_TREES + 1]);
        model["tree_info"] = Value::Array(vec![json!(0); MAX_TREES + 1]);
    });
    assert_error(result, is_limit, "trees");
}

#[test]
fn older_spellings_score_the_same() {
    // xgboost 1.x: base_score without brackets, default_left as booleans, no split_type,
    // no feature names (then f0, f1, …).
    let current = import_changed(|_| {}).unwrap();
    let old = import_changed(|m| {
        m["learner"]["learner_model_param"]["base_score"] = json!("3.523445E0");
        m["learner"]
            .as_object_mut()
            .unwrap()
            .remove("feature_names");
        for t in m["learner"]["gradient_booster"]["model"]["trees"]
            .as_array_mut()
            .unwrap()
        {
            let flags: Vec<Value> = t["default_left"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| json!(v.as_i64() == Some(1)))
                .collect();
            t["default_left"] = Value::Array(flags);
            t.as_object_mut().unwrap().remove("split_type");
        }
    })
    .unwrap();
    assert_eq!(old.input_names()[0], "f0");
    assert_eq!(old.input_names()[9], "f9");
    assert_eq!(old.base_score(), current.base_score());
    for k in 0..200 {
        let row: Vec<Option<f64>> = (0..10)
            .map(|j| ((k * 7 + j) % 5 != 0).then_some((k * 31 + j * 17) as f64 % 97.0 / 7.0))
            .collect();
        assert_eq!(old.score(&row).unwrap(), current.score(&row).unwrap());
    }
}

#[test]
fn wrong_input_count_at_scoring() {
    let model = import_changed(|_| {}).unwrap();
    let result = model.score(&[Some(1.0); 9]);
    assert_eq!(
        result,
        Err(ModelError::InputCount {
            expected: 10,
            got: 9
        })
    );
    assert_error(
        model.score(&[None; 11]),
        |e| matches!(e, ModelError::InputCount { .. }),
        "got 11",
    );
    assert!(model.score(&[None; 10]).is_ok());
}

fn input(name: &str) -> LinearInput {
    LinearInput {
        name: name.into(),
        impute: 0.0,
        log1p: false,
        mean: 0.0,
        std: 1.0,
    }
}

#[test]
fn log1p_of_minus_two() {
    let mut amount = input("amount");
    amount.log1p = true;
    let model = LinearModel::new(LinearKind::Logistic, vec![amount], vec![1.0], 0.0).unwrap();
    let result = model.score(&[Some(-2.0)]);
    assert_error(
        result,
        |e| matches!(e, ModelError::InvalidInput { input, .. } if input == "amount"),
        "log1p of -2 is undefined",
    );
    let mut bad_impute = input("amount");
    bad_impute.log1p = true;
    bad_impute.impute = -2.0;
    let result = LinearModel::new(LinearKind::Linear, vec![bad_impute], vec![1.0], 0.0);
    assert_error(
        result,
        is_invalid,
        "impute of input `amount` is -2 under log1p",
    );
}

#[test]
fn std_zero() {
    let mut x = input("x");
    x.std = 0.0;
    let result = LinearModel::new(LinearKind::Linear, vec![input("a"), x], vec![1.0, 2.0], 0.0);
    assert_error(result, is_invalid, "std of input `x` is 0: it must be > 0");
}

#[test]
fn duplicate_input_names() {
    let result = LinearModel::new(
        LinearKind::Linear,
        vec![input("a"), input("b"), input("a")],
        vec![1.0; 3],
        0.0,
    );
    assert_error(result, is_invalid, "duplicate input name `a` (input 2)");
}

#[test]
fn other_linear_refusals() {
    let result = LinearModel::new(LinearKind::Linear, vec![], vec![], 0.0);
    assert_error(result, is_invalid, "at least one input");
    let result = LinearModel::new(LinearKind::Linear, vec![input("a")], vec![1.0, 2.0], 0.0);
    assert_error(result, is_invalid, "2 weights for 1 inputs");
    let result = LinearModel::new(LinearKind::Linear, vec![input("a")], vec![f64::NAN], 0.0);
    assert_error(result, is_invalid, "the weight of input `a` is NaN");
    let result = LinearModel::new(
        LinearKind::Linear,
        vec![input("a")],
        vec![1.0],
        f64::INFINITY,
    );
    assert_error(result, is_invalid, "the intercept is inf");
    let model = LinearModel::new(LinearKind::Linear, vec![input("a")], vec![1.0], 0.0).unwrap();
    assert_error(
        model.score(&[]),
        |e| matches!(e, ModelError::InputCount { .. }),
        "got 0",
    );
    let result = model.score(&[Some(f64::INFINITY)]);
    assert_error(
        result,
        |e| matches!(e, ModelError::InvalidInput { .. }),
        "not a finite",
    );
    let big = LinearModel::new(LinearKind::Linear, vec![input("a")], vec![1e300], 0.0).unwrap();
    let result = big.score(&[Some(1e300)]);
    assert_error(
        result,
        |e| matches!(e, ModelError::InvalidInput { .. }),
        "overflowed",
    );
}
