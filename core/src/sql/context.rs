//! `CREATE CONTEXT`, `DROP CONTEXT` and the item list of an ad hoc context request: not SQL
//! that sqlparser knows as a statement, so the header is parsed here token by token and each
//! item with sqlparser's own expression parser (an item is a function call with an alias).
//!
//! ```text
//! CREATE CONTEXT [IF NOT EXISTS] name [(param TYPE, …)] AS [SELECT]
//!     row(table, key [, columns => (c, …)]) AS item,
//!     features(view, key [, as_of => t] [, columns => (…)]) AS item,
//!     knn(index, like => key | vector => v, k => n [, ef => n] [, filter => 'cond'] [, columns => (…)]) AS item,
//!     recent(stream, key, n [, columns => (…)]) AS item, …
//! DROP CONTEXT [IF EXISTS] name
//! ```
//! A key is a literal, a parameter name, or `item.column` (a column of another item).

use sqlparser::ast::{self, FunctionArg, FunctionArgExpr, FunctionArguments, SelectItem};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::keywords::Keyword;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer};

use super::ident::{ident, object_name};
use super::literal::literal;
use super::table::column_type;
use super::{parse_error, unsupported, Statement};
use crate::context::{ContextSpec, ItemSpec, KindSpec, KnnQuerySpec, OperandSpec};
use crate::{excerpt, CoreError};

/// The statement's first two words, upper-cased (`("CREATE", "CONTEXT")`).
fn first_words(toks: &[TokenWithSpan]) -> (Option<String>, Option<String>) {
    let mut words = toks.iter().filter_map(|t| match &t.token {
        Token::Whitespace(_) => None,
        Token::Word(w) => Some(Some(w.value.to_ascii_uppercase())),
        _ => Some(None),
    });
    (words.next().flatten(), words.next().flatten())
}

/// True for `CREATE CONTEXT …` and `DROP CONTEXT …`.
pub(crate) fn is_context_ddl(toks: &[TokenWithSpan]) -> bool {
    let (a, b) = first_words(toks);
    matches!(a.as_deref(), Some("CREATE" | "DROP")) && b.as_deref() == Some("CONTEXT")
}

/// `CREATE CONTEXT …` or `DROP CONTEXT …` (see the module docs).
pub(crate) fn parse_context_ddl(toks: Vec<TokenWithSpan>) -> Result<Statement, CoreError> {
    let sql: String = toks.iter().map(|t| t.token.to_string()).collect();
    let dialect = PostgreSqlDialect {};
    let mut p = Parser::new(&dialect).with_tokens_with_locations(toks);
    let create = p.parse_keyword(Keyword::CREATE);
    if !create {
        p.expect_keyword(Keyword::DROP).map_err(parse_error)?;
    }
    let _context_word = p.next_token();
    if !create {
        let if_exists = p.parse_keywords(&[Keyword::IF, Keyword::EXISTS]);
        let name = object_name(&p.parse_object_name(false).map_err(parse_error)?, "context")?;
        expect_end(&p, "DROP CONTEXT name")?;
        return Ok(Statement::DropContext { name, if_exists });
    }
    let if_not_exists = p.parse_keywords(&[Keyword::IF, Keyword::NOT, Keyword::EXISTS]);
    let name = object_name(&p.parse_object_name(false).map_err(parse_error)?, "context")?;
    let params = if p.peek_token().token == Token::LParen {
        let (cols, constraints) = p.parse_columns().map_err(parse_error)?;
        if !constraints.is_empty() {
            return Err(unsupported("constraints on context parameters"));
        }
        params_of(&cols)?
    } else {
        Vec::new()
    };
    p.expect_keyword(Keyword::AS).map_err(parse_error)?;
    let items = items_of(&mut p)?;
    Ok(Statement::CreateContext {
        spec: ContextSpec {
            name,
            params,
            items,
        },
        sql: sql.trim().to_string(),
        if_not_exists,
    })
}

