//! One client connection: read frames, dispatch requests (pipelined, answered out of order),
//! write replies. The reader and the writer are separate tasks over one socket; replies are
//! appended to a shared buffer the writer flushes in batches. A third task, the watchdog,
//! closes connections that are too slow or silent (handshake, frame and idle timeouts, and the
//! shutdown grace period).
//!
//! Back-pressure: the reader stops dispatching (and so reading) while the connection's pending
//! reply bytes are at `MAX_PENDING_REPLY_BYTES`, checked before every frame; the writer wakes
//! it once they fell to `REPLY_LOW_WATER_BYTES`. A connection whose peer went away (the
//! writer's send fails) or timed out is stopped at once: queued replies are dropped and the
//! socket is shut down, which wakes every task blocked on it.

use std::cell::{Cell, RefCell};
use std::io;
use std::os::unix::io::{AsRawFd, RawFd};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_lite::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use glommio::net::TcpStream;
use glommio::sync::Semaphore;
use tarn_core::batch;
use tarn_core::record::{Mutation, TxnPart};
use tarn_core::sql::Statement;
use tarn_net::limits::{
    MAX_BATCH_ROWS, MAX_CONNECTIONS_PER_SHARD, MAX_FRAME_PAYLOAD_BYTES,
    MAX_IN_FLIGHT_PER_CONNECTION, MIN_PROTOCOL_VERSION, PROTOCOL_VERSION,
};
use tarn_net::{
    Column, DeleteReply, ErrorCode, ErrorReply, FeatureRow, FeaturesReply, FrameHeader, GetReply,
    HelloReply, HistoryReply, IngestBody, IngestReply, IngestRequest, Opcode, Request, Response,
    SqlReply, StatsReply, UpsertReply, HEADER_LEN as FRAME_HEADER_BYTES,
};
use tarn_types::{shard_for, Value};

use super::limits::{
    MAX_PENDING_REPLY_BYTES, READ_CHUNK_BYTES, REPLY_LOW_WATER_BYTES, RETAINED_REPLY_BUFFER_BYTES,
    SHUTDOWN_POLL_MS, SHUTDOWN_REPLY_GRACE, WRITE_REPLY_RESERVE_BYTES,
};
use super::shard::{Failure, Shard};

/// What a connection's reply queue can hold at most before back-pressure stops dispatching:
/// the limit plus one maximal reply.
const REPLY_QUEUE_CAPACITY: usize =
    MAX_PENDING_REPLY_BYTES + FRAME_HEADER_BYTES + MAX_FRAME_PAYLOAD_BYTES as usize;

/// The socket shared by the reader and writer tasks. Each poll borrows it only for the
/// duration of that poll (glommio keeps separate read and write sources), never across await.
struct Half(Rc<RefCell<TcpStream>>);

impl Half {
    fn fd(&self) -> RawFd {
        self.0.borrow().as_raw_fd()
    }
}

impl AsyncRead for Half {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.0.borrow_mut()).poll_read(cx, buf)
    }
}

impl AsyncWrite for Half {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.0.borrow_mut()).poll_write(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0.borrow_mut()).poll_flush(cx)
    }
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0.borrow_mut()).poll_close(cx)
    }
}

/// State shared by a connection's reader, writer, watchdog and request tasks.
struct Conn {
    shard: Rc<Shard>,
    /// The socket, for inline sends and for stopping; open until `serve` returns (the tasks
    /// that use it have ended by then).
    fd: RawFd,
    /// Encoded reply frames waiting for the writer.
    out: RefCell<Vec<u8>>,
    /// Signalled when `out` goes from empty to non-empty; closed when the writer must stop.
    out_ready: Semaphore,
    /// Requests read but not yet answered.
    in_flight: Cell<u32>,
    /// Signalled whenever a request completes (the reader waits on it to drain).
    completed: Semaphore,
    /// True once the connection was stopped (the peer went away, a timeout): replies are
    /// dropped.
    broken: Cell<bool>,
    /// True while the writer task holds bytes it has not finished writing: nobody else may
    /// write to the socket then, or replies would interleave.
    writing: Cell<bool>,
    /// Bytes of the buffer the writer took from `out`, counted until all of it is written
    /// (the memory is held until then).
    writer_held: Cell<usize>,
    /// Reply bytes reserved for the requests running as tasks ([`Conn::reserve`]).
    reserved: Cell<usize>,
    /// What the next read running as a task reserves: the largest recent reply of this
    /// connection, decaying by 1/8 per reply; a maximal frame at first.
    read_estimate: Cell<usize>,
    /// The reader waits for reply room ([`wait_for_room`]).
    paused: Cell<bool>,
    /// Signalled once when a paused reader may go on.
    room: Semaphore,
    accepted: Instant,
    /// HELLO was accepted.
    handshaken: Cell<bool>,
    /// When the reader last received bytes.
    last_read: Cell<Instant>,
    /// When the writer last wrote bytes.
    last_write: Cell<Instant>,
    /// When the first bytes of the frame the reader still waits to complete were read.
    partial_since: Cell<Option<Instant>>,
}

/// Reply room held by a request running as a task, returned when its reply is queued.
struct Reservation {
    bytes: usize,
    /// A read: its reply size updates the connection's estimate.
    learn: bool,
}

impl Conn {
    /// Queues a reply; returns its encoded size (0 if the connection was stopped).
    fn reply(&self, request_id: u64, resp: &Response) -> usize {
        self.reply_with(request_id, |out| {
            tarn_net::encode_response(request_id, resp, out)
        })
    }

