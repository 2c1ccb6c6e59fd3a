//! Models in the catalog: what CREATE MODEL parses and checks, the defaults, the score of a
//! planned model, the namespace and dependency rules, SHOW MODELS / DESCRIBE MODEL, and the
//! catalog file round trip.

use tarn_models::{LinearKind, Scorer};
use tarn_types::{ColumnType, Value};

use super::catalog_with;
use crate::catalog::{Catalog, MAX_MODELS};
use crate::sql::{parse, Statement};
use crate::{CoreError, ErrorKind};

const SCHEMA: &[&str] = &[
    "CREATE TABLE cards (card_id TEXT PRIMARY KEY, account_id TEXT, device_id BIGINT, \
     flagged BOOLEAN)",
    "CREATE TABLE devices (device_id BIGINT PRIMARY KEY, emb VECTOR(2), flagged BOOLEAN)",
    "CREATE INDEX dev_emb ON devices USING hnsw (emb)",
    "CREATE STREAM tx (ts TIMESTAMP, card_id TEXT, account_id TEXT, amount DOUBLE) WITH \
     (event_time = 'ts', partition = 'card_id', recent = 5)",
    "CREATE MATERIALIZED VIEW acct_f WITH (window = '1 hour', bucket = '1 minute') AS SELECT \
     account_id, count(*) AS n, sum(amount) AS spend FROM tx GROUP BY account_id",
    "CREATE CONTEXT fraud (card_id TEXT) AS SELECT \
     row(cards, card_id) AS card, \
     features(acct_f, card.account_id) AS acct, \
     knn(dev_emb, like => card.device_id, k => 3, columns => (device_id)) AS similar, \
     row(devices, similar.device_id, columns => (device_id, flagged)) AS sim_rows, \
     recent(tx, card_id, 3) AS last",
];

const LR: &str = "CREATE MODEL fraud_lr ON CONTEXT fraud \
    INPUTS (acct.spend, acct.n, card.flagged) \
    USING logistic_regression \
    WITH (weights = (0.5, -1, 2), intercept = -1.5, impute = (0, 1, 0), \
          mean = (3, 0, 0), std = (2, 1.0, 1), log1p = (acct.spend))";

fn schema() -> Catalog {
    catalog_with(SCHEMA)
}

fn run(cat: &Catalog, sql: &str) -> Result<(Catalog, String), CoreError> {
    let stmt = parse(sql)?.remove(0);
    cat.apply_ddl(&stmt)
}

fn create(cat: &Catalog, sql: &str) -> Catalog {
    run(cat, sql).unwrap_or_else(|e| panic!("{sql}: {e}")).0
}

/// `sql` fails with `kind`, its message containing `phrase`.
fn refused(cat: &Catalog, sql: &str, kind: ErrorKind, phrase: &str) {
    let e = run(cat, sql).expect_err(sql);
    assert_eq!(e.kind(), kind, "{sql}: {e}");
    assert!(e.to_string().contains(phrase), "{sql}: {e}");
}

/// A model over the fraud context with `inputs` and `with` (the WITH list's inside).
fn model_sql(inputs: &str, with: &str) -> String {
    format!(
        "CREATE MODEL m ON CONTEXT fraud INPUTS ({inputs}) USING logistic_regression WITH ({with})"
    )
}

