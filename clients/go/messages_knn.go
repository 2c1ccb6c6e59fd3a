package tarn

import "fmt"

// KnnQuery is what a KNN request searches near: KnnVector or KnnLike.
type KnnQuery interface{ isKnnQuery() }

// KnnVector is the query vector itself (exactly the index's dimension, finite components).
type KnnVector []float32

// KnnLike names a row of the index's table by primary key: its indexed vector is the query.
type KnnLike struct{ Key Value }

func (KnnVector) isKnnQuery() {}
func (KnnLike) isKnnQuery()   {}

// KNN query kind bytes.
const (
	knnQueryVector uint8 = 1
	knnQueryLike   uint8 = 2
)

// KnnRequest asks a vector index for the K rows nearest to Query among the rows matching
// Filter (a SQL condition on the table's columns; "" = every row). The server judges K
// (1..MaxKnnK), Ef and the names, so its errors name the offending value.
type KnnRequest struct {
	Index string
	Query KnnQuery
	K     uint32
	// Ef is the graph search's candidate-list size, 1..MaxKnnEf; 0 = the index's ef_search
	// (on the wire: ef flag 0). An Ef below K searches with K.
	Ef     uint32
	Filter string
	// Columns to return, in this order; empty = every column of the table.
	Columns []string
}

// KnnReply holds the nearest rows, nearest first. Distances is the number of distances the
// search computed on all shards (a machine-independent measure of its work).
type KnnReply struct {
	Distances uint64
	Columns   []Column
	Rows      []KnnRow
}

// KnnRow is one result: its distance under the index's metric (l2: Euclidean; cosine:
// 1 − cos; ip: −a·b; smaller is nearer) and one value per reply column.
type KnnRow struct {
	Distance float32
	Values   []Value
}

func (*KnnRequest) Opcode() Opcode { return OpcodeKnn }
func (*KnnReply) Opcode() Opcode   { return OpcodeKnn }
func (*KnnRequest) isRequest()     {}
func (*KnnReply) isResponse()      {}

func (m *KnnRequest) encode(e *encoder) {
	e.str(m.Index)
	e.u32(m.K)
	e.flag(m.Ef != 0)
	if m.Ef != 0 {
		e.u32(m.Ef)
	}
	switch q := m.Query.(type) {
	case KnnLike:
		e.u8(knnQueryLike)
		e.value(q.Key)
	case KnnVector:
		e.u8(knnQueryVector)
		e.f32s(q)
	default:
		// No query: an empty vector, which the server answers BAD_VECTOR.
		e.u8(knnQueryVector)
		e.count(0)
	}
	e.str(m.Filter)
	e.strs(m.Columns)
}

func decodeKnn(d *decoder) Request {
	m := &KnnRequest{Index: d.str("index"), K: d.u32("k")}
	if d.optional("ef flag") {
		m.Ef = d.u32("ef")
	}
	at := d.pos
	switch kind := d.u8("query kind"); {
	case d.err != nil:
	case kind == knnQueryVector:
		m.Query = KnnVector(d.f32s())
	case kind == knnQueryLike:
		m.Query = KnnLike{d.value()}
	default:
		d.fail(CodeMalformed, at, fmt.Sprintf("invalid query kind %d", kind))
	}
	m.Filter = d.strLimited("filter", MaxFilterBytes, CodeValueTooLong)
	m.Columns = d.names(MaxKnnColumns)
	return m
}

func (m *KnnReply) encode(e *encoder) {
	e.u64(m.Distances)
	e.columns(m.Columns)
	e.count(len(m.Rows))
	for _, r := range m.Rows {
		e.f32(r.Distance)
		e.row(r.Values)
	}
}

// knnMinRowBytes is the smallest encoding of one reply row: distance (4) + value count (4).
const knnMinRowBytes = 8

func decodeKnnReply(d *decoder) Response {
	m := &KnnReply{Distances: d.u64("distances"), Columns: d.columns()}
	n := d.count("KNN row", knnMinRowBytes, MaxKnnK, CodeMalformed)
	m.Rows = make([]KnnRow, 0, n)
	for i := 0; i < n && d.err == nil; i++ {
		dist := d.f32("distance")
		m.Rows = append(m.Rows, KnnRow{dist, d.replyRow(i, len(m.Columns))})
	}
	return m
}
