//! Multi-shard batches (see `tarn_core::txn` for the protocol and its recovery rule):
//! [`Shard::write_txn`] coordinates, [`Shard::prepare_local`] and [`Shard::commit_local`] are
//! the owner's side.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;

use glommio::channels::local_channel::{self, LocalSender};
use tarn_core::record::{self, Mutation, Record, TxnId, TxnPart};
use tarn_net::ErrorCode;

use super::peer::Prepared;
use super::{Pending, ServerError, Shard};
use crate::server::fanout;
use crate::server::mesh::MsgBody;

/// The links of multi-shard batches: as coordinator, the next sequence number per owner; as
/// participant, the order in which each coordinator's Prepare records are appended.
pub(super) struct Links {
    /// As coordinator: next link seq to give a part sent to each shard.
    pub(super) next: RefCell<Vec<u64>>,
    /// As participant: per coordinator, the ordering of its Prepare records.
    pub(super) incoming: RefCell<Vec<LinkIn>>,
    /// Multi-shard batches this shard is coordinating now.
    pub(super) open: Cell<usize>,
    /// Set when a multi-shard batch failed on some owner (a storage failure): its parts stay
    /// set aside until the next start decides them, so further multi-shard batches are
    /// refused rather than piling up more.
    pub(super) failed: RefCell<Option<String>>,
}

impl Links {
    pub(super) fn new(next: Vec<u64>, incoming: Vec<LinkIn>) -> Links {
        assert_eq!(next.len(), incoming.len(), "one link per shard each way");
        Links {
            next: RefCell::new(next),
            incoming: RefCell::new(incoming),
            open: Cell::new(0),
            failed: RefCell::new(None),
        }
    }
}

impl Shard {
    /// [`Shard::write_txn`] on the shard that coordinates `producer`'s batches
    /// (`tarn_types::coordinator_for_producer`: why, there), forwarded there when that is
    /// another shard. Untagged batches are coordinated here.
    pub async fn write_txn_for(
        self: &Rc<Self>,
        producer: Option<(u64, u64)>,
        parts: Vec<(u32, Mutation, Vec<u8>)>,
    ) -> Result<u64, ServerError> {
        let Some((producer, _)) = producer else {
            return self.write_txn(parts).await;
        };
        let coordinator = tarn_types::coordinator_for_producer(producer, self.count);
        if coordinator == self.id {
            return self.write_txn(parts).await;
        }
        self.peers
            .ask(coordinator, MsgBody::Coordinate { producer, parts })
            .await
    }

    /// Coordinates a batch that spans shards: `parts` = (owner, its part, the part encoded
    /// with [`record::encode`]), ascending by owner, at least two. Prepares every part, and
    /// once all are durable commits them; answers the rows applied after every owner applied
    /// its part. On an error before every part is durable the batch is not applied now; its
    /// prepared parts stay set aside and the next start commits them only if every part had
    /// reached the disk (see `tarn_core::txn`).
    pub async fn write_txn(
        self: &Rc<Self>,
        parts: Vec<(u32, Mutation, Vec<u8>)>,
    ) -> Result<u64, ServerError> {
        assert!(
            parts.len() >= 2,
            "a multi-shard batch has at least two parts"
        );
        assert!(
            parts.windows(2).all(|w| w[0].0 < w[1].0),
            "parts ascend by owner"
        );
        if let Some(reason) = self.links.failed.borrow().as_ref() {
            return Err(ServerError::new(
                ErrorCode::Storage,
                format!(
                    "shard {} refuses multi-shard batches since one failed ({reason}); restart the server",
                    self.id
                ),
            ));
        }
        if self.links.open.get() >= crate::server::limits::MAX_OPEN_TXNS_PER_SHARD {
            return Err(ServerError::new(
                ErrorCode::Busy,
                format!(
                    "shard {} is coordinating {} multi-shard batches, the limit; retry later",
                    self.id,
                    crate::server::limits::MAX_OPEN_TXNS_PER_SHARD
                ),
            ));
        }
        // Sequence numbers are given out here, with no await between this and spawning the
        // prepares: every owner appends them in this order (see LinkIn).
        let txn = {
            let mut next = self.links.next.borrow_mut();
            TxnPart {
                coordinator: self.id,
                parts: parts
                    .iter()
                    .map(|(owner, ..)| {
                        let seq = next[*owner as usize];
                        next[*owner as usize] = seq + 1;
                        (*owner, seq)
                    })
                    .collect(),
            }
        };
        self.links.open.set(self.links.open.get() + 1);
        let result = self.run_txn(txn, parts).await;
        self.links.open.set(self.links.open.get() - 1);
        if let Err(ServerError {
            message: reason, ..
        }) = &result
        {
            self.links.failed.borrow_mut().get_or_insert(reason.clone());
        }
        result
    }

