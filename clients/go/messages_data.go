package tarn

import (
	"fmt"
	"math"
)

// ---------------------------------------------------------------------------------------------
// STATS

// StatsRequest asks for per-shard statistics (empty payload).
type StatsRequest struct{}

// StatsReply has one entry per shard, in shard order.
type StatsReply struct{ Shards []ShardStats }

// ShardStats describes one shard.
type ShardStats struct {
	Shard       uint32
	CPU         int32 // -1 = unpinned
	Rows        uint64
	LogBytes    uint64
	DurableLSN  uint64
	Connections uint32
	Ops         []OpStats
	Indexes     []IndexStats
}

// OpStats is the latency summary of one opcode on one shard, in microseconds.
type OpStats struct {
	Op                                 string
	Count, P50Us, P99Us, P999Us, MaxUs uint64
}

// IndexStats is one vector index on one shard.
type IndexStats struct {
	Index                                             string
	RowsIndexed, RowsPending, Tombstones, MemoryBytes uint64
}

func (*StatsRequest) Opcode() Opcode    { return OpcodeStats }
func (*StatsReply) Opcode() Opcode      { return OpcodeStats }
func (*StatsRequest) isRequest()        {}
func (*StatsReply) isResponse()         {}
func (*StatsRequest) encode(e *encoder) {}
func decodeStats(d *decoder) Request    { return &StatsRequest{} }

func (m *StatsReply) encode(e *encoder) {
	e.count(len(m.Shards))
	for _, s := range m.Shards {
		e.u32(s.Shard)
		e.i32(s.CPU)
		e.u64(s.Rows)
		e.u64(s.LogBytes)
		e.u64(s.DurableLSN)
		e.u32(s.Connections)
		e.count(len(s.Ops))
		for _, o := range s.Ops {
			e.str(o.Op)
			for _, x := range []uint64{o.Count, o.P50Us, o.P99Us, o.P999Us, o.MaxUs} {
				e.u64(x)
			}
		}
		e.count(len(s.Indexes))
		for _, ix := range s.Indexes {
			e.str(ix.Index)
			for _, x := range []uint64{ix.RowsIndexed, ix.RowsPending, ix.Tombstones,
				ix.MemoryBytes} {
				e.u64(x)
			}
		}
	}
}

func decodeStatsReply(d *decoder) Response {
	// shard (4) + cpu (4) + 3 × u64 (24) + connections (4) + op and index counts (8)
	n := d.count("shard", 44, math.MaxUint32, CodeMalformed)
	m := &StatsReply{Shards: make([]ShardStats, 0, n)}
	for i := 0; i < n && d.err == nil; i++ {
		s := ShardStats{Shard: d.u32("shard"), CPU: d.i32("cpu"), Rows: d.u64("rows"),
			LogBytes: d.u64("log_bytes"), DurableLSN: d.u64("durable_lsn"),
			Connections: d.u32("connections")}
		// op name (≥ 4) + 5 × u64
		k := d.count("op", 44, math.MaxUint32, CodeMalformed)
		s.Ops = make([]OpStats, 0, k)
		for j := 0; j < k && d.err == nil; j++ {
			s.Ops = append(s.Ops, OpStats{d.str("op"), d.u64("count"), d.u64("p50_us"),
				d.u64("p99_us"), d.u64("p999_us"), d.u64("max_us")})
		}
		// index name (≥ 4) + 4 × u64
		k = d.count("index", 36, math.MaxUint32, CodeMalformed)
		s.Indexes = make([]IndexStats, 0, k)
		for j := 0; j < k && d.err == nil; j++ {
			s.Indexes = append(s.Indexes, IndexStats{d.str("index"), d.u64("rows_indexed"),
				d.u64("rows_pending"), d.u64("tombstones"), d.u64("memory_bytes")})
		}
		m.Shards = append(m.Shards, s)
	}
	return m
}

// ---------------------------------------------------------------------------------------------
// INGEST

// Producer tags a batch so the server applies it at most once (retries are safe); seqs of one
// producer id must increase (docs/PROTOCOL.md, INGEST, "Producer tags").
type Producer struct{ ID, Seq uint64 }

// JSONLayout says how an INGEST JSON body is split into events.
type JSONLayout uint8

