use base64::Engine as _;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tarn_types::{ColumnType, Value, MAX_VALUE_BYTES};

use crate::ingest::{format_rfc3339_us, parse_json_events, parse_rfc3339_us, JsonLayout};
use crate::schema::ColumnDef;
use crate::{CoreError, ErrorKind};

const LINES: JsonLayout = JsonLayout::Lines;
const ARRAY: JsonLayout = JsonLayout::Array;
const AUTO: JsonLayout = JsonLayout::Auto;

fn col(name: &str, ty: ColumnType) -> ColumnDef {
    ColumnDef {
        name: name.into(),
        ty,
    }
}

/// id BIGINT, name TEXT, ok BOOLEAN, score DOUBLE, at TIMESTAMP (required), blob BYTES.
fn cols() -> Vec<ColumnDef> {
    vec![
        col("id", ColumnType::BigInt),
        col("name", ColumnType::Text),
        col("ok", ColumnType::Boolean),
        col("score", ColumnType::Double),
        col("at", ColumnType::Timestamp),
        col("blob", ColumnType::Bytes),
    ]
}

const REQ: [bool; 6] = [false, false, false, false, true, false];

fn parse_with(input: &str, layout: JsonLayout, max: usize) -> Result<Vec<Vec<Value>>, CoreError> {
    let mut bytes = input.as_bytes().to_vec();
    parse_json_events(&cols(), &REQ, &mut bytes, layout, max)
}

fn parse(input: &str, layout: JsonLayout) -> Result<Vec<Vec<Value>>, CoreError> {
    parse_with(input, layout, 1000)
}

fn ok(input: &str, layout: JsonLayout) -> Vec<Vec<Value>> {
    parse(input, layout).unwrap_or_else(|e| panic!("{input:?}: {e}"))
}

fn err(input: &str, layout: JsonLayout) -> CoreError {
    match parse(input, layout) {
        Ok(rows) => panic!("{input:?} parsed: {rows:?}"),
        Err(e) => e,
    }
}

/// Asserts kind, row and column of an error; returns its message.
fn check(e: &CoreError, kind: ErrorKind, row: Option<usize>, column: Option<&str>) -> String {
    assert_eq!(e.kind(), kind, "{e}");
    assert_eq!(e.row(), row, "{e}");
    assert_eq!(e.column(), column, "{e}");
    e.to_string()
}

/// A one-field event (plus the required `at`) parsed as JSON lines.
fn one(field: &str, json: &str) -> Result<Value, CoreError> {
    let idx = cols().iter().position(|c| c.name == field).unwrap();
    let input = if field == "at" {
        format!("{{\"at\":{json}}}")
    } else {
        format!("{{\"at\":0,\"{field}\":{json}}}")
    };
    parse(&input, LINES).map(|mut rows| rows.remove(0).swap_remove(idx))
}

fn text(s: &str) -> Value {
    Value::Text(s.into())
}

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

const EV0: &str = r#"{"id":1,"name":"a\"b\u00e9","ok":true,"score":0.5,"at":"2026-11-26T01:02:03.000004Z","blob":"AAEC"}"#;
const EV1: &str = r#"{"at":-5,"id":null}"#;
const EV2: &str = r#"  { "score" : 7 , "at" : 1 , "ok" : false }  "#;

fn expected() -> Vec<Vec<Value>> {
    let at0 = parse_rfc3339_us("2026-11-26T01:02:03.000004Z").unwrap();
    vec![
        vec![
            Value::Int(1),
            text("a\"bé"),
            Value::Bool(true),
            Value::Double(0.5),
            Value::Timestamp(at0),
            Value::Bytes(vec![0, 1, 2]),
        ],
        vec![
            Value::Null,
            Value::Null,
            Value::Null,
            Value::Null,
            Value::Timestamp(-5),
            Value::Null,
        ],
        vec![
            Value::Null,
            Value::Null,
            Value::Bool(false),
            Value::Double(7.0),
            Value::Timestamp(1),
            Value::Null,
        ],
    ]
}

#[test]
fn json_lines_with_blank_lines_and_crlf() {
    let input = format!("\n  \t\r\n{EV0}\r\n\n{EV1}\n \r\n{EV2}");
    assert_eq!(ok(&input, LINES), expected());
    assert_eq!(ok(&input, AUTO), expected());
    // Trailing newline, no blank lines.
    assert_eq!(ok(&format!("{EV0}\n{EV1}\n{EV2}\n"), AUTO), expected());
}

#[test]
fn json_array_and_auto_detection() {
    let input = format!(" \r\n\t[{EV0},\n{EV1} ,{EV2}\n]\n ");
    assert_eq!(ok(&input, ARRAY), expected());
    assert_eq!(ok(&input, AUTO), expected());
    assert_eq!(ok(&format!("[{EV0},{EV1},{EV2}]"), AUTO), expected());
    // Commas and brackets inside strings do not split elements.
    let rows = ok(r#"[{"at":1,"name":"a,]}[{\"\\"}, {"at":2}]"#, AUTO);
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0][1], text("a,]}[{\"\\"));

    // Forcing the other layout.
    let e = err(&format!("[{EV0}]"), LINES);
    let msg = check(&e, ErrorKind::BadEvent, Some(0), None);
    assert_eq!(msg, "row 0: expected a JSON object, got a JSON array");
    let e = err(&format!("{EV0}\n{EV1}"), ARRAY);
    let msg = check(&e, ErrorKind::BadEvent, None, None);
    assert_eq!(msg, "expected a JSON array of events");
}

