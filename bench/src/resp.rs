//! Minimal RESP2 (plus the RESP3 scalar types) encoder and incremental parser.
//!
//! The parser never allocates: it reports how many bytes one complete reply occupies and
//! what its top-level kind is, which is all a load generator needs. Incomplete input yields
//! `Ok(None)` so the caller can read more and retry.

use std::ops::Range;

/// Append a command as a RESP array of bulk strings.
pub fn encode_command(args: &[&[u8]], out: &mut Vec<u8>) {
    out.push(b'*');
    push_decimal(args.len() as u64, out);
    out.extend_from_slice(b"\r\n");
    for a in args {
        out.push(b'$');
        push_decimal(a.len() as u64, out);
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

/// Append the header of an array of `n` elements (for commands built piecewise).
pub fn encode_array_header(n: usize, out: &mut Vec<u8>) {
    out.push(b'*');
    push_decimal(n as u64, out);
    out.extend_from_slice(b"\r\n");
}

/// Append one bulk string.
pub fn encode_bulk(b: &[u8], out: &mut Vec<u8>) {
    out.push(b'$');
    push_decimal(b.len() as u64, out);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(b);
    out.extend_from_slice(b"\r\n");
}

fn push_decimal(mut n: u64, out: &mut Vec<u8>) {
    let mut d = [0u8; 20];
    let mut i = d.len();
    loop {
        i -= 1;
        d[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&d[i..]);
}

/// Top-level kind of a parsed reply. Ranges index into the buffer given to [`parse`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    /// `+OK` (also RESP3 `,double`, `#bool`, `(bignum`).
    Simple(Range<usize>),
    /// `-ERR ...` (also RESP3 `!` blob error).
    Error(Range<usize>),
    Integer(i64),
    /// `$n` payload, `None` for the null bulk `$-1` (or RESP3 `_`).
    Bulk(Option<Range<usize>>),
    /// `*n` with the element count (elements are consumed), `None` for `*-1`.
    Array(Option<usize>),
}

impl Frame {
    pub fn is_error(&self) -> bool {
        matches!(self, Frame::Error(_))
    }
}

/// Protocol violations (the connection is unusable afterwards).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RespError(pub String);

impl std::fmt::Display for RespError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RESP protocol error: {}", self.0)
    }
}

/// Find the CRLF-terminated line starting at `from`; returns the line range (without CRLF).
fn line(buf: &[u8], from: usize) -> Option<Range<usize>> {
    let rest = buf.get(from..)?;
    let pos = rest.windows(2).position(|w| w == b"\r\n")?;
    Some(from..from + pos)
}

fn parse_int(b: &[u8]) -> Result<i64, RespError> {
    let (neg, digits) = match b.first() {
        Some(b'-') => (true, &b[1..]),
        Some(b'+') => (false, &b[1..]),
        _ => (false, b),
    };
    if digits.is_empty() || digits.len() > 19 {
        return Err(RespError(format!(
            "bad integer {:?}",
            String::from_utf8_lossy(b)
        )));
    }
    let mut v: i64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return Err(RespError(format!(
                "bad integer {:?}",
                String::from_utf8_lossy(b)
            )));
        }
        v = v
            .checked_mul(10)
            .and_then(|v| v.checked_add((c - b'0') as i64))
            .ok_or_else(|| RespError("integer overflow".into()))?;
    }
    Ok(if neg { -v } else { v })
}

const MAX_DEPTH: usize = 64;

/// Parse one complete reply at the start of `buf`.
/// `Ok(Some((consumed, frame)))`, `Ok(None)` if more bytes are needed.
pub fn parse(buf: &[u8]) -> Result<Option<(usize, Frame)>, RespError> {
    parse_at(buf, 0, 0)
}

