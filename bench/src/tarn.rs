//! Tarn adapter: the binary protocol through `tarn-net` (the only crate that knows the wire
//! format). GET of keys by primary key; UPSERT (mode Replace) of `(k, v)` rows.
//!
//! The request templates are kept between calls and only the key/value strings are
//! rewritten, so encoding a request does not allocate in the steady state.

use std::io::{self, Read, Write};
use std::net::TcpStream;

use tarn_net::limits::{MAX_FRAME_PAYLOAD_BYTES, MIN_PROTOCOL_VERSION, PROTOCOL_VERSION};
use tarn_net::{
    decode_response, encode_request, split_frame, Hello, KeysRequest, Request as NetRequest,
    Response, UpsertMode, UpsertRequest, Value,
};

use crate::target::{Codec, CodecFactory, Decoded};
use crate::workload::{format_key, OpKind, Request};

/// Key column and value column of the benchmark table.
pub const KEY_COLUMN: &str = "k";
pub const VALUE_COLUMN: &str = "v";

/// Default DDL for the benchmark table (override with `--tarn-create-sql`).
pub fn default_create_sql(table: &str) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {table} ({KEY_COLUMN} TEXT PRIMARY KEY, {VALUE_COLUMN} TEXT)"
    )
}

pub struct TarnCodec {
    get: NetRequest,
    upsert: NetRequest,
    key: Vec<u8>,
}

fn set_text(v: &mut Value, bytes: &[u8]) {
    // Keys and values are ASCII by construction.
    let s = std::str::from_utf8(bytes).unwrap_or("");
    match v {
        Value::Text(t) => {
            t.clear();
            t.push_str(s);
        }
        other => *other = Value::Text(s.to_owned()),
    }
}

impl TarnCodec {
    pub fn new(table: &str) -> Self {
        Self {
            get: NetRequest::Get(KeysRequest {
                table: table.to_owned(),
                keys: Vec::new(),
            }),
            upsert: NetRequest::Upsert(UpsertRequest {
                table: table.to_owned(),
                mode: UpsertMode::Replace,
                columns: vec![KEY_COLUMN.to_owned(), VALUE_COLUMN.to_owned()],
                rows: Vec::new(),
            }),
            key: Vec::with_capacity(24),
        }
    }

    /// Fill the template for `req` and return it.
    pub fn build(&mut self, req: &Request<'_>) -> &NetRequest {
        let n = req.keys.len();
        match req.kind {
            OpKind::Get => {
                let NetRequest::Get(g) = &mut self.get else {
                    unreachable!()
                };
                g.keys.resize(n, Value::Text(String::new()));
                for (slot, &k) in g.keys.iter_mut().zip(req.keys) {
                    self.key.clear();
                    format_key(k, &mut self.key);
                    set_text(slot, &self.key);
                }
                &self.get
            }
            OpKind::Set => {
                let NetRequest::Upsert(u) = &mut self.upsert else {
                    unreachable!()
                };
                u.rows.resize(n, vec![Value::Null, Value::Null]);
                for (row, &k) in u.rows.iter_mut().zip(req.keys) {
                    self.key.clear();
                    format_key(k, &mut self.key);
                    set_text(&mut row[0], &self.key);
                    if !matches!(&row[1], Value::Text(t) if t.as_bytes() == req.value) {
                        set_text(&mut row[1], req.value);
                    }
                }
                &self.upsert
            }
        }
    }
}

