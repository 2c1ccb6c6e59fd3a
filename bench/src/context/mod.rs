//! The `fraud_check` benchmark (issue 9): everything one decision on a card payment reads —
//! the named context `fraud_check` of `examples/fraud/schema.sql` — fetched from Tarn in one
//! CONTEXT round trip, and the same data fetched from Redis 7 the way a Redis user would, one
//! pipelined round trip per dependent hop.
//!
//! - [`BenchData`]: the fraud example's data set ([`::fraud::Dataset`], seeded), the calls
//!   (card, its device, its latest IP) and the device fingerprints the Redis client scans.
//! - `tarn.rs`: CONTEXT `fraud_check` and GET of the card row (the point read of the same run)
//!   through one codec, and the loader through the `tarn` CLI.
//! - `redis.rs`: [`RedisContextCodec`] (three hops, below), [`RedisGetCodec`] (HGETALL of the
//!   card) and the loader.
//! - `verify.rs`: both systems' answers for a sample of calls against [`::fraud::oracle`], so the
//!   two sides are shown to fetch the same data before either is timed.
//!
//! Redis has no vector search without the RediSearch module (Debian's `redis-server` 7.0 has
//! none), so its kNN is a **client-side exact scan** over a copy of every non-allowlisted
//! fingerprint held in the client's memory (loaded once; never refreshed — in Redis's favour:
//! no transfer per call, and no freshness). A second Redis variant leaves the kNN and what
//! depends on it out: a lower bound for any way Redis could do the kNN.
//!
//! Redis keys (written by [`redis::load`]):
//!
//! ```text
//! card:<id>      hash  account_id device_id bin issued_at blocked
//! account:<id>   hash  account_id owner country opened_at risk
//! device:<id>    hash  device_id account_id platform allowlisted
//! merchant:<id>  hash  merchant_id name category country
//! recent:<card>  list  newest first, at most 5: "ts|amount|merchant_id|device_id|ip"
//! f:<view>:<key> hash  <minute>:n <minute>:s <minute>:m (count, sum, max per minute bucket),
//!                      last (the newest event's `last` column), last_ts
//! f:<view>:<key>:d zset distinct member -> newest event time (µs): ZCOUNT over the window
//!                      is the exact distinct count (Tarn's is exact too)
//! ```

pub mod redis;
pub mod report;
pub mod tarn;
pub mod verify;

use std::collections::HashMap;

use ::fraud::{Config, Dataset};

pub use redis::{RedisContextCodec, RedisContextFactory, RedisGetFactory};
pub use tarn::TarnCallFactory;

/// The named context every Tarn call runs (examples/fraud/schema.sql).
pub const CONTEXT: &str = "fraud_check";
/// Items of `fraud_check`: a reply with fewer is counted as an error.
pub const CONTEXT_ITEMS: usize = 11;
/// `recent(transactions, card_id, 5, …)`.
pub const RECENT_N: usize = 5;
/// `knn(device_fp, …, k => 5, …)`.
pub const KNN_K: usize = 5;

/// One call: the parameters of `fraud_check`.
#[derive(Clone, Debug, PartialEq)]
pub struct Call {
    pub card_id: String,
    pub device_id: String,
    pub ip: String,
}

/// The data set, the calls drawn from it and the fingerprints the Redis client scans.
pub struct BenchData {
    pub data: Dataset,
    pub calls: Vec<Call>,
    pub prints: Fingerprints,
}

/// Sizes of the benchmark's data set (flags of `fraud_check`).
#[derive(Clone, Copy, Debug)]
pub struct Sizes {
    pub seed: u64,
    pub accounts: usize,
    pub cards: usize,
    pub merchants: usize,
    pub events: usize,
    /// Minutes before now the events are spread over (well inside the views' hour, so the
    /// window does not move under a run).
    pub span_minutes: u32,
    /// Calls drawn (distinct cards with at least one event).
    pub calls: usize,
}

impl BenchData {
    /// Generates the data set dated up to `now_us` and draws the calls.
    pub fn generate(s: &Sizes, now_us: i64) -> Result<BenchData, String> {
        let mut config = Config::new(s.seed, now_us);
        config.accounts = s.accounts;
        config.cards = s.cards;
        config.merchants = s.merchants;
        config.events = s.events;
        config.span_minutes = s.span_minutes;
        config.check()?;
        let data = Dataset::generate(&config);
        let calls = draw_calls(&data, s.calls, s.seed);
        if calls.is_empty() {
            return Err("the data set has no card with an event".into());
        }
        let prints = Fingerprints::new(&data);
        Ok(BenchData {
            data,
            calls,
            prints,
        })
    }
}

