//! Feature views end to end, against an oracle that recomputes every aggregate from the raw
//! events under the documented semantics (docs/SQL.md, "Feature views"):
//! - a read states its as-of time T and includes exactly the events appended at or before T;
//! - a sliding window of W made of buckets of B includes the events whose event time lies in
//!   the W/B buckets ending with the bucket of T (bucket = floor(event_time / B));
//! - an event whose bucket had already left the window when it was appended is late: it never
//!   counts; events dated after the server clock + max_future are refused;
//! - a retried producer batch counts once.
//!
//! The test reads at quiescent points (every batch acknowledged, nothing in flight), so the
//! oracle knows exactly which events were appended before the read. Event times are chosen
//! relative to the moment a batch is sent so that "late" and "in the window" can never be
//! ambiguous whatever the exact append stamp is (see `event_time`).

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use common::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tarn_net::{FeaturesReply, FeaturesRequest, IngestBody, IngestRequest, Producer};

const SHARDS: u32 = 2;
const WINDOW_US: i64 = 60_000_000;
const BUCKET_US: i64 = 5_000_000;
const CARDS: usize = 1_200;
const ACCOUNTS: usize = 300;
const MERCHANTS: usize = 3;
const BATCHES: usize = 220;
const BATCH: usize = 500;

fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64
}

#[derive(Clone, Debug)]
struct Ev {
    ts: i64,
    card: String,
    account: String,
    merchant: String,
    amount: f64,
    ip: Option<String>,
}

impl Ev {
    fn row(&self) -> Vec<Value> {
        vec![
            Value::Timestamp(self.ts),
            Value::Text(self.card.clone()),
            Value::Text(self.account.clone()),
            Value::Text(self.merchant.clone()),
            Value::Double(self.amount),
            self.ip.clone().map_or(Value::Null, Value::Text),
        ]
    }
}

/// An event time relative to `sent` (the clock when the batch is sent): mostly inside the last
/// half window (never late, whatever the append stamp a few ms later), some a little in the
/// future (within max_future), some far in the past (certainly late).
fn event_time(rng: &mut StdRng, sent: i64) -> (i64, bool) {
    match rng.random_range(0..100) {
        0..=3 => (sent - 10 * WINDOW_US - rng.random_range(0..WINDOW_US), true),
        4..=7 => (sent + rng.random_range(0..5_000_000), false),
        _ => (sent - rng.random_range(0..WINDOW_US / 2), false),
    }
}

fn bucket(ts: i64) -> i64 {
    ts.div_euclid(BUCKET_US)
}

/// What the oracle knows of one accepted event.
struct Known {
    ev: Ev,
    late: bool,
}

fn window_of(as_of: i64) -> (i64, i64) {
    let cur = bucket(as_of);
    (cur - WINDOW_US / BUCKET_US + 1, cur)
}

fn exact(xs: impl IntoIterator<Item = f64>) -> f64 {
    // Amounts are multiples of 1/4 below 2^20 and there are far fewer than 2^30 of them: every
    // partial sum is exact in f64, so plain addition is the exact sum (in any order).
    xs.into_iter().fold(0.0, |a, b| a + b)
}

fn variance(xs: &[f64], sample: bool) -> Value {
    let n = xs.len() as f64;
    if (sample && xs.len() < 2) || xs.is_empty() {
        return Value::Null;
    }
    let s = exact(xs.iter().copied());
    let q = exact(xs.iter().map(|x| x * x));
    let m2 = (q - s * s / n).max(0.0);
    Value::Double(if sample { m2 / (n - 1.0) } else { m2 / n })
}

