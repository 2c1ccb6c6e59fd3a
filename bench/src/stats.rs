//! Histograms, summaries, and the recorder that decides which completions count.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// A nanosecond histogram: 1 ns .. 1 hour at 3 significant digits.
pub fn new_hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000_000, 3).expect("valid histogram bounds")
}

/// Latency percentiles in microseconds.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct LatSummary {
    pub count: u64,
    pub mean_us: f64,
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub max_us: f64,
}

impl LatSummary {
    /// Summarise a nanosecond histogram.
    pub fn from_ns(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        let us = |ns: u64| ns as f64 / 1000.0;
        Self {
            count: h.len(),
            mean_us: h.mean() / 1000.0,
            p50_us: us(h.value_at_quantile(0.50)),
            p90_us: us(h.value_at_quantile(0.90)),
            p99_us: us(h.value_at_quantile(0.99)),
            p999_us: us(h.value_at_quantile(0.999)),
            max_us: us(h.max()),
        }
    }

    pub fn line(&self) -> String {
        format!(
            "n={} mean={:.1}us p50={:.1}us p90={:.1}us p99={:.1}us p99.9={:.1}us max={:.1}us",
            self.count,
            self.mean_us,
            self.p50_us,
            self.p90_us,
            self.p99_us,
            self.p999_us,
            self.max_us
        )
    }
}

/// How latency is measured for a completion.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// Closed loop: from the moment the request was queued for sending.
    Sent,
    /// Open loop: from the *intended* send time on the schedule (coordinated-omission free).
    Intended,
}

/// Collects completions. A completion counts iff its origin time (intended or sent, see
/// [`Origin`]) falls inside the measurement window `[window_start, window_end)`; earlier
/// ones are warm-up. In closed loop a second, CO-corrected histogram is kept with
/// `record_correct(latency, expected_interval)`, where the expected interval defaults to the
/// mean warm-up latency (the interval at which each in-flight slot would issue if the
/// server never stalled).
pub struct Recorder {
    pub origin: Origin,
    pub window_start: u64,
    pub window_end: u64,
    pub hist: Histogram<u64>,
    pub warmup: Histogram<u64>,
    pub corrected: Option<Histogram<u64>>,
    pub expected_interval_ns: Option<u64>,
    pub completed: u64,
    pub errors: u64,
    pub warmup_completed: u64,
}

impl Recorder {
    pub fn new(
        origin: Origin,
        window_start: u64,
        window_end: u64,
        expected_interval_ns: Option<u64>,
    ) -> Self {
        Self {
            origin,
            window_start,
            window_end,
            hist: new_hist(),
            warmup: new_hist(),
            corrected: (origin == Origin::Sent).then(new_hist),
            expected_interval_ns,
            completed: 0,
            errors: 0,
            warmup_completed: 0,
        }
    }

    /// Record one completion. `intended` and `sent` are the request's scheduled and actual
    /// queue times, `done` its completion time (all ns on the same clock).
    pub fn complete(&mut self, intended: u64, sent: u64, done: u64, ok: bool) {
        let origin = match self.origin {
            Origin::Sent => sent,
            Origin::Intended => intended,
        };
        let lat = done.saturating_sub(origin).max(1);
        if origin < self.window_start {
            self.warmup_completed += 1;
            let _ = self.warmup.record(lat);
            return;
        }
        if origin >= self.window_end {
            return;
        }
        if !ok {
            self.errors += 1;
        }
        self.completed += 1;
        let _ = self.hist.record(lat);
        if let Some(c) = self.corrected.as_mut() {
            let interval = *self.expected_interval_ns.get_or_insert_with(|| {
                if self.warmup.is_empty() {
                    lat
                } else {
                    self.warmup.mean().max(1.0) as u64
                }
            });
            let _ = c.record_correct(lat, interval);
        }
    }

    /// Requests per second over the measurement window.
    pub fn throughput(&self) -> f64 {
        let secs = (self.window_end - self.window_start) as f64 / 1e9;
        if secs <= 0.0 {
            0.0
        } else {
            self.completed as f64 / secs
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn open_loop_measures_from_intended_time() {
        let mut r = Recorder::new(Origin::Intended, 0, 100 * MS, None);
        // Intended at 10 ms, only sent at 19 ms (the generator or server was behind),
        // done at 20 ms: the recorded latency is 10 ms, not 1 ms.
        r.complete(10 * MS, 19 * MS, 20 * MS, true);
        assert_eq!(r.completed, 1);
        let s = LatSummary::from_ns(&r.hist);
        assert!((s.max_us - 10_000.0).abs() < 10.0, "{s:?}");
        assert!(r.corrected.is_none());
    }

    #[test]
    fn closed_loop_measures_from_send_and_corrects() {
        let mut r = Recorder::new(Origin::Sent, 10 * MS, 100 * MS, None);
        // Warm-up completions (origin before the window) establish a 1 ms interval.
        for i in 0..5 {
            r.complete(i * MS, i * MS, (i + 1) * MS, true);
        }
        assert_eq!(r.completed, 0);
        assert_eq!(r.warmup_completed, 5);
        // One 10 ms stall inside the window.
        r.complete(0, 20 * MS, 30 * MS, true);
        assert_eq!(r.completed, 1);
        assert_eq!(r.hist.len(), 1);
        // The interval is the warm-up mean (to histogram precision).
        let iv = r.expected_interval_ns.unwrap();
        assert!(iv.abs_diff(MS) < MS / 100, "{iv}");
        // record_correct back-fills the requests that would have been issued during the
        // stall: 10 ms, ~9 ms, ... ~1 ms.
        let c = r.corrected.as_ref().unwrap();
        assert!((9..=10).contains(&c.len()), "{}", c.len());
        assert!(c.min() < 2 * MS);
    }

    #[test]
    fn completions_outside_window_are_ignored_and_errors_counted() {
        let mut r = Recorder::new(Origin::Sent, 10, 20, Some(1));
        r.complete(0, 25, 30, true); // after the window
        r.complete(0, 15, 16, false);
        assert_eq!(r.completed, 1);
        assert_eq!(r.errors, 1);
        assert_eq!(r.throughput(), 1.0 / (10.0 / 1e9));
    }

    #[test]
    fn summary_of_empty_histogram_is_zero() {
        assert_eq!(LatSummary::from_ns(&new_hist()), LatSummary::default());
    }
}
