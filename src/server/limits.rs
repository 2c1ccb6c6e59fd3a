//! Server-side limits that are not part of the wire protocol (those live in `tarn_net::limits`).
//! Each is a named constant with why it exists and what raising it costs.

/// Attempts a shard makes at a kNN search that yields between steps before it runs the search
/// in one go: a write to the table while a search yields makes it start again (the rows it
/// found may have other vectors by then). Under a steady write load on the table most
/// searches finish in their first step anyway (`tarn_core::state::KNN_STEP_ROWS` rows);
/// the last attempt cannot be disturbed but holds the shard for its whole length (at most one
/// scan of the shard's rows). Cost of raising it: more wasted work under heavy writes.
pub const KNN_ATTEMPTS: u32 = 3;

/// How often a shard's index maintenance task looks for work (a new index to build, a
/// graph past its tombstone share) while it has none. Cost: one wake-up per period per
/// shard; lower values start builds and rebuilds sooner.
pub const INDEX_IDLE_POLL_MS: u64 = 20;

/// Time one index build or rebuild step aims to hold its shard for. A step runs inside the
/// apply loop, where nothing else runs, and an insert costs from a few µs (dim 16,
/// `ef_construction` 64, release build) to over a millisecond (dim 1,000+, `ef_construction`
/// 500, or a debug build): the maintenance task sizes each step from the time per row the
/// last steps took, `1..=tarn_core::state::INDEX_BUILD_STEP_ROWS` rows. The size goes into
/// the step's log record, so replay takes the same steps whatever its speed. Cost of
/// lowering it: more log records and yields per build.
pub const INDEX_STEP_TARGET_US: u64 = 1000;

/// Pause between two index steps, during which the shard polls I/O and serves requests (a
/// bare yield would hand the task queue the CPU straight back). Costs at most this much per
/// step of build time when the shard is idle.
pub const INDEX_STEP_PAUSE_US: u64 = 100;

/// Longest a context call may hold a shard's state while a write waits for it (see
/// `shard/context.rs`; checked at this period, so a write waits at most twice this): writes
/// to the shard are appended and made durable meanwhile but applied (and, in sync mode,
/// acknowledged) only after it. A call takes microseconds; this bounds what a stalled call
/// (a slow peer, a long search) can cost writers. A call whose hold expired answers BUSY
/// inside and is started again (`MAX_CONTEXT_ATTEMPTS`).
pub const MAX_CONTEXT_HOLD_US: u64 = 5_000;

/// Longest a hold lasts when no write waits for it: a safety net for a call that vanished
/// without releasing (its connection closed mid-call). A hold no write waits for delays
/// nothing, so it is not broken sooner (breaking it would make a slow call, e.g. on a
/// loaded machine, fail for no one's benefit).
pub const MAX_CONTEXT_HOLD_IDLE_US: u64 = 1_000_000;

/// How often a call waiting to take a hold (while a write waits for earlier holds) looks
/// again.
pub const CONTEXT_HOLD_POLL_US: u64 = 20;

/// Times a context call is tried when a hold it relied on expired; the error of the last
/// attempt is the answer.
pub const MAX_CONTEXT_ATTEMPTS: u32 = 3;

/// Capacity of each bounded cross-shard channel (one per ordered pair of shards, created at
/// start-up). A full channel makes the sender wait, which is the back-pressure that keeps one
/// hot shard from queueing unbounded work for another. Cost: memory for `capacity` messages per
/// pair (n² pairs), and queueing delay under overload.
pub const MESH_CHANNEL_CAPACITY: usize = 1024;

/// Bytes a connection's reader asks the kernel for at a time; the buffer grows up to one
/// maximal frame only while such a frame is being received.
pub const READ_CHUNK_BYTES: usize = 64 * 1024;

/// Reply bytes one connection may hold before its reader stops dispatching requests: replies
/// queued or being written, plus a reservation for every request running as a task
/// ([`WRITE_REPLY_RESERVE_BYTES`] for writes; for reads the connection's recent reply sizes,
/// starting at one maximal frame). Checked before every frame, so a pipeline of inline GETs
/// cannot overshoot it by more than one reply. A paused reader also stops reading the socket,
/// so the client's sends block (TCP back-pressure), and resumes at
/// [`REPLY_LOW_WATER_BYTES`]. Cost: up to this much memory (plus one reply) per connection
/// whose client does not read, until the idle timeout closes it; lower values cut pipelining
/// of large reads.
pub const MAX_PENDING_REPLY_BYTES: usize = 32 << 20;

