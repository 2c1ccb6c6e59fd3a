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
    /// Machine-readable role of the row in a suite's goals (e.g. `ingest:tarn:async`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// Unit of `throughput` when it is not requests (e.g. `events/s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
}

/// A server's memory before and after a bulk load (one JSON line, like [`BenchRecord`]).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct MemRecord {
    pub suite: String,
    pub system: String,
    /// Views that existed during the load (empty: the stream only).
    pub views: Vec<String>,
    pub events: u64,
    /// Distinct keys the load made active, per view (same order as `views`).
    pub keys: Vec<u64>,
    pub rss_before_kib: u64,
    pub rss_after_kib: u64,
    pub load_secs: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    #[serde(default)]
    pub notes: String,
}

impl MemRecord {
    /// RSS growth in bytes (0 if it shrank).
    pub fn delta_bytes(&self) -> u64 {
        self.rss_after_kib.saturating_sub(self.rss_before_kib) * 1024
    }
    pub fn total_keys(&self) -> u64 {
        self.keys.iter().sum()
    }
}

/// One line of a results file.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum Line {
    Bench(BenchRecord),
    Memory(MemRecord),
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
            let tput = match &r.unit {
                Some(u) if r.throughput != 0.0 => format!("{} {u}", fmt_tput(r.throughput)),
                _ => fmt_tput(r.throughput),
            };
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
                r.system,
                r.workload,
                r.mode,
                r.conns,
                r.depth,
                tput,
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

fn fmt_mib(kib: u64) -> String {
    format!("{:.1}", kib as f64 / 1024.0)
}

/// Memory tables, one per suite that has memory records.
pub fn render_memory(mem: &[MemRecord]) -> String {
    let mut suites: Vec<&str> = Vec::new();
    for r in mem {
        if !suites.contains(&r.suite.as_str()) {
            suites.push(&r.suite);
        }
    }
    let mut out = String::new();
    for s in suites {
        out.push_str(&format!(
            "\n### {s}: memory (tarnd VmRSS before / after a bulk load)\n\n"
        ));
        out.push_str("| system | views | events | active keys per view | RSS before MiB | RSS after MiB | Δ MiB | Δ per event B | Δ per active key per view B | notes |\n");
        out.push_str("|---|---|---:|---|---:|---:|---:|---:|---:|---|\n");
        for r in mem.iter().filter(|r| r.suite == s) {
            let views = if r.views.is_empty() {
                "(stream only)".to_string()
            } else {
                r.views.join(", ")
            };
            let keys = if r.views.is_empty() {
                "-".to_string()
            } else {
                r.views
                    .iter()
                    .zip(&r.keys)
                    .map(|(v, k)| format!("{v} {}", fmt_tput(*k as f64)))
                    .collect::<Vec<_>>()
                    .join(" / ")
            };
            let d = r.delta_bytes() as f64;
            let per_event = if r.events > 0 {
                format!("{:.0}", d / r.events as f64)
            } else {
                "-".into()
            };
            let per_key = if r.total_keys() > 0 {
                format!("{:.0}", d / r.total_keys() as f64)
            } else {
                "-".into()
            };
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
                r.system,
                views,
                fmt_tput(r.events as f64),
                keys,
                fmt_mib(r.rss_before_kib),
                fmt_mib(r.rss_after_kib),
                fmt_mib(r.rss_after_kib.saturating_sub(r.rss_before_kib)),
                per_event,
                per_key,
                r.notes.replace('|', "/"),
            ));
        }
    }
    out
}

