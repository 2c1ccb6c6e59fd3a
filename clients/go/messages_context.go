package tarn

import "fmt"

// ContextParam is one parameter of a named context call: the declared name and its value
// (of the parameter's type, with the coercions of docs/PROTOCOL.md "Values and column types";
// Null{} is a value, and an item keyed by a NULL parameter reads nothing).
type ContextParam struct {
	Name  string
	Value Value
}

// Param is shorthand for ContextParam{name, v}.
func Param(name string, v Value) ContextParam { return ContextParam{name, v} }

// ContextCall is what a CONTEXT request calls: ContextNamed or ContextAdHoc.
type ContextCall interface{ isContextCall() }

// ContextNamed is a context created with CREATE CONTEXT (planned once, at creation).
type ContextNamed string

// ContextAdHoc is an item list in the syntax of CREATE CONTEXT … AS (docs/SQL.md
// "Contexts"), planned for the call; at most MaxSQLBytes. Ad hoc items take no parameters.
type ContextAdHoc string

func (ContextNamed) isContextCall() {}
func (ContextAdHoc) isContextCall() {}

// ContextRequest is a CONTEXT call with its parameters, sent in the order given (each
// declared parameter exactly once, any order).
type ContextRequest struct {
	Call   ContextCall
	Params []ContextParam
}

// ContextReply is everything one context call read: per shard the as-of time its items were
// read at (ascending by shard), and per item, in the context's order, its columns and groups.
type ContextReply struct {
	Shards []ShardAsOf
	Items  []ContextItem
}

// ShardAsOf is the state a shard served its part of a call at: every event appended there at
// or before AsOfUs is included, none after.
type ShardAsOf struct {
	Shard  uint32
	AsOfUs int64
}

// ContextItem is one item of a reply. Groups has one group per key the item read: one for a
// row/features item keyed by a constant, a parameter or a single value (none when that key is
// NULL or the reference found nothing), one per distinct non-NULL key for a list item.
type ContextItem struct {
	Name    string
	Columns []Column
	Groups  []ContextGroup
}

// ContextGroup holds the rows read for one key, each of exactly len(Columns) values: a row
// item one row (all NULL when the key has no row), a features item one (key, aggregates…),
// a knn item up to k rows nearest first (first column "distance"), a recent item up to n
// events newest first.
type ContextGroup struct {
	Key  Value
	Rows [][]Value
}

// Item returns the item called name, or nil.
func (r *ContextReply) Item(name string) *ContextItem {
	for i := range r.Items {
		if r.Items[i].Name == name {
			return &r.Items[i]
		}
	}
	return nil
}

// Column returns the index of the column called name, or -1.
func (it *ContextItem) Column(name string) int {
	for i, c := range it.Columns {
		if c.Name == name {
			return i
		}
	}
	return -1
}

func (*ContextRequest) Opcode() Opcode { return OpcodeContext }
func (*ContextReply) Opcode() Opcode   { return OpcodeContext }
func (*ContextRequest) isRequest()     {}
func (*ContextReply) isResponse()      {}

// CONTEXT call kind bytes.
const (
	contextCallNamed uint8 = 1
	contextCallAdHoc uint8 = 2
)

// Smallest encodings, for the decoder's counts: a parameter is a name (4) and a value tag (1);
// a shard entry u32 + i64 (12); an item a name, a column count and a group count (12); a group
// a key tag and a row count (5); a row its value count (4).
const (
	contextParamMinBytes = 5
	contextShardBytes    = 12
	contextItemMinBytes  = 12
	contextGroupMinBytes = 5
	contextRowMinBytes   = 4
)

func (m *ContextRequest) encode(e *encoder) {
	switch c := m.Call.(type) {
	case ContextNamed:
		e.u8(contextCallNamed)
		e.str(string(c))
	case ContextAdHoc:
		e.u8(contextCallAdHoc)
		e.str(string(c))
	default:
		// No call: an ad hoc call without items, which the server refuses as a parse error.
		e.u8(contextCallAdHoc)
		e.str("")
	}
	e.count(len(m.Params))
	for _, p := range m.Params {
		e.str(p.Name)
		e.value(p.Value)
	}
}

func decodeContext(d *decoder) Request {
	m := &ContextRequest{}
	at := d.pos
	switch kind := d.u8("call kind"); {
	case d.err != nil:
	case kind == contextCallNamed:
		m.Call = ContextNamed(d.str("context name"))
	case kind == contextCallAdHoc:
		m.Call = ContextAdHoc(d.strLimited("context items", MaxSQLBytes, CodeValueTooLong))
	default:
		d.fail(CodeMalformed, at, fmt.Sprintf("invalid call kind %d", kind))
	}
	n := d.count("parameter", contextParamMinBytes, MaxContextParams, CodeMalformed)
	m.Params = make([]ContextParam, 0, n)
	for i := 0; i < n && d.err == nil; i++ {
		name := d.str("parameter name")
		m.Params = append(m.Params, ContextParam{name, d.value()})
	}
	return m
}

func (m *ContextReply) encode(e *encoder) {
	e.count(len(m.Shards))
	for _, s := range m.Shards {
		e.u32(s.Shard)
		e.i64(s.AsOfUs)
	}
	e.count(len(m.Items))
	for _, it := range m.Items {
		e.str(it.Name)
		e.columns(it.Columns)
		e.count(len(it.Groups))
		for _, g := range it.Groups {
			e.value(g.Key)
			e.rows(g.Rows)
		}
	}
}

// decodeContextReply checks every count against the context limits, every row's arity
// against its item's columns, and the rows of the whole reply against MaxContextRows.
func decodeContextReply(d *decoder) Response {
	n := d.count("shard", contextShardBytes, MaxContextShards, CodeMalformed)
	m := &ContextReply{Shards: make([]ShardAsOf, 0, n)}
	for i := 0; i < n && d.err == nil; i++ {
		shard := d.u32("shard")
		m.Shards = append(m.Shards, ShardAsOf{shard, d.i64("as_of")})
	}
	n = d.count("item", contextItemMinBytes, MaxContextItems, CodeMalformed)
	m.Items = make([]ContextItem, 0, n)
	rowsLeft := int(MaxContextRows)
	for i := 0; i < n && d.err == nil; i++ {
		it := ContextItem{Name: d.str("item name"), Columns: d.columns()}
		g := d.count("group", contextGroupMinBytes, MaxContextRows, CodeMalformed)
		it.Groups = make([]ContextGroup, 0, g)
		for j := 0; j < g && d.err == nil; j++ {
			grp := ContextGroup{Key: d.value()}
			grp.Rows = d.contextRows(len(it.Columns), &rowsLeft)
			it.Groups = append(it.Groups, grp)
		}
		m.Items = append(m.Items, it)
	}
	return m
}

// contextRows reads one group's rows, each of exactly arity values, taking their number from
// the reply's remaining row budget.
func (d *decoder) contextRows(arity int, rowsLeft *int) [][]Value {
	at := d.pos
	r := d.count("row", contextRowMinBytes, MaxContextRows, CodeMalformed)
	if d.err == nil && r > *rowsLeft {
		d.fail(CodeMalformed, at, fmt.Sprintf("more than %d rows in a CONTEXT reply",
			MaxContextRows))
		return nil
	}
	*rowsLeft -= r
	rows := make([][]Value, 0, r)
	for i := 0; i < r && d.err == nil; i++ {
		rows = append(rows, d.replyRow(i, arity))
	}
	return rows
}