    /// Queues the frame `encode` appends, replaced by a BATCH_TOO_LARGE error if it exceeds
    /// the frame limit. Returns the size `encode` produced (0 if the connection was stopped).
    fn reply_with(&self, request_id: u64, encode: impl FnOnce(&mut Vec<u8>)) -> usize {
        if self.broken.get() {
            return 0;
        }
        let mut out = self.out.borrow_mut();
        let was_empty = out.is_empty();
        let before = out.len();
        if before >= RETAINED_REPLY_BUFFER_BYTES && out.capacity() < REPLY_QUEUE_CAPACITY {
            // Replies pile up (the client reads slower than it asks): grow once to what the
            // back-pressure lets queue instead of doubling, which copies everything queued
            // and holds it twice meanwhile. Pages not yet written cost nothing.
            out.reserve_exact(REPLY_QUEUE_CAPACITY - before);
        }
        encode(&mut out);
        let frame_len = out.len() - before;
        if frame_len > FRAME_HEADER_BYTES + MAX_FRAME_PAYLOAD_BYTES as usize {
            // A reply must fit a frame too; the client gets a clear error instead.
            out.truncate(before);
            let message = format!(
                "the reply would be {frame_len} bytes, more than the {MAX_FRAME_PAYLOAD_BYTES}-byte frame limit; ask for fewer keys per request"
            );
            let err = Response::Error(ErrorReply {
                code: ErrorCode::BatchTooLarge,
                message,
                row: None,
                column: None,
            });
            tarn_net::encode_response(request_id, &err, &mut out);
        }
        if was_empty {
            self.out_ready.signal(1);
        }
        frame_len
    }

    fn error(&self, request_id: u64, (code, message): Failure) {
        self.reply(
            request_id,
            &Response::Error(ErrorReply {
                code,
                message,
                row: None,
                column: None,
            }),
        );
    }

    fn finish(&self, op: Opcode, started: Instant) {
        self.in_flight.set(self.in_flight.get() - 1);
        self.completed.signal(1);
        self.shard
            .stats
            .borrow_mut()
            .record(op, started.elapsed().as_micros() as u64);
    }

    /// Reply bytes this connection holds or has promised: queued, being written, reserved.
    fn pending_bytes(&self) -> usize {
        self.out.borrow().len() + self.writer_held.get() + self.reserved.get()
    }

    /// Lets a paused reader go on once pending replies fell to the low-water mark, or the
    /// connection stopped.
    fn wake_reader(&self) {
        if self.paused.get() && (self.broken.get() || self.pending_bytes() <= REPLY_LOW_WATER_BYTES)
        {
            self.paused.set(false);
            self.room.signal(1);
        }
    }

    /// Reserves reply room for a request about to run as a task. Writes have small replies;
    /// a read's reply size is unknown until it ran, so it reserves this connection's recent
    /// reply sizes, starting at a maximal frame (a burst of large reads can then not run far
    /// past the limit before the first one answered).
    fn reserve(&self, op: Opcode) -> Reservation {
        let r = match op {
            Opcode::Upsert | Opcode::Delete | Opcode::Ingest => Reservation {
                bytes: WRITE_REPLY_RESERVE_BYTES,
                learn: false,
            },
            _ => Reservation {
                bytes: self.read_estimate.get(),
                learn: true,
            },
        };
        self.reserved.set(self.reserved.get() + r.bytes);
        r
    }

    /// Returns a reservation once its reply, `encoded` bytes, is queued.
    fn release(&self, r: Reservation, encoded: usize) {
        self.reserved.set(self.reserved.get() - r.bytes);
        if r.learn {
            let estimate = self.read_estimate.get();
            self.read_estimate.set(encoded.max(estimate - estimate / 8));
        }
        self.wake_reader();
    }

    /// Stops the connection at once: queued replies are dropped and the socket is shut down,
    /// which wakes a reader blocked in `recv` (end of file) and a writer blocked on a full
    /// socket (EPIPE). If replies were dropped the peer was not reading: the close becomes a
    /// reset, so no orphaned socket keeps the unsent bytes.
    fn stop(&self) {
        if self.broken.replace(true) {
            return;
        }
        let dropped = self.writing.get() || !self.out.borrow().is_empty();
        drop(std::mem::take(&mut *self.out.borrow_mut()));
        let socket = socket2::SockRef::from(&self.fd);
        if dropped {
            let _ = socket.set_linger(Some(Duration::ZERO));
        }
        let _ = socket.shutdown(std::net::Shutdown::Both);
        self.wake_reader();
    }
}

/// Serves one accepted connection until the client closes it, a fatal protocol error, a
/// timeout, or shutdown (then requests already read are still answered, within
/// `SHUTDOWN_REPLY_GRACE`).
pub async fn serve(shard: Rc<Shard>, stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let now = Instant::now();
    let conn = Rc::new(Conn {
        shard: shard.clone(),
        fd: stream.as_raw_fd(),
        out: RefCell::new(Vec::new()),
        out_ready: Semaphore::new(0),
        in_flight: Cell::new(0),
        completed: Semaphore::new(0),
        broken: Cell::new(false),
        writing: Cell::new(false),
        writer_held: Cell::new(0),
        reserved: Cell::new(0),
        read_estimate: Cell::new(FRAME_HEADER_BYTES + MAX_FRAME_PAYLOAD_BYTES as usize),
        paused: Cell::new(false),
        room: Semaphore::new(0),
        accepted: now,
        handshaken: Cell::new(false),
        last_read: Cell::new(now),
        last_write: Cell::new(now),
        partial_since: Cell::new(None),
    });
    let stream = Rc::new(RefCell::new(stream));
    let writer = glommio::spawn_local(write_loop(conn.clone(), Half(stream.clone())));
    let watchdog = glommio::spawn_local(watchdog(conn.clone()));

    if shard.connections.get() >= MAX_CONNECTIONS_PER_SHARD {
        conn.error(0, (
            ErrorCode::TooManyConnections,
            format!("shard {} already serves {MAX_CONNECTIONS_PER_SHARD} connections (MAX_CONNECTIONS_PER_SHARD)", shard.id),
        ));
    } else {
        shard.connections.set(shard.connections.get() + 1);
        read_loop(&conn, Half(stream.clone())).await;
        // Answer everything already accepted before closing (dropped if the peer is gone).
        while conn.in_flight.get() > 0 {
            let _ = conn.completed.acquire(1).await;
        }
        shard.connections.set(shard.connections.get() - 1);
    }
    conn.out_ready.close();
    writer.await;
    // Nobody may touch the socket once it is closed.
    watchdog.cancel().await;
    // Reader and writer are done: take the socket out and close it (FIN after queued data).
    if let Ok(stream) = Rc::try_unwrap(stream) {
        let _ = stream.into_inner().shutdown(std::net::Shutdown::Both).await;
    }
}

