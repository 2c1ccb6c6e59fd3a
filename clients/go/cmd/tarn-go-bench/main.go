// Command tarn-go-bench is a closed-loop load generator for a named CONTEXT through the Go
// client, so a benchmark can show the client is not the bottleneck (bench/src/bin/
// fraud_check.rs runs it next to the Rust engine and reads its output).
//
//	tarn-go-bench -addr HOST:PORT [-token T] -context NAME -params FILE [-conns N]
//	    [-warmup S] [-seconds S] [-items N] [-procs N]
//
// -params holds one parameter set per line, tab-separated name=value fields, every value
// TEXT. Each of the -conns connections is its own *tarn.Client, driven by one goroutine with
// one call in flight: the next call goes out when the reply arrived. Connection i starts at
// line i*lines/conns and cycles through the file, so connections do not call the same key at
// the same time. Calls begun in the first -warmup seconds are not recorded; their mean
// latency (per connection) is the expected interval of the coordinated-omission-corrected
// histogram, as in bench/src/stats.rs. Calls begun in the next -seconds are recorded from
// just before Context() to its return.
//
// -procs sets GOMAXPROCS (default 1): the benchmark pins this tool to one CPU with taskset,
// and one P on one CPU avoids the scheduler spinning threads that cannot run.
//
// The output is one line of JSON on stdout (see report). An ERROR reply, or a reply without
// exactly -items items when -items > 0, is counted in "errors" (its latency is recorded, as
// the Rust engine records failed completions) and the run goes on. A failed dial, a broken
// connection, an undecodable reply or a run longer than -warmup + -seconds + runSlack ends
// the run: `error: …` on stderr and exit status 1.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"time"

	tarn "github.com/tarn-db/tarn/clients/go"
)

const usage = "usage: tarn-go-bench -addr HOST:PORT [-token T] -context NAME -params FILE " +
	"[-conns N] [-warmup S] [-seconds S] [-items N] [-procs N]"

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "error: %v\n", err)
		os.Exit(1)
	}
}

// config is the validated flags.
type config struct {
	addr, token, context, params string
	conns, items, procs          int
	warmupS, seconds             float64
}

// bound is how long the whole run may take.
func (c *config) bound() time.Duration {
	return secondsDuration(c.warmupS) + secondsDuration(c.seconds) + runSlack
}

