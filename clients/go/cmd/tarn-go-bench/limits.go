package main

import "time"

// The limits of tarn-go-bench. Each bounds what one run may ask for, so a typo in a flag or
// a stuck server ends in a clear error instead of a hang or an out-of-memory.

// histMaxNs is the largest latency the histogram tells apart: 60 s. A larger value is
// recorded as histMaxNs (and counted in Histogram.Clamped). It sets the histogram's size:
// 3,808 buckets of 8 bytes (30 KiB) per histogram, three per connection.
const histMaxNs uint64 = 60_000_000_000

// runSlack is the time the whole run may take beyond -warmup + -seconds: dialing every
// connection and waiting for the calls in flight at the end of the window. When it is
// exhausted the run fails ("a call is stuck") instead of hanging; a larger value only
// delays that error.
const runSlack = 30 * time.Second

// maxConns is the most connections (-conns): each is a *tarn.Client with two goroutines and
// its buffers, and a server's connection limit is far below it anyway.
const maxConns = 4096

// maxPhaseSeconds is the longest -warmup and the longest -seconds (one hour each): a
// benchmark window longer than that is a typo, and it keeps every duration far from
// time.Duration's overflow.
const maxPhaseSeconds = 3600.0

// maxParamsFileBytes is the largest -params file read (64 MiB): the whole file is held in
// memory as parsed parameter sets, one per line.
const maxParamsFileBytes = 64 << 20
