package tarn

import (
	"fmt"
	"time"
)

// Value is one protocol value (docs/PROTOCOL.md §2). The concrete types are:
//
//	protocol    Go type      notes
//	NULL        Null         also: a nil Value is encoded as NULL; replies decode to Null{}
//	BOOLEAN     Bool         bool
//	BIGINT      BigInt       int64
//	DOUBLE      Double       float64, bit for bit (NaN/±Inf encode; the server refuses them)
//	TEXT        Text         string, UTF-8 (the server refuses invalid UTF-8: INVALID_UTF8)
//	BYTES       Bytes        []byte
//	TIMESTAMP   Timestamp    int64 microseconds since the Unix epoch, UTC
//	VECTOR(n)   Vector       []float32, bit for bit (the server checks n and finiteness)
//
// Write a value as tarn.Text("c1"), tarn.BigInt(7), tarn.TimestampOf(t), tarn.Vector{0.5, 1}.
type Value interface {
	// Tag is the value's wire tag (0 = NULL, else its ColumnKind).
	Tag() uint8
	isValue()
}

// Null is the SQL NULL.
type Null struct{}

// Bool is a BOOLEAN value.
type Bool bool

// BigInt is a BIGINT value (also accepted for TIMESTAMP columns, as µs, and for DOUBLE
// columns when |i| ≤ 2^53).
type BigInt int64

// Double is a DOUBLE value.
type Double float64

// Text is a TEXT value.
type Text string

// Bytes is a BYTES value.
type Bytes []byte

// Timestamp is a TIMESTAMP value: microseconds since the Unix epoch, UTC.
type Timestamp int64

// Vector is a VECTOR value: its f32 components.
type Vector []float32

func (Null) Tag() uint8      { return 0 }
func (Bool) Tag() uint8      { return uint8(KindBoolean) }
func (BigInt) Tag() uint8    { return uint8(KindBigInt) }
func (Double) Tag() uint8    { return uint8(KindDouble) }
func (Text) Tag() uint8      { return uint8(KindText) }
func (Bytes) Tag() uint8     { return uint8(KindBytes) }
func (Timestamp) Tag() uint8 { return uint8(KindTimestamp) }
func (Vector) Tag() uint8    { return uint8(KindVector) }

func (Null) isValue()      {}
func (Bool) isValue()      {}
func (BigInt) isValue()    {}
func (Double) isValue()    {}
func (Text) isValue()      {}
func (Bytes) isValue()     {}
func (Timestamp) isValue() {}
func (Vector) isValue()    {}

// TimestampOf converts t to a Timestamp (truncated to the microsecond).
func TimestampOf(t time.Time) Timestamp { return Timestamp(t.UnixMicro()) }

// Time converts the timestamp to a time.Time in UTC.
func (t Timestamp) Time() time.Time { return time.UnixMicro(int64(t)).UTC() }

// IsNull reports whether v is NULL (Null{} or a nil Value).
func IsNull(v Value) bool {
	if v == nil {
		return true
	}
	_, ok := v.(Null)
	return ok
}

// ColumnKind is a column type tag (equal to the tag of its values).
type ColumnKind uint8

// Column type tags (docs/PROTOCOL.md §2, ColumnType). Never renumbered.
const (
	KindBoolean   ColumnKind = 1
	KindBigInt    ColumnKind = 2
	KindDouble    ColumnKind = 3
	KindText      ColumnKind = 4
	KindBytes     ColumnKind = 5
	KindTimestamp ColumnKind = 6
	KindVector    ColumnKind = 7
)

var kindNames = map[ColumnKind]string{
	KindBoolean: "BOOLEAN", KindBigInt: "BIGINT", KindDouble: "DOUBLE", KindText: "TEXT",
	KindBytes: "BYTES", KindTimestamp: "TIMESTAMP", KindVector: "VECTOR",
}

func (k ColumnKind) String() string {
	if n, ok := kindNames[k]; ok {
		return n
	}
	return fmt.Sprintf("ColumnKind(%d)", uint8(k))
}

// ColumnType is a column's type: its kind and, for KindVector only, the dimension
// (1..MaxVectorComponents).
type ColumnType struct {
	Kind ColumnKind
	Dim  uint32
}

// String renders the type as in SQL: "BIGINT", "VECTOR(3)".
func (t ColumnType) String() string {
	if t.Kind == KindVector {
		return fmt.Sprintf("VECTOR(%d)", t.Dim)
	}
	return t.Kind.String()
}

// Column is a named, typed column of a reply.
type Column struct {
	Name string
	Type ColumnType
}
