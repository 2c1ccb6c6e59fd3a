package tarn

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
)

// The server never sends a bad reply, so these tests inject faults: the test holds the far
// end of a net.Pipe and writes crafted reply frames, to check that an undecodable reply fails
// only its own request and that a frame the stream cannot recover from breaks the connection
// for every caller.

func pipeClient(t *testing.T) (*Client, net.Conn) {
	near, far := net.Pipe()
	c := start(near, &HelloReply{Version: 1, MaxFramePayloadBytes: MaxFramePayloadBytes,
		MaxBatchRows: MaxBatchRows, MaxInFlight: 4})
	t.Cleanup(func() { c.Close(); far.Close() })
	return c, far
}

// readRequest reads one request frame from the far end.
func readRequest(t *testing.T, far net.Conn) (Header, Request) {
	t.Helper()
	h, payload, err := readFrame(far, MaxFramePayloadBytes)
	if err != nil {
		t.Fatalf("read request: %v", err)
	}
	req, err := DecodeRequest(h, payload)
	if err != nil {
		t.Fatalf("decode request: %v", err)
	}
	return h, req
}

func asyncPing(c *Client) chan error {
	done := make(chan error, 1)
	go func() { done <- c.Ping(context.Background()) }()
	return done
}

func TestUndecodableReplyFailsOnlyItsRequest(t *testing.T) {
	c, far := pipeClient(t)
	first := asyncPing(c)
	h, _ := readRequest(t, far)
	// A PONG with a trailing byte: the frame boundary is intact.
	bad := AppendResponse(nil, h.RequestID, &Pong{Data: pingData})
	bad = append(bad, 0)
	bad[0]++
	if _, err := far.Write(bad); err != nil {
		t.Fatal(err)
	}
	var de *DecodeError
	if err := <-first; !errors.Is(err, ErrProtocol) || !errors.As(err, &de) ||
		de.Code != CodeMalformed {
		t.Fatalf("undecodable reply: %v", err)
	}
	second := asyncPing(c)
	h, _ = readRequest(t, far)
	if _, err := far.Write(AppendResponse(nil, h.RequestID, &Pong{Data: pingData})); err != nil {
		t.Fatal(err)
	}
	if err := <-second; err != nil {
		t.Fatalf("the connection should still serve: %v", err)
	}
	// A reply of the wrong opcode also fails only its request.
	third := asyncPing(c)
	h, _ = readRequest(t, far)
	if _, err := far.Write(AppendResponse(nil, h.RequestID, &UpsertReply{1})); err != nil {
		t.Fatal(err)
	}
	if err := <-third; !errors.Is(err, ErrProtocol) || c.Err() != nil {
		t.Fatalf("wrong opcode: %v (connection: %v)", err, c.Err())
	}
}

func TestUnrecoverableRepliesBreakTheConnection(t *testing.T) {
	for _, tc := range []struct {
		name  string
		reply func(id uint64) []byte
	}{
		{"unknown request id", func(id uint64) []byte {
			return AppendResponse(nil, id+100, &Pong{Data: pingData})
		}},
		{"header over the frame limit", func(id uint64) []byte {
			f := AppendResponse(nil, id, &Pong{Data: pingData})
			Header{MaxFramePayloadBytes + 1, OpcodePing, FlagResponse, id}.put(f)
			return f
		}},
		{"closed mid-frame", func(id uint64) []byte {
			return AppendResponse(nil, id, &Pong{Data: pingData})[:HeaderLen+2]
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, far := pipeClient(t)
			a, b := asyncPing(c), asyncPing(c)
			h, _ := readRequest(t, far)
			readRequest(t, far)
			if _, err := far.Write(tc.reply(h.RequestID)); err != nil {
				t.Fatal(err)
			}
			far.Close()
			for _, done := range []chan error{a, b} {
				if err := <-done; !errors.Is(err, ErrClosed) {
					t.Fatalf("waiting call: %v", err)
				}
			}
			if err := c.Ping(context.Background()); !errors.Is(err, ErrClosed) {
				t.Fatalf("later call: %v", err)
			}
		})
	}
}

func TestConnectionLevelErrorIsTheCause(t *testing.T) {
	c, far := pipeClient(t)
	waiting := asyncPing(c)
	readRequest(t, far)
	se := &ServerError{Code: CodeShuttingDown, Message: "server is stopping", Row: NoRow}
	if _, err := far.Write(AppendResponse(nil, 0, se)); err != nil {
		t.Fatal(err)
	}
	far.Close()
	err := <-waiting
	if !errors.Is(err, ErrClosed) || !errors.Is(err, CodeShuttingDown) {
		t.Fatalf("call waiting when the server shut down: %v", err)
	}
	var ce *ConnError
	if !errors.As(err, &ce) || errors.Is(ce.Err, io.EOF) {
		t.Fatalf("cause: %#v", err)
	}
}
