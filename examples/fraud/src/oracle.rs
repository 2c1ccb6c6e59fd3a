//! What `fraud_check` must answer, recomputed from the data set alone: the feature views of
//! `schema.sql` by their definition in docs/SQL.md (window rule, exactly rounded sums, exact
//! distinct counts, `last` by event time), the kNN item by brute force, the recent events by
//! event time. Used by `tests/fraud_example.rs`.

use crate::{Dataset, Device, Event};

/// The window of every feature view in `schema.sql` (`'1 hour'`).
pub const WINDOW_US: i64 = 3_600_000_000;
/// Their bucket width (`'1 minute'`).
pub const BUCKET_US: i64 = 60_000_000;

/// A column of the `transactions` stream that views group by, count or keep the last of.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Col {
    Card,
    Account,
    Device,
    Ip,
    Merchant,
}

impl Col {
    pub fn of(self, e: &Event) -> &str {
        match self {
            Col::Card => &e.card_id,
            Col::Account => &e.account_id,
            Col::Device => &e.device_id,
            Col::Ip => &e.ip,
            Col::Merchant => &e.merchant_id,
        }
    }
}

/// One feature view of `schema.sql`: `SELECT key, count(*) AS txns, sum(amount) AS spend,
/// max(amount) AS max_amount, count(DISTINCT distinct) AS <distinct_name>, last(last) AS
/// <last_name> … GROUP BY key`.
#[derive(Clone, Copy, Debug)]
pub struct View {
    pub name: &'static str,
    pub key: Col,
    pub key_name: &'static str,
    pub distinct: Col,
    pub distinct_name: &'static str,
    pub last: Col,
    pub last_name: &'static str,
}

pub const CARD_1H: View = View {
    name: "card_1h",
    key: Col::Card,
    key_name: "card_id",
    distinct: Col::Merchant,
    distinct_name: "merchants",
    last: Col::Ip,
    last_name: "last_ip",
};
pub const ACCOUNT_1H: View = View {
    name: "account_1h",
    key: Col::Account,
    key_name: "account_id",
    distinct: Col::Card,
    distinct_name: "cards",
    last: Col::Device,
    last_name: "last_device",
};
pub const DEVICE_1H: View = View {
    name: "device_1h",
    key: Col::Device,
    key_name: "device_id",
    distinct: Col::Card,
    distinct_name: "cards",
    last: Col::Ip,
    last_name: "last_ip",
};
pub const IP_1H: View = View {
    name: "ip_1h",
    key: Col::Ip,
    key_name: "ip",
    distinct: Col::Card,
    distinct_name: "cards",
    last: Col::Card,
    last_name: "last_card",
};

/// A view's values for one key. A key without events has `txns = 0`, `distinct = 0` and the
/// rest `None` (NULL).
#[derive(Clone, Debug, PartialEq)]
pub struct Features {
    pub txns: i64,
    pub spend: Option<f64>,
    pub max_amount: Option<f64>,
    pub distinct: i64,
    pub last: Option<String>,
}

/// Whether an event dated `ts_us` is in a sliding window read as of `as_of_us`: its bucket is
/// one of the `WINDOW_US / BUCKET_US` buckets ending with the bucket of `as_of_us` (docs/SQL.md,
/// "Event time, as-of reads": every event of the data set is appended before the read).
pub fn in_window(ts_us: i64, as_of_us: i64) -> bool {
    let bucket = |t: i64| t.div_euclid(BUCKET_US);
    let newest = bucket(as_of_us);
    let oldest = newest - WINDOW_US / BUCKET_US + 1;
    (oldest..=newest).contains(&bucket(ts_us))
}

/// The sum of `xs` rounded once, to the nearest double (what the server's `sum` of DOUBLE
/// promises): every amount is a positive multiple of 2^-60 below 2^13 (cents in 0.01 …
/// 8191.99: their doubles have no bits below 2^-60), so the sum in units of 2^-60 is an exact
/// integer, and its conversion to a double is the one rounding.
pub fn exact_sum(xs: impl Iterator<Item = f64>) -> f64 {
    const SCALE: f64 = (1u64 << 60) as f64;
    let units: i128 = xs
        .map(|x| {
            assert!(
                (0.0078125..8192.0).contains(&x),
                "amount {x} outside the exact range"
            );
            let u = x * SCALE;
            assert_eq!(u.fract(), 0.0, "amount {x} has bits below 2^-60");
            u as i128
        })
        .sum();
    units as f64 / SCALE
}

