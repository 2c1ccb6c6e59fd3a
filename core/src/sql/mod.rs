//! The SQL front end: statements parsed with sqlparser's `PostgreSqlDialect` and lowered to
//! [`Statement`]. The only code in Tarn that reads sqlparser's AST.
//!
//! Supported (one module per object):
//! - [`table`]: `CREATE TABLE [IF NOT EXISTS] t (col TYPE [PRIMARY KEY] [NULL], ..., [PRIMARY
//!   KEY (col)])` with exactly one primary-key column (`NOT NULL` is accepted on the key column
//!   only, where it is implied anyway); `DROP TABLE [IF EXISTS] t` (one table per statement).
//! - [`stream`]: `CREATE STREAM [IF NOT EXISTS] s (col TYPE [NULL|NOT NULL], ...) WITH
//!   (event_time = 'col' [, retention = '7 days'] [, partition = 'col'] [, max_future = '1
//!   minute'])`, `DROP STREAM [IF EXISTS] s`.
//! - [`view`]: `CREATE MATERIALIZED VIEW [IF NOT EXISTS] v WITH (window = …, bucket = …) AS
//!   SELECT …`, `DROP MATERIALIZED VIEW [IF EXISTS] v`; [`select`]: reads of a view by key
//!   (`SELECT * | cols FROM v WHERE key = literal | key IN (literals)`); [`knn_select`]: kNN
//!   queries (`SELECT … FROM t [WHERE …] ORDER BY col <-> | <=> | <#> vector LIMIT k`).
//! - [`index`]: `CREATE INDEX [CONCURRENTLY] [IF NOT EXISTS] i ON t USING hnsw (col [opclass])
//!   [WITH (metric = …, m = …, ef_construction = …, ef_search = …)]`, `DROP INDEX [IF EXISTS]
//!   i`; [`parse_condition`] for the filters of kNN requests.
//! - [`context`]: `CREATE CONTEXT [IF NOT EXISTS] c (param TYPE, …) AS [SELECT] item AS name,
//!   …` and `DROP CONTEXT [IF EXISTS] c` (named contexts; see [`crate::context`]).
//! - [`model`]: `CREATE MODEL [IF NOT EXISTS] m ON CONTEXT c INPUTS (item.column, …) USING
//!   logistic_regression | linear_regression WITH (weights = (…), intercept = b, …)`, `DROP
//!   MODEL [IF EXISTS] m`, `DESCRIBE MODEL m` (models; see [`crate::model_def`]).
//! - `SHOW TABLES`, `SHOW STREAMS`, `SHOW [MATERIALIZED] VIEWS`, `SHOW INDEXES`, `SHOW
//!   CONTEXTS`, `SHOW MODELS`, `DESCRIBE t` / `DESC t` (a table, a stream, a view, an index, a
//!   context or a model), answered from the catalog by [`crate::listing`].
//!
//! Types: BOOLEAN/BOOL, BIGINT/INT8/INTEGER/INT, DOUBLE/DOUBLE PRECISION/FLOAT8,
//! TEXT/VARCHAR/STRING, BYTES/BYTEA, TIMESTAMP (µs since the epoch, UTC; also spelled
//! `TIMESTAMP WITHOUT TIME ZONE`). Length/precision modifiers (`VARCHAR(10)`, `TIMESTAMP(3)`)
//! are rejected rather than silently ignored.
//!
//! Identifiers follow Postgres rules ([`ident`]): unquoted names fold to lower case, quoted
//! names keep their case. Names are at most [`crate::MAX_IDENTIFIER_BYTES`] bytes.

use sqlparser::ast::{self, ObjectType};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer};

use crate::index_def::IndexSpec;
use crate::schema::{StreamDef, TableDef};
use crate::view::ViewSpec;
use crate::CoreError;

pub mod context;
mod expr;
mod ident;
pub mod index;
pub mod insert;
pub mod knn_select;
mod literal;
pub mod model;
pub mod select;
pub mod stream;
pub mod table;
pub mod view;

