package tarn

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Version is this client's release, sent in the default client name.
const Version = "0.1.0"

// Options configure Dial.
type Options struct {
	// Address is the server's host:port, e.g. "127.0.0.1:7070".
	Address string
	// AuthToken is sent in HELLO; "" = none. A server configured with a token answers a
	// missing or wrong one with AUTH_FAILED (Dial returns that *ServerError).
	AuthToken string
	// ClientName is sent in HELLO for the server's logs; "" = "tarn-client-go/<Version>".
	ClientName string
	// DialTimeout bounds the TCP connect, and the HELLO exchange when the Dial context has no
	// deadline; 0 = DefaultDialTimeout.
	DialTimeout time.Duration
}

// Client is one connection to a tarnd, safe for concurrent use by many goroutines. Requests
// are pipelined: every call sends its frame through one writer goroutine and waits for the
// reply that a reader goroutine matches to it by request id, so replies may complete out of
// order and callers never wait for each other's round trips.
//
// In flight: at most the server's max_in_flight (HELLO reply) requests are unanswered at a
// time; a call beyond that blocks until a reply frees a slot or its context is done (it then
// returns ctx.Err() without having sent anything). The server never sees more, so it never
// answers TOO_MANY_IN_FLIGHT.
//
// Deadlines: a call whose context is done returns ctx.Err(). If its request was already sent,
// the outcome is unknown (docs/PROTOCOL.md §5, item 8) and its reply, when it arrives, is
// dropped; if not, it is never sent. Either way the connection keeps serving other callers.
//
// Errors: a server's ERROR reply is a *ServerError (the connection stays usable); a reply
// that cannot be interpreted is a *ProtocolError; once the connection is broken (I/O error,
// the server closed it, Close) every waiting and later call fails with a *ConnError that
// matches ErrClosed and wraps the cause.
type Client struct {
	conn     net.Conn
	info     HelloReply
	maxReply uint32

	slots  chan struct{} // one token per request in flight, capacity max_in_flight
	sendq  chan *call    // frames for the writer goroutine; never fuller than slots
	nextID uint64        // atomic; the last request id issued

	mu      sync.Mutex
	pending map[uint64]*call // sent or queued, reply not yet received
	err     error            // the *ConnError once broken
	connErr *ServerError     // the last connection-level (request id 0) error received
	done    chan struct{}    // closed once broken

	wg sync.WaitGroup
}

type call struct {
	id    uint64
	op    Opcode
	frame []byte
	reply chan result // buffered: the reader never blocks on a caller
	// guarded by Client.mu
	sent, abandoned bool
}

type result struct {
	resp Response
	err  error
}

// Connect dials addr with default options.
func Connect(ctx context.Context, addr string) (*Client, error) {
	return Dial(ctx, Options{Address: addr})
}

// Dial connects and performs the HELLO handshake (version negotiation and auth). Handshake
// refusals are *ServerError (AUTH_FAILED, UNSUPPORTED_VERSION, TOO_MANY_CONNECTIONS, …).
func Dial(ctx context.Context, opts Options) (*Client, error) {
	timeout := opts.DialTimeout
	if timeout <= 0 {
		timeout = DefaultDialTimeout
	}
	if opts.ClientName == "" {
		opts.ClientName = "tarn-client-go/" + Version
	}
	d := net.Dialer{Timeout: timeout}
	conn, err := d.DialContext(ctx, "tcp", opts.Address)
	if err != nil {
		return nil, err
	}
	info, err := handshake(ctx, conn, opts, timeout)
	if err == nil {
		err = conn.SetDeadline(time.Time{}) // the handshake's watcher has exited
	}
	if err != nil {
		conn.Close()
		return nil, handshakeError(ctx, err, timeout)
	}
	return start(conn, info), nil
}

// handshakeError maps an I/O timeout of the HELLO exchange to its cause: the context (whose
// deadline the socket used; its timer may fire a moment after the socket's) or DialTimeout.
func handshakeError(ctx context.Context, err error, timeout time.Duration) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		return err
	}
	if _, ok := ctx.Deadline(); ok {
		return context.DeadlineExceeded
	}
	return fmt.Errorf("tarn: no HELLO reply within the dial timeout of %v: %w", timeout, err)
}

// handshakeID is the HELLO's request id; later requests are numbered from 2.
const handshakeID = 1

