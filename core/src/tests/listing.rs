//! The result sets of SHOW and DESCRIBE: schemas (names and types of the columns), rows and
//! messages, pinned.

use std::collections::BTreeMap;

use tarn_types::{ColumnType, Value};

use crate::listing::{self, Listing, StreamTotals, ViewTotals};

use super::catalog_with;

fn schema(l: &Listing) -> Vec<(&str, ColumnType)> {
    l.columns.iter().map(|c| (c.name.as_str(), c.ty)).collect()
}

fn text(s: &str) -> Value {
    Value::Text(s.into())
}

fn catalog() -> crate::catalog::Catalog {
    catalog_with(&[
        "CREATE TABLE cards (card_id TEXT PRIMARY KEY, risk DOUBLE)",
        "CREATE TABLE accounts (n BIGINT, id BIGINT PRIMARY KEY, seen TIMESTAMP)",
        "CREATE STREAM tx (ts TIMESTAMP, card TEXT, amount DOUBLE) WITH (event_time = 'ts', \
         retention = '2 days', max_future = '30 seconds')",
        "CREATE STREAM clicks (k BIGINT, t TIMESTAMP) WITH (event_time = 't', recent = 5)",
        "CREATE MATERIALIZED VIEW w WITH (window = '10 minutes', bucket = '10 seconds') AS \
         SELECT card AS c, count(*) AS n, sum(amount) FROM tx GROUP BY card",
        "CREATE MATERIALIZED VIEW life WITH (window = 'lifetime') AS \
         SELECT k, max(t) FROM clicks GROUP BY k",
    ])
}

#[test]
fn show_tables() {
    let l = listing::show_tables(&catalog());
    use ColumnType::*;
    assert_eq!(
        schema(&l),
        [("table", Text), ("key", Text), ("columns", BigInt)]
    );
    assert_eq!(
        l.rows,
        vec![
            vec![text("accounts"), text("id"), Value::Int(3)],
            vec![text("cards"), text("card_id"), Value::Int(2)],
        ]
    );
    assert_eq!(l.message, "2 table(s)");
    assert_eq!(
        listing::show_tables(&crate::catalog::Catalog::new()).message,
        "0 table(s)"
    );
}

#[test]
fn show_streams() {
    let cat = catalog();
    let tx = cat.stream("tx").unwrap().id;
    let totals = BTreeMap::from([(
        tx,
        StreamTotals {
            events: 7,
            newest_event_time_us: Some(1_000),
        },
    )]);
    let l = listing::show_streams(&cat, &totals);
    use ColumnType::*;
    assert_eq!(
        schema(&l),
        [
            ("stream", Text),
            ("event_time", Text),
            ("partition", Text),
            ("retention", Text),
            ("max_future", Text),
            ("events", BigInt),
            ("newest_event_time", Timestamp),
            ("recent", BigInt),
        ]
    );
    assert_eq!(
        l.rows,
        vec![
            vec![
                text("clicks"),
                text("t"),
                text("k"),
                text("1 week"),
                text("1 minute"),
                Value::Int(0),
                Value::Null,
                Value::Int(5),
            ],
            vec![
                text("tx"),
                text("ts"),
                text("card"),
                text("2 days"),
                text("30 seconds"),
                Value::Int(7),
                Value::Timestamp(1_000),
                Value::Int(0),
            ],
        ]
    );
    assert_eq!(l.message, "2 stream(s)");
}

#[test]
fn show_views() {
    let cat = catalog();
    let w = cat.view("w").unwrap().id;
    let totals = BTreeMap::from([(
        w,
        ViewTotals {
            keys: 2,
            window_bytes: 300,
            events: 9,
            late_events: 1,
        },
    )]);
    let l = listing::show_views(&cat, &totals);
    use ColumnType::*;
    assert_eq!(
        schema(&l),
        [
            ("view", Text),
            ("stream", Text),
            ("key", Text),
            ("window", Text),
            ("keys", BigInt),
            ("window_bytes", BigInt),
            ("events", BigInt),
            ("late_events", BigInt),
        ]
    );
    let ints = |v: [i64; 4]| v.map(Value::Int).to_vec();
    let row = |a: &str, b: &str, c: &str, d: &str, n: [i64; 4]| {
        let mut r = vec![text(a), text(b), text(c), text(d)];
        r.extend(ints(n));
        r
    };
    assert_eq!(
        l.rows,
        vec![
            row("life", "clicks", "k", "lifetime", [0, 0, 0, 0]),
            row("w", "tx", "c", "10 minutes / 10 seconds", [2, 300, 9, 1]),
        ]
    );
    assert_eq!(l.message, "2 view(s)");
}

#[test]
fn describe_each_kind() {
    let cat = catalog();
    use ColumnType::*;
    let keyed = [("column", Text), ("type", Text), ("key", Boolean)];

    let t = listing::describe(&cat, "accounts", &|_| (0, 0)).unwrap();
    assert_eq!(schema(&t), keyed);
    assert_eq!(
        t.rows,
        vec![
            vec![text("n"), text("BIGINT"), Value::Bool(false)],
            vec![text("id"), text("BIGINT"), Value::Bool(true)],
            vec![text("seen"), text("TIMESTAMP"), Value::Bool(false)],
        ]
    );
    assert_eq!(t.message, "table accounts");

    let s = listing::describe(&cat, "tx", &|_| (0, 0)).unwrap();
    assert_eq!(
        schema(&s),
        [("column", Text), ("type", Text), ("role", Text)]
    );
    assert_eq!(
        s.rows,
        vec![
            vec![text("ts"), text("TIMESTAMP"), text("event time")],
            vec![text("card"), text("TEXT"), text("partition")],
            vec![text("amount"), text("DOUBLE"), text("")],
        ]
    );
    assert_eq!(s.message, "stream tx");
    let clicks = listing::describe(&cat, "clicks", &|_| (0, 0)).unwrap();
    assert_eq!(
        clicks.message,
        "stream clicks, keeps the last 5 events per partition key"
    );

    let v = listing::describe(&cat, "w", &|_| (0, 0)).unwrap();
    assert_eq!(schema(&v), keyed);
    assert_eq!(
        v.rows,
        vec![
            vec![text("c"), text("TEXT"), Value::Bool(true)],
            vec![text("n"), text("BIGINT"), Value::Bool(false)],
            vec![text("sum_amount"), text("DOUBLE"), Value::Bool(false)],
        ]
    );
    assert_eq!(
        v.message,
        "CREATE MATERIALIZED VIEW w WITH (window = '10 minutes', bucket = '10 seconds') AS \
         SELECT card AS c, count(*) AS n, sum(amount) AS sum_amount FROM tx GROUP BY card"
    );

    assert_eq!(listing::describe(&cat, "nope", &|_| (0, 0)), None);
}
