//! `CREATE STREAM`: not SQL that sqlparser knows, so parsed here with the parser's own
//! column-list and `WITH (...)` option parsers.

use sqlparser::ast::{self, ColumnOption};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::keywords::Keyword;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Token, TokenWithSpan};
use tarn_types::ColumnType;

use super::ident::{ident, object_name};
use super::table::column_type;
use super::{parse_error, unsupported, Statement};
use crate::schema::{ColumnDef, StreamDef};
use crate::{CoreError, MAX_COLUMNS};

/// Retention of a stream created without `retention = '...'`: 7 days.
pub const DEFAULT_RETENTION_US: i64 = 7 * 86_400_000_000;

/// `max_future` of a stream created without it: 1 minute. Events dated further after the
/// server's clock are rejected (clock skew between producers and the server is allowed up to
/// this much).
pub const DEFAULT_MAX_FUTURE_US: i64 = 60_000_000;

/// True if the statement's first two words are `CREATE STREAM`.
pub(crate) fn is_create_stream(toks: &[TokenWithSpan]) -> bool {
    let mut words = toks.iter().filter_map(|t| match &t.token {
        Token::Whitespace(_) => None,
        Token::Word(w) => Some(Some(w.value.to_ascii_uppercase())),
        _ => Some(None),
    });
    words.next() == Some(Some("CREATE".into())) && words.next() == Some(Some("STREAM".into()))
}

/// `CREATE STREAM [IF NOT EXISTS] name (col TYPE [NULL | NOT NULL], ...)
///  WITH (event_time = 'col', retention = '7 days' [, partition = 'col'] [, max_future = '1 minute']
///  [, recent = N])`
pub(crate) fn parse_create_stream(toks: Vec<TokenWithSpan>) -> Result<Statement, CoreError> {
    let dialect = PostgreSqlDialect {};
    let mut p = Parser::new(&dialect).with_tokens_with_locations(toks);
    p.expect_keyword(Keyword::CREATE).map_err(parse_error)?;
    let stream_word = p.next_token();
    debug_assert!(
        matches!(&stream_word.token, Token::Word(w) if w.value.eq_ignore_ascii_case("stream"))
    );
    let if_not_exists = p.parse_keywords(&[Keyword::IF, Keyword::NOT, Keyword::EXISTS]);
    let name = object_name(&p.parse_object_name(false).map_err(parse_error)?, "stream")?;
    let (cols, constraints) = p.parse_columns().map_err(parse_error)?;
    let options = if p.peek_token().token == Token::EOF {
        Vec::new()
    } else {
        p.parse_options(Keyword::WITH).map_err(parse_error)?
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
    let columns = stream_columns(&name, &cols)?;
    super::table::check_vector_width(&name, &columns)?;
    let opts = StreamOptions::parse(&name, &columns, &options)?;
    let (event_time, partition) = opts.roles(&name, &columns)?;
    Ok(Statement::CreateStream {
        def: StreamDef {
            id: 0,
            name,
            columns,
            event_time,
            partition,
            retention_us: opts.retention_us.unwrap_or(DEFAULT_RETENTION_US),
            max_future_us: opts.max_future_us.unwrap_or(DEFAULT_MAX_FUTURE_US),
            recent: opts.recent.unwrap_or(0),
        },
        if_not_exists,
    })
}

/// The stream's columns: at least one, at most [`MAX_COLUMNS`], unique names, only NULL /
/// NOT NULL options (which change nothing).
fn stream_columns(name: &str, cols: &[ast::ColumnDef]) -> Result<Vec<ColumnDef>, CoreError> {
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
    for c in cols {
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
    Ok(columns)
}

/// The `WITH (...)` options of a stream, each given at most once.
#[derive(Default)]
struct StreamOptions {
    event_time: Option<usize>,
    partition: Option<usize>,
    retention_us: Option<i64>,
    max_future_us: Option<i64>,
    recent: Option<u32>,
}

impl StreamOptions {
    fn parse(
        name: &str,
        columns: &[ColumnDef],
        options: &[ast::SqlOption],
    ) -> Result<StreamOptions, CoreError> {
        let mut out = StreamOptions::default();
        for o in options {
            let ast::SqlOption::KeyValue { key, value } = o else {
                return Err(unsupported(format!(
                    "stream option `{o}` (write key = 'value')"
                )));
            };
            let k = key.to_string().to_ascii_lowercase();
            let text = option_text(&k, value)?;
            out.set(name, columns, &k, &text)?;
        }
        Ok(out)
    }

    /// Sets option `k` to `text`.
    fn set(
        &mut self,
        name: &str,
        columns: &[ColumnDef],
        k: &str,
        text: &str,
    ) -> Result<(), CoreError> {
        let col = |text: &str| -> Result<usize, CoreError> {
            columns
                .iter()
                .position(|c| c.name == text)
                .ok_or_else(|| CoreError::UnknownColumn {
                    table: name.to_string(),
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
        match k {
            "event_time" => {
                dup(self.event_time.is_some())?;
                self.event_time = Some(col(text)?);
            }
            "partition" => {
                dup(self.partition.is_some())?;
                self.partition = Some(col(text)?);
            }
            "retention" => {
                dup(self.retention_us.is_some())?;
                self.retention_us = Some(dur(text)?);
            }
            "max_future" => {
                dup(self.max_future_us.is_some())?;
                self.max_future_us = Some(dur(text)?);
            }
            "recent" => {
                dup(self.recent.is_some())?;
                self.recent = Some(recent_count(text)?);
            }
            other => {
                return Err(unsupported(format!(
                    "stream option \"{other}\" (supported: event_time, retention, partition, max_future, recent)"
                )))
            }
        }
        Ok(())
    }

    /// The event-time column (required, a TIMESTAMP) and the partition column (given, or the
    /// first keyable column other than the event time).
    fn roles(&self, name: &str, columns: &[ColumnDef]) -> Result<(usize, usize), CoreError> {
        let event_time = self.event_time.ok_or_else(|| {
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
        let partition = match self.partition {
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
        Ok((event_time, partition))
    }
}

/// The value of `recent = N`: a whole number in `1..=MAX_RECENT_EVENTS_PER_KEY`.
fn recent_count(text: &str) -> Result<u32, CoreError> {
    let max = crate::MAX_RECENT_EVENTS_PER_KEY;
    match text.trim().parse::<u32>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(CoreError::InvalidArgument(format!(
            "stream option recent = {text}: the events kept per partition key must be a whole number in 1..={max} (MAX_RECENT_EVENTS_PER_KEY)"
        ))),
    }
}

/// An option's value: a quoted string, a number (for `recent`), or (for `event_time` and
/// `partition`) a bare column name.
fn option_text(k: &str, value: &ast::Expr) -> Result<String, CoreError> {
    let quoted = || {
        unsupported(format!(
            "value of stream option {k}: write it as a quoted string, e.g. {k} = '...'"
        ))
    };
    match value {
        ast::Expr::Value(v) => match &v.value {
            ast::Value::SingleQuotedString(s) => Ok(s.clone()),
            ast::Value::Number(n, _) if k == "recent" => Ok(n.to_string()),
            _ => Err(quoted()),
        },
        ast::Expr::Identifier(id) if k == "event_time" || k == "partition" => ident(id, "column"),
        // A count: whatever was written is reported by `recent_count` if it is not one.
        other if k == "recent" => Ok(other.to_string()),
        _ => Err(quoted()),
    }
}
