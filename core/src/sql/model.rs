//! `CREATE MODEL`, `DROP MODEL` and `DESCRIBE MODEL`: not SQL that sqlparser knows as a
//! statement, so they are parsed here token by token, the numbers and names with sqlparser's
//! own expression parser. Planned against the catalog by [`crate::model_def::plan`].
//!
//! ```text
//! CREATE MODEL [IF NOT EXISTS] name ON CONTEXT ctx
//!   INPUTS (item.column, …)
//!   USING logistic_regression | linear_regression
//!   WITH (weights = (w, …), intercept = b
//!         [, impute = (v, …)] [, mean = (v, …)] [, std = (v, …)]
//!         [, log1p = (item.column, …)]
//!         [, threshold = t])
//! DROP MODEL [IF EXISTS] name
//! SHOW MODELS
//! DESCRIBE MODEL name            (a plain DESCRIBE name finds a model too)
//! ```
//!
//! - Each input is `item.column`: a reply column of a *single* item of the context (a `row`
//!   or `features` item that is not a list item, so one value per call), of type BIGINT,
//!   DOUBLE or BOOLEAN (FALSE is 0, TRUE is 1). Inputs are unique; there are at most
//!   [`tarn_models::limits::MAX_MODEL_INPUTS`].
//! - `weights`, `impute`, `mean` and `std` take one number per input, in input order (with one
//!   input, `(w)` and `w` are the same). Numbers are integer or decimal literals, optionally
//!   negative. Defaults: `impute` 0, `mean` 0, `std` 1. `weights` and `intercept` are required.
//! - `log1p` lists the inputs that get `ln(1 + x)` (after imputation, before
//!   standardisation); the rest get none.
//! - `threshold` is the decision rule `score >= threshold`; the default is 0.5 for
//!   `logistic_regression`, and none for `linear_regression` (a score, no decision).
//! - How a score is computed: the `tarn_models` crate docs (`LinearModel`).
//!
//! The model's version is 1 (the field exists for TRAIN). Absent for now: XGBoost tree
//! ensembles through SQL (a model's JSON is ~1 MB and `MAX_SQL_BYTES` is 64 KiB: it needs an
//! import opcode), scoring requests (DECIDE), training, versions beyond 1.

use sqlparser::ast;
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::keywords::Keyword;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Token, TokenWithSpan};
use tarn_models::LinearKind;

use super::ident::{ident, object_name};
use super::literal::literal;
use super::{parse_error, Statement};
use crate::model_def::{ModelSpec, OptionValue};
use crate::{excerpt, CoreError};

/// The statement's first two significant tokens: unquoted words upper-cased, `None` for
/// anything else (a quoted name, a symbol) or when there are fewer.
fn first_words(toks: &[TokenWithSpan]) -> [Option<String>; 2] {
    let mut words = toks.iter().filter_map(|t| match &t.token {
        Token::Whitespace(_) => None,
        Token::Word(w) if w.quote_style.is_none() => Some(Some(w.value.to_ascii_uppercase())),
        _ => Some(None),
    });
    [words.next().flatten(), words.next().flatten()]
}

/// True for `CREATE MODEL …`, `DROP MODEL …` and `DESCRIBE | DESC MODEL name` (`DESCRIBE model`
/// alone describes an object named `model`).
pub(crate) fn is_model_stmt(toks: &[TokenWithSpan]) -> bool {
    let significant = toks
        .iter()
        .filter(|t| !matches!(t.token, Token::Whitespace(_)))
        .count();
    let [a, b] = first_words(toks);
    if b.as_deref() != Some("MODEL") {
        return false;
    }
    match a.as_deref() {
        Some("CREATE" | "DROP") => true,
        Some("DESCRIBE" | "DESC") => significant > 2,
        _ => false,
    }
}

fn sql_err(msg: String) -> CoreError {
    CoreError::SqlParse(msg)
}

/// The next word, which must be `word` (compared case-insensitively).
fn expect_word(p: &mut Parser, word: &str, after: &str) -> Result<(), CoreError> {
    let t = p.next_token();
    match &t.token {
        Token::Word(w) if w.value.eq_ignore_ascii_case(word) => Ok(()),
        other => Err(sql_err(format!(
            "expected {word} after {after}, found {other}"
        ))),
    }
}

fn expect_end(p: &Parser, what: &str) -> Result<(), CoreError> {
    match p.peek_token().token {
        Token::EOF => Ok(()),
        t => Err(sql_err(format!("unexpected {t} after {what}"))),
    }
}