#[test]
fn a_model_is_planned_with_resolved_inputs_and_scores() {
    let cat = create(&schema(), LR);
    let m = cat.model("fraud_lr").unwrap();
    let ctx = cat.context("fraud").unwrap();
    assert_eq!(m.context_id, ctx.id);
    assert_eq!(m.version, 1);
    assert_eq!(m.kind_name(), "logistic_regression");
    assert_eq!(m.model.kind(), LinearKind::Logistic);
    assert_eq!(m.threshold, Some(0.5), "logistic models default to 0.5");
    let resolved: Vec<(&str, usize, usize, ColumnType)> = m
        .inputs
        .iter()
        .map(|i| (i.name.as_str(), i.item, i.column, i.ty))
        .collect();
    // acct is item 1 (account_id, n, spend), card item 0 (card_id, account_id, device_id,
    // flagged).
    assert_eq!(
        resolved,
        [
            ("acct.spend", 1, 2, ColumnType::Double),
            ("acct.n", 1, 1, ColumnType::BigInt),
            ("card.flagged", 0, 3, ColumnType::Boolean),
        ]
    );
    let log1p: Vec<bool> = m.model.inputs().iter().map(|i| i.log1p).collect();
    assert_eq!(log1p, [true, false, false]);
    assert_eq!(m.model.weights(), [0.5, -1.0, 2.0]);
    assert_eq!(m.model.intercept(), -1.5);
    assert_eq!(
        m.model.input_names(),
        ["acct.spend", "acct.n", "card.flagged"]
    );
    // spend 10 → ln(11), standardised (ln 11 − 3)/2; n NULL → impute 1; flagged TRUE → 1.
    let z = -1.5 + 0.5 * ((11f64).ln() - 3.0) / 2.0 - 1.0 + 2.0;
    let expected = z.exp() / (1.0 + z.exp());
    let got = m.model.score(&[Some(10.0), None, Some(1.0)]).unwrap();
    assert!((got - expected).abs() < 1e-12, "{got} vs {expected}");
    assert!(m.sql.starts_with("CREATE MODEL fraud_lr"));
}

#[test]
fn defaults_apply_and_linear_models_have_no_threshold() {
    let cat = create(
        &schema(),
        "CREATE MODEL lin ON CONTEXT fraud INPUTS (acct.n) USING linear_regression \
         WITH (weights = 3, intercept = 1)",
    );
    let m = cat.model("lin").unwrap();
    assert_eq!(m.kind_name(), "linear_regression");
    assert_eq!(m.threshold, None);
    let input = &m.model.inputs()[0];
    assert_eq!(
        (input.impute, input.mean, input.std, input.log1p),
        (0.0, 0.0, 1.0, false)
    );
    // NULL → impute 0: the score is the intercept.
    assert_eq!(m.model.score(&[None]).unwrap(), 1.0);
    assert_eq!(m.model.score(&[Some(2.0)]).unwrap(), 7.0);
    let cat = create(
        &cat,
        "CREATE MODEL lin2 ON CONTEXT fraud INPUTS (acct.n) USING linear_regression \
         WITH (weights = (-0.25), intercept = -2, threshold = -1.5)",
    );
    assert_eq!(cat.model("lin2").unwrap().threshold, Some(-1.5));
    assert_eq!(cat.model("lin2").unwrap().model.weights(), [-0.25]);
}

