// Package tarn is the Go client of Tarn, speaking its binary wire protocol
// (docs/PROTOCOL.md, version 1) over one pipelined TCP connection.
//
// Dial connects and performs the HELLO handshake; the *Client methods (Ping, SQL, Upsert,
// Get, Delete, IngestJSON, IngestRows, Features, FeaturesAsOf, History, Knn, Context,
// ContextItems, Stats) each take
// a context.Context and are safe for concurrent use: requests from many goroutines share the
// connection, matched to their replies by request id, with at most the server's
// max_in_flight unanswered (further callers wait for a slot).
//
// Values are the Value implementations Null, Bool, BigInt, Double, Text, Bytes, Timestamp
// (µs since the Unix epoch, UTC) and Vector ([]float32). Server errors are *ServerError
// (errors.Is(err, CodeUnknownTable) matches by code); a broken connection fails every call
// with a *ConnError matching ErrClosed. See README.md for the details.
package tarn
