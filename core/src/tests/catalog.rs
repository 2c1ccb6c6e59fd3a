use crate::catalog::Catalog;
use crate::sql::parse;
use crate::{CoreError, ErrorKind, MAX_TABLES};

use super::catalog_with;

fn run(cat: &Catalog, sql: &str) -> Result<(Catalog, String), CoreError> {
    cat.apply_ddl(&parse(sql).unwrap()[0])
}

#[test]
fn create_drop_and_ids_never_reused() {
    let c0 = Catalog::new();
    assert_eq!((c0.version, c0.next_table_id), (0, 1));
    assert_eq!(Catalog::default(), c0);

    let (c1, msg) = run(&c0, "CREATE TABLE cards (id TEXT PRIMARY KEY)").unwrap();
    assert_eq!(msg, "CREATE TABLE cards");
    assert_eq!(c1.table("cards").unwrap().id, 1);
    assert_eq!(c1.table_by_id(1).unwrap().name, "cards");
    assert_eq!((c1.version, c1.next_table_id), (1, 2));
    assert!(c0.tables().next().is_none(), "copy-on-write");

    let e = run(&c1, "CREATE TABLE Cards (id TEXT PRIMARY KEY)").unwrap_err();
    assert_eq!(e, CoreError::TableExists("cards".into()));
    let (same, msg) = run(
        &c1,
        "CREATE TABLE IF NOT EXISTS cards (x BIGINT PRIMARY KEY)",
    )
    .unwrap();
    assert_eq!(msg, "table cards already exists, skipped");
    assert_eq!(same, c1);

    let (c2, msg) = run(&c1, "DROP TABLE cards").unwrap();
    assert_eq!(msg, "DROP TABLE cards");
    assert!(c2.table("cards").is_none());
    assert!(c2.table_by_id(1).is_none());
    assert_eq!((c2.version, c2.next_table_id), (2, 2));

    let e = run(&c2, "DROP TABLE cards").unwrap_err();
    assert_eq!(e, CoreError::UnknownTable("cards".into()));
    let (same, msg) = run(&c2, "DROP TABLE IF EXISTS cards").unwrap();
    assert_eq!(msg, "table cards does not exist, skipped");
    assert_eq!(same, c2);

    let (c3, _) = run(&c2, "CREATE TABLE cards (id TEXT PRIMARY KEY)").unwrap();
    assert_eq!(
        c3.table("cards").unwrap().id,
        2,
        "a re-created table gets a new id"
    );
    assert_eq!(c3.version, 3);

    assert_eq!(
        c3.apply_ddl(&crate::sql::Statement::ShowTables)
            .unwrap_err()
            .kind(),
        ErrorKind::Unsupported
    );
}

#[test]
fn table_limit() {
    let mut cat = Catalog::new();
    for i in 0..MAX_TABLES {
        cat = run(&cat, &format!("CREATE TABLE t{i} (k BIGINT PRIMARY KEY)"))
            .unwrap()
            .0;
    }
    let e = run(&cat, "CREATE TABLE one_more (k BIGINT PRIMARY KEY)").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::LimitExceeded);
    let cat = run(&cat, "DROP TABLE t0").unwrap().0;
    let cat = run(&cat, "CREATE TABLE one_more (k BIGINT PRIMARY KEY)")
        .unwrap()
        .0;
    assert_eq!(cat.table("one_more").unwrap().id as usize, MAX_TABLES + 1);
}

#[test]
fn serde_roundtrip_and_corruption() {
    let cat = catalog_with(&[
        super::CARDS,
        "CREATE TABLE a (k BIGINT PRIMARY KEY); CREATE TABLE \"B\" (x TEXT, k TIMESTAMP, PRIMARY KEY (k))",
        "DROP TABLE a",
    ]);
    let bytes = cat.to_bytes();
    let back = Catalog::from_bytes(&bytes).unwrap();
    assert_eq!(back, cat);
    assert_eq!(back.next_table_id, 4);

    for bad in [
        &b""[..],
        b"{",
        b"[]",
        b"{\"format\":5,\"version\":0,\"next_table_id\":1,\"tables\":{}}",
        b"{\"format\":0,\"version\":0,\"next_table_id\":1,\"tables\":{}}",
    ] {
        assert_eq!(
            Catalog::from_bytes(bad).unwrap_err().kind(),
            ErrorKind::Corrupt
        );
    }
    // Semantic checks: id beyond next_table_id.
    let mut broken = cat.clone();
    broken.next_table_id = 1;
    assert_eq!(
        Catalog::from_bytes(&broken.to_bytes()).unwrap_err().kind(),
        ErrorKind::Corrupt
    );
    let mut broken: serde_json::Value = serde_json::from_slice(&cat.to_bytes()).unwrap();
    broken["tables"]["cards"]["key_column"] = 99.into();
    assert_eq!(
        Catalog::from_bytes(&serde_json::to_vec(&broken).unwrap())
            .unwrap_err()
            .kind(),
        ErrorKind::Corrupt
    );
}

