//! Multi-shard batches: record codec, the state machine, and a crash simulation of the whole
//! protocol (`crate::txn`) checking that every batch ends up all-or-nothing.

use std::collections::BTreeMap;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rkyv::util::AlignedVec;
use tarn_types::{encode_key, Value};

use crate::batch::UpsertMode;
use crate::catalog::Catalog;
use crate::record::{
    decode, decode_record, encode_prepare, encode_record_to_vec, encode_to_vec, Mutation, Record,
    TxnId, TxnPart,
};
use crate::state::ShardState;
use crate::txn::decide;
use crate::ErrorKind;

use super::catalog_with;

const KV: &str = "CREATE TABLE kv (id BIGINT PRIMARY KEY, v BIGINT)";

fn key(id: i64) -> Vec<u8> {
    let mut out = Vec::new();
    encode_key(&Value::Int(id), &mut out).unwrap();
    out
}

fn put(cat: &Catalog, id: i64, v: i64) -> Mutation {
    Mutation::Upsert {
        table_id: cat.table("kv").unwrap().id,
        mode: UpsertMode::Replace,
        column_idx: vec![0, 1],
        rows: vec![(key(id), vec![Value::Int(id), Value::Int(v)])],
    }
}

fn txn(coordinator: u32, parts: &[(u32, u64)]) -> TxnPart {
    TxnPart {
        coordinator,
        parts: parts.to_vec(),
    }
}

#[test]
fn records_round_trip() {
    let cat = catalog_with(&[KV]);
    let t = txn(1, &[(0, 7), (1, 3), (4, 9)]);
    let m = put(&cat, 5, 6);
    let prepare = encode_prepare(&t, &encode_to_vec(&m));
    assert_eq!(
        decode_record(&prepare).unwrap(),
        Record::Prepare {
            txn: t.clone(),
            mutation: m.clone()
        }
    );
    assert_eq!(
        encode_record_to_vec(&Record::Prepare {
            txn: t.clone(),
            mutation: m.clone()
        }),
        prepare
    );
    for rec in [
        Record::Commit(
            TxnId {
                coordinator: 2,
                seq: 11,
            },
            0,
        ),
        Record::Abort(TxnId {
            coordinator: 0,
            seq: u64::MAX,
        }),
        Record::Apply(m.clone()),
    ] {
        assert_eq!(decode_record(&encode_record_to_vec(&rec)).unwrap(), rec);
    }
    // `decode` is for plain mutations only.
    assert_eq!(decode(&prepare).unwrap_err().kind(), ErrorKind::Corrupt);
    assert_eq!(
        t.id_on(4),
        Some(TxnId {
            coordinator: 1,
            seq: 9
        })
    );
    assert_eq!(t.id_on(2), None);
}

#[test]
fn bad_prepare_records_are_corrupt_never_panics() {
    let cat = catalog_with(&[KV]);
    let good = encode_prepare(&txn(0, &[(0, 1), (1, 1)]), &encode_to_vec(&put(&cat, 1, 1)));
    // Every truncation and every single-byte change either decodes or is Corrupt.
    for len in 0..good.len() {
        assert_eq!(
            decode_record(&good[..len]).unwrap_err().kind(),
            ErrorKind::Corrupt
        );
    }
    for i in 0..good.len() {
        for x in [1u8, 0x80, 0xFF] {
            let mut b = good.clone();
            b[i] ^= x;
            if let Err(e) = decode_record(&b) {
                assert_eq!(e.kind(), ErrorKind::Corrupt);
            }
        }
    }
    // One participant, unsorted participants, seq 0.
    for parts in [&[(0, 1)][..], &[(1, 1), (0, 1)], &[(0, 0), (1, 1)]] {
        let mut b = vec![1u8, 3];
        b.extend_from_slice(&0u32.to_le_bytes());
        b.extend_from_slice(&(parts.len() as u16).to_le_bytes());
        for (s, q) in parts {
            b.extend_from_slice(&(*s as u32).to_le_bytes());
            b.extend_from_slice(&(*q as u64).to_le_bytes());
        }
        b.extend_from_slice(&encode_to_vec(&put(&cat, 1, 1))[1..]);
        assert_eq!(decode_record(&b).unwrap_err().kind(), ErrorKind::Corrupt);
    }
}

