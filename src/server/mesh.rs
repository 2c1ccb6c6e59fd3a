//! Messages between shards. They travel over bounded glommio channel meshes created at
//! start-up: one mesh carries requests, the other replies, so a shard answering a request can
//! never be blocked behind its own outstanding requests.
//!
//! Every message that targets keys carries only keys the receiving shard owns; the receiver
//! asserts it (`shard_for` again where the message lands).

use tarn_core::catalog::Catalog;
use tarn_core::record::{Mutation, TxnId, TxnPart};
use tarn_core::sql::Statement;
use tarn_net::ShardStats;

use super::error::ServerError;
use tarn_types::Value;

/// A request from shard `from` to the receiving shard; `corr` matches the reply.
pub struct ShardMsg {
    pub from: u32,
    pub corr: u64,
    pub body: MsgBody,
}

pub enum MsgBody {
    /// Start-up barrier: the sender recovered (`ok`) or failed and everyone must stop.
    /// `hwm` is its multi-shard high-water-mark table (per coordinator), which every shard
    /// needs to decide the parts whose Commit a crash lost (`tarn_core::txn::decide`).
    Ready { ok: bool, hwm: Vec<u64> },
    /// The sender has answered all its clients and will send no more writes (shutdown).
    /// Sent on the request mesh, so it arrives after every earlier request from the sender.
    /// No reply.
    Drained,
    /// Log `record` (the encoding of `mutation`, made by the sender so it could check the
    /// record size before any part of the batch was sent) and apply it; reply `Written(rows)`.
    Write { mutation: Mutation, record: Vec<u8> },
    /// Log `record` (the Prepare record of this shard's part of multi-shard batch `txn`) in
    /// link-sequence order, set the part aside, reply `Prepared` once it is durable.
    Prepare {
        txn: TxnPart,
        mutation: Mutation,
        record: Vec<u8>,
    },
    /// Coordinate multi-shard batch `parts` (owner, part, part encoded), tagged by producer
    /// `producer`, whose coordinator the receiver is (`tarn_types::coordinator_for_producer`);
    /// reply `Written(rows)`.
    Coordinate {
        producer: u64,
        parts: Vec<(u32, Mutation, Vec<u8>)>,
    },
    /// Every part of the batch is durable: log a Commit for part `id` and apply it in log
    /// order; reply `Written(rows)`.
    Commit { id: TxnId },
    /// Look up rows by canonical key; reply `Rows` in the same order.
    Get { table_id: u32, keys: Vec<Vec<u8>> },
    /// Shard 0 only: execute a DDL statement (serialised there) and broadcast the catalog.
    Ddl(Statement),
    /// Install a new catalog (after it is durable); reply `Done`.
    Catalog(Catalog),
    /// Report this shard's statistics.
    Stats,
    /// Read feature view `view_id` for `keys` (canonical key bytes this shard owns) at this
    /// shard's latest consistent point; reply `Features`.
    Features { view_id: u32, keys: Vec<Vec<u8>> },
    /// Point-in-time history of feature view `view_id` for `(key, as_of)` queries whose keys
    /// this shard owns, replayed from its retained log; reply `Features` in query order.
    History {
        view_id: u32,
        queries: Vec<(Vec<u8>, i64)>,
    },
    /// Wait until no event batch this shard coordinates was routed with a catalog version
    /// older than `version` (they all were acknowledged); reply `Done`.
    Quiesce { version: u64 },
    /// Back-fill new feature view `view_id` from the home copies in this shard's log (sent to
    /// the view's owners as ordinary writes); reply `Written(events)`.
    Backfill { view_id: u32 },
    /// Report this shard's counters of feature view `view_id`; reply `ViewCounters`.
    ViewCounters { view_id: u32 },
    /// Report this shard's counters of stream `stream_id` (events it is the home of).
    StreamCounters { stream_id: u32 },
    /// Search this shard's part of a vector index; reply `KnnHits`.
    Knn(Box<super::shard::KnnAsk>),
    /// The vector of the row under `key` (owned here) of index `index_id`'s table; reply
    /// `RowVector`.
    RowVector { index_id: u32, key: Vec<u8> },
    /// Report the build progress of this shard's indexes; reply `IndexProgress`.
    IndexProgress,
    /// One visit of a context call (reads of keys owned here, searches); reply
    /// `ContextVisit`.
    ContextVisit(Box<super::shard::ContextVisit>),
    /// Release a context call's hold on this shard; reply `Done`.
    ContextRelease { hold: super::shard::HoldId },
    /// The newest `n` events of partition keys `keys` (canonical, whose home is this shard)
    /// of stream `stream_id`, projected on `columns`; reply `Recent` in key order.
    Recent {
        stream_id: u32,
        keys: Vec<Vec<u8>>,
        n: usize,
        columns: Vec<usize>,
    },
}

