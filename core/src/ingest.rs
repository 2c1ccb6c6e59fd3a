//! JSON events for stream ingest: bytes → typed rows.
//!
//! [`parse_json_events`] is a pure function (no I/O, no clock). It validates the whole batch
//! and returns either every row or the first error; it never panics, whatever the bytes.
//!
//! **Layout.**
//! - [`JsonLayout::Auto`]: if the first byte that is not JSON whitespace (space, tab, CR, LF)
//!   is `[`, the input is one JSON array of events; otherwise it is JSON lines.
//!   [`JsonLayout::Lines`] and [`JsonLayout::Array`] force the layout.
//! - JSON lines: one event per line, lines separated by LF (`\n`; a CR before it is accepted as
//!   whitespace, so `\r\n` works). Lines holding only spaces, tabs and CRs (and empty lines) are
//!   skipped. Each line is parsed on its own, so one event may not span lines.
//! - Array: optional whitespace, `[`, events separated by `,`, `]`, optional whitespace. The
//!   elements are delimited by a light scan (string- and nesting-aware) and each element is then
//!   parsed on its own, so every error, JSON syntax errors included, carries the exact index of
//!   the element it falls in. Errors of the array's own punctuation: input not starting with
//!   `[` → `BadEvent` with no row ("expected a JSON array of events"); an empty element
//!   (`[,`, `,,`, `,]`) → `BadEvent` at that element's index; input ending before the closing
//!   `]` → `BadEvent` at the index of the element being read (after a trailing `,`, the index
//!   of the element that should follow); anything but whitespace after the closing `]` →
//!   `BadEvent` with no row.
//! - Each event must be a JSON object; any other JSON value is `BadEvent` ("expected a JSON
//!   object, got …"). Invalid JSON (including invalid UTF-8, integers outside the i64/u64
//!   range and numbers overflowing to infinity such as `1e400`, which the JSON parser
//!   rejects) is `BadEvent` with reason `malformed JSON: <simd-json's message>`; the
//!   `character N` in that message is a byte offset within the event's own text (for an
//!   escape error, within the string holding it).
//!
//! **Rows and limits.** The row index in every error is the 0-based index of the event in the
//! batch: the i-th element of the array, or the i-th non-blank line. An input with no event
//! (empty, blank, or `[]`) is `BatchEmpty`. More than `max_rows` events is
//! `LimitExceeded("batch has more than {max_rows} events")`; events are counted by the cheap
//! delimiting scan before any event is parsed, so these two batch-level errors come first.
//! Then events are checked in order and the first error is returned (lowest row index);
//! within one event, fields are checked in the order they appear, then missing required
//! columns in column order. An error of the array's punctuation is reported after every
//! event before it has been checked.
//!
//! **Fields.** Fields map to columns by exact name (JSON keys after JSON unescaping, compared
//! byte for byte with the already case-folded column names; no case folding of keys). A field
//! that is not a column is `BadEvent { column: Some(field), reason: "field \"<field>\" is not a
//! column of this stream" }` (a field name longer than 64 bytes is cut to 64 bytes, on a
//! character boundary, followed by `…`, in the error). A field given twice in one object is
//! `BadEvent` ("field \"<field>\" appears more than once"), even if one of the values is
//! `null`. A missing field or a JSON `null` gives `Value::Null`, unless the column is required
//! (`required[i]`; a `required` shorter than `columns` counts as `false` for the rest), then
//! `MissingValue { row, column }`.
//!
//! **Conversions** (column type ← JSON value). Anything not listed is `TypeMismatch { row,
//! column, expected, got }` where `got` is the closest type of the JSON value (`true`/`false`
//! → BOOLEAN, integer → BIGINT, other number → DOUBLE, string → TEXT), except that a JSON
//! array or object is `BadEvent` ("expected <TYPE>, got a JSON array" / "… object"). A JSON
//! number is an integer when written without fraction and exponent (`-0` included); `1.0`,
//! `1e3` and `-0.0` are floats.
//! - BOOLEAN ← `true` / `false`.
//! - BIGINT ← integer in the i64 range. An integer above `i64::MAX` (up to `u64::MAX`) is
//!   `BadEvent` ("… is out of range for BIGINT"). A float, even `1.0`, is a `TypeMismatch`
//!   (got DOUBLE): no silent truncation.
//! - DOUBLE ← any JSON number; integers are converted with `as f64` (rounded to the nearest
//!   double above 2^53). The value must be finite (`NonFiniteDouble`; in practice the JSON
//!   parser already rejects overflowing literals as malformed JSON).
//! - TEXT ← string, at most [`MAX_VALUE_BYTES`] bytes of UTF-8 after unescaping, else
//!   `ValueTooLong { len, max }`.
//! - BYTES ← string holding standard base64 (alphabet `A–Z a–z 0–9 + /`, canonical `=`
//!   padding required, no whitespace, no line breaks): anything else is `BadEvent` naming the
//!   column ("invalid base64 …"). The decoded length must be at most [`MAX_VALUE_BYTES`], else
//!   `ValueTooLong` with the decoded length.
//! - TIMESTAMP ← integer = µs since the Unix epoch (UTC), any i64 (above `i64::MAX` is
//!   `BadEvent` "out of range"); or a string in RFC 3339 as accepted by [`parse_rfc3339_us`]
//!   (an invalid one is `BadEvent` "invalid RFC 3339 timestamp \"…\": <why>", the text cut to
//!   64 bytes).
//!
//! **Timestamps** as text follow the one rule of [`crate::timestamp`] (re-exported here as
//! [`parse_rfc3339_us`] and [`format_rfc3339_us`]).

