//! Per-shard, per-opcode request counts and latency histograms (hdrhistogram, µs).

use hdrhistogram::Histogram;
use tarn_net::OpStats;

use super::limits::MAX_RECORDED_LATENCY_US;

/// Opcodes we keep statistics for, in display order.
pub const OPS: [&str; 7] = ["HELLO", "PING", "SQL", "UPSERT", "GET", "DELETE", "STATS"];

pub struct OpHistograms {
    hists: Vec<Histogram<u64>>,
}

impl OpHistograms {
    pub fn new() -> Self {
        let hists = OPS
            .iter()
            .map(|_| {
                Histogram::new_with_bounds(1, MAX_RECORDED_LATENCY_US, 3).expect("valid bounds")
            })
            .collect();
        OpHistograms { hists }
    }

    pub fn record(&mut self, op: usize, latency_us: u64) {
        let v = latency_us.clamp(1, MAX_RECORDED_LATENCY_US);
        self.hists[op].record(v).expect("value within bounds");
    }

    pub fn snapshot(&self) -> Vec<OpStats> {
        OPS.iter()
            .zip(&self.hists)
            .filter(|(_, h)| !h.is_empty())
            .map(|(name, h)| OpStats {
                op: (*name).to_string(),
                count: h.len(),
                p50_us: h.value_at_quantile(0.50),
                p99_us: h.value_at_quantile(0.99),
                p999_us: h.value_at_quantile(0.999),
                max_us: h.max(),
            })
            .collect()
    }
}

/// Index into [`OPS`] for an opcode name.
pub fn op_index(name: &str) -> usize {
    OPS.iter().position(|o| *o == name).expect("known op")
}