pub use index::parse_condition;
pub use stream::{DEFAULT_MAX_FUTURE_US, DEFAULT_RETENTION_US};

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
    /// `SHOW INDEXES` (vector indexes, with their build progress).
    ShowIndexes,
    /// `CREATE INDEX … USING hnsw`: checked against its table when the catalog applies it.
    CreateIndex {
        /// The parsed index.
        spec: IndexSpec,
        /// `IF NOT EXISTS` was given.
        if_not_exists: bool,
    },
    /// `DROP INDEX`.
    DropIndex {
        /// Index name.
        name: String,
        /// `IF EXISTS` was given.
        if_exists: bool,
    },
    /// `DESCRIBE t`.
    Describe {
        /// Table name (case-folded unless quoted).
        table: String,
    },
    /// `CREATE MATERIALIZED VIEW`: a feature view, parsed but not yet checked against its
    /// stream ([`ViewSpec::resolve`] does that when the catalog applies it).
    CreateView {
        /// The parsed view.
        spec: ViewSpec,
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
    /// `SELECT … FROM table [WHERE …] ORDER BY col <op> <vector> LIMIT k`: a kNN query
    /// served by a vector index ([`knn_select::KnnSelect::plan`] resolves it). Not DDL.
    SelectKnn(Box<knn_select::KnnSelect>),
    /// `CREATE CONTEXT`: planned against the catalog when the catalog applies it.
    CreateContext {
        /// The parsed context.
        spec: crate::context::ContextSpec,
        /// The statement's text (kept in the catalog).
        sql: String,
        /// `IF NOT EXISTS` was given.
        if_not_exists: bool,
    },
    /// `DROP CONTEXT`.
    DropContext {
        /// Context name.
        name: String,
        /// `IF EXISTS` was given.
        if_exists: bool,
    },
    /// `SHOW CONTEXTS`.
    ShowContexts,
    /// `CREATE MODEL`: planned against the catalog when the catalog applies it.
    CreateModel {
        /// The parsed model.
        spec: crate::model_def::ModelSpec,
        /// The statement's text (kept in the catalog).
        sql: String,
        /// `IF NOT EXISTS` was given.
        if_not_exists: bool,
    },
    /// `DROP MODEL`.
    DropModel {
        /// Model name.
        name: String,
        /// `IF EXISTS` was given.
        if_exists: bool,
    },
    /// `SHOW MODELS`.
    ShowModels,
    /// `DESCRIBE MODEL m`: only a model of that name is described.
    DescribeModel {
        /// Model name.
        name: String,
    },
    /// `INSERT INTO table [(cols)] VALUES …`: an upsert replacing whole rows. Not DDL.
    /// [`insert::resolve_insert`] turns it into upsert columns and values against the table.
    Insert {
        /// Table name.
        table: String,
        /// The listed columns; `None` for all columns in table order.
        columns: Option<Vec<String>>,
        /// The rows as written.
        rows: Vec<Vec<insert::InsertValue>>,
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
                | Statement::CreateIndex { .. }
                | Statement::DropIndex { .. }
                | Statement::CreateContext { .. }
                | Statement::DropContext { .. }
                | Statement::CreateModel { .. }
                | Statement::DropModel { .. }
        )
    }
}

/// Parses one or more `;`-separated statements. Any unsupported statement fails the whole text
/// (nothing is returned partially), so a script is either fully understood or rejected.
///
/// `CREATE STREAM` is not SQL that sqlparser knows: the text is tokenized with the Postgres
/// dialect, split at top-level `;` tokens, and a statement starting with `CREATE STREAM` is
/// parsed by [`stream::parse_create_stream`] with the parser's own column-list and `WITH
/// (...)` option parsers; every other statement goes to sqlparser unchanged.
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
        if stream::is_create_stream(&toks) {
            out.push(stream::parse_create_stream(toks)?);
        } else if context::is_context_ddl(&toks) {
            out.push(context::parse_context_ddl(toks)?);
        } else if model::is_model_stmt(&toks) {
            out.push(model::parse_model_stmt(toks)?);
        } else {
            out.push(parse_one(&dialect, toks)?);
        }
    }
    if out.is_empty() {
        return Err(CoreError::SqlParse("no statement".into()));
    }
    Ok(out)
}

/// One statement that sqlparser knows, parsed and lowered.
fn parse_one(
    dialect: &PostgreSqlDialect,
    toks: Vec<TokenWithSpan>,
) -> Result<Statement, CoreError> {
    let mut parser = Parser::new(dialect).with_tokens_with_locations(toks);
    let stmt = parser.parse_statement().map_err(parse_error)?;
    if parser.peek_token().token != Token::EOF {
        return Err(CoreError::SqlParse(format!(
            "unexpected {} after the statement",
            parser.peek_token().token
        )));
    }
    lower(stmt)
}

