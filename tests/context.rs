//! CONTEXT requests end to end (Tarn issue 9): chained lookups across shards through a named
//! context, missing keys at each hop, list fan-out from a kNN item and its limit, every
//! planning and binding error with its code, drops refused while a context uses an object,
//! named contexts across a graceful restart and kill -9, one state per shard and
//! read-your-writes under concurrent writes, and the `tarn context` CLI.

mod common;

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;

use common::*;
use tarn_net::{IngestBody, IngestRequest};

const SHARDS: u32 = 2;

/// The first key `{prefix}{n}` (n = 0, 1, …) that lives on shard `shard`.
fn key_on(prefix: &str, shard: u32) -> String {
    (0..10_000)
        .map(|n| format!("{prefix}{n}"))
        .find(|k| shard_of(&text(k), SHARDS) == shard)
        .unwrap_or_else(|| panic!("no key {prefix}N on shard {shard}"))
}

fn ingest(c: &mut Conn, stream: &str, columns: &[&str], rows: Vec<Vec<Value>>) -> CResult<()> {
    match c.call(&Request::Ingest(IngestRequest {
        stream: stream.into(),
        producer: None,
        body: IngestBody::Rows {
            columns: columns.iter().map(|s| s.to_string()).collect(),
            rows,
        },
    }))? {
        Response::Ingest(_) => Ok(()),
        o => Err(ClientError::Protocol(format!("unexpected {o:?}"))),
    }
}

/// Expects a server error with `code` whose message contains every one of `names`.
fn expect_err<T: std::fmt::Debug>(r: CResult<T>, code: ErrorCode, names: &[&str], what: &str) {
    let e = match r {
        Ok(v) => panic!("{what}: expected {code:?}, got {v:?}"),
        Err(e) => e.server(),
    };
    assert_eq!(e.code, code, "{what}: {e:?}");
    for n in names {
        assert!(
            e.message.contains(n),
            "{what}: message {:?} does not name {n:?}",
            e.message
        );
    }
}

/// Rows of the item `name`, group by group: (key, rows).
fn groups(r: &ContextReply, name: &str) -> Vec<(Value, Vec<Vec<Value>>)> {
    ctx_item(r, name)
        .groups
        .iter()
        .map(|g| (g.key.clone(), g.rows.clone()))
        .collect()
}

// -------------------------------------------------------------------------------------------
// The card / account schema of tests 1, 2, 4, 5, 6 and 8

/// Keys of the card schema: a card and its account on different shards.
struct Cards {
    card: String,
    account: String,
    /// A card whose account_id is NULL.
    card_null: String,
    /// A card whose account row does not exist.
    card_orphan: String,
    orphan_account: String,
    /// Another account with events (must never leak into the first one's answer).
    other_account: String,
}

const CARD_CTX: &str = "CREATE CONTEXT card_ctx (card TEXT) AS SELECT \
     row(cards, card) AS c, \
     row(accounts, c.account_id) AS a, \
     features(acct_life, c.account_id) AS f";

/// Creates the schema, writes the rows and events, creates `card_ctx`.
fn setup_cards(c: &mut Conn) -> Cards {
    c.sql(
        "CREATE TABLE cards (id TEXT PRIMARY KEY, account_id TEXT, holder TEXT); \
         CREATE TABLE accounts (id TEXT PRIMARY KEY, owner TEXT, tier BIGINT); \
         CREATE STREAM tx (ts TIMESTAMP, account TEXT, amount DOUBLE) \
           WITH (event_time = 'ts', partition = 'account', max_future = '30 seconds'); \
         CREATE MATERIALIZED VIEW acct_life WITH (window = 'lifetime') AS \
           SELECT account, count(*) AS txns, sum(amount) AS spend FROM tx GROUP BY account",
    )
    .unwrap();
    let k = Cards {
        card: key_on("card-", 0),
        account: key_on("acct-", 1),
        card_null: key_on("cnull-", 1),
        card_orphan: key_on("corph-", 0),
        orphan_account: key_on("gone-", 1),
        other_account: key_on("other-", 0),
    };
    assert_ne!(
        shard_of(&text(&k.card), SHARDS),
        shard_of(&text(&k.account), SHARDS)
    );
    c.upsert(
        "cards",
        &["id", "account_id", "holder"],
        vec![
            vec![text(&k.card), text(&k.account), text("Ann")],
            vec![text(&k.card_null), Value::Null, text("Bob")],
            vec![text(&k.card_orphan), text(&k.orphan_account), text("Cy")],
        ],
    )
    .unwrap();
    c.upsert(
        "accounts",
        &["id", "owner", "tier"],
        vec![
            vec![text(&k.account), text("Ann Corp"), Value::Int(3)],
            vec![text(&k.other_account), text("Other"), Value::Int(9)],
        ],
    )
    .unwrap();
    let ts = now_us();
    let ev = |a: &str, amount: f64| vec![Value::Timestamp(ts), text(a), Value::Double(amount)];
    ingest(
        c,
        "tx",
        &["ts", "account", "amount"],
        vec![
            ev(&k.account, 10.5),
            ev(&k.other_account, 1000.0),
            ev(&k.account, 20.25),
            ev(&k.account, 3.25),
        ],
    )
    .unwrap();
    c.sql(CARD_CTX).unwrap();
    k
}