/// A reader paused by [`MAX_PENDING_REPLY_BYTES`] resumes once the connection's pending reply
/// bytes fell to this (the writer signals it). Half the limit: a slow client's connection
/// alternates between long phases of reading and of pausing instead of waking per write.
pub const REPLY_LOW_WATER_BYTES: usize = MAX_PENDING_REPLY_BYTES / 2;

/// Reply room reserved for an UPSERT, DELETE or INGEST while it runs: their success replies
/// are a few bytes, an error carries one message. Small, so pipelined writes are limited by
/// the in-flight limit only.
pub const WRITE_REPLY_RESERVE_BYTES: usize = 512;

/// A writer buffer with more capacity than this is freed once written instead of being kept
/// for the next replies, so a burst of large replies does not stay allocated on an idle
/// connection. Cost: one reallocation per burst larger than this.
pub const RETAINED_REPLY_BUFFER_BYTES: usize = 1 << 20;

/// Default `--handshake-timeout-ms`: a connection that has not completed its HELLO this long
/// after it was accepted gets `ERROR HANDSHAKE_REQUIRED` (request id 0) and is closed. Why:
/// a peer that connects and sends nothing, or trickles its HELLO, would otherwise hold one of
/// the shard's `MAX_CONNECTIONS_PER_SHARD` slots and a read buffer for ever, without
/// authenticating. Cost: a client slower than this to send its HELLO is refused.
pub const DEFAULT_HANDSHAKE_TIMEOUT_MS: u64 = 10_000;

/// Default `--frame-timeout-ms`: once the first bytes of a frame were read (after the
/// handshake), the whole frame must have arrived this long after (time the reader spends
/// paused by back-pressure does not count), else the connection gets `ERROR TIMEOUT` (request
/// id 0, best-effort) and is closed. Why: a peer sending a frame one byte at a time (slowloris) would otherwise hold its
/// slot and a read buffer of up to one maximal frame indefinitely. Cost: a maximal (8 MiB)
/// frame needs at least ~140 kB/s.
pub const DEFAULT_FRAME_TIMEOUT_MS: u64 = 60_000;

/// Default `--idle-timeout-s` (0 turns it off): a handshaken connection that received nothing,
/// has no request running and wrote no reply bytes for this long gets `ERROR TIMEOUT` (request
/// id 0, best-effort: never waited for) and is closed. This also closes a client that stopped
/// reading its replies (they are dropped, the TIMEOUT frame with them). Why: silent
/// connections would otherwise hold every slot. Cost: clients keeping pooled connections idle
/// longer than this must expect them closed and reconnect.
pub const DEFAULT_IDLE_TIMEOUT_S: u64 = 300;

/// Largest accepted value of any connection timeout (one day): keeps deadline arithmetic far
/// from overflow; a longer timeout is as good as none.
pub const MAX_CONNECTION_TIMEOUT_S: u64 = 86_400;

/// On SIGTERM/SIGINT, how long a connection's replies may take to reach its client, once its
/// last request already read has finished, before they are dropped and the connection closed. Why: a client that does not read would otherwise keep
/// its writer blocked on a full socket and stop the shutdown (and its checkpoint) for ever.
/// Cost: a client that cannot take its pending replies within this loses them.
pub const SHUTDOWN_REPLY_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// Longest a connection the server closes (after a closing error, a refusal at accept, the
/// peer's own close) keeps reading and dropping the peer's input after its FIN, so the close
/// is not a reset that could make the peer discard the error reply (see `conn::linger`). Cost:
/// the connection's task and socket live that much longer (not its slot: the count of open
/// connections already dropped). Not on shutdown, nor for a connection stopped because its
/// peer went away or timed out.
pub const LINGER_CLOSE: std::time::Duration = std::time::Duration::from_millis(500);

/// Most input a closing connection reads and drops while it lingers ([`LINGER_CLOSE`]): two
/// maximal frames, what a pipelining client may have in flight when a closing error comes; a
/// peer that keeps sending more is reset. Cost: reading (not storing) that much, once.
pub const LINGER_DRAIN_BYTES: usize = 2 * (16 + tarn_net::limits::MAX_FRAME_PAYLOAD_BYTES as usize);

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

/// Longest the ack of a retried producer-tagged part waits for the first attempt, when that
/// attempt is a prepared part of a multi-shard batch not committed yet (see
/// `server::shard::producers`). Normally one group commit; beyond it the retry is answered
/// BUSY (its rows are not applied twice either way) and the client retries again.
pub const UNDECIDED_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

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

// The wire's bound on `n` of a RECENT request is the most events a stream keeps per key.
const _: () = assert!(tarn_net::limits::MAX_RECENT_N == tarn_core::MAX_RECENT_EVENTS_PER_KEY);
