//! Server-side limits that are not part of the wire protocol (those live in `tarn_net::limits`).
//! Each is a named constant with why it exists and what raising it costs.

/// Capacity of each bounded cross-shard channel (one per ordered pair of shards, created at
/// start-up). A full channel makes the sender wait, which is the back-pressure that keeps one
/// hot shard from queueing unbounded work for another. Cost: memory for `capacity` messages per
/// pair (n² pairs), and queueing delay under overload.
pub const MESH_CHANNEL_CAPACITY: usize = 1024;

/// Bytes a connection's reader asks the kernel for at a time; the buffer grows up to one
/// maximal frame only while such a frame is being received.
pub const READ_CHUNK_BYTES: usize = 64 * 1024;

/// Replies queued for a connection's writer before handlers wait: bounded by the in-flight
/// limit anyway, this caps the bytes buffered for a client that does not read its replies.
pub const MAX_PENDING_REPLY_BYTES: usize = 32 << 20;

/// How often a shard checks whether SIGTERM/SIGINT arrived. Shutdown latency vs idle wake-ups.
pub const SHUTDOWN_POLL_MS: u64 = 50;

/// Largest latency recorded in the per-opcode histograms (µs); slower requests are clamped so
/// one pathological sample cannot grow a histogram. 60 s.
pub const MAX_RECORDED_LATENCY_US: u64 = 60_000_000;

/// Multi-shard batches one shard may coordinate at once (each holds a prepared part set aside
/// on every participant until it commits). Beyond it the batch is refused with BUSY, so a flood
/// of cross-shard batches cannot grow the participants' stashes without bound. Single-shard
/// batches do not count. Raising it costs memory for set-aside parts under overload.
pub const MAX_OPEN_TXNS_PER_SHARD: usize = 4096;

/// Longest `CREATE MATERIALIZED VIEW` waits for event batches routed before the view existed
/// to finish (normally one group commit) before it back-fills. Beyond it the DDL fails with
/// BUSY rather than risk missing their events. Only a stalled disk gets near it.
pub const QUIESCE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// History requests one shard replays its log for at the same time. Each scan reads the whole
/// retained log of the shard (from the low-priority task queue); more would only share the
/// same disk and core. Others wait their turn.
pub const MAX_HISTORY_SCANS_PER_SHARD: u64 = 2;

/// Events per write a shard sends when back-filling a new feature view from its log. Larger
/// batches mean fewer log records at the owners; each must fit one log record (~100 KiB here).
pub const BACKFILL_BATCH_EVENTS: usize = 1000;

/// How long start-up keeps retrying a listen port on which a socket is still in LISTEN state
/// before it refuses to start. A tarnd that was just stopped or killed can keep its listening
/// sockets for a few milliseconds after the process was reaped (io_uring teardown), so an
/// immediate restart on the same port would otherwise fail. Cost: a start on a port another
/// live process listens on fails this much later.
pub const LISTEN_RETRY: std::time::Duration = std::time::Duration::from_secs(2);

/// Pause between two probes of the listen port during [`LISTEN_RETRY`] (start-up, main thread).
pub const LISTEN_RETRY_INTERVAL: std::time::Duration = std::time::Duration::from_millis(20);

/// Backlog of each shard's listening socket: connections the kernel completes before the shard
/// accepts them (capped by `net.core.somaxconn`). Beyond it new connections wait in SYN
/// retries. Cost: kernel memory per pending connection only.
pub const LISTEN_BACKLOG: i32 = 1024;
