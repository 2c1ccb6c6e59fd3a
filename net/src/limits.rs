//! Every limit the protocol enforces. Each one bounds memory or work that a single peer can make
//! the server spend; raising one raises that worst case proportionally.

/// Highest protocol version this build speaks. Sent in HELLO replies.
pub const PROTOCOL_VERSION: u16 = 1;

/// Lowest protocol version this build still speaks. A HELLO whose `[min_version, max_version]`
/// range does not intersect `[MIN_PROTOCOL_VERSION, PROTOCOL_VERSION]` gets
/// `UNSUPPORTED_VERSION` and the connection is closed.
pub const MIN_PROTOCOL_VERSION: u16 = 1;

/// Largest frame payload (bytes after the 16-byte header), in either direction.
///
/// Why: the server buffers a whole frame before decoding it, so this is the per-connection read
/// buffer worst case (8 MiB x connections). A header announcing more is answered with
/// `FRAME_TOO_LARGE` and the connection is closed (the stream cannot be resynchronised without
/// reading the oversize payload). Fits a full `MAX_BATCH_ROWS` batch of ~800-byte rows.
pub const MAX_FRAME_PAYLOAD_BYTES: u32 = 8 * 1024 * 1024;

/// Largest payload of a frame received before the handshake completed (the HELLO, or whatever
/// an unknown peer sends first).
///
/// Why: the server buffers a whole frame before decoding it, and before HELLO the peer is not
/// authenticated: without this, every connection could make the server buffer up to
/// `MAX_FRAME_PAYLOAD_BYTES` (8 MiB) without knowing the token. A HELLO is a few hundred bytes
/// (two versions, a client name, a token). A first frame announcing more is answered with
/// `FRAME_TOO_LARGE` (the header's request id) and the connection is closed. Cost: nothing
/// for real clients; after a successful HELLO the full frame limit applies.
pub const MAX_HANDSHAKE_FRAME_PAYLOAD_BYTES: u32 = 64 * 1024;

/// Most rows in one UPSERT and most keys in one GET or DELETE.
///
/// Why: a batch is validated completely and applied atomically, so this bounds the validation
/// work, the per-shard fan-out and the time one request can hold a shard. Exceeding it gets
/// `BATCH_TOO_LARGE` (connection stays open); split the batch.
pub const MAX_BATCH_ROWS: u32 = 10_000;

/// Requests received on one connection but not yet answered.
///
/// Why: bounds the server-side queue and reply memory per connection (worst case
/// 256 x MAX_FRAME_PAYLOAD_BYTES of replies). Request number 257 is answered immediately with
/// `TOO_MANY_IN_FLIGHT` (connection stays open); clients should keep at most this many
/// outstanding (the HELLO reply carries the server's actual value).
pub const MAX_IN_FLIGHT_PER_CONNECTION: u32 = 256;

/// Open connections per shard.
///
/// Why: each connection costs a read buffer, a task and in-flight state on its shard. Connection
/// number 1025 on a shard is sent `TOO_MANY_CONNECTIONS` (request id 0) and closed.
pub const MAX_CONNECTIONS_PER_SHARD: u32 = 1024;

/// Longest SQL text in one SQL request, in bytes.
///
/// Why: bounds parser work and memory; statements are schema/admin commands and queries, never
/// bulk data (use UPSERT). Exceeding it gets `VALUE_TOO_LONG` (connection stays open).
pub const MAX_SQL_BYTES: u32 = 64 * 1024;

/// Longest PING payload, in bytes. The server echoes it, so this bounds the echo copy.
/// Exceeding it gets `VALUE_TOO_LONG` (connection stays open).
pub const MAX_PING_BYTES: u32 = 64 * 1024;

/// Most columns in an UPSERT column list, in one row, and in a reply's column list.
///
/// Why: bounds per-row decode work and the column-lookup tables built per request. Exceeding
/// it is `MALFORMED` (connection stays open).
pub const MAX_COLUMNS: u32 = 1024;

/// Most components of one vector value on the wire: `tarn_types::MAX_VECTOR_DIMENSIONS`
/// (4,096), the largest `VECTOR(n)` a column can have.
///
/// Why: the decoder checks the count against this before allocating, so a 4-byte count cannot
/// make it reserve more than 16 KiB per value (and the frame must hold the bytes). A larger
/// count is `BAD_VECTOR` (connection stays open). Raising it follows the column limit.
pub const MAX_VECTOR_COMPONENTS: u32 = tarn_types::MAX_VECTOR_DIMENSIONS;

