//! Models in the catalog end to end (Tarn issue 10, step 2): CREATE MODEL over a named context,
//! SHOW MODELS and DESCRIBE MODEL, the model kept across a graceful restart and a kill -9 on
//! the same data dir and port, DROP CONTEXT refused while a model uses it, DROP MODEL, and bad
//! CREATE MODEL statements answered with their specific error while the server keeps serving.

mod common;

use common::*;

/// A small fraud-like schema: cards and accounts, a transaction stream, a lifetime view per
/// account, and a context reading a card, its account and the account's features.
const SCHEMA: &str = "CREATE TABLE cards (id TEXT PRIMARY KEY, account_id TEXT, flagged BOOLEAN); \
     CREATE TABLE accounts (id TEXT PRIMARY KEY, owner TEXT, tier BIGINT); \
     CREATE STREAM tx (ts TIMESTAMP, account TEXT, amount DOUBLE) \
       WITH (event_time = 'ts', partition = 'account'); \
     CREATE MATERIALIZED VIEW acct_life WITH (window = 'lifetime') AS \
       SELECT account, count(*) AS txns, sum(amount) AS spend FROM tx GROUP BY account; \
     CREATE CONTEXT card_ctx (card TEXT) AS SELECT \
       row(cards, card) AS c, row(accounts, c.account_id) AS a, \
       features(acct_life, c.account_id) AS f";

const FRAUD_LR: &str = "CREATE MODEL fraud_lr ON CONTEXT card_ctx \
     INPUTS (f.spend, f.txns, c.flagged, a.tier) \
     USING logistic_regression \
     WITH (weights = (0.8, -0.25, 2, 0.5), intercept = -3, impute = (0, 0, 0, 1), \
           mean = (4.5, 10, 0, 2), std = (1.5, 5, 1, 1), log1p = (f.spend), threshold = 0.7)";

const SPEND_LIN: &str = "CREATE MODEL spend_lin ON CONTEXT card_ctx INPUTS (f.spend) \
     USING linear_regression WITH (weights = 1.5, intercept = -2)";

/// Expects a server error with `code` whose message contains `phrase`.
fn expect_err(r: CResult<SqlReply>, code: ErrorCode, phrase: &str, what: &str) {
    let e = match r {
        Ok(v) => panic!("{what}: expected {code:?}, got {v:?}"),
        Err(e) => e.server(),
    };
    assert_eq!(e.code, code, "{what}: {e:?}");
    assert!(
        e.message.contains(phrase),
        "{what}: message {:?} does not contain {phrase:?}",
        e.message
    );
}

/// SHOW MODELS and DESCRIBE MODEL of each model, as text: what must survive a restart.
fn snapshot(c: &mut Conn) -> Vec<String> {
    let shown = c.sql("SHOW MODELS").unwrap();
    let mut out = vec![format!("{:?} {:?}", shown.columns, shown.rows)];
    for row in &shown.rows {
        let Value::Text(name) = &row[0] else {
            panic!("{row:?}")
        };
        let d = c.sql(&format!("DESCRIBE MODEL {name}")).unwrap();
        out.push(format!("{} {:?} {:?}", d.message, d.columns, d.rows));
    }
    out
}

fn t(s: &str) -> Value {
    Value::Text(s.into())
}

