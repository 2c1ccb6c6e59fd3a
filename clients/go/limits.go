package tarn

import "time"

// Protocol limits, mirroring tarn_net::limits (net/src/limits.rs) and docs/PROTOCOL.md §7.
// The server's HELLO reply carries the values it actually uses for the frame size, the batch
// size and the requests in flight; the client uses those, these are the defaults and the
// bounds its decoder enforces.
const (
	// ProtocolVersion is the highest protocol version this client speaks (offered in HELLO).
	ProtocolVersion uint16 = 1
	// MinProtocolVersion is the lowest protocol version this client speaks.
	MinProtocolVersion uint16 = 1

	// HeaderLen is the size of a frame header: payload_len u32, opcode u16, flags u16,
	// request_id u64.
	HeaderLen = 16

	// MaxFramePayloadBytes is the protocol's largest frame payload (8 MiB). The client reads
	// replies up to max(this, the server's max_frame_payload_bytes): a reply header announcing
	// more is a protocol error that breaks the connection (the stream cannot be
	// resynchronised), so one connection buffers at most this much per reply.
	MaxFramePayloadBytes uint32 = 8 * 1024 * 1024

	// MaxHandshakeFramePayloadBytes is the server's limit on the first frame (the HELLO)
	// before the handshake completed. The client refuses locally a HELLO (client name plus
	// token) that would exceed it.
	MaxHandshakeFramePayloadBytes uint32 = 64 * 1024

	// MaxBatchRows is the default of rows per UPSERT, keys per GET/DELETE/FEATURES, events per
	// INGEST and pairs per HISTORY (the server answers BATCH_TOO_LARGE above its value).
	MaxBatchRows uint32 = 10000

	// MaxInFlightPerConnection is the default of unanswered requests allowed on a connection.
	// The client never exceeds the server's value: a caller waits for a free slot.
	MaxInFlightPerConnection uint32 = 256

	// MaxSQLBytes is the longest SQL text of one request (server: VALUE_TOO_LONG).
	MaxSQLBytes uint32 = 64 * 1024
	// MaxPingBytes is the longest PING payload; also the decoder's bound on a PONG.
	MaxPingBytes uint32 = 64 * 1024

	// MaxColumns bounds every column list and every row the decoder reads (MALFORMED above):
	// it caps the per-row work and allocation of one reply.
	MaxColumns uint32 = 1024

	// MaxVectorComponents bounds a VECTOR value's component count, checked before anything
	// is allocated (BAD_VECTOR above): a 4-byte count cannot make the decoder reserve more
	// than 16 KiB per value. Also the largest VECTOR(n) dimension.
	MaxVectorComponents uint32 = 4096

	// MaxKnnK is the largest k of a KNN request (server: LIMIT_EXCEEDED); the decoder
	// refuses a KNN reply with more rows.
	MaxKnnK uint32 = 1000
	// MaxKnnEf is the largest ef of a KNN request (server: INVALID_ARGUMENT).
	MaxKnnEf uint32 = 1000
	// MaxFilterBytes is the longest KNN filter text (decoder: VALUE_TOO_LONG).
	MaxFilterBytes uint32 = 4 * 1024
	// MaxKnnColumns is the most names in a KNN column list (decoder: MALFORMED).
	MaxKnnColumns uint32 = MaxColumns

	// MaxContextParams is the most parameters of a CONTEXT request (the most a named context
	// declares; decoder and server: MALFORMED, the connection stays usable).
	MaxContextParams uint32 = 32
	// MaxContextItems is the most items of a CONTEXT reply (the most a context has; decoder:
	// MALFORMED).
	MaxContextItems uint32 = 64
	// MaxContextRows bounds the groups of one item, the rows of one group and the rows of a
	// whole CONTEXT reply together (decoder: MALFORMED): the server refuses a call that would
	// answer more, so one reply's row allocations are bounded by it.
	MaxContextRows uint32 = 8192
	// MaxContextShards is the most shards a CONTEXT reply lists an as-of time for (decoder:
	// MALFORMED).
	MaxContextShards uint32 = 1024

	// MaxRecentKeys is the most keys of one RECENT request (decoder and server:
	// BATCH_TOO_LARGE) and of a RECENT reply (decoder: MALFORMED): every key costs its home
	// shard a lookup and up to MaxRecentN rows of reply.
	MaxRecentKeys uint32 = 1000
	// MaxRecentN is the largest n (events per key) of a RECENT request, the most events a
	// stream keeps per key (server: INVALID_ARGUMENT, naming the value); the decoder refuses a
	// reply key with more rows (MALFORMED), so one reply holds at most
	// MaxRecentKeys × MaxRecentN rows.
	MaxRecentN uint32 = 256
	// MaxRecentColumns is the most names in a RECENT column list (decoder: MALFORMED).
	MaxRecentColumns uint32 = MaxColumns
)

// Client-side limits and defaults.
const (
	// DefaultDialTimeout bounds the TCP connect when Options.DialTimeout is 0. The HELLO
	// exchange is bounded by the Dial context (and by this timeout when the context has no
	// deadline), so a silent server cannot hang Dial.
	DefaultDialTimeout = 5 * time.Second

	// WriteBatchBytes is the most bytes of queued request frames the writer goroutine joins
	// into one write: pipelined callers share syscalls, while one write never copies more than
	// this (a single larger frame is written on its own).
	WriteBatchBytes = 256 * 1024

	// ReadBufferBytes is the reader goroutine's buffered-reader size: small replies are read
	// many per syscall; a frame is then copied into a buffer of exactly its payload size.
	ReadBufferBytes = 64 * 1024
)