func secondsDuration(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

func parseFlags(args []string) (*config, error) {
	fs := flag.NewFlagSet("tarn-go-bench", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c := &config{}
	fs.StringVar(&c.addr, "addr", "", "server address HOST:PORT")
	fs.StringVar(&c.token, "token", "", "auth token (default: none)")
	fs.StringVar(&c.context, "context", "", "named context to call")
	fs.StringVar(&c.params, "params", "", "parameter sets, one per line")
	fs.IntVar(&c.conns, "conns", 1, "connections")
	fs.Float64Var(&c.warmupS, "warmup", 1, "warm-up seconds (calls not recorded)")
	fs.Float64Var(&c.seconds, "seconds", 5, "measured seconds")
	fs.IntVar(&c.items, "items", 0, "if > 0, the number of items every reply must have")
	fs.IntVar(&c.procs, "procs", 1, "GOMAXPROCS")
	if err := fs.Parse(args); err != nil {
		return nil, fmt.Errorf("%v (%s)", err, usage)
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q (%s)", fs.Arg(0), usage)
	}
	switch {
	case c.addr == "":
		return nil, errors.New("-addr HOST:PORT is required")
	case c.context == "":
		return nil, errors.New("-context NAME is required")
	case c.params == "":
		return nil, errors.New("-params FILE is required")
	case c.conns < 1 || c.conns > maxConns:
		return nil, fmt.Errorf("-conns must be 1..%d, not %d", maxConns, c.conns)
	case !(c.seconds > 0 && c.seconds <= maxPhaseSeconds):
		return nil, fmt.Errorf("-seconds must be above 0 and at most %v, not %v",
			maxPhaseSeconds, c.seconds)
	case !(c.warmupS >= 0 && c.warmupS <= maxPhaseSeconds):
		return nil, fmt.Errorf("-warmup must be 0..%v seconds, not %v", maxPhaseSeconds,
			c.warmupS)
	case c.items < 0:
		return nil, fmt.Errorf("-items must be 0 (no check) or more, not %d", c.items)
	case c.procs < 1:
		return nil, fmt.Errorf("-procs must be 1 or more, not %d", c.procs)
	}
	return c, nil
}

func run(args []string, out io.Writer) error {
	cfg, err := parseFlags(args)
	if err != nil {
		return err
	}
	sets, err := readParamsFile(cfg.params)
	if err != nil {
		return err
	}
	runtime.GOMAXPROCS(cfg.procs)
	ctx, cancel := context.WithTimeout(context.Background(), cfg.bound())
	defer cancel()
	calls := make([]callFunc, 0, cfg.conns)
	for i := 0; i < cfg.conns; i++ {
		c, err := tarn.Dial(ctx, tarn.Options{Address: cfg.addr, AuthToken: cfg.token,
			ClientName: "tarn-go-bench"})
		if err != nil {
			return fmt.Errorf("connection %d: connect to %s: %w", i, cfg.addr, err)
		}
		defer c.Close()
		calls = append(calls, func(ctx context.Context, p []tarn.ContextParam) (
			*tarn.ContextReply, error) {
			return c.Context(ctx, cfg.context, p...)
		})
	}
	res, err := measure(ctx, cfg, calls, sets)
	if err != nil {
		return err
	}
	line, err := json.Marshal(res.report(cfg))
	if err != nil {
		return err
	}
	_, err = out.Write(append(line, '\n'))
	return err
}

// report is the one JSON line the tool prints.
type report struct {
	Client    string `json:"client"`
	GoVersion string `json:"go_version"`
	Context   string `json:"context"`
	Conns     int    `json:"conns"`
	Procs     int    `json:"procs"`
	WarmupS   fixed3 `json:"warmup_s"`
	Seconds   fixed3 `json:"seconds"`
	Requests  uint64 `json:"requests"`
	// WarmupRequests are the calls made during warm-up (not recorded; they cost the server
	// too, so a caller dividing the server's CPU time by calls needs them).
	WarmupRequests uint64  `json:"warmup_requests"`
	Errors         uint64  `json:"errors"`
	FirstError     *string `json:"first_error"`
	Throughput     fixed3  `json:"throughput_per_s"`
	Latency        latency `json:"latency_us"`
	Corrected      latency `json:"corrected_latency_us"`
}

// latency summarises a nanosecond histogram in microseconds (bench/src/stats.rs LatSummary).
type latency struct {
	Count uint64 `json:"count"`
	Mean  fixed3 `json:"mean"`
	P50   fixed3 `json:"p50"`
	P90   fixed3 `json:"p90"`
	P99   fixed3 `json:"p99"`
	P999  fixed3 `json:"p999"`
	Max   fixed3 `json:"max"`
}

func summarize(h *Histogram) latency {
	us := func(ns uint64) fixed3 { return fixed3(float64(ns) / 1000) }
	return latency{Count: h.Count(), Mean: fixed3(h.Mean() / 1000),
		P50: us(h.ValueAtQuantile(0.5)), P90: us(h.ValueAtQuantile(0.9)),
		P99: us(h.ValueAtQuantile(0.99)), P999: us(h.ValueAtQuantile(0.999)), Max: us(h.Max())}
}

// fixed3 is a float written with exactly 3 decimals.
type fixed3 float64

func (f fixed3) MarshalJSON() ([]byte, error) {
	if math.IsNaN(float64(f)) || math.IsInf(float64(f), 0) {
		return nil, fmt.Errorf("non-finite number %v", float64(f))
	}
	return []byte(fmt.Sprintf("%.3f", float64(f))), nil
}
