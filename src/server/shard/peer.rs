//! Calls to other shards over the request mesh, and the answers to theirs. One typed call,
//! [`Peers::ask`]: the reply kind follows from the type asked for.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use glommio::channels::channel_mesh::Senders;
use glommio::channels::local_channel::{self, LocalSender};
use glommio::sync::Semaphore;
use tarn_net::{ErrorCode, ShardStats};
use tarn_types::Value;

use super::{FeatureRows, ServerError, Shard};
use crate::server::mesh::{MsgBody, ReplyBody, ShardMsg, ShardReply};

/// This shard's ends of the two meshes.
pub(super) struct Peers {
    me: u32,
    pub(super) senders: Senders<ShardMsg>,
    pub(super) reply_senders: Senders<ShardReply>,
    /// Calls waiting for a reply, by correlation id: the shard asked, and where the reply goes.
    pub(super) waiters: RefCell<HashMap<u64, (u32, LocalSender<ReplyBody>)>>,
    pub(super) next_corr: Cell<u64>,
    /// Signalled once per peer that finished draining its connections.
    pub(super) drained: Semaphore,
}

impl Peers {
    pub(super) fn new(
        me: u32,
        senders: Senders<ShardMsg>,
        reply_senders: Senders<ShardReply>,
    ) -> Peers {
        assert_eq!(
            senders.peer_id() as u32,
            me,
            "a shard's id is its mesh peer id"
        );
        assert_eq!(
            reply_senders.peer_id() as u32,
            me,
            "both meshes agree on ids"
        );
        Peers {
            me,
            senders,
            reply_senders,
            waiters: RefCell::new(HashMap::new()),
            next_corr: Cell::new(1),
            drained: Semaphore::new(0),
        }
    }

    /// Sends `body` to shard `to` and waits for its answer, of the kind `T` names (an error
    /// reply becomes the error; any other kind is a bug reported as INTERNAL).
    pub(super) async fn ask<T: Answer>(&self, to: u32, body: MsgBody) -> Result<T, ServerError> {
        assert_ne!(
            to, self.me,
            "a shard answers its own requests without the mesh"
        );
        let kind = body.kind();
        let corr = self.next_corr.get();
        self.next_corr.set(corr + 1);
        let (tx, rx) = local_channel::new_bounded(1);
        let previous = self.waiters.borrow_mut().insert(corr, (to, tx));
        assert!(previous.is_none(), "correlation id {corr} reused");
        let msg = ShardMsg {
            from: self.me,
            corr,
            body,
        };
        if self.senders.send_to(to as usize, msg).await.is_err() {
            self.waiters.borrow_mut().remove(&corr);
            return Err(ServerError::new(
                ErrorCode::ShuttingDown,
                format!("shard {to} is not reachable"),
            ));
        }
        match rx.recv().await {
            Some(ReplyBody::Error(e)) => Err(e),
            Some(body) => T::from_body(body).map_err(|other| {
                ServerError::new(
                    ErrorCode::Internal,
                    format!("shard {to} answered {kind} with {}", other.kind()),
                )
            }),
            None => Err(ServerError::new(
                ErrorCode::Internal,
                format!("shard {to} dropped the request"),
            )),
        }
    }

    /// Delivers a reply that arrived from shard `from` to the task waiting for it. Every
    /// request gets exactly one reply, from the shard it was sent to.
    pub(super) fn deliver(&self, from: u32, reply: ShardReply) {
        let waiter = self.waiters.borrow_mut().remove(&reply.corr);
        let Some((asked, tx)) = waiter else {
            panic!(
                "shard {}: reply {} from shard {from} answers no request",
                self.me, reply.corr
            );
        };
        assert_eq!(
            asked, from,
            "shard {}: reply {} came from shard {from}, the request went to {asked}",
            self.me, reply.corr
        );
        // The caller may have gone (its connection closed): the reply is dropped.
        let _ = tx.try_send(reply.body);
    }
}

/// One kind of reply body as the Rust type a call asks for ([`Peers::ask`]) and a handler
/// answers with ([`answer`]).
pub(super) trait Answer: Sized {
    fn into_body(self) -> ReplyBody;
    /// `Err(body)` when `body` is of another kind.
    fn from_body(body: ReplyBody) -> Result<Self, ReplyBody>;
}