use std::collections::HashMap;

use base64::Engine as _;
use simd_json::{Buffers, Node, StaticNode, Tape};

use crate::vector::Component;
use tarn_types::{ColumnType, Value, MAX_VALUE_BYTES};

use crate::schema::ColumnDef;
pub use crate::timestamp::{format_rfc3339_us, parse_rfc3339_us};
use crate::CoreError;

/// How the events are laid out in the input.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum JsonLayout {
    /// A JSON array if the first non-whitespace byte is `[`, JSON lines otherwise.
    #[default]
    Auto,
    /// JSON lines: one object per line, blank lines skipped.
    Lines,
    /// One JSON array of objects.
    Array,
}

/// Longest piece of client text (field name, timestamp) quoted in an error message, in bytes.
const EXCERPT_BYTES: usize = 64;

/// Above this many columns, field names are looked up in a hash map instead of a linear scan.
const LINEAR_LOOKUP_MAX: usize = 16;

/// Parses `input` (modified in place: simd-json parses destructively) into typed rows, one per
/// event, values in `columns` order. `required[i]` = column i must be present and non-null.
/// See the module documentation for the exact rules.
pub fn parse_json_events(
    columns: &[ColumnDef],
    required: &[bool],
    input: &mut [u8],
    layout: JsonLayout,
    max_rows: usize,
) -> Result<Vec<Vec<Value>>, CoreError> {
    let array = match layout {
        JsonLayout::Auto => input.iter().find(|&&b| !is_ws(b)) == Some(&b'['),
        JsonLayout::Lines => false,
        JsonLayout::Array => true,
    };
    let (spans, tail_error) = if array {
        split_array(input, max_rows)
    } else {
        (split_lines(input, max_rows), None)
    };
    if spans.len() > max_rows {
        return Err(CoreError::LimitExceeded(format!(
            "batch has more than {max_rows} events"
        )));
    }
    if spans.is_empty() {
        return Err(tail_error.unwrap_or(CoreError::BatchEmpty));
    }

    let mut parser = EventParser::new(columns, required);
    let longest = spans.iter().map(|s| s.end - s.start).max().unwrap_or(0);
    let mut buffers = Buffers::new(longest);
    let mut tape = Tape::null();
    let mut rows = Vec::with_capacity(spans.len());
    // Hand each event's bytes to simd-json as its own disjoint `&mut` slice, so one tape
    // (whose strings borrow the input) is reused for every event.
    let mut rest: &mut [u8] = input;
    let mut consumed = 0;
    for (row, span) in spans.iter().enumerate() {
        let (_, tail) = std::mem::take(&mut rest).split_at_mut(span.start - consumed);
        let (doc, tail) = tail.split_at_mut(span.end - span.start);
        rest = tail;
        consumed = span.end;
        if let Err(e) = simd_json::fill_tape(doc, &mut buffers, &mut tape) {
            return Err(bad_event(Some(row), None, format!("malformed JSON: {e}")));
        }
        rows.push(parser.event(row, &tape.0)?);
    }
    match tail_error {
        Some(e) => Err(e),
        None => Ok(rows),
    }
}

/// JSON insignificant whitespace.
fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn bad_event(row: Option<usize>, column: Option<String>, reason: String) -> CoreError {
    CoreError::BadEvent {
        row,
        column,
        reason,
    }
}

/// `s` cut to at most [`EXCERPT_BYTES`] bytes on a character boundary, `…` appended if cut.
fn excerpt(s: &str) -> String {
    crate::excerpt(s, EXCERPT_BYTES)
}