/// A sqlparser error as a `SqlParse` error, without sqlparser's own prefix.
fn parse_error(e: sqlparser::parser::ParserError) -> CoreError {
    let msg = e.to_string();
    CoreError::SqlParse(
        msg.strip_prefix("sql parser error: ")
            .unwrap_or(&msg)
            .to_string(),
    )
}

fn unsupported(msg: impl Into<String>) -> CoreError {
    CoreError::Unsupported(msg.into())
}

fn lower(stmt: ast::Statement) -> Result<Statement, CoreError> {
    match stmt {
        ast::Statement::CreateTable(ct) => table::lower_create_table(ct),
        ast::Statement::CreateView(cv) => view::lower_create_view(cv),
        ast::Statement::CreateIndex(ci) => index::lower_create_index(ci),
        ast::Statement::Query(q) => select::lower_select(*q),
        ast::Statement::Insert(ins) => insert::lower_insert(ins),
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
            let options = cascade || restrict || purge || temporary || table.is_some();
            lower_drop(object_type, if_exists, &names, options)
        }
        ast::Statement::ShowTables {
            terse,
            history,
            extended,
            full,
            external,
            show_options,
        } => {
            if terse || history || extended || full || external || has_show_options(&show_options)
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
        ast::Statement::ShowVariable { variable }
            if variable.len() == 1 && variable[0].value.eq_ignore_ascii_case("indexes") =>
        {
            Ok(Statement::ShowIndexes)
        }
        ast::Statement::ShowVariable { variable }
            if variable.len() == 1 && variable[0].value.eq_ignore_ascii_case("contexts") =>
        {
            Ok(Statement::ShowContexts)
        }
        ast::Statement::ShowVariable { variable }
            if variable.len() == 1 && variable[0].value.eq_ignore_ascii_case("models") =>
        {
            Ok(Statement::ShowModels)
        }
        ast::Statement::ShowViews {
            terse: false,
            show_options,
            ..
        } if !has_show_options(&show_options) => {
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
                table: ident::object_name(&table_name, "table")?,
            })
        }
        other => Err(unsupported(format!(
            "statement `{}` (supported: CREATE/DROP TABLE, CREATE/DROP STREAM, CREATE/DROP MATERIALIZED VIEW, CREATE/DROP INDEX, CREATE/DROP CONTEXT, CREATE/DROP MODEL, SHOW TABLES, SHOW STREAMS, SHOW VIEWS, SHOW INDEXES, SHOW CONTEXTS, SHOW MODELS, DESCRIBE, INSERT INTO a table, SELECT from a table or feature view by key, kNN SELECT … ORDER BY col <-> | <=> | <#> vector LIMIT k)",
            crate::excerpt(&other.to_string(), 80)
        ))),
    }
}

/// `IN`, `STARTS WITH`, `LIMIT`, `FROM`, `LIKE`/`WHERE` after a SHOW.
fn has_show_options(o: &ast::ShowStatementOptions) -> bool {
    o.show_in.is_some()
        || o.starts_with.is_some()
        || o.limit.is_some()
        || o.limit_from.is_some()
        || o.filter_position.is_some()
}

/// `DROP TABLE | STREAM | MATERIALIZED VIEW | INDEX [IF EXISTS] name`; `options`: CASCADE, RESTRICT,
/// PURGE, TEMPORARY or ON was given (refused).
fn lower_drop(
    object_type: ObjectType,
    if_exists: bool,
    names: &[ast::ObjectName],
    options: bool,
) -> Result<Statement, CoreError> {
    let what = match object_type {
        ObjectType::Table => "table",
        ObjectType::Stream => "stream",
        ObjectType::MaterializedView => "materialized view",
        ObjectType::Index => "index",
        other => {
            return Err(unsupported(format!(
            "DROP {other} (supported: DROP TABLE, DROP STREAM, DROP MATERIALIZED VIEW, DROP INDEX)"
        )))
        }
    };
    if options {
        return Err(unsupported(
            "DROP options (CASCADE/RESTRICT/PURGE/TEMPORARY/ON)",
        ));
    }
    if names.len() != 1 {
        return Err(unsupported(format!(
            "dropping several {} in one statement; drop one per statement",
            if what == "index" {
                "indexes".to_string()
            } else {
                format!("{what}s")
            }
        )));
    }
    let name = ident::object_name(&names[0], what)?;
    Ok(match object_type {
        ObjectType::Table => Statement::DropTable { name, if_exists },
        ObjectType::Stream => Statement::DropStream { name, if_exists },
        ObjectType::Index => Statement::DropIndex { name, if_exists },
        _ => Statement::DropView { name, if_exists },
    })
}