impl Dataset {
    /// The values of `view` for `key`, read as of `as_of_us`.
    pub fn features(&self, view: &View, key: &str, as_of_us: i64) -> Features {
        let events: Vec<&Event> = self
            .events
            .iter()
            .filter(|e| view.key.of(e) == key && in_window(e.ts_us, as_of_us))
            .collect();
        let mut distinct: Vec<&str> = events.iter().map(|e| view.distinct.of(e)).collect();
        distinct.sort_unstable();
        distinct.dedup();
        let newest = events.iter().max_by_key(|e| e.ts_us);
        Features {
            txns: events.len() as i64,
            spend: newest.map(|_| exact_sum(events.iter().map(|e| e.amount))),
            max_amount: events.iter().map(|e| e.amount).reduce(f64::max),
            distinct: distinct.len() as i64,
            last: newest.map(|e| view.last.of(e).to_string()),
        }
    }

    /// The last `n` transactions of a card, newest first.
    pub fn recent(&self, card_id: &str, n: usize) -> Vec<&Event> {
        self.events
            .iter()
            .rev()
            .filter(|e| e.card_id == card_id)
            .take(n)
            .collect()
    }

    /// The `k` devices nearest (L2) to the fingerprint of `device_id` among those that are not
    /// allowlisted (the filter of `fraud_check`), nearest first, by brute force; `None` if the
    /// device does not exist.
    pub fn nearest_devices(&self, device_id: &str, k: usize) -> Option<Vec<(f32, &Device)>> {
        let q = &self.device(device_id)?.fingerprint;
        let mut all: Vec<(f32, &Device)> = self
            .devices
            .iter()
            .filter(|d| !d.allowlisted)
            .map(|d| (l2(q, &d.fingerprint), d))
            .collect();
        all.sort_by(|a, b| a.0.total_cmp(&b.0));
        all.truncate(k);
        Some(all)
    }
}

/// Euclidean distance, the `l2` metric of the `device_fp` index.
pub fn l2(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y) * (x - y))
        .sum::<f32>()
        .sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Config;

    #[test]
    fn exact_sum_rounds_once() {
        // Ten doubles 0.1 add up exactly to 1 + 5.6e-17, which rounds to 1.0; adding them one
        // by one rounds ten times and gives 0.9999999999999999.
        let tenth = [0.1; 10];
        assert_eq!(tenth.iter().sum::<f64>(), 0.9999999999999999);
        assert_eq!(exact_sum(tenth.iter().copied()), 1.0);
        assert_eq!(exact_sum([2.5, 0.25].into_iter()), 2.75);
        assert_eq!(exact_sum(std::iter::empty()), 0.0);
    }

    #[test]
    fn window_edges() {
        let t = 10 * WINDOW_US + 30 * 1_000_000;
        assert!(in_window(t, t));
        assert!(in_window(t - WINDOW_US + BUCKET_US, t));
        assert!(!in_window(t - WINDOW_US - BUCKET_US, t));
    }

    #[test]
    fn same_seed_same_data_and_the_ring_is_planted() {
        let c = Config::new(7, 1_800_000_000_000_000);
        let (a, b) = (Dataset::generate(&c), Dataset::generate(&c));
        assert_eq!(a.events, b.events);
        assert_eq!(a.devices, b.devices);
        let other = Dataset::generate(&Config::new(8, c.now_us));
        assert_ne!(a.events, other.events);
        assert_eq!(a.events.len(), c.events + c.ring_events);
        assert!(a.events.windows(2).all(|w| w[0].ts_us < w[1].ts_us));
        // The ring's devices are each other's nearest neighbours; the decoy is filtered out.
        let d = &a.ring.devices[0];
        let near: Vec<&str> = a
            .nearest_devices(d, c.ring_devices)
            .unwrap()
            .iter()
            .map(|(_, d)| d.device_id.as_str())
            .collect();
        let mut ring: Vec<&str> = a.ring.devices.iter().map(|s| s.as_str()).collect();
        let mut got = near.clone();
        ring.sort_unstable();
        got.sort_unstable();
        assert_eq!(got, ring);
        assert!(!near.contains(&a.ring.decoy_device.as_str()));
        // Ring accounts are shared by many cards.
        let shared = a
            .cards
            .iter()
            .filter(|k| k.account_id == a.ring.accounts[0])
            .count();
        assert!(shared >= c.ring_cards / c.ring_accounts);
    }
}
