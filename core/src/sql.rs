//! The SQL front end: DDL and catalog introspection statements, parsed with sqlparser's
//! `PostgreSqlDialect` and lowered to [`Statement`].
//!
//! Supported:
//! - `CREATE TABLE [IF NOT EXISTS] t (col TYPE [PRIMARY KEY] [NULL], ..., [PRIMARY KEY (col)])`
//!   with exactly one primary-key column (`NOT NULL` is accepted on the key column only, where it
//!   is implied anyway).
//! - `DROP TABLE [IF EXISTS] t` (one table per statement).
//! - `CREATE STREAM [IF NOT EXISTS] s (col TYPE [NULL|NOT NULL], ...) WITH (event_time = 'col'
//!   [, retention = '7 days'] [, partition = 'col'] [, max_future = '1 minute'])`, `DROP STREAM
//!   [IF EXISTS] s`.
//! - `SHOW TABLES`, `SHOW STREAMS`, `DESCRIBE t` / `DESC t` (a table or a stream).
//! - `CREATE MATERIALIZED VIEW [IF NOT EXISTS] v WITH (window = …, bucket = …) AS SELECT …`,
//!   `DROP MATERIALIZED VIEW [IF EXISTS] v`, and reads of a view by key (`SELECT * | cols FROM v
//!   WHERE key = literal | key IN (literals)`): the rules are the documentation of
//!   [`crate::view`].
//!
//! Types: BOOLEAN/BOOL, BIGINT/INT8/INTEGER/INT, DOUBLE/DOUBLE PRECISION/FLOAT8,
//! TEXT/VARCHAR/STRING, BYTES/BYTEA, TIMESTAMP (µs since the epoch, UTC; also spelled
//! `TIMESTAMP WITHOUT TIME ZONE`). Length/precision modifiers (`VARCHAR(10)`, `TIMESTAMP(3)`)
//! are rejected rather than silently ignored.
//!
//! Identifiers follow Postgres rules: unquoted names fold to lower case, quoted names keep
//! their case. Names are at most [`MAX_IDENTIFIER_BYTES`] bytes.

use sqlparser::ast::{
    self, ColumnOption, CreateTable, DataType, ObjectName, ObjectType, TableConstraint,
    TimezoneInfo,
};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::keywords::Keyword;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer};
use tarn_types::ColumnType;

use crate::schema::{ColumnDef, StreamDef, TableDef};
use crate::{CoreError, MAX_COLUMNS, MAX_IDENTIFIER_BYTES};

/// A parsed, supported statement.
#[derive(Clone, Debug, PartialEq)]
pub enum Statement {
    /// `CREATE TABLE`; `def.id` is 0 until [`crate::catalog::Catalog::apply_ddl`] assigns one.
    CreateTable {
        /// The new table's definition.
        def: TableDef,
        /// `IF NOT EXISTS` was given.
        if_not_exists: bool,
    },
    /// `DROP TABLE`.
    DropTable {
        /// Table name (case-folded unless quoted).
        name: String,
        /// `IF EXISTS` was given.
        if_exists: bool,
    },
    /// `CREATE STREAM`; `def.id` is 0 until the catalog assigns one.
    CreateStream {
        /// The new stream's definition.
        def: StreamDef,
        /// `IF NOT EXISTS` was given.
        if_not_exists: bool,
    },
    /// `DROP STREAM`.
    DropStream {
        /// Stream name.
        name: String,
        /// `IF EXISTS` was given.
        if_exists: bool,
    },
    /// `SHOW TABLES`.
    ShowTables,
    /// `SHOW STREAMS`.
    ShowStreams,
    /// `SHOW VIEWS` (feature views, with per-view counters).
    ShowViews,
    /// `DESCRIBE t`.
    Describe {
        /// Table name (case-folded unless quoted).
        table: String,
    },
    /// `CREATE MATERIALIZED VIEW`: a feature view, parsed but not yet checked against its
    /// stream ([`crate::view::ViewSpec::resolve`] does that when the catalog applies it).
    CreateView {
        /// The parsed view.
        spec: crate::view::ViewSpec,
        /// `IF NOT EXISTS` was given.
        if_not_exists: bool,
    },
    /// `DROP MATERIALIZED VIEW`.
    DropView {
        /// View name.
        name: String,
        /// `IF EXISTS` was given.
        if_exists: bool,
    },
    /// `SELECT * | col, … FROM view WHERE key = literal` (or `key IN (literal, …)`): a read of
    /// a feature view by key. Not DDL. Nothing is checked against the catalog yet.
    SelectFeatures {
        /// View name.
        view: String,
        /// The listed columns; `None` for `*`.
        columns: Option<Vec<String>>,
        /// The column named in the WHERE (must be the view's key column).
        key_column: String,
        /// The keys, in order (literals: an integer is `Value::Int` whatever the key type;
        /// never NULL).
        keys: Vec<tarn_types::Value>,
    },
}