#[test]
fn events_must_be_objects() {
    for (event, got) in [
        ("1", "a JSON number"),
        ("-2.5", "a JSON number"),
        ("\"x\"", "a JSON string"),
        ("null", "null"),
        ("true", "a JSON boolean"),
        ("[1]", "a JSON array"),
    ] {
        let e = err(&format!("{EV1}\n{event}"), LINES);
        let msg = check(&e, ErrorKind::BadEvent, Some(1), None);
        assert_eq!(msg, format!("row 1: expected a JSON object, got {got}"));
        let e = err(&format!("[{EV1},{event}]"), AUTO);
        assert_eq!(e.to_string(), msg);
    }
}

#[test]
fn syntax_errors_carry_the_event_index() {
    let bad_events = [
        r#"{"at":1"#,                        // unterminated object
        r#"{"at":1,}"#,                      // trailing comma
        r#"{"at":1} x"#,                     // trailing data
        r#"{"at":tru}"#,                     // bad atom
        r#"{"at":01}"#,                      // bad number
        r#"{"at":1,"name":"\q"}"#,           // bad escape
        r#"{"at":1,"name":"\ud800"}"#,       // lone surrogate
        r#"{"at":1,"name":"unterminated}"#,  // unterminated string
        "{\"at\":1,\"name\":\"tab\there\"}", // raw control character in a string
        r#"{"at":18446744073709551616}"#,    // integer beyond u64
        r#"{"at":1,"score":1e400}"#,         // overflows to infinity
        r#"{"at" 1}"#,                       // missing colon
    ];
    for bad in bad_events {
        for pos in 0..3 {
            let mut events = vec![EV0, EV1, EV2];
            events.insert(pos, bad);
            let e = err(&events.join("\n"), AUTO);
            let msg = check(&e, ErrorKind::BadEvent, Some(pos), None);
            assert!(msg.contains("malformed JSON"), "{bad}: {msg}");
            let e = err(&format!("[{}]", events.join(",")), AUTO);
            check(&e, ErrorKind::BadEvent, Some(pos), None);
        }
    }
    // Invalid UTF-8 in the second event.
    for array in [false, true] {
        let mut input = Vec::new();
        input.extend_from_slice(if array { b"[" } else { b"" });
        input.extend_from_slice(EV0.as_bytes());
        input.extend_from_slice(if array { b"," } else { b"\n" });
        input.extend_from_slice(b"{\"at\":1,\"name\":\"\xff\xfe\"}");
        input.extend_from_slice(if array { b"]" } else { b"" });
        let e = parse_json_events(&cols(), &REQ, &mut input, AUTO, 10).unwrap_err();
        check(&e, ErrorKind::BadEvent, Some(1), None);
    }
}

#[test]
fn array_punctuation_errors() {
    let cases: &[(&str, Option<usize>, &str)] = &[
        ("[,{\"at\":1}]", Some(0), "empty element before ','"),
        (
            "[{\"at\":1},]",
            Some(1),
            "empty element before ']' (trailing comma)",
        ),
        (
            "[{\"at\":1},,{\"at\":1}]",
            Some(1),
            "empty element before ','",
        ),
        (
            "[{\"at\":1}",
            Some(0),
            "unexpected end of input, missing ']'",
        ),
        (
            "[{\"at\":1},",
            Some(1),
            "unexpected end of input, missing ']'",
        ),
        (
            "[{\"at\":1},  \n",
            Some(1),
            "unexpected end of input, missing ']'",
        ),
        ("[", Some(0), "unexpected end of input, missing ']'"),
        (
            "[{\"at\":1}] x",
            None,
            "unexpected data after the closing ']'",
        ),
        (
            "[{\"at\":1}]]",
            None,
            "unexpected data after the closing ']'",
        ),
        ("[] []", None, "unexpected data after the closing ']'"),
        ("[{\"at\":1} {\"at\":2}]", Some(0), "malformed JSON"),
        ("[{\"at\":1}}]", Some(0), "malformed JSON"),
        ("[{\"at\":[1}, {\"at\":1}]", Some(0), "malformed JSON"),
    ];
    for &(input, row, what) in cases {
        let e = err(input, AUTO);
        let msg = check(&e, ErrorKind::BadEvent, row, None);
        assert!(msg.contains(what), "{input}: {msg}");
    }
    // An event's own error comes before a later punctuation error.
    let e = err("[{\"at\":1},{\"nope\":1},", AUTO);
    check(&e, ErrorKind::BadEvent, Some(1), Some("nope"));
    let e = err("[{\"at\":1},{\"at\":true}] x", AUTO);
    check(&e, ErrorKind::TypeMismatch, Some(1), Some("at"));
}