/// The items of an ad hoc context request (`[SELECT] row(cards, 'c-1') AS card, …`).
pub fn parse_items(text: &str) -> Result<Vec<ItemSpec>, CoreError> {
    let dialect = PostgreSqlDialect {};
    let toks = Tokenizer::new(&dialect, text)
        .tokenize_with_location()
        .map_err(|e| CoreError::SqlParse(e.to_string()))?;
    let mut p = Parser::new(&dialect).with_tokens_with_locations(toks);
    items_of(&mut p)
}

fn expect_end(p: &Parser, what: &str) -> Result<(), CoreError> {
    match p.peek_token().token {
        Token::EOF => Ok(()),
        t => Err(CoreError::SqlParse(format!("unexpected {t} after {what}"))),
    }
}

fn params_of(cols: &[ast::ColumnDef]) -> Result<Vec<(String, tarn_types::ColumnType)>, CoreError> {
    let mut out: Vec<(String, tarn_types::ColumnType)> = Vec::with_capacity(cols.len());
    for c in cols {
        let name = ident(&c.name, "parameter")?;
        if !c.options.is_empty() {
            return Err(unsupported(format!(
                "options on context parameter \"{name}\" (write `name TYPE`)"
            )));
        }
        if out.iter().any(|(n, _)| *n == name) {
            return Err(CoreError::DuplicateColumn { column: name });
        }
        let ty = column_type(&name, &c.data_type)?;
        out.push((name, ty));
    }
    Ok(out)
}

/// `[SELECT] item AS name, …` up to the end of the tokens.
fn items_of(p: &mut Parser) -> Result<Vec<ItemSpec>, CoreError> {
    let _select = p.parse_keyword(Keyword::SELECT);
    let projection = p.parse_projection().map_err(parse_error)?;
    expect_end(p, "the context's items")?;
    projection.into_iter().map(item_of).collect()
}

fn item_of(si: SelectItem) -> Result<ItemSpec, CoreError> {
    let (expr, alias) = match si {
        SelectItem::ExprWithAlias { expr, alias } => (expr, alias),
        other => {
            return Err(unsupported(format!(
                "context item `{}` without a name (write `kind(…) AS name`)",
                excerpt(&other.to_string(), 60)
            )))
        }
    };
    let name = ident(&alias, "context item")?;
    let ast::Expr::Function(f) = expr else {
        return Err(unsupported(format!(
            "context item {name} is `{}` (items are row(…), features(…), knn(…) or recent(…))",
            excerpt(&expr.to_string(), 60)
        )));
    };
    let kind_word = object_name(&f.name, "item kind")?;
    let mut args = Args::of(&name, f.args)?;
    let object = args.object(&name)?;
    let kind = match kind_word.as_str() {
        "row" => KindSpec::Row {
            table: object,
            key: args.operand_at(1, "key", &name)?,
        },
        "features" => KindSpec::Features {
            view: object,
            key: args.operand_at(1, "key", &name)?,
            as_of: args
                .named("as_of")
                .map(|e| operand(&e, &name))
                .transpose()?,
        },
        "recent" => KindSpec::Recent {
            stream: object,
            key: args.operand_at(1, "key", &name)?,
            n: args
                .count_at(2, "n", &name)?
                .ok_or_else(|| missing(&name, "n"))?,
        },
        "knn" => knn_of(object, &mut args, &name)?,
        other => {
            return Err(unsupported(format!(
                "context item {name}: unknown kind {other}(…) (row, features, knn, recent)"
            )))
        }
    };
    let columns = args
        .named("columns")
        .map(|e| columns_of(&e, &name))
        .transpose()?;
    args.finish(&name, &kind_word)?;
    Ok(ItemSpec {
        name,
        kind,
        columns,
    })
}