/// Sends queued replies straight from the reader with one non-blocking `send`, saving the
/// hop to the writer task for replies answered inline (GET, PING). Only when the writer is
/// idle (ordering); whatever the socket does not take stays queued for the writer.
fn flush_inline(conn: &Conn, fd: RawFd) {
    if conn.writing.get() || conn.broken.get() {
        return;
    }
    let mut out = conn.out.borrow_mut();
    if out.is_empty() {
        return;
    }
    // SAFETY: send reads out.len() initialized bytes from a buffer we hold borrowed.
    let n = unsafe {
        libc::send(
            fd,
            out.as_ptr().cast(),
            out.len(),
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
        )
    };
    if n > 0 {
        out.drain(..n as usize);
    }
    // On an error (EAGAIN, or a dead peer) the writer task retries and reports it.
}

async fn write_loop(conn: Rc<Conn>, mut sock: Half) {
    let mut buf = Vec::new();
    loop {
        let closed = conn.out_ready.acquire(1).await.is_err();
        std::mem::swap(&mut buf, &mut *conn.out.borrow_mut());
        if !buf.is_empty() {
            conn.writing.set(true);
            conn.writer_held.set(buf.len());
            let mut written = 0;
            while written < buf.len() {
                match sock.write(&buf[written..]).await {
                    Ok(n) if n > 0 => {
                        written += n;
                        conn.last_write.set(Instant::now());
                    }
                    _ => {
                        // The peer reset or closed, or the connection was stopped.
                        conn.writing.set(false);
                        conn.writer_held.set(0);
                        conn.stop();
                        return;
                    }
                }
            }
            conn.writing.set(false);
            if buf.capacity() > RETAINED_REPLY_BUFFER_BYTES {
                buf = Vec::new();
            } else {
                buf.clear();
            }
            conn.writer_held.set(0);
            conn.wake_reader();
        }
        if closed && conn.out.borrow().is_empty() {
            let _ = sock.flush().await;
            return;
        }
    }
}

/// Reads and dispatches frames. Returns when the connection must stop reading.
///
/// `buf[start..filled]` holds unread bytes. The buffer is allocated (zeroed) once and only
/// grows while a frame larger than it is being received.
async fn read_loop(conn: &Rc<Conn>, mut sock: Half) {
    let shard = &conn.shard;
    let mut buf: Vec<u8> = vec![0; READ_CHUNK_BYTES];
    let (mut start, mut filled) = (0usize, 0usize);
    let mut handshaken = false;
    let mut read_at = conn.accepted;
    loop {
        // Dispatch every complete frame in the buffer while the replies have room.
        let first = start;
        let need;
        loop {
            let avail = &buf[start..filled];
            if avail.len() < FRAME_HEADER_BYTES {
                need = FRAME_HEADER_BYTES;
                break;
            }
            let header =
                FrameHeader::decode(avail[..FRAME_HEADER_BYTES].try_into().expect("16 bytes"));
            if let Err(e) = header.check(MAX_FRAME_PAYLOAD_BYTES) {
                // The stream cannot be resynchronised after an oversize length: answer, close.
                conn.error(header.request_id, (e.code, e.message));
                return;
            }
            let frame_len = FRAME_HEADER_BYTES + header.payload_len as usize;
            if avail.len() < frame_len {
                need = frame_len;
                break;
            }
            // Back-pressure, per frame: a client that does not read its replies stops being
            // served (and then read) until they drain.
            if conn.pending_bytes() >= MAX_PENDING_REPLY_BYTES {
                conn.handshaken.set(handshaken);
                flush_inline(conn, sock.fd());
                if !wait_for_room(conn).await {
                    return;
                }
                // A partial frame left in the buffer counts from now: it could not be sent
                // while the connection was not read.
                read_at = Instant::now();
                continue;
            }
            let payload = &buf[start + FRAME_HEADER_BYTES..start + frame_len];
            let keep_open = dispatch(conn, &header, payload, &mut handshaken);
            start += frame_len;
            if !keep_open {
                return;
            }
        }
        conn.handshaken.set(handshaken);
        flush_inline(conn, sock.fd());
        if shard.is_shutting_down() {
            return;
        }
        // The frame timeout runs from the read that brought a frame's first bytes.
        if start == filled {
            conn.partial_since.set(None);
        } else if start != first || conn.partial_since.get().is_none() {
            conn.partial_since.set(Some(read_at));
        }
        // Make room: move the partial frame to the front, grow only for a frame that does not fit.
        if start == filled {
            (start, filled) = (0, 0);
        } else if buf.len() - filled < READ_CHUNK_BYTES / 4 || buf.len() - start < need {
            buf.copy_within(start..filled, 0);
            (start, filled) = (0, filled - start);
        }
        if buf.len() < need {
            debug_assert!(need <= FRAME_HEADER_BYTES + MAX_FRAME_PAYLOAD_BYTES as usize);
            buf.resize(need, 0);
        }
        // Spin mode: poll the socket directly for a while before parking on it.
        let spun = if shard.cfg.spin.is_zero() {
            None
        } else {
            spin_recv(shard, sock.fd(), &mut buf[filled..]).await
        };
        // Read more, but wake up for shutdown too (a stop shuts the socket down: end of file).
        let read = match spun {
            Some(r) => Some(r),
            None => {
                futures_lite::future::or(
                    async { Some(sock.read(&mut buf[filled..]).await) },
                    async {
                        let _ = shard.shutdown.acquire(1).await;
                        None
                    },
                )
                .await
            }
        };
        match read {
            Some(Ok(n)) if n > 0 => filled += n,
            _ => return, // EOF, error, stop, or shutdown
        }
        read_at = Instant::now();
        conn.last_read.set(read_at);
    }
}

/// Back-pressure: waits until the connection's pending replies fell to
/// `REPLY_LOW_WATER_BYTES`. False when the connection must stop instead (stopped, shutdown).
async fn wait_for_room(conn: &Conn) -> bool {
    while conn.pending_bytes() > REPLY_LOW_WATER_BYTES {
        if conn.broken.get() || conn.shard.is_shutting_down() {
            return false;
        }
        conn.paused.set(true);
        let woken = futures_lite::future::or(async { conn.room.acquire(1).await.is_ok() }, async {
            let _ = conn.shard.shutdown.acquire(1).await;
            false
        })
        .await;
        conn.paused.set(false);
        if !woken {
            return false;
        }
    }
    if conn.broken.get() {
        return false;
    }
    // The peer could not send while it was not read: its frame's time starts again.
    if conn.partial_since.get().is_some() {
        conn.partial_since.set(Some(Instant::now()));
    }
    true
}