/// The `features` suite's goals next to the measured rows (rows found by their `tag`).
/// Empty when no tagged row is present.
pub fn render_goals(bench: &[BenchRecord], mem: &[MemRecord]) -> String {
    let find = |tag: &str| bench.iter().rev().find(|r| r.tag.as_deref() == Some(tag));
    let findm = |tag: &str| mem.iter().rev().find(|r| r.tag.as_deref() == Some(tag));
    let disturbed = |rs: &[&BenchRecord]| {
        if rs
            .iter()
            .any(|r| r.notes.contains("WARNING") || r.notes.contains("error"))
        {
            " (a row has a WARNING or errors: re-run)"
        } else {
            ""
        }
    };
    let status = |ok: bool| if ok { "met" } else { "**not met**" };
    let ev = |r: &BenchRecord| {
        format!(
            "{} ev/s (ack p50 {} / p99 {} µs)",
            fmt_tput(r.throughput),
            fmt_us(r.lat.p50_us),
            fmt_us(r.lat.p99_us)
        )
    };
    let mut rows: Vec<[String; 4]> = Vec::new();
    let redis = find("ingest:redis:none");
    let everysec = find("ingest:redis:everysec");
    for (dur, tag, goal, factor) in [
        (
            "async",
            "ingest:tarn:async",
            "ingest (fraud stream, 3 views), async: ≥ 3× Redis without persistence",
            3.0,
        ),
        (
            "sync",
            "ingest:tarn:sync",
            "ingest, sync (fdatasync before ack): ≥ 1× Redis without persistence",
            1.0,
        ),
    ] {
        let Some(t) = find(tag) else { continue };
        let (measured, ratio, st) = match redis {
            Some(r) if r.throughput > 0.0 => {
                let x = t.throughput / r.throughput;
                let mut m = format!("tarn {dur}: {} vs Redis (no persistence): {}", ev(t), ev(r));
                if let (Some(e), "sync") = (everysec, dur) {
                    m.push_str(&format!("; Redis appendfsync everysec: {}", ev(e)));
                }
                (
                    m,
                    format!("{x:.2}×"),
                    format!("{}{}", status(x >= factor), disturbed(&[t, r])),
                )
            }
            _ => (
                format!("tarn {dur}: {}; no Redis row", ev(t)),
                "-".into(),
                "n/a".into(),
            ),
        };
        rows.push([goal.into(), measured, ratio, st]);
    }
    if let Some(f) = find("read:features") {
        let (measured, ratio, st) = match find("read:get") {
            Some(g) if g.lat.p50_us > 0.0 && g.lat.p99_us > 0.0 => {
                let (a, b) = (f.lat.p50_us / g.lat.p50_us, f.lat.p99_us / g.lat.p99_us);
                let floor = find("read:floor")
                    .map(|p| format!("; loopback floor p50 {} µs", fmt_us(p.lat.p50_us)))
                    .unwrap_or_default();
                (
                    format!(
                        "FEATURES p50 {} / p99 {} µs vs GET p50 {} / p99 {} µs{floor}",
                        fmt_us(f.lat.p50_us),
                        fmt_us(f.lat.p99_us),
                        fmt_us(g.lat.p50_us),
                        fmt_us(g.lat.p99_us)
                    ),
                    format!("p50 {a:.2}×, p99 {b:.2}×"),
                    format!("{}{}", status(a <= 1.2 && b <= 1.2), disturbed(&[f, g])),
                )
            }
            _ => (
                format!(
                    "FEATURES p50 {} / p99 {} µs; no GET row",
                    fmt_us(f.lat.p50_us),
                    fmt_us(f.lat.p99_us)
                ),
                "-".into(),
                "n/a".into(),
            ),
        };
        rows.push([
            "feature read (10 aggregates, 60 buckets), 1 conn: p50 and p99 ≤ 1.2× point GET".into(),
            measured,
            ratio,
            st,
        ]);
    }
    for (dur, tag) in [("async", "fresh:tarn:async"), ("sync", "fresh:tarn:sync")] {
        let Some(f) = find(tag) else { continue };
        rows.push([
            format!("freshness ({dur}): ack → visible on another connection, p99 < 1 ms"),
            format!(
                "p50 {} / p99 {} / max {} µs; {}",
                fmt_us(f.lat.p50_us),
                fmt_us(f.lat.p99_us),
                fmt_us(f.lat.max_us),
                f.mode
            ),
            format!("{:.2} ms", f.lat.p99_us / 1000.0),
            format!(
                "{}{}",
                status(f.lat.p99_us > 0.0 && f.lat.p99_us < 1000.0),
                disturbed(&[f])
            ),
        ]);
    }
    if let Some(all) = findm("mem:all") {
        let base = findm("mem:none").filter(|b| b.events == all.events);
        let net = |m: &MemRecord| {
            m.delta_bytes()
                .saturating_sub(base.map(|b| b.delta_bytes()).unwrap_or(0)) as f64
        };
        let basis = if base.is_some() {
            "net of the stream-only load"
        } else {
            "gross (no stream-only baseline)"
        };
        let mut m = String::new();
        if let Some(card) = findm("mem:card") {
            if card.total_keys() > 0 {
                m.push_str(&format!(
                    "card view alone: {:.0} B per key at {} keys; ",
                    net(card) / card.total_keys() as f64,
                    fmt_tput(card.total_keys() as f64)
                ));
            }
        }
        if all.total_keys() > 0 && all.events > 0 {
            m.push_str(&format!(
                "3 views: {:.0} B per active key per view ({} keys), {:.0} B per card for all three",
                net(all) / all.total_keys() as f64,
                fmt_tput(all.total_keys() as f64),
                net(all) / all.keys.first().copied().unwrap_or(1).max(1) as f64,
            ));
        }
        if let Some(b) = base {
            m.push_str(&format!(
                "; stream alone: {:.0} B per event",
                b.delta_bytes() as f64 / b.events.max(1) as f64
            ));
        }
        rows.push([
            "memory per active key per view (tarnd VmRSS growth over a bulk load)".into(),
            m,
            basis.into(),
            "recorded".into(),
        ]);
    }
    if rows.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "\n### Goals (same run)\n\n| goal | measured | ratio | status |\n|---|---|---|---|\n",
    );
    for [g, m, r, s] in rows {
        out.push_str(&format!("| {g} | {} | {r} | {s} |\n", m.replace('|', "/")));
    }
    out
}

