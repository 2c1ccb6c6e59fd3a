//! Frame headers, opcodes and splitting a byte stream into frames.

use serde::{Deserialize, Serialize};

use crate::error::{DecodeError, ErrorCode};

/// Size of the frame header in bytes.
pub const HEADER_LEN: usize = 16;

/// Header flag bit 0: set on every server -> client frame, clear on every client -> server frame.
pub const FLAG_RESPONSE: u16 = 0x0001;

/// Flag bits defined by protocol version 1. Any other bit set is MALFORMED.
pub const KNOWN_FLAGS: u16 = FLAG_RESPONSE;

/// Request id reserved for connection-level errors not tied to a request (e.g.
/// TOO_MANY_CONNECTIONS, SHUTTING_DOWN). Clients start numbering requests at 1.
pub const CONNECTION_REQUEST_ID: u64 = 0;

/// Frame opcodes (u16 on the wire).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[repr(u16)]
pub enum Opcode {
    Hello = 0x01,
    Ping = 0x02,
    Sql = 0x03,
    Upsert = 0x04,
    Get = 0x05,
    Delete = 0x06,
    Stats = 0x07,
    Ingest = 0x08,
    Features = 0x09,
    History = 0x0A,
    /// Nearest neighbours of a query vector in a vector index (`KnnRequest` / `KnnReply`).
    Knn = 0x0B,
    /// The newest events of partition keys of a stream kept with `recent = N`
    /// (`RecentRequest` / `RecentReply`).
    Recent = 0x0C,
    /// A context call: named items read in one round trip (`ContextRequest` / `ContextReply`).
    Context = 0x0D,
    /// Response-only: the request failed; the payload is an [`crate::ErrorReply`].
    Error = 0xFF,
}

impl Opcode {
    pub fn from_u16(v: u16) -> Option<Opcode> {
        Some(match v {
            0x01 => Opcode::Hello,
            0x02 => Opcode::Ping,
            0x03 => Opcode::Sql,
            0x04 => Opcode::Upsert,
            0x05 => Opcode::Get,
            0x06 => Opcode::Delete,
            0x07 => Opcode::Stats,
            0x08 => Opcode::Ingest,
            0x09 => Opcode::Features,
            0x0A => Opcode::History,
            0x0B => Opcode::Knn,
            0x0D => Opcode::Context,
            0x0C => Opcode::Recent,
            0xFF => Opcode::Error,
            _ => return None,
        })
    }

    pub fn as_u16(self) -> u16 {
        self as u16
    }

    /// Upper-case name used in messages and logs, e.g. `UPSERT`.
    pub fn name(self) -> &'static str {
        match self {
            Opcode::Hello => "HELLO",
            Opcode::Ping => "PING",
            Opcode::Sql => "SQL",
            Opcode::Upsert => "UPSERT",
            Opcode::Get => "GET",
            Opcode::Delete => "DELETE",
            Opcode::Stats => "STATS",
            Opcode::Ingest => "INGEST",
            Opcode::Features => "FEATURES",
            Opcode::History => "HISTORY",
            Opcode::Knn => "KNN",
            Opcode::Context => "CONTEXT",
            Opcode::Recent => "RECENT",
            Opcode::Error => "ERROR",
        }
    }
}

impl std::fmt::Display for Opcode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The 16-byte frame header: `payload_len u32 LE | opcode u16 LE | flags u16 LE | request_id u64 LE`.
///
/// Fields are raw so that any 16 bytes decode; [`FrameHeader::check`] and the payload decoders
/// validate them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FrameHeader {
    pub payload_len: u32,
    pub opcode: u16,
    pub flags: u16,
    pub request_id: u64,
}

