//! Lowering and planning of kNN SELECTs: every accepted form and every refusal.

use tarn_vectors::Metric;

use super::{KnnItem, KnnOutput, KnnSelect, VectorLiteral};
use crate::error::ErrorKind;
use crate::expr::{CmpOp, Expr};
use crate::sql::{parse, Statement};
use crate::tests::catalog_with;
use crate::vector::Component;
use crate::CoreError;

fn knn(sql: &str) -> KnnSelect {
    match parse(sql)
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .remove(0)
    {
        Statement::SelectKnn(q) => *q,
        other => panic!("{sql}: {other:?}"),
    }
}

fn refused(sql: &str) -> CoreError {
    parse(sql).expect_err(sql)
}

/// Refused as `kind`, the message containing `needle`.
fn assert_refused(sql: &str, kind: ErrorKind, needle: &str) {
    let e = refused(sql);
    assert_eq!(e.kind(), kind, "{sql}: {e}");
    assert!(
        e.to_string().contains(needle),
        "{sql}: {e} lacks {needle:?}"
    );
}

#[test]
fn each_operator_is_its_metric() {
    for (op, metric) in [
        ("<->", Metric::L2),
        ("<=>", Metric::Cosine),
        ("<#>", Metric::InnerProduct),
    ] {
        let q = knn(&format!(
            "SELECT id FROM items ORDER BY emb {op} '[1, 2, 3]' LIMIT 5"
        ));
        assert_eq!(q.order.metric, metric, "{op}");
        assert_eq!(q.order.column, "emb");
        assert_eq!(q.order.vector, VectorLiteral::Text("[1, 2, 3]".into()));
        assert_eq!(q.order.cast_dim, None);
        assert_eq!(q.limit, 5);
        assert_eq!(q.table, "items");
        assert_eq!(q.items, vec![KnnItem::Column("id".into())]);
        assert_eq!(q.filter, None);
        // Without spaces the tokenizer still sees one operator.
        let tight = knn(&format!(
            "SELECT id FROM items ORDER BY emb{op}'[1,2,3]' LIMIT 5"
        ));
        assert_eq!(tight.order.metric, metric, "{op}");
    }
}

#[test]
fn vector_literals_casts_and_sides() {
    let array = knn("SELECT * FROM t ORDER BY emb <-> ARRAY[1, -2.5, +3] LIMIT 1");
    assert_eq!(
        array.order.vector,
        VectorLiteral::Array(vec![
            Component::Number(1.0),
            Component::Number(-2.5),
            Component::Number(3.0)
        ])
    );
    assert_eq!(array.items, vec![KnnItem::Star]);
    let cast = knn("SELECT * FROM t ORDER BY emb <-> '[1,2]'::vector LIMIT 1");
    assert_eq!(cast.order.vector, VectorLiteral::Text("[1,2]".into()));
    assert_eq!(cast.order.cast_dim, None);
    let cast_n = knn("SELECT * FROM t ORDER BY emb <-> '[1,2]'::vector(2) LIMIT 1");
    assert_eq!(cast_n.order.cast_dim, Some(2));
    let cast_fn = knn("SELECT * FROM t ORDER BY emb <=> CAST('[1,2]' AS VECTOR) LIMIT 1");
    assert_eq!(cast_fn.order.vector, VectorLiteral::Text("[1,2]".into()));
    let array_cast = knn("SELECT * FROM t ORDER BY emb <#> ARRAY[1,2]::vector LIMIT 1");
    assert!(matches!(array_cast.order.vector, VectorLiteral::Array(_)));
    // The vector on the left: every metric is symmetric.
    let left = knn("SELECT * FROM t ORDER BY '[1,2]' <-> emb ASC LIMIT 1");
    assert_eq!(left.order.column, "emb");
    // Parentheses around the distance or its sides change nothing.
    let nested = knn("SELECT * FROM t ORDER BY ((emb) <=> ('[1,2]')) LIMIT 1");
    assert_eq!(nested.order.column, "emb");
    assert_eq!(nested.order.metric, Metric::Cosine);
    assert_eq!(nested.order.vector, VectorLiteral::Text("[1,2]".into()));
}