pub struct ShardReply {
    pub corr: u64,
    pub body: ReplyBody,
}

pub enum ReplyBody {
    Written(u64),
    Prepared,
    Rows(Vec<Option<Vec<Value>>>),
    Done(String),
    /// A DDL statement's message and, when it created a feature view, the events back-filled
    /// into it.
    Ddl(String, Option<u64>),
    Stats(ShardStats),
    StreamCounters(Option<tarn_core::state::StreamCounters>),
    /// (keys, heap bytes of their windows, events applied, late events dropped).
    ViewCounters([u64; 4]),
    /// Per key: the as-of time, the aggregates' values and the newest event time held.
    Features(Vec<(i64, Vec<Value>, Option<i64>)>),
    KnnHits(super::shard::KnnHits),
    RowVector(Option<Vec<f32>>),
    IndexProgress(Vec<(u32, tarn_core::state::IndexProgress)>),
    ContextVisit(super::shard::VisitAnswer),
    Error(ServerError),
    /// Per key: its newest events, newest first.
    Recent(super::shard::RecentRows),
}

/// Why a message may not be handled where it landed: a routing bug in the sender. Checked on
/// arrival of every message ([`check_arrival`]), before any of it touches state.
#[derive(Debug, PartialEq, Eq)]
pub struct Misrouted(pub String);

impl std::fmt::Display for Misrouted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl ReplyBody {
    /// The reply kind, for diagnostics.
    pub fn kind(&self) -> &'static str {
        match self {
            ReplyBody::Written(_) => "Written",
            ReplyBody::Prepared => "Prepared",
            ReplyBody::Rows(_) => "Rows",
            ReplyBody::Done(_) => "Done",
            ReplyBody::Ddl(..) => "Ddl",
            ReplyBody::Stats(_) => "Stats",
            ReplyBody::StreamCounters(_) => "StreamCounters",
            ReplyBody::ViewCounters(_) => "ViewCounters",
            ReplyBody::Features(_) => "Features",
            ReplyBody::KnnHits(_) => "KnnHits",
            ReplyBody::RowVector(_) => "RowVector",
            ReplyBody::IndexProgress(_) => "IndexProgress",
            ReplyBody::ContextVisit(_) => "ContextVisit",
            ReplyBody::Error(..) => "Error",
            ReplyBody::Recent(_) => "Recent",
        }
    }
}

impl MsgBody {
    /// The message kind, for diagnostics.
    pub fn kind(&self) -> &'static str {
        match self {
            MsgBody::Ready { .. } => "Ready",
            MsgBody::Drained => "Drained",
            MsgBody::Write { .. } => "Write",
            MsgBody::Prepare { .. } => "Prepare",
            MsgBody::Commit { .. } => "Commit",
            MsgBody::Coordinate { .. } => "Coordinate",
            MsgBody::Get { .. } => "Get",
            MsgBody::Ddl(_) => "Ddl",
            MsgBody::Catalog(_) => "Catalog",
            MsgBody::Stats => "Stats",
            MsgBody::Features { .. } => "Features",
            MsgBody::History { .. } => "History",
            MsgBody::Quiesce { .. } => "Quiesce",
            MsgBody::Backfill { .. } => "Backfill",
            MsgBody::ViewCounters { .. } => "ViewCounters",
            MsgBody::StreamCounters { .. } => "StreamCounters",
            MsgBody::Knn(_) => "Knn",
            MsgBody::RowVector { .. } => "RowVector",
            MsgBody::IndexProgress => "IndexProgress",
            MsgBody::ContextVisit(_) => "ContextVisit",
            MsgBody::ContextRelease { .. } => "ContextRelease",
            MsgBody::Recent { .. } => "Recent",
        }
    }
}

