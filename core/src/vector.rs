//! The one conversion rule for `VECTOR(n)` values, used by every front end: JSON arrays of
//! numbers (INGEST, the CLI, upserts given as JSON), SQL literals (`'[1,2,3]'` and
//! `ARRAY[1,2,3]`), and back to text (`[1,2.5,-3]`) and JSON.
//!
//! Rules:
//! - A component is a number; it is rounded to the nearest f64 (by the JSON or SQL parser) and
//!   then to the nearest f32 (ties to even). A finite number whose f32 rounding overflows
//!   (|x| > `f32::MAX` after rounding) is refused, never turned into infinity.
//! - NaN and ±infinity are refused (written `NaN`, `inf`, `infinity` in text; JSON cannot
//!   spell them, the wire can), naming the 0-based component.
//! - The vector must have exactly the column's dimension and at least one component, and
//!   obey [`tarn_vectors::check_vector`] (finite, magnitude at most
//!   [`tarn_vectors::MAX_COMPONENT_MAGNITUDE`]).
//! - Text output is the shortest decimal that reads back as the same f32 (`{}` formatting,
//!   or `{:e}` for magnitudes outside `[1e-5, 1e16)` so that small and huge values stay
//!   short); reading it back gives the same bits, `-0` included.
//!
//! Errors are plain reasons (`String`); callers wrap them in [`CoreError::BadVector`] with the
//! row and column they concern ([`bad`]).

use crate::CoreError;

/// A component as a front end found it, before conversion to f32.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Component {
    /// A number (already the nearest f64 to its decimal text).
    Number(f64),
    /// A number whose text did not fit an f64 (e.g. `1e400`): always an overflow.
    Huge,
    /// Something else; the string names what it is (`a string`, `null`, `an array`, …).
    Other(&'static str),
}

/// [`CoreError::BadVector`] for `reason`, at `row` and `column` when known.
pub fn bad(row: Option<usize>, column: Option<&str>, reason: impl Into<String>) -> CoreError {
    CoreError::BadVector {
        row,
        column: column.map(str::to_string),
        reason: reason.into(),
    }
}

/// The f32 nearest to `x`, or why component `index` cannot be one.
pub fn to_f32(index: usize, x: f64) -> Result<f32, String> {
    if x.is_nan() {
        return Err(format!(
            "vector component {index} is NaN: NaN and infinities are not allowed"
        ));
    }
    if x.is_infinite() {
        let sign = if x > 0.0 { '+' } else { '-' };
        return Err(format!(
            "vector component {index} is {sign}infinity: NaN and infinities are not allowed"
        ));
    }
    let f = x as f32;
    if f.is_infinite() {
        return Err(overflow(index, x));
    }
    Ok(f)
}

fn overflow(index: usize, x: f64) -> String {
    format!(
        "vector component {index} is {x:e}, which overflows a 32-bit float (largest {:e})",
        f32::MAX
    )
}

/// Builds a vector for a `VECTOR(dim)` column from its components, checking every rule; the
/// first problem wins, in component order.
pub fn from_components(
    components: impl ExactSizeIterator<Item = Component>,
    dim: u32,
) -> Result<Box<[f32]>, String> {
    let got = components.len();
    if got == 0 {
        return Err(format!(
            "empty vector: a VECTOR({dim}) value has exactly {dim} components"
        ));
    }
    if got != dim as usize {
        return Err(format!("vector has {got} dimensions, expected {dim}"));
    }
    let mut out = Vec::with_capacity(got);
    for (index, c) in components.enumerate() {
        out.push(match c {
            Component::Number(x) => to_f32(index, x)?,
            Component::Huge => return Err(overflow(index, f64::INFINITY)),
            Component::Other(what) => {
                return Err(format!("vector component {index} is {what}, not a number"))
            }
        });
    }
    check(&out, dim)?;
    Ok(out.into_boxed_slice())
}

