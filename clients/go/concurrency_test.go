package tarn

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Concurrency test sizes.
const (
	goroutines         = 16
	callsPerGoroutine  = 64
	overLimitCallers   = 600 // more than the server's max_in_flight (256)
	frozenCallDeadline = 200 * time.Millisecond
	// waitBound bounds polling for a state the client reaches asynchronously.
	waitBound = 10 * time.Second
)

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitBound)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// testConcurrency: 16 goroutines share one connection, each checking that every reply is
// its own (its keys, its values); then more callers than max_in_flight at once.
func testConcurrency(t *testing.T, c *Client) {
	ctx := bg(t)
	_, err := c.SQL(ctx, "CREATE TABLE conc (id BIGINT PRIMARY KEY, v BIGINT)")
	must(t, err)
	var rows [][]Value
	for id := 0; id < goroutines*callsPerGoroutine; id++ {
		rows = append(rows, []Value{BigInt(id), BigInt(id*7 + 1)})
	}
	_, err = c.Upsert(ctx, "conc", []string{"id", "v"}, rows)
	must(t, err)
	errs := make(chan error, goroutines)
	var wg sync.WaitGroup
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			errs <- worker(ctx, c, g)
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		must(t, err)
	}
	// Callers beyond max_in_flight wait for a slot: none is refused TOO_MANY_IN_FLIGHT.
	results := make(chan error, overLimitCallers)
	for i := 0; i < overLimitCallers; i++ {
		go func(i int) {
			g, err := c.Get(ctx, "conc", []Value{BigInt(i)})
			if err == nil && (len(g.Rows) != 1 || g.Rows[0][0] != BigInt(i)) {
				err = fmt.Errorf("GET %d answered %v", i, g.Rows)
			}
			results <- err
		}(i)
	}
	for i := 0; i < overLimitCallers; i++ {
		if n := c.InFlight(); n > int(c.ServerInfo().MaxInFlight) {
			t.Errorf("%d requests in flight, over the server's %d", n, c.ServerInfo().MaxInFlight)
		}
		must(t, <-results)
	}
}

// worker reads its keys, rewrites them and reads them back: any reply handed to the wrong
// caller shows up as a wrong key or value.
func worker(ctx context.Context, c *Client, g int) error {
	for i := 0; i < callsPerGoroutine; i++ {
		id := g*callsPerGoroutine + i
		r, err := c.Get(ctx, "conc", []Value{BigInt(id)})
		if err != nil {
			return err
		}
		if got := r.Rows[0]; got[0] != BigInt(id) || got[1] != BigInt(id*7+1) {
			return fmt.Errorf("goroutine %d: GET %d answered %v", g, id, got)
		}
		if _, err := c.UpsertMerge(ctx, "conc", []string{"id", "v"},
			[][]Value{{BigInt(id), BigInt(-id)}}); err != nil {
			return err
		}
		if err := c.Ping(ctx); err != nil {
			return err
		}
		r, err = c.Get(ctx, "conc", []Value{BigInt(id)})
		if err != nil {
			return err
		}
		if got := r.Rows[0]; got[1] != BigInt(-id) {
			return fmt.Errorf("goroutine %d: GET %d after UPSERT answered %v", g, id, got)
		}
		if _, err := c.Upsert(ctx, "conc", []string{"id", "v"},
			[][]Value{{BigInt(id), BigInt(id*7 + 1)}}); err != nil {
			return err
		}
	}
	return nil
}

// sentWaiting counts requests written to the socket and not answered yet.
func (c *Client) sentWaiting() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, cl := range c.pending {
		if cl.sent {
			n++
		}
	}
	return n
}