impl FrameHeader {
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..4].copy_from_slice(&self.payload_len.to_le_bytes());
        b[4..6].copy_from_slice(&self.opcode.to_le_bytes());
        b[6..8].copy_from_slice(&self.flags.to_le_bytes());
        b[8..16].copy_from_slice(&self.request_id.to_le_bytes());
        b
    }

    pub fn decode(b: &[u8; HEADER_LEN]) -> FrameHeader {
        FrameHeader {
            payload_len: u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            opcode: u16::from_le_bytes([b[4], b[5]]),
            flags: u16::from_le_bytes([b[6], b[7]]),
            request_id: u64::from_le_bytes([b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]]),
        }
    }

    /// Checks the announced payload length against `max_payload` *before* the payload is read.
    /// `Err` has code FRAME_TOO_LARGE: the peer must be told and the connection closed, since
    /// the stream cannot be resynchronised without reading the oversize payload.
    ///
    /// Flags and opcode are not checked here (that happens in `decode_request` /
    /// `decode_response`), because a frame with bad flags or an unknown opcode can still be
    /// skipped and answered with an error while the connection stays open.
    pub fn check(&self, max_payload: u32) -> Result<(), DecodeError> {
        if self.payload_len > max_payload {
            return Err(DecodeError::new(
                ErrorCode::FrameTooLarge,
                format!(
                    "frame payload of {} bytes exceeds limit of {} bytes",
                    self.payload_len, max_payload
                ),
            ));
        }
        Ok(())
    }

    /// The opcode, if known.
    pub fn op(&self) -> Option<Opcode> {
        Opcode::from_u16(self.opcode)
    }

    pub fn is_response(&self) -> bool {
        self.flags & FLAG_RESPONSE != 0
    }

    /// Header length plus payload length.
    pub fn frame_len(&self) -> usize {
        HEADER_LEN + self.payload_len as usize
    }
}

/// One complete frame borrowed from a read buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    pub header: FrameHeader,
    pub payload: &'a [u8],
}

/// Looks for one complete frame at the start of `buf`.
///
/// - `Ok(Some((frame, consumed)))`: a whole frame is present; drop `consumed` bytes from the
///   front of the buffer once done with `frame`.
/// - `Ok(None)`: more bytes are needed (see [`needed_bytes`] for how many at least).
/// - `Err(e)` (FRAME_TOO_LARGE): the header announces a payload over `max_payload`; send the
///   error (with `e`'s message and the header's request id, see [`peek_header`]) and close.
pub fn split_frame(
    buf: &[u8],
    max_payload: u32,
) -> Result<Option<(Frame<'_>, usize)>, DecodeError> {
    let Some(header) = peek_header(buf) else {
        return Ok(None);
    };
    header.check(max_payload)?;
    let total = header.frame_len();
    if buf.len() < total {
        return Ok(None);
    }
    Ok(Some((
        Frame {
            header,
            payload: &buf[HEADER_LEN..total],
        },
        total,
    )))
}

/// The header at the start of `buf`, if 16 bytes are present.
pub fn peek_header(buf: &[u8]) -> Option<FrameHeader> {
    let h: &[u8; HEADER_LEN] = buf.get(..HEADER_LEN)?.try_into().ok()?;
    Some(FrameHeader::decode(h))
}

/// Minimum total buffer length needed before the next [`split_frame`] can succeed (without the
/// size check: call [`split_frame`] first).
pub fn needed_bytes(buf: &[u8]) -> usize {
    match peek_header(buf) {
        None => HEADER_LEN,
        Some(h) => h.frame_len(),
    }
}

/// Iterator over the complete frames at the front of a buffer; see [`split_frames`].
#[derive(Debug)]
pub struct SplitFrames<'a> {
    buf: &'a [u8],
    consumed: usize,
    max_payload: u32,
    error: Option<DecodeError>,
}

impl<'a> SplitFrames<'a> {
    /// Bytes covered by the frames yielded so far: drain this many from the buffer.
    pub fn consumed(&self) -> usize {
        self.consumed
    }

    /// FRAME_TOO_LARGE met after the yielded frames, if any (the iterator stops there).
    pub fn error(&self) -> Option<&DecodeError> {
        self.error.as_ref()
    }

    /// The header of the frame the iteration stopped at (for the request id of an error).
    pub fn stopped_at(&self) -> Option<FrameHeader> {
        peek_header(&self.buf[self.consumed..])
    }
}

impl<'a> Iterator for SplitFrames<'a> {
    type Item = Frame<'a>;

    fn next(&mut self) -> Option<Frame<'a>> {
        if self.error.is_some() {
            return None;
        }
        let rest: &'a [u8] = &self.buf[self.consumed..];
        match split_frame(rest, self.max_payload) {
            Ok(Some((frame, n))) => {
                self.consumed += n;
                Some(frame)
            }
            Ok(None) => None,
            Err(e) => {
                self.error = Some(e);
                None
            }
        }
    }
}

