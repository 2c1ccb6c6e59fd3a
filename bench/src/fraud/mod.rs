//! The `features` suite's workloads: a card-fraud event stream ingested into Tarn feature views
//! and, as the peer, kept in Redis the way a Redis user would (per-bucket hashes and
//! HyperLogLogs with a TTL).
//!
//! - [`FraudShape`] / [`Event`]: the events. Cards `card:%07d` uniform over 1M, account
//!   `acct:%07d` = card / 4, device `dev:%06d` uniform over 300k, merchant `m:%04d` over 1000,
//!   IP `10.x.y.z` over 10k, amount log-uniform in [1, 2000] rounded to cents (≈18% > 500).
//! - [`TarnIngestCodec`]: INGEST of typed rows (body kind 2) of one batch, tagged with a
//!   producer (id per connection, seq per batch) like a real producer.
//! - [`RedisFraudCodec`]: for each event the 17 commands of [`REDIS_CMDS_PER_EVENT`], all
//!   commands of a batch in one pipelined write; the batch completes with its last reply.
//! - [`TarnFeaturesCodec`]: FEATURES of one key (the engine's key index).
//! - [`BlockingTarn`], [`setup`], [`load()`]: schema and bulk loads on blocking connections.
//! - [`freshness`]: the time from an event's ack to its effect being visible on another
//!   connection, under background ingest.
//! - [`vm_rss_kib`]: a server's resident set size from `/proc/<pid>/status`.
//!
//! Files: `events.rs` (key spaces, [`Event`], [`FraudShape`]), `tarn.rs` (the Tarn codecs and
//! their factories), `redis.rs` (the Redis peer's codec and factory), `load.rs`
//! ([`BlockingTarn`], [`setup`], bulk [`load()`], [`vm_rss_kib`]) and `fresh.rs` ([`freshness`]).
//! This module holds the suite's constants, its SQL and the [`View`]s.

mod events;
mod fresh;
mod load;
mod redis;
mod tarn;

pub use events::{account_key, card_key, device_key, ip_text, merchant_key, Event, FraudShape};
pub use fresh::{freshness, txns_of, BgLoad, FreshConfig, FreshOutput};
pub use load::{
    load, parse_vm_rss, pipeline_events, setup, vm_rss_kib, BlockingTarn, LoadPlan, LoadStats,
};
pub use redis::{RedisFraudCodec, RedisFraudFactory};
pub use tarn::{
    decode_tarn, fill_row, producer_base, TarnFeaturesCodec, TarnFeaturesFactory, TarnIngestCodec,
    TarnIngestFactory,
};

use crate::target::Codec;

/// The stream of the suite.
pub const STREAM: &str = "tx";
/// Bucket width of the views (10 s) in µs.
pub const BUCKET_US: i64 = 10_000_000;
/// Buckets per window (10 minutes / 10 s).
pub const WINDOW_BUCKETS: i64 = 60;
/// Cards per account (account = card / 4).
pub const CARDS_PER_ACCOUNT: u64 = 4;
/// Columns of the stream, in the order the typed rows carry them.
pub const COLUMNS: [&str; 7] = [
    "ts",
    "card_id",
    "account_id",
    "device_id",
    "amount",
    "merchant",
    "ip",
];
/// Commands Redis executes per event (card 7, account 5, device 5); see [`RedisFraudCodec`].
pub const REDIS_CMDS_PER_EVENT: usize = 17;
/// TTL of every Redis key: the 10-minute window.
pub const REDIS_TTL_SECS: &[u8] = b"600";

/// `CREATE STREAM` of the suite.
pub fn create_stream_sql() -> String {
    format!(
        "CREATE STREAM {STREAM} (ts TIMESTAMP, card_id TEXT, account_id TEXT, device_id TEXT, \
         amount DOUBLE, merchant TEXT, ip TEXT) WITH (event_time = 'ts', partition = 'card_id')"
    )
}

/// The three feature views.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum View {
    Card,
    Account,
    Device,
}