fn knn_of(index: String, args: &mut Args, name: &str) -> Result<KindSpec, CoreError> {
    let like = match args.named("like") {
        Some(e) => Some(operand(&e, name)?),
        None => args.positional(1).map(|e| operand(&e, name)).transpose()?,
    };
    let vector = args
        .named("vector")
        .map(|e| operand(&e, name))
        .transpose()?;
    let query = match (like, vector) {
        (Some(l), None) => KnnQuerySpec::Like(l),
        (None, Some(v)) => KnnQuerySpec::Vector(v),
        (Some(_), Some(_)) => {
            return Err(unsupported(format!(
                "context item {name}: give knn either like => key or vector => v, not both"
            )))
        }
        (None, None) => return Err(missing(name, "like => key or vector => v")),
    };
    let k = args
        .count_at(2, "k", name)?
        .ok_or_else(|| missing(name, "k"))?;
    let ef = match args.named("ef") {
        Some(e) => Some(count(&e, "ef", name)?),
        None => None,
    };
    let filter = match args.named("filter") {
        None => None,
        Some(e) => match literal(&e) {
            Some(Ok(tarn_types::Value::Text(s))) => Some(s),
            _ => {
                return Err(unsupported(format!(
                    "context item {name}: filter => takes a SQL condition as a string ('flagged = false')"
                )))
            }
        },
    };
    Ok(KindSpec::Knn {
        index,
        query,
        k,
        ef,
        filter,
    })
}

fn missing(item: &str, what: &str) -> CoreError {
    CoreError::InvalidArgument(format!("context item {item} needs {what}"))
}

/// A key or value: a literal, a parameter name, or `item.column`.
fn operand(e: &ast::Expr, item: &str) -> Result<OperandSpec, CoreError> {
    if let Some(v) = literal(e) {
        return Ok(OperandSpec::Literal(v?));
    }
    match e {
        ast::Expr::Identifier(id) => Ok(OperandSpec::Param(ident(id, "parameter")?)),
        ast::Expr::CompoundIdentifier(ids) if ids.len() == 2 => Ok(OperandSpec::Ref {
            item: ident(&ids[0], "context item")?,
            column: ident(&ids[1], "column")?,
        }),
        ast::Expr::Nested(inner) => operand(inner, item),
        other => Err(unsupported(format!(
            "context item {item}: `{}` as a key (a literal, a parameter, or item.column)",
            excerpt(&other.to_string(), 60)
        ))),
    }
}

fn count(e: &ast::Expr, what: &str, item: &str) -> Result<u64, CoreError> {
    match literal(e) {
        Some(Ok(tarn_types::Value::Int(n))) if n >= 0 => Ok(n as u64),
        _ => Err(CoreError::InvalidArgument(format!(
            "context item {item}: {what} must be a non-negative integer, got `{}`",
            excerpt(&e.to_string(), 40)
        ))),
    }
}

/// `columns => (a, b)`, `columns => a` or `columns => 'a, b'`.
fn columns_of(e: &ast::Expr, item: &str) -> Result<Vec<String>, CoreError> {
    let idents: Vec<&ast::Ident> = match e {
        ast::Expr::Tuple(es) => es
            .iter()
            .map(|e| match e {
                ast::Expr::Identifier(id) => Ok(id),
                other => Err(bad_columns(other, item)),
            })
            .collect::<Result<_, _>>()?,
        ast::Expr::Nested(inner) => return columns_of(inner, item),
        ast::Expr::Identifier(id) => vec![id],
        other => {
            if let Some(Ok(tarn_types::Value::Text(s))) = literal(other) {
                return s
                    .split(',')
                    .map(|c| c.trim())
                    .map(|c| {
                        if c.is_empty() {
                            Err(bad_columns(other, item))
                        } else {
                            Ok(c.to_lowercase())
                        }
                    })
                    .collect();
            }
            return Err(bad_columns(other, item));
        }
    };
    idents.into_iter().map(|id| ident(id, "column")).collect()
}

fn bad_columns(e: &ast::Expr, item: &str) -> CoreError {
    unsupported(format!(
        "context item {item}: columns => takes column names, as (a, b), got `{}`",
        excerpt(&e.to_string(), 40)
    ))
}

