use tarn_types::{ColumnType, Value};

use crate::expr::{ArithOp, CmpOp, Expr, MAX_EXPR_NODES};
use crate::schema::{ColumnDef, StreamDef};
use crate::sql::{parse, Statement};
use crate::view::{
    AggFunc, ViewDef, ViewSpec, WindowSpec, MAX_VIEW_AGGREGATES, MAX_WINDOW_BUCKETS,
};
use crate::{CoreError, ErrorKind};

/// Stream columns: 0 ts, 1 card_id, 2 account_id, 3 amount, 4 ip, 5 merchant, 6 n, 7 flag,
/// 8 blob, 9 other_flag.
const TX: &str = "CREATE STREAM transactions (ts TIMESTAMP, card_id TEXT, account_id TEXT, \
     amount DOUBLE, ip TEXT, merchant TEXT, n BIGINT, flag BOOLEAN, blob BYTES, \
     other_flag BOOLEAN) WITH (event_time = 'ts', partition = 'card_id')";

const EXAMPLE: &str = "CREATE MATERIALIZED VIEW IF NOT EXISTS card_10m
  WITH (window = '10 minutes', bucket = '10 seconds')
AS SELECT card_id, count(*) AS txns, sum(amount) AS spend,
          max(amount) FILTER (WHERE merchant <> 'x') AS max_amt,
          count(DISTINCT account_id) AS accounts, last(ip) AS last_ip, avg(amount), stddev(amount)
   FROM transactions WHERE amount > 0 AND ip IS NOT NULL
   GROUP BY card_id";

fn stream() -> StreamDef {
    match parse(TX).unwrap().remove(0) {
        Statement::CreateStream { mut def, .. } => {
            def.id = 7;
            def
        }
        other => panic!("not a CREATE STREAM: {other:?}"),
    }
}

fn spec_of(sql: &str) -> ViewSpec {
    match parse(sql)
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .remove(0)
    {
        Statement::CreateView { spec, .. } => spec,
        other => panic!("not a CREATE MATERIALIZED VIEW: {other:?}"),
    }
}