/// Yields every complete frame at the front of `buf`. Afterwards, `consumed()` says how many
/// bytes to drain and `error()` whether an oversize header stopped the iteration.
///
/// ```
/// # use tarn_net::*;
/// let mut buf = Vec::new();
/// encode_request(1, &Request::Stats, &mut buf);
/// encode_request(2, &Request::Ping(vec![1]), &mut buf);
/// buf.extend_from_slice(&[0, 0]); // start of a third frame
/// let mut it = split_frames(&buf, limits::MAX_FRAME_PAYLOAD_BYTES);
/// let ids: Vec<u64> = it.by_ref().map(|f| f.header.request_id).collect();
/// assert_eq!(ids, [1, 2]);
/// let n = it.consumed();
/// assert!(it.error().is_none());
/// buf.drain(..n);
/// assert_eq!(buf.len(), 2);
/// ```
pub fn split_frames(buf: &[u8], max_payload: u32) -> SplitFrames<'_> {
    SplitFrames {
        buf,
        consumed: 0,
        max_payload,
        error: None,
    }
}

/// A growable read buffer that hands out complete frames. Usable from blocking and async code:
/// read into [`FrameBuffer::spare`], report with [`FrameBuffer::filled`], then drain with
/// [`FrameBuffer::next_frame`] until it returns `Ok(None)`.
#[derive(Debug)]
pub struct FrameBuffer {
    buf: Vec<u8>,
    start: usize,
    max_payload: u32,
    spare_len: usize,
}

impl FrameBuffer {
    pub fn new(max_payload: u32) -> FrameBuffer {
        FrameBuffer {
            buf: Vec::with_capacity(64 * 1024),
            start: 0,
            max_payload,
            spare_len: 0,
        }
    }

    pub fn set_max_payload(&mut self, max_payload: u32) {
        self.max_payload = max_payload;
    }

    /// Unconsumed bytes buffered.
    pub fn len(&self) -> usize {
        self.buf.len() - self.start - self.spare_len
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends bytes received from the peer.
    pub fn extend(&mut self, bytes: &[u8]) {
        self.filled(0);
        self.compact();
        self.buf.extend_from_slice(bytes);
    }

    /// A writable region of at least `min` bytes (bigger if the next frame is known to be
    /// bigger) to read into; follow with [`FrameBuffer::filled`].
    pub fn spare(&mut self, min: usize) -> &mut [u8] {
        self.filled(0);
        self.compact();
        let want = min.max(self.missing()).max(1);
        let len = self.buf.len();
        self.buf.resize(len + want, 0);
        self.spare_len = want;
        &mut self.buf[len..]
    }

    /// Records that `n` bytes of the last [`FrameBuffer::spare`] region were filled.
    pub fn filled(&mut self, n: usize) {
        // `spare` grew `buf` by `spare_len` zero bytes; keep only the `n` that were read.
        let n = n.min(self.spare_len);
        let spare_start = self.buf.len() - self.spare_len;
        self.buf.truncate(spare_start + n);
        self.spare_len = 0;
    }

    /// Bytes still missing for the next frame (0 if one is complete or the header announces
    /// an oversize payload; `next_frame` reports that).
    fn missing(&self) -> usize {
        let rest = &self.buf[self.start..];
        match peek_header(rest) {
            Some(h) if h.payload_len > self.max_payload => 0,
            _ => needed_bytes(rest).saturating_sub(rest.len()),
        }
    }

    fn compact(&mut self) {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
    }

    /// The next complete frame, consuming it. `Err` is FRAME_TOO_LARGE (terminal: send the
    /// error and close; [`FrameBuffer::peek_header`] gives the request id).
    pub fn next_frame(&mut self) -> Result<Option<Frame<'_>>, DecodeError> {
        self.filled(0);
        let (header, n) = match split_frame(&self.buf[self.start..], self.max_payload)? {
            None => return Ok(None),
            Some((f, n)) => (f.header, n),
        };
        let s = self.start;
        self.start += n;
        Ok(Some(Frame {
            header,
            payload: &self.buf[s + HEADER_LEN..s + n],
        }))
    }

    /// The header of the next (possibly incomplete) frame, if its 16 bytes are buffered.
    pub fn peek_header(&self) -> Option<FrameHeader> {
        peek_header(&self.buf[self.start..self.buf.len() - self.spare_len])
    }
}