/// Checks that `msg`, which arrived at shard `me` of `count` over the link from shard
/// `link_from`, may be handled here: it names its real sender, every key it carries is owned
/// by `me` (`shard_for` again, where it lands), and a message only one shard serves (DDL) went
/// to that shard. Cheap: one hash per key, which the owner computes anyway to look it up.
///
/// `catalog` is the receiver's: an Events part may target a stream or view the receiver no
/// longer (or not yet) knows, whose keys cannot be checked and are skipped when applied.
pub fn check_arrival(
    msg: &ShardMsg,
    link_from: u32,
    me: u32,
    count: u32,
    catalog: &Catalog,
) -> Result<(), Misrouted> {
    let kind = msg.body.kind();
    let bad = |why: String| {
        Err(Misrouted(format!(
            "shard {me}: {kind} from shard {}: {why}",
            msg.from
        )))
    };
    if msg.from != link_from || msg.from >= count || msg.from == me {
        return bad(format!(
            "came over the link from shard {link_from} of {count}"
        ));
    }
    let not_owned = |keys: &mut dyn Iterator<Item = &Vec<u8>>| {
        keys.map(|k| tarn_types::shard_for(k, count))
            .find(|&s| s != me)
    };
    match &msg.body {
        MsgBody::Write { mutation, .. } if !mutation.owned_by(catalog, me, count) => {
            return bad("carries keys this shard does not own".into());
        }
        MsgBody::Prepare { txn, mutation, .. } => {
            if txn.coordinator != msg.from || txn.id_on(me).is_none() {
                return bad(format!(
                    "a part of a batch coordinated by shard {} with participants {:?}",
                    txn.coordinator, txn.parts
                ));
            }
            if !mutation.owned_by(catalog, me, count) {
                return bad("carries keys this shard does not own".into());
            }
        }
        MsgBody::Commit { id } if id.coordinator != msg.from => {
            return bad(format!(
                "commit of a batch coordinated by shard {}",
                id.coordinator
            ));
        }
        MsgBody::Coordinate { producer, parts } => {
            let coordinator = tarn_types::coordinator_for_producer(*producer, count);
            if coordinator != me {
                return bad(format!(
                    "producer {producer} is coordinated by shard {coordinator}"
                ));
            }
            let misrouted = parts.windows(2).any(|w| w[0].0 >= w[1].0)
                || parts.len() < 2
                || parts
                    .iter()
                    .any(|(owner, m, _)| *owner >= count || !m.owned_by(catalog, *owner, count));
            if misrouted {
                return bad("its parts are not ascending owners of their keys".into());
            }
        }
        MsgBody::Get { keys, .. }
        | MsgBody::Features { keys, .. }
        | MsgBody::Recent { keys, .. } => {
            if let Some(s) = not_owned(&mut keys.iter()) {
                return bad(format!("carries a key owned by shard {s}"));
            }
        }
        MsgBody::RowVector { key, .. } if tarn_types::shard_for(key, count) != me => {
            return bad(format!(
                "carries a key owned by shard {}",
                tarn_types::shard_for(key, count)
            ));
        }
        MsgBody::ContextVisit(v) => {
            if let Some(s) = not_owned(&mut v.ops.iter().filter_map(|o| o.key())) {
                return bad(format!("carries a key owned by shard {s}"));
            }
            if v.hold
                .is_some_and(|(coordinator, _)| coordinator != msg.from)
            {
                return bad("a hold of a call another shard coordinates".into());
            }
        }
        MsgBody::ContextRelease { hold } if hold.0 != msg.from => {
            return bad("a hold of a call another shard coordinates".into());
        }
        MsgBody::History { queries, .. } => {
            if let Some(s) = not_owned(&mut queries.iter().map(|(k, _)| k)) {
                return bad(format!("carries a key owned by shard {s}"));
            }
        }
        MsgBody::Ddl(_) if me != 0 => {
            return bad("DDL is executed by shard 0 only".into());
        }
        MsgBody::Catalog(next) if next.version < catalog.version => {
            return bad(format!(
                "catalog version {} is older than the installed {}",
                next.version, catalog.version
            ));
        }
        MsgBody::Ready { hwm, .. } if !hwm.is_empty() && hwm.len() != count as usize => {
            return bad(format!("high-water-mark table of {} entries", hwm.len()));
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const COUNT: u32 = 2;

    /// A canonical key that shard `owner` of [`COUNT`] owns.
    fn key_of(owner: u32) -> Vec<u8> {
        (0..)
            .map(|i| {
                let mut k = Vec::new();
                tarn_types::encode_key(&Value::Int(i), &mut k).expect("an int is a key");
                k
            })
            .find(|k| tarn_types::shard_for(k, COUNT) == owner)
            .expect("some key lands on every shard")
    }

    fn msg(from: u32, body: MsgBody) -> ShardMsg {
        ShardMsg {
            from,
            corr: 7,
            body,
        }
    }

    fn arrives(m: &ShardMsg, at: u32) -> Result<(), Misrouted> {
        check_arrival(m, m.from, at, COUNT, &Catalog::new())
    }

    fn upsert(keys: Vec<Vec<u8>>) -> Mutation {
        Mutation::Upsert {
            table_id: 1,
            mode: tarn_types::UpsertMode::Replace,
            column_idx: vec![0],
            rows: keys.into_iter().map(|k| (k, vec![Value::Null])).collect(),
        }
    }

    #[test]
    fn keyed_messages_are_checked_where_they_land() {
        let mine = key_of(1);
        let theirs = key_of(0);
        let bodies = |k: Vec<u8>| {
            vec![
                MsgBody::Write {
                    mutation: upsert(vec![k.clone()]),
                    record: Vec::new(),
                },
                MsgBody::Write {
                    mutation: Mutation::Delete {
                        table_id: 1,
                        keys: vec![k.clone()],
                    },
                    record: Vec::new(),
                },
                MsgBody::Prepare {
                    txn: TxnPart {
                        coordinator: 0,
                        parts: vec![(0, 1), (1, 1)],
                    },
                    mutation: upsert(vec![k.clone()]),
                    record: Vec::new(),
                },
                MsgBody::Get {
                    table_id: 1,
                    keys: vec![k.clone()],
                },
                MsgBody::Features {
                    view_id: 1,
                    keys: vec![k.clone()],
                },
                MsgBody::History {
                    view_id: 1,
                    queries: vec![(k.clone(), 5)],
                },
                MsgBody::Recent {
                    stream_id: 1,
                    keys: vec![k.clone()],
                    n: 3,
                    columns: vec![0],
                },
            ]
        };
        for body in bodies(mine.clone()) {
            let m = msg(0, body);
            assert_eq!(arrives(&m, 1), Ok(()), "{} of an owned key", m.body.kind());
        }
        for body in bodies(theirs) {
            let m = msg(0, body);
            let err = arrives(&m, 1).expect_err(m.body.kind());
            assert!(err.0.contains("shard 1: "), "{err}");
            assert!(err.0.contains(m.body.kind()), "{err}");
        }
        // One stray key among owned ones is enough.
        let m = msg(
            0,
            MsgBody::Get {
                table_id: 1,
                keys: vec![mine.clone(), key_of(0), mine],
            },
        );
        assert!(arrives(&m, 1).is_err());
    }

    #[test]
    fn senders_and_single_owner_messages_are_checked() {
        // The sender must be the shard at the other end of the link, not the receiver.
        let m = msg(0, MsgBody::Stats);
        assert!(check_arrival(&m, 1, 0, COUNT, &Catalog::new()).is_err());
        assert!(arrives(&msg(1, MsgBody::Stats), 1).is_err(), "to itself");
        assert!(
            arrives(&msg(5, MsgBody::Stats), 1).is_err(),
            "no such shard"
        );
        assert_eq!(arrives(&msg(0, MsgBody::Stats), 1), Ok(()));
        // DDL runs on shard 0 only.
        let ddl = || MsgBody::Ddl(Statement::ShowTables);
        assert_eq!(arrives(&msg(1, ddl()), 0), Ok(()));
        assert!(arrives(&msg(0, ddl()), 1).is_err());
        // A prepare goes to a participant, from its coordinator; a commit from its coordinator.
        let prepare = |coordinator, parts: Vec<(u32, u64)>| MsgBody::Prepare {
            txn: TxnPart { coordinator, parts },
            mutation: upsert(vec![key_of(1)]),
            record: Vec::new(),
        };
        assert!(arrives(&msg(0, prepare(0, vec![(0, 1)])), 1).is_err());
        assert!(arrives(&msg(0, prepare(1, vec![(0, 1), (1, 1)])), 1).is_err());
        let commit = |coordinator| MsgBody::Commit {
            id: TxnId {
                coordinator,
                seq: 1,
            },
        };
        assert_eq!(arrives(&msg(0, commit(0)), 1), Ok(()));
        assert!(arrives(&msg(0, commit(1)), 1).is_err());
        // A producer's multi-shard batches are coordinated by its one coordinator.
        let coordinate = |producer| MsgBody::Coordinate {
            producer,
            parts: vec![
                (0, upsert(vec![key_of(0)]), Vec::new()),
                (1, upsert(vec![key_of(1)]), Vec::new()),
            ],
        };
        let producer_of = |s| {
            (0u64..)
                .find(|p| tarn_types::coordinator_for_producer(*p, COUNT) == s)
                .expect("some producer per shard")
        };
        assert_eq!(arrives(&msg(0, coordinate(producer_of(1))), 1), Ok(()));
        assert!(arrives(&msg(0, coordinate(producer_of(0))), 1).is_err());
        let swapped = MsgBody::Coordinate {
            producer: producer_of(1),
            parts: vec![
                (0, upsert(vec![key_of(1)]), Vec::new()),
                (1, upsert(vec![key_of(0)]), Vec::new()),
            ],
        };
        assert!(arrives(&msg(0, swapped), 1).is_err(), "parts at non-owners");
        // The start-up barrier's table has one mark per shard.
        let ready = |hwm| MsgBody::Ready { ok: true, hwm };
        assert_eq!(arrives(&msg(0, ready(vec![0, 0])), 1), Ok(()));
        assert!(arrives(&msg(0, ready(vec![0, 0, 0])), 1).is_err());
    }
}
