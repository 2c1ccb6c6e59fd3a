//! `CREATE TABLE` (and the column types every statement shares).

use sqlparser::ast::{self, ColumnOption, CreateTable, DataType, TableConstraint, TimezoneInfo};
use tarn_types::ColumnType;

use super::ident::{ident, object_name};
use super::{unsupported, Statement};
use crate::schema::{ColumnDef, TableDef};
use crate::{excerpt, CoreError, MAX_COLUMNS, MAX_VECTOR_COMPONENTS_PER_ROW};

/// The column type `dt` names (for column `col`, in messages). Modifiers are refused.
pub(crate) fn column_type(col: &str, dt: &DataType) -> Result<ColumnType, CoreError> {
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
        DataType::Custom(name, mods)
            if name.0.len() == 1 && name.to_string().eq_ignore_ascii_case("vector") =>
        {
            vector_type(col, mods)?
        }
        other => {
            return Err(unsupported(format!(
                "type `{other}` for column \"{col}\" (supported: BOOLEAN, BIGINT, DOUBLE, TEXT, BYTES, TIMESTAMP, VECTOR(n))"
            )))
        }
    })
}

/// `VECTOR(n)`: exactly one integer modifier, `1 <= n <= MAX_VECTOR_DIMENSIONS`.
fn vector_type(col: &str, mods: &[ast::TypeModifier]) -> Result<ColumnType, CoreError> {
    let bad = |reason: String| crate::vector::bad(None, Some(col), reason);
    let [ast::TypeModifier::Number(n, false)] = mods else {
        return Err(bad(format!(
            "VECTOR needs its dimension as one integer, e.g. VECTOR(384), got VECTOR({})",
            excerpt(
                &mods
                    .iter()
                    .map(|m| m.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                40
            )
        )));
    };
    let dim = n.parse::<u32>().unwrap_or(u32::MAX);
    ColumnType::vector(dim).map_err(|_| {
        bad(format!(
            "vector dimension {} is out of range: must be 1..={}",
            excerpt(n, 20),
            crate::MAX_VECTOR_DIMENSIONS
        ))
    })
}

/// Refuses a table whose vector columns hold more than [`MAX_VECTOR_COMPONENTS_PER_ROW`]
/// components together.
pub(crate) fn check_vector_width(table: &str, columns: &[ColumnDef]) -> Result<(), CoreError> {
    let total: u64 = columns
        .iter()
        .filter_map(|c| c.ty.vector_dim())
        .map(u64::from)
        .sum();
    if total > u64::from(MAX_VECTOR_COMPONENTS_PER_ROW) {
        return Err(CoreError::LimitExceeded(format!(
            "table \"{table}\" has {total} vector components per row, the limit is \
             {MAX_VECTOR_COMPONENTS_PER_ROW} (MAX_VECTOR_COMPONENTS_PER_ROW)"
        )));
    }
    Ok(())
}

/// Lowers `CREATE TABLE` (called by [`super::parse`]).
pub(crate) fn lower_create_table(ct: CreateTable) -> Result<Statement, CoreError> {
    let name = object_name(&ct.name, "table")?;
    refuse_table_options(&ct)?;
    if ct.columns.is_empty() {
        return Err(unsupported("a table with no columns"));
    }
    if ct.columns.len() > MAX_COLUMNS {
        return Err(CoreError::LimitExceeded(format!(
            "table \"{name}\" has {} columns, the limit is {MAX_COLUMNS}",
            ct.columns.len()
        )));
    }
    let mut cols = TableColumns::default();
    for (idx, c) in ct.columns.iter().enumerate() {
        cols.column(idx, c)?;
    }
    for tc in &ct.constraints {
        cols.constraint(&name, tc)?;
    }
    let key_column = cols.key_column(&name)?;
    check_vector_width(&name, &cols.columns)?;
    Ok(Statement::CreateTable {
        def: TableDef {
            id: 0,
            name,
            columns: cols.columns,
            key_column,
        },
        if_not_exists: ct.if_not_exists,
    })
}

/// Refuses every clause of `CREATE TABLE` but the name, columns, constraints and `IF NOT
/// EXISTS`.
fn refuse_table_options(ct: &CreateTable) -> Result<(), CoreError> {
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
    if plain != *ct {
        return Err(unsupported(format!(
            "table options in `{}` (only column definitions and PRIMARY KEY are supported)",
            excerpt(&ct.to_string(), 120)
        )));
    }
    Ok(())
}

/// The columns of a `CREATE TABLE` being lowered, and what their options said.
#[derive(Default)]
struct TableColumns {
    columns: Vec<ColumnDef>,
    key: Option<usize>,
    not_null: Vec<usize>,
    nullable: Vec<usize>,
}

impl TableColumns {
    fn set_key(&mut self, idx: usize) -> Result<(), CoreError> {
        if self.key.is_some() {
            return Err(unsupported(
                "more than one PRIMARY KEY (composite keys are not supported)",
            ));
        }
        self.key = Some(idx);
        Ok(())
    }

    /// Column `idx`: its name (unique), type and options.
    fn column(&mut self, idx: usize, c: &ast::ColumnDef) -> Result<(), CoreError> {
        let cname = ident(&c.name, "column")?;
        if self.columns.iter().any(|x| x.name == cname) {
            return Err(CoreError::DuplicateColumn { column: cname });
        }
        let ty = column_type(&cname, &c.data_type)?;
        for opt in &c.options {
            if opt.name.is_some() {
                return Err(unsupported(format!(
                    "named constraint on column \"{cname}\""
                )));
            }
            self.column_option(idx, &cname, &opt.option)?;
        }
        self.columns.push(ColumnDef { name: cname, ty });
        Ok(())
    }

    fn column_option(
        &mut self,
        idx: usize,
        cname: &str,
        option: &ColumnOption,
    ) -> Result<(), CoreError> {
        match option {
            ColumnOption::PrimaryKey(pk) => {
                if pk.characteristics.is_some() || !pk.index_options.is_empty() {
                    return Err(unsupported(format!(
                        "PRIMARY KEY options on column \"{cname}\""
                    )));
                }
                self.set_key(idx)
            }
            ColumnOption::Null => {
                self.nullable.push(idx);
                Ok(())
            }
            ColumnOption::NotNull => {
                self.not_null.push(idx);
                Ok(())
            }
            ColumnOption::Default(_) => Err(unsupported(format!(
                "DEFAULT on column \"{cname}\" (unlisted columns are NULL)"
            ))),
            ColumnOption::Unique(_) => Err(unsupported(format!("UNIQUE on column \"{cname}\""))),
            ColumnOption::ForeignKey(_) => Err(unsupported(format!(
                "REFERENCES (foreign key) on column \"{cname}\""
            ))),
            ColumnOption::Check(_) => Err(unsupported(format!("CHECK on column \"{cname}\""))),
            ColumnOption::Generated { .. } => Err(unsupported(format!(
                "generated/identity column \"{cname}\""
            ))),
            other => Err(unsupported(format!(
                "column option `{other}` on column \"{cname}\""
            ))),
        }
    }

    /// A table constraint: only `PRIMARY KEY (col)`.
    fn constraint(&mut self, table: &str, tc: &TableConstraint) -> Result<(), CoreError> {
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
                let idx = self
                    .columns
                    .iter()
                    .position(|c| c.name == cname)
                    .ok_or_else(|| CoreError::UnknownColumn {
                        table: table.to_string(),
                        column: cname.clone(),
                    })?;
                self.set_key(idx)
            }
            TableConstraint::Unique(_) => Err(unsupported("UNIQUE constraint")),
            TableConstraint::ForeignKey(_) => Err(unsupported("FOREIGN KEY constraint")),
            TableConstraint::Check(_) => Err(unsupported("CHECK constraint")),
            other => Err(unsupported(format!("table constraint `{other}`"))),
        }
    }

    /// The one key column: present, non-NULL, keyable; NOT NULL only on it.
    fn key_column(&self, table: &str) -> Result<usize, CoreError> {
        let Some(key_column) = self.key else {
            return Err(unsupported(format!(
                "table \"{table}\" without a PRIMARY KEY (exactly one PRIMARY KEY column is required)"
            )));
        };
        let columns = &self.columns;
        if let Some(&nn) = self.not_null.iter().find(|&&i| i != key_column) {
            return Err(unsupported(format!(
                "NOT NULL on non-key column \"{}\" (only the primary key is non-nullable)",
                columns[nn].name
            )));
        }
        if self.nullable.contains(&key_column) {
            return Err(unsupported(format!(
                "NULL on primary key column \"{}\" (keys are never NULL)",
                columns[key_column].name
            )));
        }
        let key_ty = columns[key_column].ty;
        if let ColumnType::Vector(_) = key_ty {
            return Err(unsupported(format!(
                "{key_ty} primary key on column \"{}\" (vectors have no equality: key the table by an id and store the vector beside it)",
                columns[key_column].name
            )));
        }
        if !key_ty.can_be_key() {
            return Err(unsupported(format!(
                "{key_ty} primary key on column \"{}\" (NaN and -0.0 make DOUBLE equality ambiguous)",
                columns[key_column].name
            )));
        }
        Ok(key_column)
    }
}