/// A call's arguments: positional ones in order, named ones by name; each taken once, and
/// [`Args::finish`] refuses any left over.
struct Args {
    positional: Vec<Option<ast::Expr>>,
    named: Vec<(String, Option<ast::Expr>)>,
}

impl Args {
    fn of(item: &str, args: FunctionArguments) -> Result<Args, CoreError> {
        let FunctionArguments::List(list) = args else {
            return Err(unsupported(format!(
                "context item {item}: write the kind with its arguments in parentheses"
            )));
        };
        if list.duplicate_treatment.is_some() || !list.clauses.is_empty() {
            return Err(unsupported(format!(
                "context item {item}: DISTINCT/ORDER BY inside the item's arguments"
            )));
        }
        let mut out = Args {
            positional: Vec::new(),
            named: Vec::new(),
        };
        for a in list.args {
            let (name, arg) = match a {
                FunctionArg::Unnamed(arg) => (None, arg),
                FunctionArg::Named { name, arg, .. } => (Some(ident(&name, "argument")?), arg),
                FunctionArg::ExprNamed {
                    name: ast::Expr::Identifier(name),
                    arg,
                    ..
                } => (Some(ident(&name, "argument")?), arg),
                FunctionArg::ExprNamed { name, .. } => {
                    return Err(unsupported(format!(
                        "context item {item}: argument name `{name}`"
                    )))
                }
            };
            let FunctionArgExpr::Expr(e) = arg else {
                return Err(unsupported(format!("context item {item}: `*` argument")));
            };
            match name {
                None if !out.named.is_empty() => {
                    return Err(unsupported(format!(
                        "context item {item}: positional argument after a named one"
                    )))
                }
                None => out.positional.push(Some(e)),
                Some(n) if out.named.iter().any(|(m, _)| *m == n) => {
                    return Err(unsupported(format!(
                        "context item {item}: argument {n} given twice"
                    )))
                }
                Some(n) => out.named.push((n, Some(e))),
            }
        }
        Ok(out)
    }

    fn positional(&mut self, i: usize) -> Option<ast::Expr> {
        self.positional.get_mut(i).and_then(Option::take)
    }

    fn named(&mut self, name: &str) -> Option<ast::Expr> {
        self.named
            .iter_mut()
            .find(|(n, _)| n == name)
            .and_then(|(_, e)| e.take())
    }

    /// The object (first positional argument): a name.
    fn object(&mut self, item: &str) -> Result<String, CoreError> {
        match self.positional(0) {
            Some(ast::Expr::Identifier(id)) => ident(&id, "object"),
            Some(other) => Err(unsupported(format!(
                "context item {item}: the first argument names a table, view, index or stream, got `{}`",
                excerpt(&other.to_string(), 40)
            ))),
            None => Err(missing(item, "the object it reads as its first argument")),
        }
    }

    /// The operand at position `i` or named `what`.
    fn operand_at(&mut self, i: usize, what: &str, item: &str) -> Result<OperandSpec, CoreError> {
        match self.named(what).or_else(|| self.positional(i)) {
            Some(e) => operand(&e, item),
            None => Err(missing(item, what)),
        }
    }

    /// The count at position `i` or named `what`.
    fn count_at(&mut self, i: usize, what: &str, item: &str) -> Result<Option<u64>, CoreError> {
        match self.named(what).or_else(|| self.positional(i)) {
            Some(e) => count(&e, what, item).map(Some),
            None => Ok(None),
        }
    }

    fn finish(self, item: &str, kind: &str) -> Result<(), CoreError> {
        if let Some(i) = self.positional.iter().position(Option::is_some) {
            return Err(unsupported(format!(
                "context item {item}: {kind}(…) takes no argument at position {}",
                i + 1
            )));
        }
        if let Some((n, _)) = self.named.iter().find(|(_, e)| e.is_some()) {
            return Err(unsupported(format!(
                "context item {item}: {kind}(…) has no argument {n}"
            )));
        }
        Ok(())
    }
}
