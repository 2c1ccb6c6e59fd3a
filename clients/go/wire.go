package tarn

import (
	"encoding/binary"
	"fmt"
	"math"
	"unicode/utf8"
)

// Opcode is a frame opcode (docs/PROTOCOL.md §1).
type Opcode uint16

// Opcodes of protocol version 1.
const (
	OpcodeHello    Opcode = 0x01
	OpcodePing     Opcode = 0x02
	OpcodeSQL      Opcode = 0x03
	OpcodeUpsert   Opcode = 0x04
	OpcodeGet      Opcode = 0x05
	OpcodeDelete   Opcode = 0x06
	OpcodeStats    Opcode = 0x07
	OpcodeIngest   Opcode = 0x08
	OpcodeFeatures Opcode = 0x09
	OpcodeHistory  Opcode = 0x0A
	OpcodeKnn      Opcode = 0x0B
	OpcodeRecent   Opcode = 0x0C
	OpcodeContext  Opcode = 0x0D
	OpcodeError    Opcode = 0xFF
)

var opNames = map[Opcode]string{
	OpcodeHello: "HELLO", OpcodePing: "PING", OpcodeSQL: "SQL", OpcodeUpsert: "UPSERT", OpcodeGet: "GET",
	OpcodeDelete: "DELETE", OpcodeStats: "STATS", OpcodeIngest: "INGEST", OpcodeFeatures: "FEATURES",
	OpcodeHistory: "HISTORY", OpcodeKnn: "KNN", OpcodeRecent: "RECENT", OpcodeContext: "CONTEXT",
	OpcodeError: "ERROR",
}

// String is the upper-case name used in messages, e.g. "UPSERT".
func (o Opcode) String() string {
	if n, ok := opNames[o]; ok {
		return n
	}
	return fmt.Sprintf("opcode %#06x", uint16(o))
}

// FlagResponse is header flag bit 0: set on every server→client frame. Other bits must be 0.
const FlagResponse uint16 = 0x0001

// Header is a frame header.
type Header struct {
	PayloadLen uint32
	Opcode     Opcode
	Flags      uint16
	RequestID  uint64
}

func (h Header) put(b []byte) {
	binary.LittleEndian.PutUint32(b[0:], h.PayloadLen)
	binary.LittleEndian.PutUint16(b[4:], uint16(h.Opcode))
	binary.LittleEndian.PutUint16(b[6:], h.Flags)
	binary.LittleEndian.PutUint64(b[8:], h.RequestID)
}

// ParseHeader reads a header from the first HeaderLen bytes of b (len(b) ≥ HeaderLen).
func ParseHeader(b []byte) Header {
	return Header{
		PayloadLen: binary.LittleEndian.Uint32(b[0:]),
		Opcode:     Opcode(binary.LittleEndian.Uint16(b[4:])),
		Flags:      binary.LittleEndian.Uint16(b[6:]),
		RequestID:  binary.LittleEndian.Uint64(b[8:]),
	}
}

// ---------------------------------------------------------------------------------------------
// Encoding: infallible appends to a byte slice.

type encoder struct{ buf []byte }

func (e *encoder) u8(v uint8)   { e.buf = append(e.buf, v) }
func (e *encoder) u16(v uint16) { e.buf = binary.LittleEndian.AppendUint16(e.buf, v) }
func (e *encoder) u32(v uint32) { e.buf = binary.LittleEndian.AppendUint32(e.buf, v) }
func (e *encoder) u64(v uint64) { e.buf = binary.LittleEndian.AppendUint64(e.buf, v) }
func (e *encoder) i32(v int32)  { e.u32(uint32(v)) }
func (e *encoder) i64(v int64)  { e.u64(uint64(v)) }
func (e *encoder) f32(v float32) {
	e.u32(math.Float32bits(v))
}
func (e *encoder) count(n int) { e.u32(uint32(n)) }
func (e *encoder) bytes(b []byte) {
	e.count(len(b))
	e.buf = append(e.buf, b...)
}
func (e *encoder) str(s string) {
	e.count(len(s))
	e.buf = append(e.buf, s...)
}

func (e *encoder) flag(set bool) {
	if set {
		e.u8(1)
	} else {
		e.u8(0)
	}
}

func (e *encoder) strs(list []string) {
	e.count(len(list))
	for _, s := range list {
		e.str(s)
	}
}

func (e *encoder) f32s(v []float32) {
	e.count(len(v))
	for _, x := range v {
		e.f32(x)
	}
}

// value encodes a Value; nil is NULL.
func (e *encoder) value(v Value) {
	if v == nil {
		e.u8(0)
		return
	}
	e.u8(v.Tag())
	switch x := v.(type) {
	case Null:
	case Bool:
		e.flag(bool(x))
	case BigInt:
		e.i64(int64(x))
	case Double:
		e.u64(math.Float64bits(float64(x)))
	case Text:
		e.str(string(x))
	case Bytes:
		e.bytes(x)
	case Timestamp:
		e.i64(int64(x))
	case Vector:
		e.f32s(x)
	}
}