fn call_card(c: &mut Conn, card: &str) -> ContextReply {
    c.context("card_ctx", &[("card", text(card))])
        .unwrap_or_else(|e| panic!("card_ctx({card}): {e}"))
}

/// The answer `card_ctx(k.card)` must give (the oracle: what setup_cards wrote).
fn assert_card_answer(r: &ContextReply, k: &Cards) {
    let names: Vec<&str> = r.items.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["c", "a", "f"], "{r:?}");
    assert_eq!(
        groups(r, "c"),
        vec![(
            text(&k.card),
            vec![vec![text(&k.card), text(&k.account), text("Ann")]]
        )]
    );
    assert_eq!(
        groups(r, "a"),
        vec![(
            text(&k.account),
            vec![vec![text(&k.account), text("Ann Corp"), Value::Int(3)]]
        )]
    );
    let f = groups(r, "f");
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].0, text(&k.account));
    assert_eq!(ctx_value(r, "f", 0, 0, "account"), text(&k.account));
    assert_eq!(ctx_value(r, "f", 0, 0, "txns"), Value::Int(3));
    assert_eq!(ctx_value(r, "f", 0, 0, "spend"), Value::Double(34.0));
}

// -------------------------------------------------------------------------------------------
// 1. chained lookups

#[test]
fn chained_lookups_across_shards() {
    let server = TarnServer::start_ok(ServerOpts::shards(SHARDS));
    let mut c = server.client();
    let k = setup_cards(&mut c);
    let before = now_us();
    let r = call_card(&mut c, &k.card);
    assert_card_answer(&r, &k);
    // The card is on shard 0, the account (row and view) on shard 1: both served.
    let shards: Vec<u32> = r.shards.iter().map(|s| s.shard).collect();
    assert_eq!(shards, [0, 1], "{r:?}");
    for s in &r.shards {
        assert!(
            s.as_of_us >= before - 1_000_000 && s.as_of_us <= now_us() + 1_000_000,
            "shard {} as of {} (call sent at {before})",
            s.shard,
            s.as_of_us
        );
    }
    // Column types as declared: the features item's columns are the view's result columns.
    let f = ctx_item(&r, "f");
    let cols: Vec<(&str, ColumnType)> = f.columns.iter().map(|c| (c.name.as_str(), c.ty)).collect();
    assert_eq!(
        cols,
        [
            ("account", ColumnType::Text),
            ("txns", ColumnType::BigInt),
            ("spend", ColumnType::Double)
        ]
    );
    // Three phases: the view keyed by the account row's own column (card → account → view).
    let r3 = c
        .context_items(&format!(
            "row(cards, '{}') AS c, row(accounts, c.account_id) AS a, \
             features(acct_life, a.id, columns => (txns, spend)) AS f",
            k.card
        ))
        .unwrap();
    assert_eq!(
        groups(&r3, "f"),
        vec![(
            text(&k.account),
            vec![vec![Value::Int(3), Value::Double(34.0)]]
        )]
    );
    assert_eq!(ctx_value(&r3, "a", 0, 0, "owner"), text("Ann Corp"));
    let d = c.sql("DESCRIBE card_ctx").unwrap();
    let phases: Vec<Value> = d.rows.iter().map(|r| r[6].clone()).collect();
    assert_eq!(
        phases,
        [Value::Int(0), Value::Int(1), Value::Int(1)],
        "{d:?}"
    );
    // The other account's events did not leak; its own context answer is separate.
    let r2 = c
        .context_items(&format!(
            "row(accounts, '{}') AS a, features(acct_life, a.id) AS f",
            k.other_account
        ))
        .unwrap();
    assert_eq!(ctx_value(&r2, "f", 0, 0, "txns"), Value::Int(1));
    assert_eq!(ctx_value(&r2, "f", 0, 0, "spend"), Value::Double(1000.0));
    assert_eq!(ctx_value(&r2, "a", 0, 0, "tier"), Value::Int(9));
    let shards: Vec<u32> = r2.shards.iter().map(|s| s.shard).collect();
    assert_eq!(shards, [shard_of(&text(&k.other_account), SHARDS)]);
}

// -------------------------------------------------------------------------------------------
// 2. missing keys at each hop

