use tarn_types::ColumnType;

use crate::schema::ColumnDef;
use crate::sql::{parse, Statement};
use crate::{CoreError, ErrorKind};

use super::def_of;

fn err(sql: &str) -> CoreError {
    parse(sql).expect_err(sql)
}

fn unsupported(sql: &str, needle: &str) {
    let e = err(sql);
    assert_eq!(e.kind(), ErrorKind::Unsupported, "{sql}: {e}");
    assert!(
        e.to_string().contains(needle),
        "{sql}: `{e}` lacks `{needle}`"
    );
}

#[test]
fn every_type_and_alias() {
    let cases = [
        ("BOOLEAN", ColumnType::Boolean),
        ("BOOL", ColumnType::Boolean),
        ("BIGINT", ColumnType::BigInt),
        ("INT8", ColumnType::BigInt),
        ("INTEGER", ColumnType::BigInt),
        ("INT", ColumnType::BigInt),
        ("DOUBLE", ColumnType::Double),
        ("DOUBLE PRECISION", ColumnType::Double),
        ("FLOAT8", ColumnType::Double),
        ("TEXT", ColumnType::Text),
        ("VARCHAR", ColumnType::Text),
        ("STRING", ColumnType::Text),
        ("BYTES", ColumnType::Bytes),
        ("BYTEA", ColumnType::Bytes),
        ("TIMESTAMP", ColumnType::Timestamp),
        ("TIMESTAMP WITHOUT TIME ZONE", ColumnType::Timestamp),
        ("boolean", ColumnType::Boolean),
        ("double precision", ColumnType::Double),
    ];
    for (spelling, ty) in cases {
        let def = def_of(&format!(
            "CREATE TABLE t (k TEXT PRIMARY KEY, c {spelling})"
        ));
        assert_eq!(def.columns[1].ty, ty, "{spelling}");
    }
}

#[test]
fn create_table_shape() {
    let stmts = parse(
        "CREATE TABLE IF NOT EXISTS Cards (Card_ID TEXT PRIMARY KEY, \"Risk\" DOUBLE, n BIGINT NULL);",
    )
    .unwrap();
    assert_eq!(stmts.len(), 1);
    let Statement::CreateTable { def, if_not_exists } = &stmts[0] else {
        panic!()
    };
    assert!(*if_not_exists);
    assert_eq!(def.id, 0);
    assert_eq!(def.name, "cards");
    assert_eq!(
        def.columns,
        vec![
            ColumnDef {
                name: "card_id".into(),
                ty: ColumnType::Text
            },
            ColumnDef {
                name: "Risk".into(),
                ty: ColumnType::Double
            },
            ColumnDef {
                name: "n".into(),
                ty: ColumnType::BigInt
            },
        ]
    );
    assert_eq!(def.key_column, 0);
    assert_eq!(def.key_type(), ColumnType::Text);
    assert_eq!(def.column_index("Risk"), Some(1));
    assert_eq!(def.column_index("risk"), None);
}

#[test]
fn table_level_primary_key_and_not_null_key() {
    let def = def_of("CREATE TABLE t (a BIGINT, b TEXT NOT NULL, PRIMARY KEY (b))");
    assert_eq!(def.key_column, 1);
    let def = def_of("CREATE TABLE t (a BIGINT NOT NULL PRIMARY KEY, b TEXT)");
    assert_eq!(def.key_column, 0);
    let def = def_of("CREATE TABLE \"T\" (\"A\" TIMESTAMP, PRIMARY KEY (\"A\"))");
    assert_eq!(def.name, "T");
    assert_eq!(def.key_type(), ColumnType::Timestamp);
}

#[test]
fn quoted_and_unquoted_identifiers() {
    let def =
        def_of("CREATE TABLE \"MixedCase\" (\"Key\" TEXT PRIMARY KEY, Other TEXT, \"x y\" TEXT)");
    assert_eq!(def.name, "MixedCase");
    assert_eq!(def.columns[0].name, "Key");
    assert_eq!(def.columns[1].name, "other");
    assert_eq!(def.columns[2].name, "x y");
    // "a" and A fold to the same name.
    let e = err("CREATE TABLE t (\"a\" TEXT PRIMARY KEY, A TEXT)");
    assert_eq!(e, CoreError::DuplicateColumn { column: "a".into() });
    // Distinct when quoted with different case.
    def_of("CREATE TABLE t (\"a\" TEXT PRIMARY KEY, \"A\" TEXT)");
}

