//! Vector index DDL: `CREATE INDEX … USING hnsw`, `DROP INDEX`, `SHOW INDEXES`, `DESCRIBE`
//! of an index, the catalog file's `indexes`, and `parse_condition`.

use tarn_vectors::{HnswParams, Metric};

use crate::catalog::{Catalog, ObjectKind};
use crate::expr::print::to_sql;
use crate::index_def::{IndexSpec, MAX_INDEXES_PER_TABLE};
use crate::listing;
use crate::sql::{parse, parse_condition, Statement};
use crate::{CoreError, ErrorKind};

use super::catalog_with;

const DOCS: &str =
    "CREATE TABLE docs (id BIGINT PRIMARY KEY, emb VECTOR(4), title TEXT, img VECTOR(2))";
const TX: &str = "CREATE STREAM tx (ts TIMESTAMP, k TEXT) WITH (event_time = 'ts')";
const VIEW: &str = "CREATE MATERIALIZED VIEW per_k WITH (window = 'lifetime') AS \
                    SELECT k, count(*) FROM tx GROUP BY k";

fn spec_of(sql: &str) -> (IndexSpec, bool) {
    match parse(sql)
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .remove(0)
    {
        Statement::CreateIndex {
            spec,
            if_not_exists,
        } => (spec, if_not_exists),
        other => panic!("not a CREATE INDEX: {other:?}"),
    }
}

fn parse_err(sql: &str) -> CoreError {
    parse(sql).expect_err(sql)
}

fn run(cat: &Catalog, sql: &str) -> Result<(Catalog, String), CoreError> {
    cat.apply_ddl(&parse(sql).unwrap_or_else(|e| panic!("{sql}: {e}"))[0])
}

fn params(m: usize, ef_construction: usize, ef_search: usize) -> HnswParams {
    HnswParams {
        m,
        ef_construction,
        ef_search,
        seed: 0,
    }
}

#[test]
fn create_index_parses_with_defaults_and_every_option() {
    let (spec, ine) = spec_of("CREATE INDEX docs_emb ON docs USING hnsw (emb)");
    assert_eq!(
        spec,
        IndexSpec {
            name: "docs_emb".into(),
            table: "docs".into(),
            column: "emb".into(),
            metric: Metric::L2,
            params: HnswParams::default(),
        }
    );
    assert!(!ine);
    assert!(parse("CREATE INDEX i ON docs USING hnsw (emb)").unwrap()[0].is_ddl());

    let (spec, ine) = spec_of(
        "create index if not exists \"My Idx\" on Docs using HNSW (Emb) \
         with (metric = 'COSINE', m = 32, ef_construction = 200, ef_search = 100)",
    );
    assert!(ine);
    assert_eq!(
        (
            spec.name.as_str(),
            spec.table.as_str(),
            spec.column.as_str()
        ),
        ("My Idx", "docs", "emb")
    );
    assert_eq!(
        (spec.metric, spec.params),
        (Metric::Cosine, params(32, 200, 100))
    );

    // The operator class gives the metric; the same metric again in WITH is fine.
    for (opclass, metric) in [
        ("vector_l2_ops", Metric::L2),
        ("vector_cosine_ops", Metric::Cosine),
        ("VECTOR_IP_OPS", Metric::InnerProduct),
    ] {
        let sql = format!("CREATE INDEX i ON docs USING hnsw (emb {opclass})");
        assert_eq!(spec_of(&sql).0.metric, metric, "{sql}");
        let sql = format!(
            "CREATE INDEX i ON docs USING hnsw (emb {opclass}) WITH (metric = '{}')",
            metric.name()
        );
        assert_eq!(spec_of(&sql).0.metric, metric, "{sql}");
    }
    // `ip` by its short name, a bare word; USING omitted means hnsw; CONCURRENTLY is a no-op.
    let (spec, _) = spec_of("CREATE INDEX i ON docs (emb) WITH (metric = ip, m = 2)");
    assert_eq!(
        (spec.metric, spec.params),
        (Metric::InnerProduct, params(2, 64, 40))
    );
    let (spec, _) = spec_of("CREATE INDEX CONCURRENTLY i ON docs USING hnsw (emb)");
    assert_eq!(spec.params, HnswParams::default());
    // Range ends are accepted.
    let (spec, _) = spec_of(
        "CREATE INDEX i ON docs USING hnsw (emb) WITH (m = 100, ef_construction = 1000, ef_search = 1)",
    );
    assert_eq!(spec.params, params(100, 1000, 1));
}