/// Send one request on a blocking stream and wait for its reply.
pub fn roundtrip(stream: &mut TcpStream, id: u64, req: &NetRequest) -> io::Result<Response> {
    let mut out = Vec::new();
    encode_request(id, req, &mut out);
    stream.write_all(&out)?;
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    loop {
        if let Some((frame, _)) = split_frame(&buf, MAX_FRAME_PAYLOAD_BYTES)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?
        {
            return decode_response(&frame.header, frame.payload)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()));
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "tarnd closed the connection",
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// HELLO on a fresh blocking connection.
pub fn hello(stream: &mut TcpStream) -> io::Result<()> {
    let req = NetRequest::Hello(Hello {
        min_version: MIN_PROTOCOL_VERSION,
        max_version: PROTOCOL_VERSION,
        client_name: format!("tarn-bench/{}", env!("CARGO_PKG_VERSION")),
        auth_token: String::new(),
    });
    match roundtrip(stream, 1, &req)? {
        Response::Hello(_) => Ok(()),
        Response::Error(e) => Err(io::Error::other(format!("HELLO refused: {e}"))),
        other => Err(io::Error::other(format!(
            "unexpected HELLO reply {other:?}"
        ))),
    }
}

/// Run one SQL statement; returns the server's error text on failure.
pub fn sql(stream: &mut TcpStream, id: u64, text: &str) -> io::Result<Result<String, String>> {
    Ok(
        match roundtrip(stream, id, &NetRequest::Sql(text.to_owned()))? {
            Response::Sql(r) => Ok(r.message),
            Response::Error(e) => Err(e.to_string()),
            other => Err(format!("unexpected reply {other:?}")),
        },
    )
}

/// GET `keys` on a blocking connection; returns how many were found.
pub fn count_found(
    stream: &mut TcpStream,
    id: u64,
    table: &str,
    keys: &[u64],
) -> io::Result<usize> {
    let req = NetRequest::Get(KeysRequest {
        table: table.to_owned(),
        keys: keys
            .iter()
            .map(|&k| Value::Text(crate::workload::key_string(k)))
            .collect(),
    });
    match roundtrip(stream, id, &req)? {
        Response::Get(g) => Ok(g.rows.iter().filter(|r| r.is_some()).count()),
        Response::Error(e) => Err(io::Error::other(format!("GET failed: {e}"))),
        other => Err(io::Error::other(format!("unexpected GET reply {other:?}"))),
    }
}

impl Codec for TarnCodec {
    fn handshake(&mut self, stream: &mut TcpStream) -> io::Result<()> {
        hello(stream)
    }

    fn encode(&mut self, req: &Request<'_>, id: u64, out: &mut Vec<u8>) {
        let r = self.build(req);
        encode_request(id, r, out);
    }

    fn decode(&mut self, buf: &[u8]) -> Result<Option<(usize, Decoded)>, String> {
        let Some((frame, used)) =
            split_frame(buf, MAX_FRAME_PAYLOAD_BYTES).map_err(|e| e.to_string())?
        else {
            return Ok(None);
        };
        let resp = decode_response(&frame.header, frame.payload).map_err(|e| e.to_string())?;
        Ok(Some((
            used,
            Decoded {
                id: Some(frame.header.request_id),
                ok: !matches!(resp, Response::Error(_)),
            },
        )))
    }
}

pub struct TarnFactory {
    pub table: String,
}

impl CodecFactory for TarnFactory {
    fn name(&self) -> &str {
        "tarn"
    }
    fn make(&self) -> Box<dyn Codec> {
        Box::new(TarnCodec::new(&self.table))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tarn_net::{decode_request, encode_response, peek_header, GetReply, UpsertReply};

    fn decode_req(bytes: &[u8]) -> (u64, NetRequest) {
        let (f, used) = split_frame(bytes, MAX_FRAME_PAYLOAD_BYTES)
            .unwrap()
            .unwrap();
        assert_eq!(used, bytes.len());
        (
            f.header.request_id,
            decode_request(&f.header, f.payload).unwrap(),
        )
    }

    #[test]
    fn encodes_get_and_upsert_with_reused_templates() {
        let mut c = TarnCodec::new("kv");
        let mut out = Vec::new();
        c.encode(
            &Request {
                kind: OpKind::Get,
                keys: &[5, 6],
                value: b"",
            },
            9,
            &mut out,
        );
        let (id, r) = decode_req(&out);
        assert_eq!(id, 9);
        assert_eq!(
            r,
            NetRequest::Get(KeysRequest {
                table: "kv".into(),
                keys: vec![
                    Value::Text("key:00000005".into()),
                    Value::Text("key:00000006".into())
                ],
            })
        );
        for keys in [&[1u64, 2, 3][..], &[4]] {
            out.clear();
            c.encode(
                &Request {
                    kind: OpKind::Set,
                    keys,
                    value: b"vvv",
                },
                10,
                &mut out,
            );
            let (_, r) = decode_req(&out);
            let NetRequest::Upsert(u) = r else { panic!() };
            assert_eq!(u.mode, UpsertMode::Replace);
            assert_eq!(u.columns, vec!["k".to_string(), "v".to_string()]);
            assert_eq!(u.rows.len(), keys.len());
            assert_eq!(u.rows.last().unwrap()[1], Value::Text("vvv".into()));
        }
    }

    #[test]
    fn decodes_by_request_id_and_flags_errors() {
        let mut c = TarnCodec::new("kv");
        let mut buf = Vec::new();
        encode_response(
            77,
            &Response::Get(GetReply {
                columns: vec![],
                rows: vec![None],
            }),
            &mut buf,
        );
        let first = buf.len();
        encode_response(
            78,
            &Response::Upsert(UpsertReply { rows_applied: 1 }),
            &mut buf,
        );
        assert_eq!(c.decode(&buf[..first - 1]).unwrap(), None);
        let (n, d) = c.decode(&buf).unwrap().unwrap();
        assert_eq!(n, first);
        assert_eq!(
            d,
            Decoded {
                id: Some(77),
                ok: true
            }
        );
        assert_eq!(peek_header(&buf[n..]).unwrap().request_id, 78);
        let mut e = Vec::new();
        encode_response(
            3,
            &Response::error(tarn_net::ErrorCode::Malformed, "x"),
            &mut e,
        );
        assert!(!c.decode(&e).unwrap().unwrap().1.ok);
    }
}
