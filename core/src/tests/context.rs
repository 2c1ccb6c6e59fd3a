//! Context planning and binding: what CREATE CONTEXT checks, the phases of references, the
//! fan-out of list items and its limit, parameter binding, and the catalog's dependency rules.

use tarn_types::{ColumnType, Value};

use super::catalog_with;
use crate::catalog::Catalog;
use crate::context::{
    bind_params, item_keys, ItemResult, Operand, ResultGroup, Source, MAX_CONTEXT_FANOUT_KEYS,
};
use crate::sql::{parse, Statement};
use crate::{CoreError, ErrorKind};

const SCHEMA: &[&str] = &[
    "CREATE TABLE cards (card_id TEXT PRIMARY KEY, account_id TEXT, device_id BIGINT)",
    "CREATE TABLE accounts (account_id TEXT PRIMARY KEY, owner TEXT)",
    "CREATE TABLE devices (device_id BIGINT PRIMARY KEY, emb VECTOR(2), flagged BOOLEAN)",
    "CREATE INDEX dev_emb ON devices USING hnsw (emb)",
    "CREATE STREAM tx (ts TIMESTAMP, card_id TEXT, account_id TEXT, amount DOUBLE) WITH (event_time = 'ts', partition = 'card_id', recent = 5)",
    "CREATE STREAM plain (ts TIMESTAMP, k TEXT) WITH (event_time = 'ts')",
    "CREATE MATERIALIZED VIEW acct_f WITH (window = '1 hour', bucket = '1 minute') AS SELECT account_id, count(*) AS n, sum(amount) AS spend FROM tx GROUP BY account_id",
];

fn schema() -> Catalog {
    catalog_with(SCHEMA)
}

fn create(cat: &Catalog, sql: &str) -> Result<Catalog, CoreError> {
    let stmt = parse(sql)?.remove(0);
    cat.apply_ddl(&stmt).map(|(c, _)| c)
}

fn err(cat: &Catalog, sql: &str) -> CoreError {
    create(cat, sql).expect_err(sql)
}

const FRAUD: &str = "CREATE CONTEXT fraud (card_id TEXT, amount DOUBLE) AS SELECT \
    row(cards, card_id) AS card, \
    row(accounts, card.account_id, columns => (owner)) AS account, \
    features(acct_f, card.account_id) AS acct, \
    knn(dev_emb, like => card.device_id, k => 3, filter => 'flagged', columns => (device_id)) AS similar, \
    row(devices, similar.device_id, columns => (device_id, flagged)) AS similar_rows";

#[test]
fn a_context_is_planned_into_phases_with_typed_resolved_items() {
    let cat = create(&schema(), FRAUD).unwrap();
    let def = cat.context("fraud").unwrap();
    assert_eq!(def.params.len(), 2);
    let names: Vec<&str> = def.items.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(
        names,
        ["card", "account", "acct", "similar", "similar_rows"]
    );
    let phase: Vec<(usize, usize, bool)> = def
        .items
        .iter()
        .map(|i| (i.ready, i.done, i.list))
        .collect();
    // card at 0; account and acct once card is read; the device's vector at 1, its search at
    // 2; the similar rows once the search is done, one group per neighbour.
    assert_eq!(
        phase,
        [
            (0, 0, false),
            (1, 1, false),
            (1, 1, false),
            (1, 2, false),
            (3, 3, true)
        ]
    );
    assert_eq!(def.phases, 4);
    assert!(def.needs_hold());
    assert_eq!(def.items[0].key, Operand::Param(0));
    assert_eq!(def.items[1].key, Operand::Ref { item: 0, column: 1 });
    let cols: Vec<&str> = def.items[3]
        .columns
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(cols, ["distance", "device_id"]);
    let Source::Knn(k) = &def.items[3].source else {
        panic!("knn")
    };
    assert!(k.like && k.k == 3 && k.filter.is_some());
    // Every object read is recorded: cards, accounts, acct_f and its stream, the index and its table.
    let mut want: Vec<u32> = ["cards", "accounts", "acct_f", "tx", "dev_emb", "devices"]
        .iter()
        .map(|n| cat.object(n).unwrap().id())
        .collect();
    want.sort_unstable();
    assert_eq!(def.uses, want);
    // DESCRIBE / SHOW CONTEXTS.
    let l = crate::listing::show_contexts(&cat);
    assert_eq!(
        l.rows,
        vec![vec![
            Value::Text("fraud".into()),
            Value::Text("card_id TEXT, amount DOUBLE".into()),
            Value::Int(5),
            Value::Int(4),
        ]]
    );
    let d = crate::listing::describe(&cat, "fraud", &|_| (0, 0)).unwrap();
    assert_eq!(d.rows.len(), 5);
    assert_eq!(d.rows[4][3], Value::Text("similar.device_id".into()));
}

