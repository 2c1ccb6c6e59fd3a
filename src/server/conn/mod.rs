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

//!
//! Files: this one holds the connection's shared state and `serve`; `rw.rs` the reader and
//! writer loops, `watchdog.rs` the timeouts, `session.rs` the handshake and how each frame
//! is dispatched (inline or as a task of [`crate::server::service`]).

mod rw;
mod session;
mod watchdog;

use std::cell::{Cell, RefCell};
use std::io;
use std::os::unix::io::{AsRawFd, RawFd};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::server::error::ServerError;
use futures_lite::{AsyncRead, AsyncReadExt, AsyncWrite};
use glommio::net::TcpStream;
use glommio::sync::Semaphore;
use tarn_net::limits::{MAX_CONNECTIONS_PER_SHARD, MAX_FRAME_PAYLOAD_BYTES};
use tarn_net::{ErrorCode, ErrorReply, Opcode, Response, HEADER_LEN as FRAME_HEADER_BYTES};

use crate::server::limits::{LINGER_CLOSE, LINGER_DRAIN_BYTES};
use crate::server::limits::{
    MAX_PENDING_REPLY_BYTES, REPLY_LOW_WATER_BYTES, RETAINED_REPLY_BUFFER_BYTES,
    WRITE_REPLY_RESERVE_BYTES,
};
use crate::server::shard::Shard;
use rw::{read_loop, write_loop};
use watchdog::watchdog;

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
            let err = Response::Error(ErrorReply::new(ErrorCode::BatchTooLarge, message));
            tarn_net::encode_response(request_id, &err, &mut out);
        }
        if was_empty {
            self.out_ready.signal(1);
        }
        frame_len
    }

    fn error(&self, request_id: u64, e: ServerError) {
        self.reply(request_id, &Response::Error(e.into()));
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
        conn.error(0, ServerError::new(
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
        let mut stream = stream.into_inner();
        if !conn.broken.get() && !shard.is_shutting_down() {
            linger(&mut stream).await;
        }
        let _ = stream.shutdown(std::net::Shutdown::Both).await;
    }
}

/// Closes gracefully a connection the server ends while the peer may still be sending (after
/// a closing error such as FRAME_TOO_LARGE, or a refusal at accept): sends FIN after the
/// queued replies, then reads and drops what the peer still sends until it closes too, at most
/// [`LINGER_CLOSE`] and [`LINGER_DRAIN_BYTES`]. Closing with unread input would make the kernel
/// reset the connection, and a reset can make the peer discard the error reply it was sent.
async fn linger(stream: &mut TcpStream) {
    if stream.shutdown(std::net::Shutdown::Write).await.is_err() {
        return;
    }
    let deadline = Instant::now() + LINGER_CLOSE;
    let mut drained = 0usize;
    let mut buf = vec![0u8; 16 << 10];
    while drained < LINGER_DRAIN_BYTES {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        let read = futures_lite::future::or(async { Some(stream.read(&mut buf).await) }, async {
            glommio::timer::sleep(left).await;
            None
        })
        .await;
        match read {
            Some(Ok(n)) if n > 0 => drained += n,
            _ => return, // the peer closed, an error, or the time is up
        }
    }
}