#[test]
fn missing_keys_at_each_hop() {
    let server = TarnServer::start_ok(ServerOpts::shards(SHARDS));
    let mut c = server.client();
    let k = setup_cards(&mut c);

    // Unknown card: its row all NULL, nothing to follow.
    let r = call_card(&mut c, "no-such-card");
    assert_eq!(
        groups(&r, "c"),
        vec![(
            text("no-such-card"),
            vec![vec![Value::Null, Value::Null, Value::Null]]
        )]
    );
    assert!(groups(&r, "a").is_empty(), "{r:?}");
    assert!(groups(&r, "f").is_empty(), "{r:?}");

    // A card whose account_id is NULL: the card row, no key for the dependent items.
    let r = call_card(&mut c, &k.card_null);
    assert_eq!(
        groups(&r, "c"),
        vec![(
            text(&k.card_null),
            vec![vec![text(&k.card_null), Value::Null, text("Bob")]]
        )]
    );
    assert!(groups(&r, "a").is_empty(), "{r:?}");
    assert!(groups(&r, "f").is_empty(), "{r:?}");

    // A card whose account row is missing: the account item is one all-NULL row for that
    // key; the view has no events for it either.
    let r = call_card(&mut c, &k.card_orphan);
    assert_eq!(
        groups(&r, "a"),
        vec![(
            text(&k.orphan_account),
            vec![vec![Value::Null, Value::Null, Value::Null]]
        )]
    );
    // (An unknown view key: count 0, NULL for the other aggregates.)
    assert_eq!(
        groups(&r, "f"),
        vec![(
            text(&k.orphan_account),
            vec![vec![text(&k.orphan_account), Value::Int(0), Value::Null]]
        )]
    );

    // A NULL parameter: no key at all, even for the first item.
    let r = c.context("card_ctx", &[("card", Value::Null)]).unwrap();
    for item in ["c", "a", "f"] {
        assert!(groups(&r, item).is_empty(), "{item}: {r:?}");
    }
    // And the full answer is still right afterwards.
    assert_card_answer(&call_card(&mut c, &k.card), &k);
}

// -------------------------------------------------------------------------------------------
// 3. list fan-out

const PTS: i64 = 300;

fn setup_points(c: &mut Conn) {
    c.sql(
        "CREATE TABLE pts (id BIGINT PRIMARY KEY, emb VECTOR(2), owner TEXT); \
         CREATE TABLE owners (name TEXT PRIMARY KEY, label TEXT); \
         CREATE INDEX pts_emb ON pts USING hnsw (emb)",
    )
    .unwrap();
    // Point id sits at (id, 0): its distance to the origin is id, all distinct.
    let rows: Vec<Vec<Value>> = (1..=PTS)
        .map(|id| {
            vec![
                Value::Int(id),
                Value::Vector(vec![id as f32, 0.0].into()),
                text(&format!("o{}", id % 3)),
            ]
        })
        .collect();
    c.upsert("pts", &["id", "emb", "owner"], rows).unwrap();
    // o2 has no owners row.
    c.upsert(
        "owners",
        &["name", "label"],
        vec![
            vec![text("o0"), text("zero")],
            vec![text("o1"), text("one")],
        ],
    )
    .unwrap();
}

#[test]
fn list_fan_out_and_its_limit() {
    let server = TarnServer::start_ok(ServerOpts::shards(SHARDS));
    let mut c = server.client();
    setup_points(&mut c);

    let r = c
        .context_items(
            "knn(pts_emb, vector => '[0, 0]', k => 6) AS near, row(owners, near.owner) AS o",
        )
        .unwrap();
    let near = ctx_item(&r, "near");
    let cols: Vec<&str> = near.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(cols, ["distance", "id", "emb", "owner"]);
    assert_eq!(near.columns[0].ty, ColumnType::Double);
    assert_eq!(near.groups.len(), 1, "{r:?}");
    let rows = &near.groups[0].rows;
    let ids: Vec<Value> = rows.iter().map(|r| r[1].clone()).collect();
    assert_eq!(ids, (1..=6).map(Value::Int).collect::<Vec<_>>());
    for (row, id) in rows.iter().zip(1..) {
        match row[0] {
            Value::Double(d) => assert!((d - id as f64).abs() < 1e-3, "distance {d} of {id}"),
            ref o => panic!("distance {o:?}"),
        }
    }
    // Owners o1 o2 o0 o1 o2 o0: one group per distinct key, in order of first appearance.
    assert_eq!(
        groups(&r, "o"),
        vec![
            (text("o1"), vec![vec![text("o1"), text("one")]]),
            (text("o2"), vec![vec![Value::Null, Value::Null]]),
            (text("o0"), vec![vec![text("o0"), text("zero")]]),
        ]
    );
    let d = ctx_item(&r, "o");
    assert_eq!(d.groups.len(), 3);

    // Exactly the limit: 256 distinct ids, one group each, in the kNN order.
    let r = c
        .context_items(
            "knn(pts_emb, vector => '[0, 0]', k => 256, ef => 400) AS near, \
             row(pts, near.id, columns => (id, owner)) AS again",
        )
        .unwrap();
    let near_ids: Vec<Value> = ctx_item(&r, "near").groups[0]
        .rows
        .iter()
        .map(|r| r[1].clone())
        .collect();
    assert_eq!(near_ids, (1..=256).map(Value::Int).collect::<Vec<_>>());
    let again = groups(&r, "again");
    assert_eq!(again.len(), 256);
    for ((key, rows), id) in again.iter().zip(1..) {
        assert_eq!(*key, Value::Int(id));
        assert_eq!(
            *rows,
            vec![vec![Value::Int(id), text(&format!("o{}", id % 3))]]
        );
    }

    // One over: LIMIT_EXCEEDED naming the item, nothing answered.
    expect_err(
        c.context_items(
            "knn(pts_emb, vector => '[0, 0]', k => 257, ef => 400) AS near, \
             row(pts, near.id) AS again",
        ),
        ErrorCode::LimitExceeded,
        &["again", "256"],
        "k = 257 fan-out",
    );
    // The same 257 rows with a reference to a column of few distinct values is fine.
    let r = c
        .context_items(
            "knn(pts_emb, vector => '[0, 0]', k => 257, ef => 400) AS near, \
             row(owners, near.owner) AS o",
        )
        .unwrap();
    assert_eq!(ctx_item(&r, "near").groups[0].rows.len(), 257);
    assert_eq!(groups(&r, "o").len(), 3);
    c.ping().unwrap();
}