#[test]
fn select_list_where_and_aliases() {
    let q = knn("SELECT id, emb <=> '[1,2]' AS d, tag FROM t WHERE grp < 3 \
         ORDER BY emb <=> '[1,2]' LIMIT 10");
    assert_eq!(
        q.items,
        vec![
            KnnItem::Column("id".into()),
            KnnItem::Distance("d".into()),
            KnnItem::Column("tag".into()),
        ]
    );
    assert_eq!(
        q.filter,
        Some(Expr::Cmp(
            CmpOp::Lt,
            Box::new(Expr::Column("grp".into())),
            Box::new(Expr::Literal(tarn_types::Value::Int(3)))
        ))
    );
    let q = knn("SELECT *, emb <-> '[1,2]' FROM t ORDER BY emb <-> '[1,2]' LIMIT 1");
    assert_eq!(
        q.items,
        vec![KnnItem::Star, KnnItem::Distance("distance".into())]
    );
    // `x <-1` in a WHERE stays a comparison with -1 (the tokenizer needs `<->`).
    let q = knn("SELECT id FROM t WHERE grp <-1 ORDER BY emb <-> '[1,2]' LIMIT 1");
    assert!(matches!(q.filter, Some(Expr::Cmp(CmpOp::Lt, _, _))));
}

#[test]
fn order_by_and_limit_refusals() {
    use ErrorKind::*;
    let cases: &[(&str, ErrorKind, &str)] = &[
        (
            "SELECT id FROM t ORDER BY emb <-> '[1]' DESC LIMIT 3",
            Unsupported,
            "DESC",
        ),
        (
            "SELECT id FROM t ORDER BY emb <-> '[1]'",
            InvalidArgument,
            "needs LIMIT",
        ),
        (
            "SELECT id FROM t ORDER BY emb <-> '[1]' LIMIT ALL",
            InvalidArgument,
            "needs LIMIT",
        ),
        (
            "SELECT id FROM t ORDER BY emb <-> '[1]' LIMIT 3 OFFSET 1",
            Unsupported,
            "OFFSET",
        ),
        (
            "SELECT id FROM t ORDER BY emb <-> '[1]' FETCH FIRST 3 ROWS ONLY",
            Unsupported,
            "FETCH",
        ),
        (
            "SELECT id FROM t ORDER BY emb <-> '[1]' LIMIT -1",
            InvalidArgument,
            "at least 1",
        ),
        (
            "SELECT id FROM t ORDER BY emb <-> '[1]' LIMIT 'x'",
            Unsupported,
            "integer literal",
        ),
        (
            "SELECT id FROM t ORDER BY emb <-> '[1]' LIMIT 2.5",
            Unsupported,
            "integer literal",
        ),
        (
            "SELECT id FROM t ORDER BY emb <-> '[1]' LIMIT 99999999999999999999999",
            LimitExceeded,
            "the limit is 1000",
        ),
        (
            "SELECT id FROM t ORDER BY emb <-> '[1]', id LIMIT 3",
            Unsupported,
            "2 items",
        ),
        (
            "SELECT id FROM t ORDER BY emb <-> '[1]' NULLS FIRST LIMIT 3",
            Unsupported,
            "NULLS",
        ),
        (
            "SELECT id, emb <-> '[1]' FROM t ORDER BY id LIMIT 3",
            Unsupported,
            "order by a distance",
        ),
        (
            "SELECT id, emb <-> '[1]' FROM t LIMIT 3",
            Unsupported,
            "without ORDER BY",
        ),
        (
            "SELECT id FROM t ORDER BY emb <-> other LIMIT 3",
            Unsupported,
            "vector `other`",
        ),
        (
            "SELECT id FROM t ORDER BY emb <-> 5 LIMIT 3",
            Unsupported,
            "vector `5`",
        ),
        (
            "SELECT id FROM t ORDER BY emb <-> '[1]'::text LIMIT 3",
            Unsupported,
            "vector `'[1]'::TEXT`",
        ),
        (
            "SELECT id FROM t ORDER BY (emb + 1) <-> '[1]' LIMIT 3",
            Unsupported,
            "one side names",
        ),
    ];
    for &(sql, kind, needle) in cases {
        assert_refused(sql, kind, needle);
    }
}

