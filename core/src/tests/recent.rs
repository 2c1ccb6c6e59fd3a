//! Recent events per partition key (`CREATE STREAM … WITH (recent = N)`): a ring is the top
//! `N` by (event time, LSN, position) of every home event of its key, whatever the order and
//! the repetitions of the inserts; reads are newest first; a fuzzy checkpoint plus replay gives
//! exactly the live rings.

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use tarn_types::{encode_key, Value};

use crate::catalog::Catalog;
use crate::record::{Events, Mutation, Record, HOME_TARGET};
use crate::sql::parse;
use crate::state::recent::{RecentEvent, Ring};
use crate::state::ShardState;

use super::{assert_fuzzy_checkpoint_exact, catalog_with, FuzzyRun};

const KEEP: u32 = 4;
const KEYS: usize = 12;
const T0: i64 = 1_790_000_000_000_000;

fn catalog() -> Catalog {
    catalog_with(&[
        "CREATE STREAM tx (ts TIMESTAMP, card TEXT, amount DOUBLE, ip TEXT) \
         WITH (event_time = 'ts', recent = 4)",
        "CREATE STREAM plain (ts TIMESTAMP, card TEXT) WITH (event_time = 'ts')",
        "CREATE MATERIALIZED VIEW w WITH (window = '60 seconds', bucket = '5 seconds') AS \
         SELECT ip, count(*) AS n FROM tx GROUP BY ip",
    ])
}

fn key(card: &str) -> Vec<u8> {
    let mut k = Vec::new();
    encode_key(&Value::Text(card.into()), &mut k).unwrap();
    k
}

/// A record of 1–5 events of random cards, some late (event time well before the others),
/// some with equal event times; each row home (bit 0), view only (bit 1) or both.
fn record(cat: &Catalog, rng: &mut StdRng, i: usize) -> Record {
    let tx = cat.stream("tx").unwrap();
    let w = cat.view("w").unwrap().id;
    let append = T0 + i as i64 * 100_000;
    let rows = (0..rng.random_range(1..6))
        .map(|_| {
            let ts = if rng.random_bool(0.1) {
                append - 500_000_000
            } else {
                // Coarse times, so ties on event time are common.
                append - rng.random_range(0..20) * 1_000_000
            };
            let row = vec![
                Value::Timestamp(ts),
                Value::Text(format!("c{}", rng.random_range(0..KEYS))),
                Value::Double(rng.random_range(0..100) as f64),
                Value::Text(format!("ip{}", rng.random_range(0..3))),
            ];
            let mask = [0b01u64, 0b10, 0b11][rng.random_range(0..3)];
            (mask, row)
        })
        .collect();
    Record::Apply(Mutation::Events(Events {
        stream_id: tx.id,
        append_time_us: append,
        producer: None,
        duplicate: false,
        routing_version: 0,
        targets: vec![HOME_TARGET, w],
        rows,
    }))
}

/// The oracle: every home event of `card` in `records`, newest first by (event time, LSN,
/// position), at most `n`.
fn oracle(records: &[(u64, Record)], card: &str, n: usize) -> Vec<Vec<Value>> {
    let mut all: Vec<((i64, u64, usize), Vec<Value>)> = Vec::new();
    for (lsn, r) in records {
        let Record::Apply(Mutation::Events(e)) = r else {
            unreachable!()
        };
        for (pos, (mask, row)) in e.rows.iter().enumerate() {
            if mask & 1 != 0 && row[1] == Value::Text(card.into()) {
                let Value::Timestamp(ts) = row[0] else {
                    unreachable!()
                };
                all.push(((ts, *lsn, pos), row.clone()));
            }
        }
    }
    all.sort_by_key(|e| std::cmp::Reverse(e.0));
    all.into_iter().take(n).map(|(_, r)| r).collect()
}

/// Every key's rings as reads see them (all columns, more than kept), and memory.
fn observe(cat: &Catalog, st: &ShardState) -> Vec<String> {
    let tx = cat.stream("tx").unwrap();
    let mut out: Vec<String> = (0..KEYS)
        .map(|c| {
            format!(
                "c{c}: {:?}",
                st.recent(tx, &key(&format!("c{c}")), 99, &[0, 1, 2, 3])
            )
        })
        .collect();
    out.push(format!("{:?}", st.recent_memory(tx.id).0));
    out
}

