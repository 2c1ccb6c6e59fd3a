//! The one rule for TIMESTAMP text, used by every input path: JSON ingest (`INGEST`), SQL
//! literals (`TIMESTAMP '…'`), and the CLI (`tarn upsert`, key arguments, `--as-of`,
//! `features-history` pairs). Timestamps are µs since the Unix epoch, UTC (an `i64`). Where a
//! path accepts numbers (JSON values, CLI arguments), an integer is that µs count as is; text
//! goes through [`parse_rfc3339_us`]. `docs/SQL.md` ("Timestamps") states the same rule.
//!
//! **Parsing** ([`parse_rfc3339_us`]): exactly
//! `YYYY-MM-DD<sep>HH:MM:SS[.fraction](Z|±HH:MM)` (RFC 3339 `date-time`, ASCII digits only):
//! - `<sep>` is `T`, `t` or one space; `Z` may be `z`; the offset is `+HH:MM` or `-HH:MM` with
//!   hours 00–23 and minutes 00–59 (`-00:00` means UTC). The offset is subtracted: the result
//!   is the UTC instant.
//! - The year has exactly 4 digits, 0000–9999 (no sign), the date exists in the proleptic
//!   Gregorian calendar (Feb 29 in leap years only), hours 00–23, minutes and seconds 00–59.
//! - The fraction has 1 to 9 digits. Digits after the 6th (below a microsecond) must be `0`: a
//!   non-zero sub-microsecond digit is refused, never silently truncated (`.123456000` is fine,
//!   `.1234567` is not).
//! - Second `60` (a leap second) is accepted only where one can be, at 23:59:60 UTC (after
//!   applying the offset) on the last day of a month; it reads as the last microsecond of that
//!   minute (`…:59.999999`), whatever its fraction (which must still follow the digit rules).
//! - Refused: anything else — empty text, surrounding spaces, a missing offset or seconds,
//!   `,` as the decimal mark, `+0200` or `+02` offsets, 5-digit or signed years, out-of-range
//!   fields, trailing text. The error says what is wrong, without repeating the text (each
//!   caller quotes it: `BAD_EVENT` for ingest, `UNSUPPORTED` for SQL, a CLI error).
//!
//! The result is exact: a valid text's UTC instant always fits an `i64` of µs (years 0000–9999
//! shifted by at most a day of offset).
//!
//! **Formatting** ([`format_rfc3339_us`]): UTC, `Z`, exactly 6 fractional digits, e.g.
//! `2026-11-26T01:02:03.000004Z`; `parse_rfc3339_us(&format_rfc3339_us(t)) == Ok(t)` for every
//! `t` from `0000-01-01T00:00:00.000000Z` to `9999-12-31T23:59:59.999999Z`. Outside those years
//! (not RFC 3339, but any i64 is formatted and nothing panics) the year is written ISO 8601
//! expanded style with a sign and at least 4 digits, e.g. `+10000-01-01T00:00:00.000000Z`,
//! `-0001-12-31T23:59:59.999999Z`.

const US_PER_SEC: i64 = 1_000_000;
const SECS_PER_DAY: i64 = 86_400;

/// The accepted shape, for messages.
const FORM: &str = "YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)";

/// RFC 3339 text → µs since the Unix epoch (UTC), exactly, by the rule of the module
/// documentation. The error says what is wrong (without repeating the text).
pub fn parse_rfc3339_us(s: &str) -> Result<i64, String> {
    let t = Fields::parse(s.as_bytes())?;
    t.check_ranges()?;
    t.instant_us()
}

/// The fields of a syntactically valid timestamp, not yet range-checked.
struct Fields {
    year: i64,
    month: i64,
    day: i64,
    hour: i64,
    minute: i64,
    second: i64,
    micros: i64,
    /// Seconds east of UTC.
    offset_secs: i64,
    offset_hour: i64,
    offset_minute: i64,
}