/// Byte ranges of the non-blank lines, stopping after `max_rows + 1` of them.
fn split_lines(input: &[u8], max_rows: usize) -> Vec<std::ops::Range<usize>> {
    let mut spans = Vec::new();
    let mut start = 0;
    while start < input.len() {
        let end = input[start..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(input.len(), |p| start + p);
        if !input[start..end]
            .iter()
            .all(|&b| matches!(b, b' ' | b'\t' | b'\r'))
        {
            spans.push(start..end);
            if spans.len() > max_rows {
                break;
            }
        }
        start = end + 1;
    }
    spans
}

/// Byte ranges of the elements of a top-level array, stopping after `max_rows + 1` of them,
/// and the error of the array's own punctuation, if any (found after the last range).
fn split_array(input: &[u8], max_rows: usize) -> (Vec<std::ops::Range<usize>>, Option<CoreError>) {
    let n = input.len();
    let skip_ws = |mut i: usize| {
        while i < n && is_ws(input[i]) {
            i += 1;
        }
        i
    };
    let after_close = |i: usize| {
        (skip_ws(i) < n).then(|| {
            bad_event(
                None,
                None,
                "malformed JSON array: unexpected data after the closing ']'".into(),
            )
        })
    };
    let mut spans = Vec::new();
    let mut i = skip_ws(0);
    if i == n {
        return (spans, None);
    }
    if input[i] != b'[' {
        let e = bad_event(None, None, "expected a JSON array of events".into());
        return (spans, Some(e));
    }
    i = skip_ws(i + 1);
    if i < n && input[i] == b']' {
        return (spans, after_close(i + 1));
    }
    loop {
        let row = spans.len();
        let start = i;
        // Scan to the `,` or `]` that ends this element: outside strings, at nesting depth 0.
        let mut depth = 0usize;
        let mut in_string = false;
        let mut close = None;
        let mut j = i;
        while j < n {
            let b = input[j];
            if in_string {
                match b {
                    b'\\' => j += 1,
                    b'"' => in_string = false,
                    _ => {}
                }
            } else {
                match b {
                    b'"' => in_string = true,
                    b'{' | b'[' => depth += 1,
                    b'}' => depth = depth.saturating_sub(1),
                    b']' if depth > 0 => depth -= 1,
                    b']' | b',' if depth == 0 => {
                        close = Some(b);
                        break;
                    }
                    _ => {}
                }
            }
            j += 1;
        }
        let end = j.min(n);
        if input[start..end].iter().all(|&b| is_ws(b)) {
            let what = match close {
                Some(b',') => "empty element before ','",
                Some(_) => "empty element before ']' (trailing comma)",
                None => "unexpected end of input, missing ']'",
            };
            let e = bad_event(Some(row), None, format!("malformed JSON array: {what}"));
            return (spans, Some(e));
        }
        spans.push(start..end);
        if spans.len() > max_rows {
            return (spans, None);
        }
        match close {
            Some(b',') => i = end + 1,
            Some(_) => return (spans, after_close(end + 1)),
            None => {
                let e = bad_event(
                    Some(row),
                    None,
                    "malformed JSON array: unexpected end of input, missing ']'".into(),
                );
                return (spans, Some(e));
            }
        }
    }
}

/// Field name → column index.
enum Lookup<'c> {
    Linear(&'c [ColumnDef]),
    Map(HashMap<&'c str, usize, foldhash::fast::RandomState>),
}

impl Lookup<'_> {
    fn get(&self, name: &str) -> Option<usize> {
        match self {
            Lookup::Linear(cols) => cols.iter().position(|c| c.name == name),
            Lookup::Map(map) => map.get(name).copied(),
        }
    }
}

/// Converts parsed events (tapes) to rows; holds the per-batch state reused by every event.
struct EventParser<'c> {
    columns: &'c [ColumnDef],
    required: &'c [bool],
    lookup: Lookup<'c>,
    /// `seen[i] == row + 1` when column `i` was given in event `row`: duplicate and missing
    /// detection without clearing anything per event.
    seen: Vec<usize>,
}

/// A JSON integer: in i64 range, or a u64 above `i64::MAX`.
#[derive(Clone, Copy)]
enum JsonInt {
    Small(i64),
    Big(u64),
}

