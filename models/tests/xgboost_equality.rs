//! Scores of imported XGBoost models equal XGBoost's own predictions, row by row.
//!
//! The fixtures (tests/fixtures/xgboost, made by make.py there with xgboost 3.2.0) hold two
//! models as `Booster.save_model` wrote them and the rows with xgboost's predictions: 10,000
//! rows of float32 inputs (rows.csv) and 1,000 of float64 inputs (rows_f64.csv), half of the
//! latter within a few f64 ulps of split conditions. Every row must be within 1e-6 of
//! xgboost; the maximum error is printed (`cargo test -- --nocapture`). A reference walk over
//! the raw JSON, written here independently, counts how many decisions took a default
//! direction (NULL inputs) and how many inputs sat exactly on a split condition.

use std::path::PathBuf;

use serde_json::Value;
use tarn_models::{Scorer, TreeEnsemble, TreeObjective};

const TOLERANCE: f64 = 1e-6;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/xgboost")
        .join(name)
}

/// One CSV of rows: inputs (None for NaN) and xgboost's three prediction columns.
struct Rows {
    names: Vec<String>,
    inputs: Vec<Vec<Option<f64>>>,
    logistic: Vec<f64>,
    logistic_margin: Vec<f64>,
    regression: Vec<f64>,
}

/// Reads a rows file; inputs are parsed as f32 (then widened) when `f32_inputs`, else as f64.
fn read_rows(name: &str, f32_inputs: bool) -> Rows {
    let text = std::fs::read_to_string(fixture(name)).unwrap();
    let mut lines = text.lines();
    let header: Vec<String> = lines.next().unwrap().split(',').map(String::from).collect();
    let n_inputs = header.len() - 3;
    assert_eq!(
        &header[n_inputs..],
        ["xgb_logistic", "xgb_logistic_margin", "xgb_regression"]
    );
    let mut rows = Rows {
        names: header[..n_inputs].to_vec(),
        inputs: Vec::new(),
        logistic: Vec::new(),
        logistic_margin: Vec::new(),
        regression: Vec::new(),
    };
    for line in lines {
        let cells: Vec<&str> = line.split(',').collect();
        assert_eq!(cells.len(), header.len(), "{line}");
        let input = |s: &str| match s {
            "NaN" => None,
            _ if f32_inputs => Some(f64::from(s.parse::<f32>().unwrap())),
            _ => Some(s.parse::<f64>().unwrap()),
        };
        rows.inputs
            .push(cells[..n_inputs].iter().map(|s| input(s)).collect());
        let pred = |i: usize| f64::from(cells[n_inputs + i].parse::<f32>().unwrap());
        rows.logistic.push(pred(0));
        rows.logistic_margin.push(pred(1));
        rows.regression.push(pred(2));
    }
    rows
}

fn load(name: &str) -> (TreeEnsemble, Value) {
    let bytes = std::fs::read(fixture(name)).unwrap();
    let model = TreeEnsemble::from_xgboost_json(&bytes).unwrap();
    (model, serde_json::from_slice(&bytes).unwrap())
}

/// What the reference walk saw over all rows and trees.
#[derive(Default, Debug)]
struct WalkCounts {
    default_directions: usize,
    exactly_on_condition: usize,
}

/// XGBoost's predictor written plainly over the JSON: f32 inputs, `x < c` goes left, missing
/// follows default_left, leaf values summed in f32 from `base_margin`.
fn reference_margin(
    json: &Value,
    base_margin: f32,
    row: &[Option<f64>],
    c: &mut WalkCounts,
) -> f32 {
    let trees = json["learner"]["gradient_booster"]["model"]["trees"]
        .as_array()
        .unwrap();
    let mut margin = base_margin;
    for tree in trees {
        let num = |field: &str, i: usize| tree[field][i].as_f64().unwrap();
        let mut node = 0usize;
        while tree["left_children"][node].as_i64().unwrap() != -1 {
            let feature = num("split_indices", node) as usize;
            let condition = num("split_conditions", node) as f32;
            let go_left = match row[feature] {
                None => {
                    c.default_directions += 1;
                    num("default_left", node) != 0.0
                }
                Some(v) => {
                    c.exactly_on_condition += usize::from(v as f32 == condition);
                    (v as f32) < condition
                }
            };
            let next = if go_left {
                "left_children"
            } else {
                "right_children"
            };
            node = num(next, node) as usize;
        }
        margin += num("split_conditions", node) as f32;
    }
    margin
}

/// Max |ours − theirs| over the rows, with the row where it happened.
fn max_error(ours: &[f64], theirs: &[f64]) -> (f64, usize) {
    let mut worst = (0.0, 0);
    for (i, (a, b)) in ours.iter().zip(theirs).enumerate() {
        let e = (a - b).abs();
        assert!(!e.is_nan(), "row {i}: {a} vs {b}");
        if e > worst.0 {
            worst = (e, i);
        }
    }
    worst
}

