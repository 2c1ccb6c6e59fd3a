package tarn

import (
	"context"
	"errors"
	"reflect"
	"testing"
)

// TestEndToEnd runs every operation against one real tarnd (2 shards).
func TestEndToEnd(t *testing.T) {
	s := startServer(t)
	c := s.dial(t, Options{ClientName: "go-e2e"})
	t.Run("handshake", func(t *testing.T) { testHandshake(t, c) })
	t.Run("tables", func(t *testing.T) { testTables(t, c) })
	t.Run("errors", func(t *testing.T) { testErrors(t, c) })
	t.Run("streams", func(t *testing.T) { testStreams(t, c) })
	t.Run("knn", func(t *testing.T) { testKnn(t, c) })
	t.Run("stats", func(t *testing.T) { testStats(t, c) })
	t.Run("concurrency", func(t *testing.T) { testConcurrency(t, c) })
	t.Run("deadlines", func(t *testing.T) { testDeadlines(t, s, c) })
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func serverError(t *testing.T, err error, code ErrorCode) *ServerError {
	t.Helper()
	var se *ServerError
	if !errors.As(err, &se) || !errors.Is(err, code) {
		t.Fatalf("want a %v server error, got %v", code, err)
	}
	return se
}

func testHandshake(t *testing.T, c *Client) {
	info := c.ServerInfo()
	want := HelloReply{Version: 1, ServerVersion: "0.1.0", ShardCount: 2,
		MaxFramePayloadBytes: MaxFramePayloadBytes, MaxBatchRows: MaxBatchRows,
		MaxInFlight: MaxInFlightPerConnection}
	if info != want {
		t.Fatalf("HELLO reply %+v, want %+v", info, want)
	}
	must(t, c.Ping(bg(t)))
}

func testTables(t *testing.T, c *Client) {
	ctx := bg(t)
	r, err := c.SQL(ctx, "CREATE TABLE every (k TEXT PRIMARY KEY, b BOOLEAN, i BIGINT, "+
		"d DOUBLE, s TEXT, x BYTES, ts TIMESTAMP, v VECTOR(3))")
	must(t, err)
	if r.Message != "CREATE TABLE every" || len(r.Columns) != 0 || len(r.Rows) != 0 {
		t.Fatalf("CREATE TABLE reply %+v", r)
	}
	cols := []string{"k", "b", "i", "d", "s", "x", "ts", "v"}
	full := []Value{Text("k1"), Bool(true), BigInt(-1 << 63), Double(-0.25), Text("héllo ✓"),
		Bytes{0, 1, 254, 255}, Timestamp(1700000000123456), Vector{1, -2.5, 0.125}}
	nulls := []Value{Text("k2"), Null{}, nil, Null{}, Null{}, Null{}, Null{}, Null{}}
	n, err := c.Upsert(ctx, "every", cols, [][]Value{full, nulls})
	must(t, err)
	if n != 2 {
		t.Fatalf("rows applied %d", n)
	}
	g, err := c.Get(ctx, "every", []Value{Text("k1"), Text("nope"), Text("k2")})
	must(t, err)
	wantCols := []Column{{"k", ColumnType{KindText, 0}}, {"b", ColumnType{KindBoolean, 0}},
		{"i", ColumnType{KindBigInt, 0}}, {"d", ColumnType{KindDouble, 0}},
		{"s", ColumnType{KindText, 0}}, {"x", ColumnType{KindBytes, 0}},
		{"ts", ColumnType{KindTimestamp, 0}}, {"v", ColumnType{KindVector, 3}}}
	nulls[2] = Null{}
	if !reflect.DeepEqual(g.Columns, wantCols) ||
		!reflect.DeepEqual(g.Rows, [][]Value{full, nil, nulls}) {
		t.Fatalf("GET reply %+v", g)
	}
	// Merge keeps unlisted columns; a BIGINT for a TIMESTAMP column comes back as TIMESTAMP.
	_, err = c.UpsertMerge(ctx, "every", []string{"k", "ts"}, [][]Value{{Text("k1"), BigInt(5)}})
	must(t, err)
	g, err = c.Get(ctx, "every", []Value{Text("k1")})
	must(t, err)
	full[6] = Timestamp(5)
	if !reflect.DeepEqual(g.Rows[0], full) {
		t.Fatalf("after merge %v, want %v", g.Rows[0], full)
	}
	// Replace mode sets the unlisted columns to NULL.
	_, err = c.Upsert(ctx, "every", []string{"k", "i"}, [][]Value{{Text("k1"), BigInt(9)}})
	must(t, err)
	g, err = c.Get(ctx, "every", []Value{Text("k1")})
	must(t, err)
	if !IsNull(g.Rows[0][1]) || g.Rows[0][2] != BigInt(9) || !IsNull(g.Rows[0][7]) {
		t.Fatalf("after replace %v", g.Rows[0])
	}
	del, err := c.Delete(ctx, "every", []Value{Text("k1"), Text("k1"), Text("nope")})
	must(t, err)
	if del != 1 {
		t.Fatalf("rows deleted %d", del)
	}
	show, err := c.SQL(ctx, "SHOW TABLES")
	must(t, err)
	wantShow := []Column{{"table", ColumnType{KindText, 0}}, {"key", ColumnType{KindText, 0}},
		{"columns", ColumnType{KindBigInt, 0}}}
	if !reflect.DeepEqual(show.Columns, wantShow) ||
		!reflect.DeepEqual(show.Rows[0], []Value{Text("every"), Text("k"), BigInt(8)}) {
		t.Fatalf("SHOW TABLES %+v", show)
	}
}

func testErrors(t *testing.T, c *Client) {
	ctx := bg(t)
	_, err := c.Get(ctx, "no_such_table", []Value{BigInt(1)})
	if se := serverError(t, err, CodeUnknownTable); se.HasRow() || se.Column != "" {
		t.Fatalf("UNKNOWN_TABLE names a row or column: %+v", se)
	}
	_, err = c.SQL(ctx, "CREATE TABLE p (id BIGINT PRIMARY KEY, n BIGINT)")
	must(t, err)
	_, err = c.Upsert(ctx, "p", []string{"id", "n"},
		[][]Value{{BigInt(1), BigInt(1)}, {BigInt(2), Text("x")}})
	se := serverError(t, err, CodeTypeMismatch)
	if se.Row != 1 || se.Column != "n" {
		t.Fatalf("TYPE_MISMATCH row %d column %q, want row 1 column n", se.Row, se.Column)
	}
	// Nothing of the bad batch was applied.
	g, err := c.Get(ctx, "p", []Value{BigInt(1)})
	must(t, err)
	if g.Rows[0] != nil {
		t.Fatalf("row 1 of a refused batch was applied: %v", g.Rows[0])
	}
	_, err = c.Get(ctx, "p", []Value{Null{}})
	if se := serverError(t, err, CodeNullKey); se.Row != 0 || se.Column != "id" {
		t.Fatalf("NULL_KEY %+v", se)
	}
	_, err = c.SQL(ctx, "SELEC 1")
	serverError(t, err, CodeSQLParse)
	_, err = c.Upsert(ctx, "p", []string{"id", "n"}, nil)
	serverError(t, err, CodeBatchEmpty)
	_, err = c.Features(ctx, "no_view", []Value{Text("k")})
	serverError(t, err, CodeUnknownView)
	_, err = c.IngestRows(ctx, "no_stream", []string{"a"}, [][]Value{{BigInt(1)}}, nil)
	serverError(t, err, CodeUnknownStream)
	// Refused locally, never sent: over the server's frame limit.
	big := make([]byte, c.ServerInfo().MaxFramePayloadBytes)
	if _, err := c.Do(ctx, &PingRequest{Data: big}); !errors.Is(err, ErrRequestTooLarge) {
		t.Fatalf("oversized request: %v", err)
	}
	// The connection keeps serving after every error.
	must(t, c.Ping(ctx))
}

func testStreams(t *testing.T, c *Client) {
	ctx := bg(t)
	_, err := c.SQL(ctx, "CREATE STREAM tx (ts TIMESTAMP, card TEXT, amount DOUBLE) "+
		"WITH (event_time = 'ts'); CREATE MATERIALIZED VIEW card_life WITH (window = "+
		"'lifetime') AS SELECT card, count(*) AS txns, sum(amount) AS spend FROM tx "+
		"GROUP BY card")
	must(t, err)
	lines := []byte("{\"ts\": 1000, \"card\": \"c1\", \"amount\": 2.5}\n" +
		"{\"ts\": \"1970-01-01T00:00:00.002Z\", \"card\": \"c1\", \"amount\": 1.5}\n")
	producer := &Producer{ID: 7, Seq: 1}
	in, err := c.IngestJSON(ctx, "tx", LayoutLines, lines, producer)
	must(t, err)
	if *in != (IngestReply{Events: 2}) {
		t.Fatalf("INGEST reply %+v", in)
	}
	in, err = c.IngestJSON(ctx, "tx", LayoutDetect, lines, producer)
	must(t, err)
	if *in != (IngestReply{Events: 2, Duplicate: true}) {
		t.Fatalf("re-sent producer batch: %+v", in)
	}
	f1, err := c.Features(ctx, "card_life", []Value{Text("c1"), Text("c9")})
	must(t, err)
	wantCols := []Column{{"card", ColumnType{KindText, 0}}, {"txns", ColumnType{KindBigInt, 0}},
		{"spend", ColumnType{KindDouble, 0}}}
	if !reflect.DeepEqual(f1.Columns, wantCols) ||
		!reflect.DeepEqual(f1.Rows[0].Values, []Value{Text("c1"), BigInt(2), Double(4)}) ||
		*f1.Rows[0].NewestEventTimeUs != 2000 ||
		!reflect.DeepEqual(f1.Rows[1].Values, []Value{Text("c9"), BigInt(0), Null{}}) ||
		f1.Rows[1].NewestEventTimeUs != nil {
		t.Fatalf("FEATURES reply %+v", f1)
	}
	_, err = c.IngestRows(ctx, "tx", []string{"ts", "card", "amount"},
		[][]Value{{Timestamp(3000), Text("c1"), Double(10)}}, nil)
	must(t, err)
	_, err = c.IngestRows(ctx, "tx", []string{"ts", "card", "amount"},
		[][]Value{{Timestamp(4000), Text("c1"), Double(1)}, {Null{}, Text("c1"), Double(1)}},
		nil)
	if se := serverError(t, err, CodeMissingValue); se.Row != 1 || se.Column != "ts" {
		t.Fatalf("MISSING_VALUE %+v", se)
	}
	now, err := c.Features(ctx, "card_life", []Value{Text("c1")})
	must(t, err)
	if now.Rows[0].Values[1] != BigInt(3) {
		t.Fatalf("after a typed INGEST: %v", now.Rows[0].Values)
	}
	// As of the first read's time, the typed event was not there yet: FEATURES as of a past
	// time and HISTORY recompute it.
	asOf := f1.Rows[0].AsOfUs
	past, err := c.FeaturesAsOf(ctx, "card_life", []Value{Text("c1")}, asOf)
	must(t, err)
	if past.AsOfUs != asOf || !reflect.DeepEqual(past.Rows[0].Values, f1.Rows[0].Values) {
		t.Fatalf("FEATURES as of %d: %+v, want %v", asOf, past, f1.Rows[0].Values)
	}
	h, err := c.History(ctx, "card_life", []HistoryPair{{Text("c1"), asOf},
		{Text("c1"), now.Rows[0].AsOfUs}})
	must(t, err)
	if !reflect.DeepEqual(h.Columns, wantCols) || len(h.Rows) != 2 ||
		!reflect.DeepEqual(h.Rows[0].Values, f1.Rows[0].Values) ||
		!reflect.DeepEqual(h.Rows[1].Values, now.Rows[0].Values) {
		t.Fatalf("HISTORY %+v", h)
	}
	_, err = c.History(ctx, "card_life", []HistoryPair{{Text("c1"), asOf},
		{Text("c1"), 1 << 62}})
	if se := serverError(t, err, CodeInvalidArgument); se.Row != 1 {
		t.Fatalf("HISTORY in the future: %+v", se)
	}
}

func testKnn(t *testing.T, c *Client) {
	ctx := bg(t)
	_, err := c.SQL(ctx, "CREATE TABLE docs (id BIGINT PRIMARY KEY, lang TEXT, emb VECTOR(3));"+
		" CREATE INDEX docs_emb ON docs USING hnsw (emb) WITH (metric = 'l2')")
	must(t, err)
	rows := [][]Value{
		{BigInt(1), Text("en"), Vector{1, 0, 0}},
		{BigInt(2), Text("de"), Vector{0.9, 0.1, 0}},
		{BigInt(3), Text("en"), Vector{0, 1, 0}},
		{BigInt(4), Text("en"), Vector{0, 0, 1}},
	}
	_, err = c.Upsert(ctx, "docs", []string{"id", "lang", "emb"}, rows)
	must(t, err)
	r, err := c.Knn(ctx, &KnnRequest{Index: "docs_emb", Query: KnnVector{1, 0, 0}, K: 2})
	must(t, err)
	if len(r.Columns) != 3 || len(r.Rows) != 2 || r.Rows[0].Distance != 0 ||
		!reflect.DeepEqual(r.Rows[0].Values, rows[0]) || r.Rows[1].Values[0] != BigInt(2) {
		t.Fatalf("KNN reply %+v", r)
	}
	r, err = c.Knn(ctx, &KnnRequest{Index: "docs_emb", Query: KnnLike{BigInt(2)}, K: 3,
		Ef: 50, Filter: "lang = 'en'", Columns: []string{"id"}})
	must(t, err)
	want := []KnnRow{{r.Rows[0].Distance, []Value{BigInt(1)}}}
	if !reflect.DeepEqual(r.Columns, []Column{{"id", ColumnType{KindBigInt, 0}}}) ||
		len(r.Rows) != 3 || !reflect.DeepEqual(r.Rows[:1], want) || r.Distances == 0 {
		t.Fatalf("KNN like key 2 among lang = 'en': %+v", r)
	}
	_, err = c.Knn(ctx, &KnnRequest{Index: "nope", Query: KnnVector{1, 0, 0}, K: 1})
	serverError(t, err, CodeUnknownIndex)
	_, err = c.Knn(ctx, &KnnRequest{Index: "docs_emb", Query: KnnVector{1, 0}, K: 1})
	serverError(t, err, CodeBadVector)
	_, err = c.Knn(ctx, &KnnRequest{Index: "docs_emb", Query: KnnVector{1, 0, 0}, K: 0})
	serverError(t, err, CodeInvalidArgument)
	_, err = c.Upsert(ctx, "docs", []string{"id", "emb"}, [][]Value{{BigInt(9), Vector{1}}})
	if se := serverError(t, err, CodeBadVector); se.Row != 0 || se.Column != "emb" {
		t.Fatalf("BAD_VECTOR %+v", se)
	}
}

func testStats(t *testing.T, c *Client) {
	st, err := c.Stats(bg(t))
	must(t, err)
	if len(st.Shards) != 2 || st.Shards[0].Shard != 0 || st.Shards[1].Shard != 1 {
		t.Fatalf("STATS shards %+v", st.Shards)
	}
	var upserts uint64
	indexes := 0
	for _, s := range st.Shards {
		for _, o := range s.Ops {
			if o.Op == "UPSERT" {
				upserts += o.Count
			}
		}
		for _, ix := range s.Indexes {
			if ix.Index == "docs_emb" {
				indexes++
			}
		}
	}
	if upserts == 0 || indexes != 2 {
		t.Fatalf("STATS counts %d UPSERTs and docs_emb on %d shards: %+v", upserts, indexes, st)
	}
}

// assertUsable checks that the connection still matches replies to their requests.
func assertUsable(t *testing.T, c *Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	must(t, c.Ping(ctx))
	g, err := c.Get(ctx, "p", []Value{BigInt(-1)})
	must(t, err)
	if len(g.Rows) != 1 || g.Rows[0] != nil {
		t.Fatalf("GET of a missing key: %+v", g)
	}
}