// -------------------------------------------------------------------------------------------
// 4. errors

#[test]
fn errors_name_the_thing_and_the_server_keeps_serving() {
    let server = TarnServer::start_ok(ServerOpts::shards(SHARDS));
    let mut c = server.client();
    let k = setup_cards(&mut c);
    setup_points(&mut c);

    let create = |c: &mut Conn, body: &str| c.sql(&format!("CREATE CONTEXT bad {body}"));
    let cases: Vec<(&str, ErrorCode, Vec<&str>, &str)> = vec![
        (
            "(card TEXT) AS SELECT row(cards, card) AS c, row(accounts, nobody.account_id) AS a",
            ErrorCode::InvalidArgument,
            vec!["nobody", "a"],
            "reference to a missing item",
        ),
        (
            "(card TEXT) AS SELECT row(cards, card) AS c, row(accounts, c.acct) AS a",
            ErrorCode::InvalidArgument,
            vec!["c.acct", "account_id"],
            "reference to a missing column",
        ),
        (
            "AS SELECT row(cards, b.account_id) AS a, row(cards, a.account_id) AS b",
            ErrorCode::InvalidArgument,
            vec!["cycle", "a → b → a"],
            "a cycle",
        ),
        (
            "(card TEXT) AS SELECT row(nope_t, card) AS c",
            ErrorCode::UnknownTable,
            vec!["nope_t"],
            "unknown table",
        ),
        (
            "(card TEXT) AS SELECT features(nope_v, card) AS f",
            ErrorCode::UnknownView,
            vec!["nope_v"],
            "unknown view",
        ),
        (
            "AS SELECT knn(nope_i, vector => '[0, 0]', k => 3) AS n",
            ErrorCode::UnknownIndex,
            vec!["nope_i"],
            "unknown index",
        ),
        (
            "(card TEXT) AS SELECT features(cards, card) AS f",
            ErrorCode::UnknownView,
            vec!["cards", "table"],
            "a table given as a view",
        ),
        (
            "(n BIGINT) AS SELECT row(cards, n) AS c",
            ErrorCode::TypeMismatch,
            vec!["c.key", "TEXT", "BIGINT"],
            "BIGINT parameter as the key of a TEXT table",
        ),
        (
            "(card TEXT) AS SELECT row(cards, crd) AS c",
            ErrorCode::InvalidArgument,
            vec!["crd", "card"],
            "undeclared parameter",
        ),
    ];
    for (body, code, names, what) in cases {
        expect_err(create(&mut c, body), code, &names, what);
        c.ping().unwrap();
        // Nothing was created.
        expect_err(
            c.context("bad", &[]),
            ErrorCode::UnknownContext,
            &["bad"],
            what,
        );
    }
    let shown = c.sql("SHOW CONTEXTS").unwrap();
    assert_eq!(shown.rows.len(), 1, "{shown:?}");
    assert_eq!(shown.rows[0][0], text("card_ctx"));

    // Call errors of a good context.
    expect_err(
        c.context("card_ctx", &[("card", Value::Int(5))]),
        ErrorCode::TypeMismatch,
        &["card", "TEXT", "BIGINT"],
        "BIGINT for a TEXT parameter",
    );
    expect_err(
        c.context("card_ctx", &[]),
        ErrorCode::MissingValue,
        &["card"],
        "missing parameter",
    );
    expect_err(
        c.context(
            "card_ctx",
            &[("card", text(&k.card)), ("bogus", Value::Int(1))],
        ),
        ErrorCode::InvalidArgument,
        &["bogus", "card_ctx"],
        "unknown parameter",
    );
    expect_err(
        c.context("no_such_ctx", &[]),
        ErrorCode::UnknownContext,
        &["no_such_ctx"],
        "unknown context",
    );
    // Ad hoc items are planned the same way.
    expect_err(
        c.context_items("row(cards, 'x') AS a, row(cards, a.nope) AS b"),
        ErrorCode::InvalidArgument,
        &["a.nope"],
        "ad hoc missing column",
    );
    // After every error, the right answer.
    assert_card_answer(&call_card(&mut c, &k.card), &k);
}

// -------------------------------------------------------------------------------------------
// 5. drops refused while a context uses the object