const (
	// LayoutDetect: an array if the first non-blank byte is '[', else JSON lines.
	LayoutDetect JSONLayout = 0
	// LayoutLines: one JSON object per line.
	LayoutLines JSONLayout = 1
	// LayoutArray: one JSON array of objects.
	LayoutArray JSONLayout = 2
)

// IngestBody is JSONBody or RowsBody.
type IngestBody interface{ isIngestBody() }

// JSONBody is events as JSON text (rules in docs/SQL.md).
type JSONBody struct {
	Layout JSONLayout
	Data   []byte
}

// RowsBody is events as typed rows: values in Columns order; unlisted columns are NULL.
type RowsBody struct {
	Columns []string
	Rows    [][]Value
}

func (*JSONBody) isIngestBody() {}
func (*RowsBody) isIngestBody() {}

// IngestRequest appends a batch of events to a stream, all or nothing.
type IngestRequest struct {
	Stream   string
	Producer *Producer // nil = untagged
	Body     IngestBody
}

// IngestReply: Events = events in the batch; Duplicate = the producer tag was already
// applied and nothing was appended again.
type IngestReply struct {
	Events    uint64
	Duplicate bool
}

// INGEST body kind bytes.
const (
	ingestJSON uint8 = 1
	ingestRows uint8 = 2
)

func (*IngestRequest) Opcode() Opcode { return OpcodeIngest }
func (*IngestReply) Opcode() Opcode   { return OpcodeIngest }
func (*IngestRequest) isRequest()     {}
func (*IngestReply) isResponse()      {}

func (m *IngestRequest) encode(e *encoder) {
	e.str(m.Stream)
	e.flag(m.Producer != nil)
	if m.Producer != nil {
		e.u64(m.Producer.ID)
		e.u64(m.Producer.Seq)
	}
	switch b := m.Body.(type) {
	case *JSONBody:
		e.u8(ingestJSON)
		e.u8(uint8(b.Layout))
		e.bytes(b.Data)
	case *RowsBody:
		e.u8(ingestRows)
		e.strs(b.Columns)
		e.rows(b.Rows)
	default:
		// A nil body: an empty typed batch, which the server answers BATCH_EMPTY.
		e.u8(ingestRows)
		e.count(0)
		e.count(0)
	}
}

func decodeIngest(d *decoder) Request {
	m := &IngestRequest{Stream: d.str("stream")}
	if d.optional("producer flag") {
		m.Producer = &Producer{d.u64("producer id"), d.u64("producer seq")}
	}
	at := d.pos
	switch kind := d.u8("body kind"); {
	case d.err != nil:
	case kind == ingestJSON:
		lat := d.pos
		layout := d.u8("JSON layout")
		if d.err == nil && layout > uint8(LayoutArray) {
			d.fail(CodeMalformed, lat, fmt.Sprintf("invalid JSON layout %d", layout))
		}
		data := d.bytes("JSON data", MaxFramePayloadBytes, CodeFrameTooLarge)
		m.Body = &JSONBody{JSONLayout(layout), data}
	case kind == ingestRows:
		cols := d.names(MaxColumns)
		m.Body = &RowsBody{cols, d.requestRows()}
	default:
		d.fail(CodeMalformed, at, fmt.Sprintf("invalid INGEST body kind %d", kind))
	}
	return m
}

func (m *IngestReply) encode(e *encoder) {
	e.u64(m.Events)
	e.flag(m.Duplicate)
}

func decodeIngestReply(d *decoder) Response {
	m := &IngestReply{Events: d.u64("events")}
	at := d.pos
	switch b := d.u8("duplicate"); {
	case d.err != nil:
	case b <= 1:
		m.Duplicate = b == 1
	default:
		d.fail(CodeMalformed, at, fmt.Sprintf("invalid duplicate flag %d", b))
	}
	return m
}

// ---------------------------------------------------------------------------------------------
// FEATURES and HISTORY

// FeaturesRequest reads a feature view for keys, now (AsOfUs nil) or as of a past time (µs
// since the epoch; a time not in the past is INVALID_ARGUMENT).
type FeaturesRequest struct {
	View   string
	Keys   []Value
	AsOfUs *int64
}

// FeaturesReply: Columns = the view's key column, then its aggregates; one row per requested
// key, in request order. AsOfUs = the earliest of the rows' as-of times.
type FeaturesReply struct {
	AsOfUs  int64
	Columns []Column
	Rows    []FeatureRow
}

