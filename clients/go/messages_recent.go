package tarn

// RecentRequest asks for the newest events of some partition keys of a stream created
// WITH (recent = N) (docs/SQL.md "Recent events"). The server judges the stream, N
// (1..MaxRecentN) and the column names, so its errors name the offending value.
type RecentRequest struct {
	Stream string
	// Keys are values of the stream's partition column (1..MaxRecentKeys; a key may repeat).
	Keys []Value
	// N is the number of events wanted per key; above the stream's N returns what is kept.
	N uint32
	// Columns to return, in this order; empty = every column of the stream.
	Columns []string
}

// RecentReply holds, per requested key in request order, that key's events newest first
// (by event time, then later-appended first among equal times), each a row of exactly
// len(Columns) values; an empty list for a key without events.
type RecentReply struct {
	Columns []Column
	Keys    [][][]Value
}

// Column returns the index of the column called name, or -1.
func (r *RecentReply) Column(name string) int {
	for i, c := range r.Columns {
		if c.Name == name {
			return i
		}
	}
	return -1
}

func (*RecentRequest) Opcode() Opcode { return OpcodeRecent }
func (*RecentReply) Opcode() Opcode   { return OpcodeRecent }
func (*RecentRequest) isRequest()     {}
func (*RecentReply) isResponse()      {}

// Smallest encodings, for the decoder's counts: a key is a value tag (1); a column name its
// length (4); a reply key its event count (4); an event row its value count (4).
const (
	recentKeyMinBytes    = 1
	recentNameMinBytes   = 4
	recentEventsMinBytes = 4
	recentRowMinBytes    = 4
)

func (m *RecentRequest) encode(e *encoder) {
	e.str(m.Stream)
	e.count(len(m.Keys))
	for _, k := range m.Keys {
		e.value(k)
	}
	e.u32(m.N)
	e.strs(m.Columns)
}

// decodeRecent checks the layout and the list limits only (the server judges n and names).
func decodeRecent(d *decoder) Request {
	m := &RecentRequest{Stream: d.str("stream")}
	n := d.count("key", recentKeyMinBytes, MaxRecentKeys, CodeBatchTooLarge)
	m.Keys = make([]Value, 0, n)
	for i := 0; i < n && d.err == nil; i++ {
		m.Keys = append(m.Keys, d.value())
	}
	m.N = d.u32("n")
	c := d.count("column", recentNameMinBytes, MaxRecentColumns, CodeMalformed)
	m.Columns = make([]string, 0, c)
	for i := 0; i < c && d.err == nil; i++ {
		m.Columns = append(m.Columns, d.str("column name"))
	}
	return m
}

func (m *RecentReply) encode(e *encoder) {
	e.columns(m.Columns)
	e.count(len(m.Keys))
	for _, rows := range m.Keys {
		e.rows(rows)
	}
}

// decodeRecentReply bounds the keys by MaxRecentKeys and each key's events by MaxRecentN, and
// checks every row's arity against the columns (rows numbered across the whole reply, as the
// Rust decoder does).
func decodeRecentReply(d *decoder) Response {
	m := &RecentReply{Columns: d.columns()}
	n := d.count("key", recentEventsMinBytes, MaxRecentKeys, CodeMalformed)
	m.Keys = make([][][]Value, 0, n)
	index := 0
	for i := 0; i < n && d.err == nil; i++ {
		e := d.count("event", recentRowMinBytes, MaxRecentN, CodeMalformed)
		rows := make([][]Value, 0, e)
		for j := 0; j < e && d.err == nil; j++ {
			rows = append(rows, d.replyRow(index, len(m.Columns)))
			index++
		}
		m.Keys = append(m.Keys, rows)
	}
	return m
}
