//! One shard: the executor-local owner of a slice of the key space and of everything stored
//! for it (rows, log, checkpoints). Only this executor touches its state; other shards reach
//! it through [`super::mesh`] messages.
//!
//! Write path on the owner: encode the mutation, append it to the log (group commit), and
//! apply it to the in-memory state strictly in LSN order once it is durable (sync mode) or at
//! once (async mode). Readers therefore never see a write that a crash could take back in
//! sync mode, and replaying the log reproduces the exact same state.
//!
//! A batch that spans shards is prepared on every owner, then committed (see
//! `tarn_core::txn` for the protocol and its recovery rule): [`Shard::write_txn`] coordinates,
//! [`Shard::prepare_local`] and [`Shard::commit_local`] are the owner's side.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::rc::Rc;

use glommio::channels::channel_mesh::Senders;
use glommio::channels::local_channel::{self, LocalSender};
use glommio::sync::Semaphore;
use tarn_core::catalog::Catalog;
use tarn_core::record::{self, Mutation, Record, TxnId, TxnPart};
use tarn_core::sql::Statement;
use tarn_core::state::ShardState;
use tarn_net::{Column, ErrorCode, ShardStats};
use tarn_storage::{checkpoint, Durability, Log};
use tarn_types::{shard_for, Value};

use super::mesh::{MsgBody, ReplyBody, ShardMsg, ShardReply};
use super::stats::OpHistograms;
use crate::config::Config;
use crate::datadir::CATALOG_FILE;

/// Rows archived per checkpoint step before the shard yields to serve requests. Smaller
/// steps cut the longest pause a checkpoint adds to a request (about 10 ms per 16k rows of
/// ~100 bytes on the development VM) at the cost of more yields.
const CHECKPOINT_STEP_ROWS: usize = 4096;

/// Pause between checkpoint steps, during which the shard serves requests. A step of
/// [`CHECKPOINT_STEP_ROWS`] takes about 1.5 ms, so this caps a checkpoint at roughly 90% of an
/// idle core and leaves requests a turn at least every step.
const CHECKPOINT_STEP_PAUSE: std::time::Duration = std::time::Duration::from_micros(150);

/// glommio shares of the checkpoint task queue (the default queue, which serves requests, has
/// 1000). Under full load a checkpoint gets ~1/11 of the core; idle time it gets all of.
const CHECKPOINT_SHARES: usize = 100;

/// An error to send to a client: its protocol code and a message.
pub type Failure = (ErrorCode, String);

/// Per key: the as-of time of its values, the aggregates' values and the newest event time
/// held.
pub type FeatureRows = Vec<(i64, Vec<Value>, Option<i64>)>;

struct Pending {
    record: Record,
    /// Told the rows applied; `None` for a Prepare (its Commit reports them).
    done: Option<LocalSender<u64>>,
}

/// The receiving end of one coordinator's link: Prepare records are appended strictly in link
/// sequence order, whatever order their messages arrive in.
#[derive(Default)]
struct LinkIn {
    /// Next link seq to append.
    expected: u64,
    /// Prepares that arrived early, waiting for their turn.
    waiting: BTreeMap<u64, LocalSender<()>>,
}

/// Everything a shard owns. Shared within its executor as `Rc<Shard>`; never sent.
pub struct Shard {
    pub id: u32,
    pub count: u32,
    pub cpu: Option<usize>,
    pub cfg: Rc<Config>,
    pub data_dir: PathBuf,
    pub shard_dir: PathBuf,
    catalog: RefCell<Rc<Catalog>>,
    /// GET reply columns per table id; cleared whenever the catalog changes.
    columns_cache: RefCell<HashMap<u32, Rc<[Column]>>>,
    state: RefCell<ShardState>,
    log: Rc<Log>,
    /// Logged mutations waiting to be applied, by LSN. Applied strictly in LSN order.
    pending: RefCell<BTreeMap<u64, Pending>>,
    next_apply_lsn: Cell<u64>,
    /// Set when the log failed: the shard stops accepting writes (an fdatasync error cannot be
    /// retried safely) but keeps serving reads.
    failed: RefCell<Option<String>>,
    senders: Senders<ShardMsg>,
    reply_senders: Senders<ShardReply>,
    waiters: RefCell<HashMap<u64, LocalSender<ReplyBody>>>,
    next_corr: Cell<u64>,
    pub stats: RefCell<OpHistograms>,
    pub connections: Cell<u32>,
    /// Connection tasks still running (accepted or being refused); shutdown waits for zero.
    pub conn_tasks: Cell<u32>,
    /// Signalled whenever a connection task ends.
    pub conn_done: Semaphore,
    /// Shard 0 runs one DDL statement at a time.
    ddl_lock: Semaphore,
    /// Closed when the server shuts down: every waiter on it wakes.
    pub shutdown: Rc<Semaphore>,
    /// Signalled once per peer that finished draining its connections.
    peers_drained: Semaphore,
    /// Low-share task queue for background checkpoints: requests in the default queue always
    /// win the CPU, a checkpoint uses what is left (and at least its shares under load).
    checkpoint_queue: glommio::TaskQueueHandle,
    /// One checkpoint at a time: the background one and the final one at shutdown would
    /// otherwise write the same temporary file and remove segments concurrently.
    checkpoint_turn: Semaphore,
    /// A background checkpoint task exists (scheduled or running): don't spawn another.
    checkpoint_scheduled: Cell<bool>,
    checkpoint_lsn: Cell<u64>,
    /// Event batches being coordinated here, by the catalog version they were routed with.
    routing: RefCell<BTreeMap<u64, usize>>,
    /// History scans running (each reads the retained log).
    history_scans: Semaphore,
    /// Append time of the last record applied that carries one (events, commits).
    last_applied_stamp_us: Cell<i64>,
    /// Last append timestamp given to an Events record (µs): stamps never go backwards even
    /// if the wall clock does.
    last_stamp_us: Cell<i64>,
    /// As coordinator: next link seq to give a part sent to each shard.
    link_next: RefCell<Vec<u64>>,
    /// As participant: per coordinator, the ordering of its Prepare records.
    link_in: RefCell<Vec<LinkIn>>,
    /// Multi-shard batches this shard is coordinating now.
    open_txns: Cell<usize>,
    /// Set when a multi-shard batch failed on some owner (a storage failure): its parts stay
    /// set aside until the next start decides them, so further multi-shard batches are
    /// refused rather than piling up more.
    txn_failed: RefCell<Option<String>>,
}

