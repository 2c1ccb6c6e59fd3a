package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync"
	"time"

	tarn "github.com/tarn-db/tarn/clients/go"
)

// callFunc makes one CONTEXT call on one connection.
type callFunc func(context.Context, []tarn.ContextParam) (*tarn.ContextReply, error)

// window is when calls are warm-up and when they are recorded: a call begun before warmEnd
// is warm-up, one begun in [warmEnd, end) is recorded, none is begun at or after end.
type window struct{ warmEnd, end time.Time }

// connStats is what one connection's goroutine measured (its own histograms: no locks).
type connStats struct {
	hist, corrected, warmup *Histogram
	errors                  uint64
	firstErr                string
	firstErrAt, lastDone    time.Time
}

// result is every connection's stats merged.
type result struct {
	hist, corrected *Histogram
	errors          uint64
	firstErr        string
	measured        time.Duration
	warmupCalls     uint64
}

// measure drives one goroutine per call function over the window starting now and merges
// what they recorded. The first connection-level failure cancels the others and is returned.
func measure(ctx context.Context, cfg *config, calls []callFunc,
	sets [][]tarn.ContextParam) (*result, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	t0 := time.Now()
	w := window{warmEnd: t0.Add(secondsDuration(cfg.warmupS))}
	w.end = w.warmEnd.Add(secondsDuration(cfg.seconds))
	stats := make([]*connStats, len(calls))
	var (
		wg       sync.WaitGroup
		once     sync.Once
		firstErr error
	)
	for i := range calls {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			s, err := drive(ctx, calls[i], sets, i*len(sets)/len(calls), w, cfg.items)
			if err != nil {
				once.Do(func() {
					firstErr = connFailure(i, cfg, err)
					cancel()
				})
				return
			}
			stats[i] = s
		}(i)
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	return merge(stats, w, secondsDuration(cfg.seconds)), nil
}

// connFailure names the connection and, for the run's bound, says what ran out.
func connFailure(i int, cfg *config, err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("connection %d: the run did not end within %v (-warmup + -seconds "+
			"+ %v): a call is stuck", i, cfg.bound(), runSlack)
	}
	return fmt.Errorf("connection %d: %w", i, err)
}

// drive is one connection's closed loop, starting at parameter set `start`.
func drive(ctx context.Context, call callFunc, sets [][]tarn.ContextParam, start int,
	w window, items int) (*connStats, error) {
	s := &connStats{hist: NewHistogram(), corrected: NewHistogram(), warmup: NewHistogram()}
	var intervalNs uint64
	for i := start; ; i = (i + 1) % len(sets) {
		begin := time.Now()
		if !begin.Before(w.end) {
			return s, nil
		}
		reply, err := call(ctx, sets[i])
		done := time.Now()
		latNs := uint64(done.Sub(begin))
		if latNs < 1 {
			latNs = 1
		}
		failure, err := judge(reply, err, items)
		if err != nil {
			return nil, err
		}
		if begin.Before(w.warmEnd) {
			s.warmup.Record(latNs)
			continue
		}
		if intervalNs == 0 {
			intervalNs = expectedInterval(s.warmup, latNs)
		}
		s.hist.Record(latNs)
		s.corrected.RecordCorrected(latNs, intervalNs)
		s.lastDone = done
		if failure != "" {
			s.errors++
			if s.firstErr == "" {
				s.firstErr, s.firstErrAt = failure, done
			}
		}
	}
}

// expectedInterval is the corrected histogram's interval, as bench/src/stats.rs picks it:
// the mean warm-up latency (at least 1 ns), or the first recorded latency without warm-up.
func expectedInterval(warmup *Histogram, firstNs uint64) uint64 {
	if warmup.Count() == 0 {
		return firstNs
	}
	return uint64(math.Max(warmup.Mean(), 1))
}

// judge sorts a call's outcome: "" for a good reply, a message for one counted in errors (an
// ERROR reply, or the wrong number of items), or an error that ends the run (a broken
// connection, an undecodable reply, the context's end).
func judge(reply *tarn.ContextReply, err error, items int) (string, error) {
	var se *tarn.ServerError
	switch {
	case err == nil && items > 0 && len(reply.Items) != items:
		return fmt.Sprintf("a reply has %d items, -items wants %d", len(reply.Items), items), nil
	case err == nil:
		return "", nil
	case !errors.Is(err, tarn.ErrClosed) && errors.As(err, &se):
		return se.Error(), nil
	default:
		return "", err
	}
}

// merge adds up the connections' stats. The measured time runs from the end of warm-up to
// the last recorded reply, and is at least the window's length.
func merge(stats []*connStats, w window, seconds time.Duration) *result {
	r := &result{hist: NewHistogram(), corrected: NewHistogram(), measured: seconds}
	for _, s := range stats {
		r.warmupCalls += s.warmup.Count()
	}
	var firstAt time.Time
	for _, s := range stats {
		r.hist.Merge(s.hist)
		r.corrected.Merge(s.corrected)
		r.errors += s.errors
		if s.firstErr != "" && (r.firstErr == "" || s.firstErrAt.Before(firstAt)) {
			r.firstErr, firstAt = s.firstErr, s.firstErrAt
		}
		if d := s.lastDone.Sub(w.warmEnd); s.hist.Count() > 0 && d > r.measured {
			r.measured = d
		}
	}
	return r
}

// report is the JSON line of a run.
func (r *result) report(cfg *config) report {
	var firstErr *string
	if r.firstErr != "" {
		firstErr = &r.firstErr
	}
	return report{Client: "go", GoVersion: runtime.Version(), Context: cfg.context,
		Conns: cfg.conns, Procs: cfg.procs, WarmupS: fixed3(cfg.warmupS),
		Seconds: fixed3(cfg.seconds), Requests: r.hist.Count(), WarmupRequests: r.warmupCalls, Errors: r.errors,
		FirstError: firstErr, Throughput: fixed3(float64(r.hist.Count()) /
			r.measured.Seconds()), Latency: summarize(r.hist),
		Corrected: summarize(r.corrected)}
}
