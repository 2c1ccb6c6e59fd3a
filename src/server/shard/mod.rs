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

mod apply;
mod backfill;
mod checkpoint;
mod context;
mod ddl;
mod knn;
mod peer;
mod producers;
mod read;
pub use read::RecentRows;
mod txn;
mod views;

use apply::Applier;
use apply::Pending;
use backfill::ViewJobs;
use checkpoint::Checkpointer;
use peer::Peers;
use producers::Undecided;
use txn::{LinkIn, Links};

pub use context::{ContextOp, ContextVisit, HoldId, OpAnswer, VisitAnswer};
pub use knn::{KnnAsk, KnnHits};

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::rc::Rc;

use glommio::channels::channel_mesh::Senders;
use glommio::sync::Semaphore;
use tarn_core::catalog::Catalog;
use tarn_core::state::ShardState;
use tarn_net::Column;

pub use super::error::ServerError;
use tarn_storage::Log;
use tarn_types::Value;

use super::mesh::{ShardMsg, ShardReply};
use super::stats::OpHistograms;
use crate::config::Config;

/// Per key: the as-of time of its values, the aggregates' values and the newest event time
/// held.
pub type FeatureRows = Vec<(i64, Vec<Value>, Option<i64>)>;

/// Everything a shard owns. Shared within its executor as `Rc<Shard>`; never sent.
///
/// The fields that belong to one job are grouped: [`Applier`] (the apply queue: records
/// applied strictly in LSN order), [`Links`] (multi-shard batches, as coordinator and as
/// participant), [`Peers`] (calls to other shards), [`Checkpointer`] and [`ViewJobs`]
/// (back-fill routing and history scans). Each group's methods live in the file of its name.
pub struct Shard {
    pub id: u32,
    /// Moving average of the time an index step took per row (ns; 0 until one ran): sizes
    /// the next step (`knn::Shard::index_step_rows`).
    index_step_ns_per_row: Cell<u64>,
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
    apply: Applier,
    /// Context calls holding the state (see `context`).
    holds: context::Holds,
    /// Numbers the context calls this shard coordinates (their hold ids).
    context_calls: Cell<u64>,
    /// Producer seqs held by prepared parts not committed yet.
    undecided: Undecided,
    links: Links,
    peers: Peers,
    checkpoints: Checkpointer,
    view_jobs: ViewJobs,
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
}

impl Shard {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: u32,
        count: u32,
        cfg: Rc<Config>,
        data_dir: PathBuf,
        catalog: Catalog,
        mut state: ShardState,
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
        // Indexes come back with the checkpoint and the log; a dropped one goes now, a
        // missing one is created by a logged record before the shard serves (server start-up).
        knn::sync_indexes(&mut state, &catalog);
        let link_in = (0..count)
            .map(|c| LinkIn {
                expected: state.txns().hwm(c) + 1,
                waiting: BTreeMap::new(),
            })
            .collect();
        Shard {
            id,
            index_step_ns_per_row: Cell::new(0),
            count,
            cpu: crate::checks::pinned_cpu(),
            shard_dir: data_dir.join(format!("shard-{id}")),
            cfg,
            data_dir,
            catalog: RefCell::new(Rc::new(catalog)),
            columns_cache: RefCell::new(HashMap::new()),
            state: RefCell::new(state),
            log,
            apply: Applier::new(next_apply_lsn, last_stamp_us),
            holds: context::Holds::default(),
            context_calls: Cell::new(0),
            undecided: Undecided::default(),
            links: Links::new(link_next, link_in),
            peers: Peers::new(id, senders, reply_senders),
            checkpoints: Checkpointer::new(checkpoint_lsn),
            view_jobs: ViewJobs::new(),
            stats: RefCell::new(OpHistograms::new()),
            connections: Cell::new(0),
            conn_tasks: Cell::new(0),
            conn_done: Semaphore::new(0),
            ddl_lock: Semaphore::new(1),
            shutdown: Rc::new(Semaphore::new(0)),
        }
    }

    /// A fresh hold id for a context call this shard coordinates.
    pub fn next_hold_id(&self) -> HoldId {
        let n = self.context_calls.get() + 1;
        self.context_calls.set(n);
        (self.id, n)
    }

    pub fn catalog(&self) -> Rc<Catalog> {
        self.catalog.borrow().clone()
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutdown.try_acquire(1).is_err()
    }
}