/// `impl Answer for $ty` through the one-field reply variant `$variant`.
macro_rules! answer_variant {
    ($(#[$doc:meta])* $ty:ty => $variant:ident) => {
        $(#[$doc])*
        impl Answer for $ty {
            fn into_body(self) -> ReplyBody {
                ReplyBody::$variant(self)
            }
            fn from_body(body: ReplyBody) -> Result<Self, ReplyBody> {
                match body {
                    ReplyBody::$variant(value) => Ok(value),
                    other => Err(other),
                }
            }
        }
    };
}

answer_variant!(
    /// Answer of a write, commit or back-fill: the rows (events) applied.
    u64 => Written
);
answer_variant!(
    /// Answer of catalog installs and quiesce (empty).
    String => Done
);
answer_variant!(
    /// Answer of a Get: one row per key, in the request's order.
    Vec<Option<Vec<Value>>> => Rows
);
answer_variant!(ShardStats => Stats);
answer_variant!(Option<tarn_core::state::StreamCounters> => StreamCounters);
answer_variant!(
    /// A view's counters on one shard: keys, window heap bytes, events applied, late events.
    [u64; 4] => ViewCounters
);
answer_variant!(
    /// Answer of a feature read or history: one row per key (query), in the request's order.
    FeatureRows => Features
);
answer_variant!(
    /// Answer of a kNN search of one shard's part of an index.
    super::KnnHits => KnnHits
);
answer_variant!(
    /// Answer of a row-vector lookup (None: no such row, or a NULL vector).
    Option<Vec<f32>> => RowVector
);
answer_variant!(
    /// Answer of a context visit: its reads, and the state they saw.
    super::VisitAnswer => ContextVisit
);
answer_variant!(
    /// Answer of a RECENT read: per key, its newest events.
    super::RecentRows => Recent
);
answer_variant!(
    /// Build progress of a shard's indexes.
    Vec<(u32, tarn_core::state::IndexProgress)> => IndexProgress
);

/// Answer of a Prepare: the part is durable and set aside.
pub(super) struct Prepared;

impl Answer for Prepared {
    fn into_body(self) -> ReplyBody {
        ReplyBody::Prepared
    }
    fn from_body(body: ReplyBody) -> Result<Self, ReplyBody> {
        match body {
            ReplyBody::Prepared => Ok(Prepared),
            other => Err(other),
        }
    }
}

/// Answer of DDL: the statement's message and the events back-filled into a new view.
impl Answer for (String, Option<u64>) {
    fn into_body(self) -> ReplyBody {
        ReplyBody::Ddl(self.0, self.1)
    }
    fn from_body(body: ReplyBody) -> Result<Self, ReplyBody> {
        match body {
            ReplyBody::Ddl(text, backfilled) => Ok((text, backfilled)),
            other => Err(other),
        }
    }
}

/// The reply body of a handler's result.
fn answer<T: Answer>(result: Result<T, ServerError>) -> ReplyBody {
    match result {
        Ok(value) => value.into_body(),
        Err(e) => ReplyBody::Error(e),
    }
}

impl Shard {
    /// Delivers a reply that arrived from shard `from` (see [`Peers::deliver`]).
    pub fn deliver(&self, from: u32, reply: ShardReply) {
        self.peers.deliver(from, reply);
    }

    /// Handles one request from another shard (already checked on arrival:
    /// `mesh::check_arrival`) and sends the reply back.
    pub async fn handle_peer(self: Rc<Self>, msg: ShardMsg) {
        let body = match msg.body {
            MsgBody::Ready { .. } => return,
            MsgBody::Drained => {
                self.peers.drained.signal(1);
                return;
            }
            MsgBody::Write { mutation, record } => {
                answer(self.write_local(mutation, &record).await)
            }
            MsgBody::Prepare {
                txn,
                mutation,
                record,
            } => answer(
                self.prepare_local(txn, mutation, record)
                    .await
                    .map(|()| Prepared),
            ),
            MsgBody::Commit { id } => answer(self.commit_local(id).await),
            MsgBody::Coordinate { parts, .. } => answer(self.write_txn(parts).await),
            MsgBody::Get { table_id, keys } => answer(Ok(self.get_local(table_id, &keys))),
            MsgBody::Ddl(stmt) => answer(self.ddl(stmt).await),
            MsgBody::Catalog(c) => {
                self.install_catalog(c);
                answer(self.log_index_creates().await.map(|()| String::new()))
            }
            MsgBody::Stats => answer(Ok(self.local_stats())),
            MsgBody::Features { view_id, keys } => {
                answer(self.features_local(view_id, &keys).await)
            }
            MsgBody::History { view_id, queries } => {
                answer(self.history_local(view_id, queries).await)
            }
            MsgBody::Quiesce { version } => {
                answer(self.quiesce(version).await.map(|()| String::new()))
            }
            MsgBody::Backfill { view_id } => answer(self.backfill_local(view_id).await),
            MsgBody::ViewCounters { view_id } => answer(Ok(self.local_view_counters(view_id))),
            MsgBody::StreamCounters { stream_id } => {
                answer(Ok(self.state.borrow().stream_counters(stream_id)))
            }
            MsgBody::Knn(ask) => answer(self.knn_local(&ask).await),
            MsgBody::RowVector { index_id, key } => {
                answer(Ok(self.local_row_vector(index_id, &key)))
            }
            MsgBody::IndexProgress => answer(Ok(self.local_index_progress())),
            MsgBody::ContextVisit(visit) => answer(self.context_visit_local(*visit).await),
            MsgBody::ContextRelease { hold } => {
                self.release_hold(hold);
                answer(Ok(String::new()))
            }
            MsgBody::Recent {
                stream_id,
                keys,
                n,
                columns,
            } => answer(self.recent_local(stream_id, &keys, n, &columns)),
        };
        let reply = ShardReply {
            corr: msg.corr,
            body,
        };
        // The peer is gone only when the whole server is stopping.
        let _ = self
            .peers
            .reply_senders
            .send_to(msg.from as usize, reply)
            .await;
    }

    /// Tells every peer this shard has no more client work of its own, then waits until every
    /// peer said the same: after that no shard will send another write.
    pub async fn drain_barrier(self: &Rc<Self>) {
        for peer in 0..self.count {
            if peer != self.id {
                let msg = ShardMsg {
                    from: self.id,
                    corr: 0,
                    body: MsgBody::Drained,
                };
                let _ = self.peers.senders.send_to(peer as usize, msg).await;
            }
        }
        let _ = self.peers.drained.acquire(u64::from(self.count - 1)).await;
    }
}