impl Shard {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: u32,
        count: u32,
        cfg: Rc<Config>,
        data_dir: PathBuf,
        catalog: Catalog,
        state: ShardState,
        log: Rc<Log>,
        checkpoint_lsn: u64,
        link_next: Vec<u64>,
        senders: Senders<ShardMsg>,
        reply_senders: Senders<ShardReply>,
    ) -> Shard {
        let next_apply_lsn = log.last_lsn() + 1;
        assert_eq!(link_next.len(), count as usize);
        assert!(
            state.txns().stash().is_empty(),
            "recovery decides every prepared part before serving"
        );
        let last_stamp_us = state.max_append_time_us();
        let link_in = (0..count)
            .map(|c| LinkIn {
                expected: state.txns().hwm(c) + 1,
                waiting: BTreeMap::new(),
            })
            .collect();
        Shard {
            id,
            count,
            cpu: crate::checks::pinned_cpu(),
            shard_dir: data_dir.join(format!("shard-{id}")),
            cfg,
            data_dir,
            catalog: RefCell::new(Rc::new(catalog)),
            columns_cache: RefCell::new(HashMap::new()),
            state: RefCell::new(state),
            log,
            pending: RefCell::new(BTreeMap::new()),
            next_apply_lsn: Cell::new(next_apply_lsn),
            failed: RefCell::new(None),
            senders,
            reply_senders,
            waiters: RefCell::new(HashMap::new()),
            next_corr: Cell::new(1),
            stats: RefCell::new(OpHistograms::new()),
            connections: Cell::new(0),
            conn_tasks: Cell::new(0),
            conn_done: Semaphore::new(0),
            ddl_lock: Semaphore::new(1),
            shutdown: Rc::new(Semaphore::new(0)),
            peers_drained: Semaphore::new(0),
            checkpoint_turn: Semaphore::new(1),
            checkpoint_queue: glommio::executor().create_task_queue(
                glommio::Shares::Static(CHECKPOINT_SHARES),
                glommio::Latency::NotImportant,
                "tarn-checkpoint",
            ),
            checkpoint_scheduled: Cell::new(false),
            checkpoint_lsn: Cell::new(checkpoint_lsn),
            last_stamp_us: Cell::new(last_stamp_us),
            last_applied_stamp_us: Cell::new(i64::MIN),
            history_scans: Semaphore::new(super::limits::MAX_HISTORY_SCANS_PER_SHARD),
            routing: RefCell::new(BTreeMap::new()),
            link_next: RefCell::new(link_next),
            link_in: RefCell::new(link_in),
            open_txns: Cell::new(0),
            txn_failed: RefCell::new(None),
        }
    }

    pub fn catalog(&self) -> Rc<Catalog> {
        self.catalog.borrow().clone()
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutdown.try_acquire(1).is_err()
    }

    // ---------------------------------------------------------------- writes

    /// Logs and applies `m` on shard `target`, returning the rows it applied (or deleted).
    /// `record` is `m` encoded with [`record::encode`].
    pub async fn write(
        self: &Rc<Self>,
        target: u32,
        m: Mutation,
        record: Vec<u8>,
    ) -> Result<u64, Failure> {
        if target == self.id {
            self.write_local(m, &record).await
        } else {
            self.call_written(
                target,
                MsgBody::Write {
                    mutation: m,
                    record,
                },
            )
            .await
        }
    }

    async fn write_local(self: &Rc<Self>, m: Mutation, record: &[u8]) -> Result<u64, Failure> {
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
        self.log_and_apply(Record::Apply(m), record, wait_durable)
            .await
    }

    /// Appends `bytes` (the encoding of `rec`), waits until it is durable if asked, and
    /// returns the rows `rec` applied once it is applied in LSN order.
    async fn log_and_apply(
        self: &Rc<Self>,
        mut rec: Record,
        bytes: &[u8],
        wait_durable: bool,
    ) -> Result<u64, Failure> {
        self.check_writable()?;
        let lsn = match &mut rec {
            Record::Apply(m) => self.append_record(m, bytes).await?,
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
        self.pending.borrow_mut().insert(
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
        applied.recv().await.ok_or_else(|| {
            (
                ErrorCode::Storage,
                format!("shard {}: write was not applied", self.id),
            )
        })
    }

    fn check_writable(&self) -> Result<(), Failure> {
        match self.failed.borrow().as_ref() {
            Some(reason) => Err((
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
    fn drain_applies(self: &Rc<Self>) {
        let limit = match self.cfg.durability {
            Durability::Sync => self.log.durable_lsn(),
            Durability::Async => u64::MAX,
        };
        let catalog = self.catalog();
        loop {
            let next = self.next_apply_lsn.get();
            let p = {
                let mut pending = self.pending.borrow_mut();
                match pending.get(&next) {
                    Some(p) if next <= limit || matches!(p.record, Record::Commit(..)) => {
                        pending.remove(&next).expect("present")
                    }
                    _ => break,
                }
            };
            if let Some(stamp) = record_stamp(&p.record) {
                debug_assert!(
                    stamp >= self.last_applied_stamp_us.get(),
                    "stamps follow the apply order"
                );
                self.last_applied_stamp_us.set(stamp);
            }
            let n = self
                .state
                .borrow_mut()
                .apply_record(&catalog, self.id, next, p.record)
                .unwrap_or_else(|e| panic!("shard {}: record {next}: {e}", self.id));
            self.next_apply_lsn.set(next + 1);
            // The writer may have gone (its connection closed): the write still happened.
            if let Some(done) = p.done {
                let _ = done.try_send(n);
            }
        }
        self.maybe_checkpoint();
    }

    // ---------------------------------------------------------------- multi-shard batches

    /// Coordinates a batch that spans shards: `parts` = (owner, its part, the part encoded
    /// with [`record::encode`]), ascending by owner, at least two. Prepares every part, and
    /// once all are durable commits them; answers the rows applied after every owner applied
    /// its part. On an error before every part is durable the batch is not applied now; its
    /// prepared parts stay set aside and the next start commits them only if every part had
    /// reached the disk (see `tarn_core::txn`).
    pub async fn write_txn(
        self: &Rc<Self>,
        parts: Vec<(u32, Mutation, Vec<u8>)>,
    ) -> Result<u64, Failure> {
        assert!(
            parts.len() >= 2,
            "a multi-shard batch has at least two parts"
        );
        assert!(
            parts.windows(2).all(|w| w[0].0 < w[1].0),
            "parts ascend by owner"
        );
        if let Some(reason) = self.txn_failed.borrow().as_ref() {
            return Err((
                ErrorCode::Storage,
                format!(
                    "shard {} refuses multi-shard batches since one failed ({reason}); restart the server",
                    self.id
                ),
            ));
        }
        if self.open_txns.get() >= super::limits::MAX_OPEN_TXNS_PER_SHARD {
            return Err((
                ErrorCode::Busy,
                format!(
                    "shard {} is coordinating {} multi-shard batches, the limit; retry later",
                    self.id,
                    super::limits::MAX_OPEN_TXNS_PER_SHARD
                ),
            ));
        }
        // Sequence numbers are given out here, with no await between this and spawning the
        // prepares: every owner appends them in this order (see LinkIn).
        let txn = {
            let mut next = self.link_next.borrow_mut();
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
        self.open_txns.set(self.open_txns.get() + 1);
        let result = self.run_txn(txn, parts).await;
        self.open_txns.set(self.open_txns.get() - 1);
        if let Err((_, reason)) = &result {
            self.txn_failed.borrow_mut().get_or_insert(reason.clone());
        }
        result
    }

    async fn run_txn(
        self: &Rc<Self>,
        txn: TxnPart,
        parts: Vec<(u32, Mutation, Vec<u8>)>,
    ) -> Result<u64, Failure> {
        let prepares: Vec<_> = parts
            .into_iter()
            .map(|(owner, mutation, rec)| {
                let record = record::encode_prepare(&txn, &rec);
                let txn = txn.clone();
                let me = self.clone();
                glommio::spawn_local(async move {
                    if owner == me.id {
                        me.prepare_local(txn, mutation, record).await
                    } else {
                        match me
                            .call(
                                owner,
                                MsgBody::Prepare {
                                    txn,
                                    mutation,
                                    record,
                                },
                            )
                            .await?
                        {
                            ReplyBody::Prepared => Ok(()),
                            other => Err(unexpected(other)),
                        }
                    }
                })
            })
            .collect();
        // Await every task (dropping one would cancel it mid-way).
        let mut first_err = None;
        for t in prepares {
            if let Err(e) = t.await {
                first_err.get_or_insert(e);
            }
        }
        if let Some(e) = first_err {
            return Err(e);
        }
        let commits: Vec<_> = txn
            .parts
            .iter()
            .map(|&(owner, seq)| {
                let id = TxnId {
                    coordinator: txn.coordinator,
                    seq,
                };
                let me = self.clone();
                glommio::spawn_local(async move {
                    if owner == me.id {
                        me.commit_local(id).await
                    } else {
                        me.call_written(owner, MsgBody::Commit { id }).await
                    }
                })
            })
            .collect();
        sum_all(commits).await
    }

    /// Owner side of a prepare: appends `record` (the Prepare of this shard's part of `txn`)
    /// after every earlier part from the same coordinator, and returns once it is durable
    /// (in both modes: the batch may only commit when every part is durable).
    pub async fn prepare_local(
        self: &Rc<Self>,
        txn: TxnPart,
        mut mutation: Mutation,
        record: Vec<u8>,
    ) -> Result<(), Failure> {
        let id = txn
            .id_on(self.id)
            .expect("a prepare goes only to a participant");
        debug_assert!(self.owns_all(&mutation));
        let c = id.coordinator as usize;
        let turn = {
            let mut links = self.link_in.borrow_mut();
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
        assert_eq!(self.link_in.borrow()[c].expected, id.seq);
        let appended = match self.check_writable() {
            Ok(()) => self.append_record(&mut mutation, &record).await,
            Err(e) => Err(e),
        };
        // The link moves on even on failure: a failed log takes no further record, so no
        // later seq of this link can be logged after the gap.
        {
            let mut links = self.link_in.borrow_mut();
            let link = &mut links[c];
            link.expected = id.seq + 1;
            if let Some(tx) = link.waiting.remove(&(id.seq + 1)) {
                let _ = tx.try_send(());
            }
        }
        let lsn = appended?;
        self.pending.borrow_mut().insert(
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
    pub async fn commit_local(self: &Rc<Self>, id: TxnId) -> Result<u64, Failure> {
        let bytes = record::encode_record_to_vec(&Record::Commit(id, 0));
        // Not waiting for durability: the batch is decided (every part durable), so recovery
        // commits it even if this record is lost.
        self.log_and_apply(Record::Commit(id, 0), &bytes, false)
            .await
    }

    fn fail(&self, reason: String) -> Failure {
        tracing::error!(
            shard = self.id,
            "log failure, shard stops accepting writes: {reason}"
        );
        let mut failed = self.failed.borrow_mut();
        if failed.is_none() {
            *failed = Some(reason.clone());
        }
        (ErrorCode::Storage, format!("shard {}: {reason}", self.id))
    }

    fn owns_all(&self, m: &Mutation) -> bool {
        m.owned_by(&self.catalog(), self.id, self.count)
    }

    /// Appends `bytes` (the encoding of `m`, plain or inside a Prepare). An Events part gets
    /// its append timestamp here, at the moment it gets its LSN (never decreasing along the
    /// log), in the logged bytes and in `m` alike.
    async fn append_record(&self, m: &mut Mutation, bytes: &[u8]) -> Result<u64, Failure> {
        let producer = match m {
            Mutation::Events(e) => e.producer,
            _ => None,
        };
        let (lsn, stamp, dup) = self.append_stamped_tagged(bytes, producer).await?;
        if let Mutation::Events(e) = m {
            e.append_time_us = stamp.expect("an Events record has a stamp slot");
            e.duplicate = dup;
        }
        Ok(lsn)
    }

    /// Appends `bytes`; a record with a stamp slot (Events, Commit: `record::stamp_offset`)
    /// gets its append time written there at the moment it gets its LSN, from a clock that
    /// never goes backwards on this shard. Returns the LSN and the stamp.
    async fn append_stamped(&self, bytes: &[u8]) -> Result<(u64, Option<i64>), Failure> {
        self.append_stamped_tagged(bytes, None)
            .await
            .map(|(lsn, stamp, _)| (lsn, stamp))
    }

    /// [`Shard::append_stamped`] of an Events part tagged `producer`: at the same moment, takes
    /// the producer's seq and writes the outcome into the part's duplicate flag (see
    /// `tarn_core::producer`). Returns the LSN, the stamp and whether the part is a duplicate.
    async fn append_stamped_tagged(
        &self,
        bytes: &[u8],
        producer: Option<(u64, u64)>,
    ) -> Result<(u64, Option<i64>, bool), Failure> {
        let stamp_at = record::stamp_offset(bytes);
        let stamped = Cell::new(None);
        let duplicate = Cell::new(false);
        let lsn = self
            .log
            .append_with(bytes.len(), |buf| {
                buf.copy_from_slice(bytes);
                if let Some(at) = stamp_at {
                    let t = super::now_us().max(self.last_stamp_us.get());
                    self.last_stamp_us.set(t);
                    stamped.set(Some(t));
                    buf[at..at + 8].copy_from_slice(&t.to_le_bytes());
                    if let Some((id, seq)) = producer {
                        let dup = !self.state.borrow_mut().take_producer_seq(id, seq);
                        duplicate.set(dup);
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

    // ---------------------------------------------------------------- reads

    /// Calls `f` with the stored rows for `keys` (borrowed; `f` must not await).
    pub fn with_local_rows<R>(
        &self,
        table_id: u32,
        keys: &[Vec<u8>],
        f: impl FnOnce(&mut dyn ExactSizeIterator<Item = Option<&[Value]>>) -> R,
    ) -> R {
        let state = self.state.borrow();
        let mut rows = keys.iter().map(|k| {
            debug_assert_eq!(
                shard_for(k, self.count),
                self.id,
                "GET routed to a non-owner"
            );
            state.get(table_id, k)
        });
        f(&mut rows)
    }

    /// The reply column list of a table, built once per catalog version.
    pub fn reply_columns(&self, def: &tarn_core::schema::TableDef) -> Rc<[Column]> {
        if let Some(c) = self.columns_cache.borrow().get(&def.id) {
            return c.clone();
        }
        let cols: Rc<[Column]> = def
            .columns
            .iter()
            .map(|c| Column {
                name: c.name.clone(),
                ty: c.ty,
            })
            .collect();
        self.columns_cache.borrow_mut().insert(def.id, cols.clone());
        cols
    }

    pub fn get_local(&self, table_id: u32, keys: &[Vec<u8>]) -> Vec<Option<Vec<Value>>> {
        self.with_local_rows(table_id, keys, |rows| {
            rows.map(|r| r.map(<[Value]>::to_vec)).collect()
        })
    }

    pub async fn get(
        self: &Rc<Self>,
        target: u32,
        table_id: u32,
        keys: Vec<Vec<u8>>,
    ) -> Result<Vec<Option<Vec<Value>>>, Failure> {
        if target == self.id {
            return Ok(self.get_local(table_id, &keys));
        }
        match self.call(target, MsgBody::Get { table_id, keys }).await? {
            ReplyBody::Rows(rows) => Ok(rows),
            other => Err(unexpected(other)),
        }
    }

    // ---------------------------------------------------------------- DDL

    /// Runs a DDL statement: shard 0 serialises DDL, makes the new catalog durable, then
    /// installs it on every shard before answering.
    pub async fn ddl(self: &Rc<Self>, stmt: Statement) -> Result<String, Failure> {
        if self.id != 0 {
            return match self.call(0, MsgBody::Ddl(stmt)).await? {
                ReplyBody::Done(msg) => Ok(msg),
                other => Err(unexpected(other)),
            };
        }
        let _turn = self.ddl_lock.acquire_permit(1).await.map_err(|_| {
            (
                ErrorCode::ShuttingDown,
                "server is shutting down".to_string(),
            )
        })?;
        let current = self.catalog();
        let (next, message) = current.apply_ddl(&stmt).map_err(super::core_failure)?;
        if next.version == current.version {
            return Ok(message);
        }
        tarn_storage::write_file_atomic(&self.data_dir, CATALOG_FILE, &next.to_bytes())
            .await
            .map_err(|e| (ErrorCode::Storage, format!("cannot write the catalog: {e}")))?;
        for peer in 0..self.count {
            if peer != self.id {
                match self.call(peer, MsgBody::Catalog(next.clone())).await? {
                    ReplyBody::Done(_) => {}
                    other => return Err(unexpected(other)),
                }
            }
        }
        let created_view = match &stmt {
            Statement::CreateView { spec, .. } => next.view(&spec.name).map(|v| v.id),
            _ => None,
        };
        self.install_catalog(next);
        if let Some(view_id) = created_view {
            // Every shard routes new events to the view now; what came before is in the
            // streams' home copies.
            let n = self.backfill_all(view_id).await?;
            return Ok(format!("{message} (back-filled {n} events)"));
        }
        Ok(message)
    }

    fn install_catalog(&self, next: Catalog) {
        let old = self.catalog();
        {
            let mut state = self.state.borrow_mut();
            for def in old.tables() {
                if next.table_by_id(def.id).is_none() {
                    state.drop_table(def.id);
                }
            }
            for def in old.streams() {
                if next.stream_by_id(def.id).is_none() {
                    state.drop_stream(def.id);
                }
            }
            for def in old.views() {
                if next.view_by_id(def.id).is_none() {
                    state.drop_view(def.id);
                }
            }
        }
        *self.catalog.borrow_mut() = Rc::new(next);
        self.columns_cache.borrow_mut().clear();
    }

    // ---------------------------------------------------------------- stats

    pub fn local_stats(&self) -> ShardStats {
        ShardStats {
            shard: self.id,
            cpu: self.cpu.map_or(-1, |c| c as i32),
            rows: self.state.borrow().total_rows(),
            log_bytes: self.log.disk_bytes(),
            durable_lsn: self.log.durable_lsn(),
            connections: self.connections.get(),
            ops: self.stats.borrow().snapshot(),
        }
    }

    // ---------------------------------------------------------------- feature views

    /// Reads feature view `view_id` for `keys` on shard `target` as of `as_of_us`.
    pub async fn features(
        self: &Rc<Self>,
        target: u32,
        view_id: u32,
        keys: Vec<Vec<u8>>,
    ) -> Result<FeatureRows, Failure> {
        if target == self.id {
            return self.features_local(view_id, &keys).await;
        }
        match self
            .call(target, MsgBody::Features { view_id, keys })
            .await?
        {
            ReplyBody::Features(rows) => Ok(rows),
            other => Err(unexpected(other)),
        }
    }

    /// Back-fills a new feature view on every shard (each from its own log); returns the events
    /// sent to the view.
    async fn backfill_all(self: &Rc<Self>, view_id: u32) -> Result<u64, Failure> {
        // First, every batch routed before the view existed must have reached its home log.
        let version = self.catalog().version;
        for peer in 0..self.count {
            if peer == self.id {
                self.quiesce(version).await?;
            } else {
                match self.call(peer, MsgBody::Quiesce { version }).await? {
                    ReplyBody::Done(_) => {}
                    other => return Err(unexpected(other)),
                }
            }
        }
        let tasks: Vec<_> = (0..self.count)
            .map(|peer| {
                let me = self.clone();
                glommio::spawn_local(async move {
                    if peer == me.id {
                        me.backfill_local(view_id).await
                    } else {
                        me.call_written(peer, MsgBody::Backfill { view_id }).await
                    }
                })
            })
            .collect();
        sum_all(tasks).await
    }

    /// Counts an event batch this shard coordinates, routed with catalog `version`, until the
    /// guard is dropped (see [`Shard::quiesce`]).
    pub fn route_guard(self: &Rc<Self>, version: u64) -> RouteGuard {
        *self.routing.borrow_mut().entry(version).or_insert(0) += 1;
        RouteGuard {
            shard: self.clone(),
            version,
        }
    }

    /// Waits until every event batch this shard coordinates with a catalog version older than
    /// `version` is finished (at most [`super::limits::QUIESCE_TIMEOUT`]).
    async fn quiesce(self: &Rc<Self>, version: u64) -> Result<(), Failure> {
        let deadline = std::time::Instant::now() + super::limits::QUIESCE_TIMEOUT;
        loop {
            let old = self.routing.borrow().range(..version).any(|(_, n)| *n > 0);
            if !old {
                return Ok(());
            }
            if std::time::Instant::now() >= deadline {
                return Err((
                    ErrorCode::Busy,
                    format!(
                        "shard {}: event batches routed before the new view are still in flight",
                        self.id
                    ),
                ));
            }
            glommio::timer::sleep(std::time::Duration::from_millis(1)).await;
        }
    }

    /// Sends the view's owners every event of its stream whose home copy is in this shard's log
    /// and that was routed before the view existed (`tarn_core::history::BackfillScan`), as
    /// ordinary writes tagged with a producer of this (view, shard): each is logged, stamped
    /// and applied by its owner like a live event (appended now: events whose bucket already
    /// left the window are late).
    async fn backfill_local(self: &Rc<Self>, view_id: u32) -> Result<u64, Failure> {
        let catalog = self.catalog();
        let Some(view) = catalog.view_by_id(view_id) else {
            return Ok(0);
        };
        self.log
            .flush()
            .await
            .map_err(|e| self.fail(e.to_string()))?;
        let end = self.log.durable_lsn();
        let producer_id =
            0xBAC4_F111_0000_0000u64 | (u64::from(view_id) << 16) | u64::from(self.id);
        let mut seq = 0u64;
        let mut scan = tarn_core::history::BackfillScan::new(view, self.id);
        let mut from = self.log.first_lsn();
        let mut sent = 0u64;
        while from <= end {
            // Read a chunk of rows, then send them (writes cannot happen inside the reader).
            let mut by_owner: Vec<Vec<(u64, Vec<Value>)>> = vec![Vec::new(); self.count as usize];
            let mut rows = 0usize;
            let mut last = 0u64;
            let mut bad = None;
            let mut key = Vec::new();
            self.log
                .read_records(from, |lsn, payload| {
                    if lsn > end {
                        return false;
                    }
                    last = lsn;
                    let r = scan.feed(payload, &mut |row: &[Value]| {
                        key.clear();
                        if tarn_types::encode_key(&row[view.key_column], &mut key).is_ok() {
                            by_owner[shard_for(&key, self.count) as usize].push((1, row.to_vec()));
                            rows += 1;
                        }
                    });
                    if let Err(e) = r {
                        bad = Some(e);
                        return false;
                    }
                    rows < super::limits::BACKFILL_BATCH_EVENTS * self.count as usize
                })
                .await
                .map_err(|e| (ErrorCode::Storage, format!("shard {}: {e}", self.id)))?;
            if let Some(e) = bad {
                return Err((ErrorCode::Internal, format!("shard {}: {e}", self.id)));
            }
            for (owner, rows) in by_owner.into_iter().enumerate() {
                for chunk in rows.chunks(super::limits::BACKFILL_BATCH_EVENTS) {
                    seq += 1;
                    let m = Mutation::Events(tarn_core::record::Events {
                        stream_id: view.stream_id,
                        append_time_us: 0,
                        producer: Some((producer_id, seq)),
                        duplicate: false,
                        routing_version: catalog.version,
                        targets: vec![view_id],
                        rows: chunk.to_vec(),
                    });
                    let record = record::encode_to_vec(&m);
                    sent += chunk.len() as u64;
                    self.write(owner as u32, m, record).await?;
                }
            }
            if last == 0 || last >= end {
                break;
            }
            from = last + 1;
        }
        Ok(sent)
    }

    /// Point-in-time history on shard `target` (see [`Shard::history_local`]).
    pub async fn history(
        self: &Rc<Self>,
        target: u32,
        view_id: u32,
        queries: Vec<(Vec<u8>, i64)>,
    ) -> Result<FeatureRows, Failure> {
        if target == self.id {
            return self.history_local(view_id, queries).await;
        }
        match self
            .call(target, MsgBody::History { view_id, queries })
            .await?
        {
            ReplyBody::Features(rows) => Ok(rows),
            other => Err(unexpected(other)),
        }
    }

    /// Answers `(key, as_of)` queries by replaying this shard's retained log with the online
    /// aggregation code (`tarn_core::history`): exactly what an online read as of that time
    /// returned. The replay runs in the low-priority task queue, at most
    /// [`super::limits::MAX_HISTORY_SCANS_PER_SHARD`] at a time.
    async fn history_local(
        self: &Rc<Self>,
        view_id: u32,
        queries: Vec<(Vec<u8>, i64)>,
    ) -> Result<FeatureRows, Failure> {
        let catalog = self.catalog();
        let view = catalog.view_by_id(view_id).ok_or_else(|| {
            (
                ErrorCode::UnknownView,
                format!("feature view #{view_id} was dropped"),
            )
        })?;
        let stream = catalog
            .stream_by_id(view.stream_id)
            .expect("a view's stream exists");
        // What the retained log can answer exactly.
        match view.window {
            tarn_core::view::WindowSpec::Lifetime if self.log.first_lsn() > 1 => {
                return Err((
                    ErrorCode::Unsupported,
                    format!(
                        "history of lifetime view {} needs every event since the view was created; shard {}'s log no longer starts at its beginning (older segments were dropped after the retention of the stream)",
                        view.name, self.id
                    ),
                ));
            }
            tarn_core::view::WindowSpec::Sliding { window_us, .. } => {
                let oldest =
                    super::now_us() - stream.retention_us + window_us + stream.max_future_us;
                if self.log.first_lsn() > 1 {
                    if let Some(&(_, t)) = queries.iter().find(|(_, t)| *t < oldest) {
                        return Err((
                            ErrorCode::Unsupported,
                            format!(
                                "as-of time {t} is older than what the retention of stream {} lets history recompute (from {oldest})",
                                stream.name
                            ),
                        ));
                    }
                }
            }
            _ => {}
        }
        // Every record stamped at or before any as-of time (≤ now) is appended: make it durable
        // so the reader sees it.
        self.log
            .flush()
            .await
            .map_err(|e| self.fail(e.to_string()))?;
        let _turn = self.history_scans.acquire_permit(1).await.map_err(|_| {
            (
                ErrorCode::ShuttingDown,
                "server is shutting down".to_string(),
            )
        })?;
        let me = self.clone();
        let task = glommio::spawn_local_into(
            async move {
                let catalog = me.catalog();
                let view = catalog
                    .view_by_id(view_id)
                    .ok_or_else(|| (ErrorCode::UnknownView, "view dropped".to_string()))?;
                let times: Vec<i64> = queries.iter().map(|q| q.1).collect();
                let mut h = tarn_core::history::History::new(&catalog, view, me.id, queries);
                let mut bad = None;
                let first = me.log.first_lsn();
                me.log
                    .read_records(first, |lsn, payload| match h.feed(lsn, payload) {
                        Ok(more) => more,
                        Err(e) => {
                            bad = Some(e);
                            false
                        }
                    })
                    .await
                    .map_err(|e| (ErrorCode::Storage, format!("shard {}: {e}", me.id)))?;
                if let Some(e) = bad {
                    return Err((ErrorCode::Internal, format!("shard {}: {e}", me.id)));
                }
                Ok(times
                    .into_iter()
                    .zip(h.finish())
                    .map(|(t, (vals, newest))| (t, vals, newest))
                    .collect())
            },
            self.checkpoint_queue,
        )
        .map_err(|e| (ErrorCode::Internal, format!("cannot schedule history: {e}")))?;
        task.await
    }

    /// Reads keys this shard owns at its latest consistent point: the as-of time `T` is the
    /// clock (or the last applied stamp, if the clock went back), kept below the stamp of any
    /// record still waiting to be applied. Append times follow the apply order (events take
    /// their record's stamp, or their Commit's), so the state now holds exactly the events
    /// stamped at or before `T`. Every acknowledged write is applied, so it is included.
    async fn features_local(
        self: &Rc<Self>,
        view_id: u32,
        keys: &[Vec<u8>],
    ) -> Result<FeatureRows, Failure> {
        let now = super::now_us() - 1;
        let as_of = now
            .max(self.last_applied_stamp_us.get())
            .min(self.min_pending_stamp().saturating_sub(1));
        debug_assert!(as_of >= self.last_applied_stamp_us.get());
        self.read_features_now(view_id, keys, as_of)
    }

    fn read_features_now(
        &self,
        view_id: u32,
        keys: &[Vec<u8>],
        as_of_us: i64,
    ) -> Result<FeatureRows, Failure> {
        let catalog = self.catalog();
        let view = catalog.view_by_id(view_id).ok_or_else(|| {
            (
                ErrorCode::UnknownView,
                format!("feature view #{view_id} was dropped"),
            )
        })?;
        let stream = catalog
            .stream_by_id(view.stream_id)
            .expect("a view's stream exists while the view does");
        let state = self.state.borrow();
        Ok(keys
            .iter()
            .map(|k| {
                debug_assert_eq!(
                    shard_for(k, self.count),
                    self.id,
                    "FEATURES routed to a non-owner"
                );
                let (vals, newest) = state.read_view(view, stream, k, as_of_us);
                (as_of_us, vals, newest)
            })
            .collect())
    }

    /// The append time of the earliest record waiting to be applied that carries one (events,
    /// commits); `i64::MAX` when none waits. Records appended later get later stamps.
    fn min_pending_stamp(&self) -> i64 {
        // Stamps never decrease along the log, and the queue is in LSN order: the first
        // stamped entry holds the earliest stamp.
        self.pending
            .borrow()
            .values()
            .find_map(|p| record_stamp(&p.record))
            .unwrap_or(i64::MAX)
    }

    /// A stream's counters summed over every shard: (events, newest event time or None).
    pub async fn stream_totals(
        self: &Rc<Self>,
        stream_id: u32,
    ) -> Result<(u64, Option<i64>), Failure> {
        let mut events = 0;
        let mut newest: Option<i64> = None;
        for peer in 0..self.count {
            let c = if peer == self.id {
                self.state.borrow().stream_counters(stream_id)
            } else {
                match self
                    .call(peer, MsgBody::StreamCounters { stream_id })
                    .await?
                {
                    ReplyBody::StreamCounters(c) => c,
                    other => return Err(unexpected(other)),
                }
            };
            if let Some(c) = c {
                events += c.events;
                if c.events > 0 {
                    newest = Some(
                        newest.map_or(c.newest_event_time_us, |n| n.max(c.newest_event_time_us)),
                    );
                }
            }
        }
        Ok((events, newest))
    }

    /// This shard's (keys, window heap bytes, events applied, late events) of a view.
    fn local_view_counters(&self, view_id: u32) -> (u64, u64, u64, u64) {
        let state = self.state.borrow();
        let (keys, bytes) = state.view_memory(view_id);
        let c = state.view_counters(view_id).unwrap_or_default();
        (keys as u64, bytes as u64, c.events, c.late)
    }

    /// A view's counters summed over every shard: (keys, window heap bytes, events, late).
    pub async fn view_totals(self: &Rc<Self>, view_id: u32) -> Result<[u64; 4], Failure> {
        let mut total = [0u64; 4];
        for peer in 0..self.count {
            let (a, b, c, d) = if peer == self.id {
                self.local_view_counters(view_id)
            } else {
                match self.call(peer, MsgBody::ViewCounters { view_id }).await? {
                    ReplyBody::ViewCounters(a, b, c, d) => (a, b, c, d),
                    other => return Err(unexpected(other)),
                }
            };
            for (t, v) in total.iter_mut().zip([a, b, c, d]) {
                *t += v;
            }
        }
        Ok(total)
    }

    pub async fn stats_all(self: &Rc<Self>) -> Result<Vec<ShardStats>, Failure> {
        let mut out = Vec::with_capacity(self.count as usize);
        for peer in 0..self.count {
            if peer == self.id {
                out.push(self.local_stats());
            } else {
                match self.call(peer, MsgBody::Stats).await? {
                    ReplyBody::Stats(s) => out.push(s),
                    other => return Err(unexpected(other)),
                }
            }
        }
        Ok(out)
    }

    // ---------------------------------------------------------------- mesh

    /// Sends `body` to shard `to` and waits for its reply.
    async fn call(self: &Rc<Self>, to: u32, body: MsgBody) -> Result<ReplyBody, Failure> {
        let corr = self.next_corr.get();
        self.next_corr.set(corr + 1);
        let (tx, rx) = local_channel::new_bounded(1);
        self.waiters.borrow_mut().insert(corr, tx);
        let msg = ShardMsg {
            from: self.id,
            corr,
            body,
        };
        if self.senders.send_to(to as usize, msg).await.is_err() {
            self.waiters.borrow_mut().remove(&corr);
            return Err((
                ErrorCode::ShuttingDown,
                format!("shard {to} is not reachable"),
            ));
        }
        match rx.recv().await {
            Some(ReplyBody::Error(code, msg)) => Err((code, msg)),
            Some(body) => Ok(body),
            None => Err((
                ErrorCode::Internal,
                format!("shard {to} dropped the request"),
            )),
        }
    }

    /// [`Shard::call`] of a request answered with `Written(rows)`.
    async fn call_written(self: &Rc<Self>, to: u32, body: MsgBody) -> Result<u64, Failure> {
        match self.call(to, body).await? {
            ReplyBody::Written(n) => Ok(n),
            other => Err(unexpected(other)),
        }
    }

    /// Delivers a reply from another shard to the task waiting for it.
    pub fn deliver(&self, reply: ShardReply) {
        if let Some(tx) = self.waiters.borrow_mut().remove(&reply.corr) {
            let _ = tx.try_send(reply.body);
        }
    }

    /// Handles one request from another shard and sends the reply back.
    pub async fn handle_peer(self: Rc<Self>, msg: ShardMsg) {
        let body = match msg.body {
            MsgBody::Ready { .. } => return,
            MsgBody::Drained => {
                self.peers_drained.signal(1);
                return;
            }
            MsgBody::Write { mutation, record } => {
                assert!(
                    self.owns_all(&mutation),
                    "shard {} received keys it does not own from shard {}",
                    self.id,
                    msg.from
                );
                match self.write_local(mutation, &record).await {
                    Ok(n) => ReplyBody::Written(n),
                    Err((code, text)) => ReplyBody::Error(code, text),
                }
            }
            MsgBody::Prepare {
                txn,
                mutation,
                record,
            } => {
                assert!(
                    self.owns_all(&mutation),
                    "shard {} received keys it does not own from shard {}",
                    self.id,
                    msg.from
                );
                match self.prepare_local(txn, mutation, record).await {
                    Ok(()) => ReplyBody::Prepared,
                    Err((code, text)) => ReplyBody::Error(code, text),
                }
            }
            MsgBody::Commit { id } => match self.commit_local(id).await {
                Ok(n) => ReplyBody::Written(n),
                Err((code, text)) => ReplyBody::Error(code, text),
            },
            MsgBody::Get { table_id, keys } => ReplyBody::Rows(self.get_local(table_id, &keys)),
            MsgBody::Ddl(stmt) => match self.ddl(stmt).await {
                Ok(text) => ReplyBody::Done(text),
                Err((code, text)) => ReplyBody::Error(code, text),
            },
            MsgBody::Catalog(c) => {
                self.install_catalog(c);
                ReplyBody::Done(String::new())
            }
            MsgBody::Stats => ReplyBody::Stats(self.local_stats()),
            MsgBody::Features { view_id, keys } => {
                match self.features_local(view_id, &keys).await {
                    Ok(rows) => ReplyBody::Features(rows),
                    Err((code, text)) => ReplyBody::Error(code, text),
                }
            }
            MsgBody::History { view_id, queries } => {
                match self.history_local(view_id, queries).await {
                    Ok(rows) => ReplyBody::Features(rows),
                    Err((code, text)) => ReplyBody::Error(code, text),
                }
            }
            MsgBody::Quiesce { version } => match self.quiesce(version).await {
                Ok(()) => ReplyBody::Done(String::new()),
                Err((code, text)) => ReplyBody::Error(code, text),
            },
            MsgBody::Backfill { view_id } => match self.backfill_local(view_id).await {
                Ok(n) => ReplyBody::Written(n),
                Err((code, text)) => ReplyBody::Error(code, text),
            },
            MsgBody::ViewCounters { view_id } => {
                let (a, b, c, d) = self.local_view_counters(view_id);
                ReplyBody::ViewCounters(a, b, c, d)
            }
            MsgBody::StreamCounters { stream_id } => {
                ReplyBody::StreamCounters(self.state.borrow().stream_counters(stream_id))
            }
        };
        let reply = ShardReply {
            corr: msg.corr,
            body,
        };
        // The peer is gone only when the whole server is stopping.
        let _ = self.reply_senders.send_to(msg.from as usize, reply).await;
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
                let _ = self.senders.send_to(peer as usize, msg).await;
            }
        }
        let _ = self.peers_drained.acquire(u64::from(self.count - 1)).await;
    }

    // ---------------------------------------------------------------- checkpoints

    fn maybe_checkpoint(self: &Rc<Self>) {
        if self.checkpoint_scheduled.get()
            || self.log.bytes_since(self.checkpoint_lsn.get()) < self.cfg.checkpoint_interval_bytes
        {
            return;
        }
        self.checkpoint_scheduled.set(true);
        let me = self.clone();
        let queue = self.checkpoint_queue;
        let task = glommio::spawn_local_into(
            async move {
                if let Err(e) = me.checkpoint().await {
                    tracing::error!(shard = me.id, "checkpoint failed: {e}");
                }
                me.checkpoint_scheduled.set(false);
            },
            queue,
        );
        match task {
            Ok(t) => {
                t.detach();
            }
            Err(e) => {
                tracing::error!(shard = self.id, "cannot schedule a checkpoint: {e}");
                self.checkpoint_scheduled.set(false);
            }
        };
    }

    /// Writes a checkpoint of everything applied so far and drops the log segments it covers.
    /// The archive is built synchronously, so it is exactly the state at `lsn`.
    pub async fn checkpoint(self: &Rc<Self>) -> Result<(), String> {
        let Ok(_turn) = self.checkpoint_turn.acquire_permit(1).await else {
            return Ok(());
        };
        if self.next_apply_lsn.get() - 1 == self.checkpoint_lsn.get() {
            return Ok(());
        }

        // Incremental and fuzzy (see ShardState::checkpoint_builder): it covers everything
        // applied up to `lsn`, possibly more; replay from `lsn` + 1 is exact because table
        // mutations are idempotent overwrites. Built in short steps so a large state never
        // stalls the shard: requests are served between steps.
        let lsn = self.next_apply_lsn.get() - 1;
        let mut builder = self.state.borrow().checkpoint_builder();
        // The builder captured producer seqs taken by records appended but maybe not durable
        // yet (and, in async mode, applied records not durable yet): the checkpoint must not
        // outlive them, so it is written only once everything appended so far is durable.
        let appended = self.log.last_lsn();
        while !builder.step(&self.state.borrow(), CHECKPOINT_STEP_ROWS) {
            // A short sleep, not a yield: glommio hands a yielding queue the CPU straight back
            // until its 100 ms preempt timer fires; a timer wait lets the executor poll I/O
            // and serve requests between steps.
            glommio::timer::sleep(CHECKPOINT_STEP_PAUSE).await;
        }
        let parts = builder.finish();
        self.log
            .wait_durable(appended)
            .await
            .map_err(|e| e.to_string())?;
        let parts: Vec<&[u8]> = parts.iter().map(|p| p.as_slice()).collect();
        let path = checkpoint::write_parts(&self.shard_dir, lsn, &parts)
            .await
            .map_err(|e| e.to_string())?;
        let removed = self
            .log
            .remove_segments_covered_by(lsn, self.retain_log_since())
            .await
            .map_err(|e| e.to_string())?;
        self.checkpoint_lsn.set(lsn);
        tracing::info!(
            shard = self.id,
            lsn,
            removed_segments = removed,
            "checkpoint {}",
            path.display()
        );
        Ok(())
    }

    /// Log segments sealed after this time are kept even when a checkpoint covers them: the
    /// longest retention of any stream (history reads replay them). `None` without streams.
    fn retain_log_since(&self) -> Option<std::time::SystemTime> {
        let longest = self.catalog().streams().map(|s| s.retention_us).max()?;
        let keep = std::time::Duration::from_micros(u64::try_from(longest).unwrap_or(0));
        Some(
            std::time::SystemTime::now()
                .checked_sub(keep)
                .unwrap_or(std::time::UNIX_EPOCH),
        )
    }

    /// Final flush at shutdown: everything appended becomes durable, a checkpoint makes the
    /// next start fast, and the log is closed.
    pub async fn close(self: &Rc<Self>) -> Result<(), String> {
        self.log.flush().await.map_err(|e| e.to_string())?;
        self.drain_applies();
        if self.failed.borrow().is_none() {
            self.checkpoint().await?;
        }
        self.log.close().await.map_err(|e| e.to_string())
    }
}

/// Awaits every task (dropping one would cancel it half-way) and sums their counts; the first
/// error wins.
async fn sum_all(tasks: Vec<glommio::Task<Result<u64, Failure>>>) -> Result<u64, Failure> {
    let mut total = 0;
    let mut first_err = None;
    for t in tasks {
        match t.await {
            Ok(n) => total += n,
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    first_err.map_or(Ok(total), Err)
}

/// Counts one event batch being routed with a catalog version; see [`Shard::route_guard`].
pub struct RouteGuard {
    shard: Rc<Shard>,
    version: u64,
}

impl Drop for RouteGuard {
    fn drop(&mut self) {
        let mut routing = self.shard.routing.borrow_mut();
        let n = routing.get_mut(&self.version).expect("counted");
        *n -= 1;
        if *n == 0 {
            routing.remove(&self.version);
        }
    }
}

/// The append time a record gives the events it applies (`None`: it applies none).
fn record_stamp(r: &Record) -> Option<i64> {
    match r {
        Record::Apply(Mutation::Events(e)) => Some(e.append_time_us),
        Record::Commit(_, stamp) => Some(*stamp),
        _ => None,
    }
}

fn unexpected(body: ReplyBody) -> Failure {
    let what = match body {
        ReplyBody::Written(_) => "Written",
        ReplyBody::Prepared => "Prepared",
        ReplyBody::Rows(_) => "Rows",
        ReplyBody::Done(_) => "Done",
        ReplyBody::Stats(_) => "Stats",
        ReplyBody::StreamCounters(_) => "StreamCounters",
        ReplyBody::ViewCounters(..) => "ViewCounters",
        ReplyBody::Features(_) => "Features",
        ReplyBody::Error(..) => "Error",
    };
    (
        ErrorCode::Internal,
        format!("unexpected shard reply {what}"),
    )
}