func handshake(ctx context.Context, conn net.Conn, opts Options, timeout time.Duration) (
	*HelloReply, error) {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(timeout)
	}
	if err := conn.SetDeadline(deadline); err != nil {
		return nil, err
	}
	stop, exited := make(chan struct{}), make(chan struct{})
	defer func() { close(stop); <-exited }()
	go func() { // a cancelled context interrupts the blocked read or write
		defer close(exited)
		select {
		case <-ctx.Done():
			_ = conn.SetDeadline(time.Unix(1, 0))
		case <-stop:
		}
	}()
	hello := &Hello{MinProtocolVersion, ProtocolVersion, opts.ClientName, opts.AuthToken}
	frame := AppendRequest(nil, handshakeID, hello)
	if len(frame)-HeaderLen > int(MaxHandshakeFramePayloadBytes) {
		return nil, fmt.Errorf("%w: HELLO of %d bytes exceeds the handshake limit of %d bytes",
			ErrRequestTooLarge, len(frame)-HeaderLen, MaxHandshakeFramePayloadBytes)
	}
	if _, err := conn.Write(frame); err != nil {
		return nil, err
	}
	h, payload, err := readFrame(conn, MaxFramePayloadBytes)
	if err != nil {
		return nil, err
	}
	resp, err := DecodeResponse(h, payload)
	switch {
	case err != nil:
		return nil, &ProtocolError{Message: "undecodable HELLO reply", Err: err}
	case h.RequestID != handshakeID && h.RequestID != 0:
		return nil, &ProtocolError{Message: fmt.Sprintf(
			"HELLO answered with request id %d", h.RequestID)}
	}
	switch r := resp.(type) {
	case *ServerError:
		return nil, r
	case *HelloReply:
		if r.Version < MinProtocolVersion || r.Version > ProtocolVersion {
			return nil, &ProtocolError{Message: fmt.Sprintf(
				"server chose protocol version %d, outside the offered range %d..=%d",
				r.Version, MinProtocolVersion, ProtocolVersion)}
		}
		return r, nil
	}
	return nil, &ProtocolError{Message: fmt.Sprintf("unexpected %v reply to HELLO",
		resp.Opcode())}
}

// readFrame reads one frame whose payload is at most limit bytes (a larger header is a
// protocol error: the stream cannot be resynchronised); the payload is allocated only after
// that check.
func readFrame(r io.Reader, limit uint32) (Header, []byte, error) {
	var hdr [HeaderLen]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		if err == io.EOF {
			return Header{}, nil, errors.New("connection closed by the server")
		}
		return Header{}, nil, err
	}
	h := ParseHeader(hdr[:])
	if h.PayloadLen > limit {
		return h, nil, &ProtocolError{Message: fmt.Sprintf(
			"reply header announces %d payload bytes, over the frame limit of %d bytes",
			h.PayloadLen, limit)}
	}
	payload := make([]byte, h.PayloadLen)
	if _, err := io.ReadFull(r, payload); err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			err = errors.New("connection closed by the server mid-frame")
		}
		return h, nil, err
	}
	return h, payload, nil
}

func start(conn net.Conn, info *HelloReply) *Client {
	inFlight := int(info.MaxInFlight)
	if inFlight < 1 {
		inFlight = 1
	}
	c := &Client{
		conn:     conn,
		info:     *info,
		maxReply: MaxFramePayloadBytes,
		slots:    make(chan struct{}, inFlight),
		sendq:    make(chan *call, inFlight),
		nextID:   handshakeID,
		pending:  make(map[uint64]*call),
		done:     make(chan struct{}),
	}
	if info.MaxFramePayloadBytes > c.maxReply {
		c.maxReply = info.MaxFramePayloadBytes
	}
	c.wg.Add(2)
	go c.writer()
	go c.reader()
	return c
}

// ServerInfo is the server's HELLO reply: negotiated version, shard count and limits.
func (c *Client) ServerInfo() HelloReply { return c.info }

// InFlight is the number of requests sent or queued and not yet answered.
func (c *Client) InFlight() int { return len(c.slots) }

// Close breaks the connection: waiting calls fail with a *ConnError wrapping
// ErrClientClosed (their outcome is unknown). It waits for the client's goroutines to end.
func (c *Client) Close() error {
	c.fail(ErrClientClosed)
	c.wg.Wait()
	return nil
}

// Err is nil while the connection is usable, else the *ConnError that broke it.
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Do sends any request and waits for its reply: the reply type of the request's opcode
// (e.g. *GetReply for *GetRequest), or an error — a *ServerError for an ERROR reply. The
// typed methods (Get, SQL, …) call it.
func (c *Client) Do(ctx context.Context, req Request) (Response, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := c.Err(); err != nil {
		return nil, err
	}
	id := atomic.AddUint64(&c.nextID, 1)
	cl := &call{id: id, op: req.Opcode(), frame: AppendRequest(nil, id, req),
		reply: make(chan result, 1)}
	if n := len(cl.frame) - HeaderLen; n > int(c.info.MaxFramePayloadBytes) {
		return nil, fmt.Errorf("%w: %v request payload of %d bytes exceeds the server limit "+
			"of %d bytes", ErrRequestTooLarge, cl.op, n, c.info.MaxFramePayloadBytes)
	}
	select {
	case c.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-c.done:
		return nil, c.Err()
	}
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		<-c.slots
		return nil, c.err
	}
	c.pending[id] = cl
	c.mu.Unlock()
	// The queue has room for every slot, but frames of abandoned calls may still occupy it
	// while the writer is blocked (a server not reading): then wait, bounded by ctx.
	select {
	case c.sendq <- cl:
	case <-ctx.Done():
		c.abandon(cl)
		return nil, ctx.Err()
	case <-c.done:
		return nil, c.Err()
	}
	select {
	case r := <-cl.reply:
		return r.resp, r.err
	case <-ctx.Done():
		c.abandon(cl)
		return nil, ctx.Err()
	}
}