/// The oracle's values for the card view: txns, spend, max_amount, avg_amount, sd, big (count
/// filtered), accounts (distinct), first_ip, last_ip, min_ts.
fn card_oracle(evs: &[&Ev]) -> Vec<Value> {
    let amounts: Vec<f64> = evs.iter().map(|e| e.amount).collect();
    let n = evs.len();
    let max = amounts.iter().copied().max_by(f64::total_cmp);
    let big = evs.iter().filter(|e| e.amount >= 500.0).count();
    let accounts: BTreeSet<&str> = evs.iter().map(|e| e.account.as_str()).collect();
    let ips: Vec<(i64, &str)> = evs
        .iter()
        .filter_map(|e| e.ip.as_deref().map(|ip| (e.ts, ip)))
        .collect();
    // first: smallest time, ties by smallest value; last: largest time, ties by largest value.
    let first = ips.iter().min_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(b.1)));
    let last = ips.iter().max_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(b.1)));
    vec![
        Value::Int(n as i64),
        if n == 0 {
            Value::Null
        } else {
            Value::Double(exact(amounts.iter().copied()))
        },
        max.map_or(Value::Null, Value::Double),
        if n == 0 {
            Value::Null
        } else {
            Value::Double(exact(amounts.iter().copied()) / n as f64)
        },
        match variance(&amounts, true) {
            Value::Double(v) => Value::Double(v.sqrt()),
            v => v,
        },
        Value::Int(big as i64),
        Value::Int(accounts.len() as i64),
        first.map_or(Value::Null, |x| Value::Text(x.1.to_string())),
        last.map_or(Value::Null, |x| Value::Text(x.1.to_string())),
        evs.iter()
            .map(|e| e.ts)
            .min()
            .map_or(Value::Null, Value::Timestamp),
    ]
}

