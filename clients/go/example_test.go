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