#[test]
fn create_context_errors_name_what_is_wrong() {
    let cat = schema();
    let cases: &[(&str, ErrorKind, &str)] = &[
        ("CREATE CONTEXT c AS row(nope, 'x') AS a", ErrorKind::UnknownTable, "nope"),
        ("CREATE CONTEXT c AS features(cards, 'x') AS a", ErrorKind::UnknownView, "cards"),
        ("CREATE CONTEXT c AS knn(cards, like => 'x', k => 1) AS a", ErrorKind::UnknownIndex, "cards"),
        ("CREATE CONTEXT c AS recent(cards, 'x', 5) AS a", ErrorKind::UnknownStream, "cards"),
        ("CREATE CONTEXT c AS row(cards, 'x', columns => (nope)) AS a", ErrorKind::UnknownColumn, "nope"),
        ("CREATE CONTEXT c AS row(cards, 'x') AS a, row(accounts, b.account_id) AS c", ErrorKind::InvalidArgument, "no item b"),
        ("CREATE CONTEXT c AS row(cards, 'x') AS a, row(accounts, a.nope) AS b", ErrorKind::InvalidArgument, "item a has no column nope"),
        ("CREATE CONTEXT c AS row(cards, b.account_id) AS a, row(cards, a.account_id) AS b", ErrorKind::InvalidArgument, "cycle: a → b → a"),
        ("CREATE CONTEXT c AS row(cards, a.card_id) AS a", ErrorKind::InvalidArgument, "cycle: a → a"),
        ("CREATE CONTEXT c (id BIGINT) AS row(cards, id) AS a", ErrorKind::TypeMismatch, "a.key"),
        ("CREATE CONTEXT c AS row(cards, 5) AS a", ErrorKind::TypeMismatch, "a.key"),
        ("CREATE CONTEXT c AS row(devices, 'x') AS a", ErrorKind::TypeMismatch, "a.key"),
        ("CREATE CONTEXT c AS row(cards, 'x') AS a, row(devices, a.account_id) AS b", ErrorKind::TypeMismatch, "b.key"),
        ("CREATE CONTEXT c AS row(cards, card_id) AS a", ErrorKind::InvalidArgument, "card_id is not a parameter"),
        ("CREATE CONTEXT c AS row(cards, 'x') AS a, row(cards, 'y') AS a", ErrorKind::InvalidArgument, "two context items are named a"),
        ("CREATE CONTEXT c AS knn(dev_emb, like => 1, k => 0) AS a", ErrorKind::InvalidArgument, "k must be in 1..=1000"),
        ("CREATE CONTEXT c AS knn(dev_emb, like => 1, k => 2, ef => 5000) AS a", ErrorKind::InvalidArgument, "ef must be"),
        ("CREATE CONTEXT c AS knn(dev_emb, like => 1, k => 2, filter => 'nope = 1') AS a", ErrorKind::UnknownColumn, "nope"),
        ("CREATE CONTEXT c AS knn(dev_emb, vector => '[1, 2, 3]', k => 2) AS a", ErrorKind::BadVector, "a.key"),
        ("CREATE CONTEXT c AS knn(dev_emb, k => 2) AS a", ErrorKind::InvalidArgument, "needs like => key or vector => v"),
        ("CREATE CONTEXT c AS row(cards, 'x') AS a, features(acct_f, 'x', as_of => k.ts) AS b, recent(tx, 'c', 3) AS k", ErrorKind::InvalidArgument, "as_of refers to item k, which has several rows"),
        ("CREATE CONTEXT c AS recent(plain, 'x', 5) AS a", ErrorKind::Unsupported, "stream plain keeps no recent events"),
        ("CREATE CONTEXT c AS recent(tx, 'x', 0) AS a", ErrorKind::InvalidArgument, "n must be in 1..=256, got 0"),
        ("CREATE CONTEXT c AS recent(tx, 'x', 257) AS a", ErrorKind::InvalidArgument, "got 257"),
        ("CREATE CONTEXT c AS recent(tx, 5, 3) AS a", ErrorKind::TypeMismatch, "a.key"),
        ("CREATE CONTEXT c AS row(cards) AS a", ErrorKind::InvalidArgument, "needs key"),
        ("CREATE CONTEXT c AS row(cards, 'x', 'y') AS a", ErrorKind::Unsupported, "no argument at position 3"),
        ("CREATE CONTEXT c AS row(cards, 'x', bogus => 1) AS a", ErrorKind::Unsupported, "no argument bogus"),
        ("CREATE CONTEXT c AS lookup(cards, 'x') AS a", ErrorKind::Unsupported, "unknown kind lookup"),
        ("CREATE CONTEXT c AS row(cards, 'x')", ErrorKind::Unsupported, "without a name"),
        ("CREATE CONTEXT c (a TEXT, a TEXT) AS row(cards, a) AS x", ErrorKind::DuplicateColumn, "\"a\""),
        ("CREATE CONTEXT cards AS row(cards, 'x') AS a", ErrorKind::TableExists, "cards"),
    ];
    for (sql, kind, needle) in cases {
        let e = err(&cat, sql);
        assert_eq!(e.kind(), *kind, "{sql}: {e}");
        assert!(
            e.to_string().contains(needle),
            "{sql}: {e} lacks {needle:?}"
        );
    }
}

