package tarn

import (
	"reflect"
	"strings"
	"testing"
)

// recentSchema: a stream keeping the 3 newest events per card, one keeping none, and a
// context reading a card's 2 newest events.
const recentSchema = "CREATE STREAM rtx (ts TIMESTAMP, card TEXT, amount DOUBLE, note TEXT) " +
	"WITH (event_time = 'ts', partition = 'card', recent = 3); " +
	"CREATE STREAM plain (ts TIMESTAMP, card TEXT) WITH (event_time = 'ts', partition = 'card'); " +
	"CREATE CONTEXT card_recent (card TEXT) AS SELECT " +
	"recent(rtx, card, 2, columns => (amount, ts)) AS last"

// rtxEvent is one event of rtx: (ts, card, amount, note).
func rtxEvent(ts int64, card string, amount float64, note string) []Value {
	return []Value{Timestamp(ts), Text(card), Double(amount), Text(note)}
}

// setupRecent writes the schema and the events: c1 at 1000, 2000, 4000, 5000, then in a
// second batch a late event at 3000 (among the 3 newest: kept) and one at 500 (older than
// the 3 kept: not); c2 two events at the same time 7000 (the later appended is newer).
func setupRecent(t *testing.T, c *Client) {
	ctx := bg(t)
	r, err := c.SQL(ctx, recentSchema)
	must(t, err)
	if !strings.Contains(r.Message, "CREATE CONTEXT card_recent") {
		t.Fatalf("schema reply %+v", r)
	}
	cols := []string{"ts", "card", "amount", "note"}
	_, err = c.IngestRows(ctx, "rtx", cols, [][]Value{
		rtxEvent(1000, "c1", 10, "a"), rtxEvent(2000, "c1", 20, "b"),
		rtxEvent(7000, "c2", 1, "first"), rtxEvent(4000, "c1", 40, "d"),
		rtxEvent(5000, "c1", 50, "e"), rtxEvent(7000, "c2", 2, "second"),
	}, nil)
	must(t, err)
	_, err = c.IngestRows(ctx, "rtx", cols, [][]Value{
		rtxEvent(3000, "c1", 30, "late"), rtxEvent(500, "c1", 5, "too old"),
	}, nil)
	must(t, err)
}

// TestRecentEndToEnd: RECENT against a real tarnd (2 shards): newest first by event time,
// late events in their place, ties by append order, projections, n below and above the
// stream's N, keys without events, repeated keys, the errors, and a recent item of a context.
func TestRecentEndToEnd(t *testing.T) {
	s := startServer(t)
	c := s.dial(t, Options{ClientName: "go-recent"})
	setupRecent(t, c)
	t.Run("all columns", func(t *testing.T) { testRecentAll(t, c) })
	t.Run("projection", func(t *testing.T) { testRecentProjection(t, c) })
	t.Run("errors", func(t *testing.T) { testRecentErrors(t, c) })
	t.Run("context", func(t *testing.T) { testRecentContext(t, c) })
}

func checkRecent(t *testing.T, r *RecentReply, want [][][]Value) {
	t.Helper()
	if !reflect.DeepEqual(r.Keys, want) {
		t.Fatalf("RECENT keys\n got %v\nwant %v", r.Keys, want)
	}
}

func testRecentAll(t *testing.T, c *Client) {
	// n = 10 is above the stream's 3: the 3 kept. c9 has no events: an empty list.
	r, err := c.Recent(bg(t), "rtx", []Value{Text("c1"), Text("c9"), Text("c2")}, 10)
	must(t, err)
	wantCols := []Column{{"ts", ColumnType{KindTimestamp, 0}}, {"card", ColumnType{KindText, 0}},
		{"amount", ColumnType{KindDouble, 0}}, {"note", ColumnType{KindText, 0}}}
	if !reflect.DeepEqual(r.Columns, wantCols) {
		t.Fatalf("columns %v", r.Columns)
	}
	checkRecent(t, r, [][][]Value{
		{rtxEvent(5000, "c1", 50, "e"), rtxEvent(4000, "c1", 40, "d"),
			rtxEvent(3000, "c1", 30, "late")},
		{},
		{rtxEvent(7000, "c2", 2, "second"), rtxEvent(7000, "c2", 1, "first")},
	})
}