#[test]
fn models_are_created_described_kept_across_restarts_and_dropped() {
    let mut server = TarnServer::start_ok(ServerOpts::shards(2).durability("sync"));
    let port = server.port();
    let mut c = server.client();
    c.sql(SCHEMA).unwrap();
    assert_eq!(c.sql(FRAUD_LR).unwrap().message, "CREATE MODEL fraud_lr");

    let shown = c.sql("SHOW MODELS").unwrap();
    let names: Vec<&str> = shown.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        ["model", "context", "kind", "inputs", "version", "threshold"]
    );
    assert_eq!(
        shown.rows,
        [vec![
            t("fraud_lr"),
            t("card_ctx"),
            t("logistic_regression"),
            Value::Int(4),
            Value::Int(1),
            Value::Double(0.7)
        ]]
    );
    assert_eq!(shown.message, "1 model(s)");

    let d = c.sql("DESCRIBE MODEL fraud_lr").unwrap();
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
                t("(intercept)"),
                t("logistic_regression"),
                f(-3.0),
                n.clone(),
                n.clone(),
                n.clone(),
                b(false)
            ],
            vec![
                t("f.spend"),
                t("DOUBLE"),
                f(0.8),
                f(0.0),
                f(4.5),
                f(1.5),
                b(true)
            ],
            vec![
                t("f.txns"),
                t("BIGINT"),
                f(-0.25),
                f(0.0),
                f(10.0),
                f(5.0),
                b(false)
            ],
            vec![
                t("c.flagged"),
                t("BOOLEAN"),
                f(2.0),
                f(0.0),
                f(0.0),
                f(1.0),
                b(false)
            ],
            vec![
                t("a.tier"),
                t("BIGINT"),
                f(0.5),
                f(1.0),
                f(2.0),
                f(1.0),
                b(false)
            ],
            vec![
                t("(threshold)"),
                t("score >= threshold"),
                f(0.7),
                n.clone(),
                n.clone(),
                n,
                b(false)
            ],
        ]
    );
    assert_eq!(d.message, FRAUD_LR);
    // A plain DESCRIBE finds the model too.
    let plain = c.sql("DESCRIBE fraud_lr").unwrap();
    assert_eq!(
        (plain.rows, plain.message),
        (d.rows.clone(), d.message.clone())
    );

    let before = snapshot(&mut c);
    drop(c);
    server.restart_ok();
    assert_eq!(server.port(), port, "the restart moved ports");
    let mut c = server.client();
    assert_eq!(snapshot(&mut c), before, "after a graceful restart");

    // A model created just before a kill -9 (sync: acknowledged means durable).
    assert_eq!(c.sql(SPEND_LIN).unwrap().message, "CREATE MODEL spend_lin");
    let before = snapshot(&mut c);
    assert_eq!(before.len(), 3, "{before:?}");
    drop(c);
    server.kill9();
    server.restart_ok();
    assert_eq!(server.port(), port, "the restart moved ports");
    let mut c = server.client();
    assert_eq!(snapshot(&mut c), before, "after kill -9");
    let shown = c.sql("SHOW MODELS").unwrap();
    assert_eq!(
        shown.rows[1][5],
        Value::Null,
        "a linear model has no threshold"
    );

    // The context cannot go while models use it.
    expect_err(
        c.sql("DROP CONTEXT card_ctx"),
        ErrorCode::Unsupported,
        "while models use it (fraud_lr, spend_lin)",
        "DROP CONTEXT under models",
    );
    assert_eq!(
        c.sql("DROP MODEL fraud_lr").unwrap().message,
        "DROP MODEL fraud_lr"
    );
    assert_eq!(
        c.sql("DROP MODEL IF EXISTS fraud_lr").unwrap().message,
        "model fraud_lr does not exist, skipped"
    );
    expect_err(
        c.sql("DESCRIBE MODEL fraud_lr"),
        ErrorCode::UnknownModel,
        "unknown model \"fraud_lr\"",
        "DESCRIBE of a dropped model",
    );
    assert_eq!(
        c.sql("DROP MODEL spend_lin").unwrap().message,
        "DROP MODEL spend_lin"
    );
    assert!(c.sql("SHOW MODELS").unwrap().rows.is_empty());
    assert_eq!(
        c.sql("DROP CONTEXT card_ctx").unwrap().message,
        "DROP CONTEXT card_ctx"
    );

    // The drops are durable too.
    drop(c);
    server.restart_ok();
    let mut c = server.client();
    assert!(c.sql("SHOW MODELS").unwrap().rows.is_empty());
    assert!(c.sql("SHOW CONTEXTS").unwrap().rows.is_empty());
}

#[test]
fn bad_create_model_gives_its_specific_error_and_the_server_keeps_serving() {
    let server = TarnServer::start_ok(ServerOpts::shards(2));
    let mut c = server.client();
    c.sql(SCHEMA).unwrap();
    let with = |inputs: &str, opts: &str| {
        format!(
            "CREATE MODEL bad ON CONTEXT card_ctx INPUTS ({inputs}) \
             USING logistic_regression WITH ({opts})"
        )
    };
    let ok = "weights = (1), intercept = 0";
    let cases: Vec<(String, ErrorCode, &str)> = vec![
        (
            "CREATE MODEL bad ON CONTEXT nope INPUTS (f.spend) USING linear_regression \
             WITH (weights = 1, intercept = 0)"
                .into(),
            ErrorCode::UnknownContext,
            "unknown context \"nope\"",
        ),
        (
            with("x.spend", ok),
            ErrorCode::InvalidArgument,
            "has no item x",
        ),
        (
            with("f.nope", ok),
            ErrorCode::InvalidArgument,
            "item f has no column nope",
        ),
        (
            with("a.owner", ok),
            ErrorCode::InvalidArgument,
            "input a.owner is TEXT",
        ),
        (
            with("f.spend, f.txns", ok),
            ErrorCode::InvalidArgument,
            "weights has 1 values for 2 inputs",
        ),
        (
            with("f.spend", "weights = (1), intercept = 0, speed = 3"),
            ErrorCode::InvalidArgument,
            "unknown option speed",
        ),
        (
            with("f.spend", "weights = (1), weights = (2), intercept = 0"),
            ErrorCode::InvalidArgument,
            "option weights is given twice",
        ),
        (
            with("f.spend", "weights = (1), intercept = 0, std = (-1)"),
            ErrorCode::InvalidArgument,
            "it must be > 0",
        ),
        (
            with("f.spend", "intercept = 0"),
            ErrorCode::InvalidArgument,
            "needs weights",
        ),
        (
            "CREATE MODEL cards ON CONTEXT card_ctx INPUTS (f.spend) USING linear_regression \
             WITH (weights = 1, intercept = 0)"
                .into(),
            ErrorCode::TableExists,
            "table \"cards\" already exists",
        ),
    ];
    for (sql, code, phrase) in &cases {
        expect_err(c.sql(sql), *code, phrase, sql);
        // Still serving, and nothing was created.
        c.ping().unwrap();
        assert!(c.sql("SHOW MODELS").unwrap().rows.is_empty(), "{sql}");
    }
    assert_eq!(c.sql(SPEND_LIN).unwrap().message, "CREATE MODEL spend_lin");
}