#[test]
fn drop_show_describe() {
    let stmts = parse(
        "DROP TABLE Cards; DROP TABLE IF EXISTS \"X\"; SHOW TABLES; DESCRIBE Cards; DESC \"Cards\"",
    )
    .unwrap();
    assert_eq!(
        stmts,
        vec![
            Statement::DropTable {
                name: "cards".into(),
                if_exists: false
            },
            Statement::DropTable {
                name: "X".into(),
                if_exists: true
            },
            Statement::ShowTables,
            Statement::Describe {
                table: "cards".into()
            },
            Statement::Describe {
                table: "Cards".into()
            },
        ]
    );
    assert!(stmts[0].is_ddl());
    assert!(!stmts[2].is_ddl());
}

#[test]
fn parse_errors() {
    assert_eq!(err("CREATE TABLE (").kind(), ErrorKind::SqlParse);
    assert_eq!(err("").kind(), ErrorKind::SqlParse);
    assert_eq!(err("SELEKT 1").kind(), ErrorKind::SqlParse);
}

#[test]
fn unsupported_constructs_have_specific_messages() {
    unsupported("SELECT 1", "statement `SELECT 1`");
    unsupported(
        "INSERT INTO t VALUES (1) RETURNING *",
        "INSERT clauses (supported: INSERT INTO t",
    );
    unsupported("INSERT INTO t SELECT 1", "INSERT source `SELECT 1`");
    unsupported("CREATE TABLE t (a TEXT, b TEXT)", "without a PRIMARY KEY");
    unsupported(
        "CREATE TABLE t (a TEXT, b TEXT, PRIMARY KEY (a, b))",
        "composite PRIMARY KEY",
    );
    unsupported(
        "CREATE TABLE t (a TEXT PRIMARY KEY, b TEXT PRIMARY KEY)",
        "more than one PRIMARY KEY",
    );
    unsupported(
        "CREATE TABLE t (a TEXT PRIMARY KEY, PRIMARY KEY (a))",
        "more than one PRIMARY KEY",
    );
    unsupported(
        "CREATE TABLE t (a DOUBLE PRIMARY KEY)",
        "DOUBLE primary key on column \"a\"",
    );
    unsupported(
        "CREATE TABLE t (a TEXT PRIMARY KEY, b TEXT NOT NULL)",
        "NOT NULL on non-key column \"b\"",
    );
    unsupported(
        "CREATE TABLE t (a TEXT PRIMARY KEY, b BIGINT DEFAULT 0)",
        "DEFAULT on column \"b\"",
    );
    unsupported(
        "CREATE TABLE t (a TEXT PRIMARY KEY, b TEXT UNIQUE)",
        "UNIQUE on column \"b\"",
    );
    unsupported(
        "CREATE TABLE t (a TEXT PRIMARY KEY, b BIGINT CHECK (b > 0))",
        "CHECK on column \"b\"",
    );
    unsupported(
        "CREATE TABLE t (a TEXT PRIMARY KEY, b TEXT REFERENCES u (x))",
        "REFERENCES",
    );
    unsupported(
        "CREATE TABLE t (a TEXT PRIMARY KEY, b TEXT, UNIQUE (b))",
        "UNIQUE constraint",
    );
    unsupported(
        "CREATE TABLE t (a TEXT PRIMARY KEY, b BIGINT, CHECK (b > 0))",
        "CHECK constraint",
    );
    unsupported(
        "CREATE TABLE t (a TEXT PRIMARY KEY, b NUMERIC)",
        "type `NUMERIC` for column \"b\"",
    );
    unsupported("CREATE TABLE t (a TEXT PRIMARY KEY, b REAL)", "type `REAL`");
    unsupported(
        "CREATE TABLE t (a TEXT PRIMARY KEY, b VECTORS(3))",
        "type `VECTORS(3)`",
    );
    unsupported(
        "CREATE TABLE t (a TEXT PRIMARY KEY, b VARCHAR(10))",
        "type modifier in `VARCHAR(10)`",
    );
    unsupported(
        "CREATE TABLE t (a TEXT PRIMARY KEY, b TIMESTAMP(3))",
        "type modifier",
    );
    unsupported(
        "CREATE TABLE t (a TEXT PRIMARY KEY, b TIMESTAMPTZ)",
        "use TIMESTAMP",
    );
    unsupported(
        "CREATE TABLE t (a TEXT PRIMARY KEY, b TIMESTAMP WITH TIME ZONE)",
        "use TIMESTAMP",
    );
    unsupported(
        "CREATE TEMPORARY TABLE t (a TEXT PRIMARY KEY)",
        "temporary tables",
    );
    unsupported("CREATE TABLE t AS SELECT 1", "AS SELECT");
    unsupported(
        "CREATE TABLE s.t (a TEXT PRIMARY KEY)",
        "qualified table name `s.t`",
    );
    unsupported(
        "CREATE TABLE t (a TEXT PRIMARY KEY) WITH (fillfactor = 70)",
        "table options",
    );
    unsupported(
        "CREATE TABLE t (a TEXT PRIMARY KEY, b BIGINT GENERATED ALWAYS AS IDENTITY)",
        "generated/identity",
    );
    unsupported(
        "CREATE TABLE t (a TEXT CONSTRAINT pk PRIMARY KEY)",
        "named constraint",
    );
    unsupported(
        "CREATE TABLE t (a TEXT PRIMARY KEY NULL)",
        "NULL on primary key column \"a\"",
    );
    unsupported("DROP TABLE a, b", "several tables");
    unsupported("DROP TABLE a CASCADE", "CASCADE");
    unsupported("DROP VIEW v", "DROP VIEW");
    unsupported("CREATE TABLE t ()", "no columns");
    // A script with one bad statement is rejected whole.
    unsupported("CREATE TABLE t (a TEXT PRIMARY KEY); SELECT 1", "SELECT 1");
}