/// `CREATE MODEL …`, `DROP MODEL …` or `DESCRIBE MODEL name` (see the module docs).
pub(crate) fn parse_model_stmt(toks: Vec<TokenWithSpan>) -> Result<Statement, CoreError> {
    let sql: String = toks.iter().map(|t| t.token.to_string()).collect();
    let dialect = PostgreSqlDialect {};
    let mut p = Parser::new(&dialect).with_tokens_with_locations(toks);
    let first = match p.next_token().token {
        Token::Word(w) => w.value.to_ascii_uppercase(),
        other => return Err(sql_err(format!("unexpected {other}"))),
    };
    let _model_word = p.next_token();
    match first.as_str() {
        "DESCRIBE" | "DESC" => {
            let name = object_name(&p.parse_object_name(false).map_err(parse_error)?, "model")?;
            expect_end(&p, "DESCRIBE MODEL name")?;
            Ok(Statement::DescribeModel { name })
        }
        "DROP" => {
            let if_exists = p.parse_keywords(&[Keyword::IF, Keyword::EXISTS]);
            let name = object_name(&p.parse_object_name(false).map_err(parse_error)?, "model")?;
            expect_end(&p, "DROP MODEL name")?;
            Ok(Statement::DropModel { name, if_exists })
        }
        _ => {
            let if_not_exists = p.parse_keywords(&[Keyword::IF, Keyword::NOT, Keyword::EXISTS]);
            let name = object_name(&p.parse_object_name(false).map_err(parse_error)?, "model")?;
            p.expect_keyword(Keyword::ON).map_err(parse_error)?;
            expect_word(&mut p, "CONTEXT", "ON")?;
            let context =
                object_name(&p.parse_object_name(false).map_err(parse_error)?, "context")?;
            expect_word(&mut p, "INPUTS", "the context's name")?;
            let inputs = match p.parse_expr().map_err(parse_error)? {
                e @ (ast::Expr::Tuple(_) | ast::Expr::Nested(_)) => names_of(&e, "INPUTS")?,
                other => {
                    return Err(sql_err(format!(
                        "INPUTS takes a parenthesised list of item.column, got `{}`",
                        excerpt(&other.to_string(), 60)
                    )))
                }
            };
            p.expect_keyword(Keyword::USING).map_err(parse_error)?;
            let kind = match p.next_token().token {
                Token::Word(w) if w.value.eq_ignore_ascii_case("logistic_regression") => {
                    LinearKind::Logistic
                }
                Token::Word(w) if w.value.eq_ignore_ascii_case("linear_regression") => {
                    LinearKind::Linear
                }
                other => {
                    return Err(CoreError::Unsupported(format!(
                        "model kind {other} (supported: logistic_regression, linear_regression; \
                         XGBoost models need an import, not yet available)"
                    )))
                }
            };
            p.expect_keyword(Keyword::WITH).map_err(parse_error)?;
            p.expect_token(&Token::LParen).map_err(parse_error)?;
            let mut options = Vec::new();
            loop {
                let opt = ident(&p.parse_identifier().map_err(parse_error)?, "option")?;
                p.expect_token(&Token::Eq).map_err(parse_error)?;
                let value = p.parse_expr().map_err(parse_error)?;
                options.push((opt.clone(), option_value(&value, &opt)?));
                if !p.consume_token(&Token::Comma) {
                    break;
                }
            }
            p.expect_token(&Token::RParen).map_err(parse_error)?;
            expect_end(&p, "the model's WITH (…)")?;
            Ok(Statement::CreateModel {
                spec: ModelSpec {
                    name,
                    context,
                    inputs,
                    kind,
                    options,
                },
                sql: sql.trim().to_string(),
                if_not_exists,
            })
        }
    }
}

/// `item.column`.
fn input_name(e: &ast::Expr, what: &str) -> Result<(String, String), CoreError> {
    match e {
        ast::Expr::CompoundIdentifier(ids) if ids.len() == 2 => {
            Ok((ident(&ids[0], "context item")?, ident(&ids[1], "column")?))
        }
        other => Err(sql_err(format!(
            "{what}: `{}` is not an input (write item.column)",
            excerpt(&other.to_string(), 60)
        ))),
    }
}

/// `(item.column, …)` or `(item.column)`.
fn names_of(e: &ast::Expr, what: &str) -> Result<Vec<(String, String)>, CoreError> {
    match e {
        ast::Expr::Tuple(es) => es.iter().map(|e| input_name(e, what)).collect(),
        ast::Expr::Nested(inner) => Ok(vec![input_name(inner, what)?]),
        other => Ok(vec![input_name(other, what)?]),
    }
}

/// An integer or decimal literal, optionally negative, as an f64.
fn number(e: &ast::Expr, opt: &str) -> Result<f64, CoreError> {
    match literal(e) {
        Some(Ok(tarn_types::Value::Int(i))) => Ok(i as f64),
        Some(Ok(tarn_types::Value::Double(d))) => Ok(d),
        Some(Err(e)) => Err(e),
        _ => Err(CoreError::InvalidArgument(format!(
            "option {opt}: `{}` is not a number (write an integer or decimal literal)",
            excerpt(&e.to_string(), 40)
        ))),
    }
}

fn option_value(e: &ast::Expr, opt: &str) -> Result<OptionValue, CoreError> {
    let is_name = |e: &ast::Expr| matches!(e, ast::Expr::CompoundIdentifier(_));
    match e {
        ast::Expr::Tuple(es) if es.iter().all(is_name) => Ok(OptionValue::Names(names_of(e, opt)?)),
        ast::Expr::Tuple(es) => Ok(OptionValue::Numbers(
            es.iter()
                .map(|e| number(e, opt))
                .collect::<Result<_, _>>()?,
        )),
        ast::Expr::Nested(inner) if is_name(inner) => {
            Ok(OptionValue::Names(vec![input_name(inner, opt)?]))
        }
        ast::Expr::Nested(inner) => Ok(OptionValue::Numbers(vec![number(inner, opt)?])),
        ast::Expr::CompoundIdentifier(_) => Ok(OptionValue::Names(vec![input_name(e, opt)?])),
        other => Ok(OptionValue::Number(number(other, opt)?)),
    }
}