#[test]
fn prepare_commit_abort_state_machine() {
    let cat = catalog_with(&[KV]);
    let mut st = ShardState::new();
    let t = txn(1, &[(0, 1), (1, 1)]);
    let id = TxnId {
        coordinator: 1,
        seq: 1,
    };
    let prepare = |t: &TxnPart, v| Record::Prepare {
        txn: t.clone(),
        mutation: put(&cat, 1, v),
    };
    assert_eq!(st.apply_record(&cat, 0, 0, prepare(&t, 10)).unwrap(), 0);
    assert_eq!(st.get(1, &key(1)), None, "a prepared part is not visible");
    assert_eq!(st.txns().hwm(1), 1);
    // Out of link order, or not a participant: corrupt, nothing changes.
    let before = st.clone();
    let e = st
        .apply_record(&cat, 0, 0, prepare(&txn(1, &[(0, 3), (1, 2)]), 11))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Corrupt);
    let e = st
        .apply_record(&cat, 2, 0, prepare(&txn(1, &[(0, 2), (1, 2)]), 11))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Corrupt);
    let e = st
        .apply_record(
            &cat,
            0,
            0,
            Record::Commit(
                TxnId {
                    coordinator: 1,
                    seq: 2,
                },
                0,
            ),
        )
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Corrupt);
    assert_eq!(st, before);
    // Commit applies it; a second commit is corrupt.
    assert_eq!(
        st.apply_record(&cat, 0, 0, Record::Commit(id, 0)).unwrap(),
        1
    );
    assert_eq!(
        st.get(1, &key(1)),
        Some(&[Value::Int(1), Value::Int(10)][..])
    );
    assert!(st.apply_record(&cat, 0, 0, Record::Commit(id, 0)).is_err());
    // Abort forgets.
    st.apply_record(&cat, 0, 0, prepare(&txn(1, &[(0, 2), (1, 5)]), 20))
        .unwrap();
    st.apply_record(
        &cat,
        0,
        0,
        Record::Abort(TxnId {
            coordinator: 1,
            seq: 2,
        }),
    )
    .unwrap();
    assert_eq!(
        st.get(1, &key(1)),
        Some(&[Value::Int(1), Value::Int(10)][..])
    );
    assert!(st.txns().stash().is_empty());
    assert_eq!(st.txns().hwm(1), 2);
}

#[test]
fn decide_needs_every_part() {
    let t = txn(1, &[(0, 4), (2, 9)]);
    // hwm_all[p][c]
    let all = vec![vec![0, 4, 0], vec![0, 0, 0], vec![0, 9, 0]];
    assert!(decide(&t, &all));
    let short = vec![vec![0, 4, 0], vec![0, 0, 0], vec![0, 8, 0]];
    assert!(!decide(&t, &short));
    let missing = vec![vec![0, 4, 0]];
    assert!(!decide(&t, &missing));
}

#[test]
fn checkpoint_keeps_high_water_marks_and_set_aside_parts() {
    let cat = catalog_with(&[KV]);
    let mut st = ShardState::new();
    st.apply_record(&cat, 0, 0, Record::Apply(put(&cat, 9, 9)))
        .unwrap();
    for seq in 1..=3 {
        st.apply_record(
            &cat,
            0,
            0,
            Record::Prepare {
                txn: txn(2, &[(0, seq), (2, seq + 10)]),
                mutation: put(&cat, seq as i64, 1),
            },
        )
        .unwrap();
    }
    st.apply_record(
        &cat,
        0,
        0,
        Record::Commit(
            TxnId {
                coordinator: 2,
                seq: 2,
            },
            0,
        ),
    )
    .unwrap();
    let bytes = st.to_checkpoint();
    let mut back = ShardState::from_checkpoint(&bytes, &cat).unwrap();
    assert_eq!(back, st);
    assert_eq!(back.txns().hwm(2), 3);
    assert_eq!(back.txns().stash().len(), 2);
    // The restored stash commits like the original.
    for s in [&mut st, &mut back] {
        s.apply_record(
            &cat,
            0,
            0,
            Record::Commit(
                TxnId {
                    coordinator: 2,
                    seq: 3,
                },
                0,
            ),
        )
        .unwrap();
    }
    assert_eq!(back, st);
    // A checkpoint without its txn chunk is corrupt.
    let header_only = &bytes[..16];
    let e = ShardState::from_checkpoint(header_only, &cat).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Corrupt);
}

