package tarn_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	tarn "github.com/tarn-db/tarn/clients/go"
)

// Example is the README's example (compiled, not run: it needs a server on :7070).
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := tarn.Dial(ctx, tarn.Options{Address: "127.0.0.1:7070", AuthToken: ""})
	if err != nil {
		log.Fatal(err) // errors.Is(err, tarn.CodeAuthFailed) for a refused token
	}
	defer c.Close()

	if _, err := c.SQL(ctx, "CREATE TABLE IF NOT EXISTS cards "+
		"(card_id TEXT PRIMARY KEY, risk DOUBLE, emb VECTOR(3))"); err != nil {
		log.Fatal(err)
	}
	_, err = c.Upsert(ctx, "cards", []string{"card_id", "risk", "emb"}, [][]tarn.Value{
		{tarn.Text("c1"), tarn.Double(0.5), tarn.Vector{1, 0, 0}},
	})
	var se *tarn.ServerError
	if errors.As(err, &se) {
		log.Fatalf("%v: row %d, column %q", se.Code, se.Row, se.Column)
	}
	got, err := c.Get(ctx, "cards", []tarn.Value{tarn.Text("c1"), tarn.Text("nope")})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(got.Rows[0], got.Rows[1] == nil) // [c1 0.5 [1 0 0]] true
}

// ExampleClient_Context is the README's context example (compiled, not run).
func ExampleClient_Context() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := tarn.Connect(ctx, "127.0.0.1:7070")
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	_, err = c.SQL(ctx, "CREATE CONTEXT card_ctx (card TEXT) AS SELECT "+
		"row(cards, card) AS c, "+
		"row(accounts, c.account_id) AS a, "+ // the second hop: a column of item c
		"features(acct_life, c.account_id) AS f, "+
		"knn(cards_emb, like => card, k => 3, columns => (id, account_id)) AS near, "+
		"row(accounts, near.account_id, columns => (id, owner)) AS near_a") // one group per account
	if err != nil {
		log.Fatal(err)
	}
	r, err := c.Context(ctx, "card_ctx", tarn.Param("card", tarn.Text("c1")))
	if err != nil {
		// errors.Is(err, tarn.CodeUnknownContext); TYPE_MISMATCH and MISSING_VALUE name the
		// parameter in (*tarn.ServerError).Column
		log.Fatal(err)
	}
	a := r.Item("a")        // items in the context's order; nil if no such name
	if len(a.Groups) == 1 { // no group: the reference found nothing (NULL, no row)
		owner := a.Groups[0].Rows[0][a.Column("owner")] // a missing account: a row of Null{}
		fmt.Println(owner)
	}
	for _, g := range r.Item("near").Groups { // knn: rows nearest first, column 0 = distance
		for _, row := range g.Rows {
			fmt.Println(g.Key, row[0].(tarn.Double), row[1])
		}
	}
	for _, s := range r.Shards { // every shard that served the call, ascending
		fmt.Println(s.Shard, s.AsOfUs) // all its items were read at this one state
	}
	r, err = c.ContextItems(ctx, "row(accounts, 'a2') AS a, features(acct_life, a.id) AS f")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(r.Items))
}

// ExampleClient_Recent is the README's recent-events example (compiled, not run).
func ExampleClient_Recent() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := tarn.Connect(ctx, "127.0.0.1:7070")
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	_, err = c.SQL(ctx, "CREATE STREAM tx (ts TIMESTAMP, card TEXT, amount DOUBLE) "+
		"WITH (event_time = 'ts', partition = 'card', recent = 20)")
	if err != nil {
		log.Fatal(err)
	}
	r, err := c.Recent(ctx, "tx", []tarn.Value{tarn.Text("c1"), tarn.Text("c2")}, 5, "ts", "amount")
	if err != nil {
		// UNKNOWN_STREAM; UNSUPPORTED (a stream without recent); INVALID_ARGUMENT (n outside
		// 1..MaxRecentN); UNKNOWN_COLUMN / DUPLICATE_COLUMN and NULL_KEY / TYPE_MISMATCH (with
		// the key's index in (*tarn.ServerError).Row) name the column in .Column
		log.Fatal(err)
	}
	for i, events := range r.Keys { // r.Keys[i] belongs to the i-th key asked for
		for _, ev := range events { // newest first, one value per r.Columns
			fmt.Println(i, ev[r.Column("ts")].(tarn.Timestamp).Time(), ev[1])
		}
	}
}