/// Why the watchdog closes a connection.
#[derive(Clone, Copy, Debug)]
enum Expiry {
    Handshake,
    Frame,
    Idle,
    ShutdownGrace,
}

/// Closes the connection when its peer is too slow or silent: no HELLO within the handshake
/// timeout, a frame begun but not complete within the frame timeout, nothing received,
/// running or written for the idle timeout (which also catches a client that stopped reading
/// its replies), and, once the server shuts down, replies not delivered within
/// `SHUTDOWN_REPLY_GRACE` of the connection's last running request finishing. It sleeps until
/// the earliest deadline that can apply and checks again then, so requests pay for no timer;
/// it wakes at least once per frame or idle timeout.
async fn watchdog(conn: Rc<Conn>) {
    let shard = conn.shard.clone();
    let cfg = shard.cfg.clone();
    let mut shutting_down = false;
    // Shutdown: when the connection had no request running any more.
    let mut drained_at: Option<Instant> = None;
    loop {
        let now = Instant::now();
        shutting_down = shutting_down || shard.is_shutting_down();
        // (when, what expires then); `None`: only a re-check, for conditions that begin later.
        let mut recheck = cfg
            .idle_timeout
            .map_or(cfg.frame_timeout, |idle| idle.min(cfg.frame_timeout));
        if shutting_down && conn.in_flight.get() > 0 {
            // Requests already read still run to completion; their replies get the grace
            // period once the last one is done.
            recheck = recheck.min(Duration::from_millis(SHUTDOWN_POLL_MS));
        }
        let mut next: (Instant, Option<Expiry>) = (now + recheck, None);
        let mut consider = |at: Instant, why: Expiry| {
            if at < next.0 {
                next = (at, Some(why));
            }
        };
        if !conn.handshaken.get() {
            consider(conn.accepted + cfg.handshake_timeout, Expiry::Handshake);
        } else {
            if let Some(since) = conn.partial_since.get() {
                if !conn.paused.get() {
                    consider(since + cfg.frame_timeout, Expiry::Frame);
                }
            }
            if let Some(idle) = cfg.idle_timeout {
                if conn.in_flight.get() == 0 {
                    let last = conn.last_read.get().max(conn.last_write.get());
                    consider(last + idle, Expiry::Idle);
                }
            }
        }
        if shutting_down && conn.in_flight.get() == 0 {
            let since = *drained_at.get_or_insert(now);
            consider(since + SHUTDOWN_REPLY_GRACE, Expiry::ShutdownGrace);
        }
        match next {
            (at, Some(why)) if at <= now => {
                expire(&conn, why);
                return;
            }
            (at, _) => {
                let sleep = glommio::timer::sleep(at - now);
                if shutting_down {
                    sleep.await;
                } else {
                    futures_lite::future::or(sleep, async {
                        let _ = shard.shutdown.acquire(1).await;
                    })
                    .await;
                }
            }
        }
    }
}

/// Stops a connection whose deadline `why` passed (see [`watchdog`]).
fn expire(conn: &Conn, why: Expiry) {
    let cfg = &conn.shard.cfg;
    tracing::debug!(shard = conn.shard.id, ?why, "closing a connection");
    if let Expiry::Handshake = why {
        conn.error(
            0,
            (
                ErrorCode::HandshakeRequired,
                format!(
                    "no HELLO within {} ms of connecting (--handshake-timeout-ms)",
                    cfg.handshake_timeout.as_millis()
                ),
            ),
        );
        flush_inline(conn, conn.fd);
    }
    conn.stop();
}

/// Spin mode (`--spin-us`): tries a non-blocking `recv` on the socket until data arrives or
/// the spin budget is spent (then `None`: park on glommio's readiness poll as usual).
///
/// Why: glommio learns that a socket is readable from an io_uring poll completion, which the
/// kernel delivers as task work that runs only when the thread enters the kernel; a thread
/// spinning in user space sees it only at the next interrupt (tens of µs on a VM). Between
/// attempts the task queue yields, so the reactor keeps polling disk and other sockets.
async fn spin_recv(
    shard: &Shard,
    fd: std::os::unix::io::RawFd,
    buf: &mut [u8],
) -> Option<io::Result<usize>> {
    let start = Instant::now();
    loop {
        // SAFETY: recv writes at most buf.len() bytes into buf, which we own mutably.
        let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT) };
        if n >= 0 {
            return Some(Ok(n as usize));
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::WouldBlock && err.kind() != io::ErrorKind::Interrupted {
            return Some(Err(err));
        }
        if start.elapsed() >= shard.cfg.spin || shard.is_shutting_down() {
            return None;
        }
        glommio::executor().yield_task_queue_now().await;
    }
}

