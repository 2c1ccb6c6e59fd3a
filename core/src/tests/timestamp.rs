//! The one timestamp rule: a table of accepted and refused texts with their values or errors,
//! and a differential test against the `time` crate's RFC 3339 parser plus the digit rules
//! (the implementation this parser replaced, whose accept set it must keep).

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::timestamp::{format_rfc3339_us, parse_rfc3339_us};

/// 2026-11-26T01:02:03Z.
const BASE: i64 = 1_795_654_923_000_000;
const S: i64 = 1_000_000;

#[test]
fn accepted_forms_and_their_values() {
    let leap_2016 = 1_483_228_799_999_999; // 2016-12-31T23:59:59.999999Z
    for (text, want) in [
        ("2026-11-26T01:02:03Z", BASE),
        ("2026-11-26t01:02:03z", BASE),
        ("2026-11-26 01:02:03Z", BASE),
        ("2026-11-26T01:02:03+00:00", BASE),
        ("2026-11-26T01:02:03-00:00", BASE),
        ("2026-11-26T01:02:03+05:30", BASE - 19_800 * S),
        ("2026-11-26T01:02:03-08:00", BASE + 28_800 * S),
        ("2026-11-27T00:01:03+22:59", BASE),
        ("2026-11-25T01:03:03-23:59", BASE),
        ("2026-11-26T01:02:03.5Z", BASE + 500_000),
        ("2026-11-26T01:02:03.000004Z", BASE + 4),
        ("2026-11-26T01:02:03.123456Z", BASE + 123_456),
        ("2026-11-26T01:02:03.123456000Z", BASE + 123_456),
        ("2026-11-26T01:02:03.1234560Z", BASE + 123_456),
        ("2026-11-26T03:02:03.999999+02:00", BASE + 999_999),
        ("1970-01-01T00:00:00Z", 0),
        ("1969-12-31T23:59:59.999999Z", -1),
        ("2024-02-29T00:00:00Z", 1_709_164_800_000_000),
        ("2000-02-29T12:00:00Z", 951_825_600_000_000),
        ("0000-01-01T00:00:00Z", -62_167_219_200_000_000),
        (
            "0000-01-01T00:00:00+01:00",
            -62_167_219_200_000_000 - 3_600 * S,
        ),
        ("9999-12-31T23:59:59.999999Z", 253_402_300_799_999_999),
        (
            "9999-12-31T23:59:59-01:00",
            253_402_300_799_000_000 + 3_600 * S,
        ),
        // Leap seconds: only at 23:59:60 UTC on a month's last day; the last µs of the minute.
        ("2016-12-31T23:59:60Z", leap_2016),
        ("2016-12-31T23:59:60.5Z", leap_2016),
        ("2016-12-31t23:59:60.000000000z", leap_2016),
        ("2017-01-01T05:29:60+05:30", leap_2016),
        ("2016-12-31T15:59:60-08:00", leap_2016),
        ("2015-06-30T23:59:60Z", 1_435_708_799_999_999),
        ("9999-12-31T23:59:60Z", 253_402_300_799_999_999),
    ] {
        assert_eq!(parse_rfc3339_us(text), Ok(want), "{text}");
    }
}

#[test]
fn refused_forms_and_their_errors() {
    for (text, why) in [
        ("", "empty text"),
        ("garbage", "expected 4 digits of the year at byte 0"),
        ("2026-11-26", "separated by 'T' or a space"),
        ("2026-11-26T01:02:03", "expected 'Z' or a ±HH:MM UTC offset"),
        ("2026-11-26T01:02Z", "expected ':' after the minute"),
        ("2026-11-26T1:02:03Z", "expected 2 digits of the hour"),
        ("2026-1-26T01:02:03Z", "expected 2 digits of the month"),
        ("26-11-26T01:02:03Z", "expected 4 digits of the year"),
        ("+2026-11-26T01:02:03Z", "expected 4 digits of the year"),
        ("-0001-01-01T00:00:00Z", "expected 4 digits of the year"),
        ("10000-01-01T00:00:00Z", "expected '-' after the year"),
        ("２０２６-11-26T01:02:03Z", "expected 4 digits of the year"),
        (" 2026-11-26T01:02:03Z", "expected 4 digits of the year"),
        (
            "2026-11-26T01:02:03Z ",
            "unexpected text after the UTC offset",
        ),
        (
            "2026-11-26T01:02:03ZZ",
            "unexpected text after the UTC offset",
        ),
        (
            "2026-11-26T01:02:03 Z",
            "expected 'Z' or a ±HH:MM UTC offset",
        ),
        ("2026-11-26  01:02:03Z", "expected 2 digits of the hour"),
        ("2026-11-26X01:02:03Z", "separated by 'T' or a space"),
        (
            "2026-11-26T01:02:03,5Z",
            "expected 'Z' or a ±HH:MM UTC offset",
        ),
        ("2026-11-26T01:02:03.Z", "expected 1 to 9 fraction digits"),
        (
            "2026-11-26T01:02:03.1234567Z",
            "sub-microsecond precision is not supported",
        ),
        (
            "2026-11-26T01:02:03.123456789Z",
            "sub-microsecond precision is not supported",
        ),
        (
            "2026-11-26T01:02:03.000000001Z",
            "sub-microsecond precision is not supported",
        ),
        (
            "2026-11-26T01:02:03.0000000000Z",
            "10 fractional digits, at most 9",
        ),
        ("2026-11-26T01:02:03+0530", "expected ':' in the UTC offset"),
        ("2026-11-26T01:02:03+05", "expected ':' in the UTC offset"),
        (
            "2026-11-26T01:02:03+5:30",
            "expected 2 digits of the offset hours",
        ),
        (
            "2026-11-26T01:02:03+05:30:00",
            "unexpected text after the UTC offset",
        ),
        (
            "2026-11-26T01:02:03+24:00",
            "UTC offset 24:00 is out of range",
        ),
        (
            "2026-11-26T01:02:03-05:60",
            "UTC offset 05:60 is out of range",
        ),
        ("2026-13-01T00:00:00Z", "month 13 is out of range"),
        ("2026-00-01T00:00:00Z", "month 00 is out of range"),
        ("2026-04-31T00:00:00Z", "day 31 does not exist in 2026-04"),
        ("2026-02-29T00:00:00Z", "day 29 does not exist in 2026-02"),
        ("1900-02-29T00:00:00Z", "day 29 does not exist in 1900-02"),
        ("2026-01-00T00:00:00Z", "day 00 does not exist"),
        ("2026-11-26T24:00:00Z", "hour 24 is out of range"),
        ("2026-11-26T23:60:00Z", "minute 60 is out of range"),
        ("2026-11-26T23:59:61Z", "second 61 is out of range"),
        (
            "2026-11-26T12:00:60Z",
            "a leap second (:60) is only valid at 23:59:60 UTC",
        ),
        (
            "2016-12-30T23:59:60Z",
            "a leap second (:60) is only valid at 23:59:60 UTC",
        ),
        (
            "2016-12-31T23:59:60+01:00",
            "a leap second (:60) is only valid at 23:59:60 UTC",
        ),
        (
            "2016-12-31T23:59:60.1234567Z",
            "sub-microsecond precision is not supported",
        ),
    ] {
        match parse_rfc3339_us(text) {
            Ok(v) => panic!("{text:?} was accepted as {v}"),
            Err(e) => assert!(e.contains(why), "{text:?}: `{e}` lacks `{why}`"),
        }
    }
}