/// Reads bytes left to right.
struct Cursor<'a> {
    b: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    /// Exactly `n` ASCII digits, as a number; `what` names the field in the error.
    fn digits(&mut self, n: usize, what: &str) -> Result<i64, String> {
        let part = self
            .b
            .get(self.pos..self.pos + n)
            .filter(|p| p.iter().all(u8::is_ascii_digit))
            .ok_or_else(|| {
                format!(
                    "expected {n} digits of {what} at byte {} ({FORM})",
                    self.pos
                )
            })?;
        self.pos += n;
        Ok(part
            .iter()
            .fold(0i64, |acc, d| acc * 10 + i64::from(d - b'0')))
    }

    /// The byte `c`; `what` says where it belongs.
    fn expect(&mut self, c: u8, what: &str) -> Result<(), String> {
        if self.b.get(self.pos) == Some(&c) {
            self.pos += 1;
            Ok(())
        } else {
            Err(format!(
                "expected '{}' {what} at byte {} ({FORM})",
                c as char, self.pos
            ))
        }
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }
}

impl Fields {
    /// The syntax: every field present with its exact width and separators.
    fn parse(b: &[u8]) -> Result<Fields, String> {
        if b.is_empty() {
            return Err(format!("empty text; expected {FORM}"));
        }
        let mut c = Cursor { b, pos: 0 };
        let year = c.digits(4, "the year")?;
        c.expect(b'-', "after the year")?;
        let month = c.digits(2, "the month")?;
        c.expect(b'-', "after the month")?;
        let day = c.digits(2, "the day")?;
        if !matches!(c.peek(), Some(b'T' | b't' | b' ')) {
            return Err("the date and time must be separated by 'T' or a space".into());
        }
        c.pos += 1;
        let hour = c.digits(2, "the hour")?;
        c.expect(b':', "after the hour")?;
        let minute = c.digits(2, "the minute")?;
        c.expect(b':', "after the minute")?;
        let second = c.digits(2, "the second")?;
        let micros = if c.peek() == Some(b'.') {
            c.pos += 1;
            fraction_us(&mut c)?
        } else {
            0
        };
        let (offset_hour, offset_minute, sign) = offset(&mut c)?;
        if c.pos != b.len() {
            return Err(format!(
                "unexpected text after the UTC offset, at byte {}",
                c.pos
            ));
        }
        Ok(Fields {
            year,
            month,
            day,
            hour,
            minute,
            second,
            micros,
            offset_secs: sign * (offset_hour * 3600 + offset_minute * 60),
            offset_hour,
            offset_minute,
        })
    }

    /// Every field within its range (the second checked with the leap-second rule later).
    fn check_ranges(&self) -> Result<(), String> {
        if !(1..=12).contains(&self.month) {
            return Err(format!("month {:02} is out of range (01–12)", self.month));
        }
        if self.day < 1 || self.day > days_in_month(self.year, self.month) {
            return Err(format!(
                "day {:02} does not exist in {:04}-{:02}",
                self.day, self.year, self.month
            ));
        }
        if self.hour > 23 {
            return Err(format!("hour {:02} is out of range (00–23)", self.hour));
        }
        if self.minute > 59 {
            return Err(format!("minute {:02} is out of range (00–59)", self.minute));
        }
        if self.second > 60 {
            return Err(format!(
                "second {:02} is out of range (00–59, or 60 for a leap second)",
                self.second
            ));
        }
        if self.offset_hour > 23 || self.offset_minute > 59 {
            return Err(format!(
                "UTC offset {:02}:{:02} is out of range (hours 00–23, minutes 00–59)",
                self.offset_hour, self.offset_minute
            ));
        }
        Ok(())
    }

