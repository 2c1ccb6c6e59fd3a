//! pgbench per-transaction logs (`pgbench -l`) turned into an hdrhistogram.
//!
//! PostgreSQL 15 line format: `client_id transaction_no time script_no time_epoch time_us
//! [schedule_lag] [retries]`. `time` is the latency in µs; with `--rate` pgbench measures it
//! from the transaction's *scheduled* start (so it already includes `schedule_lag`, the same
//! coordinated-omission correction the Tarn/Redis open loop applies). Skipped or failed
//! transactions have a word instead of a number in `time`.

use hdrhistogram::Histogram;

use crate::stats::new_hist;

/// One parsed log line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PgTxn {
    /// Latency in µs (`None` for skipped/failed).
    pub latency_us: Option<u64>,
    /// Completion time, µs since the epoch.
    pub done_us: u64,
    pub lag_us: Option<u64>,
}

impl PgTxn {
    /// When the transaction was scheduled (or started, without `--rate`), µs since the epoch.
    pub fn start_us(&self) -> u64 {
        self.done_us.saturating_sub(self.latency_us.unwrap_or(0))
    }
}

pub fn parse_line(line: &str) -> Option<PgTxn> {
    let f: Vec<&str> = line.split_ascii_whitespace().collect();
    if f.len() < 6 {
        return None;
    }
    let latency_us = f[2].parse::<f64>().ok().map(|v| v.max(0.0) as u64);
    let epoch: u64 = f[4].parse().ok()?;
    let us: u64 = f[5].parse().ok()?;
    let lag_us = f
        .get(6)
        .and_then(|v| v.parse::<f64>().ok())
        .map(|v| v as u64);
    Some(PgTxn {
        latency_us,
        done_us: epoch * 1_000_000 + us,
        lag_us,
    })
}

/// Summary of a set of pgbench logs.
pub struct PgSummary {
    pub hist: Histogram<u64>,
    pub completed: u64,
    pub failed: u64,
    pub window_s: f64,
    pub max_lag_us: u64,
}

impl PgSummary {
    pub fn throughput(&self) -> f64 {
        if self.window_s > 0.0 {
            self.completed as f64 / self.window_s
        } else {
            0.0
        }
    }
}

/// Keep transactions that started (were scheduled) in
/// `[first_start + warmup_s, first_start + warmup_s + measure_s)`; latencies go into a ns
/// histogram.
pub fn summarize(txns: &[PgTxn], warmup_s: f64, measure_s: f64) -> PgSummary {
    let mut hist = new_hist();
    let t0 = txns.iter().map(|t| t.start_us()).min().unwrap_or(0);
    let from = t0 + (warmup_s * 1e6) as u64;
    let to = from + (measure_s * 1e6) as u64;
    let mut completed = 0;
    let mut failed = 0;
    let mut max_lag_us = 0;
    for t in txns {
        let s = t.start_us();
        if s < from || s >= to {
            continue;
        }
        match t.latency_us {
            Some(l) => {
                completed += 1;
                let _ = hist.record((l * 1000).max(1));
                max_lag_us = max_lag_us.max(t.lag_us.unwrap_or(0));
            }
            None => failed += 1,
        }
    }
    PgSummary {
        hist,
        completed,
        failed,
        window_s: measure_s,
        max_lag_us,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_and_throttled_lines() {
        let t = parse_line("3 17 1543 0 1700000000 250000").unwrap();
        assert_eq!(t.latency_us, Some(1543));
        assert_eq!(t.done_us, 1_700_000_000_250_000);
        assert_eq!(t.lag_us, None);
        assert_eq!(t.start_us(), 1_700_000_000_250_000 - 1543);
        let t = parse_line("0 1 2100 0 1700000001 5 900").unwrap();
        assert_eq!(t.lag_us, Some(900));
        let t = parse_line("0 2 skipped 0 1700000001 5 900").unwrap();
        assert_eq!(t.latency_us, None);
        assert!(parse_line("garbage").is_none());
    }

    #[test]
    fn window_excludes_warmup_and_counts_failures() {
        let mk = |start_ms: u64, lat_us: Option<u64>| PgTxn {
            latency_us: lat_us,
            done_us: start_ms * 1000 + lat_us.unwrap_or(0),
            lag_us: None,
        };
        let txns = vec![
            mk(0, Some(100)),    // t0, warm-up
            mk(500, Some(100)),  // warm-up
            mk(1000, Some(200)), // in window
            mk(1500, Some(300)), // in window
            mk(1600, None),      // failed in window
            mk(2000, Some(999)), // after window
        ];
        let s = summarize(&txns, 1.0, 1.0);
        assert_eq!(s.completed, 2);
        assert_eq!(s.failed, 1);
        assert_eq!(s.hist.len(), 2);
        assert_eq!(s.throughput(), 2.0);
        assert!(s.hist.max() >= 299_000 && s.hist.max() <= 301_000);
    }
}
