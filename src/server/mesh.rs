//! Messages between shards. They travel over bounded glommio channel meshes created at
//! start-up: one mesh carries requests, the other replies, so a shard answering a request can
//! never be blocked behind its own outstanding requests.
//!
//! Every message that targets keys carries only keys the receiving shard owns; the receiver
//! asserts it (`shard_for` again where the message lands).

use tarn_core::catalog::Catalog;
use tarn_core::record::{Mutation, TxnId, TxnPart};
use tarn_core::sql::Statement;
use tarn_net::{ErrorCode, ShardStats};
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
    /// CREATE MATERIALIZED VIEW's message and the events back-filled into the new view.
    Backfilled(String, u64),
    Stats(ShardStats),
    StreamCounters(Option<tarn_core::state::StreamCounters>),
    /// (keys, heap bytes of their windows, events applied, late events dropped).
    ViewCounters(u64, u64, u64, u64),
    /// Per key: the as-of time, the aggregates' values and the newest event time held.
    Features(Vec<(i64, Vec<Value>, Option<i64>)>),
    Error(ErrorCode, String),
}
