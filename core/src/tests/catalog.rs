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
    assert!(c0.tables.is_empty(), "copy-on-write");

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
        b"{\"format\":2,\"version\":0,\"next_table_id\":1,\"tables\":{}}",
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
    let mut broken = cat.clone();
    broken.tables.get_mut("cards").unwrap().key_column = 99;
    assert_eq!(
        Catalog::from_bytes(&broken.to_bytes()).unwrap_err().kind(),
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