/// Handles one frame. Returns false when the connection must close.
fn dispatch(conn: &Rc<Conn>, header: &FrameHeader, payload: &[u8], handshaken: &mut bool) -> bool {
    let id = header.request_id;
    let started = Instant::now();
    if id == tarn_net::CONNECTION_REQUEST_ID {
        // Its reply could not be told from a connection-level error: refuse it unread (a
        // HELLO too: before the handshake any error closes).
        conn.error(
            id,
            (
                ErrorCode::BadRequestId,
                "request id 0 is reserved for connection-level errors; number requests from 1"
                    .into(),
            ),
        );
        return *handshaken;
    }
    let request = match tarn_net::decode_request(header, payload) {
        Ok(r) => r,
        Err(e) => {
            conn.error(id, (e.code, e.message));
            // Bad framing of the first frame means this is not a Tarn client: close.
            return *handshaken;
        }
    };
    if !*handshaken {
        let Request::Hello(hello) = request else {
            conn.error(
                id,
                (
                    ErrorCode::HandshakeRequired,
                    "the first request on a connection must be HELLO".into(),
                ),
            );
            return false;
        };
        let Some(version) = tarn_net::negotiate_version(hello.min_version, hello.max_version)
        else {
            conn.error(id, (
                ErrorCode::UnsupportedVersion,
                format!(
                    "client speaks protocol versions {}..={}, server speaks {MIN_PROTOCOL_VERSION}..={PROTOCOL_VERSION}",
                    hello.min_version, hello.max_version
                ),
            ));
            return false;
        };
        if let Some(token) = &conn.shard.cfg.auth_token {
            if !constant_time_eq(token.as_bytes(), hello.auth_token.as_bytes()) {
                conn.error(
                    id,
                    (
                        ErrorCode::AuthFailed,
                        "authentication failed: wrong or missing token".into(),
                    ),
                );
                return false;
            }
        }
        *handshaken = true;
        conn.reply(
            id,
            &Response::Hello(HelloReply {
                version,
                server_version: env!("CARGO_PKG_VERSION").to_string(),
                shard_count: conn.shard.count,
                max_frame_payload_bytes: MAX_FRAME_PAYLOAD_BYTES,
                max_batch_rows: MAX_BATCH_ROWS,
                max_in_flight: MAX_IN_FLIGHT_PER_CONNECTION,
            }),
        );
        conn.shard
            .stats
            .borrow_mut()
            .record(Opcode::Hello, started.elapsed().as_micros() as u64);
        return true;
    }
    if conn.in_flight.get() >= MAX_IN_FLIGHT_PER_CONNECTION {
        conn.error(id, (
            ErrorCode::TooManyInFlight,
            format!("more than {MAX_IN_FLIGHT_PER_CONNECTION} requests in flight on this connection (MAX_IN_FLIGHT_PER_CONNECTION); wait for replies"),
        ));
        return true;
    }
    conn.in_flight.set(conn.in_flight.get() + 1);
    let op = request.opcode();
    match request {
        // Answered inline: no task, no await.
        Request::Ping(data) => {
            conn.reply(id, &Response::Pong(data));
            conn.finish(op, started);
        }
        Request::Hello(_) => {
            conn.error(
                id,
                (
                    ErrorCode::Unsupported,
                    "HELLO was already received on this connection".into(),
                ),
            );
            conn.finish(op, started);
        }
        // A GET whose keys this shard owns (every GET with one shard) is answered inline too:
        // the point-read latency is the product's headline number.
        Request::Get(req) if all_local(&conn.shard, &req) => {
            if let Err(e) = get_inline(conn, id, &req) {
                conn.reply(id, &Response::Error(e));
            }
            conn.finish(op, started);
        }
        request => {
            let conn = conn.clone();
            let reservation = conn.reserve(op);
            glommio::spawn_local(async move {
                let resp = handle(&conn.shard, request).await;
                let encoded = match resp {
                    Ok(r) => conn.reply(id, &r),
                    Err(e) => conn.reply(id, &Response::Error(e)),
                };
                conn.release(reservation, encoded);
                conn.finish(op, started);
            })
            .detach();
        }
    }
    true
}

/// True when every key of `req` is owned by this shard (or the request is invalid, which the
/// inline path reports without any other shard's help).
fn all_local(shard: &Shard, req: &tarn_net::KeysRequest) -> bool {
    if shard.count == 1 {
        return true;
    }
    let mut buf = Vec::new();
    req.keys.iter().all(|k| {
        tarn_types::encode_key(k, &mut buf).is_err() || shard_for(&buf, shard.count) == shard.id
    })
}

