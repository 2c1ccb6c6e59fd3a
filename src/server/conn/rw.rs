//! The connection's reader and writer loops: frames in (with back-pressure before every
//! frame), replies out (inline from the reader when the writer is idle, else by the writer).

use std::io;
use std::os::unix::io::RawFd;
use std::rc::Rc;
use std::time::Instant;

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use tarn_net::limits::{MAX_FRAME_PAYLOAD_BYTES, MAX_HANDSHAKE_FRAME_PAYLOAD_BYTES};
use tarn_net::{ErrorCode, FrameHeader, HEADER_LEN as FRAME_HEADER_BYTES};

use super::session::dispatch;
use super::{Conn, Half};
use crate::server::error::ServerError;
use crate::server::limits::{
    MAX_PENDING_REPLY_BYTES, READ_CHUNK_BYTES, REPLY_LOW_WATER_BYTES, RETAINED_REPLY_BUFFER_BYTES,
};
use crate::server::shard::Shard;

/// Sends queued replies straight from the reader with one non-blocking `send`, saving the
/// hop to the writer task for replies answered inline (GET, PING). Only when the writer is
/// idle (ordering); whatever the socket does not take stays queued for the writer.
pub(super) fn flush_inline(conn: &Conn, fd: RawFd) {
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

pub(super) async fn write_loop(conn: Rc<Conn>, mut sock: Half) {
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
pub(super) async fn read_loop(conn: &Rc<Conn>, mut sock: Half) {
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
                conn.error(header.request_id, ServerError::new(e.code, e.message));
                return;
            }
            if !handshaken && header.payload_len > MAX_HANDSHAKE_FRAME_PAYLOAD_BYTES {
                // An unauthenticated peer gets no large read buffer.
                conn.error(header.request_id, ServerError::new(
                    ErrorCode::FrameTooLarge,
                    format!(
                        "frame payload of {} bytes before the handshake exceeds the limit of {MAX_HANDSHAKE_FRAME_PAYLOAD_BYTES} bytes (MAX_HANDSHAKE_FRAME_PAYLOAD_BYTES); the first frame must be a HELLO",
                        header.payload_len
                    ),
                ));
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
pub(super) async fn wait_for_room(conn: &Conn) -> bool {
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

/// Spin mode (`--spin-us`): tries a non-blocking `recv` on the socket until data arrives or
/// the spin budget is spent (then `None`: park on glommio's readiness poll as usual).
///
/// Why: glommio learns that a socket is readable from an io_uring poll completion, which the
/// kernel delivers as task work that runs only when the thread enters the kernel; a thread
/// spinning in user space sees it only at the next interrupt (tens of µs on a VM). Between
/// attempts the task queue yields, so the reactor keeps polling disk and other sockets.
pub(super) async fn spin_recv(
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