#[test]
fn create_index_refuses_what_it_does_not_support() {
    let unsupported = [
        ("CREATE UNIQUE INDEX i ON docs USING hnsw (emb)", "UNIQUE"),
        (
            "CREATE INDEX i ON docs USING hnsw (emb) WHERE id > 3",
            "partial indexes",
        ),
        (
            "CREATE INDEX i ON docs USING hnsw (emb) INCLUDE (title)",
            "INCLUDE",
        ),
        (
            "CREATE INDEX i ON docs USING hnsw (emb) NULLS NOT DISTINCT",
            "NULLS",
        ),
        (
            "CREATE INDEX i ON docs USING hnsw (emb, img)",
            "over 2 columns",
        ),
        (
            "CREATE INDEX i ON docs USING hnsw ((emb))",
            "expression `(emb)`",
        ),
        (
            "CREATE INDEX i ON docs USING hnsw (lower(title))",
            "expression `lower(title)`",
        ),
        ("CREATE INDEX i ON docs USING hnsw (emb DESC)", "no order"),
        (
            "CREATE INDEX i ON docs USING btree (emb)",
            "index method btree for index i (only hnsw exists",
        ),
        (
            "CREATE INDEX i ON docs USING ivfflat (emb)",
            "index method ivfflat",
        ),
        ("CREATE INDEX ON docs USING hnsw (emb)", "without a name"),
        (
            "CREATE INDEX i ON docs USING hnsw (emb) WITH (lists = 100)",
            "index option lists for index i (supported: metric, m, ef_construction, ef_search)",
        ),
        (
            "CREATE INDEX i ON docs USING hnsw (emb) WITH (m = 8, m = 8)",
            "option m given twice",
        ),
        (
            "CREATE INDEX i ON docs USING hnsw (emb) WITH (m > 8)",
            "write name = value",
        ),
        (
            "CREATE INDEX s.i ON docs USING hnsw (emb)",
            "qualified index name",
        ),
        (
            "CREATE INDEX i ON s.docs USING hnsw (emb)",
            "qualified table name",
        ),
    ];
    for (sql, needle) in unsupported {
        let e = parse_err(sql);
        assert_eq!(e.kind(), ErrorKind::Unsupported, "{sql}: {e}");
        assert!(e.to_string().contains(needle), "{sql}: {e}");
    }
}

#[test]
fn create_index_option_values_are_checked() {
    let invalid = [
        (
            "WITH (metric = 'hamming')",
            "unknown vector metric `hamming`: expected l2, cosine or ip",
        ),
        ("WITH (m = 1)", "m = 1 is out of range: must be 2..=100"),
        ("WITH (m = 101)", "m = 101 is out of range: must be 2..=100"),
        (
            "WITH (ef_construction = 3)",
            "ef_construction = 3 is out of range: must be 4..=1000",
        ),
        (
            "WITH (ef_search = 0)",
            "ef_search = 0 is out of range: must be 1..=1000",
        ),
        (
            "WITH (ef_search = 99999999999999999999999)",
            "ef_search = 99999999999999999999999 is out of range: must be 1..=1000",
        ),
        (
            "WITH (m = 64, ef_construction = 32)",
            "ef_construction = 32 is smaller than m = 64",
        ),
        (
            "WITH (m = '16')",
            "index option m = '16' must be an integer",
        ),
        ("WITH (m = 1.5)", "must be an integer"),
        ("WITH (m = -2)", "must be an integer"),
        ("WITH (m = true)", "must be an integer"),
        ("WITH (metric = 3)", "metric = 3 must be a string"),
    ];
    for (with, needle) in invalid {
        let sql = format!("CREATE INDEX i ON docs USING hnsw (emb) {with}");
        let e = parse_err(&sql);
        assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{sql}: {e}");
        assert!(e.to_string().contains(needle), "{sql}: {e}");
    }
    let e =
        parse_err("CREATE INDEX i ON docs USING hnsw (emb vector_cosine_ops) WITH (metric = 'l2')");
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    assert!(
        e.to_string().contains(
            "operator class vector_cosine_ops means metric cosine, but WITH says metric = 'l2'"
        ),
        "{e}"
    );
    let e = parse_err("CREATE INDEX i ON docs USING hnsw (emb vector_hamming_ops)");
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    assert!(
        e.to_string()
            .contains("unknown operator class vector_hamming_ops"),
        "{e}"
    );
}