#[test]
fn streams_share_names_and_ids_with_tables() {
    let cat = super::catalog_with(&[
        "CREATE TABLE cards (card_id TEXT PRIMARY KEY)",
        "CREATE STREAM tx (ts TIMESTAMP, card_id TEXT) WITH (event_time = 'ts')",
    ]);
    let t = cat.table("cards").unwrap().id;
    let s = cat.stream("tx").unwrap().id;
    assert_ne!(t, s);
    assert_eq!(cat.stream_by_id(s).unwrap().name, "tx");
    let clash = |sql: &str| {
        let stmt = crate::sql::parse(sql).unwrap().remove(0);
        cat.apply_ddl(&stmt).unwrap_err().kind()
    };
    assert_eq!(
        clash("CREATE STREAM cards (ts TIMESTAMP, k TEXT) WITH (event_time = 'ts')"),
        crate::ErrorKind::TableExists
    );
    assert_eq!(
        clash("CREATE TABLE tx (k TEXT PRIMARY KEY)"),
        crate::ErrorKind::StreamExists
    );
    assert_eq!(clash("DROP STREAM nope"), crate::ErrorKind::UnknownStream);
    // The catalog file keeps streams.
    let back = crate::catalog::Catalog::from_bytes(&cat.to_bytes()).unwrap();
    assert_eq!(back, cat);
    let drop = crate::sql::parse("DROP STREAM tx").unwrap().remove(0);
    let (after, msg) = cat.apply_ddl(&drop).unwrap();
    assert_eq!(msg, "DROP STREAM tx");
    assert!(after.stream("tx").is_none());
    // Ids are never reused.
    let (again, _) = after
        .apply_ddl(
            &crate::sql::parse("CREATE STREAM tx (ts TIMESTAMP, k TEXT) WITH (event_time = 'ts')")
                .unwrap()
                .remove(0),
        )
        .unwrap();
    assert!(again.stream("tx").unwrap().id > s);
}

/// One namespace: creating any kind over a name any kind has is refused naming the existing
/// object's kind, with or without `IF NOT EXISTS`, except that `IF NOT EXISTS` skips a CREATE
/// of the same kind. Ids and version do not move on a refusal or a skip.
#[test]
fn one_namespace_for_every_kind() {
    use crate::catalog::ObjectKind::{self, *};
    // An existing object of each kind named `x` (the view reads stream `src`, the index
    // table `vt`).
    let existing = |kind: ObjectKind| {
        let create = match kind {
            Table => "CREATE TABLE x (k TEXT PRIMARY KEY)",
            Stream => "CREATE STREAM x (ts TIMESTAMP, k TEXT) WITH (event_time = 'ts')",
            View => {
                "CREATE MATERIALIZED VIEW x WITH (window = 'lifetime') AS \
                 SELECT k, count(*) FROM src GROUP BY k"
            }
            Index => "CREATE INDEX x ON vt USING hnsw (e)",
            Context => "CREATE CONTEXT x AS row(vt, 1) AS r",
            Model => {
                "CREATE MODEL x ON CONTEXT cx INPUTS (r.k) USING linear_regression \
                 WITH (weights = (1), intercept = 0)"
            }
        };
        catalog_with(&[
            "CREATE STREAM src (ts TIMESTAMP, k TEXT) WITH (event_time = 'ts')",
            "CREATE TABLE vt (k BIGINT PRIMARY KEY, e VECTOR(2), f VECTOR(2))",
            "CREATE CONTEXT cx AS row(vt, 1) AS r",
            create,
        ])
    };
    let create = |kind: ObjectKind, if_not_exists: bool| {
        let ine = if if_not_exists { "IF NOT EXISTS " } else { "" };
        match kind {
            Table => format!("CREATE TABLE {ine}x (id BIGINT PRIMARY KEY)"),
            Stream => {
                format!("CREATE STREAM {ine}x (t TIMESTAMP, id BIGINT) WITH (event_time = 't')")
            }
            View => format!(
                "CREATE MATERIALIZED VIEW {ine}x WITH (window = 'lifetime') AS \
                 SELECT ts, count(*) AS n FROM src GROUP BY ts"
            ),
            Index => format!("CREATE INDEX {ine}x ON vt USING hnsw (f)"),
            Context => format!("CREATE CONTEXT {ine}x AS row(vt, 2) AS r"),
            Model => format!(
                "CREATE MODEL {ine}x ON CONTEXT cx INPUTS (r.k) USING logistic_regression \
                 WITH (weights = (2), intercept = 1)"
            ),
        }
    };
    for have in [Table, Stream, View, Index, Context, Model] {
        let cat = existing(have);
        for make in [Table, Stream, View, Index, Context, Model] {
            for if_not_exists in [false, true] {
                let sql = create(make, if_not_exists);
                let got = run(&cat, &sql);
                if make == have && if_not_exists {
                    let (same, msg) = got.unwrap_or_else(|e| panic!("{sql}: {e}"));
                    let word = if have == View { "view" } else { have.noun() };
                    assert_eq!(msg, format!("{word} x already exists, skipped"), "{sql}");
                    assert_eq!(same, cat, "{sql}: a skip changes nothing");
                    continue;
                }
                let e = got.expect_err(&sql);
                assert_eq!(e, CoreError::exists(have, "x"), "{sql}");
                assert_eq!(
                    e.to_string(),
                    format!("{} \"x\" already exists", have.noun()),
                    "{sql}"
                );
                let kind = match have {
                    Table => ErrorKind::TableExists,
                    Stream => ErrorKind::StreamExists,
                    View | Index | Context | Model => ErrorKind::ObjectExists,
                };
                assert_eq!(e.kind(), kind, "{sql}");
            }
        }
        // The object is still there, under its kind only.
        assert_eq!(cat.object("x").map(|o| o.kind()), Some(have));
        assert_eq!(cat.table("x").is_some(), have == Table);
        assert_eq!(cat.stream("x").is_some(), have == Stream);
        assert_eq!(cat.view("x").is_some(), have == View);
        assert_eq!(cat.index("x").is_some(), have == Index);
        assert_eq!(cat.model("x").is_some(), have == Model);
    }
}