#[test]
fn drops_refused_while_a_context_uses_the_object() {
    let server = TarnServer::start_ok(ServerOpts::shards(SHARDS));
    let mut c = server.client();
    let k = setup_cards(&mut c);
    setup_points(&mut c);
    c.sql("CREATE CONTEXT near_ctx AS SELECT knn(pts_emb, like => 1, k => 2) AS n")
        .unwrap();

    let refused = [
        ("DROP TABLE cards", "card_ctx"),
        ("DROP TABLE accounts", "card_ctx"),
        ("DROP MATERIALIZED VIEW acct_life", "card_ctx"),
        ("DROP INDEX pts_emb", "near_ctx"),
        ("DROP TABLE pts", "near_ctx"),
    ];
    for (stmt, ctx) in refused {
        expect_err(c.sql(stmt), ErrorCode::Unsupported, &[ctx], stmt);
    }
    // The stream under the view is held by the view first.
    expect_err(
        c.sql("DROP STREAM tx"),
        ErrorCode::Unsupported,
        &["acct_life"],
        "DROP STREAM under a view",
    );
    // Nothing was dropped: both contexts still answer.
    let r = c.context("near_ctx", &[]).unwrap();
    let ids: Vec<Value> = ctx_item(&r, "n").groups[0]
        .rows
        .iter()
        .map(|r| r[1].clone())
        .collect();
    assert_eq!(ids, [Value::Int(1), Value::Int(2)]);
    assert_eq!(
        ctx_value(&call_card(&mut c, &k.card), "a", 0, 0, "tier"),
        Value::Int(3)
    );

    assert_eq!(
        c.sql("DROP CONTEXT card_ctx").unwrap().message,
        "DROP CONTEXT card_ctx"
    );
    assert_eq!(
        c.sql("DROP CONTEXT near_ctx").unwrap().message,
        "DROP CONTEXT near_ctx"
    );
    let skipped = c.sql("DROP CONTEXT IF EXISTS card_ctx").unwrap();
    assert!(
        skipped.message.contains("card_ctx") && skipped.message.contains("skipped"),
        "{skipped:?}"
    );
    expect_err(
        c.sql("DROP CONTEXT card_ctx"),
        ErrorCode::UnknownContext,
        &["card_ctx"],
        "DROP CONTEXT of a dropped context",
    );
    assert!(c.sql("SHOW CONTEXTS").unwrap().rows.is_empty());

    for stmt in [
        "DROP TABLE cards",
        "DROP MATERIALIZED VIEW acct_life",
        "DROP TABLE pts",
    ] {
        c.sql(stmt).unwrap_or_else(|e| panic!("{stmt}: {e}"));
    }
    expect_err(
        c.get("cards", vec![text("x")]),
        ErrorCode::UnknownTable,
        &["cards"],
        "cards dropped",
    );
    expect_err(
        c.sql("DROP INDEX pts_emb"),
        ErrorCode::UnknownIndex,
        &["pts_emb"],
        "the index went with its table",
    );
}

// -------------------------------------------------------------------------------------------
// 6. restart and kill -9

/// What must be the same before and after a restart: SHOW CONTEXTS, DESCRIBE of each, and the
/// items of each call (the as-of times differ).
fn snapshot(c: &mut Conn, k: &Cards) -> Vec<String> {
    let mut out = Vec::new();
    let shown = c.sql("SHOW CONTEXTS").unwrap();
    out.push(format!("{:?}", shown.rows));
    for row in &shown.rows {
        let Value::Text(name) = &row[0] else {
            panic!("{row:?}")
        };
        let d = c.sql(&format!("DESCRIBE {name}")).unwrap();
        out.push(format!("{} {:?} {:?}", d.message, d.columns, d.rows));
    }
    for card in [&k.card, &k.card_null, &k.card_orphan] {
        out.push(format!("{:?}", call_card(c, card).items));
    }
    if shown.rows.len() > 1 {
        out.push(format!(
            "{:?}",
            c.context("acct_ctx", &[("acct", text(&k.account))])
                .unwrap()
                .items
        ));
    }
    out
}

#[test]
fn named_contexts_survive_restart_and_kill9() {
    let mut server = TarnServer::start_ok(ServerOpts::shards(SHARDS).durability("sync"));
    let mut c = server.client();
    let k = setup_cards(&mut c);
    let before = snapshot(&mut c, &k);
    assert_card_answer(&call_card(&mut c, &k.card), &k);
    let d = c.sql("DESCRIBE card_ctx").unwrap();
    assert_eq!(d.message, CARD_CTX);
    let items: Vec<&Value> = d.rows.iter().map(|r| &r[0]).collect();
    assert_eq!(items, [&text("c"), &text("a"), &text("f")]);
    drop(c);

    server.restart_ok();
    let mut c = server.client();
    assert_eq!(snapshot(&mut c, &k), before, "after a graceful restart");
    assert_card_answer(&call_card(&mut c, &k.card), &k);

    // A context created just before a kill -9 (sync: acknowledged means durable).
    c.sql(
        "CREATE CONTEXT acct_ctx (acct TEXT) AS SELECT row(accounts, acct) AS a, \
         features(acct_life, acct, columns => (txns)) AS f",
    )
    .unwrap();
    let before = snapshot(&mut c, &k);
    assert_eq!(before.len(), 7, "{before:?}");
    drop(c);
    server.kill9();
    server.restart_ok();
    let mut c = server.client();
    assert_eq!(snapshot(&mut c, &k), before, "after kill -9");
    let r = c
        .context("acct_ctx", &[("acct", text(&k.account))])
        .unwrap();
    assert_eq!(
        groups(&r, "f"),
        vec![(text(&k.account), vec![vec![Value::Int(3)]])]
    );
}