#[test]
fn rings_hold_the_newest_events_by_event_time_then_log_position() {
    let cat = catalog();
    let tx = cat.stream("tx").unwrap();
    let plain = cat.stream("plain").unwrap();
    let mut rng = StdRng::seed_from_u64(7);
    let mut st = ShardState::new();
    let mut applied = Vec::new();
    for i in 0..400 {
        let lsn = i as u64 + 1;
        let r = record(&cat, &mut rng, i);
        st.apply_record(&cat, 0, lsn, r.clone()).unwrap();
        applied.push((lsn, r));
    }
    for c in 0..KEYS {
        let card = format!("c{c}");
        for n in [1, 2, KEEP as usize, 50] {
            let got = st.recent(tx, &key(&card), n, &[0, 1, 2, 3]);
            assert_eq!(
                got,
                oracle(&applied, &card, n.min(KEEP as usize)),
                "{card} n={n}"
            );
        }
        // Projection: the columns asked for, in that order.
        let full = st.recent(tx, &key(&card), 3, &[0, 1, 2, 3]);
        let proj = st.recent(tx, &key(&card), 3, &[2, 0]);
        let want: Vec<Vec<Value>> = full
            .iter()
            .map(|r| vec![r[2].clone(), r[0].clone()])
            .collect();
        assert_eq!(proj, want);
    }
    assert!(st.recent(tx, &key("nobody"), 4, &[0]).is_empty());
    assert!(
        st.recent(plain, &key("c1"), 4, &[0]).is_empty(),
        "a stream without recent"
    );
    let (keys, bytes) = st.recent_memory(tx.id);
    assert_eq!(keys, KEYS);
    assert!(bytes > keys * KEEP as usize * 40, "{bytes}");
    st.drop_stream(tx.id);
    assert_eq!(st.recent_memory(tx.id), (0, 0));
    assert!(st.recent(tx, &key("c1"), 4, &[0]).is_empty());
}

#[test]
fn a_ring_insert_is_an_idempotent_order_insensitive_top_n() {
    let mut rng = StdRng::seed_from_u64(11);
    for _ in 0..200 {
        let keep = rng.random_range(1..8);
        let mut events: Vec<RecentEvent> = (0..rng.random_range(0..30))
            .map(|i| RecentEvent {
                order: (rng.random_range(0..6), rng.random_range(1..4), i),
                row: vec![Value::Int(i64::from(i))].into(),
            })
            .collect();
        events.sort_by_key(|e| e.order);
        events.dedup_by_key(|e| e.order);
        let want: Vec<_> = events[events.len().saturating_sub(keep)..].to_vec();
        // Any order, each event inserted one to three times.
        let mut inserts: Vec<RecentEvent> = events
            .iter()
            .flat_map(|e| std::iter::repeat_n(e.clone(), rng.random_range(1..4)))
            .collect();
        inserts.shuffle(&mut rng);
        let mut ring = Ring::default();
        for e in inserts.iter().cloned() {
            ring.insert(keep, e);
        }
        assert_eq!(ring.events, want);
        // Inserting everything again changes nothing.
        for e in inserts {
            assert!(!ring.insert(keep, e));
        }
        assert_eq!(ring.events, want);
    }
}

#[test]
fn fuzzy_checkpoint_plus_replay_is_exact_for_recent_events() {
    let cat = catalog();
    let run = FuzzyRun {
        before: 200,
        max_step: 4,
        tail: 30,
    };
    for seed in 0..20 {
        assert_fuzzy_checkpoint_exact(&cat, 900 + seed, &run, record, observe);
    }
}

#[test]
fn checkpointed_rings_round_trip_and_those_of_a_dropped_stream_are_skipped() {
    let cat = catalog();
    let mut rng = StdRng::seed_from_u64(3);
    let mut st = ShardState::new();
    for i in 0..50 {
        st.apply_record(&cat, 0, i as u64 + 1, record(&cat, &mut rng, i))
            .unwrap();
    }
    let bytes = st.to_checkpoint();
    let restored = ShardState::from_checkpoint(&bytes, &cat).unwrap();
    assert_eq!(observe(&cat, &restored), observe(&cat, &st));
    let tx = cat.stream("tx").unwrap().id;
    // Dropped (view first): its rings are not restored.
    let mut dropped = cat.clone();
    for sql in ["DROP MATERIALIZED VIEW w", "DROP STREAM tx"] {
        dropped = dropped.apply_ddl(&parse(sql).unwrap()[0]).unwrap().0;
    }
    let restored = ShardState::from_checkpoint(&bytes, &dropped).unwrap();
    assert_eq!(restored.recent_memory(tx), (0, 0));
}

/// The sizes docs/SQL.md (Recent events) quotes for the memory of a ring.
#[test]
fn ring_memory_is_what_the_docs_say() {
    assert_eq!(std::mem::size_of::<RecentEvent>(), 40);
    assert_eq!(std::mem::size_of::<Value>(), 32);
    let mut ring = Ring::default();
    for i in 0..20u32 {
        ring.insert(
            5,
            RecentEvent {
                order: (i64::from(i), 1, 0),
                row: vec![Value::Null].into(),
            },
        );
    }
    assert_eq!(ring.events.len(), 5);
    assert_eq!(ring.events.capacity(), 5, "a full ring has no spare slots");
}
