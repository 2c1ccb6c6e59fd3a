//! Producer-tagged parts whose batch is not decided yet, so that the ack of a retry never
//! comes before the first attempt's rows are visible.
//!
//! An owner decides at append time whether a tagged part is a duplicate (`tarn_core::producer`:
//! the first part to take the producer's seq wins). When the winner is a *prepared* part of a
//! multi-shard batch, its rows become visible only when its Commit is applied, which may come
//! after a retry of the same batch was appended, flagged duplicate and applied (as nothing). The
//! retry's reply would then tell the client "already applied" while a read could still miss
//! the rows. So the owner remembers which prepared part holds each seq until its Commit is
//! applied ([`Undecided::hold`] / [`Undecided::release`]), and a duplicate part answers only
//! once the part holding its seq was released ([`Undecided::wait`]), at most
//! [`crate::server::limits::UNDECIDED_WAIT`].
//!
//! A single-shard winner needs none of this: it has the lower LSN, and parts are applied in
//! LSN order.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use glommio::sync::Semaphore;
use tarn_core::record::TxnId;
use tarn_net::ErrorCode;

use super::ServerError;
use crate::server::limits::UNDECIDED_WAIT;

/// A producer id and one of its batch seqs.
type ProducerSeq = (u64, u64);

/// Prepared parts that took a producer seq and are not applied yet, and duplicate prepared
/// parts waiting for their Commit. Both hold at most one entry per open multi-shard part, so
/// they are bounded by `MAX_OPEN_TXNS_PER_SHARD` per coordinator.
#[derive(Default)]
pub(super) struct Undecided {
    /// Per seq held by an undecided prepared part: closed (waking every waiter) on release.
    by_seq: RefCell<HashMap<ProducerSeq, Rc<Semaphore>>>,
    /// The seq each undecided prepared part holds.
    by_txn: RefCell<HashMap<TxnId, ProducerSeq>>,
    /// Prepared parts flagged duplicate: the seq whose holder their Commit must wait for.
    duplicates: RefCell<HashMap<TxnId, ProducerSeq>>,
}

impl Undecided {
    /// Prepared part `txn` took `seq` (at the moment it got its LSN): it holds it until
    /// [`Undecided::release`].
    pub(super) fn hold(&self, txn: TxnId, seq: ProducerSeq) {
        let fresh = self
            .by_seq
            .borrow_mut()
            .insert(seq, Rc::new(Semaphore::new(0)))
            .is_none();
        assert!(fresh, "producer seq {seq:?} taken twice");
        let previous = self.by_txn.borrow_mut().insert(txn, seq);
        assert!(previous.is_none(), "part {txn:?} prepared twice");
    }

    /// Prepared part `txn` was flagged a duplicate of `seq`: its Commit waits for the holder.
    pub(super) fn note_duplicate(&self, txn: TxnId, seq: ProducerSeq) {
        let previous = self.duplicates.borrow_mut().insert(txn, seq);
        assert!(previous.is_none(), "part {txn:?} prepared twice");
    }

    /// Part `txn` is applied (or will never be, the log having failed): wakes whoever waits on
    /// the seq it held. Returns the seq its Commit must wait for if it was a duplicate.
    pub(super) fn release(&self, txn: TxnId) -> Option<ProducerSeq> {
        if let Some(seq) = self.by_txn.borrow_mut().remove(&txn) {
            let sem = self.by_seq.borrow_mut().remove(&seq);
            sem.expect("a held seq has its semaphore").close();
        }
        self.duplicates.borrow_mut().remove(&txn)
    }

    /// Waits until no undecided prepared part holds `seq` (at once if none does), at most
    /// [`UNDECIDED_WAIT`]; then BUSY, and the client's next retry waits again.
    pub(super) async fn wait(&self, seq: ProducerSeq) -> Result<(), ServerError> {
        let Some(sem) = self.by_seq.borrow().get(&seq).cloned() else {
            return Ok(());
        };
        let released = futures_lite::future::or(async { sem.acquire(1).await.is_err() }, async {
            glommio::timer::sleep(UNDECIDED_WAIT).await;
            false
        })
        .await;
        if released {
            return Ok(());
        }
        Err(ServerError::new(
            ErrorCode::Busy,
            format!(
                "an earlier attempt of producer {} batch {} is prepared but not committed yet; retry",
                seq.0, seq.1
            ),
        ))
    }
}