/// Up to `n` distinct cards with events, each with the device and IP of its newest event
/// (the payment being decided on), in a seeded random order.
fn draw_calls(data: &Dataset, n: usize, seed: u64) -> Vec<Call> {
    let mut newest: HashMap<&str, &::fraud::Event> = HashMap::new();
    for e in &data.events {
        newest.insert(&e.card_id, e); // events are in time order: the last one wins
    }
    let mut calls: Vec<Call> = data
        .cards
        .iter()
        .filter_map(|c| newest.get(c.card_id.as_str()))
        .map(|e| Call {
            card_id: e.card_id.clone(),
            device_id: e.device_id.clone(),
            ip: e.ip.clone(),
        })
        .collect();
    let mut rng = crate::workload::Rng::new(seed);
    for i in (1..calls.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        calls.swap(i, j);
    }
    calls.truncate(n);
    calls
}

/// Every device's fingerprint (the query of `like => device_id`) and the non-allowlisted ones
/// (the candidates of `filter => 'allowlisted = false'`), flat.
pub struct Fingerprints {
    dim: usize,
    index_of: HashMap<String, usize>,
    all: Vec<f32>,
    candidate_ids: Vec<String>,
    candidates: Vec<f32>,
}

impl Fingerprints {
    pub fn new(data: &Dataset) -> Fingerprints {
        let dim = ::fraud::FINGERPRINT_DIM;
        let mut f = Fingerprints {
            dim,
            index_of: HashMap::with_capacity(data.devices.len()),
            all: Vec::with_capacity(data.devices.len() * dim),
            candidate_ids: Vec::new(),
            candidates: Vec::new(),
        };
        for (i, d) in data.devices.iter().enumerate() {
            f.index_of.insert(d.device_id.clone(), i);
            f.all.extend_from_slice(&d.fingerprint);
            if !d.allowlisted {
                f.candidate_ids.push(d.device_id.clone());
                f.candidates.extend_from_slice(&d.fingerprint);
            }
        }
        f
    }

    /// Candidates scanned per kNN.
    pub fn candidates(&self) -> usize {
        self.candidate_ids.len()
    }

    /// The `k` candidates nearest to `device_id`'s fingerprint by exact scan (squared L2 with
    /// Tarn's SIMD kernel; ties by candidate order), nearest first; `None` for an unknown device.
    pub fn nearest(&self, device_id: &str, k: usize) -> Option<Vec<&str>> {
        let i = *self.index_of.get(device_id)?;
        let q = &self.all[i * self.dim..(i + 1) * self.dim];
        let kernels = tarn_vectors::Kernels::detected();
        let mut best: Vec<(f32, usize)> = Vec::with_capacity(k + 1);
        for (j, v) in self.candidates.chunks_exact(self.dim).enumerate() {
            let d = kernels.l2_squared(q, v);
            if best.len() == k && d >= best[k - 1].0 {
                continue;
            }
            let at = best.partition_point(|&(bd, _)| bd <= d);
            best.insert(at, (d, j));
            best.truncate(k);
        }
        Some(
            best.iter()
                .map(|&(_, j)| self.candidate_ids[j].as_str())
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> BenchData {
        let s = Sizes {
            seed: 7,
            accounts: 200,
            cards: 300,
            merchants: 40,
            events: 2_000,
            span_minutes: 20,
            calls: 50,
        };
        BenchData::generate(&s, 1_800_000_000_000_000).unwrap()
    }

    #[test]
    fn calls_are_distinct_cards_with_their_newest_event() {
        let b = small();
        assert_eq!(b.calls.len(), 50);
        let mut cards: Vec<&str> = b.calls.iter().map(|c| c.card_id.as_str()).collect();
        cards.sort();
        cards.dedup();
        assert_eq!(cards.len(), 50);
        for c in &b.calls {
            let newest = b.data.events.iter().rev().find(|e| e.card_id == c.card_id);
            let e = newest.expect("a call's card has events");
            assert_eq!((&e.device_id, &e.ip), (&c.device_id, &c.ip));
        }
    }

    #[test]
    fn the_client_side_scan_equals_the_oracle() {
        let b = small();
        for c in b.calls.iter().take(20) {
            let want: Vec<&str> = b
                .data
                .nearest_devices(&c.device_id, KNN_K)
                .unwrap()
                .iter()
                .map(|(_, d)| d.device_id.as_str())
                .collect();
            assert_eq!(b.prints.nearest(&c.device_id, KNN_K).unwrap(), want);
        }
        assert!(b.prints.nearest("no-such-device", KNN_K).is_none());
        let allowlisted = b.data.devices.iter().filter(|d| d.allowlisted).count();
        assert_eq!(b.prints.candidates(), b.data.devices.len() - allowlisted);
    }
}