// -------------------------------------------------------------------------------------------
// 7. one state per shard, read-your-writes, under concurrent writes

const WRITER_MAX_N: i64 = 20_000;
const INGEST_MAX: i64 = 20_000;
const CALLS: usize = 400;

#[test]
fn consistent_under_concurrent_writes() {
    let server = TarnServer::start_ok(ServerOpts::shards(SHARDS));
    let mut c = server.client();
    c.sql(
        "CREATE TABLE t (k TEXT PRIMARY KEY, v BIGINT, next TEXT); \
         CREATE STREAM ev (ts TIMESTAMP, ekey TEXT) \
           WITH (event_time = 'ts', partition = 'ekey', max_future = '30 seconds'); \
         CREATE MATERIALIZED VIEW ev_count WITH (window = 'lifetime') AS \
           SELECT ekey, count(*) AS n FROM ev GROUP BY ekey",
    )
    .unwrap();
    let k1 = key_on("k1-", 1);
    let k2 = key_on("k2-", 1);
    let e1 = key_on("e1-", 0);
    let (pk1, pk2) = (k1.clone(), k2.clone());
    let pair = move |n: i64| {
        let (k1, k2) = (&pk1, &pk2);
        vec![
            vec![text(k1), Value::Int(n), text(k2)],
            vec![text(k2), Value::Int(n), Value::Null],
        ]
    };
    c.upsert("t", &["k", "v", "next"], pair(0)).unwrap();
    c.sql(&format!(
        "CREATE CONTEXT pair_ctx AS SELECT row(t, '{k1}') AS a, row(t, a.next) AS b, \
         features(ev_count, '{e1}') AS f"
    ))
    .unwrap();
    let d = c.sql("DESCRIBE pair_ctx").unwrap();
    let phases: Vec<Value> = d.rows.iter().map(|r| r[6].clone()).collect();
    assert_eq!(
        phases,
        [Value::Int(0), Value::Int(1), Value::Int(0)],
        "b in a later phase"
    );

    let acked_n = Arc::new(AtomicI64::new(0));
    let acked_events = Arc::new(AtomicI64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (mut w, acked, stop) = (server.client(), acked_n.clone(), stop.clone());
        std::thread::spawn(move || {
            for n in 1..=WRITER_MAX_N {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                w.upsert("t", &["k", "v", "next"], pair(n)).unwrap();
                acked.store(n, Ordering::SeqCst);
            }
        })
    };
    let ingester = {
        let (mut w, acked, stop) = (server.client(), acked_events.clone(), stop.clone());
        let e1 = e1.clone();
        std::thread::spawn(move || {
            for n in 1..=INGEST_MAX {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                ingest(
                    &mut w,
                    "ev",
                    &["ts", "ekey"],
                    vec![vec![Value::Timestamp(now_us()), text(&e1)]],
                )
                .unwrap();
                acked.store(n, Ordering::SeqCst);
            }
        })
    };

    // Both writers are under way before the first call.
    wait_until(
        std::time::Duration::from_secs(30),
        "the first writes",
        || acked_n.load(Ordering::SeqCst) >= 1 && acked_events.load(Ordering::SeqCst) >= 1,
    );
    let mut last_v = 0;
    let mut distinct_v = std::collections::BTreeSet::new();
    for call in 0..CALLS {
        let n_before = acked_n.load(Ordering::SeqCst);
        let e_before = acked_events.load(Ordering::SeqCst);
        let r = c.context("pair_ctx", &[]).unwrap();
        let Value::Int(a) = ctx_value(&r, "a", 0, 0, "v") else {
            panic!("{r:?}")
        };
        let Value::Int(b) = ctx_value(&r, "b", 0, 0, "v") else {
            panic!("{r:?}")
        };
        assert_eq!(
            a, b,
            "call {call}: a and b from one state of their shard: {r:?}"
        );
        assert!(
            a >= n_before,
            "call {call}: v {a} < acknowledged {n_before}"
        );
        assert!(a >= last_v, "call {call}: v went back from {last_v} to {a}");
        last_v = a;
        distinct_v.insert(a);
        let Value::Int(f) = ctx_value(&r, "f", 0, 0, "n") else {
            panic!("{r:?}")
        };
        assert!(
            f >= e_before,
            "call {call}: count {f} < acknowledged {e_before}"
        );
        let shards: Vec<u32> = r.shards.iter().map(|s| s.shard).collect();
        assert_eq!(shards, [0, 1], "{r:?}");
    }
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    ingester.join().unwrap();
    // The calls did overlap the writes (else the test proved nothing).
    assert!(
        distinct_v.len() > 1,
        "the writer never advanced during the calls"
    );
    let r = c.context("pair_ctx", &[]).unwrap();
    let n = acked_n.load(Ordering::SeqCst);
    assert_eq!(ctx_value(&r, "a", 0, 0, "v"), Value::Int(n));
    assert_eq!(ctx_value(&r, "b", 0, 0, "v"), Value::Int(n));
    assert_eq!(
        ctx_value(&r, "f", 0, 0, "n"),
        Value::Int(acked_events.load(Ordering::SeqCst))
    );
}