fn ingest(c: &mut Conn, rows: Vec<Vec<Value>>, producer: (u64, u64)) -> CResult<Response> {
    c.call(&Request::Ingest(IngestRequest {
        stream: "tx".into(),
        producer: Some(Producer {
            id: producer.0,
            seq: producer.1,
        }),
        body: IngestBody::Rows {
            columns: ["ts", "card", "account", "merchant", "amount", "ip"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            rows,
        },
    }))
}

fn features(c: &mut Conn, view: &str, keys: &[String]) -> FeaturesReply {
    match c
        .call(&Request::Features(FeaturesRequest {
            view: view.into(),
            keys: keys.iter().map(|k| Value::Text(k.clone())).collect(),
            as_of_us: None,
        }))
        .unwrap()
    {
        Response::Features(r) => r,
        o => panic!("unexpected {o:?}"),
    }
}

fn setup(server: &TarnServer) -> Conn {
    let mut c = server.client();
    c.sql(
        "CREATE STREAM tx (ts TIMESTAMP, card TEXT, account TEXT, merchant TEXT, amount DOUBLE, ip TEXT) \
         WITH (event_time = 'ts', partition = 'card', max_future = '30 seconds')",
    )
    .unwrap();
    c.sql(
        "CREATE MATERIALIZED VIEW card_w WITH (window = '60 seconds', bucket = '5 seconds') AS \
         SELECT card, count(*) AS txns, sum(amount) AS spend, max(amount) AS max_amount, \
                avg(amount) AS avg_amount, stddev(amount) AS sd, \
                count(*) FILTER (WHERE amount >= 500) AS big, count(DISTINCT account) AS accounts, \
                first(ip) AS first_ip, last(ip) AS last_ip, min(ts) AS min_ts \
         FROM tx GROUP BY card",
    )
    .unwrap();
    c.sql(
        "CREATE MATERIALIZED VIEW account_life WITH (window = 'lifetime') AS \
         SELECT account, count(*) AS txns, sum(amount) AS spend, min(amount) AS min_amount \
         FROM tx WHERE merchant <> 'm0' GROUP BY account",
    )
    .unwrap();
    c.sql(
        "CREATE MATERIALIZED VIEW merchant_life WITH (window = 'lifetime') AS \
         SELECT merchant, count(DISTINCT card) AS cards, count(*) AS txns FROM tx GROUP BY merchant",
    )
    .unwrap();
    c
}

#[test]
fn oracle_every_aggregate_of_every_view() {
    let mut server = TarnServer::start_ok(ServerOpts::shards(SHARDS).durability("sync"));
    let mut c = setup(&server);
    let mut rng = StdRng::seed_from_u64(20261126);
    let mut known: Vec<Known> = Vec::new();
    let (mut late_sent, mut future_refused, mut retried) = (0, 0, 0);
    let mut checks = 0usize;
    for b in 0..BATCHES {
        let sent = now_us();
        let mut evs = Vec::with_capacity(BATCH);
        let mut lates = Vec::with_capacity(BATCH);
        for _ in 0..BATCH {
            let (ts, late) = event_time(&mut rng, sent);
            let card = rng.random_range(0..CARDS);
            evs.push(Ev {
                ts,
                card: format!("card-{card}"),
                account: format!("acct-{}", (card * 7 + rng.random_range(0..3)) % ACCOUNTS),
                merchant: format!("m{}", rng.random_range(0..MERCHANTS)),
                // Multiples of 1/4: exact sums (see `exact`).
                amount: rng.random_range(0..4000u32) as f64 / 4.0,
                ip: (!rng.random_bool(0.1)).then(|| format!("10.0.0.{}", rng.random_range(0..8))),
            });
            lates.push(late);
        }
        let rows: Vec<Vec<Value>> = evs.iter().map(Ev::row).collect();
        if b % 17 == 5 {
            // A batch with one event dated too far in the future: refused whole.
            let mut bad = rows.clone();
            bad[123][0] = Value::Timestamp(sent + 3_600_000_000);
            let e = ingest(&mut c, bad, (1, 1_000_000 + b as u64))
                .unwrap_err()
                .server();
            assert_eq!((e.code, e.row), (ErrorCode::FutureEvent, Some(123)), "{e}");
            future_refused += 1;
        }
        let r = ingest(&mut c, rows.clone(), (1, b as u64 + 1)).unwrap();
        assert!(
            matches!(r, Response::Ingest(ref i) if !i.duplicate),
            "{r:?}"
        );
        if b % 10 == 3 {
            // Retry of the same batch: a duplicate, counted once.
            let r = ingest(&mut c, rows, (1, b as u64 + 1)).unwrap();
            assert!(matches!(r, Response::Ingest(ref i) if i.duplicate), "{r:?}");
            retried += 1;
        }
        late_sent += lates.iter().filter(|l| **l).count();
        known.extend(
            evs.into_iter()
                .zip(lates)
                .map(|(ev, late)| Known { ev, late }),
        );

        if b % 20 == 19 || b + 1 == BATCHES {
            checks += check_all(&mut c, &known, &mut rng);
        }
        if b == BATCHES / 2 {
            // Restart in the middle: views come back from checkpoint + log identical.
            let before = features(
                &mut c,
                "card_w",
                &(0..50).map(|i| format!("card-{i}")).collect::<Vec<_>>(),
            );
            server.kill9();
            server.restart_ok();
            c = server.client();
            let after = features(
                &mut c,
                "card_w",
                &(0..50).map(|i| format!("card-{i}")).collect::<Vec<_>>(),
            );
            for (b, a) in before.rows.iter().zip(&after.rows) {
                if window_of(b.as_of_us) == window_of(a.as_of_us) {
                    assert_eq!(b.values, a.values, "card_w changed across kill -9");
                }
            }
            checks += check_all(&mut c, &known, &mut rng);
        }
    }
    eprintln!(
        "{} events accepted ({late_sent} late), {future_refused} batches refused as future-dated, {retried} retried, {checks} (key, T) checks",
        known.len()
    );
    assert!(known.len() >= 100_000);
    assert!(checks >= 500);
    // SHOW VIEWS counts what each view applied and the late events it dropped.
    let v = c.sql("SHOW VIEWS").unwrap();
    let col = |n: &str| v.columns.iter().position(|c| c.name == n).unwrap();
    let row = |name: &str| {
        v.rows
            .iter()
            .find(|r| r[0] == Value::Text(name.into()))
            .unwrap()
            .clone()
    };
    let card = row("card_w");
    assert_eq!(card[col("late_events")], Value::Int(late_sent as i64));
    assert_eq!(
        card[col("events")],
        Value::Int((known.len() - late_sent) as i64)
    );
    let acct = row("account_life");
    let not_m0 = known.iter().filter(|k| k.ev.merchant != "m0").count();
    assert_eq!(acct[col("events")], Value::Int(not_m0 as i64));
    assert_eq!(acct[col("late_events")], Value::Int(0));
    assert_eq!(
        row("merchant_life")[col("keys")],
        Value::Int(MERCHANTS as i64)
    );
    server.stop_ok();
}

/// Reads a sample of keys of every view and compares every aggregate with the oracle.
fn check_all(c: &mut Conn, known: &[Known], rng: &mut StdRng) -> usize {
    let mut checks = 0;
    // card_w: sliding window.
    let keys: Vec<String> = (0..40)
        .map(|_| format!("card-{}", rng.random_range(0..CARDS)))
        .collect();
    let r = features(c, "card_w", &keys);
    let mut by_card: HashMap<&str, Vec<&Ev>> = HashMap::new();
    for k in known.iter().filter(|k| !k.late) {
        by_card.entry(k.ev.card.as_str()).or_default().push(&k.ev);
    }
    for (key, row) in keys.iter().zip(&r.rows) {
        // Each row has its own as-of time (its shard's); the window ends at its bucket.
        let (lo, hi) = window_of(row.as_of_us);
        let evs: Vec<&Ev> = by_card
            .get(key.as_str())
            .map(|v| {
                v.iter()
                    .copied()
                    .filter(|e| (lo..=hi).contains(&bucket(e.ts)))
                    .collect()
            })
            .unwrap_or_default();
        let mut want = vec![Value::Text(key.clone())];
        want.extend(card_oracle(&evs));
        assert_eq!(row.values, want, "card_w {key} as of {}", row.as_of_us);
        checks += 1;
    }
    // account_life: lifetime, WHERE merchant <> 'm0'.
    let keys: Vec<String> = (0..30)
        .map(|_| format!("acct-{}", rng.random_range(0..ACCOUNTS)))
        .collect();
    let r = features(c, "account_life", &keys);
    let mut by_acct: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for k in known {
        if k.ev.merchant != "m0" {
            by_acct
                .entry(k.ev.account.as_str())
                .or_default()
                .push(k.ev.amount);
        }
    }
    for (key, row) in keys.iter().zip(&r.rows) {
        let xs = by_acct.get(key.as_str()).cloned().unwrap_or_default();
        let want = vec![
            Value::Text(key.clone()),
            Value::Int(xs.len() as i64),
            if xs.is_empty() {
                Value::Null
            } else {
                Value::Double(exact(xs.iter().copied()))
            },
            xs.iter()
                .copied()
                .min_by(f64::total_cmp)
                .map_or(Value::Null, Value::Double),
        ];
        assert_eq!(row.values, want, "account_life {key}");
        checks += 1;
    }
    // merchant_life: distinct cards per merchant (hundreds per merchant: exact below 1024 in its
    // one bucket, HyperLogLog above; checked within 4 standard errors then).
    let keys: Vec<String> = (0..MERCHANTS).map(|m| format!("m{m}")).collect();
    let r = features(c, "merchant_life", &keys);
    for (key, row) in keys.iter().zip(&r.rows) {
        let cards: BTreeSet<&str> = known
            .iter()
            .filter(|k| k.ev.merchant == *key)
            .map(|k| k.ev.card.as_str())
            .collect();
        let n = known.iter().filter(|k| k.ev.merchant == *key).count();
        assert_eq!(
            row.values[2],
            Value::Int(n as i64),
            "merchant_life {key} txns"
        );
        let Value::Int(got) = row.values[1] else {
            panic!("{row:?}")
        };
        let want = cards.len() as f64;
        if cards.len() <= tarn_features::DISTINCT_EXACT_MAX {
            assert_eq!(got as f64, want, "merchant_life {key} exact distinct");
        } else {
            let err = (got as f64 - want).abs() / want;
            assert!(
                err <= 4.0 * tarn_features::HLL_STD_ERROR,
                "merchant_life {key}: {got} vs {want}"
            );
        }
        checks += 1;
    }
    checks
}

#[test]
fn unknown_keys_empty_values_and_bad_reads() {
    let server = TarnServer::start_ok(ServerOpts::shards(SHARDS));
    let mut c = setup(&server);
    let r = features(&mut c, "card_w", &["nobody".to_string()]);
    assert_eq!(r.columns[0].name, "card");
    assert_eq!(r.rows[0].newest_event_time_us, None);
    let mut want = vec![Value::Text("nobody".into())];
    want.extend(card_oracle(&[]));
    assert_eq!(r.rows[0].values, want);
    // SQL form.
    let s = c
        .sql("SELECT card, txns, big FROM card_w WHERE card IN ('a', 'b')")
        .unwrap();
    assert_eq!(
        s.rows,
        vec![
            vec![Value::Text("a".into()), Value::Int(0), Value::Int(0)],
            vec![Value::Text("b".into()), Value::Int(0), Value::Int(0)],
        ]
    );
    assert!(s.message.contains("as of"), "{}", s.message);
    // More keys than one read takes (the SQL form is not bounded by the frame decoder).
    let many = vec!["'a'"; 10_001].join(",");
    let e = c
        .sql(&format!("SELECT * FROM card_w WHERE card IN ({many})"))
        .unwrap_err()
        .server();
    assert_eq!(e.code, ErrorCode::BatchTooLarge, "{e}");
    // Errors: unknown view, NULL key, wrong key type.
    let e = c
        .call(&Request::Features(FeaturesRequest {
            view: "nope".into(),
            keys: vec![Value::Text("a".into())],
            as_of_us: None,
        }))
        .unwrap_err()
        .server();
    assert_eq!(e.code, ErrorCode::UnknownView);
    let e = c
        .call(&Request::Features(FeaturesRequest {
            view: "card_w".into(),
            keys: vec![Value::Text("a".into()), Value::Null],
            as_of_us: None,
        }))
        .unwrap_err()
        .server();
    assert_eq!((e.code, e.row), (ErrorCode::NullKey, Some(1)));
    let e = c
        .call(&Request::Features(FeaturesRequest {
            view: "card_w".into(),
            keys: vec![Value::Int(3)],
            as_of_us: None,
        }))
        .unwrap_err()
        .server();
    assert_eq!((e.code, e.row), (ErrorCode::TypeMismatch, Some(0)));
    // A stream with views cannot be dropped; the views can.
    assert!(c.sql("DROP STREAM tx").is_err());
    c.sql("DROP MATERIALIZED VIEW card_w; DROP MATERIALIZED VIEW account_life; DROP MATERIALIZED VIEW merchant_life; DROP STREAM tx").unwrap();
}

/// Retry test: a batch sent twice, and a batch whose connection was closed before its reply
/// was read and that was then re-sent, each count once in every view.
#[test]
fn retries_count_once_in_every_view() {
    let server = TarnServer::start_ok(ServerOpts::shards(SHARDS));
    let mut c = setup(&server);
    let t = now_us() - 1_000_000;
    let batch = |n: usize, base: usize| -> Vec<Vec<Value>> {
        (0..n)
            .map(|i| {
                Ev {
                    ts: t,
                    card: format!("card-{}", (base + i) % 40),
                    account: format!("acct-{}", (base + i) % 7),
                    merchant: "m1".into(),
                    amount: 1.0,
                    ip: None,
                }
                .row()
            })
            .collect()
    };
    // Sent twice on one connection.
    ingest(&mut c, batch(100, 0), (5, 1)).unwrap();
    let r = ingest(&mut c, batch(100, 0), (5, 1)).unwrap();
    assert!(matches!(r, Response::Ingest(ref i) if i.duplicate));
    // Connection closed before the reply, then re-sent on a new connection.
    for seq in 2..12u64 {
        let mut raw = server.client();
        let req = Request::Ingest(IngestRequest {
            stream: "tx".into(),
            producer: Some(Producer { id: 5, seq }),
            body: IngestBody::Rows {
                columns: ["ts", "card", "account", "merchant", "amount", "ip"]
                    .iter()
                    .map(|s| s.to_string())
                    .collect(),
                rows: batch(100, seq as usize * 100),
            },
        });
        raw.send(&req).unwrap();
        drop(raw); // the reply is never read
        let mut again = server.client();
        ingest(&mut again, batch(100, seq as usize * 100), (5, seq)).unwrap();
    }
    // 11 distinct batches of 100 events over 40 cards / 7 accounts / 1 merchant.
    let cards: Vec<String> = (0..40).map(|i| format!("card-{i}")).collect();
    let total = |r: FeaturesReply| -> i64 {
        r.rows
            .iter()
            .map(|row| match row.values[1] {
                Value::Int(n) => n,
                ref v => panic!("{v:?}"),
            })
            .sum()
    };
    assert_eq!(
        total(features(&mut c, "card_w", &cards)),
        1100,
        "card_w counts every event once"
    );
    let accts: Vec<String> = (0..7).map(|i| format!("acct-{i}")).collect();
    assert_eq!(
        total(features(&mut c, "account_life", &accts)),
        1100,
        "account_life counts every event once"
    );
    let r = features(&mut c, "merchant_life", &["m1".to_string()]);
    assert_eq!(r.rows[0].values[2], Value::Int(1100));
    assert_eq!(r.rows[0].values[1], Value::Int(40));
}

/// Crash test: SIGKILL during sustained ingest; after restart (and re-sending every batch that
/// was not acknowledged, with its producer tag), every event is counted exactly once in every
/// view — in particular every acknowledged one.
#[test]
fn kill9_during_ingest_counts_every_acknowledged_event_once() {
    let mut server = TarnServer::start_ok(ServerOpts::shards(SHARDS).durability("sync").args(&[
        "--segment-mib",
        "1",
        "--checkpoint-mib",
        "1",
    ]));
    drop(setup(&server));
    let t0 = now_us();
    const N: usize = 400;
    let batches: Vec<Vec<Vec<Value>>> = (0..N)
        .map(|b| {
            (0..200)
                .map(|i| {
                    let k = b * 200 + i;
                    Ev {
                        ts: t0 - (k % 10_000) as i64,
                        card: format!("card-{}", k % 997),
                        account: format!("acct-{}", k % 101),
                        merchant: format!("m{}", k % 3),
                        amount: (k % 50) as f64,
                        ip: Some(format!("ip{}", k % 5)),
                    }
                    .row()
                })
                .collect()
        })
        .collect();
    let addr = server.addr();
    let pid = server.pid();
    let to_send = batches.clone();
    let acked: Vec<bool> = std::thread::spawn(move || {
        let mut acked = vec![false; N];
        let mut conn = Conn::connect(addr).unwrap();
        let mut outstanding: HashMap<u64, usize> = HashMap::new();
        let (mut next, mut n_acked, mut killed) = (0usize, 0usize, false);
        loop {
            while outstanding.len() < 8 && next < N {
                let req = Request::Ingest(IngestRequest {
                    stream: "tx".into(),
                    producer: Some(Producer {
                        id: 77,
                        seq: next as u64 + 1,
                    }),
                    body: IngestBody::Rows {
                        columns: ["ts", "card", "account", "merchant", "amount", "ip"]
                            .iter()
                            .map(|s| s.to_string())
                            .collect(),
                        rows: to_send[next].clone(),
                    },
                });
                match conn.send(&req) {
                    Ok(id) => {
                        outstanding.insert(id, next);
                        next += 1;
                    }
                    Err(_) => break,
                }
            }
            if !killed && n_acked >= 150 {
                // SAFETY: signalling our own child process.
                unsafe { libc::kill(pid as i32, libc::SIGKILL) };
                killed = true;
            }
            if outstanding.is_empty() {
                break;
            }
            match conn.recv() {
                Ok((id, Response::Ingest(_))) => {
                    acked[outstanding.remove(&id).unwrap()] = true;
                    n_acked += 1;
                }
                Ok((_, other)) => panic!("unexpected {other:?}"),
                Err(_) => break,
            }
        }
        acked
    })
    .join()
    .unwrap();
    server.kill9();
    let n_acked = acked.iter().filter(|a| **a).count();
    assert!((150..N).contains(&n_acked), "{n_acked} batches acked");
    server.restart_ok();
    // Re-send everything not acknowledged (some may have been applied: duplicates).
    let mut c = server.client();
    let mut dups = 0;
    for (i, rows) in batches.iter().enumerate().filter(|(i, _)| !acked[*i]) {
        if let Response::Ingest(r) = ingest(&mut c, rows.clone(), (77, i as u64 + 1)).unwrap() {
            dups += usize::from(r.duplicate);
        }
    }
    eprintln!(
        "{n_acked} batches acked before the kill; {dups} of the re-sent ones were already applied"
    );
    // Every event exactly once: lifetime counts per account, window counts per card.
    let accts: Vec<String> = (0..101).map(|i| format!("acct-{i}")).collect();
    let r = features(&mut c, "account_life", &accts);
    for (i, row) in r.rows.iter().enumerate() {
        // merchant <> 'm0'
        let want = (0..N * 200).filter(|k| k % 101 == i && k % 3 != 0).count() as i64;
        assert_eq!(row.values[1], Value::Int(want), "account {i}");
    }
    let cards: Vec<String> = (0..997).map(|i| format!("card-{i}")).collect();
    let r = features(&mut c, "card_w", &cards);
    for (i, row) in r.rows.iter().enumerate() {
        let want = (0..N * 200).filter(|k| k % 997 == i).count() as i64;
        assert_eq!(row.values[1], Value::Int(want), "card {i}");
    }
    server.stop_ok();
}

/// Online/offline: values read online at recorded times T while events keep arriving equal the
/// point-in-time history for the same (key, T), bit for bit (and so does FEATURES with
/// `as_of = T`).
#[test]
fn online_reads_during_ingest_equal_history() {
    let mut server = TarnServer::start_ok(ServerOpts::shards(SHARDS).durability("sync"));
    drop(setup(&server));
    let addr = server.addr();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut c = Conn::connect(addr).unwrap();
            let mut rng = StdRng::seed_from_u64(99);
            let mut b = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && b < 2_000 {
                let sent = now_us();
                let rows: Vec<Vec<Value>> = (0..200)
                    .map(|_| {
                        let (ts, _) = event_time(&mut rng, sent);
                        let card = rng.random_range(0..50);
                        Ev {
                            ts,
                            card: format!("card-{card}"),
                            account: format!("acct-{}", card % 9),
                            merchant: format!("m{}", rng.random_range(0..MERCHANTS)),
                            amount: rng.random_range(0..4000u32) as f64 / 4.0,
                            ip: (!rng.random_bool(0.2))
                                .then(|| format!("ip{}", rng.random_range(0..6))),
                        }
                        .row()
                    })
                    .collect();
                b += 1;
                ingest(&mut c, rows, (3, b)).unwrap();
            }
            b
        })
    };
    let mut c = server.client();
    let mut rng = StdRng::seed_from_u64(7);
    let mut observed: Vec<(String, &str, FeaturesReply)> = Vec::new();
    for i in 0..120 {
        let view = ["card_w", "account_life", "merchant_life"][i % 3];
        let keys: Vec<String> = match view {
            "card_w" => (0..5)
                .map(|_| format!("card-{}", rng.random_range(0..50)))
                .collect(),
            "account_life" => (0..3)
                .map(|_| format!("acct-{}", rng.random_range(0..9)))
                .collect(),
            _ => (0..MERCHANTS).map(|m| format!("m{m}")).collect(),
        };
        let r = features(&mut c, view, &keys);
        observed.push((keys.join(","), view, r));
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let batches = writer.join().unwrap();
    assert!(
        batches > 20,
        "the writer kept ingesting during the reads ({batches} batches)"
    );
    // History for every (key, T) read online, in one request per view.
    for view in ["card_w", "account_life", "merchant_life"] {
        let mut pairs = Vec::new();
        let mut want = Vec::new();
        for (_, v, r) in observed.iter().filter(|o| o.1 == view) {
            assert_eq!(*v, view);
            for row in &r.rows {
                pairs.push((row.values[0].clone(), row.as_of_us));
                want.push(row.clone());
            }
        }
        let h = match c
            .call(&Request::History(tarn_net::HistoryRequest {
                view: view.into(),
                pairs: pairs.clone(),
            }))
            .unwrap()
        {
            Response::History(h) => h,
            o => panic!("unexpected {o:?}"),
        };
        assert_eq!(h.rows.len(), want.len());
        for (i, (got, w)) in h.rows.iter().zip(&want).enumerate() {
            assert_eq!(
                got, w,
                "{view}: pair {i} {:?} differs online vs history",
                pairs[i]
            );
        }
        // FEATURES as of a past T is the same computation.
        let (k, t) = pairs[pairs.len() / 2].clone();
        let r = match c
            .call(&Request::Features(FeaturesRequest {
                view: view.into(),
                keys: vec![k],
                as_of_us: Some(t),
            }))
            .unwrap()
        {
            Response::Features(r) => r,
            o => panic!("unexpected {o:?}"),
        };
        assert_eq!((r.as_of_us, &r.rows[0]), (t, &want[pairs.len() / 2]));
        let distinct_times: BTreeSet<i64> = pairs.iter().map(|p| p.1).collect();
        assert!(
            distinct_times.len() > 10,
            "{view}: reads at {} distinct times",
            distinct_times.len()
        );
    }
    // An as-of time in the future is refused with the pair's index.
    let e = c
        .call(&Request::History(tarn_net::HistoryRequest {
            view: "card_w".into(),
            pairs: vec![
                (Value::Text("card-1".into()), now_us() - 1_000_000),
                (Value::Text("card-1".into()), now_us() + 60_000_000),
            ],
        }))
        .unwrap_err()
        .server();
    assert_eq!((e.code, e.row), (ErrorCode::InvalidArgument, Some(1)));
    server.stop_ok();
}