func (e *encoder) row(r []Value) {
	e.count(len(r))
	for _, v := range r {
		e.value(v)
	}
}

func (e *encoder) rows(rows [][]Value) {
	e.count(len(rows))
	for _, r := range rows {
		e.row(r)
	}
}

func (e *encoder) columnType(t ColumnType) {
	e.u8(uint8(t.Kind))
	if t.Kind == KindVector {
		e.u32(t.Dim)
	}
}

func (e *encoder) columns(cols []Column) {
	e.count(len(cols))
	for _, c := range cols {
		e.str(c.Name)
		e.columnType(c.Type)
	}
}

// ---------------------------------------------------------------------------------------------
// Decoding: every length and count is checked against the bytes left (and the limits) before
// anything is allocated. The first error is sticky: later reads return zero values, so a
// message decoder checks d.err once at the end (loops stop early because counts read as 0).

type decoder struct {
	buf []byte
	pos int
	ctx string // the message's opcode name, for error messages
	err *DecodeError
}

func newDecoder(buf []byte, ctx string) *decoder { return &decoder{buf: buf, ctx: ctx} }

func (d *decoder) remaining() int { return len(d.buf) - d.pos }

func (d *decoder) fail(code ErrorCode, at int, what string) {
	if d.err == nil {
		d.err = &DecodeError{code, fmt.Sprintf("%s: %s at payload offset %d", d.ctx, what, at)}
	}
}

func (d *decoder) take(n int, what string) []byte {
	if d.err != nil {
		return nil
	}
	if d.remaining() < n {
		d.err = &DecodeError{CodeMalformed, fmt.Sprintf(
			"%s: truncated at payload offset %d: need %d bytes for %s, %d left",
			d.ctx, d.pos, n, what, d.remaining())}
		return nil
	}
	b := d.buf[d.pos : d.pos+n]
	d.pos += n
	return b
}

func (d *decoder) u8(what string) uint8 {
	if b := d.take(1, what); b != nil {
		return b[0]
	}
	return 0
}

func (d *decoder) u16(what string) uint16 {
	if b := d.take(2, what); b != nil {
		return binary.LittleEndian.Uint16(b)
	}
	return 0
}

func (d *decoder) u32(what string) uint32 {
	if b := d.take(4, what); b != nil {
		return binary.LittleEndian.Uint32(b)
	}
	return 0
}

func (d *decoder) u64(what string) uint64 {
	if b := d.take(8, what); b != nil {
		return binary.LittleEndian.Uint64(b)
	}
	return 0
}

func (d *decoder) i32(what string) int32   { return int32(d.u32(what)) }
func (d *decoder) i64(what string) int64   { return int64(d.u64(what)) }
func (d *decoder) f32(what string) float32 { return math.Float32frombits(d.u32(what)) }

// count reads a u32 element count, at most limit (else code over) and at most what the bytes
// left can hold with minElem bytes per element (else MALFORMED), before any allocation.
func (d *decoder) count(what string, minElem int, limit uint32, over ErrorCode) int {
	at := d.pos
	n := d.u32(what + " count")
	if d.err != nil {
		return 0
	}
	if n > limit {
		d.fail(over, at, fmt.Sprintf("%s count %d exceeds limit %d", what, n, limit))
		return 0
	}
	need := uint64(n) * uint64(minElem)
	if need > uint64(d.remaining()) {
		d.fail(CodeMalformed, at, fmt.Sprintf("%s count %d needs at least %d bytes, %d left",
			what, n, need, d.remaining()))
		return 0
	}
	return int(n)
}

// bytesRef reads u32 length + bytes (not copied), the length at most limit (else code over).
func (d *decoder) bytesRef(what string, limit uint32, over ErrorCode) []byte {
	at := d.pos
	n := d.u32(what + " length")
	if d.err != nil {
		return nil
	}
	if n > limit {
		d.fail(over, at, fmt.Sprintf("%s of %d bytes exceeds limit of %d bytes", what, n, limit))
		return nil
	}
	return d.take(int(n), what)
}

// bytes is bytesRef copied out of the payload buffer (never nil on success).
func (d *decoder) bytes(what string, limit uint32, over ErrorCode) []byte {
	b := d.bytesRef(what, limit, over)
	if d.err != nil {
		return nil
	}
	return append(make([]byte, 0, len(b)), b...)
}

func (d *decoder) strLimited(what string, limit uint32, over ErrorCode) string {
	at := d.pos + 4
	b := d.bytesRef(what, limit, over)
	if d.err != nil {
		return ""
	}
	if !utf8.Valid(b) {
		valid := 0
		for valid < len(b) {
			r, size := utf8.DecodeRune(b[valid:])
			if r == utf8.RuneError && size <= 1 {
				break
			}
			valid += size
		}
		d.fail(CodeInvalidUTF8, at+valid, "invalid UTF-8 in "+what)
		return ""
	}
	return string(b)
}