#[test]
fn fields_map_to_columns_exactly() {
    let e = err(&format!("{EV0}\n{{\"at\":1,\"ID\":2}}"), AUTO);
    let msg = check(&e, ErrorKind::BadEvent, Some(1), Some("ID"));
    assert_eq!(
        msg,
        "row 1, column \"ID\": field \"ID\" is not a column of this stream"
    );
    // Keys are compared after JSON unescaping.
    assert_eq!(
        ok(r#"{"a\u0074":3,"\u0069d":4}"#, LINES)[0][..5],
        [
            Value::Int(4),
            Value::Null,
            Value::Null,
            Value::Null,
            Value::Timestamp(3)
        ]
    );
    // Long unknown names are cut in the error.
    let long = "é".repeat(40); // 80 bytes
    let e = err(&format!("{{\"at\":1,\"{long}\":1}}"), LINES);
    let cut = format!("{}…", "é".repeat(32));
    check(&e, ErrorKind::BadEvent, Some(0), Some(cut.as_str()));
    // An empty key is just an unknown field.
    let e = err(r#"{"at":1,"":1}"#, LINES);
    check(&e, ErrorKind::BadEvent, Some(0), Some(""));
}

#[test]
fn duplicate_fields_are_rejected() {
    for dup in [
        r#"{"at":1,"id":1,"id":2}"#,
        r#"{"at":1,"id":null,"id":2}"#,
        r#"{"at":1,"id":1,"id":null}"#,
        r#"{"at":1,"at":1}"#,
    ] {
        let e = err(&format!("{EV1}\n{EV2}\n{dup}"), AUTO);
        let col = if dup.contains("\"id\"") { "id" } else { "at" };
        let msg = check(&e, ErrorKind::BadEvent, Some(2), Some(col));
        assert!(msg.ends_with(&format!("field \"{col}\" appears more than once")));
    }
    // The same field in different events is fine.
    assert_eq!(ok(&format!("{EV1}\n{EV1}"), AUTO).len(), 2);
}

#[test]
fn missing_and_null_values() {
    // Missing or null optional columns are NULL.
    assert_eq!(ok(r#"{"at":1,"name":null}"#, LINES)[0][1], Value::Null);
    // The required column: missing, or null.
    let e = err(&format!("{EV0}\n{{\"id\":1}}"), AUTO);
    let msg = check(&e, ErrorKind::MissingValue, Some(1), Some("at"));
    assert_eq!(
        msg,
        "row 1, column \"at\": a value is required (missing or null)"
    );
    let e = err(&format!("[{EV0},{EV1},{{\"at\":null}}]"), AUTO);
    check(&e, ErrorKind::MissingValue, Some(2), Some("at"));
    let e = err("{}", AUTO);
    check(&e, ErrorKind::MissingValue, Some(0), Some("at"));

    // Field order decides between two errors in one event; missing columns come last.
    let e = err(r#"{"id":"x","nope":1}"#, LINES);
    check(&e, ErrorKind::TypeMismatch, Some(0), Some("id"));
    let e = err(r#"{"nope":1,"id":"x"}"#, LINES);
    check(&e, ErrorKind::BadEvent, Some(0), Some("nope"));
    let e = err(r#"{"id":"x"}"#, LINES);
    check(&e, ErrorKind::TypeMismatch, Some(0), Some("id"));

    // `required` shorter than the columns: the rest are optional; several required columns
    // are reported in column order.
    let mut input = b"{\"id\":1}".to_vec();
    let rows = parse_json_events(&cols(), &[], &mut input, LINES, 10).unwrap();
    assert_eq!(rows[0][0], Value::Int(1));
    let mut input = b"{\"name\":\"x\"}".to_vec();
    let e = parse_json_events(&cols(), &[true, false, true], &mut input, LINES, 10).unwrap_err();
    check(&e, ErrorKind::MissingValue, Some(0), Some("id"));
}

fn mismatch(field: &str, json: &str, got: ColumnType) {
    let e = one(field, json).unwrap_err();
    let msg = check(&e, ErrorKind::TypeMismatch, Some(0), Some(field));
    let expected = cols().iter().find(|c| c.name == field).unwrap().ty;
    assert!(
        msg.ends_with(&format!("expected {expected}, got {got}")),
        "{msg}"
    );
}

fn bad(field: &str, json: &str, reason: &str) {
    let e = one(field, json).unwrap_err();
    let msg = check(&e, ErrorKind::BadEvent, Some(0), Some(field));
    assert!(msg.contains(reason), "{field} <- {json}: {msg}");
}

#[test]
fn boolean_and_mismatches() {
    assert_eq!(one("ok", "true").unwrap(), Value::Bool(true));
    assert_eq!(one("ok", "false").unwrap(), Value::Bool(false));
    mismatch("ok", "1", ColumnType::BigInt);
    mismatch("ok", "\"true\"", ColumnType::Text);
    mismatch("ok", "1.0", ColumnType::Double);
    bad("ok", "[true]", "expected BOOLEAN, got a JSON array");
    bad("ok", "{}", "expected BOOLEAN, got a JSON object");
    // Every column type against array/object values, and bool into the others.
    for c in cols() {
        bad(
            &c.name,
            "[]",
            &format!("expected {}, got a JSON array", c.ty),
        );
        bad(
            &c.name,
            "{\"a\":[1]}",
            &format!("expected {}, got a JSON object", c.ty),
        );
        if c.ty != ColumnType::Boolean {
            mismatch(&c.name, "true", ColumnType::Boolean);
        }
    }
    // A nested value does not disturb the following fields.
    let e = err(
        r#"{"at":1,"blob":{"x":[1,{"y":2}],"z":"w"},"id":"q"}"#,
        LINES,
    );
    check(&e, ErrorKind::BadEvent, Some(0), Some("blob"));
}

#[test]
fn bigint() {
    assert_eq!(one("id", "0").unwrap(), Value::Int(0));
    assert_eq!(one("id", "-0").unwrap(), Value::Int(0));
    assert_eq!(one("id", "-17").unwrap(), Value::Int(-17));
    assert_eq!(
        one("id", "9223372036854775807").unwrap(),
        Value::Int(i64::MAX)
    );
    assert_eq!(
        one("id", "-9223372036854775808").unwrap(),
        Value::Int(i64::MIN)
    );
    bad("id", "9223372036854775808", "out of range for BIGINT");
    bad("id", "18446744073709551615", "out of range for BIGINT");
    mismatch("id", "1.0", ColumnType::Double);
    mismatch("id", "1e3", ColumnType::Double);
    mismatch("id", "-0.0", ColumnType::Double);
    mismatch("id", "\"1\"", ColumnType::Text);
    // Beyond the u64/i64 range the JSON parser itself refuses the number.
    let e = one("id", "18446744073709551616").unwrap_err();
    check(&e, ErrorKind::BadEvent, Some(0), None);
    let e = one("id", "-9223372036854775809").unwrap_err();
    check(&e, ErrorKind::BadEvent, Some(0), None);
}

#[test]
fn double() {
    assert_eq!(one("score", "0.25").unwrap(), Value::Double(0.25));
    assert_eq!(one("score", "-3").unwrap(), Value::Double(-3.0));
    assert_eq!(one("score", "1e3").unwrap(), Value::Double(1000.0));
    assert_eq!(one("score", "1E-2").unwrap(), Value::Double(0.01));
    assert_eq!(one("score", "1e-400").unwrap(), Value::Double(0.0));
    match one("score", "-0.0").unwrap() {
        Value::Double(d) => assert!(d == 0.0 && d.is_sign_negative()),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        one("score", "9007199254740993").unwrap(),
        Value::Double(9007199254740993_i64 as f64)
    );
    assert_eq!(
        one("score", "18446744073709551615").unwrap(),
        Value::Double(u64::MAX as f64)
    );
    assert_eq!(
        one("score", "-9223372036854775808").unwrap(),
        Value::Double(-(2f64.powi(63)))
    );
    mismatch("score", "\"1.5\"", ColumnType::Text);
    let e = one("score", "1e400").unwrap_err();
    check(&e, ErrorKind::BadEvent, Some(0), None);
}

#[test]
fn text_values() {
    assert_eq!(one("name", "\"\"").unwrap(), text(""));
    assert_eq!(
        one("name", r#""tab\t nl\n q\" bs\\ sl\/ \u00e9\ud83d\ude00 ü""#).unwrap(),
        text("tab\t nl\n q\" bs\\ sl/ é😀 ü")
    );
    mismatch("name", "12", ColumnType::BigInt);
    mismatch("name", "1.5", ColumnType::Double);

    let max = "x".repeat(MAX_VALUE_BYTES);
    assert_eq!(one("name", &format!("\"{max}\"")).unwrap(), text(&max));
    let e = one("name", &format!("\"{max}y\"")).unwrap_err();
    let msg = check(&e, ErrorKind::ValueTooLong, Some(0), Some("name"));
    assert!(msg.contains(&format!(
        "value is {} bytes, the limit is {MAX_VALUE_BYTES}",
        MAX_VALUE_BYTES + 1
    )));
    // The limit is on the unescaped UTF-8 bytes: 2^20 / 2 escaped two-byte characters fit.
    let e2 = "\\u00e9".repeat(MAX_VALUE_BYTES / 2);
    assert_eq!(
        one("name", &format!("\"{e2}\"")).unwrap(),
        text(&"é".repeat(MAX_VALUE_BYTES / 2))
    );
}

#[test]
fn bytes_base64() {
    assert_eq!(one("blob", "\"\"").unwrap(), Value::Bytes(vec![]));
    assert_eq!(one("blob", "\"AA==\"").unwrap(), Value::Bytes(vec![0]));
    assert_eq!(one("blob", "\"AAE=\"").unwrap(), Value::Bytes(vec![0, 1]));
    assert_eq!(
        one("blob", "\"+/+/\"").unwrap(),
        Value::Bytes(vec![0xfb, 0xff, 0xbf])
    );
    // Escaped JSON characters are unescaped before decoding.
    assert_eq!(one("blob", "\"\\/w==\"").unwrap(), Value::Bytes(vec![0xff]));
    let all: Vec<u8> = (0..=255).collect();
    assert_eq!(
        one("blob", &format!("\"{}\"", b64(&all))).unwrap(),
        Value::Bytes(all)
    );
    for invalid in [
        "\"AA\"",      // missing padding
        "\"AA=\"",     // short padding
        "\"AB==\"",    // non-canonical trailing bits
        "\"-_8=\"",    // URL-safe alphabet
        "\"AA AA\"",   // whitespace
        "\"AAAA\\n\"", // line break
        "\"A\"",       // impossible length
        "\"é===\"",    // not ASCII
    ] {
        bad("blob", invalid, "invalid base64");
    }
    mismatch("blob", "1", ColumnType::BigInt);

    let max = vec![7u8; MAX_VALUE_BYTES];
    assert_eq!(
        one("blob", &format!("\"{}\"", b64(&max))).unwrap(),
        Value::Bytes(max)
    );
    let e = one(
        "blob",
        &format!("\"{}\"", b64(&vec![7u8; MAX_VALUE_BYTES + 1])),
    )
    .unwrap_err();
    let msg = check(&e, ErrorKind::ValueTooLong, Some(0), Some("blob"));
    assert!(msg.contains(&format!("value is {} bytes", MAX_VALUE_BYTES + 1)));
}

#[test]
fn timestamp_values() {
    assert_eq!(one("at", "0").unwrap(), Value::Timestamp(0));
    assert_eq!(one("at", "-1").unwrap(), Value::Timestamp(-1));
    assert_eq!(
        one("at", "9223372036854775807").unwrap(),
        Value::Timestamp(i64::MAX)
    );
    assert_eq!(
        one("at", "\"1970-01-01T00:00:01.5Z\"").unwrap(),
        Value::Timestamp(1_500_000)
    );
    bad("at", "9223372036854775808", "out of range for TIMESTAMP");
    mismatch("at", "1.0", ColumnType::Double);
    mismatch("at", "1e6", ColumnType::Double);
    let e = one("at", "\"2026-02-30T00:00:00Z\"").unwrap_err();
    let msg = check(&e, ErrorKind::BadEvent, Some(0), Some("at"));
    assert!(msg.starts_with(
        "row 0, column \"at\": invalid RFC 3339 timestamp \"2026-02-30T00:00:00Z\": "
    ));
    bad("at", "\"2026-11-26T01:02:03.0000001Z\"", "sub-microsecond");
    bad(
        "at",
        "\"yesterday\"",
        "invalid RFC 3339 timestamp \"yesterday\"",
    );
    // Long text is cut in the message.
    let long = format!("\"{}\"", "9".repeat(10_000));
    let e = one("at", &long).unwrap_err();
    assert!(e.to_string().len() < 300, "{e}");
}

#[test]
fn rfc3339_parsing() {
    let t = |s: &str| parse_rfc3339_us(s).unwrap_or_else(|e| panic!("{s}: {e}"));
    // 2026-11-26T01:02:03Z = 1_795_654_923 s since the epoch.
    let base = 1_795_654_923_000_000_i64;
    assert_eq!(t("2026-11-26T01:02:03Z"), base);
    assert_eq!(t("2026-11-26t01:02:03z"), base);
    assert_eq!(t("2026-11-26 01:02:03Z"), base);
    assert_eq!(t("2026-11-26T03:02:03+02:00"), base);
    assert_eq!(t("2026-11-25T19:32:03-05:30"), base);
    assert_eq!(t("2026-11-26T01:02:03+00:00"), base);
    assert_eq!(t("2026-11-26T01:02:03-00:00"), base);
    assert_eq!(t("2026-11-27T00:01:03+22:59"), base);
    // Fractions: 1 to 9 digits, trailing zeros beyond µs allowed.
    assert_eq!(t("2026-11-26T01:02:03.5Z"), base + 500_000);
    assert_eq!(t("2026-11-26T01:02:03.000004Z"), base + 4);
    assert_eq!(t("2026-11-26T01:02:03.123456Z"), base + 123_456);
    assert_eq!(t("2026-11-26T01:02:03.123456000Z"), base + 123_456);
    assert_eq!(t("2026-11-26T01:02:03.1234560Z"), base + 123_456);
    assert_eq!(t("2026-11-26T03:02:03.999999+02:00"), base + 999_999);
    assert_eq!(t("1970-01-01T00:00:00Z"), 0);
    assert_eq!(t("1969-12-31T23:59:59.999999Z"), -1);
    assert_eq!(t("1970-01-01T01:00:00+01:00"), 0);
    assert_eq!(t("0000-01-01T00:00:00Z"), -62_167_219_200_000_000);
    assert_eq!(t("9999-12-31T23:59:59.999999Z"), 253_402_300_799_999_999);
    // Leap years.
    assert_eq!(t("2024-02-29T00:00:00Z"), 1_709_164_800_000_000);
    assert_eq!(t("2000-02-29T12:00:00Z"), 951_825_600_000_000);
    assert_eq!(
        t("2024-03-01T00:00:00Z") - t("2024-02-28T00:00:00Z"),
        2 * 86_400_000_000
    );
    assert_eq!(
        t("2023-03-01T00:00:00Z") - t("2023-02-28T00:00:00Z"),
        86_400_000_000
    );
    assert_eq!(
        t("2024-12-31T00:00:00Z") - t("2024-01-01T00:00:00Z"),
        365 * 86_400_000_000
    );
    // A leap second reads as the last µs of its minute.
    assert_eq!(t("2016-12-31T23:59:60Z"), t("2016-12-31T23:59:59.999999Z"));
    assert_eq!(
        t("2017-01-01T00:59:60+01:00"),
        t("2016-12-31T23:59:59.999999Z")
    );

    for bad in [
        "",
        "2026-11-26",
        "2026-11-26T01:02:03",          // no offset
        "2026-11-26T01:02Z",            // no seconds
        "2026-11-26X01:02:03Z",         // separator
        "2026-11-26_01:02:03Z",         // separator
        "2026-11-26T01:02:03.Z",        // empty fraction
        "2026-11-26T01:02:03.0000001Z", // sub-µs digit
        "2026-11-26T01:02:03.123456789Z",
        "2026-11-26T01:02:03.0000000000Z", // 10 digits
        "2026-11-26T01:02:03,5Z",
        "2026-13-01T00:00:00Z",
        "2026-00-01T00:00:00Z",
        "2026-04-31T00:00:00Z",
        "2023-02-29T00:00:00Z",
        "1900-02-29T00:00:00Z",
        "2026-11-26T24:00:00Z",
        "2026-11-26T23:60:00Z",
        "2026-11-26T12:00:60Z", // not a leap-second position
        "2026-11-26T01:02:03+24:00",
        "2026-11-26T01:02:03+0200",
        "2026-11-26T01:02:03+02",
        "2026-11-26T01:02:03Z ",
        " 2026-11-26T01:02:03Z",
        "+2026-11-26T01:02:03Z",
        "-0001-01-01T00:00:00Z",
        "26-11-26T01:02:03Z",
        "2026-11-26T01:02:03ZZ",
        "2026-1-26T01:02:03Z",
        "２０２６-11-26T01:02:03Z",
    ] {
        assert!(parse_rfc3339_us(bad).is_err(), "{bad:?} was accepted");
    }
    let e = parse_rfc3339_us("2026-11-26T01:02:03.0000001Z").unwrap_err();
    assert!(e.contains("sub-microsecond"), "{e}");
    let e = parse_rfc3339_us("2026-11-26T01:02:03.0000000000Z").unwrap_err();
    assert!(e.contains("at most 9"), "{e}");
}

#[test]
fn rfc3339_formatting_and_round_trip() {
    assert_eq!(format_rfc3339_us(0), "1970-01-01T00:00:00.000000Z");
    assert_eq!(format_rfc3339_us(-1), "1969-12-31T23:59:59.999999Z");
    assert_eq!(
        format_rfc3339_us(1_795_654_923_000_004),
        "2026-11-26T01:02:03.000004Z"
    );
    assert_eq!(
        format_rfc3339_us(1_709_164_800_000_000),
        "2024-02-29T00:00:00.000000Z"
    );
    assert_eq!(
        format_rfc3339_us(-62_167_219_200_000_000),
        "0000-01-01T00:00:00.000000Z"
    );
    assert_eq!(
        format_rfc3339_us(-62_167_219_200_000_001),
        "-0001-12-31T23:59:59.999999Z"
    );
    assert_eq!(
        format_rfc3339_us(253_402_300_799_999_999),
        "9999-12-31T23:59:59.999999Z"
    );
    assert_eq!(
        format_rfc3339_us(253_402_300_800_000_000),
        "+10000-01-01T00:00:00.000000Z"
    );
    assert_eq!(
        format_rfc3339_us(i64::MAX),
        "+294247-01-10T04:00:54.775807Z"
    );
    assert_eq!(
        format_rfc3339_us(i64::MIN),
        "-290308-12-21T19:59:05.224192Z"
    );

    let lo = -62_167_219_200_000_000_i64;
    let hi = 253_402_300_799_999_999_i64;
    let mut rng = StdRng::seed_from_u64(3339);
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
    );
    for i in 0..20_000 {
        let us = match i {
            0 => lo,
            1 => hi,
            _ if i % 2 == 0 => rng.random_range(lo..=hi),
            // Near the epoch and around day boundaries.
            _ => rng.random_range(-4_000_000_000_000_i64..4_000_000_000_000),
        };
        let s = format_rfc3339_us(us);
        assert_eq!(s.len(), 27, "{s}");
        assert_eq!(parse_rfc3339_us(&s), Ok(us), "{s}");
        // Cross-check against the `time` crate.
        let dt = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1000).unwrap();
        assert_eq!(dt.format(fmt).unwrap(), s);
    }
    // Every i64 formats without panicking.
    for _ in 0..10_000 {
        let us: i64 = rng.random();
        assert!(format_rfc3339_us(us).ends_with('Z'));
    }
}

#[test]
fn limits_and_empty_batches() {
    for empty in ["", " ", "\n\n", " \r\n\t\n", "[]", " [ \n ] \n", "\r\n"] {
        assert_eq!(parse(empty, AUTO), Err(CoreError::BatchEmpty), "{empty:?}");
    }
    assert_eq!(parse("", ARRAY), Err(CoreError::BatchEmpty));
    assert_eq!(parse("  ", LINES), Err(CoreError::BatchEmpty));

    let lines = |n: usize| vec![EV1; n].join("\n");
    let array = |n: usize| format!("[{}]", vec![EV1; n].join(","));
    for input in [lines(5), array(5)] {
        assert_eq!(parse_with(&input, AUTO, 5).unwrap().len(), 5);
        let e = parse_with(&input, AUTO, 4).unwrap_err();
        assert_eq!(
            e,
            CoreError::LimitExceeded("batch has more than 4 events".into())
        );
        let e = parse_with(&input, AUTO, 0).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::LimitExceeded);
    }
    // The count comes before any event is parsed: later garbage does not matter.
    let input = format!("{}\n{{garbage\n{{garbage", lines(3));
    assert_eq!(
        parse_with(&input, AUTO, 3).unwrap_err().kind(),
        ErrorKind::LimitExceeded
    );
    assert_eq!(parse_with(&input, AUTO, 5).unwrap_err().row(), Some(3));
    let input = format!("[{{\"bad\":1}},{},{{garbage", [EV1; 3].join(","));
    assert_eq!(
        parse_with(&input, AUTO, 3).unwrap_err().kind(),
        ErrorKind::LimitExceeded
    );
    // max_rows = 0 still reports an empty batch as empty.
    assert_eq!(parse_with("", AUTO, 0), Err(CoreError::BatchEmpty));
}

#[test]
fn first_error_is_the_lowest_row() {
    let events = [
        EV0,
        EV1,
        r#"{"at":1,"id":"x"}"#,
        r#"{"at":1,"nope":1}"#,
        "{broken",
    ];
    let e = err(&events.join("\n"), AUTO);
    check(&e, ErrorKind::TypeMismatch, Some(2), Some("id"));
    let e = err(&format!("[{}]", events.join(",")), AUTO);
    check(&e, ErrorKind::TypeMismatch, Some(2), Some("id"));
    let e = err(&events[3..].join("\n"), AUTO);
    check(&e, ErrorKind::BadEvent, Some(0), Some("nope"));
}

#[test]
fn wide_schemas_use_a_map() {
    let columns: Vec<ColumnDef> = (0..40)
        .map(|i| col(&format!("c{i}"), ColumnType::BigInt))
        .collect();
    let mut required = vec![false; 40];
    required[39] = true;
    let mut input = br#"{"c39":39,"c0":0,"c17":17}
{"c39":1,"c40":2}
"#
    .to_vec();
    let e = parse_json_events(&columns, &required, &mut input, AUTO, 10).unwrap_err();
    check(&e, ErrorKind::BadEvent, Some(1), Some("c40"));
    let mut input = br#"[{"c39":39,"c0":0,"c17":17},{"c39":1,"c3":"x"}]"#.to_vec();
    let e = parse_json_events(&columns, &required, &mut input, AUTO, 10).unwrap_err();
    check(&e, ErrorKind::TypeMismatch, Some(1), Some("c3"));
    let mut input = br#"{"c39":39,"c0":0,"c17":17}"#.to_vec();
    let rows = parse_json_events(&columns, &required, &mut input, AUTO, 10).unwrap();
    let mut want = vec![Value::Null; 40];
    want[0] = Value::Int(0);
    want[17] = Value::Int(17);
    want[39] = Value::Int(39);
    assert_eq!(rows, vec![want]);
    // No columns at all: only empty objects are valid.
    let mut input = b"{}\n{}".to_vec();
    let rows = parse_json_events(&[], &[], &mut input, AUTO, 10).unwrap();
    assert_eq!(rows, vec![Vec::<Value>::new(), Vec::new()]);
}

/// A random valid event as JSON text and the row it must give.
fn random_event(rng: &mut StdRng) -> (String, Vec<Value>) {
    let mut fields = Vec::new();
    let mut row = vec![Value::Null; 6];
    let at: i64 = rng.random_range(-62_167_219_200_000_000..=253_402_300_799_999_999);
    if rng.random_bool(0.5) {
        fields.push(format!("\"at\":{at}"));
    } else {
        fields.push(format!("\"at\":\"{}\"", format_rfc3339_us(at)));
    }
    row[4] = Value::Timestamp(at);
    if rng.random_bool(0.7) {
        let id: i64 = rng.random();
        fields.push(format!("\"id\":{id}"));
        row[0] = Value::Int(id);
    }
    if rng.random_bool(0.7) {
        let len = rng.random_range(0..12);
        let s: String = (0..len)
            .map(|_| match rng.random_range(0..6) {
                0 => '"',
                1 => '\\',
                2 => 'é',
                3 => ',',
                4 => ']',
                _ => char::from(rng.random_range(b'a'..=b'z')),
            })
            .collect();
        fields.push(format!("\"name\":{}", serde_json::to_string(&s).unwrap()));
        row[1] = Value::Text(s);
    }
    if rng.random_bool(0.5) {
        let b: bool = rng.random();
        fields.push(format!("\"ok\":{b}"));
        row[2] = Value::Bool(b);
    }
    if rng.random_bool(0.5) {
        let d: f64 = rng.random_range(-1e6..1e6);
        fields.push(format!("\"score\":{d:?}"));
        row[3] = Value::Double(d);
    }
    if rng.random_bool(0.3) {
        let b: Vec<u8> = (0..rng.random_range(0..10)).map(|_| rng.random()).collect();
        fields.push(format!("\"blob\":\"{}\"", b64(&b)));
        row[5] = Value::Bytes(b);
    }
    if row[2].is_null() && rng.random_bool(0.3) {
        fields.push("\"ok\":null".into());
    }
    // Shuffle the field order.
    for i in (1..fields.len()).rev() {
        fields.swap(i, rng.random_range(0..=i));
    }
    (format!("{{{}}}", fields.join(",")), row)
}

#[test]
fn random_valid_batches_in_both_layouts() {
    let mut rng = StdRng::seed_from_u64(11);
    for _ in 0..300 {
        let n = rng.random_range(1..20);
        let (events, rows): (Vec<String>, Vec<Vec<Value>>) =
            (0..n).map(|_| random_event(&mut rng)).unzip();
        let lines = events.join(if rng.random_bool(0.5) { "\n" } else { "\r\n\n" });
        let array = format!("[{}]", events.join(" ,\n"));
        assert_eq!(ok(&lines, AUTO), rows, "{lines}");
        assert_eq!(ok(&array, AUTO), rows, "{array}");

        // One broken event: same error, same row, in both layouts.
        let at = rng.random_range(0..n);
        let mut broken = events.clone();
        broken[at] = match rng.random_range(0..4) {
            0 => r#"{"at":1,"id":1.5}"#.into(),
            1 => r#"{"at":1,"zz":1}"#.into(),
            2 => r#"{"at":1,"name":"x}"#.into(),
            _ => r#"{"id":1}"#.into(),
        };
        let e1 = err(&broken.join("\n"), AUTO);
        let e2 = err(&format!("[{}]", broken.join(",")), AUTO);
        assert_eq!(e1.row(), Some(at), "{e1}");
        assert_eq!(e1.kind(), e2.kind());
        assert_eq!(e1.row(), e2.row());
        assert_eq!(e1.column(), e2.column());
    }
}

/// Parses `input` in every layout: must not panic, and what it returns must be consistent.
fn parse_anything(input: &[u8], max_rows: usize) {
    let columns = cols();
    for layout in [AUTO, LINES, ARRAY] {
        let mut bytes = input.to_vec();
        match parse_json_events(&columns, &REQ, &mut bytes, layout, max_rows) {
            Ok(rows) => {
                assert!(!rows.is_empty() && rows.len() <= max_rows);
                for row in rows {
                    assert_eq!(row.len(), columns.len());
                    assert!(matches!(row[4], Value::Timestamp(_)));
                    for (v, c) in row.iter().zip(&columns) {
                        assert!(v.is_null() || v.column_type() == Some(c.ty));
                    }
                }
            }
            Err(e) => {
                let _ = e.to_string();
                if let Some(r) = e.row() {
                    assert!(r <= input.len(), "{e}");
                }
            }
        }
    }
}

#[test]
fn fuzz_random_bytes_and_mutations() {
    let mut rng = StdRng::seed_from_u64(0xF022);
    const ALPHABET: &[u8] =
        b"{}[],:\"\\ \n\r\tatidnameokscorblob0123456789-+.eEtrufalsnu=/Z:T\xc3\xa9\xff";
    for _ in 0..3_000 {
        let len = rng.random_range(0..200);
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                if rng.random_bool(0.7) {
                    ALPHABET[rng.random_range(0..ALPHABET.len())]
                } else {
                    rng.random()
                }
            })
            .collect();
        parse_anything(&bytes, rng.random_range(1..8));
    }
    for _ in 0..3_000 {
        let n = rng.random_range(1..6);
        let events: Vec<String> = (0..n).map(|_| random_event(&mut rng).0).collect();
        let mut bytes = if rng.random_bool(0.5) {
            events.join("\n").into_bytes()
        } else {
            format!("[{}]", events.join(",")).into_bytes()
        };
        for _ in 0..rng.random_range(1..4) {
            if bytes.is_empty() {
                break;
            }
            let at = rng.random_range(0..bytes.len());
            match rng.random_range(0..5) {
                0 => bytes[at] = rng.random(),
                1 => bytes[at] = ALPHABET[rng.random_range(0..ALPHABET.len())],
                2 => {
                    bytes.remove(at);
                }
                3 => bytes.insert(at, ALPHABET[rng.random_range(0..ALPHABET.len())]),
                _ => bytes.truncate(at),
            }
        }
        parse_anything(&bytes, rng.random_range(1..8));
    }
    // Deep nesting.
    parse_anything(&[b'['; 100_000], 5);
    parse_anything(
        format!("{{\"at\":1,\"blob\":{}", "[".repeat(5000)).as_bytes(),
        5,
    );
    parse_anything(
        format!("[{}{}]", "[".repeat(5000), "]".repeat(5000)).as_bytes(),
        5,
    );
}

#[test]
fn hundred_thousand_events() {
    let event = r#"{"id":123456,"name":"card-0001","ok":true,"score":0.125,"at":"2026-11-26T01:02:03.000004Z","blob":"AAECAw=="}"#;
    let n = 100_000;
    let lines = vec![event; n].join("\n");
    let array = format!("[{}]", vec![event; n].join(","));
    for input in [lines, array] {
        // A full-size batch parses completely (speed is measured by the ingest benchmark,
        // never asserted here).
        let mut bytes = input.into_bytes();
        let rows = parse_json_events(&cols(), &REQ, &mut bytes, AUTO, n).unwrap();
        assert_eq!(rows.len(), n);
        assert_eq!(rows[n - 1][1], text("card-0001"));
    }
}