/// Everything in a results file: goals (if any), the latency tables, the memory tables.
pub fn render_all(lines: &[Line]) -> String {
    let bench: Vec<BenchRecord> = lines
        .iter()
        .filter_map(|l| match l {
            Line::Bench(b) => Some(b.clone()),
            Line::Memory(_) => None,
        })
        .collect();
    let mem: Vec<MemRecord> = lines
        .iter()
        .filter_map(|l| match l {
            Line::Memory(m) => Some(m.clone()),
            Line::Bench(_) => None,
        })
        .collect();
    let mut out = render_goals(&bench, &mem);
    out.push_str(&render_markdown(&bench));
    out.push_str(&render_memory(&mem));
    out
}

/// Parse a results file with latency and memory records (blank lines ignored).
pub fn parse_lines(text: &str) -> Result<Vec<Line>, String> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| serde_json::from_str(l).map_err(|e| format!("line {}: {e}", i + 1)))
        .collect()
}

/// Append any serializable record as a JSON line to `path`.
pub fn append_json_line<T: Serialize>(path: &std::path::Path, r: &T) -> std::io::Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    let line = serde_json::to_string(r).map_err(std::io::Error::other)?;
    writeln!(f, "{line}")
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
            tag: None,
            unit: None,
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

    fn tagged(tag: &str, tput: f64, p50: f64, p99: f64) -> BenchRecord {
        let mut r = rec("features", "x");
        r.tag = Some(tag.into());
        r.throughput = tput;
        r.lat.p50_us = p50;
        r.lat.p99_us = p99;
        r.notes = String::new();
        r
    }

    fn mem(tag: &str, views: &[&str], keys: &[u64], delta_kib: u64) -> MemRecord {
        MemRecord {
            suite: "features".into(),
            system: "tarn".into(),
            views: views.iter().map(|v| v.to_string()).collect(),
            events: 1000,
            keys: keys.to_vec(),
            rss_before_kib: 100,
            rss_after_kib: 100 + delta_kib,
            load_secs: 1.0,
            tag: Some(tag.into()),
            notes: String::new(),
        }
    }

    #[test]
    fn memory_lines_parse_next_to_bench_lines_and_goals_are_computed() {
        let mut ingest = tagged("ingest:tarn:async", 300_000.0, 900.0, 2000.0);
        ingest.unit = Some("ev/s".into());
        let lines = vec![
            Line::Bench(ingest),
            Line::Bench(tagged("ingest:tarn:sync", 90_000.0, 900.0, 2000.0)),
            Line::Bench(tagged("ingest:redis:none", 100_000.0, 900.0, 2000.0)),
            Line::Bench(tagged("read:features", 1.0, 70.0, 90.0)),
            Line::Bench(tagged("read:get", 1.0, 65.0, 80.0)),
            Line::Bench(tagged("fresh:tarn:async", 1.0, 150.0, 400.0)),
            Line::Memory(mem("mem:none", &[], &[], 100)),
            Line::Memory(mem("mem:card", &["card_10m"], &[1000], 600)),
            Line::Memory(mem(
                "mem:all",
                &["card_10m", "account_10m"],
                &[1000, 250],
                1100,
            )),
        ];
        let text: String = lines
            .iter()
            .map(|l| serde_json::to_string(l).unwrap() + "\n")
            .collect();
        // Untagged: each line is the bare record, so bench-only files read as before.
        assert!(!text.contains("\"Bench\""));
        let back = parse_lines(&text).unwrap();
        assert_eq!(back, lines);
        let md = render_all(&back);
        assert!(md.contains("### Goals"), "{md}");
        // async 3.00× (met), sync 0.90× (not met), read p50 1.08× p99 1.12× (met), fresh met.
        assert!(md.contains("| 3.00× | met |"), "{md}");
        assert!(md.contains("| 0.90× | **not met** |"), "{md}");
        assert!(md.contains("p50 1.08×, p99 1.12× | met"), "{md}");
        assert!(md.contains("| 0.40 ms | met |"), "{md}");
        // Memory: (600 − 100) KiB / 1000 card keys = 512 B; (1100 − 100) KiB / 1250 keys = 819 B.
        assert!(md.contains("card view alone: 512 B per key"), "{md}");
        assert!(
            md.contains("3 views: 819 B per active key per view"),
            "{md}"
        );
        assert!(md.contains("300,000 ev/s"));
        assert!(md.contains("### features: memory"));
        assert!(md.contains("card_10m 1,000 / account_10m 250"));
    }
}
