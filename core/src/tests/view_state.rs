//! Feature-view state in a shard: a fuzzy incremental checkpoint plus replay of the records
//! after it gives exactly the live windows (per-key LSN tags), and views see only what their
//! events' masks send them.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tarn_types::{encode_key, Value};

use crate::catalog::Catalog;
use crate::record::{Events, Mutation, Record, HOME_TARGET};
use crate::state::ShardState;

use super::{assert_fuzzy_checkpoint_exact, catalog_with, FuzzyRun};

fn catalog() -> Catalog {
    catalog_with(&[
        "CREATE STREAM tx (ts TIMESTAMP, card TEXT, amount DOUBLE, ip TEXT) WITH (event_time = 'ts')",
        "CREATE MATERIALIZED VIEW w WITH (window = '60 seconds', bucket = '5 seconds') AS \
         SELECT card, count(*) AS n, sum(amount) AS s, count(DISTINCT ip) AS ips, last(ip) AS ip \
         FROM tx GROUP BY card",
        "CREATE MATERIALIZED VIEW life WITH (window = 'lifetime') AS \
         SELECT card, count(*) AS n, max(amount) AS mx FROM tx WHERE amount > 10 GROUP BY card",
    ])
}

const T0: i64 = 1_790_000_000_000_000;

fn record(cat: &Catalog, rng: &mut StdRng, i: usize) -> Record {
    let stream = cat.stream("tx").unwrap();
    let w = cat.view("w").unwrap().id;
    let life = cat.view("life").unwrap().id;
    let append = T0 + i as i64 * 200_000;
    let rows = (0..rng.random_range(1..6))
        .map(|_| {
            let late = rng.random_bool(0.05);
            let ts = if late {
                append - 300_000_000
            } else {
                append - rng.random_range(0..30_000_000)
            };
            let row = vec![
                Value::Timestamp(ts),
                Value::Text(format!("c{}", rng.random_range(0..30))),
                Value::Double(rng.random_range(0..100) as f64),
                Value::Text(format!("ip{}", rng.random_range(0..5))),
            ];
            // Home copy always; the views when the row passes their WHERE (as split_events).
            let mut mask = 0b001u64 | 0b010;
            if matches!(row[2], Value::Double(a) if a > 10.0) {
                mask |= 0b100;
            }
            (mask, row)
        })
        .collect();
    Record::Apply(Mutation::Events(Events {
        stream_id: stream.id,
        append_time_us: append,
        producer: None,
        duplicate: false,
        routing_version: 0,
        targets: vec![HOME_TARGET, w, life],
        rows,
    }))
}

/// Everything observable of the views: every key's reads at several times, and counters.
fn observe(cat: &Catalog, st: &ShardState) -> Vec<String> {
    let stream = cat.stream("tx").unwrap();
    let mut out = Vec::new();
    for name in ["w", "life"] {
        let v = cat.view(name).unwrap();
        out.push(format!("{name} counters {:?}", st.view_counters(v.id)));
        for c in 0..30 {
            let mut key = Vec::new();
            encode_key(&Value::Text(format!("c{c}")), &mut key).unwrap();
            for t in [T0 + 20_000_000, T0 + 60_000_000, T0 + 120_000_000] {
                out.push(format!(
                    "{name} c{c} @{t}: {:?}",
                    st.read_view(v, stream, &key, t)
                ));
            }
        }
    }
    out.push(format!("{:?}", st.stream_counters(stream.id)));
    out
}

#[test]
fn fuzzy_checkpoint_plus_replay_is_exact_for_views() {
    let cat = catalog();
    let run = FuzzyRun {
        before: 300,
        max_step: 5,
        tail: 50,
    };
    for seed in 0..20 {
        assert_fuzzy_checkpoint_exact(&cat, 500 + seed, &run, record, observe);
    }
}