/// A view created on a stream that already holds events is back-filled from the retained log:
/// every earlier event counts once (retries included once), in window or lifetime views, and
/// events ingested while it is created are not counted twice.
#[test]
fn new_view_is_backfilled_from_the_retained_log() {
    let mut server = TarnServer::start_ok(ServerOpts::shards(SHARDS).durability("sync"));
    let mut c = server.client();
    c.sql(
        "CREATE STREAM tx (ts TIMESTAMP, card TEXT, account TEXT, merchant TEXT, amount DOUBLE, ip TEXT) \
         WITH (event_time = 'ts', partition = 'card')",
    )
    .unwrap();
    let t = now_us() - 1_000_000;
    let ev = move |k: usize| {
        Ev {
            ts: t,
            card: format!("card-{}", k % 30),
            account: format!("acct-{}", k % 11),
            merchant: "m1".into(),
            amount: (k % 7) as f64,
            ip: None,
        }
        .row()
    };
    for b in 0..20u64 {
        let rows: Vec<Vec<Value>> = (0..100).map(|i| ev(b as usize * 100 + i)).collect();
        ingest(&mut c, rows.clone(), (9, b + 1)).unwrap();
        if b % 5 == 0 {
            ingest(&mut c, rows, (9, b + 1)).unwrap(); // a retry: a duplicate
        }
    }
    // A concurrent writer keeps ingesting while the view is created.
    let addr = server.addr();
    let writer = std::thread::spawn(move || {
        let mut c = Conn::connect(addr).unwrap();
        for b in 0..30u64 {
            let rows: Vec<Vec<Value>> = (0..100)
                .map(|i| ev(100_000 + b as usize * 100 + i))
                .collect();
            ingest(&mut c, rows, (10, b + 1)).unwrap();
        }
    });
    let r = c
        .sql(
            "CREATE MATERIALIZED VIEW acct_life WITH (window = 'lifetime') AS \
             SELECT account, count(*) AS n, sum(amount) AS s FROM tx GROUP BY account",
        )
        .unwrap();
    assert!(r.message.contains("back-filled"), "{}", r.message);
    writer.join().unwrap();
    let check = |c: &mut Conn| {
        let accts: Vec<String> = (0..11).map(|i| format!("acct-{i}")).collect();
        let r = features(c, "acct_life", &accts);
        for (i, row) in r.rows.iter().enumerate() {
            let ks = (0..2000).chain(100_000..103_000).filter(|k| k % 11 == i);
            let n = ks.clone().count() as i64;
            let s: f64 = ks.map(|k| (k % 7) as f64).sum();
            assert_eq!(
                row.values[1..],
                [Value::Int(n), Value::Double(s)],
                "acct-{i}"
            );
        }
    };
    check(&mut c);
    // The back-fill is durable like any write.
    server.kill9();
    server.restart_ok();
    let mut c = server.client();
    check(&mut c);
    server.stop_ok();
}