#[test]
fn unknown_key_column_and_limits() {
    let e = err("CREATE TABLE t (a TEXT, PRIMARY KEY (b))");
    assert_eq!(
        e,
        CoreError::UnknownColumn {
            table: "t".into(),
            column: "b".into()
        }
    );

    let long = "x".repeat(crate::MAX_IDENTIFIER_BYTES + 1);
    let e = err(&format!("CREATE TABLE {long} (a TEXT PRIMARY KEY)"));
    assert_eq!(e.kind(), ErrorKind::LimitExceeded, "{e}");
    let ok = "x".repeat(crate::MAX_IDENTIFIER_BYTES);
    def_of(&format!("CREATE TABLE {ok} ({ok} TEXT PRIMARY KEY)"));

    let cols: Vec<String> = (0..=crate::MAX_COLUMNS)
        .map(|i| format!("c{i} TEXT"))
        .collect();
    let e = err(&format!(
        "CREATE TABLE t (k TEXT PRIMARY KEY, {})",
        cols.join(", ")
    ));
    assert_eq!(e.kind(), ErrorKind::LimitExceeded, "{e}");
}

#[test]
fn create_sql_roundtrips() {
    for sql in [
        super::CARDS,
        "CREATE TABLE \"Weird \"\"T\"\"\" (\"Key\" TIMESTAMP, \"order\" BOOLEAN, x_1 BYTEA, PRIMARY KEY (\"Key\"))",
    ] {
        let def = def_of(sql);
        let again = def_of(&def.create_sql());
        assert_eq!(again, def, "{}", def.create_sql());
    }
    assert_eq!(
        def_of("create table t (K bigint primary key, v varchar)").create_sql(),
        "CREATE TABLE t (k BIGINT PRIMARY KEY, v TEXT)"
    );
    assert_eq!(crate::schema::quote_ident("select"), "\"select\"");
    assert_eq!(crate::schema::quote_ident("Ab"), "\"Ab\"");
}

#[test]
fn create_stream_and_its_options() {
    use crate::schema::StreamDef;
    let stmts = parse(
        "CREATE STREAM tx (ts TIMESTAMP, card_id TEXT, amount DOUBLE NOT NULL, ip TEXT) \
         WITH (event_time = 'ts', retention = '2 days', partition = 'card_id', max_future = '30 seconds'); \
         CREATE TABLE t (k BIGINT PRIMARY KEY); DROP STREAM IF EXISTS tx; SHOW STREAMS",
    )
    .unwrap();
    let Statement::CreateStream { def, if_not_exists } = &stmts[0] else {
        panic!("{stmts:?}")
    };
    assert!(!if_not_exists);
    assert_eq!(def.name, "tx");
    assert_eq!((def.event_time, def.partition), (0, 1));
    assert_eq!(def.retention_us, 2 * 86_400_000_000);
    assert_eq!(def.max_future_us, 30_000_000);
    assert!(matches!(stmts[1], Statement::CreateTable { .. }));
    assert_eq!(
        stmts[2],
        Statement::DropStream {
            name: "tx".into(),
            if_exists: true
        }
    );
    assert_eq!(stmts[3], Statement::ShowStreams);
    // create_sql round-trips.
    let again = parse(&def.create_sql()).unwrap();
    assert_eq!(
        again,
        vec![Statement::CreateStream {
            def: def.clone(),
            if_not_exists: false
        }]
    );
    // Defaults: partition = first keyable non-time column, 7 days, 1 minute.
    let Statement::CreateStream { def, .. } = parse(
        "create stream if not exists Ev (x DOUBLE, ts TIMESTAMP, dev BIGINT) with (event_time = ts)",
    )
    .unwrap()
    .remove(0) else {
        panic!()
    };
    let d: &StreamDef = &def;
    assert_eq!((d.name.as_str(), d.event_time, d.partition), ("ev", 1, 2));
    assert_eq!(d.retention_us, crate::sql::DEFAULT_RETENTION_US);
    assert_eq!(d.max_future_us, crate::sql::DEFAULT_MAX_FUTURE_US);
    assert_eq!(d.recent, 0, "recent events are not kept by default");
}