func testRecentProjection(t *testing.T, c *Client) {
	// Columns in the order asked; n = 2; a repeated key gets its list again.
	r, err := c.Recent(bg(t), "rtx", []Value{Text("c1"), Text("c2"), Text("c1")}, 2,
		"note", "ts")
	must(t, err)
	if r.Column("note") != 0 || r.Column("ts") != 1 || len(r.Columns) != 2 {
		t.Fatalf("columns %v", r.Columns)
	}
	c1 := [][]Value{{Text("e"), Timestamp(5000)}, {Text("d"), Timestamp(4000)}}
	checkRecent(t, r, [][][]Value{c1,
		{{Text("second"), Timestamp(7000)}, {Text("first"), Timestamp(7000)}}, c1})
	// n = 1: only the newest.
	r, err = c.Recent(bg(t), "rtx", []Value{Text("c1")}, 1, "amount")
	must(t, err)
	checkRecent(t, r, [][][]Value{{{Double(50)}}})
}

func testRecentErrors(t *testing.T, c *Client) {
	k := []Value{Text("c1")}
	_, err := c.Recent(bg(t), "nope", k, 3)
	if se := serverError(t, err, CodeUnknownStream); !strings.Contains(se.Message, "nope") {
		t.Fatalf("UNKNOWN_STREAM %+v", se)
	}
	_, err = c.Recent(bg(t), "plain", k, 3)
	if se := serverError(t, err, CodeUnsupported); !strings.Contains(se.Message, "plain") {
		t.Fatalf("UNSUPPORTED %+v", se)
	}
	for _, n := range []uint32{0, MaxRecentN + 1} {
		_, err = c.Recent(bg(t), "rtx", k, n)
		if se := serverError(t, err, CodeInvalidArgument); n != 0 &&
			!strings.Contains(se.Message, "257") {
			t.Fatalf("n = %d: %+v", n, se)
		}
	}
	_, err = c.Recent(bg(t), "rtx", k, 3, "ts", "colour")
	if se := serverError(t, err, CodeUnknownColumn); se.Column != "colour" {
		t.Fatalf("UNKNOWN_COLUMN %+v", se)
	}
	_, err = c.Recent(bg(t), "rtx", k, 3, "ts", "ts")
	if se := serverError(t, err, CodeDuplicateColumn); se.Column != "ts" {
		t.Fatalf("DUPLICATE_COLUMN %+v", se)
	}
	_, err = c.Recent(bg(t), "rtx", []Value{Text("c1"), BigInt(1)}, 3)
	if se := serverError(t, err, CodeTypeMismatch); se.Row != 1 || se.Column != "card" {
		t.Fatalf("TYPE_MISMATCH %+v", se)
	}
	_, err = c.Recent(bg(t), "rtx", []Value{Null{}}, 3)
	if se := serverError(t, err, CodeNullKey); se.Row != 0 || se.Column != "card" {
		t.Fatalf("NULL_KEY %+v", se)
	}
	_, err = c.Recent(bg(t), "rtx", []Value{}, 3)
	serverError(t, err, CodeBatchEmpty)
	// The connection keeps serving.
	r, err := c.Recent(bg(t), "rtx", k, 1, "note")
	must(t, err)
	checkRecent(t, r, [][][]Value{{{Text("e")}}})
}

// testRecentContext: the recent item of card_recent, named and ad hoc, exact values.
func testRecentContext(t *testing.T, c *Client) {
	r, err := c.Context(bg(t), "card_recent", Param("card", Text("c1")))
	must(t, err)
	checkItem(t, r, "last", g(Text("c1"), row(Double(50), Timestamp(5000)),
		row(Double(40), Timestamp(4000))))
	if it := r.Item("last"); !reflect.DeepEqual(it.Columns, []Column{
		{"amount", ColumnType{KindDouble, 0}}, {"ts", ColumnType{KindTimestamp, 0}}}) {
		t.Fatalf("columns %v", it.Columns)
	}
	r, err = c.Context(bg(t), "card_recent", Param("card", Text("c9")))
	must(t, err)
	checkItem(t, r, "last", g(Text("c9")))
	r, err = c.ContextItems(bg(t), "recent(rtx, 'c2', 3, columns => (note)) AS r")
	must(t, err)
	checkItem(t, r, "r", g(Text("c2"), row(Text("second")), row(Text("first"))))
	// Planning refuses it with the code RECENT itself answers (UNSUPPORTED).
	_, err = c.ContextItems(bg(t), "recent(plain, 'c1', 2) AS r")
	if se := serverError(t, err, CodeUnsupported); !strings.Contains(se.Message,
		"stream plain keeps no recent events") {
		t.Fatalf("recent item of a stream without recent: %+v", se)
	}
}