/// DROP of one kind does not see an object of another kind with that name.
#[test]
fn drop_sees_only_its_own_kind() {
    let cat = catalog_with(&[
        "CREATE TABLE t (k TEXT PRIMARY KEY)",
        "CREATE STREAM s (ts TIMESTAMP, k TEXT) WITH (event_time = 'ts')",
        "CREATE MATERIALIZED VIEW v WITH (window = 'lifetime') AS \
         SELECT k, count(*) FROM s GROUP BY k",
    ]);
    assert_eq!(
        run(&cat, "DROP TABLE s").unwrap_err(),
        CoreError::UnknownTable("s".into())
    );
    assert_eq!(
        run(&cat, "DROP STREAM v").unwrap_err(),
        CoreError::UnknownStream("v".into())
    );
    assert_eq!(
        run(&cat, "DROP MATERIALIZED VIEW t").unwrap_err(),
        CoreError::UnknownView("t".into())
    );
    let (same, msg) = run(&cat, "DROP MATERIALIZED VIEW IF EXISTS t").unwrap();
    assert_eq!(
        (msg.as_str(), &same),
        ("view t does not exist, skipped", &cat)
    );
    // A dropped name is free for any kind, under a new id.
    let (c1, _) = run(&cat, "DROP MATERIALIZED VIEW v").unwrap();
    let (c2, _) = run(&c1, "CREATE TABLE v (k BIGINT PRIMARY KEY)").unwrap();
    assert!(c2.table("v").unwrap().id > cat.view("v").unwrap().id);
    assert_eq!(c2.version, cat.version + 2);
    assert!(c2.object_by_id(cat.view("v").unwrap().id).is_none());
}

#[test]
fn catalog_files_with_one_name_twice_are_corrupt() {
    let cat = catalog_with(&[
        "CREATE TABLE t (k TEXT PRIMARY KEY)",
        "CREATE STREAM s (ts TIMESTAMP, k TEXT) WITH (event_time = 'ts')",
        "CREATE MATERIALIZED VIEW v WITH (window = 'lifetime') AS \
         SELECT k, count(*) FROM s GROUP BY k",
    ]);
    let json: serde_json::Value = serde_json::from_slice(&cat.to_bytes()).unwrap();
    // Copy an object under a name another kind has (with a fresh id).
    for (map, name, taken, why) in [
        ("streams", "s", "t", "a table has the same name"),
        ("views", "v", "t", "a table or stream has the same name"),
        ("views", "v", "s", "a table or stream has the same name"),
    ] {
        let mut j = json.clone();
        let mut obj = j[map][name].clone();
        obj["name"] = taken.into();
        obj["id"] = 100.into();
        j["next_table_id"] = 101.into();
        j[map].as_object_mut().unwrap().insert(taken.into(), obj);
        let e = Catalog::from_bytes(&serde_json::to_vec(&j).unwrap()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Corrupt, "{map} {taken}: {e}");
        assert!(e.to_string().contains(why), "{map} {taken}: {e}");
    }
    // A file written before streams and views existed still loads.
    let old = br#"{"format": 1, "version": 1, "next_table_id": 2, "tables": {"t": {"id": 1,
        "name": "t", "columns": [{"name": "k", "ty": "Text"}], "key_column": 0}}}"#;
    let back = Catalog::from_bytes(old).unwrap();
    assert_eq!(back.table("t").unwrap().id, 1);
    assert_eq!(back.streams().count() + back.views().count(), 0);
}
