//! The apply queue: every record a shard logs is applied to its state strictly in LSN order,
//! once it is durable in sync mode (a Commit may go first: its batch is already decided).
//! Append stamps are taken here, at the moment a record gets its LSN.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;

use glommio::channels::local_channel::{self, LocalSender};
use tarn_core::record::{self, IndexOp, Mutation, Record, TxnId};
use tarn_net::ErrorCode;
use tarn_storage::Durability;

use super::{ServerError, Shard};
use crate::server::mesh::MsgBody;

/// Logged records waiting to be applied, and the clocks of the apply order.
pub(super) struct Applier {
    /// Logged mutations waiting to be applied, by LSN. Applied strictly in LSN order.
    pub(super) pending: RefCell<BTreeMap<u64, Pending>>,
    /// The LSN applied next.
    pub(super) next_lsn: Cell<u64>,
    /// Set when the log failed: the shard stops accepting writes (an fdatasync error cannot be
    /// retried safely) but keeps serving reads.
    pub(super) failed: RefCell<Option<String>>,
    /// Append time of the last record applied that carries one (events, commits).
    pub(super) last_applied_stamp_us: Cell<i64>,
    /// Last append timestamp given to an Events record (µs): stamps never go backwards even
    /// if the wall clock does.
    pub(super) last_stamp_us: Cell<i64>,
}

impl Applier {
    pub(super) fn new(next_lsn: u64, last_stamp_us: i64) -> Applier {
        assert!(next_lsn >= 1, "LSNs start at 1");
        Applier {
            pending: RefCell::new(BTreeMap::new()),
            next_lsn: Cell::new(next_lsn),
            failed: RefCell::new(None),
            last_applied_stamp_us: Cell::new(i64::MIN),
            last_stamp_us: Cell::new(last_stamp_us),
        }
    }
}

impl Shard {
    /// Logs and applies `m` on shard `target`, returning the rows it applied (or deleted).
    /// `record` is `m` encoded with [`record::encode`].
    pub async fn write(
        self: &Rc<Self>,
        target: u32,
        m: Mutation,
        record: Vec<u8>,
    ) -> Result<u64, ServerError> {
        if target == self.id {
            self.write_local(m, &record).await
        } else {
            self.peers
                .ask(
                    target,
                    MsgBody::Write {
                        mutation: m,
                        record,
                    },
                )
                .await
        }
    }

    pub(super) async fn write_local(
        self: &Rc<Self>,
        m: Mutation,
        record: &[u8],
    ) -> Result<u64, ServerError> {
        debug_assert!(
            self.owns_all(&m),
            "mutation routed to a shard that does not own its keys"
        );
        debug_assert_eq!(
            record::decode(record).as_ref(),
            Ok(&m),
            "record must encode the mutation"
        );
        let wait_durable = self.cfg.durability == Durability::Sync;
        let (rows, duplicate_of) = self
            .log_and_apply(Record::Apply(m), record, wait_durable)
            .await?;
        if let Some(seq) = duplicate_of {
            // A retry: answer once the first attempt is visible (see `producers`).
            self.undecided.wait(seq).await?;
        }
        Ok(rows)
    }

    /// Appends `bytes` (the encoding of `rec`), waits until it is durable if asked, and
    /// returns the rows `rec` applied once it is applied in LSN order, and the producer seq
    /// of an Apply part that was flagged a duplicate.
    pub(super) async fn log_and_apply(
        self: &Rc<Self>,
        mut rec: Record,
        bytes: &[u8],
        wait_durable: bool,
    ) -> Result<(u64, Option<(u64, u64)>), ServerError> {
        self.check_writable()?;
        let mut duplicate_of = None;
        let lsn = match &mut rec {
            Record::Apply(m) => {
                let lsn = self.append_record(m, bytes, None).await?;
                duplicate_of = duplicate_seq(m);
                lsn
            }
            Record::Commit(_, stamp) => {
                let (lsn, s) = self.append_stamped(bytes).await?;
                *stamp = s.expect("a Commit has a stamp slot");
                lsn
            }
            _ => self
                .log
                .append(bytes)
                .await
                .map_err(|e| self.fail(e.to_string()))?,
        };
        let (done, applied) = local_channel::new_bounded(1);
        self.apply.pending.borrow_mut().insert(
            lsn,
            Pending {
                record: rec,
                done: Some(done),
            },
        );
        if wait_durable {
            self.log
                .wait_durable(lsn)
                .await
                .map_err(|e| self.fail(e.to_string()))?;
        }
        self.drain_applies();
        let rows = applied.recv().await.ok_or_else(|| {
            ServerError::new(
                ErrorCode::Storage,
                format!("shard {}: write was not applied", self.id),
            )
        })?;
        Ok((rows, duplicate_of))
    }