impl View {
    pub const ALL: [View; 3] = [View::Card, View::Account, View::Device];

    pub fn name(self) -> &'static str {
        match self {
            View::Card => "card_10m",
            View::Account => "account_10m",
            View::Device => "device_10m",
        }
    }

    /// `card`, `account` or `device` (also the full view names).
    pub fn parse(s: &str) -> Option<View> {
        View::ALL
            .into_iter()
            .find(|v| v.name() == s || v.name().strip_suffix("_10m") == Some(s))
    }

    /// Aggregates the view keeps.
    pub fn aggregates(self) -> usize {
        match self {
            View::Card => 10,
            View::Account | View::Device => 4,
        }
    }

    pub fn create_sql(self) -> String {
        let with = "WITH (window = '10 minutes', bucket = '10 seconds')";
        match self {
            View::Card => format!(
                "CREATE MATERIALIZED VIEW card_10m {with} AS SELECT card_id, count(*) AS txns, \
                 sum(amount) AS spend, max(amount) AS max_amount, min(amount) AS min_amount, \
                 avg(amount) AS avg_amount, stddev(amount) AS sd_amount, \
                 count(DISTINCT merchant) AS merchants, count(DISTINCT ip) AS ips, \
                 last(ip) AS last_ip, count(*) FILTER (WHERE amount > 500) AS big \
                 FROM {STREAM} GROUP BY card_id"
            ),
            View::Account | View::Device => {
                let key = if self == View::Account {
                    "account_id"
                } else {
                    "device_id"
                };
                format!(
                    "CREATE MATERIALIZED VIEW {} {with} AS SELECT {key}, count(*) AS txns, \
                     sum(amount) AS spend, max(amount) AS max_amount, \
                     count(DISTINCT card_id) AS cards FROM {STREAM} GROUP BY {key}",
                    self.name()
                )
            }
        }
    }

    /// The key text of index `i` in this view's key space.
    pub fn key(self, i: u64, out: &mut String) {
        match self {
            View::Card => card_key(i, out),
            View::Account => account_key(i, out),
            View::Device => device_key(i, out),
        }
    }
}

/// A codec that can encode a given batch of events as one request (Tarn) or one pipeline
/// (Redis), so that bulk loads and the load engine send exactly the same bytes.
pub trait IngestCodec: Codec {
    fn encode_events(&mut self, events: &[Event], id: u64, out: &mut Vec<u8>);
}

/// Per-connection seeds: distinct, deterministic for a given `--seed`.
fn conn_seed(seed: u64, n: u64) -> u64 {
    seed ^ n.wrapping_add(1).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_padded() {
        let mut s = String::new();
        card_key(42, &mut s);
        assert_eq!(s, "card:0000042");
        s.clear();
        account_key(1_234_567, &mut s);
        assert_eq!(s, "acct:1234567");
        s.clear();
        device_key(7, &mut s);
        assert_eq!(s, "dev:000007");
        s.clear();
        merchant_key(12_345, &mut s);
        assert_eq!(s, "m:12345");
        s.clear();
        ip_text(0x01_02_03, &mut s);
        assert_eq!(s, "10.1.2.3");
        assert_eq!(View::parse("card"), Some(View::Card));
        assert_eq!(View::parse("device_10m"), Some(View::Device));
        assert_eq!(View::parse("x"), None);
    }

    #[test]
    fn view_sql_has_the_promised_aggregates() {
        let card = View::Card.create_sql();
        for agg in [
            "count(*) AS txns",
            "stddev(amount)",
            "count(DISTINCT merchant)",
            "last(ip)",
            "FILTER (WHERE amount > 500)",
        ] {
            assert!(card.contains(agg), "{agg}");
        }
        assert_eq!(card.matches(" AS ").count(), 11); // 10 aggregates + AS SELECT
        assert!(View::Device.create_sql().contains("GROUP BY device_id"));
        assert!(create_stream_sql().contains("partition = 'card_id'"));
    }
}