impl Statement {
    /// True for statements that change the catalog (CREATE/DROP).
    pub fn is_ddl(&self) -> bool {
        matches!(
            self,
            Statement::CreateTable { .. }
                | Statement::DropTable { .. }
                | Statement::CreateStream { .. }
                | Statement::DropStream { .. }
                | Statement::CreateView { .. }
                | Statement::DropView { .. }
        )
    }
}

/// Parses one or more `;`-separated statements. Any unsupported statement fails the whole text
/// (nothing is returned partially), so a script is either fully understood or rejected.
///
/// `CREATE STREAM` is not SQL that sqlparser knows: the text is tokenized with the Postgres
/// dialect, split at top-level `;` tokens, and a statement starting with `CREATE STREAM` is
/// parsed by [`parse_create_stream`] with the parser's own column-list and `WITH (...)` option
/// parsers; every other statement goes to sqlparser unchanged.
pub fn parse(sql: &str) -> Result<Vec<Statement>, CoreError> {
    let dialect = PostgreSqlDialect {};
    let tokens = Tokenizer::new(&dialect, sql)
        .tokenize_with_location()
        .map_err(|e| CoreError::SqlParse(e.to_string()))?;
    let mut statements: Vec<Vec<TokenWithSpan>> = vec![Vec::new()];
    for t in tokens {
        if t.token == Token::SemiColon {
            statements.push(Vec::new());
        } else {
            statements.last_mut().expect("one at least").push(t);
        }
    }
    let significant =
        |ts: &[TokenWithSpan]| ts.iter().any(|t| !matches!(t.token, Token::Whitespace(_)));
    let mut out = Vec::new();
    for toks in statements.into_iter().filter(|ts| significant(ts)) {
        if is_create_stream(&toks) {
            out.push(parse_create_stream(toks)?);
        } else {
            let mut parser = Parser::new(&dialect).with_tokens_with_locations(toks);
            let stmt = parser
                .parse_statement()
                .map_err(|e| CoreError::SqlParse(strip_prefix(&e.to_string())))?;
            if parser.peek_token().token != Token::EOF {
                return Err(CoreError::SqlParse(format!(
                    "unexpected {} after the statement",
                    parser.peek_token().token
                )));
            }
            out.push(lower(stmt)?);
        }
    }
    if out.is_empty() {
        return Err(CoreError::SqlParse("no statement".into()));
    }
    Ok(out)
}

fn is_create_stream(toks: &[TokenWithSpan]) -> bool {
    let mut words = toks.iter().filter_map(|t| match &t.token {
        Token::Whitespace(_) => None,
        Token::Word(w) => Some(Some(w.value.to_ascii_uppercase())),
        _ => Some(None),
    });
    words.next() == Some(Some("CREATE".into())) && words.next() == Some(Some("STREAM".into()))
}