    pub(super) fn check_writable(&self) -> Result<(), ServerError> {
        match self.apply.failed.borrow().as_ref() {
            Some(reason) => Err(ServerError::new(
                ErrorCode::Storage,
                format!("shard {} refuses writes: {reason}", self.id),
            )),
            None => Ok(()),
        }
    }

    /// Applies every pending record that is next in LSN order and allowed: durable, in sync
    /// mode — except a Commit, which may be applied before it is durable because the batch it
    /// commits is already decided (every part durable; recovery commits it even if this record
    /// is lost). Synchronous: whoever calls it applies everything ready, in order.
    pub(super) fn drain_applies(self: &Rc<Self>) {
        let limit = match self.cfg.durability {
            Durability::Sync => self.log.durable_lsn(),
            Durability::Async => u64::MAX,
        };
        let catalog = self.catalog();
        loop {
            let next = self.apply.next_lsn.get();
            if self.holds.held() {
                // A context call reads this state; what is ready waits for its release.
                let ready = self
                    .apply
                    .pending
                    .borrow()
                    .get(&next)
                    .is_some_and(|p| next <= limit || matches!(p.record, Record::Commit(..)));
                if ready {
                    self.holds.blocked.set(true);
                }
                return;
            }
            let p = {
                let mut pending = self.apply.pending.borrow_mut();
                match pending.get(&next) {
                    Some(p) if next <= limit || matches!(p.record, Record::Commit(..)) => {
                        pending.remove(&next).expect("present")
                    }
                    _ => break,
                }
            };
            if let Some(stamp) = record_stamp(&p.record) {
                debug_assert!(
                    stamp >= self.apply.last_applied_stamp_us.get(),
                    "stamps follow the apply order"
                );
                self.apply.last_applied_stamp_us.set(stamp);
            }
            let step_rows = match p.record {
                Record::Index(IndexOp::Step { rows, .. }) => Some(rows),
                _ => None,
            };
            // Only index steps are timed (they size the next one).
            let started = step_rows.map(|_| std::time::Instant::now());
            let n = self
                .state
                .borrow_mut()
                .apply_record(&catalog, self.id, next, p.record)
                .unwrap_or_else(|e| panic!("shard {}: record {next}: {e}", self.id));
            if let (Some(rows), Some(t)) = (step_rows, started) {
                self.note_index_step(rows, t.elapsed().as_nanos() as u64);
            }
            self.apply.next_lsn.set(next + 1);
            // The writer may have gone (its connection closed): the write still happened.
            if let Some(done) = p.done {
                let _ = done.try_send(n);
            }
        }
        self.maybe_checkpoint();
    }

    pub(super) fn fail(&self, reason: String) -> ServerError {
        tracing::error!(
            shard = self.id,
            "log failure, shard stops accepting writes: {reason}"
        );
        let mut failed = self.apply.failed.borrow_mut();
        if failed.is_none() {
            *failed = Some(reason.clone());
        }
        ServerError::new(ErrorCode::Storage, format!("shard {}: {reason}", self.id))
    }

    pub(super) fn owns_all(&self, m: &Mutation) -> bool {
        m.owned_by(&self.catalog(), self.id, self.count)
    }

    /// Appends `bytes` (the encoding of `m`, plain or, for part `prepare` of a multi-shard
    /// batch, inside a Prepare). An Events part gets its append timestamp here, at the moment
    /// it gets its LSN (never decreasing along the log), in the logged bytes and in `m` alike.
    pub(super) async fn append_record(
        &self,
        m: &mut Mutation,
        bytes: &[u8],
        prepare: Option<TxnId>,
    ) -> Result<u64, ServerError> {
        let producer = match m {
            Mutation::Events(e) => e.producer,
            _ => None,
        };
        let (lsn, stamp, dup) = self.append_stamped_tagged(bytes, producer, prepare).await?;
        if let Mutation::Events(e) = m {
            e.append_time_us = stamp.expect("an Events record has a stamp slot");
            e.duplicate = dup;
        }
        Ok(lsn)
    }

