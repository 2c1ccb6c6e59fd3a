//! Result records (one JSON object per line) and their Markdown rendering.

use serde::{Deserialize, Serialize};

use crate::stats::LatSummary;

/// One measured row.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct BenchRecord {
    /// Free-form section name (e.g. "get", "throughput", "durable", "floors").
    pub suite: String,
    /// "tarn", "redis", "postgresql", "floor".
    pub system: String,
    /// What was measured, e.g. "GET", "SET", "UPSERT", "loopback ping-pong".
    pub workload: String,
    /// "closed", "closed spin", "open 20000/s", or a floor variant.
    pub mode: String,
    pub conns: u64,
    pub depth: u64,
    /// Completed operations per second in the measurement window.
    pub throughput: f64,
    pub lat: LatSummary,
    /// Closed loop: the same run with hdrhistogram `record_correct`.
    #[serde(default)]
    pub lat_corrected: Option<LatSummary>,
    #[serde(default)]
    pub notes: String,
}

fn fmt_us(v: f64) -> String {
    if v == 0.0 {
        "-".into()
    } else if v < 10.0 {
        format!("{v:.2}")
    } else if v < 1000.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.0}")
    }
}

fn fmt_tput(v: f64) -> String {
    if v == 0.0 {
        "-".into()
    } else if v >= 1000.0 {
        // Thousands separator for readability.
        let s = format!("{:.0}", v);
        let mut out = String::new();
        for (i, c) in s.chars().enumerate() {
            if i > 0 && (s.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        out
    } else {
        format!("{v:.1}")
    }
}

/// Render records as Markdown, one table per suite (in first-appearance order).
pub fn render_markdown(records: &[BenchRecord]) -> String {
    let mut suites: Vec<&str> = Vec::new();
    for r in records {
        if !suites.contains(&r.suite.as_str()) {
            suites.push(&r.suite);
        }
    }
    let mut out = String::new();
    for s in suites {
        out.push_str(&format!("\n### {s}\n\n"));
        out.push_str("| system | workload | mode | conns | depth | throughput (ops/s) | p50 µs | p90 µs | p99 µs | p99.9 µs | max µs | CO-corrected p99 / p99.9 µs | notes |\n");
        out.push_str("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n");
        for r in records.iter().filter(|r| r.suite == s) {
            let co = r
                .lat_corrected
                .as_ref()
                .map(|c| format!("{} / {}", fmt_us(c.p99_us), fmt_us(c.p999_us)))
                .unwrap_or_else(|| "-".into());
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
                r.system,
                r.workload,
                r.mode,
                r.conns,
                r.depth,
                fmt_tput(r.throughput),
                fmt_us(r.lat.p50_us),
                fmt_us(r.lat.p90_us),
                fmt_us(r.lat.p99_us),
                fmt_us(r.lat.p999_us),
                fmt_us(r.lat.max_us),
                co,
                r.notes.replace('|', "/"),
            ));
        }
    }
    out
}

/// Append one record as a JSON line to `path`.
pub fn append_jsonl(path: &std::path::Path, r: &BenchRecord) -> std::io::Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    let line = serde_json::to_string(r).map_err(std::io::Error::other)?;
    writeln!(f, "{line}")
}

/// Parse a JSONL file's contents (blank lines ignored).
pub fn parse_jsonl(text: &str) -> Result<Vec<BenchRecord>, String> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| serde_json::from_str(l).map_err(|e| format!("line {}: {e}", i + 1)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(suite: &str, system: &str) -> BenchRecord {
        BenchRecord {
            suite: suite.into(),
            system: system.into(),
            workload: "GET".into(),
            mode: "closed".into(),
            conns: 32,
            depth: 1,
            throughput: 123_456.7,
            lat: LatSummary {
                count: 10,
                mean_us: 5.0,
                p50_us: 4.5,
                p90_us: 12.25,
                p99_us: 130.0,
                p999_us: 2500.0,
                max_us: 9000.0,
            },
            lat_corrected: None,
            notes: "a|b".into(),
        }
    }

    #[test]
    fn jsonl_round_trip_and_table_grouping() {
        let rs = vec![
            rec("get", "tarn"),
            rec("floors", "floor"),
            rec("get", "redis"),
        ];
        let text: String = rs
            .iter()
            .map(|r| serde_json::to_string(r).unwrap() + "\n")
            .collect();
        let back = parse_jsonl(&text).unwrap();
        assert_eq!(back, rs);
        let md = render_markdown(&back);
        let get = md.find("### get").unwrap();
        let floors = md.find("### floors").unwrap();
        assert!(get < floors);
        assert_eq!(md.matches("| tarn |").count(), 1);
        assert!(md.contains("123,457"));
        assert!(
            md.contains("| 4.50 | 12.2 | 130.0 | 2500 | 9000 |")
                || md.contains("| 4.50 | 12.3 | 130.0 | 2500 | 9000 |")
        );
        assert!(md.contains("a/b"));
    }
}
