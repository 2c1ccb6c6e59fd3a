//! Identifiers: Postgres folding rules and Tarn's length limit, for every name in every
//! statement (tables, streams, views, columns, functions).

use sqlparser::ast::{Ident, ObjectName};

use crate::{excerpt, CoreError, MAX_IDENTIFIER_BYTES};

/// Postgres identifier rules: fold unquoted names to lower case, keep quoted names. Empty
/// names are `UNSUPPORTED`; names over [`MAX_IDENTIFIER_BYTES`] are `LIMIT_EXCEEDED` (`what`
/// says which name: "column", "table", …).
pub(crate) fn ident(id: &Ident, what: &str) -> Result<String, CoreError> {
    let name = if id.quote_style.is_some() {
        id.value.clone()
    } else {
        id.value.to_lowercase()
    };
    if name.is_empty() {
        return Err(CoreError::Unsupported(format!("empty {what} name")));
    }
    if name.len() > MAX_IDENTIFIER_BYTES {
        return Err(CoreError::LimitExceeded(format!(
            "{what} name \"{}\" is {} bytes, the limit is {MAX_IDENTIFIER_BYTES}",
            excerpt(&name, 32),
            name.len()
        )));
    }
    Ok(name)
}

/// An unqualified object name (schemas are not supported), folded like [`ident`].
pub(crate) fn object_name(name: &ObjectName, what: &str) -> Result<String, CoreError> {
    if name.0.len() != 1 {
        return Err(CoreError::Unsupported(format!(
            "qualified {what} name `{name}` (schemas are not supported)"
        )));
    }
    match name.0[0].as_ident() {
        Some(id) => ident(id, what),
        None => Err(CoreError::Unsupported(format!("{what} name `{name}`"))),
    }
}