#[test]
fn references_deeper_than_the_phase_limit_are_refused() {
    let mut items = vec!["row(cards, 'c') AS i0".to_string()];
    for i in 1..8 {
        items.push(format!("row(cards, i{}.card_id) AS i{i}", i - 1));
    }
    let ok = format!("CREATE CONTEXT c AS {}", items.join(", "));
    assert_eq!(
        create(&schema(), &ok).unwrap().context("c").unwrap().phases,
        8
    );
    items.push("row(cards, i7.card_id) AS i8".into());
    let e = err(
        &schema(),
        &format!("CREATE CONTEXT c AS {}", items.join(", ")),
    );
    assert_eq!(e.kind(), ErrorKind::LimitExceeded, "{e}");
    assert!(e.to_string().contains("9 phases deep"), "{e}");
}

fn rows_of(column: usize, values: Vec<Value>) -> ItemResult {
    ItemResult {
        groups: vec![ResultGroup {
            key: Value::Int(0),
            rows: values
                .into_iter()
                .map(|v| {
                    let mut row = vec![Value::Null; 2];
                    row[column] = v;
                    row
                })
                .collect(),
        }],
    }
}

#[test]
fn list_items_fan_out_to_distinct_values_up_to_the_limit() {
    let cat = create(&schema(), FRAUD).unwrap();
    let def = cat.context("fraud").unwrap();
    let params = bind_params(
        def,
        &[
            ("card_id".into(), Value::Text("c".into())),
            ("amount".into(), Value::Int(3)),
        ],
    )
    .unwrap();
    assert_eq!(
        params[1],
        Value::Double(3.0),
        "an integer for a DOUBLE parameter"
    );
    let mut results = vec![None; def.items.len()];
    // similar (item 3): distance, device_id; duplicates and NULLs are skipped, order kept.
    let ids = |n: i64| (0..n).map(Value::Int).collect::<Vec<_>>();
    let mut some = ids(3);
    some.extend([Value::Int(1), Value::Null, Value::Int(0)]);
    results[3] = Some(rows_of(1, some));
    assert_eq!(item_keys(def, 4, &params, &results).unwrap(), ids(3));
    let at_limit = MAX_CONTEXT_FANOUT_KEYS as i64;
    results[3] = Some(rows_of(1, ids(at_limit)));
    assert_eq!(
        item_keys(def, 4, &params, &results).unwrap().len(),
        MAX_CONTEXT_FANOUT_KEYS
    );
    results[3] = Some(rows_of(1, ids(at_limit + 1)));
    let e = item_keys(def, 4, &params, &results).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::LimitExceeded);
    assert!(
        e.to_string().contains(
            "context item similar_rows fans out to more than 256 keys of similar.device_id"
        ),
        "{e}"
    );
    // A single item's reference to a missing row (all NULL) gives no key.
    results[0] = Some(rows_of(1, vec![Value::Null]));
    assert!(item_keys(def, 1, &params, &results).unwrap().is_empty());
}

