//! One shard: the executor-local owner of a slice of the key space and of everything stored
//! for it (rows, log, checkpoints). Only this executor touches its state; other shards reach
//! it through [`super::mesh`] messages.
//!
//! Write path on the owner: encode the mutation, append it to the log (group commit), and
//! apply it to the in-memory state strictly in LSN order once it is durable (sync mode) or at
//! once (async mode). Readers therefore never see a write that a crash could take back in
//! sync mode, and replaying the log reproduces the exact same state.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::rc::Rc;

use glommio::channels::channel_mesh::Senders;
use glommio::channels::local_channel::{self, LocalSender};
use glommio::sync::Semaphore;
use tarn_core::catalog::Catalog;
use tarn_core::record::{self, Mutation};
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

struct Pending {
    mutation: Mutation,
    done: LocalSender<u64>,
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
        senders: Senders<ShardMsg>,
        reply_senders: Senders<ShardReply>,
    ) -> Shard {
        let next_apply_lsn = log.last_lsn() + 1;
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
            match self
                .call(
                    target,
                    MsgBody::Write {
                        mutation: m,
                        record,
                    },
                )
                .await?
            {
                ReplyBody::Written(n) => Ok(n),
                other => Err(unexpected(other)),
            }
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
        if let Some(reason) = self.failed.borrow().as_ref() {
            return Err((
                ErrorCode::Storage,
                format!("shard {} refuses writes: {reason}", self.id),
            ));
        }
        let lsn = self
            .log
            .append(record)
            .await
            .map_err(|e| self.fail(e.to_string()))?;
        let (done, applied) = local_channel::new_bounded(1);
        self.pending
            .borrow_mut()
            .insert(lsn, Pending { mutation: m, done });
        if self.cfg.durability == Durability::Sync {
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

    /// Applies every pending mutation that is next in LSN order and allowed (durable in sync
    /// mode). Synchronous: whoever calls it applies everything ready, in order.
    fn drain_applies(self: &Rc<Self>) {
        let limit = match self.cfg.durability {
            Durability::Sync => self.log.durable_lsn(),
            Durability::Async => u64::MAX,
        };
        let catalog = self.catalog();
        loop {
            let next = self.next_apply_lsn.get();
            if next > limit {
                break;
            }
            let Some(p) = self.pending.borrow_mut().remove(&next) else {
                break;
            };
            let n = self.state.borrow_mut().apply_owned(&catalog, p.mutation);
            self.next_apply_lsn.set(next + 1);
            // The writer may have gone (its connection closed): the write still happened.
            let _ = p.done.try_send(n);
        }
        self.maybe_checkpoint();
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
        match m {
            Mutation::Upsert { rows, .. } => rows
                .iter()
                .all(|(k, _)| shard_for(k, self.count) == self.id),
            Mutation::Delete { keys, .. } => {
                keys.iter().all(|k| shard_for(k, self.count) == self.id)
            }
        }
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
        self.install_catalog(next);
        Ok(message)
    }

    fn install_catalog(&self, next: Catalog) {
        let old = self.catalog();
        {
            let mut state = self.state.borrow_mut();
            for def in old.tables.values() {
                if next.table_by_id(def.id).is_none() {
                    state.drop_table(def.id);
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
        if self.cfg.durability == Durability::Async {
            // The checkpoint must not get ahead of a log whose tail is still in memory.
            self.log.flush().await.map_err(|e| e.to_string())?;
        }
        // Incremental and fuzzy (see ShardState::checkpoint_builder): it covers everything
        // applied up to `lsn`, possibly more; replay from `lsn` + 1 is exact because table
        // mutations are idempotent overwrites. Built in short steps so a large state never
        // stalls the shard: requests are served between steps.
        let lsn = self.next_apply_lsn.get() - 1;
        let mut builder = self.state.borrow().checkpoint_builder();
        while !builder.step(&self.state.borrow(), CHECKPOINT_STEP_ROWS) {
            // A short sleep, not a yield: glommio hands a yielding queue the CPU straight back
            // until its 100 ms preempt timer fires; a timer wait lets the executor poll I/O
            // and serve requests between steps.
            glommio::timer::sleep(CHECKPOINT_STEP_PAUSE).await;
        }
        let parts = builder.finish();
        let parts: Vec<&[u8]> = parts.iter().map(|p| p.as_slice()).collect();
        let path = checkpoint::write_parts(&self.shard_dir, lsn, &parts)
            .await
            .map_err(|e| e.to_string())?;
        let removed = self
            .log
            .remove_segments_covered_by(lsn)
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

fn unexpected(body: ReplyBody) -> Failure {
    let what = match body {
        ReplyBody::Written(_) => "Written",
        ReplyBody::Rows(_) => "Rows",
        ReplyBody::Done(_) => "Done",
        ReplyBody::Stats(_) => "Stats",
        ReplyBody::Error(..) => "Error",
    };
    (
        ErrorCode::Internal,
        format!("unexpected shard reply {what}"),
    )
}