func (d *decoder) str(what string) string {
	return d.strLimited(what, math.MaxUint32, CodeMalformed)
}

// optional reads a presence flag: 0 = absent (false), 1 = present (true); else MALFORMED.
func (d *decoder) optional(what string) bool {
	at := d.pos
	switch b := d.u8(what); {
	case d.err != nil || b == 0:
		return false
	case b == 1:
		return true
	default:
		d.fail(CodeMalformed, at, fmt.Sprintf("invalid %s %d", what, b))
		return false
	}
}

func (d *decoder) value() Value {
	at := d.pos
	tag := d.u8("value tag")
	if d.err != nil {
		return nil
	}
	switch ColumnKind(tag) {
	case 0:
		return Null{}
	case KindBoolean:
		bat := d.pos
		switch b := d.u8("BOOLEAN"); {
		case d.err != nil:
			return nil
		case b <= 1:
			return Bool(b == 1)
		default:
			d.fail(CodeMalformed, bat, fmt.Sprintf("invalid BOOLEAN byte %#04x", b))
			return nil
		}
	case KindBigInt:
		return BigInt(d.i64("BIGINT"))
	case KindDouble:
		return Double(math.Float64frombits(d.u64("DOUBLE")))
	case KindText:
		return Text(d.str("TEXT"))
	case KindBytes:
		return Bytes(d.bytes("BYTES", math.MaxUint32, CodeMalformed))
	case KindTimestamp:
		return Timestamp(d.i64("TIMESTAMP"))
	case KindVector:
		return Vector(d.f32s())
	}
	d.fail(CodeMalformed, at, fmt.Sprintf("unknown value tag %d", tag))
	return nil
}

// f32s reads a vector body: count (≤ MaxVectorComponents, else BAD_VECTOR, before allocating)
// and the components, bit for bit.
func (d *decoder) f32s() []float32 {
	n := d.count("vector component", 4, MaxVectorComponents, CodeBadVector)
	b := d.take(n*4, "vector components")
	if d.err != nil {
		return nil
	}
	v := make([]float32, n)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return v
}

func (d *decoder) row() []Value {
	n := d.count("row value", 1, MaxColumns, CodeMalformed)
	row := make([]Value, 0, n)
	for i := 0; i < n && d.err == nil; i++ {
		row = append(row, d.value())
	}
	return row
}

// replyRow is a row that must have exactly arity values.
func (d *decoder) replyRow(index, arity int) []Value {
	at := d.pos
	row := d.row()
	if d.err == nil && len(row) != arity {
		d.fail(CodeMalformed, at, fmt.Sprintf("row %d has %d values, expected %d", index,
			len(row), arity))
	}
	return row
}

func (d *decoder) columnType() ColumnType {
	at := d.pos
	tag := ColumnKind(d.u8("column type"))
	if d.err != nil {
		return ColumnType{}
	}
	if tag == KindVector {
		dat := d.pos
		dim := d.u32("vector dimension")
		if d.err == nil && (dim < 1 || dim > MaxVectorComponents) {
			d.fail(CodeBadVector, dat, fmt.Sprintf(
				"VECTOR dimension %d is outside 1..=%d", dim, MaxVectorComponents))
		}
		return ColumnType{Kind: KindVector, Dim: dim}
	}
	if tag < KindBoolean || tag > KindTimestamp {
		d.fail(CodeMalformed, at, fmt.Sprintf("unknown column type tag %d", tag))
	}
	return ColumnType{Kind: tag}
}

func (d *decoder) columns() []Column {
	n := d.count("column", 5, MaxColumns, CodeMalformed)
	cols := make([]Column, 0, n)
	for i := 0; i < n && d.err == nil; i++ {
		name := d.str("column name")
		cols = append(cols, Column{Name: name, Type: d.columnType()})
	}
	return cols
}

// names reads a count (≤ limit, else MALFORMED) and that many strings.
func (d *decoder) names(limit uint32) []string {
	n := d.count("column", 4, limit, CodeMalformed)
	list := make([]string, 0, n)
	for i := 0; i < n && d.err == nil; i++ {
		list = append(list, d.str("column name"))
	}
	return list
}

// rowsLimited reads a row count (≤ MaxBatchRows, else BATCH_TOO_LARGE) and rows of any arity
// (UPSERT and INGEST typed rows: the server's validator judges the arity).
func (d *decoder) requestRows() [][]Value {
	n := d.count("row", 4, MaxBatchRows, CodeBatchTooLarge)
	rows := make([][]Value, 0, n)
	for i := 0; i < n && d.err == nil; i++ {
		rows = append(rows, d.row())
	}
	return rows
}

// finish rejects trailing bytes and returns the sticky error, if any.
func (d *decoder) finish() error {
	if d.err == nil && d.remaining() != 0 {
		d.fail(CodeMalformed, d.pos, fmt.Sprintf("%d trailing bytes", d.remaining()))
	}
	if d.err != nil {
		return d.err
	}
	return nil
}
