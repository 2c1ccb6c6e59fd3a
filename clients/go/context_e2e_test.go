package tarn

import (
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// Bounds of the concurrent context calls: goroutines on one connection, calls each.
const (
	contextCallers        = 8
	contextCallsPerCaller = 25
)

// contextSchema: cards point to accounts (card → card.account_id → account row and the
// account's features), and cards have an embedding with an index over it.
const contextSchema = "CREATE TABLE cards (id TEXT PRIMARY KEY, account_id TEXT, holder TEXT, " +
	"emb VECTOR(2)); " +
	"CREATE TABLE accounts (id TEXT PRIMARY KEY, owner TEXT, tier BIGINT); " +
	"CREATE STREAM tx (ts TIMESTAMP, account TEXT, amount DOUBLE) " +
	"WITH (event_time = 'ts', partition = 'account'); " +
	"CREATE MATERIALIZED VIEW acct_life WITH (window = 'lifetime') AS " +
	"SELECT account, count(*) AS txns, sum(amount) AS spend FROM tx GROUP BY account; " +
	"CREATE INDEX cards_emb ON cards USING hnsw (emb)"

// cardContext: a two-hop chain (c → a, f by c.account_id), a kNN near the card's own row and
// a list item over the kNN rows' accounts.
const cardContext = "CREATE CONTEXT card_go (card TEXT) AS SELECT " +
	"row(cards, card, columns => (id, account_id, holder)) AS c, " +
	"row(accounts, c.account_id) AS a, " +
	"features(acct_life, c.account_id) AS f, " +
	"knn(cards_emb, like => card, k => 3, columns => (id, account_id)) AS near, " +
	"row(accounts, near.account_id, columns => (id, owner)) AS near_a"

// setupContext writes the schema and data: card c1 at (1,0) → a1, c2 at (2,0) → a2, c3 at
// (3,0) with no account, c4 at (9,0) → a-gone (no such row); events for a1 and a2.
func setupContext(t *testing.T, c *Client) {
	ctx := bg(t)
	_, err := c.SQL(ctx, contextSchema)
	must(t, err)
	_, err = c.Upsert(ctx, "cards", []string{"id", "account_id", "holder", "emb"}, [][]Value{
		{Text("c1"), Text("a1"), Text("Ann"), Vector{1, 0}},
		{Text("c2"), Text("a2"), Text("Bo"), Vector{2, 0}},
		{Text("c3"), Null{}, Text("Cy"), Vector{3, 0}},
		{Text("c4"), Text("a-gone"), Text("Di"), Vector{9, 0}},
	})
	must(t, err)
	_, err = c.Upsert(ctx, "accounts", []string{"id", "owner", "tier"}, [][]Value{
		{Text("a1"), Text("Ann Corp"), BigInt(3)},
		{Text("a2"), Text("Bo Ltd"), BigInt(7)},
	})
	must(t, err)
	ev := func(ts int64, account string, amount float64) []Value {
		return []Value{Timestamp(ts), Text(account), Double(amount)}
	}
	_, err = c.IngestRows(ctx, "tx", []string{"ts", "account", "amount"}, [][]Value{
		ev(1000, "a1", 10.5), ev(2000, "a2", 1000), ev(3000, "a1", 20.25), ev(4000, "a1", 3.25),
	}, nil)
	must(t, err)
	r, err := c.SQL(ctx, cardContext)
	must(t, err)
	if r.Message != "CREATE CONTEXT card_go" {
		t.Fatalf("CREATE CONTEXT reply %+v", r)
	}
}

// group is a test's expectation of one ContextGroup.
type group struct {
	key  Value
	rows [][]Value
}

func g(key Value, rows ...[]Value) group {
	if rows == nil {
		rows = [][]Value{}
	}
	return group{key, rows}
}
func row(vs ...Value) []Value { return vs }

// checkItem requires the item called name, with these groups exactly.
func checkItem(t *testing.T, r *ContextReply, name string, want ...group) {
	t.Helper()
	it := r.Item(name)
	if it == nil {
		t.Fatalf("no item %q in %+v", name, r)
	}
	got := make([]group, len(it.Groups))
	for i, gr := range it.Groups {
		got[i] = group{gr.Key, gr.Rows}
	}
	if len(want) == 0 {
		want = []group{}
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("item %s: groups\n got %v\nwant %v", name, got, want)
	}
}

func shardIDs(r *ContextReply) []uint32 {
	ids := []uint32{}
	for _, s := range r.Shards {
		ids = append(ids, s.Shard)
	}
	return ids
}

// TestContextEndToEnd: a named context with a two-hop chain, a kNN and a list item against
// a real tarnd (2 shards), missing keys at each hop, an ad hoc call, the call errors, and
// concurrent calls on one connection. No BUSY is retried: without writes a call's holds are
// never broken (PROTOCOL.md "Consistency"), so BUSY here is a failure.
func TestContextEndToEnd(t *testing.T) {
	s := startServer(t)
	c := s.dial(t, Options{ClientName: "go-context"})
	setupContext(t, c)
	t.Run("chain", func(t *testing.T) { testContextChain(t, c) })
	t.Run("missing", func(t *testing.T) { testContextMissing(t, c) })
	t.Run("adhoc", func(t *testing.T) { testContextAdHoc(t, c) })
	t.Run("errors", func(t *testing.T) { testContextErrors(t, c) })
	t.Run("concurrent", func(t *testing.T) { testContextConcurrent(t, c) })
}

// checkCardC1 is the whole answer of card_go(c1), from what setupContext wrote.
func checkCardC1(t *testing.T, r *ContextReply) {
	t.Helper()
	var names []string
	for _, it := range r.Items {
		names = append(names, it.Name)
	}
	if !reflect.DeepEqual(names, []string{"c", "a", "f", "near", "near_a"}) {
		t.Fatalf("items %v", names)
	}
	checkItem(t, r, "c", g(Text("c1"), row(Text("c1"), Text("a1"), Text("Ann"))))
	checkItem(t, r, "a", g(Text("a1"), row(Text("a1"), Text("Ann Corp"), BigInt(3))))
	checkItem(t, r, "f", g(Text("a1"), row(Text("a1"), BigInt(3), Double(34))))
	// l2 distances from (1,0): c1 0, c2 1, c3 2 (c4 at 8 is fourth).
	checkItem(t, r, "near", g(Text("c1"), row(Double(0), Text("c1"), Text("a1")),
		row(Double(1), Text("c2"), Text("a2")), row(Double(2), Text("c3"), Null{})))
	// One group per distinct non-NULL account of the kNN rows, in order of first appearance.
	checkItem(t, r, "near_a", g(Text("a1"), row(Text("a1"), Text("Ann Corp"))),
		g(Text("a2"), row(Text("a2"), Text("Bo Ltd"))))
}

func testContextChain(t *testing.T, c *Client) {
	before := time.Now().UnixMicro()
	r, err := c.Context(bg(t), "card_go", Param("card", Text("c1")))
	must(t, err)
	checkCardC1(t, r)
	// The kNN searches every shard: both list the state they served the call at.
	if !reflect.DeepEqual(shardIDs(r), []uint32{0, 1}) {
		t.Fatalf("shards %+v", r.Shards)
	}
	for _, sh := range r.Shards {
		// A µs timestamp of this run (the events' own times are 1000..4000 µs).
		if sh.AsOfUs < before-1_000_000 || sh.AsOfUs > time.Now().UnixMicro()+1_000_000 {
			t.Fatalf("shard %d as of %d, call sent at %d", sh.Shard, sh.AsOfUs, before)
		}
	}
	f := r.Item("f")
	wantCols := []Column{{"account", ColumnType{KindText, 0}},
		{"txns", ColumnType{KindBigInt, 0}}, {"spend", ColumnType{KindDouble, 0}}}
	if !reflect.DeepEqual(f.Columns, wantCols) || r.Item("near").Column("distance") != 0 ||
		r.Item("near").Columns[0].Type.Kind != KindDouble {
		t.Fatalf("columns f %v near %v", f.Columns, r.Item("near").Columns)
	}
	// Parameters by name: c2's chain, its own kNN neighbourhood.
	r, err = c.Context(bg(t), "card_go", Param("card", Text("c2")))
	must(t, err)
	checkItem(t, r, "a", g(Text("a2"), row(Text("a2"), Text("Bo Ltd"), BigInt(7))))
	checkItem(t, r, "f", g(Text("a2"), row(Text("a2"), BigInt(1), Double(1000))))
	checkItem(t, r, "near_a", g(Text("a2"), row(Text("a2"), Text("Bo Ltd"))),
		g(Text("a1"), row(Text("a1"), Text("Ann Corp"))))
}

func testContextMissing(t *testing.T, c *Client) {
	nulls3 := row(Null{}, Null{}, Null{})
	// No such card: its row all NULL; nothing to follow; the kNN has no query vector.
	r, err := c.Context(bg(t), "card_go", Param("card", Text("nope")))
	must(t, err)
	checkItem(t, r, "c", g(Text("nope"), nulls3))
	checkItem(t, r, "a")
	checkItem(t, r, "f")
	checkItem(t, r, "near", g(Text("nope")))
	checkItem(t, r, "near_a")
	// A NULL account_id: the dependent items read no key.
	r, err = c.Context(bg(t), "card_go", Param("card", Text("c3")))
	must(t, err)
	checkItem(t, r, "c", g(Text("c3"), row(Text("c3"), Null{}, Text("Cy"))))
	checkItem(t, r, "a")
	checkItem(t, r, "f")
	// An account row that does not exist: one all-NULL row; the view's empty values.
	r, err = c.Context(bg(t), "card_go", Param("card", Text("c4")))
	must(t, err)
	checkItem(t, r, "a", g(Text("a-gone"), nulls3))
	checkItem(t, r, "f", g(Text("a-gone"), row(Text("a-gone"), BigInt(0), Null{})))
	// A NULL parameter: no item reads anything.
	r, err = c.Context(bg(t), "card_go", Param("card", Null{}))
	must(t, err)
	for _, name := range []string{"c", "a", "f", "near", "near_a"} {
		checkItem(t, r, name)
	}
}

func testContextAdHoc(t *testing.T, c *Client) {
	r, err := c.ContextItems(bg(t), "row(accounts, 'a2') AS a, "+
		"features(acct_life, a.id, columns => (txns, spend)) AS f")
	must(t, err)
	checkItem(t, r, "a", g(Text("a2"), row(Text("a2"), Text("Bo Ltd"), BigInt(7))))
	checkItem(t, r, "f", g(Text("a2"), row(BigInt(1), Double(1000))))
	// Row and view of one key live on one shard: only it served the call.
	if len(r.Shards) != 1 {
		t.Fatalf("shards %+v", r.Shards)
	}
	// Ad hoc items take no parameters (only Do can send them).
	_, err = c.Do(bg(t), &ContextRequest{ContextAdHoc("row(accounts, 'a2') AS a"),
		[]ContextParam{Param("p", BigInt(1))}})
	if se := serverError(t, err, CodeInvalidArgument); !strings.Contains(se.Message,
		"takes no parameters, got p") {
		t.Fatalf("parameters of an ad hoc call: %+v", se)
	}
	_, err = c.ContextItems(bg(t), "row(nope_table, 'x') AS a")
	if se := serverError(t, err, CodeUnknownTable); !strings.Contains(se.Message, "nope_table") {
		t.Fatalf("UNKNOWN_TABLE %+v", se)
	}
}

func testContextErrors(t *testing.T, c *Client) {
	_, err := c.Context(bg(t), "no_such_ctx")
	se := serverError(t, err, CodeUnknownContext)
	if !strings.Contains(se.Message, "no_such_ctx") || se.HasRow() {
		t.Fatalf("UNKNOWN_CONTEXT %+v", se)
	}
	_, err = c.Context(bg(t), "card_go", Param("card", BigInt(5)))
	se = serverError(t, err, CodeTypeMismatch)
	if se.Column != "card" || se.HasRow() {
		t.Fatalf("TYPE_MISMATCH %+v", se)
	}
	_, err = c.Context(bg(t), "card_go")
	if se := serverError(t, err, CodeMissingValue); se.Column != "card" {
		t.Fatalf("MISSING_VALUE %+v", se)
	}
	_, err = c.Context(bg(t), "card_go", Param("card", Text("c1")), Param("bogus", BigInt(1)))
	if se := serverError(t, err, CodeInvalidArgument); !strings.Contains(se.Message, "bogus") {
		t.Fatalf("INVALID_ARGUMENT %+v", se)
	}
	// The connection keeps serving.
	r, err := c.Context(bg(t), "card_go", Param("card", Text("c1")))
	must(t, err)
	checkCardC1(t, r)
}

// testContextConcurrent: goroutines share the connection, each calling card_go for its own
// card and checking the whole answer (pipelined replies must reach the right caller).
func testContextConcurrent(t *testing.T, c *Client) {
	want := map[string]*ContextReply{}
	for _, card := range []string{"c1", "c2", "c3", "c4"} {
		r, err := c.Context(bg(t), "card_go", Param("card", Text(card)))
		must(t, err)
		want[card] = r
	}
	var wg sync.WaitGroup
	errs := make(chan error, contextCallers)
	for i := 0; i < contextCallers; i++ {
		card := fmt.Sprintf("c%d", 1+i%4)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; n < contextCallsPerCaller; n++ {
				r, err := c.Context(bg(t), "card_go", Param("card", Text(card)))
				if err != nil {
					errs <- err
					return
				}
				// No writes meanwhile: the same items (the as-of times may move on).
				if !reflect.DeepEqual(r.Items, want[card].Items) {
					errs <- fmt.Errorf("card_go(%s) call %d: %+v", card, n, r.Items)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
