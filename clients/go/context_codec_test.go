package tarn

import (
	"encoding/binary"
	"errors"
	"reflect"
	"strconv"
	"testing"
)

// contextReplyPayload encodes a CONTEXT reply payload.
func contextReplyPayload(r *ContextReply) []byte {
	var e encoder
	r.encode(&e)
	return e.buf
}

// emptyRows is n rows of no values (an item without columns), the smallest rows there are.
func emptyRows(n int) [][]Value {
	rows := make([][]Value, n)
	for i := range rows {
		rows[i] = []Value{}
	}
	return rows
}

// TestContextReplyBounds: the decoder refuses a CONTEXT reply over any context limit, or
// with a row of the wrong arity, with the message the Rust decoder gives (net/src/codec/
// context.rs), and accepts one at the limits.
func TestContextReplyBounds(t *testing.T) {
	u32 := func(b []byte, v uint32) []byte { return binary.LittleEndian.AppendUint32(b, v) }
	item := func(groups ...ContextGroup) *ContextReply {
		return &ContextReply{Shards: []ShardAsOf{}, Items: []ContextItem{
			{Name: "x", Columns: []Column{}, Groups: groups}}}
	}
	atLimit := item(ContextGroup{BigInt(1), emptyRows(4096)},
		ContextGroup{BigInt(2), emptyRows(int(MaxContextRows) - 4096)})
	h := Header{Opcode: OpcodeContext, Flags: FlagResponse, RequestID: 1}
	payload := contextReplyPayload(atLimit)
	h.PayloadLen = uint32(len(payload))
	got, err := DecodeResponse(h, payload)
	if err != nil || !reflect.DeepEqual(got, atLimit) {
		t.Fatalf("a reply of exactly MaxContextRows rows: %v", err)
	}

	over := contextReplyPayload(item(ContextGroup{BigInt(1), emptyRows(4096)},
		ContextGroup{BigInt(2), emptyRows(int(MaxContextRows) - 4095)}))
	// shards(4) items(4) name(5) columns(4) groups(4) key(9) rows(4) 4096×4, key(9): 16427.
	secondRows := 4 + 4 + 5 + 4 + 4 + 9 + 4 + 4096*4 + 9
	// ... columns(4) "a"(6) groups(4) NULL key(1) rows(4), row 0 (13): 45.
	wrongArity := contextReplyPayload(&ContextReply{Shards: []ShardAsOf{}, Items: []ContextItem{{
		Name: "x", Columns: []Column{{"a", ColumnType{Kind: KindBigInt}}},
		Groups: []ContextGroup{{Null{}, [][]Value{{BigInt(1)}, {}}}}}}})
	cases := []struct {
		name    string
		payload []byte
		message string
	}{
		{"rows of the whole reply", over, "CONTEXT: more than 8192 rows in a CONTEXT reply " +
			"at payload offset " + strconv.Itoa(secondRows)},
		{"row arity", wrongArity, "CONTEXT: row 1 has 0 values, expected 1 at payload offset 45"},
		{"shards", u32(nil, MaxContextShards+1),
			"CONTEXT: shard count 1025 exceeds limit 1024 at payload offset 0"},
		{"items", u32(u32(nil, 0), MaxContextItems+1),
			"CONTEXT: item count 65 exceeds limit 64 at payload offset 4"},
		{"groups", u32(append(u32(u32(u32(nil, 0), 1), 1), 'x', 0, 0, 0, 0), MaxContextRows+1),
			"CONTEXT: group count 8193 exceeds limit 8192 at payload offset 17"},
		{"huge shard count", u32(nil, 1000),
			"CONTEXT: shard count 1000 needs at least 12000 bytes, 0 left at payload offset 0"},
	}
	for _, tc := range cases {
		de := decodeErr(t, OpcodeContext, tc.payload)
		if de.Code != CodeMalformed || de.Message != tc.message {
			t.Errorf("%s: %v %q, want MALFORMED %q", tc.name, de.Code, de.Message, tc.message)
		}
	}
}

// TestContextRequestEncoding: params go out in the order given, a named and an ad hoc call
// decode back to themselves, and the decoder bounds the ad hoc text like SQL text.
func TestContextRequestEncoding(t *testing.T) {
	for _, req := range []*ContextRequest{
		{ContextNamed("fraud"), []ContextParam{Param("b", BigInt(1)), Param("a", Null{})}},
		{ContextAdHoc("row(t, 1) AS r"), []ContextParam{}},
	} {
		frame := AppendRequest(nil, 9, req)
		h := ParseHeader(frame)
		got, err := DecodeRequest(h, frame[HeaderLen:])
		if err != nil || !reflect.DeepEqual(got, req) {
			t.Fatalf("%#v round trip: %#v %v", req, got, err)
		}
	}
	big := make([]byte, MaxSQLBytes+1)
	for i := range big {
		big[i] = 'x'
	}
	frame := AppendRequest(nil, 9, &ContextRequest{ContextAdHoc(big), nil})
	_, err := DecodeRequest(ParseHeader(frame), frame[HeaderLen:])
	var de *DecodeError
	if !errors.As(err, &de) || de.Code != CodeValueTooLong || de.Message !=
		"CONTEXT: context items of 65537 bytes exceeds limit of 65536 bytes at payload offset 1" {
		t.Fatalf("oversize ad hoc items: %v", err)
	}
}