    pub(super) async fn run_txn(
        self: &Rc<Self>,
        txn: TxnPart,
        parts: Vec<(u32, Mutation, Vec<u8>)>,
    ) -> Result<u64, ServerError> {
        fanout::each(parts, |(owner, mutation, rec)| {
            let record = record::encode_prepare(&txn, &rec);
            let txn = txn.clone();
            let me = self.clone();
            async move {
                if owner == me.id {
                    me.prepare_local(txn, mutation, record).await
                } else {
                    let body = MsgBody::Prepare {
                        txn,
                        mutation,
                        record,
                    };
                    me.peers.ask(owner, body).await.map(|Prepared| ())
                }
            }
        })
        .await?;
        let coordinator = txn.coordinator;
        fanout::sum(txn.parts, |(owner, seq)| {
            let id = TxnId { coordinator, seq };
            let me = self.clone();
            async move {
                if owner == me.id {
                    me.commit_local(id).await
                } else {
                    me.peers.ask(owner, MsgBody::Commit { id }).await
                }
            }
        })
        .await
    }

    /// Owner side of a prepare: appends `record` (the Prepare of this shard's part of `txn`)
    /// after every earlier part from the same coordinator, and returns once it is durable
    /// (in both modes: the batch may only commit when every part is durable).
    pub async fn prepare_local(
        self: &Rc<Self>,
        txn: TxnPart,
        mut mutation: Mutation,
        record: Vec<u8>,
    ) -> Result<(), ServerError> {
        let id = txn
            .id_on(self.id)
            .expect("a prepare goes only to a participant");
        debug_assert!(self.owns_all(&mutation));
        let c = id.coordinator as usize;
        let turn = {
            let mut links = self.links.incoming.borrow_mut();
            let link = &mut links[c];
            assert!(link.expected <= id.seq, "link seq {} reused", id.seq);
            if link.expected == id.seq {
                None
            } else {
                let (tx, rx) = local_channel::new_bounded(1);
                link.waiting.insert(id.seq, tx);
                Some(rx)
            }
        };
        if let Some(rx) = turn {
            let _ = rx.recv().await;
        }
        assert_eq!(self.links.incoming.borrow()[c].expected, id.seq);
        let appended = match self.check_writable() {
            Ok(()) => self.append_record(&mut mutation, &record, Some(id)).await,
            Err(e) => Err(e),
        };
        // The link moves on even on failure: a failed log takes no further record, so no
        // later seq of this link can be logged after the gap.
        {
            let mut links = self.links.incoming.borrow_mut();
            let link = &mut links[c];
            link.expected = id.seq + 1;
            if let Some(tx) = link.waiting.remove(&(id.seq + 1)) {
                let _ = tx.try_send(());
            }
        }
        let lsn = appended?;
        if let Some(seq) = super::apply::duplicate_seq(&mutation) {
            self.undecided.note_duplicate(id, seq);
        }
        self.apply.pending.borrow_mut().insert(
            lsn,
            Pending {
                record: Record::Prepare { txn, mutation },
                done: None,
            },
        );
        self.log
            .wait_durable(lsn)
            .await
            .map_err(|e| self.fail(e.to_string()))?;
        self.drain_applies();
        Ok(())
    }

    /// Owner side of a commit: logs a Commit for part `id` and applies the part in log order.
    pub async fn commit_local(self: &Rc<Self>, id: TxnId) -> Result<u64, ServerError> {
        let bytes = record::encode_record_to_vec(&Record::Commit(id, 0));
        // Not waiting for durability: the batch is decided (every part durable), so recovery
        // commits it even if this record is lost.
        let applied = self
            .log_and_apply(Record::Commit(id, 0), &bytes, false)
            .await;
        // Applied, or never will be (the log failed): the seq it held is free to wait on.
        let duplicate_of = self.undecided.release(id);
        let (rows, _) = applied?;
        if let Some(seq) = duplicate_of {
            // A retry: answer once the first attempt is visible (see `producers`).
            self.undecided.wait(seq).await?;
        }
        Ok(rows)
    }
}

/// The receiving end of one coordinator's link: Prepare records are appended strictly in link
/// sequence order, whatever order their messages arrive in.
#[derive(Default)]
pub(super) struct LinkIn {
    /// Next link seq to append.
    pub(super) expected: u64,
    /// Prepares that arrived early, waiting for their turn.
    pub(super) waiting: BTreeMap<u64, LocalSender<()>>,
}