    /// The UTC instant in µs. A leap second must sit at 23:59:60 UTC on a month's last day.
    fn instant_us(&self) -> Result<i64, String> {
        let days = days_from_civil(self.year, self.month, self.day);
        let second = self.second.min(59);
        let secs =
            days * SECS_PER_DAY + self.hour * 3600 + self.minute * 60 + second - self.offset_secs;
        if self.second == 60 {
            let (y, m, d) = civil_from_days(secs.div_euclid(SECS_PER_DAY));
            let last_second = secs.rem_euclid(SECS_PER_DAY) == SECS_PER_DAY - 1;
            if !last_second || i64::from(d) != days_in_month(y, i64::from(m)) {
                return Err(
                    "a leap second (:60) is only valid at 23:59:60 UTC on the last day \
                            of a month"
                        .into(),
                );
            }
            return Ok(secs * US_PER_SEC + (US_PER_SEC - 1));
        }
        // Years 0000–9999 ± one day of offset: far inside the i64 µs range (±292,000 years).
        Ok(secs * US_PER_SEC + self.micros)
    }
}

/// The digits after `.`: 1 to 9, none non-zero after the 6th; the value in µs.
fn fraction_us(c: &mut Cursor<'_>) -> Result<i64, String> {
    let start = c.pos;
    while c.peek().is_some_and(|d| d.is_ascii_digit()) {
        c.pos += 1;
    }
    let digits = &c.b[start..c.pos];
    if digits.is_empty() {
        return Err("expected 1 to 9 fraction digits after '.'".into());
    }
    if digits.len() > 9 {
        return Err(format!(
            "{} fractional digits, at most 9 are allowed",
            digits.len()
        ));
    }
    if digits.iter().skip(6).any(|&d| d != b'0') {
        return Err(
            "sub-microsecond precision is not supported (digits after the 6th \
                    fractional digit must be 0)"
                .into(),
        );
    }
    let mut micros = 0i64;
    for i in 0..6 {
        micros = micros * 10 + digits.get(i).map_or(0, |d| i64::from(d - b'0'));
    }
    Ok(micros)
}

/// `Z`, `z` or `±HH:MM`: (hours, minutes, sign).
fn offset(c: &mut Cursor<'_>) -> Result<(i64, i64, i64), String> {
    let sign = match c.peek() {
        Some(b'Z' | b'z') => {
            c.pos += 1;
            return Ok((0, 0, 1));
        }
        Some(b'+') => 1,
        Some(b'-') => -1,
        _ => {
            return Err(format!(
                "expected 'Z' or a ±HH:MM UTC offset after the time, at byte {}",
                c.pos
            ))
        }
    };
    c.pos += 1;
    let h = c.digits(2, "the offset hours")?;
    c.expect(b':', "in the UTC offset")?;
    let m = c.digits(2, "the offset minutes")?;
    Ok((h, m, sign))
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if is_leap(y) => 29,
        _ => 28,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400; // [0, 399]
    let mp = (m + 9) % 12; // March = 0
    let doy = (153 * mp + 2) / 5 + d - 1; // [0, 365]
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; // [0, 146096]
    era * 146_097 + doe - 719_468
}

/// µs since the epoch → RFC 3339 text in UTC with exactly 6 fractional digits, e.g.
/// "2026-11-26T01:02:03.000004Z". Total over i64 (see the module documentation for years
/// outside 0000–9999).
pub fn format_rfc3339_us(us: i64) -> String {
    let secs = us.div_euclid(US_PER_SEC);
    let micros = us.rem_euclid(US_PER_SEC);
    let days = secs.div_euclid(SECS_PER_DAY);
    let sod = secs.rem_euclid(SECS_PER_DAY);
    let (y, m, d) = civil_from_days(days);
    let (hh, mm, ss) = (sod / 3600, sod / 60 % 60, sod % 60);
    let year = if (0..=9999).contains(&y) {
        format!("{y:04}")
    } else if y > 9999 {
        format!("+{y}")
    } else {
        format!("-{:04}", y.unsigned_abs())
    };
    format!("{year}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}.{micros:06}Z")
}

/// Days since 1970-01-01 → proleptic Gregorian (year, month, day) (H. Hinnant's algorithm;
/// no overflow for any day count derived from i64 µs).
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11]
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32; // [1, 31]
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32; // [1, 12]
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}