#[test]
fn create_index_resolves_against_the_catalog() {
    let c0 = catalog_with(&[DOCS]);
    let (c1, msg) = run(
        &c0,
        "CREATE INDEX docs_emb ON docs USING hnsw (emb vector_ip_ops)",
    )
    .unwrap();
    assert_eq!(msg, "CREATE INDEX docs_emb");
    assert_eq!((c1.version, c1.next_table_id), (c0.version + 1, 3));
    let def = c1.index("docs_emb").unwrap();
    assert_eq!(
        (def.id, def.table_id, def.column, def.dim, def.metric),
        (2, 1, 1, 4, Metric::InnerProduct)
    );
    assert_eq!(
        def.params,
        HnswParams {
            seed: 2,
            ..HnswParams::default()
        }
    );
    assert_eq!(c1.index_by_id(2), Some(def));
    assert_eq!(c1.object("docs_emb").unwrap().kind(), ObjectKind::Index);
    assert!(c1.table("docs_emb").is_none() && c1.index("docs").is_none());
    assert!(c1.index_by_id(1).is_none(), "id 1 is the table");

    let (c2, _) = run(
        &c1,
        "CREATE INDEX a_img ON docs USING hnsw (img) WITH (m = 4)",
    )
    .unwrap();
    let of_table: Vec<&str> = c2.indexes_of_table(1).map(|i| i.name.as_str()).collect();
    assert_eq!(of_table, ["docs_emb", "a_img"], "id order");
    let all: Vec<&str> = c2.indexes().map(|i| i.name.as_str()).collect();
    assert_eq!(all, ["a_img", "docs_emb"], "name order");
    assert_eq!(c2.index("a_img").unwrap().params.seed, 3);

    // IF NOT EXISTS over an index: skipped, nothing moves (not even the id counter).
    let (same, msg) = run(
        &c2,
        "CREATE INDEX IF NOT EXISTS a_img ON docs USING hnsw (emb)",
    )
    .unwrap();
    assert_eq!(
        (msg.as_str(), &same),
        ("index a_img already exists, skipped", &c2)
    );
    let e = run(&c2, "CREATE INDEX a_img ON docs USING hnsw (emb)").unwrap_err();
    assert_eq!(e, CoreError::exists(ObjectKind::Index, "a_img"));
    assert_eq!(e.to_string(), "index \"a_img\" already exists");
    assert_eq!(e.kind(), ErrorKind::ObjectExists);
    // A table's name, with or without IF NOT EXISTS: the one-namespace error.
    for sql in [
        "CREATE INDEX docs ON docs USING hnsw (emb)",
        "CREATE INDEX IF NOT EXISTS docs ON docs USING hnsw (emb)",
    ] {
        assert_eq!(
            run(&c2, sql).unwrap_err(),
            CoreError::TableExists("docs".into()),
            "{sql}"
        );
    }
    // And a table cannot take an index's name.
    let e = run(&c2, "CREATE TABLE a_img (k BIGINT PRIMARY KEY)").unwrap_err();
    assert_eq!(e.to_string(), "index \"a_img\" already exists");
}

#[test]
fn create_index_errors_name_what_is_wrong() {
    let cat = catalog_with(&[DOCS, TX, VIEW]);
    let e = run(&cat, "CREATE INDEX i ON nope USING hnsw (emb)").unwrap_err();
    assert_eq!(e, CoreError::UnknownTable("nope".into()));
    for (on, kind) in [("tx", "a stream"), ("per_k", "a feature view")] {
        let e = run(&cat, &format!("CREATE INDEX i ON {on} USING hnsw (k)")).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::UnknownTable, "{e}");
        assert_eq!(e.to_string(), format!("\"{on}\" is {kind}, not a table"));
    }
    let e = run(&cat, "CREATE INDEX i ON docs USING hnsw (nope)").unwrap_err();
    assert_eq!(
        e,
        CoreError::UnknownColumn {
            table: "docs".into(),
            column: "nope".into()
        }
    );
    for (col, ty) in [("title", "TEXT"), ("id", "BIGINT")] {
        let e = run(&cat, &format!("CREATE INDEX i ON docs USING hnsw ({col})")).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::TypeMismatch, "{e}");
        assert_eq!(e.column(), Some(col));
        assert_eq!(
            e.to_string(),
            format!("column \"{col}\" of table \"docs\" is {ty}: expected VECTOR (a vector index covers a VECTOR column)")
        );
    }
    // No failed CREATE changed anything: the next index still gets the next id.
    let (c1, _) = run(&cat, "CREATE INDEX i ON docs USING hnsw (emb)").unwrap();
    assert_eq!(c1.index("i").unwrap().id, cat.next_table_id);
}