// -------------------------------------------------------------------------------------------
// 8. the CLI

#[test]
fn cli_context() {
    let server = TarnServer::start_ok(ServerOpts::shards(SHARDS));
    let mut c = server.client();
    let k = setup_cards(&mut c);
    let addr = server.addr_string();

    let card_arg = format!("card={}", k.card);
    let o = run_tarn(&addr, &["context", "card_ctx", &card_arg]);
    assert!(o.status.success(), "{}{}", o.stdout, o.stderr);
    let out = &o.stdout;
    assert!(out.starts_with("as of: shard 0 "), "{out}");
    assert!(out.contains(", shard 1 "), "{out}");
    for want in [
        "\nc (1 row(s))\n",
        "\na (1 row(s))\n",
        "\nf (1 row(s))\n",
        "Ann Corp",
        "34",
        k.account.as_str(),
        k.card.as_str(),
    ] {
        assert!(out.contains(want), "missing {want:?} in\n{out}");
    }

    let o = run_tarn(&addr, &["context", "card_ctx", &card_arg, "--json"]);
    assert!(o.status.success(), "{}", o.stderr);
    let j: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    let shards: Vec<u64> = j["shards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            assert!(s["as_of_us"].as_i64().unwrap() > 0, "{s}");
            s["shard"].as_u64().unwrap()
        })
        .collect();
    assert_eq!(shards, [0, 1]);
    let items = &j["items"];
    assert_eq!(items["c"][0]["key"], serde_json::json!(k.card));
    assert_eq!(items["c"][0]["rows"][0]["holder"], "Ann");
    assert_eq!(items["a"][0]["rows"][0]["tier"], 3);
    assert_eq!(items["f"][0]["rows"][0]["txns"], 3);
    assert_eq!(items["f"][0]["rows"][0]["spend"], 34.0);

    // A missing card: the dependent items print "(none)".
    let o = run_tarn(&addr, &["context", "card_ctx", "card=zzz"]);
    assert!(o.status.success(), "{}", o.stderr);
    assert!(
        o.stdout.contains("\na (0 row(s))\n(none)\n"),
        "{}",
        o.stdout
    );

    let o = run_tarn(
        &addr,
        &[
            "context",
            "--items",
            &format!("row(accounts, '{}') AS acc", k.account),
            "--json",
        ],
    );
    assert!(o.status.success(), "{}", o.stderr);
    let j: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(j["items"]["acc"][0]["rows"][0]["owner"], "Ann Corp");
    assert_eq!(j["items"].as_object().unwrap().len(), 1);

    for (args, names) in [
        (
            vec!["context", "card_ctx", "bogus=1"],
            vec!["bogus", "card"],
        ),
        (vec!["context", "card_ctx", "card"], vec!["card"]),
        (vec!["context", "no_ctx"], vec!["no_ctx"]),
        (
            vec!["context", "--items", "row(nope_t, 'x') AS a"],
            vec!["nope_t"],
        ),
    ] {
        let o = run_tarn(&addr, &args);
        assert_eq!(
            o.status.code(),
            Some(1),
            "{args:?}: {}{}",
            o.stdout,
            o.stderr
        );
        assert!(o.stderr.starts_with("error: "), "{args:?}: {}", o.stderr);
        for n in names {
            assert!(
                o.stderr.contains(n),
                "{args:?}: {} does not name {n}",
                o.stderr
            );
        }
    }
    c.ping().unwrap();
}