// abandon gives up on a call: not yet written, it is removed (never sent) and frees its
// slot; already written, its reply will be dropped by the reader (which frees the slot).
func (c *Client) abandon(cl *call) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cl.abandoned = true
	if !cl.sent && c.pending[cl.id] == cl {
		delete(c.pending, cl.id)
		<-c.slots
	}
}

// writer writes queued frames, joining what is queued into one writev of at most
// WriteBatchBytes (a single larger frame goes alone).
func (c *Client) writer() {
	defer c.wg.Done()
	var bufs net.Buffers
	for {
		select {
		case <-c.done:
			return
		case cl := <-c.sendq:
			bufs = c.appendLive(bufs[:0], cl)
			size := len(cl.frame)
		more:
			for size < WriteBatchBytes {
				select {
				case cl := <-c.sendq:
					bufs = c.appendLive(bufs, cl)
					size += len(cl.frame)
				default:
					break more
				}
			}
			if len(bufs) == 0 {
				continue
			}
			if _, err := bufs.WriteTo(c.conn); err != nil {
				c.fail(err)
				return
			}
		}
	}
}

// appendLive marks cl sent and appends its frame, unless its caller abandoned it.
func (c *Client) appendLive(bufs net.Buffers, cl *call) net.Buffers {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cl.abandoned || c.err != nil {
		return bufs
	}
	cl.sent = true
	return append(bufs, cl.frame)
}

// reader reads reply frames and hands each to the call with its request id.
func (c *Client) reader() {
	defer c.wg.Done()
	br := bufio.NewReaderSize(c.conn, ReadBufferBytes)
	for {
		h, payload, err := readFrame(br, c.maxReply)
		if err != nil {
			c.fail(err)
			return
		}
		resp, derr := DecodeResponse(h, payload)
		if h.RequestID == 0 {
			if err := c.connectionError(resp, derr); err != nil {
				c.fail(err)
				return
			}
			continue
		}
		if err := c.deliver(h.RequestID, resp, derr); err != nil {
			c.fail(err)
			return
		}
	}
}

// connectionError records an ERROR with request id 0 (TIMEOUT, TOO_MANY_CONNECTIONS,
// SHUTTING_DOWN, …): the server answers what it already read and then closes, so it becomes
// the cause of the break that follows. Anything else with id 0 is a protocol error.
func (c *Client) connectionError(resp Response, derr error) error {
	se, ok := resp.(*ServerError)
	if derr != nil || !ok {
		return &ProtocolError{Message: "undecodable frame with request id 0", Err: derr}
	}
	c.mu.Lock()
	c.connErr = se
	c.mu.Unlock()
	return nil
}

func (c *Client) deliver(id uint64, resp Response, derr error) error {
	c.mu.Lock()
	cl, ok := c.pending[id]
	abandoned := ok && cl.abandoned
	if ok {
		delete(c.pending, id)
		<-c.slots
	}
	c.mu.Unlock()
	if !ok {
		return &ProtocolError{Message: fmt.Sprintf(
			"reply with request id %d, which no request is waiting for", id)}
	}
	if abandoned {
		return nil // the caller's context ended: a late reply is dropped
	}
	var r result
	switch se, isErr := resp.(*ServerError); {
	case derr != nil:
		// The frame boundary is intact: only this request fails.
		r.err = &ProtocolError{Message: fmt.Sprintf("undecodable %v reply to request %d",
			cl.op, id), Err: derr}
	case isErr:
		r.err = se
	case resp.Opcode() != cl.op:
		r.err = &ProtocolError{Message: fmt.Sprintf("unexpected %v reply to %v",
			resp.Opcode(), cl.op)}
	default:
		r.resp = resp
	}
	cl.reply <- r
	return nil
}

// fail breaks the connection once: every waiting call gets the *ConnError.
func (c *Client) fail(cause error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	if c.connErr != nil && cause != ErrClientClosed {
		cause = fmt.Errorf("%w (then: %v)", c.connErr, cause)
	}
	c.err = &ConnError{Err: cause}
	waiting := c.pending
	c.pending = map[uint64]*call{}
	close(c.done)
	c.mu.Unlock()
	c.conn.Close()
	for _, cl := range waiting {
		cl.reply <- result{err: c.err} // buffered; nobody reads it if abandoned
	}
}