/// `CREATE STREAM [IF NOT EXISTS] name (col TYPE [NULL | NOT NULL], ...)
///  WITH (event_time = 'col', retention = '7 days' [, partition = 'col'] [, max_future = '1 minute'])`
fn parse_create_stream(toks: Vec<TokenWithSpan>) -> Result<Statement, CoreError> {
    let perr =
        |e: sqlparser::parser::ParserError| CoreError::SqlParse(strip_prefix(&e.to_string()));
    let dialect = PostgreSqlDialect {};
    let mut p = Parser::new(&dialect).with_tokens_with_locations(toks);
    p.expect_keyword(Keyword::CREATE).map_err(perr)?;
    let stream_word = p.next_token();
    debug_assert!(
        matches!(&stream_word.token, Token::Word(w) if w.value.eq_ignore_ascii_case("stream"))
    );
    let if_not_exists = p.parse_keywords(&[Keyword::IF, Keyword::NOT, Keyword::EXISTS]);
    let name = object_name(&p.parse_object_name(false).map_err(perr)?, "stream")?;
    let (cols, constraints) = p.parse_columns().map_err(perr)?;
    let options = if p.peek_token().token == Token::EOF {
        Vec::new()
    } else {
        p.parse_options(Keyword::WITH).map_err(perr)?
    };
    if p.peek_token().token != Token::EOF {
        return Err(CoreError::SqlParse(format!(
            "unexpected {} after CREATE STREAM ... WITH (...)",
            p.peek_token().token
        )));
    }
    if !constraints.is_empty() {
        return Err(unsupported(
            "constraints on a stream (streams have no PRIMARY KEY; events are appended)",
        ));
    }
    if cols.is_empty() {
        return Err(unsupported("a stream with no columns"));
    }
    if cols.len() > MAX_COLUMNS {
        return Err(CoreError::LimitExceeded(format!(
            "stream \"{name}\" has {} columns, the limit is {MAX_COLUMNS}",
            cols.len()
        )));
    }
    let mut columns: Vec<ColumnDef> = Vec::with_capacity(cols.len());
    for c in &cols {
        let cname = ident(&c.name, "column")?;
        if columns.iter().any(|x| x.name == cname) {
            return Err(CoreError::DuplicateColumn { column: cname });
        }
        let ty = column_type(&cname, &c.data_type)?;
        for opt in &c.options {
            match &opt.option {
                ColumnOption::Null | ColumnOption::NotNull if opt.name.is_none() => {}
                other => {
                    return Err(unsupported(format!(
                        "column option `{other}` on stream column \"{cname}\" (event-time and partition columns are required in every event; others may be NULL)"
                    )))
                }
            }
        }
        columns.push(ColumnDef { name: cname, ty });
    }
    let mut event_time = None;
    let mut partition = None;
    let mut retention_us = None;
    let mut max_future_us = None;
    for o in &options {
        let ast::SqlOption::KeyValue { key, value } = o else {
            return Err(unsupported(format!(
                "stream option `{o}` (write key = 'value')"
            )));
        };
        let k = key.to_string().to_ascii_lowercase();
        let text = match value {
            ast::Expr::Value(v) => match &v.value {
                ast::Value::SingleQuotedString(s) => s.clone(),
                _ => {
                    return Err(unsupported(format!(
                        "value of stream option {k}: write it as a quoted string, e.g. {k} = '...'"
                    )))
                }
            },
            ast::Expr::Identifier(id) if k == "event_time" || k == "partition" => {
                ident(id, "column")?
            }
            _ => {
                return Err(unsupported(format!(
                    "value of stream option {k}: write it as a quoted string, e.g. {k} = '...'"
                )))
            }
        };
        let col = |text: &str| -> Result<usize, CoreError> {
            columns
                .iter()
                .position(|c| c.name == text)
                .ok_or_else(|| CoreError::UnknownColumn {
                    table: name.clone(),
                    column: text.to_string(),
                })
        };
        let dup = |set: bool| -> Result<(), CoreError> {
            if set {
                Err(unsupported(format!("stream option {k} given twice")))
            } else {
                Ok(())
            }
        };
        let dur = |t: &str| crate::duration::parse_duration_us(t).map_err(unsupported);
        match k.as_str() {
            "event_time" => {
                dup(event_time.is_some())?;
                event_time = Some(col(&text)?);
            }
            "partition" => {
                dup(partition.is_some())?;
                partition = Some(col(&text)?);
            }
            "retention" => {
                dup(retention_us.is_some())?;
                retention_us = Some(dur(&text)?);
            }
            "max_future" => {
                dup(max_future_us.is_some())?;
                max_future_us = Some(dur(&text)?);
            }
            other => {
                return Err(unsupported(format!(
                    "stream option \"{other}\" (supported: event_time, retention, partition, max_future)"
                )))
            }
        }
    }
    let event_time = event_time.ok_or_else(|| {
        unsupported(format!(
            "stream \"{name}\" without WITH (event_time = '<TIMESTAMP column>')"
        ))
    })?;
    if columns[event_time].ty != ColumnType::Timestamp {
        return Err(unsupported(format!(
            "event_time column \"{}\" is {}; it must be a TIMESTAMP",
            columns[event_time].name, columns[event_time].ty
        )));
    }
    let partition = match partition {
        Some(p) => p,
        None => (0..columns.len())
            .find(|&i| i != event_time && columns[i].ty.can_be_key())
            .ok_or_else(|| {
                unsupported(format!(
                    "stream \"{name}\" has no column that can be its partition (BOOLEAN, BIGINT, TEXT, BYTES or TIMESTAMP other than the event time); add one or name one with partition = '...'"
                ))
            })?,
    };
    if !columns[partition].ty.can_be_key() {
        return Err(unsupported(format!(
            "partition column \"{}\" is {} (NaN and -0.0 make DOUBLE equality ambiguous)",
            columns[partition].name, columns[partition].ty
        )));
    }
    Ok(Statement::CreateStream {
        def: StreamDef {
            id: 0,
            name,
            columns,
            event_time,
            partition,
            retention_us: retention_us.unwrap_or(DEFAULT_RETENTION_US),
            max_future_us: max_future_us.unwrap_or(DEFAULT_MAX_FUTURE_US),
        },
        if_not_exists,
    })
}