#[test]
fn indexes_per_table_are_limited() {
    let mut cat = catalog_with(&[
        DOCS,
        "CREATE TABLE other (k BIGINT PRIMARY KEY, e VECTOR(3))",
    ]);
    for i in 0..MAX_INDEXES_PER_TABLE {
        cat = run(&cat, &format!("CREATE INDEX i{i} ON docs USING hnsw (emb)"))
            .unwrap()
            .0;
    }
    let e = run(&cat, "CREATE INDEX one_more ON docs USING hnsw (img)").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::LimitExceeded);
    assert!(
        e.to_string().contains("table docs already has 8 indexes"),
        "{e}"
    );
    // Per table: another table still takes one; a drop frees a place.
    let cat = run(&cat, "CREATE INDEX other_e ON other USING hnsw (e)")
        .unwrap()
        .0;
    let cat = run(&cat, "DROP INDEX i0").unwrap().0;
    let cat = run(&cat, "CREATE INDEX one_more ON docs USING hnsw (img)")
        .unwrap()
        .0;
    assert_eq!(cat.indexes_of_table(1).count(), MAX_INDEXES_PER_TABLE);
}

#[test]
fn drop_index_and_ids_never_reused() {
    let c0 = catalog_with(&[DOCS, TX, "CREATE INDEX i ON docs USING hnsw (emb)"]);
    let old_id = c0.index("i").unwrap().id;
    let (c1, msg) = run(&c0, "DROP INDEX i").unwrap();
    assert_eq!(msg, "DROP INDEX i");
    assert_eq!(c1.version, c0.version + 1);
    assert!(c1.index("i").is_none() && c1.index_by_id(old_id).is_none());
    assert!(c1.table("docs").is_some(), "the table stays");

    let e = run(&c1, "DROP INDEX i").unwrap_err();
    assert_eq!(e, CoreError::UnknownIndex("i".into()));
    assert_eq!(e.kind(), ErrorKind::UnknownIndex);
    assert_eq!(e.to_string(), "unknown index \"i\"");
    let (same, msg) = run(&c1, "DROP INDEX IF EXISTS i").unwrap();
    assert_eq!(
        (msg.as_str(), &same),
        ("index i does not exist, skipped", &c1)
    );

    // The name of another kind: refused naming it (skipped with IF EXISTS, like any absent
    // index); nothing is dropped.
    for (name, kind) in [("docs", "a table"), ("tx", "a stream")] {
        let e = run(&c1, &format!("DROP INDEX {name}")).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::UnknownIndex);
        assert_eq!(e.to_string(), format!("\"{name}\" is {kind}, not an index"));
        let (same, _) = run(&c1, &format!("DROP INDEX IF EXISTS {name}")).unwrap();
        assert_eq!(same, c1);
    }
    let e = run(&c0, "DROP TABLE i").unwrap_err();
    assert_eq!(e, CoreError::UnknownTable("i".into()));

    let (c2, _) = run(&c1, "CREATE INDEX i ON docs USING hnsw (emb)").unwrap();
    let new_id = c2.index("i").unwrap().id;
    assert!(new_id > old_id, "a re-created index gets a new id");
    assert_eq!(c2.index("i").unwrap().params.seed, u64::from(new_id));

    for sql in ["DROP INDEX a, b", "DROP INDEX i CASCADE"] {
        assert_eq!(parse_err(sql).kind(), ErrorKind::Unsupported, "{sql}");
    }
    assert!(parse_err("DROP INDEX a, b")
        .to_string()
        .contains("several indexes"));
    assert_eq!(
        parse("DROP INDEX IF EXISTS \"I\"").unwrap(),
        vec![Statement::DropIndex {
            name: "I".into(),
            if_exists: true
        }]
    );
    assert!(parse("DROP INDEX i").unwrap()[0].is_ddl());
}

