package main

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	tarn "github.com/tarn-db/tarn/clients/go"
)

func TestParseFlags(t *testing.T) {
	base := []string{"-addr", "127.0.0.1:1", "-context", "fraud_check", "-params", "p"}
	c, err := parseFlags(base)
	if err != nil {
		t.Fatal(err)
	}
	if c.conns != 1 || c.warmupS != 1 || c.seconds != 5 || c.items != 0 || c.procs != 1 {
		t.Errorf("defaults: %+v", c)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-context", "x", "-params", "p"}, "-addr HOST:PORT is required"},
		{[]string{"-addr", "a:1", "-params", "p"}, "-context NAME is required"},
		{[]string{"-addr", "a:1", "-context", "x"}, "-params FILE is required"},
		{append(base, "-conns", "0"), "-conns must be 1..4096, not 0"},
		{append(base, "-conns", "5000"), "-conns must be 1..4096, not 5000"},
		{append(base, "-seconds", "0"), "-seconds must be above 0 and at most 3600, not 0"},
		{append(base, "-seconds", "-1.5"), "-seconds must be above 0 and at most 3600, not -1.5"},
		{append(base, "-seconds", "NaN"), "-seconds must be above 0 and at most 3600, not NaN"},
		{append(base, "-warmup", "-1"), "-warmup must be 0..3600 seconds, not -1"},
		{append(base, "-items", "-1"), "-items must be 0 (no check) or more, not -1"},
		{append(base, "-procs", "0"), "-procs must be 1 or more, not 0"},
		{append(base, "extra"), `unexpected argument "extra"`},
		{append(base, "-nope"), "flag provided but not defined: -nope"},
	} {
		_, err := parseFlags(tc.args)
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want %q", tc.args, err, tc.want)
		}
	}
}

func TestRunRefusesBeforeConnecting(t *testing.T) {
	var out strings.Builder
	err := run([]string{"-addr", "127.0.0.1:1", "-context", "c", "-params", "/nonexistent"}, &out)
	if err == nil || !strings.Contains(err.Error(), "-params") || out.Len() != 0 {
		t.Errorf("error %v, output %q", err, out.String())
	}
}

func TestJudge(t *testing.T) {
	two := &tarn.ContextReply{Items: make([]tarn.ContextItem, 2)}
	se := &tarn.ServerError{Code: tarn.CodeUnknownContext, Message: "no such context",
		Row: tarn.NoRow}
	for _, c := range []struct {
		reply        *tarn.ContextReply
		err          error
		items        int
		counted, end bool
	}{
		{two, nil, 0, false, false},
		{two, nil, 2, false, false},
		{two, nil, 3, true, false},
		{nil, se, 0, true, false},
		{nil, &tarn.ConnError{Err: se}, 0, false, true}, // a code that closed the connection
		{nil, &tarn.ConnError{Err: errors.New("EOF")}, 0, false, true},
		{nil, &tarn.ProtocolError{Message: "bad"}, 0, false, true},
		{nil, context.DeadlineExceeded, 0, false, true},
	} {
		msg, err := judge(c.reply, c.err, c.items)
		if (msg != "") != c.counted || (err != nil) != c.end {
			t.Errorf("judge(%v, %d) = %q, %v", c.err, c.items, msg, err)
		}
	}
}

// fakeConn answers calls in process (no server): a parameter "k=bad" gets an ERROR reply,
// every other a one-item reply; after failAfter calls (if > 0) the connection breaks.
type fakeConn struct {
	mu        sync.Mutex
	first     []string
	calls     int
	failAfter int
}

func (f *fakeConn) call(ctx context.Context, p []tarn.ContextParam) (*tarn.ContextReply, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.calls == 0 {
		f.first = append(f.first, string(p[0].Value.(tarn.Text)))
	}
	f.calls++
	if f.failAfter > 0 && f.calls > f.failAfter {
		return nil, &tarn.ConnError{Err: errors.New("connection reset")}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if p[0].Value == tarn.Text("bad") {
		return nil, &tarn.ServerError{Code: tarn.CodeTypeMismatch, Message: "bad key",
			Row: tarn.NoRow}
	}
	return &tarn.ContextReply{Items: make([]tarn.ContextItem, 1)}, nil
}

func TestMeasureCountsAndOffsets(t *testing.T) {
	sets, err := parseParams("k=a\nk=b\nk=bad\nk=c\nk=d\nk=e\n")
	if err != nil {
		t.Fatal(err)
	}
	fakes := []*fakeConn{{}, {}, {}}
	calls := []callFunc{fakes[0].call, fakes[1].call, fakes[2].call}
	cfg := &config{context: "ctx", conns: 3, warmupS: 0.02, seconds: 0.05, items: 1, procs: 1}
	r, err := measure(context.Background(), cfg, calls, sets)
	if err != nil {
		t.Fatal(err)
	}
	var starts []string
	for _, f := range fakes {
		starts = append(starts, f.first...)
	}
	if !reflect.DeepEqual(starts, []string{"a", "bad", "d"}) { // lines 0, 2, 4 of 6
		t.Errorf("connections started at %v", starts)
	}
	if r.hist.Count() == 0 || r.errors == 0 || r.errors >= r.hist.Count() {
		t.Fatalf("requests %d errors %d", r.hist.Count(), r.errors)
	}
	if r.corrected.Count() < r.hist.Count() || r.measured < 50*time.Millisecond {
		t.Errorf("corrected %d of %d, measured %v", r.corrected.Count(), r.hist.Count(),
			r.measured)
	}
	line, err := json.Marshal(r.report(cfg))
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(line, &doc); err != nil {
		t.Fatal(err)
	}
	if fe, _ := doc["first_error"].(string); !strings.Contains(fe, "bad key") {
		t.Errorf("first_error %v", doc["first_error"])
	}
	for _, k := range []string{"client", "go_version", "context", "conns", "procs", "warmup_s",
		"seconds", "requests", "warmup_requests", "errors", "throughput_per_s", "latency_us",
		"corrected_latency_us"} {
		if _, ok := doc[k]; !ok {
			t.Errorf("no %s in %s", k, line)
		}
	}
	if !strings.Contains(string(line), `"warmup_s":0.020,"seconds":0.050,`) {
		t.Errorf("3 decimals: %s", line)
	}
}

func TestMeasureEndsOnBrokenConnection(t *testing.T) {
	sets, _ := parseParams("k=a\n")
	calls := []callFunc{(&fakeConn{}).call, (&fakeConn{failAfter: 3}).call}
	cfg := &config{conns: 2, warmupS: 0, seconds: 10, procs: 1}
	_, err := measure(context.Background(), cfg, calls, sets)
	if err == nil || !strings.HasPrefix(err.Error(), "connection 1: ") ||
		!errors.Is(err, tarn.ErrClosed) {
		t.Errorf("error %v", err)
	}
}

func TestReportWithoutErrors(t *testing.T) {
	r := merge([]*connStats{{hist: NewHistogram(), corrected: NewHistogram(),
		warmup: NewHistogram()}}, window{}, time.Second)
	line, err := json.Marshal(r.report(&config{context: "c", conns: 1, procs: 1, seconds: 1}))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(line), `"requests":0,"warmup_requests":0,"errors":0,"first_error":null,`+
		`"throughput_per_s":0.000,"latency_us":{"count":0,"mean":0.000,`) {
		t.Errorf("%s", line)
	}
}
