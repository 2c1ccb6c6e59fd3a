//! Per-shard, per-opcode request counts and latency histograms (hdrhistogram, µs).

use hdrhistogram::Histogram;
use tarn_net::{OpStats, Opcode};

use super::limits::MAX_RECORDED_LATENCY_US;

/// Request opcodes we keep statistics for, in display order.
const OPS: [Opcode; 13] = [
    Opcode::Hello,
    Opcode::Ping,
    Opcode::Sql,
    Opcode::Upsert,
    Opcode::Get,
    Opcode::Delete,
    Opcode::Stats,
    Opcode::Ingest,
    Opcode::Features,
    Opcode::History,
    Opcode::Knn,
    Opcode::Context,
    Opcode::Recent,
];

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

    /// Records one request of opcode `op` (a request opcode, never ERROR).
    pub fn record(&mut self, op: Opcode, latency_us: u64) {
        let slot = OPS.iter().position(|o| *o == op).expect("a request opcode");
        let v = latency_us.clamp(1, MAX_RECORDED_LATENCY_US);
        self.hists[slot].record(v).expect("value within bounds");
    }

    pub fn snapshot(&self) -> Vec<OpStats> {
        OPS.iter()
            .zip(&self.hists)
            .filter(|(_, h)| !h.is_empty())
            .map(|(name, h)| OpStats {
                op: name.name().to_string(),
                count: h.len(),
                p50_us: h.value_at_quantile(0.50),
                p99_us: h.value_at_quantile(0.99),
                p999_us: h.value_at_quantile(0.999),
                max_us: h.max(),
            })
            .collect()
    }
}