#[test]
fn drop_table_drops_its_indexes() {
    let c0 = catalog_with(&[
        DOCS,
        "CREATE TABLE keep (k BIGINT PRIMARY KEY, e VECTOR(2))",
        "CREATE INDEX z_emb ON docs USING hnsw (emb)",
        "CREATE INDEX a_img ON docs USING hnsw (img)",
        "CREATE INDEX keep_e ON keep USING hnsw (e)",
    ]);
    let (c1, msg) = run(&c0, "DROP TABLE docs").unwrap();
    assert_eq!(msg, "DROP TABLE docs (and its indexes z_emb, a_img)");
    assert_eq!(c1.version, c0.version + 1, "one change");
    let left: Vec<&str> = c1.indexes().map(|i| i.name.as_str()).collect();
    assert_eq!(left, ["keep_e"]);
    assert!(c1.object("z_emb").is_none() && c1.object("a_img").is_none());
    // The names are free again, the ids are not handed out again.
    let (c2, _) = run(&c1, "CREATE TABLE z_emb (k BIGINT PRIMARY KEY)").unwrap();
    assert_eq!(c2.table("z_emb").unwrap().id, c0.next_table_id);
    // A table without indexes: the plain message.
    let (_, msg) = run(&c1, "DROP TABLE keep").unwrap();
    assert_eq!(msg, "DROP TABLE keep (and its indexes keep_e)");
    let (c3, _) = run(&c1, "DROP INDEX keep_e").unwrap();
    assert_eq!(run(&c3, "DROP TABLE keep").unwrap().1, "DROP TABLE keep");
}

#[test]
fn show_indexes_and_describe_an_index() {
    let cat = catalog_with(&[
        DOCS,
        "CREATE INDEX docs_emb ON docs USING hnsw (emb)",
        "CREATE INDEX \"Img\" ON docs USING hnsw (img vector_cosine_ops) WITH (m = 8, ef_search = 100)",
    ]);
    assert_eq!(parse("SHOW INDEXES").unwrap(), vec![Statement::ShowIndexes]);
    assert!(!Statement::ShowIndexes.is_ddl());
    let progress = |id: u32| (u64::from(id) * 10, u64::from(id));
    let l = listing::show_indexes(&cat, &progress);
    let names: Vec<(&str, crate::ColumnType)> =
        l.columns.iter().map(|c| (c.name.as_str(), c.ty)).collect();
    use crate::ColumnType::{BigInt, Text};
    assert_eq!(
        names,
        [
            ("name", Text),
            ("table", Text),
            ("column", Text),
            ("method", Text),
            ("metric", Text),
            ("dim", BigInt),
            ("m", BigInt),
            ("ef_construction", BigInt),
            ("ef_search", BigInt),
            ("rows_indexed", BigInt),
            ("rows_pending", BigInt),
        ]
    );
    let t = |s: &str| crate::Value::Text(s.into());
    let i = crate::Value::Int;
    let img = vec![
        t("Img"),
        t("docs"),
        t("img"),
        t("hnsw"),
        t("cosine"),
        i(2),
        i(8),
        i(64),
        i(100),
        i(30),
        i(3),
    ];
    let emb = vec![
        t("docs_emb"),
        t("docs"),
        t("emb"),
        t("hnsw"),
        t("l2"),
        i(4),
        i(16),
        i(64),
        i(40),
        i(20),
        i(2),
    ];
    assert_eq!(l.rows, vec![img.clone(), emb]);
    assert_eq!(l.message, "2 index(es)");
    assert!(listing::show_indexes(&Catalog::new(), &|_| (0, 0))
        .rows
        .is_empty());

    let d = listing::describe(&cat, "Img", &progress).unwrap();
    assert_eq!((d.columns, d.rows), (l.columns.clone(), vec![img]));
    assert_eq!(
        d.message,
        "CREATE INDEX \"Img\" ON docs USING hnsw (img) WITH (metric = 'cosine', m = 8, ef_construction = 64, ef_search = 100)"
    );
    // That statement re-creates the same index.
    let (spec, _) = spec_of(&d.message);
    let def = cat.index("Img").unwrap();
    assert_eq!(
        (spec.metric, spec.params.m, spec.params.ef_search),
        (def.metric, 8, 100)
    );
    // DESCRIBE of the table is unchanged by its indexes.
    let table = listing::describe(&cat, "docs", &progress).unwrap();
    assert_eq!(table, listing::describe_table(cat.table("docs").unwrap()));
}