#[test]
fn every_bad_input_is_refused_naming_it() {
    let cat = schema();
    let ia = ErrorKind::InvalidArgument;
    let ok_with = "weights = (1), intercept = 0";
    refused(
        &cat,
        "CREATE MODEL m ON CONTEXT nope INPUTS (a.b) USING linear_regression WITH (weights = 1, intercept = 0)",
        ErrorKind::UnknownContext,
        "unknown context \"nope\"",
    );
    refused(
        &cat,
        "CREATE MODEL m ON CONTEXT cards INPUTS (a.b) USING linear_regression WITH (weights = 1, intercept = 0)",
        ErrorKind::UnknownContext,
        "\"cards\" is a table, not a context",
    );
    refused(
        &cat,
        &model_sql("zz.n", ok_with),
        ia,
        "context fraud has no item zz",
    );
    refused(
        &cat,
        &model_sql("acct.zz", ok_with),
        ia,
        "item acct has no column zz",
    );
    refused(
        &cat,
        &model_sql("similar.device_id", ok_with),
        ia,
        "item similar is a list item (knn)",
    );
    refused(
        &cat,
        &model_sql("last.amount", ok_with),
        ia,
        "item last is a list item (recent)",
    );
    refused(
        &cat,
        &model_sql("sim_rows.flagged", ok_with),
        ia,
        "keyed by a list item",
    );
    refused(
        &cat,
        &model_sql("card.account_id", ok_with),
        ia,
        "input card.account_id is TEXT",
    );
    refused(
        &cat,
        &model_sql("acct.n, acct.n", "weights = (1, 1), intercept = 0"),
        ia,
        "input acct.n is listed twice",
    );
    refused(
        &cat,
        &model_sql("acct.n, acct.spend", "weights = (1), intercept = 0"),
        ia,
        "weights has 1 values for 2 inputs",
    );
    refused(
        &cat,
        &model_sql(
            "acct.n, acct.spend",
            "weights = (1, 2), intercept = 0, mean = (1, 2, 3)",
        ),
        ia,
        "mean has 3 values for 2 inputs",
    );
    refused(
        &cat,
        &model_sql("acct.n", "weights = (1), intercept = 0, colour = 1"),
        ia,
        "unknown option colour",
    );
    refused(
        &cat,
        &model_sql("acct.n", "weights = (1), intercept = 0, intercept = 1"),
        ia,
        "option intercept is given twice",
    );
    refused(
        &cat,
        &model_sql("acct.n", "intercept = 0"),
        ia,
        "needs weights",
    );
    refused(
        &cat,
        &model_sql("acct.n", "weights = (1)"),
        ia,
        "needs intercept",
    );
    refused(
        &cat,
        &model_sql("acct.n", "weights = (1), intercept = (1, 2)"),
        ia,
        "intercept takes one number",
    );
    refused(
        &cat,
        &model_sql("acct.n", "weights = (1), intercept = 0, std = (0)"),
        ia,
        "std of input `acct.n` is 0: it must be > 0",
    );
    refused(
        &cat,
        &model_sql(
            "acct.n",
            "weights = (1), intercept = 0, log1p = (acct.n), impute = (-1)",
        ),
        ia,
        "log1p needs a value > -1",
    );
    refused(
        &cat,
        &model_sql(
            "acct.n",
            "weights = (1), intercept = 0, log1p = (acct.spend)",
        ),
        ia,
        "log1p names acct.spend, which is not one of the inputs",
    );
    refused(
        &cat,
        &model_sql("acct.n", "weights = (1), intercept = 0, log1p = (1)"),
        ia,
        "log1p takes a list of inputs",
    );
    refused(
        &cat,
        &model_sql("acct.n", "weights = ('a'), intercept = 0"),
        ia,
        "option weights: `'a'` is not a number",
    );
    refused(
        &cat,
        &model_sql("acct.n", "weights = (1e400), intercept = 0"),
        ErrorKind::Unsupported,
        "numeric literal",
    );
    refused(
        &cat,
        &model_sql("acct", ok_with),
        ErrorKind::SqlParse,
        "is not an input (write item.column)",
    );
    refused(
        &cat,
        "CREATE MODEL m ON CONTEXT fraud INPUTS (acct.n) USING xgboost WITH (weights = 1, intercept = 0)",
        ErrorKind::Unsupported,
        "model kind xgboost",
    );
    refused(
        &cat,
        "CREATE MODEL m ON fraud INPUTS (acct.n) USING linear_regression WITH (weights = 1, intercept = 0)",
        ErrorKind::SqlParse,
        "expected CONTEXT after ON",
    );
    refused(
        &cat,
        "DROP MODEL m extra",
        ErrorKind::SqlParse,
        "after DROP MODEL name",
    );
}

#[test]
fn the_catalog_holds_at_most_max_models_models() {
    let mut cat = schema();
    let model = |n: usize| {
        format!(
            "CREATE MODEL m{n} ON CONTEXT fraud INPUTS (acct.spend) USING linear_regression \
             WITH (weights = 1, intercept = 0)"
        )
    };
    for n in 0..MAX_MODELS {
        cat = create(&cat, &model(n));
    }
    assert_eq!(cat.models().count(), MAX_MODELS);
    refused(
        &cat,
        &model(MAX_MODELS),
        ErrorKind::LimitExceeded,
        &format!("already has {MAX_MODELS} models"),
    );
    // Dropping one makes room again.
    let cat = create(&cat, "DROP MODEL m0");
    create(&cat, &model(MAX_MODELS));
}

