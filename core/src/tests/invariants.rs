//! The asserted invariants hold and are enforced: applying out of log order, a history fed out
//! of order, a multi-shard decision over a malformed batch and a link seq with a gap are bugs
//! that stop the shard rather than corrupt it quietly.

use tarn_types::{encode_key, Value};

use crate::batch::UpsertMode;
use crate::catalog::Catalog;
use crate::history::History;
use crate::record::{encode_record_to_vec, Events, Mutation, Record, TxnPart, HOME_TARGET};
use crate::state::ShardState;
use crate::txn::{decide, TxnState};

use super::catalog_with;

fn cat() -> Catalog {
    catalog_with(&[
        "CREATE TABLE kv (id BIGINT PRIMARY KEY, v BIGINT)",
        "CREATE STREAM tx (ts TIMESTAMP, card TEXT) WITH (event_time = 'ts')",
        "CREATE MATERIALIZED VIEW n WITH (window = 'lifetime') AS \
         SELECT card, count(*) FROM tx GROUP BY card",
    ])
}

fn put(cat: &Catalog, id: i64) -> Record {
    let mut key = Vec::new();
    encode_key(&Value::Int(id), &mut key).unwrap();
    Record::Apply(Mutation::Upsert {
        table_id: cat.table("kv").unwrap().id,
        mode: UpsertMode::Replace,
        column_idx: vec![0, 1],
        rows: vec![(key, vec![Value::Int(id), Value::Int(id)])],
    })
}

#[test]
fn records_apply_in_strictly_increasing_log_order() {
    let cat = cat();
    let mut st = ShardState::new();
    st.apply_record(&cat, 0, 3, put(&cat, 1)).unwrap();
    st.apply_record(&cat, 0, 7, put(&cat, 2)).unwrap();
    assert_eq!(st.applied_lsn(), 7);
    // Applies without a log position (0) do not move it.
    st.apply_record(&cat, 0, 0, put(&cat, 3)).unwrap();
    assert_eq!(st.applied_lsn(), 7);
    // A restored state equals its original: the position is bookkeeping, not content.
    let back = ShardState::from_checkpoint(&st.to_checkpoint(), &cat).unwrap();
    assert_eq!(back, st);
    assert_eq!(back.applied_lsn(), 0);
    for lsn in [7, 6] {
        let mut again = st.clone();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _ = again.apply_record(&cat, 0, lsn, put(&cat, 4));
        }));
        assert!(r.is_err(), "record {lsn} applied after record 7");
    }
    // A corrupt record changes nothing, not even the position.
    let commit = Record::Commit(
        crate::record::TxnId {
            coordinator: 1,
            seq: 1,
        },
        0,
    );
    assert!(st.apply_record(&cat, 0, 8, commit).is_err());
    assert_eq!(st.applied_lsn(), 7);
}

#[test]
#[should_panic(expected = "records apply in log order")]
fn apply_owned_at_refuses_a_position_twice() {
    let cat = cat();
    let mut st = ShardState::new();
    let Record::Apply(m) = put(&cat, 1) else {
        unreachable!()
    };
    st.apply_owned_at(&cat, 5, m.clone());
    st.apply_owned_at(&cat, 5, m);
}

#[test]
#[should_panic(expected = "seqs are consecutive")]
fn link_seqs_have_no_gap() {
    let mut t = TxnState::default();
    t.set_hwm(2, 1);
    t.set_hwm(2, 3);
}

#[test]
#[should_panic(expected = "ascending shard order")]
fn decide_needs_a_well_formed_batch() {
    let t = TxnPart {
        coordinator: 0,
        parts: vec![(2, 1), (1, 1)],
    };
    decide(&t, &[vec![1], vec![1], vec![1]]);
}

#[test]
#[should_panic(expected = "history replays the log in order")]
fn history_is_fed_in_log_order() {
    let cat = cat();
    let view = cat.view("n").unwrap();
    let events = Record::Apply(Mutation::Events(Events {
        stream_id: cat.stream("tx").unwrap().id,
        append_time_us: 10,
        producer: None,
        duplicate: false,
        routing_version: cat.version,
        targets: vec![HOME_TARGET, view.id],
        rows: vec![(0b11, vec![Value::Timestamp(5), Value::Text("c".into())])],
    }));
    let bytes = encode_record_to_vec(&events);
    let mut key = Vec::new();
    encode_key(&Value::Text("c".into()), &mut key).unwrap();
    let mut h = History::new(&cat, view, 0, vec![(key, 100)]);
    h.feed(4, &bytes).unwrap();
    let _ = h.feed(4, &bytes);
}