/// What the previous implementation accepted: the `time` crate's RFC 3339 parser, then the
/// separator, fraction-count and sub-microsecond checks.
fn reference(s: &str) -> Option<i64> {
    let dt = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()?;
    let b = s.as_bytes();
    if !matches!(b.get(10), Some(b'T' | b't' | b' ')) {
        return None;
    }
    if b.get(19) == Some(&b'.') {
        let digits = b[20..].iter().take_while(|c| c.is_ascii_digit()).count();
        if digits > 9
            || b[26.min(20 + digits)..20 + digits]
                .iter()
                .any(|&c| c != b'0')
        {
            return None;
        }
    }
    dt.unix_timestamp()
        .checked_mul(1_000_000)
        .and_then(|us| us.checked_add(i64::from(dt.nanosecond() / 1_000)))
}

/// A random, mostly well-formed timestamp text (sometimes a leap second at a month's end).
fn candidate(rng: &mut StdRng) -> String {
    let lo = -62_167_219_200_000_000_i64;
    let hi = 253_402_300_799_999_999_i64;
    let mut s = format_rfc3339_us(rng.random_range(lo..=hi));
    if rng.random_bool(0.1) {
        // 23:59:60 on a random month's last day (valid) or on another day (invalid).
        let y = rng.random_range(0..=9999);
        let m = rng.random_range(1..=12);
        let d = if rng.random_bool(0.7) {
            [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][m - 1]
        } else {
            rng.random_range(1..=31)
        };
        s = format!("{y:04}-{m:02}-{d:02}T23:59:60.000000Z");
    }
    // Fraction: drop it, or keep 1..=9 digits (some with non-zero sub-µs digits).
    let frac: String = match rng.random_range(0..4) {
        0 => String::new(),
        1 => format!(".{}", &s[20..20 + rng.random_range(1..=6)]),
        2 => format!(".{}000", &s[20..26]),
        _ => format!(".{}{}", &s[20..26], rng.random_range(0..1000)),
    };
    let offset = match rng.random_range(0..5) {
        0 => "Z".to_string(),
        1 => "z".to_string(),
        2 => "-00:00".to_string(),
        _ => format!(
            "{}{:02}:{:02}",
            if rng.random_bool(0.5) { '+' } else { '-' },
            rng.random_range(0..=25),
            rng.random_range(0..=61)
        ),
    };
    let sep = ['T', 't', ' '][rng.random_range(0..3)];
    let mut out = format!("{}{sep}{}{frac}{offset}", &s[..10], &s[11..19]);
    // Occasionally break it: change, drop or insert one byte.
    if rng.random_bool(0.3) {
        let mut b = out.into_bytes();
        let i = rng.random_range(0..b.len());
        let junk = b"0123456789:-+.TZtz _,x"[rng.random_range(0..22)];
        match rng.random_range(0..3) {
            0 => b[i] = junk,
            1 => {
                b.remove(i);
            }
            _ => b.insert(i, junk),
        }
        out = String::from_utf8(b).unwrap();
    }
    out
}

#[test]
fn same_accept_set_and_values_as_the_reference() {
    let mut rng = StdRng::seed_from_u64(3339);
    let (mut ok, mut bad) = (0, 0);
    for _ in 0..200_000 {
        let s = candidate(&mut rng);
        let ours = parse_rfc3339_us(&s).ok();
        assert_eq!(ours, reference(&s), "{s:?}");
        if ours.is_some() {
            ok += 1;
        } else {
            bad += 1;
        }
    }
    // Both sides of the rule are exercised.
    assert!(ok > 50_000 && bad > 50_000, "{ok} accepted, {bad} refused");
}
