//! Batches that span several shards: all-or-nothing across `kill -9`.
//!
//! A batch whose rows all live on one shard is one log record there and needs nothing else.
//! A batch that spans shards is split into parts, one per owner, and committed like this:
//!
//! 1. The coordinator (the shard that received the batch) gives each part the next sequence
//!    number of its *link* to that owner (1, 2, 3, … per (coordinator, owner) pair) and sends
//!    every owner a [`Record::Prepare`] holding its part plus the whole list of
//!    `(owner, link seq)` pairs.
//! 2. Each owner appends the Prepare records of one coordinator **in link-sequence order**
//!    and sets them aside (the *stash*, not visible to reads); it answers once the record is
//!    durable (in both durability modes).
//! 3. When every part is durable the batch is committed. The coordinator tells every owner,
//!    which appends a [`Record::Commit`] and applies the part at that position of its log,
//!    in log order like any other record. The client is acknowledged after every owner
//!    applied its part.
//!
//! Recovery (no message needed for anything decided at run time): replaying a log rebuilds
//! the stash and, per coordinator, the *high-water mark* — the highest link seq this shard
//! has logged from that coordinator. Because a link's records are appended in sequence order
//! and the log is durable in order, `hwm[c] >= s` means "part `s` from `c` is durable here".
//! A part still in the stash at the end of replay lost its Commit in the crash; it is
//! committed if and only if **every** participant `p` reports `hwm_p[coordinator] >= seq_p`
//! ([`decide`]), which is exactly "every part was durable", the run-time commit condition.
//! Every shard evaluates the same rule on the same exchanged high-water marks, so they all
//! agree. Recovery logs the outcome (Commit or [`Record::Abort`]) before serving, and new
//! link sequences continue above every high-water mark, so an aborted sequence number can
//! be reused without ever being mistaken for the old part.
//!
//! Checkpoints store the high-water marks and the stash (parts prepared but not committed
//! when the checkpoint started), so a Commit replayed after a checkpoint always finds its
//! part.

use std::collections::BTreeMap;

use crate::record::{Mutation, TxnId, TxnPart};

/// Per-shard bookkeeping of multi-shard batches; part of [`crate::state::ShardState`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TxnState {
    /// `hwm[c]`: highest link seq logged here from coordinator `c` (0: none).
    pub(crate) hwm: Vec<u64>,
    /// Parts prepared here and not yet committed or aborted.
    pub(crate) stash: BTreeMap<TxnId, Prepared>,
}

/// One prepared part, waiting for its Commit.
#[derive(Clone, Debug, PartialEq)]
pub struct Prepared {
    /// The batch's participants and their link seqs.
    pub txn: TxnPart,
    /// This shard's rows.
    pub mutation: Mutation,
}

impl TxnState {
    /// Highest link seq logged here from coordinator `c` (0 if none).
    pub fn hwm(&self, coordinator: u32) -> u64 {
        self.hwm.get(coordinator as usize).copied().unwrap_or(0)
    }

    /// The high-water marks for coordinators `0..count`.
    pub fn hwm_table(&self, count: u32) -> Vec<u64> {
        (0..count).map(|c| self.hwm(c)).collect()
    }

    /// Raises coordinator `c`'s mark to `seq`, its link's next seq (asserted: a link's
    /// Prepare records are logged in seq order with no gap; callers check before, since a log
    /// that breaks the rule is corrupt, not a bug).
    pub(crate) fn set_hwm(&mut self, coordinator: u32, seq: u64) {
        assert_eq!(
            seq,
            self.hwm(coordinator) + 1,
            "link {coordinator} seqs are consecutive"
        );
        let c = coordinator as usize;
        if self.hwm.len() <= c {
            self.hwm.resize(c + 1, 0);
        }
        self.hwm[c] = seq;
    }

    /// Sets part `id` aside until its Commit or Abort. Preconditions (asserted): its seq is
    /// covered by its link's mark (the Prepare is logged) and it is not set aside already.
    pub(crate) fn stash_part(&mut self, id: TxnId, part: Prepared) {
        assert!(
            id.seq >= 1 && id.seq <= self.hwm(id.coordinator),
            "part {}:{} set aside above its link's mark",
            id.coordinator,
            id.seq
        );
        assert!(
            part.txn.coordinator == id.coordinator
                && part.txn.parts.iter().any(|&(_, seq)| seq == id.seq),
            "part {}:{} is not one of its batch's parts",
            id.coordinator,
            id.seq
        );
        let prev = self.stash.insert(id, part);
        assert!(prev.is_none(), "a fresh link seq cannot be in the stash");
    }

    /// Takes part `id` out of the stash (for its Commit or Abort), if it is there.
    pub(crate) fn take(&mut self, id: TxnId) -> Option<Prepared> {
        self.stash.remove(&id)
    }

    /// Parts prepared and not yet decided, by id.
    pub fn stash(&self) -> &BTreeMap<TxnId, Prepared> {
        &self.stash
    }
}

/// The recovery rule: a prepared part whose Commit was lost is committed if and only if every
/// participant has its own part durable, i.e. `hwm_all[p][coordinator] >= seq_p` for every
/// `(p, seq_p)` of the batch. `hwm_all[p]` is shard `p`'s high-water-mark table after its
/// replay. A participant outside `hwm_all` counts as not having its part.
///
/// Preconditions (asserted; record decoding guarantees them): at least two participants, in
/// strictly ascending shard order, every link seq at least 1.
pub fn decide(txn: &TxnPart, hwm_all: &[Vec<u64>]) -> bool {
    assert!(
        txn.parts.len() >= 2,
        "a multi-shard batch has two parts at least"
    );
    assert!(
        txn.parts.windows(2).all(|w| w[0].0 < w[1].0),
        "participants in ascending shard order"
    );
    assert!(
        txn.parts.iter().all(|&(_, seq)| seq >= 1),
        "link seqs start at 1"
    );
    txn.parts.iter().all(|&(p, seq)| {
        hwm_all
            .get(p as usize)
            .and_then(|t| t.get(txn.coordinator as usize))
            .is_some_and(|&h| h >= seq)
    })
}