#[test]
fn select_list_and_clause_refusals() {
    use ErrorKind::*;
    let order = "ORDER BY emb <-> '[1,2]' LIMIT 3";
    let cases: &[(&str, ErrorKind, &str)] = &[
        (
            "SELECT id, emb <=> '[1,2]' FROM t",
            Unsupported,
            "ORDER BY distance only",
        ),
        (
            "SELECT id, other <-> '[1,2]' FROM t",
            Unsupported,
            "ORDER BY distance only",
        ),
        (
            "SELECT id, emb <-> '[1,3]' FROM t",
            Unsupported,
            "vector differs",
        ),
        (
            "SELECT id, emb <-> '[1,2]'::vector(2) FROM t",
            Unsupported,
            "vector differs",
        ),
        ("SELECT id AS x FROM t", Unsupported, "select item"),
        ("SELECT id + 1 FROM t", Unsupported, "select item"),
        ("SELECT count(*) FROM t", Unsupported, "select item"),
        ("SELECT DISTINCT id FROM t", Unsupported, "DISTINCT"),
        ("SELECT id FROM t GROUP BY id", Unsupported, "GROUP BY"),
        ("SELECT id FROM t, u", Unsupported, "several FROM"),
        (
            "SELECT id FROM t JOIN u ON t.id = u.id",
            Unsupported,
            "JOIN",
        ),
        ("SELECT id FROM t AS x", Unsupported, "alias"),
        (
            "SELECT id FROM t WHERE lower(tag) = 'a'",
            Unsupported,
            "function call",
        ),
        (
            "SELECT id FROM t WHERE emb <-> '[1,2]' < 1",
            Unsupported,
            "operator `<->`",
        ),
    ];
    for &(head, kind, needle) in cases {
        assert_refused(&format!("{head} {order}"), kind, needle);
    }
    assert_refused(
        &format!("WITH x AS (SELECT 1) SELECT id FROM t {order}"),
        Unsupported,
        "WITH",
    );
    // Refusals quote the statement and give the accepted form.
    let e = refused(&format!("SELECT DISTINCT id FROM t {order}")).to_string();
    assert!(e.contains("statement `SELECT DISTINCT id FROM t"), "{e}");
    assert!(e.contains("ORDER BY col <op> <vector> LIMIT k"), "{e}");
}

#[test]
fn reads_by_key_are_unchanged() {
    let s = parse("SELECT * FROM t WHERE id = 1").unwrap().remove(0);
    assert!(matches!(s, Statement::SelectFeatures { .. }), "{s:?}");
    let e = refused("SELECT * FROM t WHERE id = 1 ORDER BY id LIMIT 3");
    assert_eq!(e.kind(), ErrorKind::Unsupported);
    assert!(e.to_string().contains("ORDER BY in a SELECT"), "{e}");
}

const ITEMS: &str =
    "CREATE TABLE items (id BIGINT PRIMARY KEY, emb VECTOR(3), grp BIGINT, tag TEXT)";

fn items_with(indexes: &[&str]) -> crate::catalog::Catalog {
    let mut sqls = vec![ITEMS];
    sqls.extend_from_slice(indexes);
    catalog_with(&sqls)
}

#[test]
fn the_index_is_the_one_of_the_column_and_metric() {
    let cat = items_with(&[
        "CREATE INDEX by_l2 ON items USING hnsw (emb)",
        "CREATE INDEX by_cos ON items USING hnsw (emb) WITH (metric = 'cosine')",
        "CREATE INDEX by_ip ON items USING hnsw (emb vector_ip_ops)",
        "CREATE INDEX by_l2_again ON items USING hnsw (emb) WITH (m = 8)",
    ]);
    for (op, name) in [("<->", "by_l2"), ("<=>", "by_cos"), ("<#>", "by_ip")] {
        let q = knn(&format!(
            "SELECT id FROM items ORDER BY emb {op} '[1, 2, 3]' LIMIT 4"
        ));
        let plan = q.plan(&cat).unwrap();
        assert_eq!(plan.index.name, name, "{op}");
        assert_eq!(plan.vector, vec![1.0, 2.0, 3.0]);
        assert_eq!(plan.k, 4);
        assert_eq!(plan.table.name, "items");
    }
}

#[test]
fn no_index_for_the_metric_says_which_to_create() {
    let cat = items_with(&["CREATE INDEX by_l2 ON items USING hnsw (emb)"]);
    let q = knn("SELECT id FROM items ORDER BY emb <=> '[1,2,3]' LIMIT 4");
    let e = q.plan(&cat).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");
    let m = e.to_string();
    assert!(
        m.contains("no hnsw index on items.emb with metric cosine"),
        "{m}"
    );
    assert!(m.contains("by_l2 has metric l2 (operator <->)"), "{m}");
    assert!(
        m.contains("CREATE INDEX <name> ON items USING hnsw (emb) WITH (metric = 'cosine')"),
        "{m}"
    );
    let bare = items_with(&[]);
    let e = q.plan(&bare).unwrap_err();
    assert!(
        e.to_string().contains("metric cosine (needed by <=>);"),
        "{e}"
    );
}

