package tarn

import (
	"encoding/binary"
	"errors"
	"math/rand"
	"runtime"
	"testing"
)

// decodeAny decodes a frame in its direction; it must never panic.
func decodeAny(h Header, payload []byte, response bool) error {
	var err error
	if response {
		_, err = DecodeResponse(h, payload)
	} else {
		_, err = DecodeRequest(h, payload)
	}
	return err
}

// TestTruncatedAndCorruptFrames: every strict prefix of every vector's payload is refused
// with a *DecodeError (trailing-byte and length checks), and random corruption never panics.
func TestTruncatedAndCorruptFrames(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for _, v := range loadVectors(t) {
		if v.Direction == "bad_request" {
			continue
		}
		h, payload, _ := splitFrame(t, v)
		response := v.Direction == "response"
		for n := 0; n < len(payload); n++ {
			hh := h
			hh.PayloadLen = uint32(n)
			err := decodeAny(hh, payload[:n], response)
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("%s: prefix of %d bytes decoded (%v)", v.Name, n, err)
			}
		}
		for i := 0; i < 200; i++ {
			b := append([]byte(nil), payload...)
			if len(b) > 0 {
				b[rng.Intn(len(b))] ^= byte(1 + rng.Intn(255))
			}
			_ = decodeAny(h, b, response)
		}
	}
}

func decodeErr(t *testing.T, op Opcode, payload []byte) *DecodeError {
	t.Helper()
	h := Header{PayloadLen: uint32(len(payload)), Opcode: op, Flags: FlagResponse, RequestID: 1}
	_, err := DecodeResponse(h, payload)
	var de *DecodeError
	if !errors.As(err, &de) {
		t.Fatalf("%v payload %x decoded (%v)", op, payload, err)
	}
	return de
}

// TestHugeCountsAllocateNothing: counts claiming more elements than the bytes left are
// refused before any allocation of that size.
func TestHugeCountsAllocateNothing(t *testing.T) {
	u32 := func(b []byte, v uint32) []byte { return binary.LittleEndian.AppendUint32(b, v) }
	cases := []struct {
		name    string
		op      Opcode
		payload []byte
		code    ErrorCode
	}{
		{"GET reply rows", OpcodeGet, u32(u32(nil, 0), 0xFFFFFFFF), CodeMalformed},
		{"GET reply columns", OpcodeGet, u32(nil, MaxColumns), CodeMalformed},
		{"SQL reply rows", OpcodeSQL, u32(u32(u32(nil, 0), 0), 0xFFFFFFFF), CodeMalformed},
		{"STATS shards", OpcodeStats, u32(nil, 0xFFFFFFFF), CodeMalformed},
		{"text length", OpcodePing, u32(nil, 0xFFFFFFFF), CodeValueTooLong},
		{"KNN rows", OpcodeKnn, u32(append(make([]byte, 8), 0, 0, 0, 0), 1000), CodeMalformed},
		{"vector count", OpcodeGet, append(u32(append(u32(u32(nil, 0), 1), 1), 1), 7, 0xFF,
			0xFF, 0xFF, 0xFF), CodeBadVector},
		{"error message", OpcodeError, append([]byte{1, 0}, u32(nil, 0x7FFFFFFF)...),
			CodeMalformed},
	}
	for _, tc := range cases {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		de := decodeErr(t, tc.op, tc.payload)
		runtime.ReadMemStats(&after)
		if de.Code != tc.code {
			t.Errorf("%s: %v, want %v", tc.name, de, tc.code)
		}
		// A few small error strings; nothing proportional to the claimed count.
		if grew := after.TotalAlloc - before.TotalAlloc; grew > 64*1024 {
			t.Errorf("%s: decoding allocated %d bytes", tc.name, grew)
		}
	}
}

// TestUnknownErrorCodeKept: an ERROR with a code this client does not know is still a
// *ServerError of that request, with its number.
func TestUnknownErrorCodeKept(t *testing.T) {
	var e encoder
	(&ServerError{Code: 999, Message: "new", Row: NoRow}).encode(&e)
	h := Header{PayloadLen: uint32(len(e.buf)), Opcode: OpcodeError, Flags: FlagResponse,
		RequestID: 3}
	resp, err := DecodeResponse(h, e.buf)
	se, ok := resp.(*ServerError)
	if err != nil || !ok || se.Code != 999 || se.Code.Known() ||
		se.Error() != "ERROR_CODE_999: new" {
		t.Fatalf("unknown code: %v %v", resp, err)
	}
}
