//! Durations in SQL options: `'<integer> <unit>'`, e.g. `'10 seconds'`, `'7 days'`, `'500 ms'`.
//!
//! Units (singular or plural, case-insensitive): `us`/`microsecond`, `ms`/`millisecond`,
//! `s`/`sec`/`second`, `min`/`minute`, `h`/`hour`, `d`/`day`, `w`/`week`. The integer is
//! positive; the space is optional (`'10s'`). The result must fit in i64 µs.

/// Parses a duration into µs.
pub fn parse_duration_us(text: &str) -> Result<i64, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("duration '{text}' has no unit (e.g. '10 seconds')"))?;
    let (num, unit) = t.split_at(split);
    if num.is_empty() {
        return Err(format!(
            "duration '{text}' must start with a positive integer (e.g. '10 seconds')"
        ));
    }
    let n: i64 = num
        .parse()
        .map_err(|_| format!("duration '{text}': {num} is too large"))?;
    if n == 0 {
        return Err(format!("duration '{text}' must be positive"));
    }
    let unit = unit.trim().to_ascii_lowercase();
    let per: i64 = match unit.as_str() {
        "us" | "microsecond" | "microseconds" => 1,
        "ms" | "millisecond" | "milliseconds" => 1_000,
        "s" | "sec" | "secs" | "second" | "seconds" => 1_000_000,
        "min" | "mins" | "minute" | "minutes" => 60_000_000,
        "h" | "hour" | "hours" => 3_600_000_000,
        "d" | "day" | "days" => 86_400_000_000,
        "w" | "week" | "weeks" => 604_800_000_000,
        other => {
            return Err(format!(
                "duration '{text}': unknown unit \"{other}\" (use us, ms, seconds, minutes, hours, days or weeks)"
            ))
        }
    };
    n.checked_mul(per)
        .ok_or_else(|| format!("duration '{text}' is too long"))
}

/// Formats µs with the largest unit that divides it exactly (`'10 minutes'`, `'1500 ms'`).
pub fn format_duration_us(us: i64) -> String {
    const UNITS: [(i64, &str); 7] = [
        (604_800_000_000, "weeks"),
        (86_400_000_000, "days"),
        (3_600_000_000, "hours"),
        (60_000_000, "minutes"),
        (1_000_000, "seconds"),
        (1_000, "ms"),
        (1, "us"),
    ];
    for (per, name) in UNITS {
        if us != 0 && us % per == 0 {
            let n = us / per;
            let name = if n == 1 && name.len() > 2 {
                &name[..name.len() - 1]
            } else {
                name
            };
            return format!("{n} {name}");
        }
    }
    format!("{us} us")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_format() {
        assert_eq!(parse_duration_us("10 seconds"), Ok(10_000_000));
        assert_eq!(parse_duration_us("10s"), Ok(10_000_000));
        assert_eq!(parse_duration_us(" 7 Days "), Ok(7 * 86_400_000_000));
        assert_eq!(parse_duration_us("1 minute"), Ok(60_000_000));
        assert_eq!(parse_duration_us("500 ms"), Ok(500_000));
        for bad in [
            "",
            "10",
            "ten seconds",
            "0 s",
            "-1 s",
            "10 fortnights",
            "99999999999999 weeks",
        ] {
            assert!(parse_duration_us(bad).is_err(), "{bad}");
        }
        for us in [1, 1_000, 10_000_000, 600_000_000, 86_400_000_000, 1_500_000] {
            assert_eq!(parse_duration_us(&format_duration_us(us)), Ok(us));
        }
        assert_eq!(format_duration_us(600_000_000), "10 minutes");
        assert_eq!(format_duration_us(604_800_000_000), "1 week");
        assert_eq!(format_duration_us(1_000), "1 ms");
        assert_eq!(format_duration_us(1), "1 us");
    }
}