/// Scores every row with `model` (alternating None and Some(NaN) for NULLs) and checks it
/// against `expected`; returns the max error.
fn check(model: &TreeEnsemble, rows: &Rows, expected: &[f64], what: &str) -> f64 {
    assert_eq!(model.input_names(), rows.names);
    let mut ours = Vec::with_capacity(rows.inputs.len());
    for (i, row) in rows.inputs.iter().enumerate() {
        let as_nan: Vec<Option<f64>> = row.iter().map(|v| v.or(Some(f64::NAN))).collect();
        let row = if i % 2 == 0 { row } else { &as_nan };
        ours.push(model.score(row).unwrap());
    }
    let (err, row) = max_error(&ours, expected);
    let exact = ours.iter().zip(expected).filter(|(a, b)| a == b).count();
    println!(
        "{what}: max |ours - xgboost| = {err:e} (row {row}), {exact} of {} rows bit-identical",
        ours.len()
    );
    assert!(
        err <= TOLERANCE,
        "{what}: row {row}: ours {} vs xgboost {}",
        ours[row],
        expected[row]
    );
    err
}

/// Margins of `model` against the reference walk (must be bit-identical) and xgboost's.
fn check_margins(model: &TreeEnsemble, json: &Value, rows: &Rows, what: &str) -> WalkCounts {
    let mut counts = WalkCounts::default();
    let mut ours = Vec::new();
    for row in &rows.inputs {
        let margin = model.margin(row).unwrap();
        let reference = reference_margin(json, model.base_margin(), row, &mut counts);
        assert_eq!(margin, f64::from(reference), "{what}: {row:?}");
        ours.push(margin);
    }
    if model.objective() == TreeObjective::BinaryLogistic {
        let (err, row) = max_error(&ours, &rows.logistic_margin);
        println!("{what}: max |margin - xgboost output_margin| = {err:e} (row {row})");
        assert!(err <= TOLERANCE, "{what}: margin of row {row}");
    }
    counts
}

#[test]
fn logistic_model_matches_xgboost() {
    let (model, json) = load("logistic.json");
    assert_eq!(model.objective(), TreeObjective::BinaryLogistic);
    assert_eq!(model.tree_count(), 200);
    assert!(model.max_depth() <= 6);
    // xgboost 3 writes base_score as a vector of one: "[1.059E-1]".
    let stored = json["learner"]["learner_model_param"]["base_score"]
        .as_str()
        .unwrap();
    assert!(stored.starts_with('[') && stored.ends_with(']'), "{stored}");
    let p: f32 = stored.trim_matches(['[', ']']).parse().unwrap();
    assert_eq!(model.base_score(), p);
    assert!(
        (f64::from(model.base_margin()) - (f64::from(p) / (1.0 - f64::from(p))).ln()).abs() < 1e-6
    );

    for (file, f32_inputs) in [("rows.csv", true), ("rows_f64.csv", false)] {
        let rows = read_rows(file, f32_inputs);
        check(&model, &rows, &rows.logistic, &format!("logistic, {file}"));
        let counts = check_margins(&model, &json, &rows, &format!("logistic, {file}"));
        println!("logistic, {file}: {counts:?}");
        assert!(counts.default_directions > 1_000, "{counts:?}");
        assert!(counts.exactly_on_condition > 100, "{counts:?}");
    }
}

#[test]
fn regression_model_matches_xgboost() {
    let (model, json) = load("regression.json");
    assert_eq!(model.objective(), TreeObjective::SquaredError);
    assert_eq!(model.tree_count(), 50);
    assert!(model.max_depth() <= 4);
    for (file, f32_inputs) in [("rows.csv", true), ("rows_f64.csv", false)] {
        let rows = read_rows(file, f32_inputs);
        check(
            &model,
            &rows,
            &rows.regression,
            &format!("regression, {file}"),
        );
        let counts = check_margins(&model, &json, &rows, &format!("regression, {file}"));
        println!("regression, {file}: {counts:?}");
        assert!(counts.default_directions > 100, "{counts:?}");
    }
}

#[test]
fn fixture_rows_cover_nulls_and_extremes() {
    let rows = read_rows("rows.csv", true);
    assert!(rows.inputs.len() >= 10_000);
    let with_null = rows
        .inputs
        .iter()
        .filter(|r| r.iter().any(Option::is_none))
        .count();
    let all_null = rows
        .inputs
        .iter()
        .filter(|r| r.iter().all(Option::is_none))
        .count();
    println!(
        "rows.csv: {} rows, {with_null} with a NULL, {all_null} all NULL",
        rows.inputs.len()
    );
    assert!(with_null > 2_000, "{with_null}");
    assert!(all_null >= 1);
    let f64_rows = read_rows("rows_f64.csv", false);
    // Inputs that are not float32 values: the f64 → f32 rounding is exercised.
    let not_f32 = f64_rows
        .inputs
        .iter()
        .flatten()
        .flatten()
        .filter(|&&v| f64::from(v as f32) != v)
        .count();
    assert!(not_f32 > 5_000, "{not_f32}");
}

#[test]
fn nulls_passed_as_none_or_nan_score_alike() {
    let (model, _) = load("logistic.json");
    let rows = read_rows("rows.csv", true);
    for row in rows
        .inputs
        .iter()
        .filter(|r| r.iter().any(Option::is_none))
        .take(500)
    {
        let nan: Vec<Option<f64>> = row.iter().map(|v| v.or(Some(f64::NAN))).collect();
        assert_eq!(model.score(row).unwrap(), model.score(&nan).unwrap());
    }
}
