package tarn

import (
	"encoding/binary"
	"errors"
	"reflect"
	"testing"
)

// TestRecentReplyBounds: the decoder accepts a key of exactly MaxRecentN events and refuses a
// RECENT reply over MaxRecentKeys or MaxRecentN, or with a row of the wrong arity (rows
// numbered across the whole reply), with the messages the Rust decoder gives
// (net/src/codec/recent.rs).
func TestRecentReplyBounds(t *testing.T) {
	u32 := func(b []byte, v uint32) []byte { return binary.LittleEndian.AppendUint32(b, v) }
	atLimit := &RecentReply{Columns: []Column{}, Keys: [][][]Value{emptyRows(int(MaxRecentN)), {}}}
	frame := AppendResponse(nil, 1, atLimit)
	got, err := DecodeResponse(ParseHeader(frame), frame[HeaderLen:])
	if err != nil || !reflect.DeepEqual(got, atLimit) {
		t.Fatalf("a key of exactly MaxRecentN events: %v", err)
	}

	// columns(4) "a"(5) BIGINT(1), keys(4), key 0: count(4) + row(13), key 1: count at 35.
	wrongArity := AppendResponse(nil, 1, &RecentReply{
		Columns: []Column{{"a", ColumnType{Kind: KindBigInt}}},
		Keys:    [][][]Value{{{BigInt(1)}}, {{}}}})[HeaderLen:]
	cases := []struct {
		name    string
		payload []byte
		message string
	}{
		{"keys", u32(u32(nil, 0), MaxRecentKeys+1),
			"RECENT: key count 1001 exceeds limit 1000 at payload offset 4"},
		{"events", u32(u32(u32(nil, 0), 1), MaxRecentN+1),
			"RECENT: event count 257 exceeds limit 256 at payload offset 8"},
		{"row arity", wrongArity, "RECENT: row 1 has 0 values, expected 1 at payload offset 35"},
		{"huge key count", u32(u32(nil, 0), 1000),
			"RECENT: key count 1000 needs at least 4000 bytes, 0 left at payload offset 4"},
	}
	for _, tc := range cases {
		de := decodeErr(t, OpcodeRecent, tc.payload)
		if de.Code != CodeMalformed || de.Message != tc.message {
			t.Errorf("%s: %v %q, want MALFORMED %q", tc.name, de.Code, de.Message, tc.message)
		}
	}
}

// TestRecentRequestBounds: a request round-trips (columns in the order given, a repeated key
// kept), and the server-side decoder refuses more than MaxRecentKeys keys (BATCH_TOO_LARGE)
// or MaxRecentColumns names (MALFORMED).
func TestRecentRequestBounds(t *testing.T) {
	req := &RecentRequest{"tx", []Value{Text("b"), Text("a"), Text("b")}, 3,
		[]string{"ts", "amount"}}
	frame := AppendRequest(nil, 9, req)
	got, err := DecodeRequest(ParseHeader(frame), frame[HeaderLen:])
	if err != nil || !reflect.DeepEqual(got, req) {
		t.Fatalf("round trip: %#v %v", got, err)
	}
	keys := make([]Value, MaxRecentKeys+1)
	for i := range keys {
		keys[i] = BigInt(i)
	}
	cols := make([]string, MaxRecentColumns+1)
	for i := range cols {
		cols[i] = "c"
	}
	cases := []struct {
		req     *RecentRequest
		code    ErrorCode
		message string
	}{
		{&RecentRequest{"tx", keys, 1, []string{}}, CodeBatchTooLarge,
			"RECENT: key count 1001 exceeds limit 1000 at payload offset 6"},
		// stream(6), keys(4), BIGINT(9), n(4): the column count is at 23.
		{&RecentRequest{"tx", []Value{BigInt(1)}, 1, cols}, CodeMalformed,
			"RECENT: column count 1025 exceeds limit 1024 at payload offset 23"},
	}
	for _, tc := range cases {
		frame := AppendRequest(nil, 9, tc.req)
		_, err := DecodeRequest(ParseHeader(frame), frame[HeaderLen:])
		var de *DecodeError
		if !errors.As(err, &de) || de.Code != tc.code || de.Message != tc.message {
			t.Errorf("got %v, want %v %q", err, tc.code, tc.message)
		}
	}
}
