//! The per-connection watchdog: handshake, frame and idle timeouts and the shutdown grace.

use std::rc::Rc;
use std::time::{Duration, Instant};

use tarn_net::ErrorCode;

use super::rw::flush_inline;
use super::Conn;
use crate::server::error::ServerError;
use crate::server::limits::{SHUTDOWN_POLL_MS, SHUTDOWN_REPLY_GRACE};

/// Why the watchdog closes a connection.
#[derive(Clone, Copy, Debug)]
pub(super) enum Expiry {
    Handshake,
    Frame,
    /// The idle timeout, which is set.
    Idle(Duration),
    ShutdownGrace,
}

/// Closes the connection when its peer is too slow or silent (telling it why, see [`expire`]):
/// no HELLO within the handshake timeout, a frame begun but not complete within the frame
/// timeout, nothing received, running or written for the idle timeout (which also catches a
/// client that stopped reading its replies), and, once the server shuts down, replies not
/// delivered within `SHUTDOWN_REPLY_GRACE` of the connection's last running request
/// finishing. It sleeps until the earliest deadline that can apply and checks again then, so
/// requests pay for no timer; it wakes at least once per frame or idle timeout.
pub(super) async fn watchdog(conn: Rc<Conn>) {
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
                    consider(last + idle, Expiry::Idle(idle));
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

/// Stops a connection whose deadline `why` passed (see [`watchdog`]). Except after the
/// shutdown grace, the client is first told why, with an ERROR frame of request id 0
/// (HANDSHAKE_REQUIRED for the handshake timeout, TIMEOUT for the frame and idle timeouts),
/// sent best-effort: one non-blocking send, only if the writer is idle. A client that does not
/// read (a full socket, or the writer blocked on it) does not get it: the frame is dropped with
/// the other queued replies and the connection is reset.
pub(super) fn expire(conn: &Conn, why: Expiry) {
    let cfg = &conn.shard.cfg;
    tracing::debug!(shard = conn.shard.id, ?why, "closing a connection");
    let told = match why {
        Expiry::Handshake => Some(ServerError::new(
            ErrorCode::HandshakeRequired,
            format!(
                "no HELLO within {} ms of connecting (--handshake-timeout-ms)",
                cfg.handshake_timeout.as_millis()
            ),
        )),
        Expiry::Frame => Some(ServerError::new(
            ErrorCode::Timeout,
            format!(
                "frame not complete {} ms after its first bytes (--frame-timeout-ms): connection closed",
                cfg.frame_timeout.as_millis()
            ),
        )),
        Expiry::Idle(idle) => Some(ServerError::new(
            ErrorCode::Timeout,
            format!(
                "idle for {} s (--idle-timeout-s): connection closed",
                idle.as_secs()
            ),
        )),
        Expiry::ShutdownGrace => None,
    };
    if let Some(e) = told {
        conn.error(tarn_net::CONNECTION_REQUEST_ID, e);
        flush_inline(conn, conn.fd);
    }
    conn.stop();
}