#[test]
fn if_not_exists_and_if_exists() {
    let cat = create(&schema(), LR);
    let (same, msg) = run(
        &cat,
        &LR.replace("MODEL fraud_lr", "MODEL IF NOT EXISTS fraud_lr"),
    )
    .unwrap();
    assert_eq!(msg, "model fraud_lr already exists, skipped");
    assert_eq!(same, cat);
    let e = run(&cat, LR).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ObjectExists);
    assert_eq!(e.to_string(), "model \"fraud_lr\" already exists");
    let (same, msg) = run(&cat, "DROP MODEL IF EXISTS nope").unwrap();
    assert_eq!(msg, "model nope does not exist, skipped");
    assert_eq!(same, cat);
    let e = run(&cat, "DROP MODEL nope").unwrap_err();
    assert_eq!(e, CoreError::UnknownModel("nope".into()));
    assert_eq!(e.kind(), ErrorKind::UnknownModel);
    assert_eq!(e.to_string(), "unknown model \"nope\"");
    // DROP MODEL of a context's name: no model has it.
    assert_eq!(
        run(&cat, "DROP MODEL fraud").unwrap_err(),
        CoreError::UnknownModel("fraud".into())
    );
    let (dropped, msg) = run(&cat, "DROP MODEL fraud_lr").unwrap();
    assert_eq!(msg, "DROP MODEL fraud_lr");
    assert!(dropped.model("fraud_lr").is_none());
    assert_eq!(dropped.version, cat.version + 1);
}

#[test]
fn models_share_the_namespace() {
    let cat = schema();
    let e = run(&cat, &LR.replace("MODEL fraud_lr", "MODEL cards")).unwrap_err();
    assert_eq!(e, CoreError::TableExists("cards".into()));
    let e = run(
        &cat,
        &LR.replace("MODEL fraud_lr", "MODEL IF NOT EXISTS fraud"),
    )
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ObjectExists);
    assert_eq!(e.to_string(), "context \"fraud\" already exists");
    let cat = create(&cat, LR);
    let e = run(&cat, "CREATE TABLE fraud_lr (k BIGINT PRIMARY KEY)").unwrap_err();
    assert_eq!(e.to_string(), "model \"fraud_lr\" already exists");
    // Ids are never reused: a model dropped and created again gets a new one.
    let id = cat.model("fraud_lr").unwrap().id;
    let again = create(&create(&cat, "DROP MODEL fraud_lr"), LR);
    assert!(again.model("fraud_lr").unwrap().id > id);
}

#[test]
fn drop_context_is_refused_while_a_model_uses_it() {
    let cat = create(&schema(), LR);
    let e = run(&cat, "DROP CONTEXT fraud").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported);
    assert!(
        e.to_string()
            .contains("dropping context fraud while models use it (fraud_lr); drop them first"),
        "{e}"
    );
    let cat = create(&cat, "DROP MODEL fraud_lr");
    let (cat, msg) = run(&cat, "DROP CONTEXT fraud").unwrap();
    assert_eq!(msg, "DROP CONTEXT fraud");
    assert!(cat.context("fraud").is_none());
}