/// The top-level elements of the complete array reply that starts at `at` (as [`parse`]
/// returned it: `Frame::Array(Some(n))`), ranges indexing into `buf`. Nested arrays are
/// returned as `Frame::Array` without their elements.
pub fn array_elements(buf: &[u8], at: usize) -> Result<Vec<Frame>, RespError> {
    if !matches!(buf.get(at), Some(b'*' | b'~' | b'>' | b'%')) {
        return Err(RespError("not an array reply".into()));
    }
    let l = line(buf, at + 1).ok_or_else(|| RespError("incomplete array header".into()))?;
    let n = parse_int(&buf[l.clone()])?;
    let n = if buf[at] == b'%' { n * 2 } else { n };
    let mut pos = l.end + 2;
    let mut out = Vec::with_capacity(n.max(0) as usize);
    for _ in 0..n.max(0) {
        let (end, f) =
            parse_at(buf, pos, 1)?.ok_or_else(|| RespError("incomplete array".into()))?;
        out.push(f);
        pos = end;
    }
    Ok(out)
}

fn parse_at(buf: &[u8], at: usize, depth: usize) -> Result<Option<(usize, Frame)>, RespError> {
    if depth > MAX_DEPTH {
        return Err(RespError("nesting too deep".into()));
    }
    let Some(&t) = buf.get(at) else {
        return Ok(None);
    };
    let Some(l) = line(buf, at + 1) else {
        return Ok(None);
    };
    let after = l.end + 2;
    match t {
        b'+' | b',' | b'#' | b'(' => Ok(Some((after, Frame::Simple(l)))),
        b'-' => Ok(Some((after, Frame::Error(l)))),
        b':' => Ok(Some((after, Frame::Integer(parse_int(&buf[l])?)))),
        b'_' => Ok(Some((after, Frame::Bulk(None)))),
        b'$' | b'!' | b'=' => {
            let n = parse_int(&buf[l])?;
            if n < 0 {
                return Ok(Some((after, Frame::Bulk(None))));
            }
            let n = n as usize;
            let end = after + n;
            if buf.len() < end + 2 {
                return Ok(None);
            }
            if &buf[end..end + 2] != b"\r\n" {
                return Err(RespError("bulk string not terminated by CRLF".into()));
            }
            let r = after..end;
            let f = if t == b'!' {
                Frame::Error(r)
            } else {
                Frame::Bulk(Some(r))
            };
            Ok(Some((end + 2, f)))
        }
        b'*' | b'~' | b'>' | b'%' => {
            let n = parse_int(&buf[l])?;
            if n < 0 {
                return Ok(Some((after, Frame::Array(None))));
            }
            let elems = if t == b'%' {
                n as usize * 2
            } else {
                n as usize
            };
            let mut pos = after;
            for _ in 0..elems {
                match parse_at(buf, pos, depth + 1)? {
                    Some((end, _)) => pos = end,
                    None => return Ok(None),
                }
            }
            Ok(Some((pos, Frame::Array(Some(n as usize)))))
        }
        other => Err(RespError(format!("unexpected type byte 0x{other:02x}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn array_elements_are_the_top_level_frames() {
        let buf: &[u8] = b"xx*3\r\n$1\r\na\r\n:7\r\n*1\r\n+OK\r\n";
        let e = array_elements(buf, 2).unwrap();
        assert_eq!(e.len(), 3);
        assert!(matches!(&e[0], Frame::Bulk(Some(r)) if &buf[r.clone()] == b"a"));
        assert_eq!(e[1], Frame::Integer(7));
        assert_eq!(e[2], Frame::Array(Some(1)));
        assert!(array_elements(b":1\r\n", 0).is_err());
        assert!(array_elements(b"*2\r\n:1\r\n", 0).is_err(), "incomplete");
    }

    fn all_prefixes_incomplete(full: &[u8]) {
        for cut in 0..full.len() {
            assert_eq!(
                parse(&full[..cut]).unwrap(),
                None,
                "prefix of {} bytes of {:?} parsed as complete",
                cut,
                String::from_utf8_lossy(full)
            );
        }
    }

    #[test]
    fn encodes_commands() {
        let mut out = Vec::new();
        encode_command(&[b"SET", b"key:00000001", b"v"], &mut out);
        assert_eq!(
            out,
            b"*3\r\n$3\r\nSET\r\n$12\r\nkey:00000001\r\n$1\r\nv\r\n"
        );
        let mut out2 = Vec::new();
        encode_array_header(3, &mut out2);
        for a in [&b"SET"[..], b"key:00000001", b"v"] {
            encode_bulk(a, &mut out2);
        }
        assert_eq!(out, out2);
        let mut e = Vec::new();
        encode_bulk(b"", &mut e);
        assert_eq!(e, b"$0\r\n\r\n");
    }

    #[test]
    fn parses_scalars() {
        assert_eq!(parse(b"+OK\r\n").unwrap(), Some((5, Frame::Simple(1..3))));
        let b = b"-ERR wrong type\r\n";
        let (n, f) = parse(b).unwrap().unwrap();
        assert_eq!(n, b.len());
        assert!(f.is_error());
        assert_eq!(parse(b":-42\r\n").unwrap(), Some((6, Frame::Integer(-42))));
        assert_eq!(parse(b"$-1\r\n").unwrap(), Some((5, Frame::Bulk(None))));
        assert_eq!(parse(b"_\r\n").unwrap(), Some((3, Frame::Bulk(None))));
        assert_eq!(
            parse(b"$5\r\nhello\r\n").unwrap(),
            Some((11, Frame::Bulk(Some(4..9))))
        );
        assert_eq!(
            parse(b"$0\r\n\r\n").unwrap(),
            Some((6, Frame::Bulk(Some(4..4))))
        );
    }

    #[test]
    fn bulk_may_contain_crlf() {
        let b = b"$4\r\na\r\nb\r\n";
        assert_eq!(parse(b).unwrap(), Some((b.len(), Frame::Bulk(Some(4..8)))));
        all_prefixes_incomplete(b);
    }

    #[test]
    fn arrays_including_nested_and_null() {
        let b = b"*3\r\n$3\r\nfoo\r\n$-1\r\n*2\r\n:1\r\n+x\r\n";
        assert_eq!(parse(b).unwrap(), Some((b.len(), Frame::Array(Some(3)))));
        all_prefixes_incomplete(b);
        assert_eq!(parse(b"*-1\r\n").unwrap(), Some((5, Frame::Array(None))));
        assert_eq!(parse(b"*0\r\n").unwrap(), Some((4, Frame::Array(Some(0)))));
        let m = b"%1\r\n+k\r\n:1\r\n";
        assert_eq!(parse(m).unwrap(), Some((m.len(), Frame::Array(Some(1)))));
    }

    #[test]
    fn pipelined_replies_parse_one_at_a_time() {
        let mut buf = Vec::new();
        buf.extend_from_slice(b"+OK\r\n");
        buf.extend_from_slice(b"$3\r\nabc\r\n");
        buf.extend_from_slice(b"-ERR x\r\n");
        buf.extend_from_slice(b"$-1\r\n");
        let mut pos = 0;
        let mut kinds = Vec::new();
        while let Some((n, f)) = parse(&buf[pos..]).unwrap() {
            kinds.push(f.is_error());
            pos += n;
        }
        assert_eq!(pos, buf.len());
        assert_eq!(kinds, vec![false, false, true, false]);
    }

    #[test]
    fn every_prefix_of_every_kind_is_incomplete() {
        for b in [
            &b"+OK\r\n"[..],
            b"-ERR\r\n",
            b":12345\r\n",
            b"$10\r\n0123456789\r\n",
            b"*2\r\n$1\r\na\r\n$1\r\nb\r\n",
        ] {
            all_prefixes_incomplete(b);
            assert_eq!(parse(b).unwrap().unwrap().0, b.len());
        }
    }

    #[test]
    fn rejects_garbage() {
        assert!(parse(b"?what\r\n").is_err());
        assert!(parse(b":12a\r\n").is_err());
        assert!(parse(b"$3\r\nabcXY").is_err());
        assert!(parse(b"$x\r\n").is_err());
        // Deep nesting is refused rather than overflowing the stack.
        let deep: Vec<u8> = b"*1\r\n".repeat(200);
        assert!(parse(&deep).is_err());
    }

    #[test]
    fn round_trip_of_encoded_command_parses_as_array() {
        let mut out = Vec::new();
        encode_command(&[b"MSET", b"k1", b"v1", b"k2", b"v2"], &mut out);
        assert_eq!(
            parse(&out).unwrap(),
            Some((out.len(), Frame::Array(Some(5))))
        );
    }
}