#[test]
fn create_stream_recent_option() {
    let max = crate::MAX_RECENT_EVENTS_PER_KEY;
    for (opt, n) in [
        ("16", 16),
        ("'3'", 3),
        ("1", 1),
        (&max.to_string()[..], max),
    ] {
        let sql = format!(
            "CREATE STREAM s (ts TIMESTAMP, k TEXT) WITH (event_time = 'ts', recent = {opt})"
        );
        let Statement::CreateStream { def, .. } = parse(&sql).unwrap().remove(0) else {
            panic!("{sql}")
        };
        assert_eq!(def.recent, n, "{sql}");
        let shown = def.create_sql();
        assert!(shown.ends_with(&format!(", recent = {n})")), "{shown}");
        let Statement::CreateStream { def: again, .. } = parse(&shown).unwrap().remove(0) else {
            panic!("{shown}")
        };
        assert_eq!(again, def, "create_sql round-trips");
    }
    let over = max + 1;
    for bad in ["0", &over.to_string()[..], "-1", "'many'", "2.5"] {
        let sql = format!(
            "CREATE STREAM s (ts TIMESTAMP, k TEXT) WITH (event_time = 'ts', recent = {bad})"
        );
        let e = parse(&sql).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{sql}: {e}");
        assert!(e.to_string().contains("recent"), "{sql}: {e}");
        assert!(e.to_string().contains(&max.to_string()), "{sql}: {e}");
    }
    let twice =
        "CREATE STREAM s (ts TIMESTAMP, k TEXT) WITH (event_time = 'ts', recent = 2, recent = 3)";
    assert!(parse(twice).unwrap_err().to_string().contains("twice"));
}

#[test]
fn create_stream_errors() {
    for (sql, kind, needle) in [
        ("CREATE STREAM s (ts TIMESTAMP, k TEXT)", ErrorKind::Unsupported, "event_time"),
        ("CREATE STREAM s (ts TIMESTAMP, k TEXT) WITH (event_time = 'k')", ErrorKind::Unsupported, "must be a TIMESTAMP"),
        ("CREATE STREAM s (ts TIMESTAMP, k TEXT) WITH (event_time = 'nope')", ErrorKind::UnknownColumn, "nope"),
        ("CREATE STREAM s (ts TIMESTAMP, k TEXT) WITH (event_time = 'ts', retention = 'forever')", ErrorKind::Unsupported, "forever"),
        ("CREATE STREAM s (ts TIMESTAMP, k TEXT) WITH (event_time = 'ts', colour = 'red')", ErrorKind::Unsupported, "colour"),
        ("CREATE STREAM s (ts TIMESTAMP, d DOUBLE) WITH (event_time = 'ts')", ErrorKind::Unsupported, "partition"),
        ("CREATE STREAM s (ts TIMESTAMP, d DOUBLE, k TEXT) WITH (event_time = 'ts', partition = 'd')", ErrorKind::Unsupported, "DOUBLE"),
        ("CREATE STREAM s (ts TIMESTAMP PRIMARY KEY, k TEXT) WITH (event_time = 'ts')", ErrorKind::Unsupported, "option"),
        ("CREATE STREAM s (ts TIMESTAMP, ts TEXT) WITH (event_time = 'ts')", ErrorKind::DuplicateColumn, "ts"),
        ("CREATE STREAM s (ts TIMESTAMP, k TEXT) WITH (event_time = 'ts') garbage", ErrorKind::SqlParse, "garbage"),
        ("CREATE STREAM s (ts TIMESTAMP, k TEXT) WITH (event_time = 'ts', event_time = 'ts')", ErrorKind::Unsupported, "twice"),
        ("DROP VIEW v", ErrorKind::Unsupported, "DROP"),
    ] {
        let e = parse(sql).unwrap_err();
        assert_eq!(e.kind(), kind, "{sql}: {e}");
        assert!(e.to_string().contains(needle), "{sql}: {e}");
    }
}