#[test]
fn show_and_describe_models_and_statements() {
    assert_eq!(parse("SHOW MODELS").unwrap(), [Statement::ShowModels]);
    assert_eq!(
        parse("describe model Fraud_LR; DESC MODEL \"X\"").unwrap(),
        [
            Statement::DescribeModel {
                name: "fraud_lr".into()
            },
            Statement::DescribeModel { name: "X".into() }
        ]
    );
    // `DESCRIBE model` describes an object named `model`.
    assert_eq!(
        parse("DESCRIBE model; DESC \"model\" ").unwrap(),
        [
            Statement::Describe {
                table: "model".into()
            },
            Statement::Describe {
                table: "model".into()
            }
        ]
    );
    assert!(parse(LR).unwrap()[0].is_ddl());
    let cat = create(
        &create(&schema(), LR),
        "CREATE MODEL lin ON CONTEXT fraud INPUTS (acct.n) USING linear_regression \
         WITH (weights = 3, intercept = 1)",
    );
    let show = crate::listing::show_models(&cat);
    let names: Vec<&str> = show.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        ["model", "context", "kind", "inputs", "version", "threshold"]
    );
    let text = |s: &str| Value::Text(s.into());
    assert_eq!(
        show.rows,
        [
            vec![
                text("fraud_lr"),
                text("fraud"),
                text("logistic_regression"),
                Value::Int(3),
                Value::Int(1),
                Value::Double(0.5)
            ],
            vec![
                text("lin"),
                text("fraud"),
                text("linear_regression"),
                Value::Int(1),
                Value::Int(1),
                Value::Null
            ],
        ]
    );
    assert_eq!(show.message, "2 model(s)");
    let m = cat.model("fraud_lr").unwrap();
    let d = crate::listing::describe_model(m);
    assert_eq!(
        crate::listing::describe(&cat, "fraud_lr", &|_| (0, 0)),
        Some(d.clone())
    );
    let names: Vec<&str> = d.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        ["input", "type", "weight", "impute", "mean", "std", "log1p"]
    );
    let (n, f, b) = (Value::Null, Value::Double, Value::Bool);
    assert_eq!(
        d.rows,
        [
            vec![
                text("(intercept)"),
                text("logistic_regression"),
                f(-1.5),
                n.clone(),
                n.clone(),
                n.clone(),
                b(false)
            ],
            vec![
                text("acct.spend"),
                text("DOUBLE"),
                f(0.5),
                f(0.0),
                f(3.0),
                f(2.0),
                b(true)
            ],
            vec![
                text("acct.n"),
                text("BIGINT"),
                f(-1.0),
                f(1.0),
                f(0.0),
                f(1.0),
                b(false)
            ],
            vec![
                text("card.flagged"),
                text("BOOLEAN"),
                f(2.0),
                f(0.0),
                f(0.0),
                f(1.0),
                b(false)
            ],
            vec![
                text("(threshold)"),
                text("score >= threshold"),
                f(0.5),
                n.clone(),
                n.clone(),
                n,
                b(false)
            ],
        ]
    );
    assert_eq!(d.message, m.sql);
}

#[test]
fn models_survive_the_catalog_file() {
    let cat = create(&create(&schema(), LR), "CREATE MODEL lin ON CONTEXT fraud INPUTS (acct.n) USING linear_regression WITH (weights = -3, intercept = 0.125, threshold = 2)");
    let bytes = cat.to_bytes();
    assert!(bytes.starts_with(b"{\n  \"format\": 4,"));
    let back = Catalog::from_bytes(&bytes).unwrap();
    assert_eq!(back, cat);
    assert_eq!(back.to_bytes(), bytes);
    // A model entry whose text does not plan is corrupt, naming the model.
    let text = String::from_utf8(bytes).unwrap();
    let broken = text.replace("INPUTS (acct.n)", "INPUTS (acct.gone)");
    let e = Catalog::from_bytes(broken.as_bytes()).unwrap_err();
    assert!(e.is_corrupt(), "{e}");
    assert!(e.to_string().contains("catalog model \"lin\""), "{e}");
    // An older format listing models is corrupt.
    let old = text.replace("\"format\": 4,", "\"format\": 3,");
    let e = Catalog::from_bytes(old.as_bytes()).unwrap_err();
    assert!(
        e.to_string().contains("formats 1 to 3 have no models"),
        "{e}"
    );
}