fn view_of(sql: &str) -> ViewDef {
    spec_of(sql)
        .resolve(&stream())
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// A view over `transactions` with the given WHERE.
fn where_view(cond: &str) -> String {
    format!(
        "CREATE MATERIALIZED VIEW v WITH (window = 'lifetime') AS SELECT card_id, count(*) \
         FROM transactions WHERE {cond} GROUP BY card_id"
    )
}

/// The resolved WHERE of a view.
fn cond(c: &str) -> Expr {
    view_of(&where_view(c)).filter.expect("a WHERE")
}

/// The error of parsing (or, if that succeeds, resolving) `sql`.
fn view_err(sql: &str) -> CoreError {
    match parse(sql) {
        Err(e) => e,
        Ok(mut stmts) => match stmts.remove(0) {
            Statement::CreateView { spec, .. } => spec
                .resolve(&stream())
                .expect_err(&format!("{sql} resolved")),
            other => panic!("{sql} parsed as {other:?}"),
        },
    }
}

fn expect(sql: &str, kind: ErrorKind, needles: &[&str]) {
    let e = view_err(sql);
    assert_eq!(e.kind(), kind, "{sql}: {e}");
    for n in needles {
        assert!(e.to_string().contains(n), "{sql}: `{e}` lacks `{n}`");
    }
}

fn unsupported(sql: &str, needles: &[&str]) {
    expect(sql, ErrorKind::Unsupported, needles);
}

fn view_with(window: &str, select: &str) -> String {
    format!("CREATE MATERIALIZED VIEW v WITH ({window}) AS {select}")
}

fn lifetime(select: &str) -> String {
    view_with("window = 'lifetime'", select)
}

#[test]
fn example_parses_and_resolves() {
    let stmts = parse(EXAMPLE).unwrap();
    let Statement::CreateView {
        spec,
        if_not_exists,
    } = &stmts[0]
    else {
        panic!("{stmts:?}")
    };
    assert!(*if_not_exists);
    assert!(stmts[0].is_ddl());
    assert_eq!(spec.name, "card_10m");
    assert_eq!(spec.stream, "transactions");
    assert_eq!(spec.key_column, "card_id");
    assert_eq!(spec.key_name, "card_id");
    assert_eq!(spec.expr_columns(), vec!["merchant", "amount", "ip"]);

    let def = spec.resolve(&stream()).unwrap();
    assert_eq!(def.id, 0);
    assert_eq!(def.stream_id, 7);
    assert_eq!(def.stream, "transactions");
    assert_eq!(def.key_column, 1);
    assert_eq!(
        def.window,
        WindowSpec::Sliding {
            window_us: 600_000_000,
            bucket_us: 10_000_000
        }
    );
    let aggs: Vec<(&str, AggFunc, Option<usize>, bool)> = def
        .aggregates
        .iter()
        .map(|a| (a.name.as_str(), a.func, a.input, a.filter.is_some()))
        .collect();
    assert_eq!(
        aggs,
        vec![
            ("txns", AggFunc::CountStar, None, false),
            ("spend", AggFunc::Sum, Some(3), false),
            ("max_amt", AggFunc::Max, Some(3), true),
            ("accounts", AggFunc::CountDistinct, Some(2), false),
            ("last_ip", AggFunc::Last, Some(4), false),
            ("avg_amount", AggFunc::Avg, Some(3), false),
            ("stddev_amount", AggFunc::Stddev, Some(3), false),
        ]
    );
    assert_eq!(
        def.aggregates[2].filter,
        Some(Expr::Cmp(
            CmpOp::NotEq,
            Box::new(Expr::Column(5)),
            Box::new(Expr::Literal(Value::Text("x".into())))
        ))
    );
    assert_eq!(
        def.filter,
        Some(Expr::And(
            Box::new(Expr::Cmp(
                CmpOp::Gt,
                Box::new(Expr::Column(3)),
                Box::new(Expr::Literal(Value::Int(0)))
            )),
            Box::new(Expr::IsNull {
                expr: Box::new(Expr::Column(4)),
                negated: true
            })
        ))
    );
    let cols = |v: &[(&str, ColumnType)]| -> Vec<ColumnDef> {
        v.iter()
            .map(|(n, t)| ColumnDef {
                name: n.to_string(),
                ty: *t,
            })
            .collect()
    };
    use ColumnType::*;
    assert_eq!(
        def.result_columns(&stream()),
        cols(&[
            ("card_id", Text),
            ("txns", BigInt),
            ("spend", Double),
            ("max_amt", Double),
            ("accounts", BigInt),
            ("last_ip", Text),
            ("avg_amount", Double),
            ("stddev_amount", Double),
        ])
    );
    assert_eq!(def.check(&stream()), Ok(()));
}

#[test]
fn result_types_per_function_and_input() {
    use ColumnType::*;
    // (call, result) over n BIGINT, amount DOUBLE, ts TIMESTAMP, flag BOOLEAN, ip TEXT, blob BYTES.
    let cases = [
        ("count(*)", BigInt),
        ("count(ip)", BigInt),
        ("count(DISTINCT blob)", BigInt),
        ("count(DISTINCT flag)", BigInt),
        ("sum(n)", BigInt),
        ("sum(amount)", Double),
        ("min(n)", BigInt),
        ("max(amount)", Double),
        ("min(ts)", Timestamp),
        ("max(ts)", Timestamp),
        ("avg(n)", Double),
        ("variance(n)", Double),
        ("var_samp(amount)", Double),
        ("stddev(amount)", Double),
        ("stddev_samp(n)", Double),
        ("var_pop(n)", Double),
        ("stddev_pop(amount)", Double),
        ("first(blob)", Bytes),
        ("last(flag)", Boolean),
        ("first(ts)", Timestamp),
        ("LAST(ip)", Text),
    ];
    for (call, ty) in cases {
        let sql = lifetime(&format!(
            "SELECT card_id, {call} AS out FROM transactions GROUP BY card_id"
        ));
        let def = view_of(&sql);
        assert_eq!(def.result_columns(&stream())[1].ty, ty, "{call}");
    }
    for (call, func, col, ty) in [
        ("sum(ip)", "sum", "ip", "TEXT"),
        ("avg(ts)", "avg", "ts", "TIMESTAMP"),
        ("stddev_pop(flag)", "stddev_pop", "flag", "BOOLEAN"),
        ("min(ip)", "min", "ip", "TEXT"),
        ("max(blob)", "max", "blob", "BYTES"),
        ("variance(blob)", "variance", "blob", "BYTES"),
    ] {
        let sql = lifetime(&format!(
            "SELECT card_id, {call} FROM transactions GROUP BY card_id"
        ));
        unsupported(&sql, &[func, &format!("\"{col}\""), ty]);
    }
}

#[test]
fn default_output_names() {
    let spec = spec_of(&lifetime(
        "SELECT card_id AS card, count(*), count(ip), count(DISTINCT account_id), sum(amount), \
         min(n), max(ts), avg(amount), variance(n), var_samp(amount), stddev(n), \
         stddev_samp(amount), var_pop(n), stddev_pop(n), first(ip), last(\"Ip\") \
         FROM transactions GROUP BY card_id",
    ));
    assert_eq!(spec.key_column, "card_id");
    assert_eq!(spec.key_name, "card");
    let names: Vec<&str> = spec.aggregates.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(
        names,
        vec![
            "count",
            "count_ip",
            "count_distinct_account_id",
            "sum_amount",
            "min_n",
            "max_ts",
            "avg_amount",
            "variance_n",
            "variance_amount",
            "stddev_n",
            "stddev_amount",
            "var_pop_n",
            "stddev_pop_n",
            "first_ip",
            "last_Ip",
        ]
    );
    let funcs: Vec<AggFunc> = spec.aggregates.iter().map(|a| a.func).collect();
    assert_eq!(funcs[8], AggFunc::Variance);
    assert_eq!(funcs[10], AggFunc::Stddev);
}

#[test]
fn quoted_function_names_keep_their_case() {
    unsupported(
        &lifetime("SELECT card_id, \"MAX\"(amount) FROM transactions GROUP BY card_id"),
        &["function MAX()"],
    );
    let def = view_of(&lifetime(
        "SELECT card_id, MAX(amount), Count(*) FROM transactions GROUP BY card_id",
    ));
    assert_eq!(def.aggregates[0].name, "max_amount");
    assert_eq!(def.aggregates[1].name, "count");
}

#[test]
fn output_names_must_be_unique_and_short() {
    for (sql, dup) in [
        (
            "SELECT card_id, sum(amount), sum(amount) FILTER (WHERE n > 0) FROM transactions GROUP BY card_id",
            "sum_amount",
        ),
        (
            "SELECT card_id, count(*) AS card_id FROM transactions GROUP BY card_id",
            "card_id",
        ),
        (
            "SELECT card_id AS k, count(*) AS k FROM transactions GROUP BY card_id",
            "k",
        ),
        (
            "SELECT card_id, count(*), count(ip) AS count FROM transactions GROUP BY card_id",
            "count",
        ),
    ] {
        let e = view_err(&lifetime(sql));
        assert_eq!(
            e,
            CoreError::DuplicateColumn {
                column: dup.into()
            },
            "{sql}"
        );
    }
    // Distinct with aliases.
    view_of(&lifetime(
        "SELECT card_id, sum(amount), sum(amount) FILTER (WHERE n > 0) AS pos FROM transactions GROUP BY card_id",
    ));
    // A default name over 64 bytes asks for an alias.
    let long = "c".repeat(60);
    let sql = lifetime(&format!(
        "SELECT card_id, count(DISTINCT {long}) FROM transactions GROUP BY card_id"
    ));
    expect(
        &sql,
        ErrorKind::LimitExceeded,
        &["default output name", "AS"],
    );
}

#[test]
fn window_options() {
    let sel = "SELECT card_id, count(*) FROM transactions GROUP BY card_id";
    let w = |opts: &str| view_of(&view_with(opts, sel)).window;
    assert_eq!(w("window = 'lifetime'"), WindowSpec::Lifetime);
    assert_eq!(w("WINDOW = 'LifeTime'"), WindowSpec::Lifetime);
    assert_eq!(
        w("bucket = '1 minute', window = '1 hour'"),
        WindowSpec::Sliding {
            window_us: 3_600_000_000,
            bucket_us: 60_000_000
        }
    );
    assert_eq!(
        w("window = '10s', bucket = '10s'"),
        WindowSpec::Sliding {
            window_us: 10_000_000,
            bucket_us: 10_000_000
        }
    );
    // Exactly MAX_WINDOW_BUCKETS buckets is fine, one more is not.
    assert_eq!(
        w(&format!(
            "window = '{MAX_WINDOW_BUCKETS} s', bucket = '1 s'"
        )),
        WindowSpec::Sliding {
            window_us: MAX_WINDOW_BUCKETS * 1_000_000,
            bucket_us: 1_000_000
        }
    );
    let bad = |opts: &str, kind: ErrorKind, needles: &[&str]| {
        expect(&view_with(opts, sel), kind, needles)
    };
    bad(
        &format!("window = '{} s', bucket = '1 s'", MAX_WINDOW_BUCKETS + 1),
        ErrorKind::LimitExceeded,
        &["4097 buckets", "4096"],
    );
    bad(
        "window = '10 minutes'",
        ErrorKind::Unsupported,
        &["needs bucket"],
    );
    bad(
        "bucket = '10 seconds'",
        ErrorKind::Unsupported,
        &["without WITH (window"],
    );
    bad(
        "window = 'lifetime', bucket = '1 s'",
        ErrorKind::Unsupported,
        &["bucket with window = 'lifetime'"],
    );
    bad(
        "window = '10 minutes', bucket = '7 seconds'",
        ErrorKind::Unsupported,
        &["'10 minutes' is not a whole multiple of bucket '7 seconds'"],
    );
    bad(
        "window = '1 s', bucket = '10 s'",
        ErrorKind::Unsupported,
        &["not a whole multiple"],
    );
    bad(
        "window = '10 fortnights', bucket = '1 s'",
        ErrorKind::Unsupported,
        &["window:", "fortnights"],
    );
    bad(
        "window = '10 minutes', bucket = '0 s'",
        ErrorKind::Unsupported,
        &["bucket:", "positive"],
    );
    bad(
        "window = 10, bucket = '1 s'",
        ErrorKind::Unsupported,
        &["quoted string"],
    );
    bad(
        "window = '1 h', bucket = '1 s', retention = '1 d'",
        ErrorKind::Unsupported,
        &["view option \"retention\"", "window, bucket"],
    );
    bad(
        "window = '1 h', window = '1 h', bucket = '1 s'",
        ErrorKind::Unsupported,
        &["window given twice"],
    );
    // No WITH at all.
    unsupported(
        &format!("CREATE MATERIALIZED VIEW v AS {sel}"),
        &["without WITH (window"],
    );
}

#[test]
fn rejected_clauses_name_the_culprit() {
    let ok = "SELECT card_id, count(*) FROM transactions GROUP BY card_id";
    let cases: &[(&str, &[&str])] = &[
        (
            "CREATE VIEW v AS SELECT card_id, count(*) FROM transactions GROUP BY card_id",
            &["CREATE VIEW", "MATERIALIZED"],
        ),
        (
            "CREATE OR REPLACE MATERIALIZED VIEW v WITH (window = 'lifetime') AS SELECT card_id, count(*) FROM transactions GROUP BY card_id",
            &["OR REPLACE"],
        ),
        (
            "CREATE MATERIALIZED VIEW v (a, b) WITH (window = 'lifetime') AS SELECT card_id, count(*) FROM transactions GROUP BY card_id",
            &["column list"],
        ),
        (
            "CREATE MATERIALIZED VIEW s.v WITH (window = 'lifetime') AS SELECT card_id, count(*) FROM transactions GROUP BY card_id",
            &["qualified view name"],
        ),
    ];
    for (sql, needles) in cases {
        unsupported(sql, needles);
    }
    let selects: &[(&str, &[&str])] = &[
        (
            "SELECT card_id, count(*) FROM transactions GROUP BY card_id ORDER BY card_id",
            &["ORDER BY"],
        ),
        (
            "SELECT card_id, count(*) FROM transactions GROUP BY card_id LIMIT 5",
            &["LIMIT"],
        ),
        (
            "SELECT card_id, count(*) FROM transactions GROUP BY card_id HAVING count(*) > 1",
            &["HAVING"],
        ),
        (
            "SELECT DISTINCT card_id, count(*) FROM transactions GROUP BY card_id",
            &["SELECT DISTINCT"],
        ),
        (
            "SELECT card_id, count(*) FROM transactions JOIN cards ON true GROUP BY card_id",
            &["JOIN"],
        ),
        (
            "SELECT card_id, count(*) FROM transactions, cards GROUP BY card_id",
            &["several FROM items"],
        ),
        (
            "SELECT card_id, count(*) FROM transactions t GROUP BY card_id",
            &["FROM `transactions t`"],
        ),
        (
            "SELECT card_id, count(*) FROM (SELECT * FROM transactions) GROUP BY card_id",
            &["FROM `(SELECT"],
        ),
        (
            "WITH x AS (SELECT 1) SELECT card_id, count(*) FROM transactions GROUP BY card_id",
            &["WITH (common table expressions)"],
        ),
        (
            "SELECT card_id, count(*) FROM transactions GROUP BY card_id UNION SELECT card_id, count(*) FROM transactions GROUP BY card_id",
            &["UNION"],
        ),
        ("SELECT * FROM transactions GROUP BY card_id", &["`*`"]),
        ("SELECT card_id, count(*) FROM transactions", &["without GROUP BY"]),
        (
            "SELECT card_id, count(*) FROM transactions GROUP BY card_id, ip",
            &["GROUP BY several expressions"],
        ),
        (
            "SELECT card_id, count(*) FROM transactions GROUP BY lower(card_id)",
            &["GROUP BY `lower(card_id)`", "one bare column"],
        ),
        (
            "SELECT count(*) FROM transactions GROUP BY card_id",
            &["must list its GROUP BY column \"card_id\""],
        ),
        (
            "SELECT card_id, card_id AS again, count(*) FROM transactions GROUP BY card_id",
            &["listed twice"],
        ),
        (
            "SELECT card_id, ip, count(*) FROM transactions GROUP BY card_id",
            &["column \"ip\"", "must be an aggregate"],
        ),
        (
            "SELECT card_id FROM transactions GROUP BY card_id",
            &["no aggregate"],
        ),
        (
            "SELECT card_id, amount + 1 FROM transactions GROUP BY card_id",
            &["select item `amount + 1`"],
        ),
        (
            "SELECT card_id, sum(amount * 2) FROM transactions GROUP BY card_id",
            &["`amount * 2`", "bare column names", "expressions are not supported"],
        ),
        (
            "SELECT card_id, sum(DISTINCT amount) FROM transactions GROUP BY card_id",
            &["DISTINCT in `sum(DISTINCT amount)`", "count(DISTINCT col)"],
        ),
        (
            "SELECT card_id, count(DISTINCT *) FROM transactions GROUP BY card_id",
            &["DISTINCT"],
        ),
        (
            "SELECT card_id, count(ALL ip) FROM transactions GROUP BY card_id",
            &["ALL in"],
        ),
        (
            "SELECT card_id, sum(*) FROM transactions GROUP BY card_id",
            &["sum(*)", "only count(*)"],
        ),
        (
            "SELECT card_id, median(amount) FROM transactions GROUP BY card_id",
            &["function median()", "supported aggregates"],
        ),
        (
            "SELECT card_id, sum(amount, n) FROM transactions GROUP BY card_id",
            &["exactly one argument, got 2"],
        ),
        (
            "SELECT card_id, count() FROM transactions GROUP BY card_id",
            &["exactly one argument, got 0"],
        ),
        (
            "SELECT card_id, sum(amount) OVER (PARTITION BY ip) FROM transactions GROUP BY card_id",
            &["window function", "OVER"],
        ),
        (
            "SELECT card_id, sum(transactions.amount) FROM transactions GROUP BY card_id",
            &["bare column names"],
        ),
        (
            "SELECT card_id, count(*) FROM public.transactions GROUP BY card_id",
            &["qualified stream name"],
        ),
    ];
    for (select, needles) in selects {
        unsupported(&lifetime(select), needles);
    }
    view_of(&lifetime(ok));
    // IF NOT EXISTS after the name.
    unsupported(
        &format!("CREATE MATERIALIZED VIEW v IF NOT EXISTS WITH (window = 'lifetime') AS {ok}"),
        &["IF NOT EXISTS after the view name"],
    );
}

#[test]
fn aggregate_count_limit() {
    let aggs: Vec<String> = (0..MAX_VIEW_AGGREGATES)
        .map(|i| format!("count(*) AS c{i}"))
        .collect();
    let sql = |aggs: &[String]| {
        lifetime(&format!(
            "SELECT card_id, {} FROM transactions GROUP BY card_id",
            aggs.join(", ")
        ))
    };
    assert_eq!(view_of(&sql(&aggs)).aggregates.len(), MAX_VIEW_AGGREGATES);
    let mut more = aggs.clone();
    more.push("sum(n)".into());
    expect(
        &sql(&more),
        ErrorKind::LimitExceeded,
        &["more than 64 aggregates"],
    );
}

#[test]
fn resolve_errors_name_the_culprit() {
    let e = view_err(&lifetime(
        "SELECT card, count(*) FROM transactions GROUP BY card",
    ));
    assert_eq!(
        e,
        CoreError::UnknownColumn {
            table: "transactions".into(),
            column: "card".into()
        }
    );
    let e = view_err(&lifetime(
        "SELECT card_id, sum(amt) FROM transactions GROUP BY card_id",
    ));
    assert_eq!(
        e,
        CoreError::UnknownColumn {
            table: "transactions".into(),
            column: "amt".into()
        }
    );
    let e = view_err(&where_view("amount > 0 AND \"IP\" IS NULL"));
    assert_eq!(
        e,
        CoreError::UnknownColumn {
            table: "transactions".into(),
            column: "IP".into()
        }
    );
    let e = view_err(&lifetime(
        "SELECT card_id, count(*) FILTER (WHERE nope = 1) FROM transactions GROUP BY card_id",
    ));
    assert_eq!(e.kind(), ErrorKind::UnknownColumn);
    assert_eq!(e.column(), Some("nope"));
    // DOUBLE cannot be a key.
    unsupported(
        &lifetime("SELECT amount, count(*) FROM transactions GROUP BY amount"),
        &["GROUP BY column \"amount\" is DOUBLE"],
    );
    // Keys of every keyable type resolve.
    for k in ["ts", "card_id", "n", "flag", "blob"] {
        let def = view_of(&lifetime(&format!(
            "SELECT {k}, count(*) FROM transactions GROUP BY {k}"
        )));
        assert_eq!(def.key_name, k);
    }
    // Resolving against another stream.
    let mut other = stream();
    other.name = "other".into();
    assert_eq!(
        spec_of(EXAMPLE).resolve(&other),
        Err(CoreError::UnknownStream("transactions".into()))
    );
}

#[test]
fn condition_type_checks() {
    let mismatch = |c: &str, column: &str, expected: ColumnType, got: ColumnType| {
        let e = view_err(&where_view(c));
        assert_eq!(
            e,
            CoreError::TypeMismatch {
                row: None,
                column: Some(column.into()),
                expected,
                got
            },
            "{c}"
        );
    };
    use ColumnType::*;
    mismatch("amount = 'x'", "amount", Double, Text);
    mismatch("'x' = amount", "amount", Double, Text);
    mismatch("ts > 5.0", "ts", Timestamp, Double);
    mismatch(
        "TIMESTAMP '2026-01-01T00:00:00Z' < n",
        "n",
        BigInt,
        Timestamp,
    );
    mismatch("merchant IN ('a', 1)", "merchant", Text, BigInt);
    mismatch("n BETWEEN 1 AND 'z'", "n", BigInt, Text);
    mismatch("flag = 1", "flag", Boolean, BigInt);
    mismatch("blob = 'x'", "blob", Bytes, Text);
    mismatch("amount", "amount", Boolean, Double);
    mismatch("flag AND ip", "ip", Boolean, Text);
    mismatch("NOT n", "n", Boolean, BigInt);
    unsupported(
        &where_view("card_id = n"),
        &["column \"card_id\" (TEXT)", "column \"n\" (BIGINT)"],
    );
    unsupported(&where_view("ts = n"), &["\"ts\"", "\"n\""]);
    unsupported(&where_view("1 = 'a'"), &["cannot compare BIGINT with TEXT"]);
    unsupported(
        &where_view("merchant + 1 > 0"),
        &["arithmetic on column \"merchant\" of type TEXT"],
    );
    unsupported(
        &where_view("ts + 1 > ts"),
        &["arithmetic on column \"ts\" of type TIMESTAMP"],
    );
    unsupported(
        &where_view("amount + 1"),
        &["WHERE: `amount + 1` is DOUBLE", "BOOLEAN"],
    );
    unsupported(
        &lifetime(
            "SELECT card_id, count(*) FILTER (WHERE n * 2) AS c FROM transactions GROUP BY card_id",
        ),
        &["FILTER of \"c\"", "`n * 2` is BIGINT"],
    );
    // Accepted mixes.
    for ok in [
        "amount > n",
        "n = 2.5",
        "ts > 0",
        "ts BETWEEN 0 AND TIMESTAMP '2030-01-01T00:00:00Z'",
        "ts IN (1, 2, NULL)",
        "1 < ts",
        "merchant = NULL",
        "NULL",
        "flag",
        "flag = other_flag",
        "NOT flag OR flag IS NULL",
        "blob = X'00ff'",
        "amount + n * 2 > 1",
        "(NULL + 1) IS NULL",
        "ip IS NOT NULL",
        "TRUE",
    ] {
        view_of(&where_view(ok));
    }
    // Integer literals compared with a TIMESTAMP become TIMESTAMP literals.
    assert_eq!(
        cond("ts > 1000"),
        Expr::Cmp(
            CmpOp::Gt,
            Box::new(Expr::Column(0)),
            Box::new(Expr::Literal(Value::Timestamp(1000)))
        )
    );
    assert_eq!(
        cond("ts IN (1, TIMESTAMP '1970-01-01T00:00:00.000002Z')"),
        Expr::InList {
            expr: Box::new(Expr::Column(0)),
            list: vec![
                Expr::Literal(Value::Timestamp(1)),
                Expr::Literal(Value::Timestamp(2))
            ],
            negated: false
        }
    );
    // …but not elsewhere.
    assert_eq!(
        cond("n > 1000"),
        Expr::Cmp(
            CmpOp::Gt,
            Box::new(Expr::Column(6)),
            Box::new(Expr::Literal(Value::Int(1000)))
        )
    );
}

#[test]
fn literals() {
    let lit = |c: &str| match cond(&format!("{c} IS NULL")) {
        Expr::IsNull { expr, .. } => match *expr {
            Expr::Literal(v) => v,
            other => panic!("{c}: {other:?}"),
        },
        other => panic!("{c}: {other:?}"),
    };
    assert_eq!(lit("42"), Value::Int(42));
    assert_eq!(lit("-42"), Value::Int(-42));
    assert_eq!(lit("+7"), Value::Int(7));
    assert_eq!(lit("-9223372036854775808"), Value::Int(i64::MIN));
    assert_eq!(lit("9223372036854775807"), Value::Int(i64::MAX));
    assert_eq!(lit("2.5"), Value::Double(2.5));
    assert_eq!(lit("-2.5"), Value::Double(-2.5));
    assert_eq!(lit("1e3"), Value::Double(1000.0));
    assert_eq!(lit(".5"), Value::Double(0.5));
    assert_eq!(lit("'it''s'"), Value::Text("it's".into()));
    assert_eq!(lit("E'a\\nb'"), Value::Text("a\nb".into()));
    assert_eq!(lit("X'00fF'"), Value::Bytes(vec![0, 255]));
    assert_eq!(lit("TRUE"), Value::Bool(true));
    assert_eq!(lit("false"), Value::Bool(false));
    assert_eq!(lit("NULL"), Value::Null);
    assert_eq!(
        lit("TIMESTAMP '2026-11-26T00:00:00.5Z'"),
        Value::Timestamp(1_795_651_200_500_000)
    );
    unsupported(
        &where_view("n = 9223372036854775808"),
        &["9223372036854775808 is outside the BIGINT range"],
    );
    unsupported(&where_view("amount = 1e999"), &["numeric literal 1e999"]);
    unsupported(
        &where_view("ts = TIMESTAMP 'yesterday'"),
        &["TIMESTAMP literal 'yesterday'"],
    );
    unsupported(&where_view("ts = DATE '2026-01-01'"), &["typed literal"]);
    unsupported(&where_view("blob = X'abc'"), &["BYTES literal"]);
    unsupported(
        &where_view("-n > 0"),
        &["unary `-`", "numeric literals only"],
    );
    unsupported(&where_view("merchant LIKE 'a%'"), &["LIKE"]);
    unsupported(&where_view("n % 2 = 0"), &["operator `%`"]);
    unsupported(
        &where_view("lower(ip) = 'x'"),
        &["function call `lower(ip)`"],
    );
    unsupported(
        &where_view("transactions.n = 1"),
        &["qualified column reference `transactions.n`"],
    );
    unsupported(&where_view("flag IS TRUE"), &["flag IS TRUE"]);
    unsupported(&where_view("n IN (SELECT 1)"), &["IN (SELECT"]);
}

#[test]
fn expression_size_limit() {
    // n = 0 OR n = 1 OR …: 3 nodes per term plus one OR between terms.
    let terms = |k: usize| {
        (0..k)
            .map(|i| format!("n = {i}"))
            .collect::<Vec<_>>()
            .join(" OR ")
    };
    // 64 terms: 64 * 3 + 63 = 255 nodes.
    let e = cond(&terms(64));
    assert_eq!(e.node_count(), 255);
    assert!(e.node_count() <= MAX_EXPR_NODES);
    expect(
        &where_view(&terms(65)),
        ErrorKind::LimitExceeded,
        &["WHERE condition", "256"],
    );
    // Parentheses do not count.
    let e = cond(&format!("(((({}))))", terms(64)));
    assert_eq!(e.node_count(), 255);
    // The limit holds per FILTER too.
    expect(
        &lifetime(&format!(
            "SELECT card_id, count(*) FILTER (WHERE {}) AS c FROM transactions GROUP BY card_id",
            terms(65)
        )),
        ErrorKind::LimitExceeded,
        &["FILTER of \"c\""],
    );
}

fn round_trip(sql: &str) {
    let st = stream();
    let spec = spec_of(sql);
    let def = spec.resolve(&st).unwrap();
    let text = def.create_sql(&st);
    let again = spec_of(&text);
    let def2 = again.resolve(&st).unwrap_or_else(|e| panic!("{text}: {e}"));
    assert_eq!(def2, def, "{sql}\n=> {text}");
    // The text is stable and the spec printed from a spec re-parses to itself.
    assert_eq!(def2.create_sql(&st), text);
    assert_eq!(spec_of(&again.create_sql()), again, "{text}");
    assert_eq!(def.to_spec(&st), again, "{text}");
}

#[test]
fn create_sql_round_trips() {
    round_trip(EXAMPLE);
    assert_eq!(
        view_of(EXAMPLE).create_sql(&stream()),
        "CREATE MATERIALIZED VIEW card_10m WITH (window = '10 minutes', bucket = '10 seconds') \
         AS SELECT card_id, count(*) AS txns, sum(amount) AS spend, max(amount) FILTER (WHERE \
         merchant <> 'x') AS max_amt, count(DISTINCT account_id) AS accounts, last(ip) AS \
         last_ip, avg(amount) AS avg_amount, stddev(amount) AS stddev_amount FROM transactions \
         WHERE amount > 0 AND ip IS NOT NULL GROUP BY card_id"
    );
    for c in [
        "flag OR other_flag AND ip IS NULL",
        "(flag OR other_flag) AND ip IS NULL",
        "flag AND (other_flag AND ip IS NULL)",
        "(flag AND other_flag) AND ip IS NULL",
        "NOT (flag AND other_flag)",
        "NOT flag = other_flag",
        "(NOT flag) = other_flag",
        "NOT NOT flag",
        "flag IS NULL IS NULL",
        "(flag = other_flag) IS NOT NULL",
        "(flag = other_flag) = (ip IS NULL = other_flag)",
        "n - (1 - 2) > n - 1 - 2",
        "n / (2 * 3) = n / 2 * 3",
        "n * -5 < -5 * n",
        "n - -5 > 0",
        "amount * (n + 1) BETWEEN -1.5 AND 1e300",
        "n NOT BETWEEN 1 + 1 AND 2 * 3",
        "(n BETWEEN 1 AND 2) = (n IN (1, 2))",
        "n IN (1, 2 + 3, NULL) AND n NOT IN (4)",
        "amount IN (0.1, -0.0, 1e-7, 123456789.125)",
        "merchant = 'it''s \\ \"quoted\"\nnewline' OR merchant <> ''",
        "blob = X'' OR blob = X'00ff10'",
        "ts > 0 AND ts < TIMESTAMP '2026-11-26T01:02:03.000004Z'",
        "ts BETWEEN -1 AND 1",
        "NULL IS NULL AND (NULL + 1) IS NULL",
        "TRUE AND NOT FALSE",
        "n >= 0 AND n <= 1 AND n <> 2 AND n != 3 AND n < 4 AND n > -9223372036854775808",
    ] {
        round_trip(&where_view(c));
    }
    // A TIMESTAMP literal past year 9999 prints as its µs count, which resolves back to the
    // same TIMESTAMP literal (the spec differs: it holds the integer until resolved).
    let st = stream();
    let def = view_of(&where_view("ts = 253402300800000000"));
    assert_eq!(
        def.filter,
        Some(Expr::Cmp(
            CmpOp::Eq,
            Box::new(Expr::Column(0)),
            Box::new(Expr::Literal(Value::Timestamp(253_402_300_800_000_000)))
        ))
    );
    let text = def.create_sql(&st);
    assert!(text.contains("WHERE ts = 253402300800000000"), "{text}");
    assert_eq!(view_of(&text), def);
    let def = view_of(&where_view("ts = TIMESTAMP '9999-12-31T23:59:59.999999Z'"));
    assert!(def
        .create_sql(&st)
        .contains("TIMESTAMP '9999-12-31T23:59:59.999999Z'"));
    round_trip(&where_view("ts = TIMESTAMP '0000-01-01T00:00:00Z'"));

    // Quoted identifiers, keywords and aliases.
    let st = parse(
        "CREATE STREAM \"Odd Stream\" (\"select\" TIMESTAMP, \"Key\" TEXT, \"x\"\"y\" BIGINT) \
         WITH (event_time = 'select')",
    )
    .unwrap()
    .remove(0);
    let Statement::CreateStream { def: st, .. } = st else {
        panic!()
    };
    let sql = "CREATE MATERIALIZED VIEW \"My View\" WITH (window = '1 week', bucket = '1 day') \
               AS SELECT \"Key\" AS \"from\", sum(\"x\"\"y\") FILTER (WHERE \"x\"\"y\" > 0 AND \
               \"select\" > 5) AS \"Total\", count(*) AS \"count\", max(\"select\") \
               FROM \"Odd Stream\" GROUP BY \"Key\"";
    let def = spec_of(sql).resolve(&st).unwrap();
    assert_eq!(def.key_name, "from");
    assert_eq!(def.aggregates[1].name, "count");
    assert_eq!(def.aggregates[2].name, "max_select");
    let text = def.create_sql(&st);
    assert_eq!(spec_of(&text).resolve(&st).unwrap(), def, "{text}");
    // A key listed after the aggregates comes first in the output.
    round_trip(&lifetime(
        "SELECT count(*) AS c, card_id AS k FROM transactions GROUP BY card_id",
    ));
    let def = view_of(&lifetime(
        "SELECT count(*) AS c, card_id AS k FROM transactions GROUP BY card_id",
    ));
    assert_eq!(def.result_columns(&stream())[0].name, "k");
}

#[test]
fn long_condition_chains_round_trip() {
    // Long left-deep AND/OR/+ chains print without nested parentheses (sqlparser limits nesting depth).
    let c = (0..64)
        .map(|i| format!("n <> {i}"))
        .collect::<Vec<_>>()
        .join(" AND ");
    round_trip(&where_view(&c));
    let c = (0..127).map(|_| "flag").collect::<Vec<_>>().join(" OR ");
    round_trip(&where_view(&c));
    let c = (0..127)
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(" + ");
    round_trip(&where_view(&format!("n > {c}")));
}

#[test]
fn serde_round_trip() {
    let def = view_of(EXAMPLE);
    let json = serde_json::to_string(&def).unwrap();
    let back: ViewDef = serde_json::from_str(&json).unwrap();
    assert_eq!(back, def);
    let def = view_of(&where_view(
        "ts > TIMESTAMP '2026-01-01T00:00:00Z' AND blob <> X'01' AND amount BETWEEN -1.5 AND 2",
    ));
    let back: ViewDef = serde_json::from_str(&serde_json::to_string(&def).unwrap()).unwrap();
    assert_eq!(back, def);
}

#[test]
fn check_detects_inconsistent_defs() {
    let st = stream();
    let def = view_of(EXAMPLE);
    assert_eq!(def.check(&st), Ok(()));
    let mut bad = def.clone();
    bad.key_column = 99;
    assert!(bad.check(&st).is_err());
    let mut bad = def.clone();
    bad.key_column = 3; // DOUBLE
    assert!(bad.check(&st).is_err());
    let mut bad = def.clone();
    bad.aggregates[1].input = Some(4); // sum(ip)
    assert!(bad.check(&st).is_err());
    let mut bad = def.clone();
    bad.aggregates[2].filter = Some(Expr::Column(10));
    assert!(bad.check(&st).is_err());
    let mut bad = def.clone();
    bad.aggregates[1].name = "txns".into();
    assert!(bad.check(&st).is_err());
    let mut bad = def.clone();
    bad.window = WindowSpec::Sliding {
        window_us: 10,
        bucket_us: 3,
    };
    assert!(bad.check(&st).is_err());
    let mut bad = def.clone();
    bad.stream_id = 8;
    assert!(bad.check(&st).is_err());
    let mut bad = def;
    bad.aggregates.clear();
    assert!(bad.check(&st).is_err());
}

// ---------------------------------------------------------------------------------------------
// Evaluation.

/// A row of `transactions` with flag / other_flag set (None = NULL) and n.
fn row(flag: Option<bool>, other: Option<bool>, n: Option<i64>) -> Vec<Value> {
    let b = |x: Option<bool>| x.map_or(Value::Null, Value::Bool);
    vec![
        Value::Timestamp(1_000),
        Value::Text("c1".into()),
        Value::Null,
        Value::Double(2.5),
        Value::Null,
        Value::Text("shop".into()),
        n.map_or(Value::Null, Value::Int),
        b(flag),
        Value::Bytes(vec![1, 2]),
        b(other),
    ]
}

fn eval(c: &str, r: &[Value]) -> Value {
    cond(&format!("({c}) IS NULL OR ({c}) IS NOT NULL")); // type-checks as a condition
    let v = view_of(&lifetime(&format!(
        "SELECT card_id, count(*) FILTER (WHERE ({c}) IS NULL) AS x FROM transactions GROUP BY card_id"
    )));
    // The operand of IS NULL is the expression itself.
    let Some(Expr::IsNull { expr, .. }) = &v.aggregates[0].filter else {
        panic!()
    };
    expr.eval(r)
}

#[test]
fn three_valued_logic() {
    let vals = [Some(true), Some(false), None];
    let v = |x: Option<bool>| x.map_or(Value::Null, Value::Bool);
    for a in vals {
        for b in vals {
            let r = row(a, b, Some(1));
            let and = match (a, b) {
                (Some(false), _) | (_, Some(false)) => Some(false),
                (Some(true), Some(true)) => Some(true),
                _ => None,
            };
            let or = match (a, b) {
                (Some(true), _) | (_, Some(true)) => Some(true),
                (Some(false), Some(false)) => Some(false),
                _ => None,
            };
            assert_eq!(eval("flag AND other_flag", &r), v(and), "{a:?} AND {b:?}");
            assert_eq!(eval("flag OR other_flag", &r), v(or), "{a:?} OR {b:?}");
            assert_eq!(eval("NOT flag", &r), v(a.map(|x| !x)), "NOT {a:?}");
            assert_eq!(
                eval("flag = other_flag", &r),
                v(a.zip(b).map(|(x, y)| x == y))
            );
            assert_eq!(eval("flag IS NULL", &r), Value::Bool(a.is_none()));
            assert_eq!(eval("flag IS NOT NULL", &r), Value::Bool(a.is_some()));
            // matches() is true only for TRUE.
            let e = cond("flag AND other_flag");
            assert_eq!(e.matches(&r), and == Some(true));
            let e = cond("NOT (flag AND other_flag)");
            assert_eq!(e.matches(&r), and == Some(false));
        }
    }
    let r = row(None, None, None);
    assert_eq!(eval("n = 1", &r), Value::Null);
    assert_eq!(eval("n <> 1", &r), Value::Null);
    assert_eq!(eval("NULL = NULL", &r), Value::Null);
    assert_eq!(eval("n + 1", &r), Value::Null);
    assert!(!cond("n = 1").matches(&r));
    assert!(!cond("NOT n = 1").matches(&r));
    assert!(cond("n IS NULL").matches(&r));
}

#[test]
fn in_list_and_between() {
    let r = row(None, None, Some(5));
    assert_eq!(eval("n IN (1, 5)", &r), Value::Bool(true));
    assert_eq!(eval("n IN (1, 2)", &r), Value::Bool(false));
    assert_eq!(eval("n IN (1, NULL)", &r), Value::Null);
    assert_eq!(eval("n IN (5, NULL)", &r), Value::Bool(true));
    assert_eq!(eval("n NOT IN (1, 2)", &r), Value::Bool(true));
    assert_eq!(eval("n NOT IN (1, NULL)", &r), Value::Null);
    assert_eq!(eval("n NOT IN (5, NULL)", &r), Value::Bool(false));
    assert_eq!(eval("n IN (4.5, 5.0)", &r), Value::Bool(true));
    assert_eq!(eval("NULL IN (1, 2)", &r), Value::Null);
    assert!(!cond("n NOT IN (1, NULL)").matches(&r));
    assert_eq!(eval("n BETWEEN 1 AND 5", &r), Value::Bool(true));
    assert_eq!(eval("n BETWEEN 5 AND 5", &r), Value::Bool(true));
    assert_eq!(eval("n BETWEEN 6 AND 9", &r), Value::Bool(false));
    assert_eq!(eval("n BETWEEN 9 AND 1", &r), Value::Bool(false));
    assert_eq!(eval("n NOT BETWEEN 6 AND 9", &r), Value::Bool(true));
    assert_eq!(eval("n BETWEEN 4.5 AND 5.5", &r), Value::Bool(true));
    assert_eq!(eval("n BETWEEN NULL AND 9", &r), Value::Null);
    // x >= a is FALSE, so the AND is FALSE whatever the upper bound.
    assert_eq!(eval("n BETWEEN 6 AND NULL", &r), Value::Bool(false));
    assert_eq!(eval("n NOT BETWEEN 6 AND NULL", &r), Value::Bool(true));
    assert_eq!(eval("n BETWEEN 1 AND NULL", &r), Value::Null);
    let r = row(None, None, None);
    assert_eq!(eval("n BETWEEN 1 AND 9", &r), Value::Null);
    // Text, bytes and timestamps.
    let r = row(None, None, Some(5));
    assert_eq!(eval("merchant IN ('a', 'shop')", &r), Value::Bool(true));
    assert_eq!(eval("merchant BETWEEN 's' AND 'sz'", &r), Value::Bool(true));
    assert_eq!(eval("blob = X'0102'", &r), Value::Bool(true));
    assert_eq!(eval("blob < X'0103'", &r), Value::Bool(true));
    assert_eq!(eval("ts BETWEEN 999 AND 1000", &r), Value::Bool(true));
    assert_eq!(
        eval("ts < TIMESTAMP '1970-01-01T00:00:00.001001Z'", &r),
        Value::Bool(true)
    );
}

#[test]
fn arithmetic() {
    let r = row(None, None, Some(i64::MAX));
    assert_eq!(eval("n + 1", &r), Value::Null);
    assert_eq!(eval("n - 1", &r), Value::Int(i64::MAX - 1));
    assert_eq!(eval("n * 2", &r), Value::Null);
    assert_eq!(eval("n / 0", &r), Value::Null);
    assert_eq!(eval("n / 2", &r), Value::Int(i64::MAX / 2));
    assert_eq!(eval("n + 1.0", &r), Value::Double(i64::MAX as f64 + 1.0));
    let r = row(None, None, Some(i64::MIN));
    assert_eq!(eval("n / -1", &r), Value::Null);
    assert_eq!(eval("n - 1", &r), Value::Null);
    assert_eq!(eval("-1 * n", &r), Value::Null);
    let r = row(None, None, Some(-7));
    assert_eq!(eval("n / 2", &r), Value::Int(-3)); // truncates toward zero
    assert_eq!(eval("n * 3 - 1", &r), Value::Int(-22));
    assert_eq!(eval("n + amount", &r), Value::Double(-4.5));
    assert_eq!(eval("amount / 0", &r), Value::Null);
    assert_eq!(eval("amount / 0.0", &r), Value::Null);
    assert_eq!(eval("amount * 1e308 * 10", &r), Value::Null);
    assert_eq!(eval("amount * 2", &r), Value::Double(5.0));
    // A NULL arithmetic result makes the comparison unknown.
    let r = row(None, None, Some(i64::MAX));
    assert_eq!(eval("n + 1 > 0", &r), Value::Null);
    assert!(!cond("n + 1 > 0").matches(&r));
    assert!(cond("(n + 1) IS NULL").matches(&r));
}

#[test]
fn mixed_numeric_comparison_is_exact() {
    let two53 = 1_i64 << 53;
    let r = row(None, None, Some(two53 + 1));
    // 2^53 + 1 is not representable: as a double it would equal 2^53.
    assert_eq!(eval("n = 9007199254740992.0", &r), Value::Bool(false));
    assert_eq!(eval("n > 9007199254740992.0", &r), Value::Bool(true));
    assert_eq!(eval("9007199254740992.0 < n", &r), Value::Bool(true));
    let r = row(None, None, Some(i64::MAX));
    assert_eq!(eval("n < 9223372036854775808.0", &r), Value::Bool(true));
    assert_eq!(eval("n = 9223372036854775807.0", &r), Value::Bool(false));
    let r = row(None, None, Some(i64::MIN));
    assert_eq!(eval("n = -9223372036854775808.0", &r), Value::Bool(true));
    assert_eq!(eval("n > -1e300", &r), Value::Bool(true));
    let r = row(None, None, Some(-2));
    assert_eq!(eval("n < -1.5", &r), Value::Bool(true));
    assert_eq!(eval("n > -2.5", &r), Value::Bool(true));
    assert_eq!(eval("n = -2.0", &r), Value::Bool(true));
    assert_eq!(eval("n <= -2.0 AND n >= -2.0", &r), Value::Bool(true));
    assert_eq!(eval("amount > n", &r), Value::Bool(true));
    assert_eq!(eval("amount = 2.5", &r), Value::Bool(true));
    assert_eq!(eval("-0.0 = 0.0", &r), Value::Bool(true));
}

#[test]
fn eval_is_total() {
    let exprs = [
        cond("n + 1 > 0 AND merchant = 'x' OR flag"),
        cond("ts BETWEEN 1 AND 2 OR blob IN (X'00', NULL)"),
        cond("NOT (amount / n > 1)"),
        Expr::Cmp(
            CmpOp::Eq,
            Box::new(Expr::Column(1000)),
            Box::new(Expr::Literal(Value::Int(1))),
        ),
        Expr::Arith(
            ArithOp::Div,
            Box::new(Expr::Literal(Value::Text("x".into()))),
            Box::new(Expr::Literal(Value::Double(f64::NAN))),
        ),
        Expr::And(
            Box::new(Expr::Literal(Value::Int(1))),
            Box::new(Expr::Column(3)),
        ),
    ];
    let odd_rows: Vec<Vec<Value>> = vec![
        vec![],
        row(Some(true), None, Some(0)),
        vec![Value::Text("wrong".into()); 10],
        vec![Value::Double(f64::NAN); 10],
        vec![Value::Null; 10],
    ];
    for e in &exprs {
        for r in &odd_rows {
            let v = e.eval(r);
            assert!(matches!(
                v,
                Value::Null | Value::Bool(_) | Value::Int(_) | Value::Double(_)
            ));
            let _ = e.matches(r);
        }
    }
    // NaN compares as unknown.
    let e = cond("amount = amount");
    assert!(!e.matches(&vec![Value::Double(f64::NAN); 10]));
    assert!(e.matches(&row(None, None, None)));
}

// ---------------------------------------------------------------------------------------------
// DROP and SELECT.

#[test]
fn drop_materialized_view() {
    let stmts =
        parse("DROP MATERIALIZED VIEW card_10m; DROP MATERIALIZED VIEW IF EXISTS \"V\"").unwrap();
    assert_eq!(
        stmts,
        vec![
            Statement::DropView {
                name: "card_10m".into(),
                if_exists: false
            },
            Statement::DropView {
                name: "V".into(),
                if_exists: true
            },
        ]
    );
    assert!(stmts[0].is_ddl());
    unsupported("DROP MATERIALIZED VIEW a, b", &["one per statement"]);
    unsupported("DROP MATERIALIZED VIEW a CASCADE", &["CASCADE"]);
    unsupported("DROP VIEW v", &["DROP VIEW"]);
}

fn select(sql: &str) -> Statement {
    let mut s = parse(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    assert_eq!(s.len(), 1);
    s.remove(0)
}

#[test]
fn select_forms() {
    assert_eq!(
        select("SELECT * FROM card_10m WHERE card_id = 'c1'"),
        Statement::SelectFeatures {
            view: "card_10m".into(),
            columns: None,
            key_column: "card_id".into(),
            keys: vec![Value::Text("c1".into())],
        }
    );
    assert_eq!(
        select("select Txns, \"Spend\" from Card_10m where (CARD_ID in ('c1', 'c2'))"),
        Statement::SelectFeatures {
            view: "card_10m".into(),
            columns: Some(vec!["txns".into(), "Spend".into()]),
            key_column: "card_id".into(),
            keys: vec![Value::Text("c1".into()), Value::Text("c2".into())],
        }
    );
    assert_eq!(
        select("SELECT * FROM v WHERE 42 = k"),
        Statement::SelectFeatures {
            view: "v".into(),
            columns: None,
            key_column: "k".into(),
            keys: vec![Value::Int(42)],
        }
    );
    let Statement::SelectFeatures { keys, .. } = select(
        "SELECT * FROM v WHERE k IN (-1, TRUE, X'ff', TIMESTAMP '1970-01-01T00:00:01Z', 1.5)",
    ) else {
        panic!()
    };
    assert_eq!(
        keys,
        vec![
            Value::Int(-1),
            Value::Bool(true),
            Value::Bytes(vec![255]),
            Value::Timestamp(1_000_000),
            Value::Double(1.5)
        ]
    );
    assert!(!select("SELECT * FROM v WHERE k = 1").is_ddl());
}

#[test]
fn select_rejections() {
    let form = "WHERE <key> = <literal> or WHERE <key> IN (<literal>, …)";
    for (sql, needle) in [
        ("SELECT * FROM v", "without WHERE"),
        ("SELECT * FROM v WHERE k > 1", "WHERE `k > 1`"),
        (
            "SELECT * FROM v WHERE k = 1 AND j = 2",
            "WHERE `k = 1 AND j = 2`",
        ),
        ("SELECT * FROM v WHERE k = j", "WHERE `k = j`"),
        ("SELECT * FROM v WHERE k NOT IN (1)", "NOT IN"),
        ("SELECT * FROM v WHERE k IN (1, j)", "key `j`"),
        ("SELECT * FROM v WHERE k = 1 ORDER BY k", "ORDER BY"),
        ("SELECT * FROM v WHERE k = 1 LIMIT 1", "LIMIT"),
        ("SELECT * FROM v JOIN w ON true WHERE k = 1", "JOIN"),
        ("SELECT * FROM v, w WHERE k = 1", "several FROM items"),
        (
            "SELECT count(*) FROM v WHERE k = 1",
            "select item `count(*)`",
        ),
        ("SELECT a AS b FROM v WHERE k = 1", "select item `a AS b`"),
        ("SELECT a + 1 FROM v WHERE k = 1", "select item `a + 1`"),
        ("SELECT *, a FROM v WHERE k = 1", "select item `*`"),
        ("SELECT DISTINCT * FROM v WHERE k = 1", "DISTINCT"),
        ("SELECT * FROM v WHERE k = 1 GROUP BY k", "GROUP BY"),
        ("SELECT 1", "without FROM"),
        ("SELECT * FROM (SELECT 1) WHERE k = 1", "FROM `(SELECT 1)`"),
        (
            "SELECT * FROM v WHERE k = 1 UNION SELECT * FROM v WHERE k = 2",
            "UNION",
        ),
    ] {
        let e = parse(sql).expect_err(sql);
        assert_eq!(e.kind(), ErrorKind::Unsupported, "{sql}: {e}");
        let msg = e.to_string();
        assert!(msg.contains(needle), "{sql}: `{msg}` lacks `{needle}`");
        assert!(msg.contains(form), "{sql}: `{msg}` lacks the read form");
        assert!(msg.contains("statement `"), "{sql}: `{msg}`");
    }
    assert_eq!(
        parse("SELECT a, b, a FROM v WHERE k = 1").unwrap_err(),
        CoreError::DuplicateColumn { column: "a".into() }
    );
    assert_eq!(
        parse("SELECT * FROM v WHERE k IN ('a', NULL)").unwrap_err(),
        CoreError::NullKey {
            row: Some(1),
            column: Some("k".into())
        }
    );
    assert_eq!(
        parse("SELECT * FROM v WHERE k = 99999999999999999999")
            .unwrap_err()
            .kind(),
        ErrorKind::Unsupported
    );
}