#[test]
fn late_events_are_counted_not_applied() {
    let cat = catalog();
    let stream = cat.stream("tx").unwrap();
    let w = cat.view("w").unwrap();
    let mut st = ShardState::new();
    let row = |ts: i64| {
        vec![
            Value::Timestamp(ts),
            Value::Text("c1".into()),
            Value::Double(50.0),
            Value::Null,
        ]
    };
    let rec = |rows: Vec<Vec<Value>>| {
        Record::Apply(Mutation::Events(Events {
            stream_id: stream.id,
            append_time_us: T0,
            producer: None,
            duplicate: false,
            routing_version: 0,
            targets: vec![w.id],
            rows: rows.into_iter().map(|r| (1, r)).collect(),
        }))
    };
    // In the window of its append time (the oldest bucket of it), and just before: late.
    let oldest_ok = (T0.div_euclid(5_000_000) - 11) * 5_000_000;
    st.apply_record(&cat, 0, 1, rec(vec![row(oldest_ok), row(oldest_ok - 1)]))
        .unwrap();
    let c = st.view_counters(w.id).unwrap();
    assert_eq!((c.events, c.late), (1, 1));
    let mut key = Vec::new();
    encode_key(&Value::Text("c1".into()), &mut key).unwrap();
    let (vals, newest) = st.read_view(w, stream, &key, T0);
    assert_eq!(vals[0], Value::Int(1));
    assert_eq!(newest, Some(oldest_ok));
    // A read one bucket later no longer includes it.
    let (vals, _) = st.read_view(w, stream, &key, T0 + 5_000_000);
    assert_eq!(vals[0], Value::Int(0));
}

/// History over the encoded log equals the online reads taken while the records were applied,
/// for plain records and for multi-shard parts committed later (with the Commit's stamp).
#[test]
fn history_replay_equals_online_reads() {
    use crate::history::History;
    use crate::record::{encode_prepare, encode_record_to_vec, encode_to_vec, TxnId, TxnPart};
    let cat = catalog();
    let stream = cat.stream("tx").unwrap();
    for seed in 0..10 {
        let mut rng = StdRng::seed_from_u64(900 + seed);
        let mut st = ShardState::new();
        let mut log: Vec<(u64, Vec<u8>)> = Vec::new();
        let mut online: Vec<(String, Vec<u8>, i64, crate::history::Answer)> = Vec::new();
        let mut lsn = 0u64;
        let mut open: Vec<(TxnId, i64)> = Vec::new();
        let mut next_seq = 1u64;
        let mut last_stamp = 0i64;
        for i in 0..400 {
            let rec = record(&cat, &mut rng, i);
            let Record::Apply(Mutation::Events(mut e)) = rec else {
                unreachable!()
            };
            lsn += 1;
            let stamp = e.append_time_us;
            last_stamp = last_stamp.max(stamp);
            if rng.random_bool(0.3) {
                // A multi-shard part: prepared now, committed a few records later.
                let txn = TxnPart {
                    coordinator: 1,
                    parts: vec![(0, next_seq), (1, next_seq)],
                };
                let id = TxnId {
                    coordinator: 1,
                    seq: next_seq,
                };
                next_seq += 1;
                let m = Mutation::Events(e.clone());
                log.push((lsn, encode_prepare(&txn, &encode_to_vec(&m))));
                st.apply_record(&cat, 0, lsn, Record::Prepare { txn, mutation: m })
                    .unwrap();
                open.push((id, stamp));
            } else {
                e.append_time_us = stamp;
                let m = Mutation::Events(e);
                log.push((lsn, encode_to_vec(&m)));
                st.apply_record(&cat, 0, lsn, Record::Apply(m)).unwrap();
            }
            if !open.is_empty() && rng.random_bool(0.4) {
                let (id, s) = open.remove(0);
                lsn += 1;
                // Stamps follow the log: at least this record's, before the next one's.
                let commit_stamp = (s + 150_000).max(stamp);
                last_stamp = last_stamp.max(commit_stamp);
                let rec = Record::Commit(id, commit_stamp);
                log.push((lsn, encode_record_to_vec(&rec)));
                st.apply_record(&cat, 0, lsn, rec).unwrap();
            }
            if rng.random_bool(0.2) {
                // An online read now: as of the latest stamp applied (nothing later applied).
                let t = last_stamp;
                let view = if rng.random_bool(0.5) { "w" } else { "life" };
                let v = cat.view(view).unwrap();
                let mut key = Vec::new();
                encode_key(
                    &Value::Text(format!("c{}", rng.random_range(0..30))),
                    &mut key,
                )
                .unwrap();
                online.push((
                    view.to_string(),
                    key.clone(),
                    t,
                    st.read_view(v, stream, &key, t),
                ));
            }
        }
        for view in ["w", "life"] {
            let v = cat.view(view).unwrap();
            let qs: Vec<_> = online.iter().filter(|o| o.0 == view).collect();
            let mut h = History::new(&cat, v, 0, qs.iter().map(|o| (o.1.clone(), o.2)).collect());
            for (l, bytes) in &log {
                if !h.feed(*l, bytes).unwrap() {
                    break;
                }
            }
            let got = h.finish();
            for (q, g) in qs.iter().zip(got) {
                assert_eq!(g, q.3, "seed {seed} view {view} at {}", q.2);
            }
        }
    }
}