// testDeadlines freezes the server (SIGSTOP) so that replies are late for certain: a call
// whose deadline passes returns ctx.Err(), its late reply is dropped, a call waiting for an
// in-flight slot gives up unsent, and the connection keeps serving.
func testDeadlines(t *testing.T, s *server, c *Client) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.Ping(cancelled); !errors.Is(err, context.Canceled) {
		t.Fatalf("call with a cancelled context: %v", err)
	}
	s.freeze()
	defer s.signal(syscall.SIGCONT)
	ctx, cancel := context.WithTimeout(context.Background(), frozenCallDeadline)
	defer cancel()
	if _, err := c.Get(ctx, "p", []Value{BigInt(1)}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("call to a frozen server: %v", err)
	}
	// Cancelled once its request was written: the slot is held until the late reply.
	ctx1, cancel1 := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err := c.Get(ctx1, "p", []Value{BigInt(2)}); done <- err }()
	waitFor(t, "the GET to be written", func() bool { return c.sentWaiting() >= 1 })
	cancel1()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled call to a frozen server: %v", err)
	}
	if sent, n := c.sentWaiting(), c.InFlight(); sent < 1 || n != sent {
		t.Fatalf("in flight %d, written and unanswered %d: a sent request keeps its slot", n,
			sent)
	}
	// Fill every other slot, then one more call must wait and give up unsent.
	limit := int(c.ServerInfo().MaxInFlight)
	held := c.InFlight()
	results := make(chan error, limit)
	long := bg(t)
	for i := held; i < limit; i++ {
		go func() { results <- c.Ping(long) }()
	}
	waitFor(t, "every in-flight slot taken", func() bool { return c.InFlight() == limit })
	ctx2, cancel2 := context.WithTimeout(context.Background(), frozenCallDeadline)
	defer cancel2()
	if err := c.Ping(ctx2); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("call waiting for a slot: %v", err)
	}
	if n := c.InFlight(); n != limit {
		t.Fatalf("in flight %d after a call gave up waiting, want %d", n, limit)
	}
	s.signal(syscall.SIGCONT)
	for i := held; i < limit; i++ {
		must(t, <-results)
	}
	waitFor(t, "the late replies to free their slots", func() bool { return c.InFlight() == 0 })
	assertUsable(t, c)
}

// TestAuthAndConnectionLoss: a token is required (AUTH_FAILED without it or with a wrong
// one), a frozen server times a Dial out, Close fails waiting calls, and a killed server
// fails every waiting and later call with ErrClosed.
func TestAuthAndConnectionLoss(t *testing.T) {
	s := startServer(t, "--auth-token", "s3cret")
	for _, token := range []string{"", "wrong"} {
		ctx := bg(t)
		_, err := Dial(ctx, Options{Address: s.addr, AuthToken: token})
		serverError(t, err, CodeAuthFailed)
	}
	c := s.dial(t, Options{AuthToken: "s3cret"})
	must(t, c.Ping(bg(t)))
	closing := s.dial(t, Options{AuthToken: "s3cret"})

	s.freeze()
	ctx, cancel := context.WithTimeout(context.Background(), frozenCallDeadline)
	defer cancel()
	if _, err := Dial(ctx, Options{Address: s.addr, AuthToken: "s3cret"}); !errors.Is(err,
		context.DeadlineExceeded) {
		t.Fatalf("Dial of a frozen server: %v", err)
	}
	waiting := make(chan error, 4)
	go func() { waiting <- closing.Ping(bg(t)) }()
	waitFor(t, "a call in flight", func() bool { return closing.InFlight() == 1 })
	must(t, closing.Close())
	if err := <-waiting; !errors.Is(err, ErrClosed) || !errors.Is(err, ErrClientClosed) {
		t.Fatalf("call waiting when the client closed: %v", err)
	}

	for i := 0; i < 3; i++ {
		go func() { waiting <- c.Ping(bg(t)) }()
	}
	waitFor(t, "three calls in flight", func() bool { return c.InFlight() == 3 })
	s.kill()
	for i := 0; i < 3; i++ {
		if err := <-waiting; !errors.Is(err, ErrClosed) {
			t.Fatalf("call waiting when the server died: %v", err)
		}
	}
	if err := c.Ping(bg(t)); !errors.Is(err, ErrClosed) || c.Err() == nil {
		t.Fatalf("call on a broken connection: %v", err)
	}
}

// TestIdleTimeoutClosesConnection: the server's idle timeout sends TIMEOUT with request id 0
// and closes; the client's error says so and every later call fails with ErrClosed.
func TestIdleTimeoutClosesConnection(t *testing.T) {
	s := startServer(t, "--idle-timeout-s", "1")
	c := s.dial(t, Options{})
	must(t, c.Ping(bg(t)))
	waitFor(t, "the idle timeout to close the connection", func() bool { return c.Err() != nil })
	err := c.Ping(bg(t))
	if !errors.Is(err, ErrClosed) || !errors.Is(err, CodeTimeout) {
		t.Fatalf("call after the idle timeout: %v", err)
	}
}