/// Retention of a stream created without `retention = '...'`: 7 days.
pub const DEFAULT_RETENTION_US: i64 = 7 * 86_400_000_000;

/// `max_future` of a stream created without it: 1 minute. Events dated further after the
/// server's clock are rejected (clock skew between producers and the server is allowed up to
/// this much).
pub const DEFAULT_MAX_FUTURE_US: i64 = 60_000_000;

fn strip_prefix(msg: &str) -> String {
    msg.strip_prefix("sql parser error: ")
        .unwrap_or(msg)
        .to_string()
}

fn unsupported(msg: impl Into<String>) -> CoreError {
    CoreError::Unsupported(msg.into())
}

fn lower(stmt: ast::Statement) -> Result<Statement, CoreError> {
    match stmt {
        ast::Statement::CreateTable(ct) => lower_create(ct),
        ast::Statement::CreateView(cv) => crate::view::lower_create_view(cv),
        ast::Statement::Query(q) => crate::view::lower_select(*q),
        ast::Statement::Drop {
            object_type,
            if_exists,
            names,
            cascade,
            restrict,
            purge,
            temporary,
            table,
        } => {
            let what = match object_type {
                ObjectType::Table => "table",
                ObjectType::Stream => "stream",
                ObjectType::MaterializedView => "materialized view",
                other => {
                    return Err(unsupported(format!(
                        "DROP {other} (supported: DROP TABLE, DROP STREAM, DROP MATERIALIZED VIEW)"
                    )))
                }
            };
            if cascade || restrict || purge || temporary || table.is_some() {
                return Err(unsupported(
                    "DROP options (CASCADE/RESTRICT/PURGE/TEMPORARY/ON)",
                ));
            }
            if names.len() != 1 {
                return Err(unsupported(format!(
                    "dropping several {what}s in one statement; drop one per statement"
                )));
            }
            let name = object_name(&names[0], what)?;
            Ok(match object_type {
                ObjectType::Table => Statement::DropTable { name, if_exists },
                ObjectType::Stream => Statement::DropStream { name, if_exists },
                _ => Statement::DropView { name, if_exists },
            })
        }
        ast::Statement::ShowTables {
            terse,
            history,
            extended,
            full,
            external,
            show_options,
        } => {
            let o = &show_options;
            if terse
                || history
                || extended
                || full
                || external
                || o.show_in.is_some()
                || o.starts_with.is_some()
                || o.limit.is_some()
                || o.limit_from.is_some()
                || o.filter_position.is_some()
            {
                return Err(unsupported(
                    "SHOW TABLES options (only plain SHOW TABLES is supported)",
                ));
            }
            Ok(Statement::ShowTables)
        }
        ast::Statement::ShowVariable { variable }
            if variable.len() == 1 && variable[0].value.eq_ignore_ascii_case("streams") =>
        {
            Ok(Statement::ShowStreams)
        }
        ast::Statement::ShowViews {
            terse: false,
            show_options,
            ..
        } if show_options.show_in.is_none()
            && show_options.starts_with.is_none()
            && show_options.limit.is_none()
            && show_options.limit_from.is_none()
            && show_options.filter_position.is_none() =>
        {
            // SHOW VIEWS and SHOW MATERIALIZED VIEWS: feature views are the only views.
            Ok(Statement::ShowViews)
        }
        ast::Statement::ExplainTable {
            hive_format,
            table_name,
            ..
        } => {
            if hive_format.is_some() {
                return Err(unsupported("DESCRIBE EXTENDED/FORMATTED"));
            }
            Ok(Statement::Describe {
                table: object_name(&table_name, "table")?,
            })
        }
        other => Err(unsupported(format!(
            "statement `{}` (supported: CREATE/DROP TABLE, CREATE/DROP STREAM, CREATE/DROP MATERIALIZED VIEW, SHOW TABLES, SHOW STREAMS, SHOW VIEWS, DESCRIBE, SELECT from a feature view by key)",
            truncate(&other.to_string(), 80)
        ))),
    }
}