#[test]
fn parameters_are_bound_by_name_and_type() {
    let cat = create(&schema(), FRAUD).unwrap();
    let def = cat.context("fraud").unwrap();
    let p = |pairs: &[(&str, Value)]| {
        let v: Vec<(String, Value)> = pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.clone()))
            .collect();
        bind_params(def, &v)
    };
    let card = ("card_id", Value::Text("c".into()));
    let amount = ("amount", Value::Double(1.5));
    assert!(p(&[card.clone(), amount.clone()]).is_ok());
    assert!(p(&[amount.clone(), card.clone()]).is_ok(), "any order");
    let e = p(&[card.clone()]).unwrap_err();
    assert_eq!(
        (e.kind(), e.column()),
        (ErrorKind::MissingValue, Some("amount"))
    );
    let e = p(&[("card_id", Value::Int(5)), amount.clone()]).unwrap_err();
    assert_eq!(
        (e.kind(), e.column()),
        (ErrorKind::TypeMismatch, Some("card_id"))
    );
    let e = p(&[card.clone(), amount.clone(), ("nope", Value::Int(1))]).unwrap_err();
    assert!(
        e.to_string()
            .contains("no parameter nope (its parameters: card_id, amount)"),
        "{e}"
    );
    let e = p(&[card.clone(), card.clone(), amount.clone()]).unwrap_err();
    assert!(e.to_string().contains("given twice"), "{e}");
    // NULL is a value: its items get no key.
    let bound = p(&[("card_id", Value::Null), amount]).unwrap();
    assert!(item_keys(def, 0, &bound, &vec![None; 5])
        .unwrap()
        .is_empty());
    let _ = ColumnType::Text;
}

#[test]
fn objects_a_context_reads_cannot_be_dropped_and_contexts_survive_the_catalog_file() {
    let cat = create(&schema(), FRAUD).unwrap();
    for (sql, kind) in [
        ("DROP TABLE accounts", "table accounts"),
        ("DROP MATERIALIZED VIEW acct_f", "feature view acct_f"),
        ("DROP INDEX dev_emb", "index dev_emb"),
        ("DROP TABLE devices", "table devices"),
    ] {
        let e = err(&cat, sql);
        assert_eq!(e.kind(), ErrorKind::Unsupported, "{sql}");
        assert!(
            e.to_string()
                .contains(&format!("dropping {kind} while contexts use it (fraud)")),
            "{sql}: {e}"
        );
    }
    // The catalog file holds the context by its text and plans it again.
    let back = Catalog::from_bytes(&cat.to_bytes()).unwrap();
    assert_eq!(back, cat);
    // DROP CONTEXT, then the objects go.
    let dropped = create(&cat, "DROP CONTEXT fraud").unwrap();
    assert!(dropped.context("fraud").is_none());
    let e = err(&dropped, "DROP CONTEXT fraud");
    assert_eq!(e.kind(), ErrorKind::UnknownContext);
    assert!(create(&dropped, "DROP CONTEXT IF EXISTS fraud").is_ok());
    assert!(create(&dropped, "DROP TABLE devices").is_ok());
    // A catalog file whose context no longer plans is corrupt.
    let text = String::from_utf8(cat.to_bytes())
        .unwrap()
        .replace("row(accounts,", "row(nope,");
    let e = Catalog::from_bytes(text.as_bytes()).unwrap_err();
    assert!(
        e.is_corrupt() && e.to_string().contains("catalog context \"fraud\""),
        "{e}"
    );
}

#[test]
fn ad_hoc_items_parse_without_a_header() {
    let items = crate::sql::context::parse_items(
        "row(cards, 'c-1') AS card, features(acct_f, card.account_id) AS f",
    )
    .unwrap();
    assert_eq!(items.len(), 2);
    let items = crate::sql::context::parse_items("SELECT row(cards, 'c-1') AS card").unwrap();
    assert_eq!(items[0].name, "card");
    assert!(crate::sql::context::parse_items("row(cards, 'c-1') AS card junk").is_err());
    let stmt = parse("CREATE CONTEXT IF NOT EXISTS c AS row(cards, 'x') AS a")
        .unwrap()
        .remove(0);
    assert!(matches!(
        stmt,
        Statement::CreateContext {
            if_not_exists: true,
            ..
        }
    ));
}
