//! The SQL front end: DDL and catalog introspection statements, parsed with sqlparser's
//! `PostgreSqlDialect` and lowered to [`Statement`].
//!
//! Supported:
//! - `CREATE TABLE [IF NOT EXISTS] t (col TYPE [PRIMARY KEY] [NULL], ..., [PRIMARY KEY (col)])`
//!   with exactly one primary-key column (`NOT NULL` is accepted on the key column only, where it
//!   is implied anyway).
//! - `DROP TABLE [IF EXISTS] t` (one table per statement).
//! - `SHOW TABLES`, `DESCRIBE t` / `DESC t`.
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
use sqlparser::parser::Parser;
use tarn_types::ColumnType;

use crate::schema::{ColumnDef, TableDef};
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
    /// `SHOW TABLES`.
    ShowTables,
    /// `DESCRIBE t`.
    Describe {
        /// Table name (case-folded unless quoted).
        table: String,
    },
}

impl Statement {
    /// True for statements that change the catalog (CREATE/DROP).
    pub fn is_ddl(&self) -> bool {
        matches!(
            self,
            Statement::CreateTable { .. } | Statement::DropTable { .. }
        )
    }
}

/// Parses one or more `;`-separated statements. Any unsupported statement fails the whole text
/// (nothing is returned partially), so a script is either fully understood or rejected.
pub fn parse(sql: &str) -> Result<Vec<Statement>, CoreError> {
    let parsed = Parser::parse_sql(&PostgreSqlDialect {}, sql)
        .map_err(|e| CoreError::SqlParse(strip_prefix(&e.to_string())))?;
    if parsed.is_empty() {
        return Err(CoreError::SqlParse("no statement".into()));
    }
    parsed.into_iter().map(lower).collect()
}

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
            if object_type != ObjectType::Table {
                return Err(unsupported(format!(
                    "DROP {object_type} (only DROP TABLE is supported)"
                )));
            }
            if cascade || restrict || purge || temporary || table.is_some() {
                return Err(unsupported(
                    "DROP TABLE options (CASCADE/RESTRICT/PURGE/TEMPORARY/ON)",
                ));
            }
            if names.len() != 1 {
                return Err(unsupported(
                    "dropping several tables in one statement; use one DROP TABLE per table",
                ));
            }
            Ok(Statement::DropTable {
                name: object_name(&names[0], "table")?,
                if_exists,
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
            "statement `{}` (supported: CREATE TABLE, DROP TABLE, SHOW TABLES, DESCRIBE)",
            truncate(&other.to_string(), 80)
        ))),
    }
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