#[test]
fn catalog_file_round_trips_indexes_and_checks_them() {
    let cat = catalog_with(&[
        DOCS,
        "CREATE INDEX docs_emb ON docs USING hnsw (emb) WITH (metric = 'ip', m = 5, ef_construction = 7)",
        "CREATE INDEX gone ON docs USING hnsw (img)",
        "DROP INDEX gone",
    ]);
    let back = Catalog::from_bytes(&cat.to_bytes()).unwrap();
    assert_eq!(back, cat);
    assert_eq!(back.index("docs_emb").unwrap().params.seed, 2);

    let json: serde_json::Value = serde_json::from_slice(&cat.to_bytes()).unwrap();
    assert_eq!(json["format"], 4);
    let corrupt = |edit: &dyn Fn(&mut serde_json::Value), why: &str| {
        let mut j = json.clone();
        edit(&mut j);
        let e = Catalog::from_bytes(&serde_json::to_vec(&j).unwrap()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Corrupt, "{why}: {e}");
        assert!(e.to_string().contains(why), "{why}: {e}");
    };
    let idx = |j: &mut serde_json::Value| j["indexes"]["docs_emb"].take();
    let set = |field: &'static str, v: serde_json::Value| {
        move |j: &mut serde_json::Value| j["indexes"]["docs_emb"][field] = v.clone()
    };
    corrupt(&set("name", "x".into()), "name does not match");
    corrupt(&set("id", 1.into()), "invalid or duplicate id");
    corrupt(&set("id", 99.into()), "invalid or duplicate id");
    corrupt(&set("table_id", 77.into()), "its table does not exist");
    corrupt(
        &set("column", 2.into()),
        "not a VECTOR of the recorded dimension",
    );
    corrupt(
        &set("column", 9.into()),
        "not a VECTOR of the recorded dimension",
    );
    corrupt(
        &set("dim", 5.into()),
        "not a VECTOR of the recorded dimension",
    );
    corrupt(&set("metric", "hamming".into()), "unknown metric");
    corrupt(&set("m", 1.into()), "m = 1 is out of range");
    corrupt(&set("ef_construction", 4.into()), "smaller than m");
    corrupt(
        &|j| {
            let i = idx(j);
            let mut i2 = i.clone();
            i2["name"] = "docs".into();
            j["indexes"]["docs"] = i2;
            j["indexes"]["docs_emb"] = i;
        },
        "a table, stream or view has the same name",
    );
    corrupt(
        &|j| j["format"] = 1.into(),
        "catalog format 1 has no indexes",
    );
    // Too many on one table.
    let mut j = json.clone();
    let base = idx(&mut j);
    j["indexes"] = serde_json::json!({});
    for n in 0..=MAX_INDEXES_PER_TABLE as u32 {
        let mut i = base.clone();
        i["name"] = format!("i{n}").into();
        i["id"] = (10 + n).into();
        j["indexes"][format!("i{n}")] = i;
    }
    j["next_table_id"] = 100.into();
    let e = Catalog::from_bytes(&serde_json::to_vec(&j).unwrap()).unwrap_err();
    assert!(
        e.to_string().contains("more than MAX_INDEXES_PER_TABLE"),
        "{e}"
    );
}

fn cond(text: &str) -> String {
    let e = parse_condition(text).unwrap_or_else(|e| panic!("{text}: {e}"));
    to_sql(&e, &|c: &String| c.clone())
}

