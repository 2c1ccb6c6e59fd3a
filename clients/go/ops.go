package tarn

import (
	"bytes"
	"context"
	"fmt"
)

// roundTrip sends req and returns its reply as the reply type T of req's opcode.
func roundTrip[T Response](ctx context.Context, c *Client, req Request) (T, error) {
	var zero T
	resp, err := c.Do(ctx, req)
	if err != nil {
		return zero, err
	}
	r, ok := resp.(T)
	if !ok {
		return zero, &ProtocolError{Message: fmt.Sprintf("unexpected %T reply to %v", resp,
			req.Opcode())}
	}
	return r, nil
}

// pingData is what Ping sends and expects back.
var pingData = []byte("tarn")

// Ping round-trips a PING and checks that the PONG echoes its data.
func (c *Client) Ping(ctx context.Context) error {
	r, err := roundTrip[*Pong](ctx, c, &PingRequest{Data: pingData})
	if err == nil && !bytes.Equal(r.Data, pingData) {
		err = &ProtocolError{Message: "PONG does not echo the PING data"}
	}
	return err
}

// SQL runs one or more statements separated by ';' (docs/SQL.md). The reply holds one
// message line per statement and the result set of the last statement that has one.
func (c *Client) SQL(ctx context.Context, sql string) (*SQLReply, error) {
	return roundTrip[*SQLReply](ctx, c, &SQLRequest{SQL: sql})
}

// Upsert writes rows in Replace mode (unlisted columns become NULL) and returns the number
// of rows applied. Each row has one value per column; the key column must be listed.
func (c *Client) Upsert(ctx context.Context, table string, columns []string,
	rows [][]Value) (uint64, error) {
	return c.UpsertMode(ctx, table, ModeReplace, columns, rows)
}

// UpsertMerge writes rows in Merge mode (unlisted columns keep their values).
func (c *Client) UpsertMerge(ctx context.Context, table string, columns []string,
	rows [][]Value) (uint64, error) {
	return c.UpsertMode(ctx, table, ModeMerge, columns, rows)
}

// UpsertMode writes rows in the given mode.
func (c *Client) UpsertMode(ctx context.Context, table string, mode UpsertMode,
	columns []string, rows [][]Value) (uint64, error) {
	r, err := roundTrip[*UpsertReply](ctx, c, &UpsertRequest{table, mode, columns, rows})
	if err != nil {
		return 0, err
	}
	return r.RowsApplied, nil
}

// Get reads rows by primary key: one entry per key, in key order, nil = not found.
func (c *Client) Get(ctx context.Context, table string, keys []Value) (*GetReply, error) {
	return roundTrip[*GetReply](ctx, c, &GetRequest{table, keys})
}

// Delete deletes rows by primary key and returns the number of rows that existed.
func (c *Client) Delete(ctx context.Context, table string, keys []Value) (uint64, error) {
	r, err := roundTrip[*DeleteReply](ctx, c, &DeleteRequest{table, keys})
	if err != nil {
		return 0, err
	}
	return r.RowsDeleted, nil
}

// IngestJSON appends events given as JSON text to a stream (layout: LayoutDetect,
// LayoutLines or LayoutArray), optionally tagged by a producer (nil = untagged) so that a
// retry is applied at most once.
func (c *Client) IngestJSON(ctx context.Context, stream string, layout JSONLayout,
	data []byte, producer *Producer) (*IngestReply, error) {
	return c.Ingest(ctx, &IngestRequest{stream, producer, &JSONBody{layout, data}})
}

// IngestRows appends events given as typed rows (values in columns order; unlisted columns
// are NULL), optionally producer-tagged.
func (c *Client) IngestRows(ctx context.Context, stream string, columns []string,
	rows [][]Value, producer *Producer) (*IngestReply, error) {
	return c.Ingest(ctx, &IngestRequest{stream, producer, &RowsBody{columns, rows}})
}

// Ingest sends an INGEST request.
func (c *Client) Ingest(ctx context.Context, req *IngestRequest) (*IngestReply, error) {
	return roundTrip[*IngestReply](ctx, c, req)
}

// Features reads a feature view for keys as of now.
func (c *Client) Features(ctx context.Context, view string, keys []Value) (*FeaturesReply,
	error) {
	return roundTrip[*FeaturesReply](ctx, c, &FeaturesRequest{View: view, Keys: keys})
}

// FeaturesAsOf reads a feature view for keys as of a past time (µs since the epoch),
// recomputed like History; a time not in the past is INVALID_ARGUMENT.
func (c *Client) FeaturesAsOf(ctx context.Context, view string, keys []Value,
	asOfUs int64) (*FeaturesReply, error) {
	return roundTrip[*FeaturesReply](ctx, c, &FeaturesRequest{view, keys, &asOfUs})
}

// History is point-in-time history: the view's features for each (key, as-of time) pair.
func (c *Client) History(ctx context.Context, view string, pairs []HistoryPair) (
	*HistoryReply, error) {
	return roundTrip[*HistoryReply](ctx, c, &HistoryRequest{view, pairs})
}

// Knn asks a vector index for the req.K rows nearest to req.Query (a KnnVector, or KnnLike
// naming a row by key) among the rows matching req.Filter, nearest first.
func (c *Client) Knn(ctx context.Context, req *KnnRequest) (*KnnReply, error) {
	return roundTrip[*KnnReply](ctx, c, req)
}

// Stats returns per-shard statistics.
func (c *Client) Stats(ctx context.Context) (*StatsReply, error) {
	return roundTrip[*StatsReply](ctx, c, &StatsRequest{})
}

// Context calls the named context (CREATE CONTEXT) with its parameters, sent in the order
// given: everything its items read, in one round trip.
//
//	r, err := c.Context(ctx, "fraud_check", tarn.Param("card_id", tarn.Text("c-1")))
func (c *Client) Context(ctx context.Context, name string, params ...ContextParam) (
	*ContextReply, error) {
	return roundTrip[*ContextReply](ctx, c, &ContextRequest{ContextNamed(name), params})
}

// ContextItems calls an ad hoc item list in the syntax of CREATE CONTEXT … AS (docs/SQL.md
// "Contexts"), planned for this call; it takes no parameters.
func (c *Client) ContextItems(ctx context.Context, items string) (*ContextReply, error) {
	return roundTrip[*ContextReply](ctx, c, &ContextRequest{ContextAdHoc(items), []ContextParam{}})
}

// Recent returns the n newest events of each key of a stream created WITH (recent = N), one
// list per key in key order, newest first by event time, projected on columns (none = every
// column of the stream, in definition order). n is 1..MaxRecentN (the server answers
// INVALID_ARGUMENT otherwise); an n above the stream's N returns what is kept.
//
//	r, err := c.Recent(ctx, "tx", []tarn.Value{tarn.Text("c-1")}, 3, "ts", "amount")
func (c *Client) Recent(ctx context.Context, stream string, keys []Value, n uint32,
	columns ...string) (*RecentReply, error) {
	if columns == nil {
		columns = []string{}
	}
	r, err := roundTrip[*RecentReply](ctx, c, &RecentRequest{stream, keys, n, columns})
	if err == nil && len(r.Keys) != len(keys) {
		return nil, &ProtocolError{Message: fmt.Sprintf(
			"RECENT reply has %d key lists for %d keys", len(r.Keys), len(keys))}
	}
	return r, err
}