    /// Appends `bytes`; a record with a stamp slot (Events, Commit: `record::stamp_offset`)
    /// gets its append time written there at the moment it gets its LSN, from a clock that
    /// never goes backwards on this shard. Returns the LSN and the stamp.
    pub(super) async fn append_stamped(
        &self,
        bytes: &[u8],
    ) -> Result<(u64, Option<i64>), ServerError> {
        self.append_stamped_tagged(bytes, None, None)
            .await
            .map(|(lsn, stamp, _)| (lsn, stamp))
    }

    /// [`Shard::append_stamped`] of an Events part tagged `producer`: at the same moment, takes
    /// the producer's seq and writes the outcome into the part's duplicate flag (see
    /// `tarn_core::producer`). A prepared part (`prepare`) that takes the seq holds it in
    /// [`Undecided`](super::producers) until its Commit is applied. Returns the LSN, the stamp
    /// and whether the part is a duplicate.
    pub(super) async fn append_stamped_tagged(
        &self,
        bytes: &[u8],
        producer: Option<(u64, u64)>,
        prepare: Option<TxnId>,
    ) -> Result<(u64, Option<i64>, bool), ServerError> {
        let stamp_at = record::stamp_offset(bytes);
        let stamped = Cell::new(None);
        let duplicate = Cell::new(false);
        let lsn = self
            .log
            .append_with(bytes.len(), |buf| {
                buf.copy_from_slice(bytes);
                if let Some(at) = stamp_at {
                    let t = crate::server::now_us().max(self.apply.last_stamp_us.get());
                    self.apply.last_stamp_us.set(t);
                    stamped.set(Some(t));
                    buf[at..at + 8].copy_from_slice(&t.to_le_bytes());
                    if let Some((id, seq)) = producer {
                        let dup = !self.state.borrow_mut().take_producer_seq(id, seq);
                        duplicate.set(dup);
                        if let (Some(txn), false) = (prepare, dup) {
                            self.undecided.hold(txn, (id, seq));
                        }
                        let flag =
                            at - record::EVENTS_STAMP_OFFSET + record::EVENTS_DUPLICATE_OFFSET;
                        buf[flag] = u8::from(dup);
                    }
                }
            })
            .await
            .map_err(|e| self.fail(e.to_string()))?;
        Ok((lsn, stamped.get(), duplicate.get()))
    }

    /// Largest encoded mutation one log record can hold (all shards share the log options).
    pub fn max_record_bytes(&self) -> usize {
        self.log.max_record_payload_bytes()
    }

    /// The append time of the earliest record waiting to be applied that carries one (events,
    /// commits); `i64::MAX` when none waits. Records appended later get later stamps.
    pub(super) fn min_pending_stamp(&self) -> i64 {
        // Stamps never decrease along the log, and the queue is in LSN order: the first
        // stamped entry holds the earliest stamp.
        self.apply
            .pending
            .borrow()
            .values()
            .find_map(|p| record_stamp(&p.record))
            .unwrap_or(i64::MAX)
    }
}

pub(super) struct Pending {
    pub(super) record: Record,
    /// Told the rows applied; `None` for a Prepare (its Commit reports them).
    pub(super) done: Option<LocalSender<u64>>,
}

/// The append time a record gives the events it applies (`None`: it applies none).
pub(super) fn record_stamp(r: &Record) -> Option<i64> {
    match r {
        Record::Apply(Mutation::Events(e)) => Some(e.append_time_us),
        Record::Commit(_, stamp) => Some(*stamp),
        _ => None,
    }
}

/// The producer seq of a tagged Events part that was flagged a duplicate at its append.
pub(super) fn duplicate_seq(m: &Mutation) -> Option<(u64, u64)> {
    match m {
        Mutation::Events(e) if e.duplicate => e.producer,
        _ => None,
    }
}