/// Largest `k` of a KNN request: equal to `tarn_vectors::MAX_K` (1,000), the most neighbours
/// one search keeps. tarn-net does not depend on tarn-vectors, so the equality (and that of
/// [`MAX_KNN_EF`]) is asserted at compile time in `net/tests/knn.rs`, where it is a
/// dev-dependency.
///
/// Why: Tarn answers real-time context requests (k = 10–100 in practice); each shard keeps a
/// heap of `k` candidates and the accepting shard merges `shards × k` of them, and the reply
/// holds `k` rows. Checked by the server, not the decoder, so that `k` = 0 is
/// `INVALID_ARGUMENT` and a larger `k` `LIMIT_EXCEEDED`, each naming the value. Raising it
/// lets one request occupy every shard longer and fill a frame.
pub const MAX_KNN_K: u32 = 1_000;

/// Largest `ef` (candidate-list size of the graph search) of a KNN request: equal to
/// `tarn_vectors::HNSW_EF_SEARCH_MAX`.
///
/// Why: a search visits roughly `ef · 2·m` graph nodes; beyond 1,000 a graph search costs about
/// what an exact scan of a few hundred thousand rows does. Checked by the server (`ef` = 0 or
/// above this is `INVALID_ARGUMENT`, naming the value).
pub const MAX_KNN_EF: u32 = 1_000;

/// Longest filter condition of a KNN request, in bytes.
///
/// Why: the filter is parsed and type-checked on every request (it is not prepared), so this
/// bounds the parser's work per request; 4 KiB is far more than a condition on a few columns
/// needs (the expression-node limit of the SQL layer applies as well). The decoder refuses a
/// longer filter with `VALUE_TOO_LONG` before copying it (connection stays open).
pub const MAX_FILTER_BYTES: u32 = 4 * 1024;

/// Most names in the column list of a KNN request: the table column limit ([`MAX_COLUMNS`]),
/// since a list naming more columns than a table can have is wrong anyway.
///
/// Why: bounds the names the decoder copies and the server looks up per request. Exceeding it
/// is `MALFORMED`, like every other decoder list limit (connection stays open).
pub const MAX_KNN_COLUMNS: u32 = MAX_COLUMNS;

/// Most parameters of a CONTEXT request (the most a named context declares).
pub const MAX_CONTEXT_PARAMS: u32 = 32;

/// Most items in a CONTEXT reply (the most a context has).
pub const MAX_CONTEXT_ITEMS: u32 = 64;

/// Most groups of one item, and rows of one group, and rows of a whole CONTEXT reply (the
/// server refuses a call that would answer more, LIMIT_EXCEEDED).
pub const MAX_CONTEXT_ROWS: u32 = 8192;

/// Most shards a CONTEXT reply reports an as-of time for.
pub const MAX_CONTEXT_SHARDS: u32 = 1024;

/// Most keys in one RECENT request.
///
/// Why: every key is routed to its home shard and answered with up to `n` full event rows;
/// 1,000 keys is far more than one context request needs and keeps the per-request work of
/// every shard bounded (the reply must also fit [`MAX_FRAME_PAYLOAD_BYTES`]: a larger reply is
/// refused with `BATCH_TOO_LARGE`, asking for fewer keys). The decoder refuses more keys with
/// `BATCH_TOO_LARGE` (connection stays open).
pub const MAX_RECENT_KEYS: u32 = 1_000;

/// Largest `n` (events per key) of a RECENT request: equal to
/// `tarn_core::MAX_RECENT_EVENTS_PER_KEY`, the most events a stream keeps per key (tarn-net
/// does not depend on tarn-core; the server asserts the equality at compile time). Checked by
/// the server (`n` = 0 or above this is `INVALID_ARGUMENT`, naming the value); the decoder of
/// a reply refuses a key with more rows (`MALFORMED`).
pub const MAX_RECENT_N: u32 = 256;

/// Most names in the column list of a RECENT request: the column limit ([`MAX_COLUMNS`]).
/// Exceeding it is `MALFORMED`, like every other decoder list limit.
pub const MAX_RECENT_COLUMNS: u32 = MAX_COLUMNS;