impl<'c> EventParser<'c> {
    fn new(columns: &'c [ColumnDef], required: &'c [bool]) -> Self {
        let lookup = if columns.len() <= LINEAR_LOOKUP_MAX {
            Lookup::Linear(columns)
        } else {
            let mut map = HashMap::with_capacity_and_hasher(columns.len(), Default::default());
            for (i, c) in columns.iter().enumerate() {
                map.entry(c.name.as_str()).or_insert(i);
            }
            Lookup::Map(map)
        };
        EventParser {
            columns,
            required,
            lookup,
            seen: vec![0; columns.len()],
        }
    }

    fn required(&self, col: usize) -> bool {
        self.required.get(col).copied().unwrap_or(false)
    }

    fn column(&self, col: usize) -> Option<String> {
        Some(self.columns[col].name.clone())
    }

    /// One event's tape → one row.
    fn event(&mut self, row: usize, nodes: &[Node<'_>]) -> Result<Vec<Value>, CoreError> {
        let malformed = || bad_event(Some(row), None, "malformed JSON: bad tape".into());
        let len = match nodes.first() {
            Some(Node::Object { len, .. }) => *len,
            Some(other) => {
                let got = match other {
                    Node::Array { .. } => "a JSON array",
                    Node::String(_) => "a JSON string",
                    Node::Static(StaticNode::Null) => "null",
                    Node::Static(StaticNode::Bool(_)) => "a JSON boolean",
                    _ => "a JSON number",
                };
                return Err(bad_event(
                    Some(row),
                    None,
                    format!("expected a JSON object, got {got}"),
                ));
            }
            None => return Err(malformed()),
        };
        let stamp = row + 1;
        let mut values = vec![Value::Null; self.columns.len()];
        let mut i = 1;
        for _ in 0..len {
            let (Some(Node::String(key)), Some(value)) = (nodes.get(i), nodes.get(i + 1)) else {
                return Err(malformed());
            };
            i += 2;
            let mut children: &[Node<'_>] = &[];
            if let Node::Object { count, .. } | Node::Array { count, .. } = value {
                children = nodes.get(i..i + count).ok_or_else(malformed)?;
                i += count;
            }
            let Some(col) = self.lookup.get(key) else {
                let field = excerpt(key);
                let reason = format!("field \"{field}\" is not a column of this stream");
                return Err(bad_event(Some(row), Some(field), reason));
            };
            if self.seen[col] == stamp {
                let reason = format!("field \"{key}\" appears more than once");
                return Err(bad_event(Some(row), self.column(col), reason));
            }
            self.seen[col] = stamp;
            values[col] = match (self.columns[col].ty, value) {
                (ColumnType::Vector(dim), Node::Array { len, .. }) => {
                    self.vector(row, col, dim, *len, children)?
                }
                _ => self.convert(row, col, value)?,
            };
        }
        for col in 0..self.columns.len() {
            if self.seen[col] != stamp && self.required(col) {
                return Err(CoreError::MissingValue {
                    row: Some(row),
                    column: self.column(col),
                });
            }
        }
        Ok(values)
    }

    /// A JSON array (`len` elements, its tape nodes `children`) for a `VECTOR(dim)` column,
    /// by the rule of [`crate::vector`].
    fn vector(
        &self,
        row: usize,
        col: usize,
        dim: u32,
        len: usize,
        children: &[Node<'_>],
    ) -> Result<Value, CoreError> {
        let mut items = Vec::with_capacity(len.min(children.len()));
        let mut i = 0;
        while let Some(node) = children.get(i) {
            items.push(match *node {
                Node::Static(StaticNode::I64(x)) => Component::Number(x as f64),
                Node::Static(StaticNode::U64(x)) => Component::Number(x as f64),
                Node::Static(StaticNode::F64(x)) => Component::Number(x),
                Node::Static(StaticNode::Null) => Component::Other("null"),
                Node::Static(StaticNode::Bool(_)) => Component::Other("a boolean"),
                Node::String(_) => Component::Other("a string"),
                Node::Array { .. } => Component::Other("an array"),
                Node::Object { .. } => Component::Other("an object"),
                #[allow(unreachable_patterns)]
                Node::Static(_) => Component::Other("an unsupported JSON number"),
            });
            // A nested array or object: skip its own nodes.
            if let Node::Object { count, .. } | Node::Array { count, .. } = node {
                i += count;
            }
            i += 1;
        }
        debug_assert_eq!(items.len(), len);
        crate::vector::from_components(items.into_iter(), dim)
            .map(Value::Vector)
            .map_err(|reason| crate::vector::bad(Some(row), Some(&self.columns[col].name), reason))
    }

    fn mismatch(&self, row: usize, col: usize, got: ColumnType) -> CoreError {
        CoreError::TypeMismatch {
            row: Some(row),
            column: self.column(col),
            expected: self.columns[col].ty,
            got,
        }
    }

    /// One field value → the column's value.
    #[allow(unreachable_patterns)] // StaticNode has 128-bit variants under a simd-json feature.
    fn convert(&self, row: usize, col: usize, node: &Node<'_>) -> Result<Value, CoreError> {
        let ty = self.columns[col].ty;
        match *node {
            Node::Static(StaticNode::Null) => {
                if self.required(col) {
                    Err(CoreError::MissingValue {
                        row: Some(row),
                        column: self.column(col),
                    })
                } else {
                    Ok(Value::Null)
                }
            }
            Node::Static(StaticNode::Bool(b)) => match ty {
                ColumnType::Boolean => Ok(Value::Bool(b)),
                _ => Err(self.mismatch(row, col, ColumnType::Boolean)),
            },
            Node::Static(StaticNode::I64(i)) => self.integer(row, col, JsonInt::Small(i)),
            Node::Static(StaticNode::U64(u)) => match i64::try_from(u) {
                Ok(i) => self.integer(row, col, JsonInt::Small(i)),
                Err(_) => self.integer(row, col, JsonInt::Big(u)),
            },
            Node::Static(StaticNode::F64(f)) => match ty {
                ColumnType::Double => self.double(row, col, f),
                _ => Err(self.mismatch(row, col, ColumnType::Double)),
            },
            Node::Static(_) => Err(bad_event(
                Some(row),
                self.column(col),
                format!("expected {ty}, got an unsupported JSON number"),
            )),
            Node::String(s) => self.string(row, col, s),
            Node::Array { .. } => Err(bad_event(
                Some(row),
                self.column(col),
                format!("expected {ty}, got a JSON array"),
            )),
            Node::Object { .. } => Err(bad_event(
                Some(row),
                self.column(col),
                format!("expected {ty}, got a JSON object"),
            )),
        }
    }

    fn double(&self, row: usize, col: usize, f: f64) -> Result<Value, CoreError> {
        if f.is_finite() {
            Ok(Value::Double(f))
        } else {
            Err(CoreError::NonFiniteDouble {
                row: Some(row),
                column: self.column(col),
            })
        }
    }

    fn integer(&self, row: usize, col: usize, v: JsonInt) -> Result<Value, CoreError> {
        let ty = self.columns[col].ty;
        match (ty, v) {
            (ColumnType::BigInt, JsonInt::Small(i)) => Ok(Value::Int(i)),
            (ColumnType::Timestamp, JsonInt::Small(i)) => Ok(Value::Timestamp(i)),
            (ColumnType::Double, JsonInt::Small(i)) => self.double(row, col, i as f64),
            (ColumnType::Double, JsonInt::Big(u)) => self.double(row, col, u as f64),
            (ColumnType::BigInt | ColumnType::Timestamp, JsonInt::Big(u)) => Err(bad_event(
                Some(row),
                self.column(col),
                format!("{u} is out of range for {ty} (at most {})", i64::MAX),
            )),
            _ => Err(self.mismatch(row, col, ColumnType::BigInt)),
        }
    }

    fn string(&self, row: usize, col: usize, s: &str) -> Result<Value, CoreError> {
        let too_long = |len: usize| CoreError::ValueTooLong {
            row: Some(row),
            column: self.column(col),
            len,
            max: MAX_VALUE_BYTES,
        };
        match self.columns[col].ty {
            ColumnType::Text if s.len() > MAX_VALUE_BYTES => Err(too_long(s.len())),
            ColumnType::Text => Ok(Value::Text(s.to_owned())),
            ColumnType::Bytes => {
                match base64::engine::general_purpose::STANDARD.decode(s.as_bytes()) {
                    Ok(b) if b.len() > MAX_VALUE_BYTES => Err(too_long(b.len())),
                    Ok(b) => Ok(Value::Bytes(b)),
                    Err(e) => Err(bad_event(
                        Some(row),
                        self.column(col),
                        format!("invalid base64 (standard alphabet, padded): {e}"),
                    )),
                }
            }
            ColumnType::Timestamp => match parse_rfc3339_us(s) {
                Ok(us) => Ok(Value::Timestamp(us)),
                Err(why) => Err(bad_event(
                    Some(row),
                    self.column(col),
                    format!("invalid RFC 3339 timestamp \"{}\": {why}", excerpt(s)),
                )),
            },
            _ => Err(self.mismatch(row, col, ColumnType::Text)),
        }
    }
}