/// Checks a vector already made of f32 (from the wire) against a `VECTOR(dim)` column.
pub fn check(v: &[f32], dim: u32) -> Result<(), String> {
    if v.is_empty() {
        return Err(format!(
            "empty vector: a VECTOR({dim}) value has exactly {dim} components"
        ));
    }
    tarn_vectors::check_vector(v, dim as usize).map_err(|e| e.to_string())
}

/// Converts a parsed JSON value (the CLI, JSON upserts) for a `VECTOR(dim)` column.
pub fn from_json(v: &serde_json::Value, dim: u32) -> Result<Box<[f32]>, String> {
    let serde_json::Value::Array(items) = v else {
        return Err(format!(
            "expected a VECTOR({dim}) as a JSON array of numbers, got {}",
            json_kind(v)
        ));
    };
    from_components(items.iter().map(json_component), dim)
}

fn json_component(v: &serde_json::Value) -> Component {
    match v {
        serde_json::Value::Number(n) => match n.as_f64() {
            Some(x) if x.is_finite() => Component::Number(x),
            _ => Component::Huge,
        },
        other => Component::Other(json_kind(other)),
    }
}

/// What a JSON value is, for messages.
pub fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// Parses the text form `[1, 2.5, -3e-2]` (SQL `'[…]'` literals, CLI arguments): brackets,
/// comma-separated decimal numbers, optional whitespace. `NaN`, `inf`, `infinity` (any case,
/// signed) are recognised so that they get their specific error.
pub fn parse_text(s: &str, dim: u32) -> Result<Box<[f32]>, String> {
    let t = s.trim();
    let Some(inner) = t.strip_prefix('[').and_then(|r| r.strip_suffix(']')) else {
        return Err(format!(
            "expected a VECTOR({dim}) as text `[x, y, …]`, got {:?}",
            crate::excerpt(s, 64)
        ));
    };
    let inner = inner.trim();
    let tokens: Vec<&str> = if inner.is_empty() {
        Vec::new()
    } else {
        inner.split(',').map(str::trim).collect()
    };
    from_components(tokens.iter().map(|tok| text_component(tok)), dim)
}

pub(crate) fn text_component(tok: &str) -> Component {
    match tok.parse::<f64>() {
        // Rust parses `1e400` to infinity: only the spelled-out words are infinities.
        Ok(x) if x.is_infinite() && !tok.to_ascii_lowercase().contains("inf") => Component::Huge,
        Ok(x) => Component::Number(x),
        Err(_) if tok.is_empty() => Component::Other("empty"),
        Err(_) => Component::Other("not a decimal number"),
    }
}

/// Appends the text form of one component: the shortest decimal that reads back as `x`.
pub fn write_component(out: &mut String, x: f32) {
    use std::fmt::Write;
    let a = x.abs();
    if a == 0.0 || (1e-5..1e16).contains(&a) {
        let _ = write!(out, "{x}");
    } else {
        let _ = write!(out, "{x:e}");
    }
}

/// The text form `[1,2.5,-3]` of a vector (no spaces), read back by [`parse_text`] and by a
/// JSON parser to the same bits.
pub fn to_text(v: &[f32]) -> String {
    let mut out = String::with_capacity(2 + v.len() * 8);
    out.push('[');
    for (i, &x) in v.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_component(&mut out, x);
    }
    out.push(']');
    out
}

/// The JSON form: an array of numbers, each the f32's shortest decimal (as in [`to_text`]).
pub fn to_json(v: &[f32]) -> serde_json::Value {
    let nums = v.iter().map(|&x| {
        let mut s = String::new();
        write_component(&mut s, x);
        // The decimal is exact for serde_json's f64 (every f32 is an f64), and its shortest
        // f32 reading is `x`; going through the text keeps `0.1f32` printed as `0.1`.
        let d: f64 = s.parse().expect("a formatted f32 parses");
        serde_json::Number::from_f64(d).map_or(serde_json::Value::Null, serde_json::Value::Number)
    });
    serde_json::Value::Array(nums.collect())
}