/// Identifier folding for [`crate::view`]: the same rules as every other statement.
pub(crate) fn fold_ident(id: &ast::Ident, what: &str) -> Result<String, CoreError> {
    ident(id, what)
}

/// Unqualified object name for [`crate::view`] (same rules as table and stream names).
pub(crate) fn fold_object_name(name: &ObjectName, what: &str) -> Result<String, CoreError> {
    object_name(name, what)
}

/// At most `max` bytes of `s` (on a char boundary, `…` appended when cut), for messages.
pub(crate) fn sql_excerpt(s: &str, max: usize) -> String {
    truncate(s, max)
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// Postgres identifier rules: fold unquoted names to lower case, keep quoted names.
fn ident(id: &ast::Ident, what: &str) -> Result<String, CoreError> {
    let name = if id.quote_style.is_some() {
        id.value.clone()
    } else {
        id.value.to_lowercase()
    };
    if name.is_empty() {
        return Err(unsupported(format!("empty {what} name")));
    }
    if name.len() > MAX_IDENTIFIER_BYTES {
        return Err(CoreError::LimitExceeded(format!(
            "{what} name \"{}\" is {} bytes, the limit is {MAX_IDENTIFIER_BYTES}",
            truncate(&name, 32),
            name.len()
        )));
    }
    Ok(name)
}

fn object_name(name: &ObjectName, what: &str) -> Result<String, CoreError> {
    if name.0.len() != 1 {
        return Err(unsupported(format!(
            "qualified {what} name `{name}` (schemas are not supported)"
        )));
    }
    match name.0[0].as_ident() {
        Some(id) => ident(id, what),
        None => Err(unsupported(format!("{what} name `{name}`"))),
    }
}

fn column_type(col: &str, dt: &DataType) -> Result<ColumnType, CoreError> {
    let no_mod = |m: bool| -> Result<(), CoreError> {
        if m {
            Err(unsupported(format!(
                "type modifier in `{dt}` for column \"{col}\" (write the type without a length or precision)"
            )))
        } else {
            Ok(())
        }
    };
    Ok(match dt {
        DataType::Boolean | DataType::Bool => ColumnType::Boolean,
        DataType::BigInt(m) | DataType::Int8(m) | DataType::Integer(m) | DataType::Int(m) => {
            no_mod(m.is_some())?;
            ColumnType::BigInt
        }
        DataType::Double(info) => {
            no_mod(*info != ast::ExactNumberInfo::None)?;
            ColumnType::Double
        }
        DataType::DoublePrecision | DataType::Float8 => ColumnType::Double,
        DataType::Text => ColumnType::Text,
        DataType::Varchar(m) => {
            no_mod(m.is_some())?;
            ColumnType::Text
        }
        DataType::String(m) => {
            no_mod(m.is_some())?;
            ColumnType::Text
        }
        DataType::Bytes(m) => {
            no_mod(m.is_some())?;
            ColumnType::Bytes
        }
        DataType::Bytea => ColumnType::Bytes,
        DataType::Timestamp(p, tz) => {
            no_mod(p.is_some())?;
            match tz {
                TimezoneInfo::None | TimezoneInfo::WithoutTimeZone => ColumnType::Timestamp,
                _ => {
                    return Err(unsupported(format!(
                        "type `{dt}` for column \"{col}\" (use TIMESTAMP: µs since the epoch, UTC)"
                    )))
                }
            }
        }
        other => {
            return Err(unsupported(format!(
                "type `{other}` for column \"{col}\" (supported: BOOLEAN, BIGINT, DOUBLE, TEXT, BYTES, TIMESTAMP)"
            )))
        }
    })
}

fn lower_create(ct: CreateTable) -> Result<Statement, CoreError> {
    let name = object_name(&ct.name, "table")?;
    if ct.or_replace {
        return Err(unsupported("CREATE OR REPLACE TABLE"));
    }
    if ct.temporary || ct.global.is_some() {
        return Err(unsupported("temporary tables"));
    }
    if ct.unlogged {
        return Err(unsupported("UNLOGGED tables"));
    }
    if ct.query.is_some() {
        return Err(unsupported("CREATE TABLE ... AS SELECT"));
    }
    if ct.like.is_some() || ct.clone.is_some() {
        return Err(unsupported("CREATE TABLE ... LIKE/CLONE"));
    }
    if ct.inherits.is_some() {
        return Err(unsupported("CREATE TABLE ... INHERITS"));
    }
    if ct.partition_by.is_some() {
        return Err(unsupported("CREATE TABLE ... PARTITION BY"));
    }
    // Catch-all for every other clause the dialect may accept (WITH (...), TABLESPACE, ...):
    // the statement must equal a plain CREATE TABLE with the same name, columns and constraints.
    let mut plain =
        sqlparser::ast::helpers::stmt_create_table::CreateTableBuilder::new(ct.name.clone())
            .columns(ct.columns.clone())
            .constraints(ct.constraints.clone())
            .if_not_exists(ct.if_not_exists)
            .build();
    plain.name = ct.name.clone();
    if plain != ct {
        return Err(unsupported(format!(
            "table options in `{}` (only column definitions and PRIMARY KEY are supported)",
            truncate(&ct.to_string(), 120)
        )));
    }

    if ct.columns.is_empty() {
        return Err(unsupported("a table with no columns"));
    }
    if ct.columns.len() > MAX_COLUMNS {
        return Err(CoreError::LimitExceeded(format!(
            "table \"{name}\" has {} columns, the limit is {MAX_COLUMNS}",
            ct.columns.len()
        )));
    }

    let mut columns: Vec<ColumnDef> = Vec::with_capacity(ct.columns.len());
    let mut key: Option<usize> = None;
    let mut not_null: Vec<usize> = Vec::new();
    let mut nullable: Vec<usize> = Vec::new();
    let set_key = |key: &mut Option<usize>, idx: usize| -> Result<(), CoreError> {
        if key.is_some() {
            return Err(unsupported(
                "more than one PRIMARY KEY (composite keys are not supported)",
            ));
        }
        *key = Some(idx);
        Ok(())
    };
    for (idx, c) in ct.columns.iter().enumerate() {
        let cname = ident(&c.name, "column")?;
        if columns.iter().any(|x| x.name == cname) {
            return Err(CoreError::DuplicateColumn { column: cname });
        }
        let ty = column_type(&cname, &c.data_type)?;
        for opt in &c.options {
            if opt.name.is_some() {
                return Err(unsupported(format!(
                    "named constraint on column \"{cname}\""
                )));
            }
            match &opt.option {
                ColumnOption::PrimaryKey(pk) => {
                    if pk.characteristics.is_some() || !pk.index_options.is_empty() {
                        return Err(unsupported(format!(
                            "PRIMARY KEY options on column \"{cname}\""
                        )));
                    }
                    set_key(&mut key, idx)?;
                }
                ColumnOption::Null => nullable.push(idx),
                ColumnOption::NotNull => not_null.push(idx),
                ColumnOption::Default(_) => {
                    return Err(unsupported(format!(
                        "DEFAULT on column \"{cname}\" (unlisted columns are NULL)"
                    )))
                }
                ColumnOption::Unique(_) => {
                    return Err(unsupported(format!("UNIQUE on column \"{cname}\"")))
                }
                ColumnOption::ForeignKey(_) => {
                    return Err(unsupported(format!(
                        "REFERENCES (foreign key) on column \"{cname}\""
                    )))
                }
                ColumnOption::Check(_) => {
                    return Err(unsupported(format!("CHECK on column \"{cname}\"")))
                }
                ColumnOption::Generated { .. } => {
                    return Err(unsupported(format!(
                        "generated/identity column \"{cname}\""
                    )))
                }
                other => {
                    return Err(unsupported(format!(
                        "column option `{other}` on column \"{cname}\""
                    )))
                }
            }
        }
        columns.push(ColumnDef { name: cname, ty });
    }
    for tc in &ct.constraints {
        match tc {
            TableConstraint::PrimaryKey(pk) => {
                if pk.columns.len() != 1 {
                    return Err(unsupported(
                        "composite PRIMARY KEY (exactly one key column is supported)",
                    ));
                }
                let col = &pk.columns[0];
                let id = match &col.column.expr {
                    ast::Expr::Identifier(id) if col.operator_class.is_none() => id,
                    other => return Err(unsupported(format!("PRIMARY KEY expression `{other}`"))),
                };
                let cname = ident(id, "column")?;
                let idx = columns
                    .iter()
                    .position(|c| c.name == cname)
                    .ok_or_else(|| CoreError::UnknownColumn {
                        table: name.clone(),
                        column: cname.clone(),
                    })?;
                set_key(&mut key, idx)?;
            }
            TableConstraint::Unique(_) => return Err(unsupported("UNIQUE constraint")),
            TableConstraint::ForeignKey(_) => return Err(unsupported("FOREIGN KEY constraint")),
            TableConstraint::Check(_) => return Err(unsupported("CHECK constraint")),
            other => return Err(unsupported(format!("table constraint `{other}`"))),
        }
    }
    let Some(key_column) = key else {
        return Err(unsupported(format!(
            "table \"{name}\" without a PRIMARY KEY (exactly one PRIMARY KEY column is required)"
        )));
    };
    if let Some(&nn) = not_null.iter().find(|&&i| i != key_column) {
        return Err(unsupported(format!(
            "NOT NULL on non-key column \"{}\" (only the primary key is non-nullable)",
            columns[nn].name
        )));
    }
    if nullable.contains(&key_column) {
        return Err(unsupported(format!(
            "NULL on primary key column \"{}\" (keys are never NULL)",
            columns[key_column].name
        )));
    }
    let key_ty = columns[key_column].ty;
    if !key_ty.can_be_key() {
        return Err(unsupported(format!(
            "{key_ty} primary key on column \"{}\" (NaN and -0.0 make DOUBLE equality ambiguous)",
            columns[key_column].name
        )));
    }
    Ok(Statement::CreateTable {
        def: TableDef {
            id: 0,
            name,
            columns,
            key_column,
        },
        if_not_exists: ct.if_not_exists,
    })
}