/// `recent` items: a card's newest events (by event time, late events in their place), and a
/// list item over the merchants they name; recent items keep working after kill -9.
#[test]
fn recent_events_and_the_entities_they_name() {
    let mut srv = TarnServer::start_ok(ServerOpts::shards(SHARDS));
    let mut c = srv.client();
    c.sql(
        "CREATE STREAM tx (ts TIMESTAMP, card TEXT, merchant TEXT, amount DOUBLE) \
         WITH (event_time = 'ts', partition = 'card', recent = 4); \
         CREATE TABLE merchants (id TEXT PRIMARY KEY, risk DOUBLE); \
         CREATE CONTEXT last_tx (card TEXT) AS SELECT \
           recent(tx, card, 3, columns => (ts, merchant, amount)) AS r, \
           row(merchants, r.merchant, columns => (risk)) AS m",
    )
    .unwrap();
    c.upsert(
        "merchants",
        &["id", "risk"],
        (0..4)
            .map(|m| vec![text(&format!("m{m}")), Value::Double(m as f64 / 10.0)])
            .collect(),
    )
    .unwrap();
    let t0 = now_us() - 60_000_000;
    // Six events of one card, the fourth one late (dated before all others); another card's.
    let times = [1, 2, 3, -5, 5, 6];
    let merchants = ["m0", "m1", "m2", "m3", "m1", "m2"];
    let rows = times
        .iter()
        .zip(merchants)
        .enumerate()
        .map(|(i, (&dt, m))| {
            vec![
                Value::Timestamp(t0 + dt),
                text("c1"),
                text(m),
                Value::Double(i as f64),
            ]
        })
        .chain(std::iter::once(vec![
            Value::Timestamp(t0 + 9),
            text("c2"),
            text("m0"),
            Value::Double(9.0),
        ]))
        .collect();
    ingest(&mut c, "tx", &["ts", "card", "merchant", "amount"], rows).unwrap();
    let check = |c: &mut Conn| {
        let r = c.context("last_tx", &[("card", text("c1"))]).unwrap();
        let g = groups(&r, "r");
        assert_eq!(g.len(), 1);
        let want: Vec<Vec<Value>> = [(6, "m2", 5.0), (5, "m1", 4.0), (3, "m2", 2.0)]
            .iter()
            .map(|&(dt, m, a)| vec![Value::Timestamp(t0 + dt), text(m), Value::Double(a)])
            .collect();
        assert_eq!(g[0].1, want, "the newest three by event time, newest first");
        // The merchants those events name, distinct, in order of first appearance.
        let m = groups(&r, "m");
        let keys: Vec<Value> = m.iter().map(|(k, _)| k.clone()).collect();
        assert_eq!(keys, vec![text("m2"), text("m1")]);
        assert_eq!(m[0].1, vec![vec![Value::Double(0.2)]]);
        assert_eq!(m[1].1, vec![vec![Value::Double(0.1)]]);
        // A card with no events: no rows, no merchants.
        let r = c.context("last_tx", &[("card", text("c9"))]).unwrap();
        assert_eq!(groups(&r, "r")[0].1.len(), 0);
        assert!(groups(&r, "m").is_empty());
    };
    check(&mut c);
    drop(c);
    srv.kill9();
    srv.restart_ok();
    let mut c = srv.client();
    check(&mut c);
    // A stream without recent events is refused when the context is created.
    c.sql("CREATE STREAM plain (ts TIMESTAMP, card TEXT) WITH (event_time = 'ts', partition = 'card')")
        .unwrap();
    expect_err(
        c.context_items("recent(plain, 'c1', 2) AS r"),
        ErrorCode::Unsupported,
        &["stream plain keeps no recent events"],
        "recent of a plain stream",
    );
}

/// The README's context walkthrough, run as written against the objects the README's earlier
/// sections create (their `tarn sql` / `tarn upsert` lines, taken from the README itself).
#[test]
fn the_readme_context_walkthrough_runs_as_written() {
    let server = TarnServer::start_ok(ServerOpts::shards(SHARDS));
    let a = server.addr_string();
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let run = |line: &str| {
        let args = shell_words(line.strip_prefix("tarn ").expect("a tarn command"));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = run_tarn(&a, &args);
        assert!(
            out.status.success(),
            "{line}: {}\n{}",
            out.stdout,
            out.stderr
        );
        out.stdout
    };
    let setup = [
        "tarn sql \"CREATE TABLE cards",
        "tarn upsert cards '",
        "tarn sql \"CREATE STREAM tx",
        "tarn sql \"CREATE MATERIALIZED VIEW card_10m",
        "tarn sql \"CREATE TABLE products",
        "tarn sql \"INSERT INTO products",
        "tarn sql \"CREATE INDEX products_emb",
    ];
    for prefix in setup {
        let line = readme
            .lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("README line {prefix}"));
        run(line);
    }
    let mut c = server.client();
    // The README's cards.jsonl row for c-2.
    c.upsert(
        "cards",
        &["card_id", "account_id", "flagged", "risk"],
        vec![vec![
            text("c-2"),
            text("a-9"),
            Value::Bool(true),
            Value::Double(0.93),
        ]],
    )
    .unwrap();
    let t = now_us() - 1_000;
    let rows = [(0, 12.5, "10.0.0.1"), (1, 80.0, "10.0.0.7")]
        .iter()
        .map(|&(dt, amount, ip)| {
            vec![
                Value::Timestamp(t + dt),
                text("c-1"),
                Value::Double(amount),
                text(ip),
            ]
        })
        .collect();
    ingest(&mut c, "tx", &["ts", "card_id", "amount", "ip"], rows).unwrap();
    let outputs: Vec<String> =
        readme_block(&readme, "Context requests: everything one decision reads")
            .into_iter()
            .map(run)
            .collect();
    assert_eq!(outputs.len(), 5);
    let table = &outputs[1];
    for want in [
        "card (1 row(s))",
        "c-1",
        "a-9",
        "f (1 row(s))",
        "92.5",
        "last_tx (2 row(s))",
        "10.0.0.7",
        "offers (2 row(s))",
    ] {
        assert!(table.contains(want), "{want:?} missing from:\n{table}");
    }
    let json: serde_json::Value = serde_json::from_str(outputs[2].trim()).unwrap();
    assert_eq!(json["items"]["card"][0]["rows"][0]["risk"], 0.93);
    assert_eq!(json["items"]["f"][0]["rows"][0]["txns"], 0);
    assert_eq!(
        json["items"]["last_tx"][0]["rows"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    let ids: Vec<i64> = json["items"]["offers"][0]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [1, 2], "cosine nearest to [0.15, 0.85, 0.05]");
    assert!(
        outputs[3].contains("c-2") && outputs[3].contains("a-9"),
        "{}",
        outputs[3]
    );
    assert!(
        outputs[4].contains("card_check") && outputs[4].contains("card_id TEXT"),
        "{}",
        outputs[4]
    );
}