// FeatureRow is one key's features: every event appended at or before AsOfUs is included;
// NewestEventTimeUs is the newest applied event's time (nil = no event held); Values has one
// entry per reply column (the key first; an unknown key gets count 0 and NULLs).
type FeatureRow struct {
	AsOfUs            int64
	NewestEventTimeUs *int64
	Values            []Value
}

// HistoryPair asks for a key's features as of a past time (µs since the epoch).
type HistoryPair struct {
	Key    Value
	AsOfUs int64
}

// HistoryRequest is point-in-time history: the view's features for each pair.
type HistoryRequest struct {
	View  string
	Pairs []HistoryPair
}

// HistoryReply has one row per pair, in request order (AsOfUs = the pair's time).
type HistoryReply struct {
	Columns []Column
	Rows    []FeatureRow
}

func (*FeaturesRequest) Opcode() Opcode { return OpcodeFeatures }
func (*FeaturesReply) Opcode() Opcode   { return OpcodeFeatures }
func (*HistoryRequest) Opcode() Opcode  { return OpcodeHistory }
func (*HistoryReply) Opcode() Opcode    { return OpcodeHistory }
func (*FeaturesRequest) isRequest()     {}
func (*FeaturesReply) isResponse()      {}
func (*HistoryRequest) isRequest()      {}
func (*HistoryReply) isResponse()       {}

func (m *FeaturesRequest) encode(e *encoder) {
	encodeKeys(e, m.View, m.Keys)
	e.flag(m.AsOfUs != nil)
	if m.AsOfUs != nil {
		e.i64(*m.AsOfUs)
	}
}

func decodeFeatures(d *decoder) Request {
	m := &FeaturesRequest{View: d.str("view")}
	m.Keys = d.keys()
	if d.optional("as_of flag") {
		t := d.i64("as_of")
		m.AsOfUs = &t
	}
	return m
}

func (m *HistoryRequest) encode(e *encoder) {
	e.str(m.View)
	e.count(len(m.Pairs))
	for _, p := range m.Pairs {
		e.value(p.Key)
		e.i64(p.AsOfUs)
	}
}

func decodeHistory(d *decoder) Request {
	m := &HistoryRequest{View: d.str("view")}
	n := d.count("pair", 9, MaxBatchRows, CodeBatchTooLarge)
	m.Pairs = make([]HistoryPair, 0, n)
	for i := 0; i < n && d.err == nil; i++ {
		k := d.value()
		m.Pairs = append(m.Pairs, HistoryPair{k, d.i64("as_of")})
	}
	return m
}

func (e *encoder) featureRows(rows []FeatureRow) {
	e.count(len(rows))
	for _, r := range rows {
		e.i64(r.AsOfUs)
		e.flag(r.NewestEventTimeUs != nil)
		if r.NewestEventTimeUs != nil {
			e.i64(*r.NewestEventTimeUs)
		}
		e.row(r.Values)
	}
}

// featureRows reads a count (≤ MaxBatchRows) of rows with exactly arity values each.
func (d *decoder) featureRows(arity int) []FeatureRow {
	n := d.count("feature row", 10, MaxBatchRows, CodeMalformed)
	rows := make([]FeatureRow, 0, n)
	for i := 0; i < n && d.err == nil; i++ {
		r := FeatureRow{AsOfUs: d.i64("row as_of")}
		if d.optional("newest flag") {
			t := d.i64("newest event time")
			r.NewestEventTimeUs = &t
		}
		r.Values = d.replyRow(i, arity)
		rows = append(rows, r)
	}
	return rows
}

func (m *FeaturesReply) encode(e *encoder) {
	e.i64(m.AsOfUs)
	e.columns(m.Columns)
	e.featureRows(m.Rows)
}

func decodeFeaturesReply(d *decoder) Response {
	m := &FeaturesReply{AsOfUs: d.i64("as_of"), Columns: d.columns()}
	m.Rows = d.featureRows(len(m.Columns))
	return m
}

func (m *HistoryReply) encode(e *encoder) {
	e.columns(m.Columns)
	e.featureRows(m.Rows)
}

func decodeHistoryReply(d *decoder) Response {
	m := &HistoryReply{Columns: d.columns()}
	m.Rows = d.featureRows(len(m.Columns))
	return m
}