/// One batch of the simulation: its coordinator and (participant, link seq) pairs.
struct SimTxn {
    txn: TxnPart,
    /// Log position (index) of each participant's Prepare, once appended.
    prepared_at: BTreeMap<u32, usize>,
    committed_on: BTreeMap<u32, usize>,
}

/// Runs the protocol on `n` simulated shards with random interleavings, random group-commit
/// points and random checkpoints, "crashes" at a random moment (each log keeps only its
/// durable prefix), recovers every shard (checkpoint + replay, exchange of high-water marks,
/// [`decide`], decisions logged), and checks that every batch is applied on all of its
/// participants or on none, that it is applied if and only if every part was durable, and that
/// a second recovery of the logs with the decisions gives the same state.
#[test]
fn crash_simulation_every_batch_all_or_nothing() {
    let cat = catalog_with(&[KV]);
    let table = cat.table("kv").unwrap().id;
    for seed in 0..300 {
        let mut rng = StdRng::seed_from_u64(seed);
        let n: u32 = rng.random_range(2..5);
        let mut logs: Vec<Vec<Record>> = vec![Vec::new(); n as usize];
        let mut durable: Vec<usize> = vec![0; n as usize];
        // Exact checkpoints: (records covered, payload).
        let mut ckpts: Vec<Option<(usize, AlignedVec<16>)>> = vec![None; n as usize];
        let mut link_next = vec![vec![1u64; n as usize]; n as usize]; // [coord][participant]
        let mut link_logged = vec![vec![0u64; n as usize]; n as usize]; // [coord][participant]
        let mut txns: Vec<SimTxn> = Vec::new();
        let steps = rng.random_range(5..120);
        for _ in 0..steps {
            match rng.random_range(0..10) {
                0..=2 => {
                    // A new batch: a coordinator and at least two participants.
                    let c = rng.random_range(0..n);
                    let mut parts: Vec<(u32, u64)> = (0..n)
                        .filter(|_| rng.random_bool(0.7))
                        .map(|p| (p, 0))
                        .collect();
                    if parts.len() < 2 {
                        parts = vec![(0, 0), (1, 0)];
                    }
                    for (p, seq) in &mut parts {
                        *seq = link_next[c as usize][*p as usize];
                        link_next[c as usize][*p as usize] += 1;
                    }
                    txns.push(SimTxn {
                        txn: TxnPart {
                            coordinator: c,
                            parts,
                        },
                        prepared_at: BTreeMap::new(),
                        committed_on: BTreeMap::new(),
                    });
                }
                3..=5 => {
                    // Some owner appends the next Prepare of some link, in link order.
                    let ready: Vec<(usize, u32)> = txns
                        .iter()
                        .enumerate()
                        .flat_map(|(i, t)| {
                            t.txn
                                .parts
                                .iter()
                                .filter(|&&(p, seq)| {
                                    !t.prepared_at.contains_key(&p)
                                        && link_logged[t.txn.coordinator as usize][p as usize] + 1
                                            == seq
                                })
                                .map(move |&(p, _)| (i, p))
                        })
                        .collect();
                    if let Some(&(i, p)) = ready.get(rng.random_range(0..ready.len().max(1))) {
                        let t = &mut txns[i];
                        let c = t.txn.coordinator as usize;
                        link_logged[c][p as usize] += 1;
                        t.prepared_at.insert(p, logs[p as usize].len());
                        logs[p as usize].push(Record::Prepare {
                            txn: t.txn.clone(),
                            mutation: put(&cat, i as i64 * 16 + p as i64, i as i64),
                        });
                    }
                }
                6 => {
                    // A group commit on one shard.
                    let p = rng.random_range(0..n) as usize;
                    durable[p] = logs[p].len();
                }
                7 => {
                    // Commit a batch whose parts are all durable: a Commit on some owner.
                    let ready: Vec<(usize, u32)> = txns
                        .iter()
                        .enumerate()
                        .filter(|(_, t)| {
                            t.txn.parts.iter().all(|&(p, _)| {
                                t.prepared_at
                                    .get(&p)
                                    .is_some_and(|&at| at < durable[p as usize])
                            })
                        })
                        .flat_map(|(i, t)| {
                            t.txn
                                .parts
                                .iter()
                                .filter(|&&(p, _)| !t.committed_on.contains_key(&p))
                                .map(move |&(p, _)| (i, p))
                        })
                        .collect();
                    if let Some(&(i, p)) = ready.get(rng.random_range(0..ready.len().max(1))) {
                        let t = &mut txns[i];
                        let id = t.txn.id_on(p).unwrap();
                        t.committed_on.insert(p, logs[p as usize].len());
                        logs[p as usize].push(Record::Commit(id, 0));
                    }
                }
                8 => {
                    // A plain write.
                    let p = rng.random_range(0..n) as usize;
                    logs[p].push(Record::Apply(put(&cat, 1_000_000 + p as i64, 1)));
                }
                _ => {
                    // An exact checkpoint of a durable prefix.
                    let p = rng.random_range(0..n) as usize;
                    let upto = durable[p];
                    let mut st = ShardState::new();
                    for r in &logs[p][..upto] {
                        st.apply_record(&cat, p as u32, 0, r.clone()).unwrap();
                    }
                    ckpts[p] = Some((upto, st.to_checkpoint()));
                }
            }
        }
        // Crash: only durable prefixes survive. Recover each shard.
        let recover = |logs: &[Vec<Record>], ckpts: &[Option<(usize, AlignedVec<16>)>]| {
            let mut states: Vec<ShardState> = Vec::new();
            for p in 0..n as usize {
                let (mut st, from) = match &ckpts[p] {
                    Some((upto, bytes)) => {
                        (ShardState::from_checkpoint(bytes, &cat).unwrap(), *upto)
                    }
                    None => (ShardState::new(), 0),
                };
                for r in &logs[p][from..] {
                    st.apply_record(&cat, p as u32, 0, r.clone()).unwrap();
                }
                states.push(st);
            }
            let hwm_all: Vec<Vec<u64>> = states.iter().map(|s| s.txns().hwm_table(n)).collect();
            let mut decisions: Vec<Vec<Record>> = vec![Vec::new(); n as usize];
            for (p, st) in states.iter_mut().enumerate() {
                let open: Vec<_> = st
                    .txns()
                    .stash()
                    .iter()
                    .map(|(id, prep)| (*id, decide(&prep.txn, &hwm_all)))
                    .collect();
                for (id, commit) in open {
                    let rec = if commit {
                        Record::Commit(id, 0)
                    } else {
                        Record::Abort(id)
                    };
                    st.apply_record(&cat, p as u32, 0, rec.clone()).unwrap();
                    decisions[p].push(rec);
                }
                assert!(st.txns().stash().is_empty());
            }
            (states, decisions)
        };
        let survived: Vec<Vec<Record>> = (0..n as usize)
            .map(|p| logs[p][..durable[p]].to_vec())
            .collect();
        let (states, decisions) = recover(&survived, &ckpts);
        for (i, t) in txns.iter().enumerate() {
            let all_durable = t.txn.parts.iter().all(|&(p, _)| {
                t.prepared_at
                    .get(&p)
                    .is_some_and(|&at| at < durable[p as usize])
            });
            for &(p, _) in &t.txn.parts {
                let present = states[p as usize]
                    .get(table, &key(i as i64 * 16 + p as i64))
                    .is_some();
                assert_eq!(
                    present, all_durable,
                    "seed {seed}: batch {i} {:?} on shard {p}: applied {present}, every part durable {all_durable}",
                    t.txn
                );
            }
        }
        // The decisions are logged: a second recovery (no new checkpoint) finds the same state.
        let mut relogged = survived.clone();
        for (p, d) in decisions.into_iter().enumerate() {
            relogged[p].extend(d);
        }
        let (again, none) = recover(&relogged, &ckpts);
        assert!(none.iter().all(Vec::is_empty), "seed {seed}");
        assert_eq!(again, states, "seed {seed}");
    }
}