#[test]
fn parse_condition_accepts_the_expression_language() {
    for (text, printed) in [
        ("in_stock", "in_stock"),
        (
            "in_stock AND price < 20 AND region IN ('eu','us')",
            "in_stock AND price < 20 AND region IN ('eu', 'us')",
        ),
        ("a = 1 OR b <> 2", "a = 1 OR b <> 2"),
        ("(a = 1 OR b = 2) AND c", "(a = 1 OR b = 2) AND c"),
        ("a <= 1 AND b >= 2 AND c > 3", "a <= 1 AND b >= 2 AND c > 3"),
        ("a != -1.5", "a <> -1.5"),
        ("(a + b) * c / 2 - 1 > 0", "(a + b) * c / 2 - 1 > 0"),
        ("NOT flagged", "NOT flagged"),
        ("x IS NULL OR y IS NOT NULL", "x IS NULL OR y IS NOT NULL"),
        ("r NOT IN (1, 2)", "r NOT IN (1, 2)"),
        ("p BETWEEN 1 AND 2", "p BETWEEN 1 AND 2"),
        ("p NOT BETWEEN 1 AND 2", "p NOT BETWEEN 1 AND 2"),
        ("\"Mixed\" = TRUE", "Mixed = TRUE"),
        ("Upper = 'x'", "upper = 'x'"),
        (
            "seen < TIMESTAMP '2026-01-01T00:00:00Z'",
            "seen < TIMESTAMP '2026-01-01T00:00:00.000000Z'",
        ),
        ("b = X'00ff' AND n IS NULL", "b = X'00ff' AND n IS NULL"),
        ("  a = NULL  ", "a = NULL"),
    ] {
        assert_eq!(cond(text), printed, "{text}");
    }
    // Precedence: AND binds tighter than OR, * tighter than +, as in a view's WHERE.
    use crate::expr::{ArithOp, Expr};
    let col = |c: &str| Box::new(Expr::Column(c.to_string()));
    assert!(matches!(
        parse_condition("a OR b AND c").unwrap(),
        Expr::Or(l, r) if l == col("a") && *r == Expr::And(col("b"), col("c"))
    ));
    assert!(matches!(
        parse_condition("a + b * c > 0").unwrap(),
        Expr::Cmp(_, l, _) if *l == Expr::Arith(ArithOp::Add, col("a"), Box::new(Expr::Arith(ArithOp::Mul, col("b"), col("c"))))
    ));
}

#[test]
fn parse_condition_refuses_junk() {
    for (text, kind) in [
        ("", ErrorKind::SqlParse),
        ("   \n\t", ErrorKind::SqlParse),
        ("a = 1 b", ErrorKind::SqlParse),
        ("a = 1; DROP TABLE t", ErrorKind::SqlParse),
        ("a = ", ErrorKind::SqlParse),
        ("(a = 1", ErrorKind::SqlParse),
        ("SELECT 1", ErrorKind::SqlParse),
        ("DROP TABLE docs", ErrorKind::SqlParse),
        ("a LIKE 'x%'", ErrorKind::Unsupported),
        ("lower(a) = 'x'", ErrorKind::Unsupported),
        ("t.a = 1", ErrorKind::Unsupported),
        ("a IN (SELECT 1)", ErrorKind::Unsupported),
        ("EXISTS (SELECT 1)", ErrorKind::Unsupported),
        ("-a > 1", ErrorKind::Unsupported),
    ] {
        let e = parse_condition(text).expect_err(text);
        assert_eq!(e.kind(), kind, "{text:?}: {e}");
    }
    assert_eq!(
        parse_condition("").unwrap_err().to_string(),
        "SQL parse error: empty filter condition"
    );
    for text in [
        "SELECT 1",
        " drop table docs",
        "WITH x AS (SELECT 1) SELECT 2",
    ] {
        let e = parse_condition(text).unwrap_err().to_string();
        assert!(e.contains("not a statement"), "{text}: {e}");
    }
    assert!(parse_condition("a = 1 b")
        .unwrap_err()
        .to_string()
        .contains("unexpected b after the filter condition"));
    // A quoted column named like a keyword is a column.
    assert_eq!(cond("\"select\" = 1"), "select = 1");
    let big = vec!["a = 1"; crate::expr::MAX_EXPR_NODES].join(" OR ");
    assert_eq!(
        parse_condition(&big).unwrap_err().kind(),
        ErrorKind::LimitExceeded
    );
}

/// The parsed condition checks against a table's columns like a view's WHERE.
#[test]
fn parse_condition_then_check_condition() {
    let cat = catalog_with(&["CREATE TABLE p (sku TEXT PRIMARY KEY, in_stock BOOLEAN, price DOUBLE, region TEXT, emb VECTOR(2))"]);
    let t = cat.table("p").unwrap();
    let scope = crate::expr::check::Scope::new(&t.name, &t.columns);
    let e = parse_condition("in_stock AND price < 20 AND region IN ('eu','us')").unwrap();
    crate::expr::check::check_condition(&e, &scope, "filter").unwrap();
    let e = parse_condition("nope > 1").unwrap();
    let err = crate::expr::check::check_condition(&e, &scope, "filter").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UnknownColumn);
    let e = parse_condition("emb = emb").unwrap();
    let err = crate::expr::check::check_condition(&e, &scope, "filter").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported);
}