#[test]
fn plan_refusals() {
    let cat = items_with(&["CREATE INDEX by_l2 ON items USING hnsw (emb)"]);
    let plan_err = |sql: &str| knn(sql).plan(&cat).unwrap_err();
    let cases: &[(&str, ErrorKind, &str)] = &[
        ("SELECT id FROM nope ORDER BY emb <-> '[1,2,3]' LIMIT 1", ErrorKind::UnknownTable, "nope"),
        ("SELECT id FROM items ORDER BY nope <-> '[1,2,3]' LIMIT 1", ErrorKind::UnknownColumn, "nope"),
        ("SELECT id FROM items ORDER BY grp <-> '[1,2,3]' LIMIT 1", ErrorKind::TypeMismatch, "expected VECTOR"),
        ("SELECT id FROM items ORDER BY emb <-> '[1,2]' LIMIT 1", ErrorKind::BadVector, "2 dimensions, expected 3"),
        ("SELECT id FROM items ORDER BY emb <-> '1,2,3' LIMIT 1", ErrorKind::BadVector, "query vector"),
        ("SELECT id FROM items ORDER BY emb <-> '[1,NaN,3]' LIMIT 1", ErrorKind::BadVector, "NaN"),
        ("SELECT id FROM items ORDER BY emb <-> ARRAY[1,'x',3] LIMIT 1", ErrorKind::BadVector, "a string"),
        ("SELECT id FROM items ORDER BY emb <-> '[1,2,3]'::vector(4) LIMIT 1", ErrorKind::BadVector, "vector(4)"),
        ("SELECT nope FROM items ORDER BY emb <-> '[1,2,3]' LIMIT 1", ErrorKind::UnknownColumn, "nope"),
        ("SELECT id, id FROM items ORDER BY emb <-> '[1,2,3]' LIMIT 1", ErrorKind::DuplicateColumn, "id"),
        ("SELECT *, tag FROM items ORDER BY emb <-> '[1,2,3]' LIMIT 1", ErrorKind::DuplicateColumn, "tag"),
        (
            "SELECT tag, emb <-> '[1,2,3]' AS tag FROM items ORDER BY emb <-> '[1,2,3]' LIMIT 1",
            ErrorKind::DuplicateColumn,
            "tag",
        ),
        (
            "SELECT emb <-> '[1,2,3]', emb <-> '[1,2,3]' FROM items ORDER BY emb <-> '[1,2,3]' LIMIT 1",
            ErrorKind::DuplicateColumn,
            "distance",
        ),
    ];
    for &(sql, kind, needle) in cases {
        let e = plan_err(sql);
        assert_eq!(e.kind(), kind, "{sql}: {e}");
        assert!(
            e.to_string().contains(needle),
            "{sql}: {e} lacks {needle:?}"
        );
    }
    let e = plan_err("SELECT id FROM items ORDER BY emb <-> '[1,2]' LIMIT 1");
    assert_eq!(e.column(), Some("emb"));
    // A stream's name is not a table's.
    let with_stream = catalog_with(&[
        ITEMS,
        "CREATE STREAM ev (ts TIMESTAMP, k TEXT, emb VECTOR(3)) WITH (event_time = 'ts')",
    ]);
    let e = knn("SELECT * FROM ev ORDER BY emb <-> '[1,2,3]' LIMIT 1")
        .plan(&with_stream)
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::UnknownTable, "{e}");
    assert!(
        e.to_string().contains("\"ev\" is a stream, not a table"),
        "{e}"
    );
}

#[test]
fn plan_lays_out_columns_in_select_order() {
    let cat = items_with(&["CREATE INDEX by_l2 ON items USING hnsw (emb)"]);
    let plan_of = |sql: &str| {
        let q = knn(sql);
        let p = q.plan(&cat).unwrap();
        (p.columns, p.outputs)
    };
    let (cols, outs) = plan_of(
        "SELECT tag, emb <-> '[1,2,3]' AS d, id FROM items ORDER BY emb <-> '[1,2,3]' LIMIT 2",
    );
    assert_eq!(cols, vec!["tag".to_string(), "id".to_string()]);
    assert_eq!(
        outs,
        vec![
            KnnOutput::Column(0),
            KnnOutput::Distance("d".into()),
            KnnOutput::Column(1)
        ]
    );
    let (cols, outs) =
        plan_of("SELECT emb <-> '[1,2,3]', * FROM items ORDER BY emb <-> '[1,2,3]' LIMIT 2");
    assert_eq!(cols, vec!["id", "emb", "grp", "tag"]);
    assert_eq!(outs[0], KnnOutput::Distance("distance".into()));
    assert_eq!(outs[4], KnnOutput::Column(3));
    // Only the distance: no table column is fetched.
    let (cols, outs) =
        plan_of("SELECT emb <-> '[1,2,3]' AS d FROM items ORDER BY emb <-> '[1,2,3]' LIMIT 2");
    assert!(cols.is_empty());
    assert_eq!(outs, vec![KnnOutput::Distance("d".into())]);
    // LIMIT 0 plans; the search refuses it, as the opcode refuses k = 0.
    let q = knn("SELECT id FROM items ORDER BY emb <-> '[1,2,3]' LIMIT 0");
    assert_eq!(q.plan(&cat).unwrap().k, 0);
}
