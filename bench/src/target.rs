//! Protocol adapters. Each connection gets its own [`Codec`]; the engine owns the sockets.

use std::io::{self, Read, Write};
use std::net::TcpStream;

use crate::resp;
use crate::workload::{format_key, OpKind, Request};

/// One decoded response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decoded {
    /// Request id echoed by the server; `None` means replies come back in request order.
    pub id: Option<u64>,
    /// False for an error reply (counted, still timed).
    pub ok: bool,
}

/// Wire adapter for one connection.
pub trait Codec {
    /// Blocking handshake on a fresh connection, before it is made non-blocking.
    fn handshake(&mut self, _stream: &mut TcpStream) -> io::Result<()> {
        Ok(())
    }
    /// Append the bytes of `req` (tagged `id`) to `out`.
    fn encode(&mut self, req: &Request<'_>, id: u64, out: &mut Vec<u8>);
    /// Decode one response from the front of `buf`: `Ok(Some((consumed, decoded)))`, or
    /// `Ok(None)` if incomplete.
    fn decode(&mut self, buf: &[u8]) -> Result<Option<(usize, Decoded)>, String>;
    /// A request of more than one round trip (a Redis client's dependent lookups): after
    /// `decode` has seen the replies of one hop it may have the next hop's commands ready;
    /// they are appended to `out` (the connection's send buffer) and `true` returned. The
    /// request completes only when `decode` returns it. Until then `decode` keeps its own
    /// offset into `buf`, which the engine does not consume.
    fn take_output(&mut self, _out: &mut Vec<u8>) -> bool {
        false
    }
}

/// Creates per-connection codecs.
pub trait CodecFactory {
    fn name(&self) -> &str;
    fn make(&self) -> Box<dyn Codec>;
}

/// Redis: GET/SET for single keys, MGET/MSET for batches.
pub struct RedisCodec {
    key: Vec<u8>,
}

impl RedisCodec {
    pub fn new() -> Self {
        Self {
            key: Vec::with_capacity(24),
        }
    }
}

impl Default for RedisCodec {
    fn default() -> Self {
        Self::new()
    }
}

impl Codec for RedisCodec {
    fn encode(&mut self, req: &Request<'_>, _id: u64, out: &mut Vec<u8>) {
        let batch = req.keys.len() > 1;
        match (req.kind, batch) {
            (OpKind::Get, false) => resp::encode_array_header(2, out),
            (OpKind::Set, false) => resp::encode_array_header(3, out),
            (OpKind::Get, true) => resp::encode_array_header(1 + req.keys.len(), out),
            (OpKind::Set, true) => resp::encode_array_header(1 + 2 * req.keys.len(), out),
        }
        resp::encode_bulk(
            match (req.kind, batch) {
                (OpKind::Get, false) => b"GET",
                (OpKind::Set, false) => b"SET",
                (OpKind::Get, true) => b"MGET",
                (OpKind::Set, true) => b"MSET",
            },
            out,
        );
        for &k in req.keys {
            self.key.clear();
            format_key(k, &mut self.key);
            resp::encode_bulk(&self.key, out);
            if req.kind == OpKind::Set {
                resp::encode_bulk(req.value, out);
            }
        }
    }

    fn decode(&mut self, buf: &[u8]) -> Result<Option<(usize, Decoded)>, String> {
        match resp::parse(buf) {
            Ok(Some((n, f))) => Ok(Some((
                n,
                Decoded {
                    id: None,
                    ok: !f.is_error(),
                },
            ))),
            Ok(None) => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }
}

pub struct RedisFactory;

impl CodecFactory for RedisFactory {
    fn name(&self) -> &str {
        "redis"
    }
    fn make(&self) -> Box<dyn Codec> {
        Box::new(RedisCodec::new())
    }
}

/// Send `reqs` over a blocking connection with up to `window` in flight and wait for all
/// replies. Used for preloading. Returns the number of error replies.
pub fn blocking_pipeline(
    stream: &mut TcpStream,
    codec: &mut dyn Codec,
    reqs: &mut dyn Iterator<Item = (OpKind, Vec<u64>)>,
    value: &[u8],
    window: usize,
) -> io::Result<u64> {
    let mut out = Vec::with_capacity(1 << 20);
    let mut inbuf: Vec<u8> = Vec::with_capacity(1 << 20);
    let mut start = 0usize;
    let mut id = 1u64;
    let mut errors = 0;
    let mut done = false;
    loop {
        out.clear();
        let mut sent = 0;
        while sent < window {
            let Some((kind, keys)) = reqs.next() else {
                done = true;
                break;
            };
            codec.encode(
                &Request {
                    kind,
                    keys: &keys,
                    value,
                },
                id,
                &mut out,
            );
            id += 1;
            sent += 1;
        }
        if sent == 0 {
            return Ok(errors);
        }
        stream.write_all(&out)?;
        let mut got = 0;
        while got < sent {
            loop {
                match codec.decode(&inbuf[start..]) {
                    Ok(Some((n, d))) => {
                        start += n;
                        got += 1;
                        if !d.ok {
                            errors += 1;
                        }
                        if got == sent {
                            break;
                        }
                    }
                    Ok(None) => break,
                    Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
                }
            }
            if got == sent {
                break;
            }
            inbuf.drain(..start);
            start = 0;
            let old = inbuf.len();
            inbuf.resize(old + 256 * 1024, 0);
            let n = stream.read(&mut inbuf[old..])?;
            inbuf.truncate(old + n);
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "server closed the connection",
                ));
            }
        }
        if done {
            return Ok(errors);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_encodes_get_set_mget_mset() {
        let mut c = RedisCodec::new();
        let mut out = Vec::new();
        c.encode(
            &Request {
                kind: OpKind::Get,
                keys: &[7],
                value: b"",
            },
            1,
            &mut out,
        );
        assert_eq!(out, b"*2\r\n$3\r\nGET\r\n$12\r\nkey:00000007\r\n");
        out.clear();
        c.encode(
            &Request {
                kind: OpKind::Set,
                keys: &[7],
                value: b"vv",
            },
            2,
            &mut out,
        );
        assert_eq!(
            out,
            b"*3\r\n$3\r\nSET\r\n$12\r\nkey:00000007\r\n$2\r\nvv\r\n"
        );
        out.clear();
        c.encode(
            &Request {
                kind: OpKind::Set,
                keys: &[1, 2],
                value: b"v",
            },
            3,
            &mut out,
        );
        assert_eq!(
            crate::resp::parse(&out).unwrap().unwrap().1,
            crate::resp::Frame::Array(Some(5))
        );
        out.clear();
        c.encode(
            &Request {
                kind: OpKind::Get,
                keys: &[1, 2, 3],
                value: b"v",
            },
            4,
            &mut out,
        );
        assert!(out.starts_with(b"*4\r\n$4\r\nMGET\r\n"));
    }

    #[test]
    fn redis_decodes_in_order_and_flags_errors() {
        let mut c = RedisCodec::new();
        assert_eq!(
            c.decode(b"+OK\r\n-ERR x\r\n").unwrap(),
            Some((5, Decoded { id: None, ok: true }))
        );
        assert_eq!(
            c.decode(b"-ERR x\r\n").unwrap().unwrap().1,
            Decoded {
                id: None,
                ok: false
            }
        );
        assert_eq!(c.decode(b"$3\r\nab").unwrap(), None);
    }
}
