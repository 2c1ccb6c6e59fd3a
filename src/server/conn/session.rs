//! The session: HELLO (version, token) first, then each frame is answered inline (PING, GETs
//! of keys this shard owns) or handed to [`crate::server::service`] as a task.

use std::rc::Rc;
use std::time::Instant;

use crate::server::error::ServerError;
use tarn_core::batch;
use tarn_net::limits::{
    MAX_BATCH_ROWS, MAX_FRAME_PAYLOAD_BYTES, MAX_IN_FLIGHT_PER_CONNECTION, MIN_PROTOCOL_VERSION,
    PROTOCOL_VERSION,
};
use tarn_net::{ErrorCode, FrameHeader, HelloReply, Opcode, Request, Response};
use tarn_types::shard_for;

use super::Conn;
use crate::server::service;

/// Handles one frame. Returns false when the connection must close.
pub(super) fn dispatch(
    conn: &Rc<Conn>,
    header: &FrameHeader,
    payload: &[u8],
    handshaken: &mut bool,
) -> bool {
    let id = header.request_id;
    let started = Instant::now();
    if id == tarn_net::CONNECTION_REQUEST_ID {
        // Its reply could not be told from a connection-level error: refuse it unread (a
        // HELLO too: before the handshake any error closes).
        conn.error(
            id,
            ServerError::new(
                ErrorCode::BadRequestId,
                "request id 0 is reserved for connection-level errors; number requests from 1",
            ),
        );
        return *handshaken;
    }
    let request = match tarn_net::decode_request(header, payload) {
        Ok(r) => r,
        Err(e) => {
            conn.error(id, ServerError::new(e.code, e.message));
            // Bad framing of the first frame means this is not a Tarn client: close.
            return *handshaken;
        }
    };
    if !*handshaken {
        let Request::Hello(hello) = request else {
            conn.error(
                id,
                ServerError::new(
                    ErrorCode::HandshakeRequired,
                    "the first request on a connection must be HELLO",
                ),
            );
            return false;
        };
        let Some(version) = tarn_net::negotiate_version(hello.min_version, hello.max_version)
        else {
            conn.error(id, ServerError::new(
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
                    ServerError::new(
                        ErrorCode::AuthFailed,
                        "authentication failed: wrong or missing token",
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
        conn.error(id, ServerError::new(
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
                ServerError::new(
                    ErrorCode::Unsupported,
                    "HELLO was already received on this connection",
                ),
            );
            conn.finish(op, started);
        }
        // A GET whose keys this shard owns (every GET with one shard) is answered inline too:
        // the point-read latency is the product's headline number.
        Request::Get(req) if get_inline(conn, id, &req) => conn.finish(op, started),
        request => {
            let conn = conn.clone();
            let reservation = conn.reserve(op);
            glommio::spawn_local(async move {
                let resp = service::handle(&conn.shard, request).await;
                let encoded = match resp {
                    Ok(r) => conn.reply(id, &r),
                    Err(e) => conn.reply(id, &Response::Error(e.into())),
                };
                conn.release(reservation, encoded);
                conn.finish(op, started);
            })
            .detach();
        }
    }
    true
}

/// Answers a GET inline when this shard owns every key, encoding the reply straight from the
/// stored rows (no copy of rows or column names); an invalid GET is answered inline too (no
/// other shard is needed to refuse it). False when another shard owns a key: the caller runs
/// it as a task. Ownership is decided on the validated keys — the bytes of each key as its
/// column's type, e.g. a BIGINT given for a TIMESTAMP key — exactly as the owners store them.
pub(super) fn get_inline(conn: &Conn, id: u64, req: &tarn_net::KeysRequest) -> bool {
    let shard = &conn.shard;
    let catalog = shard.catalog();
    let Some(def) = catalog.table(&req.table) else {
        conn.error(id, service::unknown_table(&req.table));
        return true;
    };
    let keys = match batch::validate_keys(def, &req.keys) {
        Ok(keys) => keys,
        Err(e) => {
            conn.error(id, ServerError::from(e));
            return true;
        }
    };
    if shard.count > 1 && keys.iter().any(|k| shard_for(k, shard.count) != shard.id) {
        return false;
    }
    let columns = shard.reply_columns(def);
    shard.with_local_rows(def.id, &keys, |rows| {
        conn.reply_with(id, |out| {
            tarn_net::encode_get_reply(id, &columns, rows, out)
        })
    });
    true
}

pub(super) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