/// Answers a GET whose keys this shard owns, encoding the reply straight from the stored
/// rows (no copy of rows or column names).
fn get_inline(conn: &Conn, id: u64, req: &tarn_net::KeysRequest) -> Result<(), ErrorReply> {
    let shard = &conn.shard;
    let catalog = shard.catalog();
    let def = catalog
        .table(&req.table)
        .ok_or_else(|| unknown_table(&req.table))?;
    let keys = batch::validate_keys(def, &req.keys).map_err(super::core_error)?;
    let columns = shard.reply_columns(def);
    shard.with_local_rows(def.id, &keys, |rows| {
        conn.reply_with(id, |out| {
            tarn_net::encode_get_reply(id, &columns, rows, out)
        })
    });
    Ok(())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn fail((code, message): Failure) -> ErrorReply {
    ErrorReply {
        code,
        message,
        row: None,
        column: None,
    }
}

async fn handle(shard: &Rc<Shard>, request: Request) -> Result<Response, ErrorReply> {
    match request {
        Request::Sql(sql) => {
            let mut progress = SqlProgress::default();
            let reply = sql_request(shard, &sql, &mut progress).await;
            reply.map_err(|e| progress.error(e))
        }
        Request::Upsert(up) => {
            let catalog = shard.catalog();
            let def = catalog
                .table(&up.table)
                .ok_or_else(|| unknown_table(&up.table))?;
            let valid = batch::validate_upsert(def, up.mode, &up.columns, up.rows)
                .map_err(super::core_error)?;
            let parts = batch::split_by_shard(valid, shard.count)
                .into_iter()
                .enumerate()
                .filter_map(|(s, part)| part.map(|p| (s as u32, p.into_mutation())))
                .collect();
            let rows = run_parts(shard, parts, None).await?;
            Ok(Response::Upsert(UpsertReply { rows_applied: rows }))
        }
        Request::Get(req) => {
            let catalog = shard.catalog();
            let def = catalog
                .table(&req.table)
                .ok_or_else(|| unknown_table(&req.table))?;
            let keys = batch::validate_keys(def, &req.keys).map_err(super::core_error)?;
            let columns = shard.reply_columns(def).to_vec();
            let rows = get_rows(shard, def.id, keys).await.map_err(fail)?;
            Ok(Response::Get(GetReply { columns, rows }))
        }
        Request::Delete(req) => {
            let catalog = shard.catalog();
            let def = catalog
                .table(&req.table)
                .ok_or_else(|| unknown_table(&req.table))?;
            let keys = batch::validate_keys(def, &req.keys).map_err(super::core_error)?;
            let parts = batch::split_keys_by_shard(keys, shard.count)
                .into_iter()
                .enumerate()
                .filter(|(_, keys)| !keys.is_empty())
                .map(|(s, keys)| {
                    let keys = keys.into_iter().map(|(_, k)| k).collect();
                    (
                        s as u32,
                        Mutation::Delete {
                            table_id: def.id,
                            keys,
                        },
                    )
                })
                .collect();
            let rows = run_parts(shard, parts, None).await?;
            Ok(Response::Delete(DeleteReply { rows_deleted: rows }))
        }
        Request::Stats => Ok(Response::Stats(StatsReply {
            shards: shard.stats_all().await.map_err(fail)?,
        })),
        Request::Ingest(req) => ingest(shard, req).await,
        Request::History(req) => {
            let (columns, rows) = read_history(shard, &req.view, req.pairs).await?;
            Ok(Response::History(HistoryReply { columns, rows }))
        }
        Request::Features(req) => {
            let (as_of_us, columns, rows) =
                read_features(shard, &req.view, &req.keys, req.as_of_us)
                    .await
                    .map_err(|mut e| {
                        // FEATURES' as-of time belongs to no key: no row.
                        if e.code == ErrorCode::InvalidArgument {
                            e.row = None;
                        }
                        e
                    })?;
            Ok(Response::Features(FeaturesReply {
                as_of_us,
                columns,
                rows,
            }))
        }
        Request::Hello(_) | Request::Ping(_) => unreachable!("answered inline"),
    }
}

/// Encodes each shard's part of a write as its log record, refuses the whole batch if any part
/// is too big for one record (before anything is sent), then sends each owner its part and
/// waits for all of them (concurrently).
async fn run_parts(
    shard: &Rc<Shard>,
    parts: Vec<(u32, Mutation)>,
    producer: Option<(u64, u64)>,
) -> Result<u64, ErrorReply> {
    let max = shard.max_record_bytes();
    // A part of a multi-shard batch is logged inside a Prepare record, with a header.
    let header = if parts.len() > 1 {
        TxnPart::header_len(parts.len()) - 1
    } else {
        0
    };
    let mut encoded = Vec::with_capacity(parts.len());
    for (target, m) in parts {
        let record = tarn_core::record::encode_to_vec(&m);
        if record.len() + header > max {
            return Err(fail((
                ErrorCode::BatchTooLarge,
                format!(
                    "shard {target}'s part of this batch encodes to {} bytes, more than one log record holds ({max} bytes with this segment size); send smaller batches",
                    record.len() + header
                ),
            )));
        }
        encoded.push((target, m, record));
    }
    if encoded.len() == 1 {
        // One owner (always, with one shard): one log record, atomic by itself.
        let (target, m, record) = encoded.pop().expect("one part");
        return shard.write(target, m, record).await.map_err(fail);
    }
    shard.write_txn_for(producer, encoded).await.map_err(fail)
}

async fn get_rows(
    shard: &Rc<Shard>,
    table_id: u32,
    keys: Vec<Vec<u8>>,
) -> Result<Vec<Option<Vec<Value>>>, Failure> {
    let n = shard.count;
    let mut rows: Vec<Option<Vec<Value>>> = vec![None; keys.len()];
    let tasks: Vec<_> = batch::split_keys_by_shard(keys, n)
        .into_iter()
        .enumerate()
        .filter(|(_, part)| !part.is_empty())
        .map(|(s, part)| {
            let (idx, keys): (Vec<usize>, Vec<Vec<u8>>) = part.into_iter().unzip();
            let shard = shard.clone();
            glommio::spawn_local(async move { (idx, shard.get(s as u32, table_id, keys).await) })
        })
        .collect();
    for t in tasks {
        let (idx, found) = t.await;
        for (i, row) in idx.into_iter().zip(found?) {
            rows[i] = row;
        }
    }
    Ok(rows)
}

/// A checked view read: the view id, its reply columns (key first), the canonical keys.
type ViewRead = (u32, Vec<tarn_core::schema::ColumnDef>, Vec<Vec<u8>>);

/// The checks every view read shares: the view exists, at most `MAX_BATCH_ROWS` keys, each
/// typed by the view's key column. Returns the view id, its reply columns (key first) and
/// the canonical keys.
fn prepare_view_read(shard: &Shard, view: &str, keys: &[Value]) -> Result<ViewRead, ErrorReply> {
    let catalog = shard.catalog();
    let def = catalog.view(view).ok_or_else(|| ErrorReply {
        code: ErrorCode::UnknownView,
        message: format!("feature view {view:?} does not exist"),
        row: None,
        column: None,
    })?;
    let stream = catalog
        .stream_by_id(def.stream_id)
        .expect("a view's stream exists while the view does");
    let columns = def.result_columns(stream);
    if keys.len() > MAX_BATCH_ROWS as usize {
        return Err(ErrorReply::new(
            ErrorCode::BatchTooLarge,
            format!(
                "{} keys in one read; the limit is {MAX_BATCH_ROWS}",
                keys.len()
            ),
        ));
    }
    let encoded =
        tarn_core::events::validate_view_keys(&columns[0], keys).map_err(super::core_error)?;
    Ok((def.id, columns, encoded))
}

/// Splits request items by the shard owning their key: per owner, the request indexes and
/// the items, in request order.
fn by_owner<T: Clone>(
    shard: &Shard,
    keys: Vec<Vec<u8>>,
    item: impl Fn(usize, Vec<u8>) -> T,
) -> Vec<(u32, Vec<usize>, Vec<T>)> {
    let mut groups: Vec<(Vec<usize>, Vec<T>)> =
        vec![(Vec::new(), Vec::new()); shard.count as usize];
    for (i, k) in keys.into_iter().enumerate() {
        let s = shard_for(&k, shard.count) as usize;
        groups[s].0.push(i);
        groups[s].1.push(item(i, k));
    }
    groups
        .into_iter()
        .enumerate()
        .filter(|(_, (idx, _))| !idx.is_empty())
        .map(|(s, (idx, items))| (s as u32, idx, items))
        .collect()
}

/// Reads feature view `view` for `keys`: as of now (each owner answers at its latest
/// consistent point and each row states it), or as of a past time through the history path.
/// Returns the earliest as-of time, the reply columns (key, then aggregates) and one row per
/// key.
async fn read_features(
    shard: &Rc<Shard>,
    view: &str,
    keys: &[Value],
    as_of_us: Option<i64>,
) -> Result<(i64, Vec<Column>, Vec<FeatureRow>), ErrorReply> {
    if let Some(t) = as_of_us {
        // A past as-of time: recomputed from the retained log (point-in-time history).
        let (columns, rows) =
            read_history(shard, view, keys.iter().map(|k| (k.clone(), t)).collect()).await?;
        return Ok((t, columns, rows));
    }
    let (view_id, result_columns, encoded) = prepare_view_read(shard, view, keys)?;
    let tasks: Vec<_> = by_owner(shard, encoded, |_, k| k)
        .into_iter()
        .map(|(s, idx, ks)| {
            let shard = shard.clone();
            glommio::spawn_local(async move { (idx, shard.features(s, view_id, ks).await) })
        })
        .collect();
    let rows = gather_feature_rows(tasks, &reply_keys(&result_columns[0], keys)).await?;
    let as_of = rows.iter().map(|r| r.as_of_us).min().unwrap_or(i64::MIN);
    Ok((as_of, to_columns(result_columns), rows))
}

/// Point-in-time history: the view's features for each `(key, as_of)` pair, from the owners'
/// retained logs. As-of times after the server's clock are refused (the future is not written
/// yet).
async fn read_history(
    shard: &Rc<Shard>,
    view: &str,
    pairs: Vec<(Value, i64)>,
) -> Result<(Vec<Column>, Vec<FeatureRow>), ErrorReply> {
    let keys: Vec<Value> = pairs.iter().map(|(k, _)| k.clone()).collect();
    let (view_id, result_columns, encoded) = prepare_view_read(shard, view, &keys)?;
    let now = super::now_us();
    if let Some(i) = pairs.iter().position(|(_, t)| *t >= now) {
        return Err(ErrorReply::new(
            ErrorCode::InvalidArgument,
            format!(
                "as-of time {} is not in the past (server clock {now}); read the current values without as_of",
                pairs[i].1
            ),
        )
        .with_row(i as u32));
    }
    let tasks: Vec<_> = by_owner(shard, encoded, |i, k| (k, pairs[i].1))
        .into_iter()
        .map(|(s, idx, qs)| {
            let shard = shard.clone();
            glommio::spawn_local(async move { (idx, shard.history(s, view_id, qs).await) })
        })
        .collect();
    let rows = gather_feature_rows(tasks, &reply_keys(&result_columns[0], &keys)).await?;
    Ok((to_columns(result_columns), rows))
}

/// The keys as a reply row shows them: of the key column's type (a BIGINT key of a TIMESTAMP
/// key column, the one coercion keys get, becomes the TIMESTAMP it was read as).
fn reply_keys(key_column: &tarn_core::schema::ColumnDef, keys: &[Value]) -> Vec<Value> {
    keys.iter()
        .map(|k| match (key_column.ty, k) {
            (tarn_types::ColumnType::Timestamp, Value::Int(t)) => Value::Timestamp(*t),
            _ => k.clone(),
        })
        .collect()
}

/// One owner's answer to a feature read: the request indexes it answered and its rows.
type OwnerAnswer = (Vec<usize>, Result<super::shard::FeatureRows, Failure>);

/// The reply columns of a view.
fn to_columns(cols: Vec<tarn_core::schema::ColumnDef>) -> Vec<Column> {
    cols.into_iter()
        .map(|c| Column {
            name: c.name,
            ty: c.ty,
        })
        .collect()
}

/// Awaits every owner's answer and puts the rows back in request order (the key first).
async fn gather_feature_rows(
    tasks: Vec<glommio::Task<OwnerAnswer>>,
    keys: &[Value],
) -> Result<Vec<FeatureRow>, ErrorReply> {
    let mut rows: Vec<Option<FeatureRow>> = vec![None; keys.len()];
    let mut first_err = None;
    for t in tasks {
        let (idx, got) = t.await;
        match got {
            Ok(values) => {
                for (i, (as_of, vals, newest)) in idx.into_iter().zip(values) {
                    let mut all = Vec::with_capacity(vals.len() + 1);
                    all.push(keys[i].clone());
                    all.extend(vals);
                    rows[i] = Some(FeatureRow {
                        as_of_us: as_of,
                        newest_event_time_us: newest,
                        values: all,
                    });
                }
            }
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    if let Some(e) = first_err {
        return Err(fail(e));
    }
    Ok(rows
        .into_iter()
        .map(|r| r.expect("every key answered"))
        .collect())
}

/// Validates an INGEST completely, splits it by home shard and writes it (atomically across
/// shards). A batch whose producer tag was already applied is acknowledged as a duplicate.
async fn ingest(shard: &Rc<Shard>, req: IngestRequest) -> Result<Response, ErrorReply> {
    let catalog = shard.catalog();
    let def = catalog.stream(&req.stream).ok_or_else(|| ErrorReply {
        code: ErrorCode::UnknownStream,
        message: format!("stream {:?} does not exist", req.stream),
        row: None,
        column: None,
    })?;
    let now_us = super::now_us();
    let rows = match req.body {
        IngestBody::Rows { columns, rows } => {
            tarn_core::events::validate_event_rows(def, &columns, rows, now_us)
        }
        IngestBody::Json { layout, mut data } => {
            let layout = match layout {
                1 => tarn_core::ingest::JsonLayout::Lines,
                2 => tarn_core::ingest::JsonLayout::Array,
                _ => tarn_core::ingest::JsonLayout::Auto,
            };
            tarn_core::ingest::parse_json_events(
                &def.columns,
                &def.required(),
                &mut data,
                layout,
                MAX_BATCH_ROWS as usize,
            )
            .and_then(|rows| tarn_core::events::check_events(def, &rows, now_us).map(|()| rows))
        }
    }
    .map_err(|e| {
        let too_many = e.kind() == tarn_core::ErrorKind::LimitExceeded;
        let mut reply = super::core_error(e);
        if too_many {
            reply.code = ErrorCode::BatchTooLarge;
        }
        reply
    })?;
    let events = rows.len() as u64;
    let producer = req.producer.map(|p| (p.id, p.seq));
    let _routing = shard.route_guard(catalog.version);
    let parts = tarn_core::events::split_events(&catalog, def, rows, producer, shard.count);
    let applied = run_parts(shard, parts, producer).await?;
    Ok(Response::Ingest(IngestReply {
        events,
        duplicate: applied == 0,
    }))
}

/// How far a SQL request got: statements in it, statements that completed. A failing
/// statement's error says which one it was and that the ones before it were applied.
#[derive(Default)]
struct SqlProgress {
    statements: usize,
    done: usize,
}

impl SqlProgress {
    /// For SQL, `row` is the 0-based index of the failing statement in a request of several
    /// (= the statements applied before it), never a key index; absent for a single statement
    /// and when the text does not parse (nothing ran).
    fn error(&self, mut e: ErrorReply) -> ErrorReply {
        e.row = None;
        if self.statements > 1 {
            let (n, i) = (self.statements, self.done);
            let before = match i {
                0 => "nothing was applied".to_string(),
                1 => "statement 1 was applied, the statements after it were not run".to_string(),
                _ => format!(
                    "statements 1 to {i} were applied, the statements after it were not run"
                ),
            };
            e.message = format!(
                "statement {} of {n} failed ({before}): {}",
                i + 1,
                e.message
            );
            e.row = Some(i as u32);
        }
        e
    }
}

async fn sql_request(
    shard: &Rc<Shard>,
    sql: &str,
    progress: &mut SqlProgress,
) -> Result<Response, ErrorReply> {
    let statements = tarn_core::sql::parse(sql).map_err(super::core_error)?;
    progress.statements = statements.len();
    let mut reply = SqlReply {
        message: String::new(),
        columns: Vec::new(),
        rows: Vec::new(),
    };
    let mut messages = Vec::new();
    for stmt in statements {
        match stmt {
            Statement::ShowTables => {
                messages.push(put(
                    &mut reply,
                    tarn_core::listing::show_tables(&shard.catalog()),
                ));
            }
            Statement::SelectFeatures {
                view,
                columns,
                key_column,
                keys,
            } => {
                let catalog = shard.catalog();
                let def = catalog.view(&view).ok_or_else(|| ErrorReply {
                    code: ErrorCode::UnknownView,
                    message: format!("feature view {view:?} does not exist"),
                    row: None,
                    column: None,
                })?;
                if key_column != def.key_name {
                    return Err(ErrorReply::new(
                        ErrorCode::Unsupported,
                        format!(
                            "feature view {view} is read by its key column {}: WHERE {} = ... or IN (...)",
                            def.key_name, def.key_name
                        ),
                    ));
                }
                let (as_of, all_cols, rows) = read_features(shard, &view, &keys, None).await?;
                let pick: Vec<usize> = match &columns {
                    None => (0..all_cols.len()).collect(),
                    Some(names) => names
                        .iter()
                        .map(|n| {
                            all_cols
                                .iter()
                                .position(|c| &c.name == n)
                                .ok_or_else(|| ErrorReply {
                                    code: ErrorCode::UnknownColumn,
                                    message: format!("feature view {view} has no column {n:?}"),
                                    row: None,
                                    column: Some(n.clone()),
                                })
                        })
                        .collect::<Result<_, _>>()?,
                };
                reply.columns = pick.iter().map(|&i| all_cols[i].clone()).collect();
                reply.rows = rows
                    .into_iter()
                    .map(|r| pick.iter().map(|&i| r.values[i].clone()).collect())
                    .collect();
                messages.push(format!(
                    "{} key(s) as of {}",
                    reply.rows.len(),
                    tarn_core::ingest::format_rfc3339_us(as_of)
                ));
            }
            Statement::ShowViews => {
                let catalog = shard.catalog();
                let mut totals = std::collections::BTreeMap::new();
                for v in catalog.views() {
                    let [keys, window_bytes, events, late_events] =
                        shard.view_totals(v.id).await.map_err(fail)?;
                    let t = tarn_core::listing::ViewTotals {
                        keys,
                        window_bytes,
                        events,
                        late_events,
                    };
                    totals.insert(v.id, t);
                }
                messages.push(put(
                    &mut reply,
                    tarn_core::listing::show_views(&catalog, &totals),
                ));
            }
            Statement::ShowStreams => {
                let catalog = shard.catalog();
                let mut totals = std::collections::BTreeMap::new();
                for s in catalog.streams() {
                    let (events, newest_event_time_us) =
                        shard.stream_totals(s.id).await.map_err(fail)?;
                    let t = tarn_core::listing::StreamTotals {
                        events,
                        newest_event_time_us,
                    };
                    totals.insert(s.id, t);
                }
                messages.push(put(
                    &mut reply,
                    tarn_core::listing::show_streams(&catalog, &totals),
                ));
            }
            Statement::Describe { table } => {
                let listing = tarn_core::listing::describe(&shard.catalog(), &table)
                    .ok_or_else(|| unknown_table(&table))?;
                messages.push(put(&mut reply, listing));
            }
            ddl => {
                let view = match &ddl {
                    Statement::CreateView { spec, .. } => Some(spec.name.clone()),
                    _ => None,
                };
                let (message, backfilled) = shard.ddl(ddl).await.map_err(fail)?;
                if let Some(view) = view {
                    (reply.columns, reply.rows) = backfill_result(view, backfilled);
                }
                messages.push(message);
            }
        }
        progress.done += 1;
    }
    reply.message = messages.join("\n");
    Ok(Response::Sql(reply))
}

/// CREATE MATERIALIZED VIEW's result set: one row, the view and the events back-filled into
/// it (0 when `IF NOT EXISTS` skipped an existing view).
fn backfill_result(view: String, backfilled: Option<u64>) -> (Vec<Column>, Vec<Vec<Value>>) {
    let columns = vec![
        Column {
            name: "view".into(),
            ty: tarn_types::ColumnType::Text,
        },
        Column {
            name: "backfilled_events".into(),
            ty: tarn_types::ColumnType::BigInt,
        },
    ];
    let n = backfilled.unwrap_or(0) as i64;
    (columns, vec![vec![Value::Text(view), Value::Int(n)]])
}

/// Sets the reply's result set from a core listing; returns its message.
fn put(reply: &mut SqlReply, listing: tarn_core::listing::Listing) -> String {
    reply.columns = listing
        .columns
        .into_iter()
        .map(|c| Column {
            name: c.name,
            ty: c.ty,
        })
        .collect();
    reply.rows = listing.rows;
    listing.message
}

fn unknown_table(name: &str) -> ErrorReply {
    ErrorReply {
        code: ErrorCode::UnknownTable,
        message: format!("table {name:?} does not exist"),
        row: None,
        column: None,
    }
}
