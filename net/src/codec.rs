//! Encoding and decoding of frame payloads. Encoding is infallible; decoding checks every
//! length against the remaining payload and the limits before allocating, rejects trailing
//! bytes and never panics.

use tarn_types::{ColumnType, Value, VECTOR_TAG};

use crate::error::{DecodeError, ErrorCode};
use crate::frame::{FrameHeader, Opcode, FLAG_RESPONSE, HEADER_LEN, KNOWN_FLAGS};
use crate::limits::{
    MAX_BATCH_ROWS, MAX_COLUMNS, MAX_FRAME_PAYLOAD_BYTES, MAX_PING_BYTES, MAX_SQL_BYTES,
    MAX_VECTOR_COMPONENTS,
};
use crate::message::*;

mod context;
mod knn;
mod recent;

pub use crate::encode::{encode_column_type, encode_value, VALUE_TAG_NULL};
use crate::encode::{
    len32, put_bytes, put_count, put_i32, put_i64, put_row, put_str, put_u16, put_u32, put_u64,
    put_u8,
};

/// Wire value of `ErrorReply::row == None`.
pub const NO_ROW: u32 = u32::MAX;

// ---------------------------------------------------------------------------------------------
// Encoding

fn put_get_reply<'a>(
    out: &mut Vec<u8>,
    columns: &[Column],
    rows: impl ExactSizeIterator<Item = Option<&'a [Value]>>,
) {
    put_columns(out, columns);
    put_count(out, rows.len());
    for r in rows {
        match r {
            None => put_u8(out, 0),
            Some(r) => {
                put_u8(out, 1);
                put_row(out, r);
            }
        }
    }
}

fn put_columns(out: &mut Vec<u8>, cols: &[Column]) {
    put_count(out, cols.len());
    for c in cols {
        put_str(out, &c.name);
        encode_column_type(c.ty, out);
    }
}

/// Appends the payload (no header) of `req`.
pub fn encode_request_payload(req: &Request, out: &mut Vec<u8>) {
    match req {
        Request::Hello(h) => {
            put_u16(out, h.min_version);
            put_u16(out, h.max_version);
            put_str(out, &h.client_name);
            put_str(out, &h.auth_token);
        }
        Request::Ping(b) => put_bytes(out, b),
        Request::Sql(s) => put_str(out, s),
        Request::Upsert(u) => {
            put_str(out, &u.table);
            put_u8(out, u.mode as u8);
            put_count(out, u.columns.len());
            for c in &u.columns {
                put_str(out, c);
            }
            put_count(out, u.rows.len());
            for r in &u.rows {
                put_row(out, r);
            }
        }
        Request::Get(k) | Request::Delete(k) => {
            put_str(out, &k.table);
            put_count(out, k.keys.len());
            for v in &k.keys {
                encode_value(v, out);
            }
        }
        Request::Stats => {}
        Request::Features(f) => {
            put_str(out, &f.view);
            put_count(out, f.keys.len());
            for v in &f.keys {
                encode_value(v, out);
            }
            match f.as_of_us {
                None => put_u8(out, 0),
                Some(t) => {
                    put_u8(out, 1);
                    put_i64(out, t);
                }
            }
        }
        Request::History(h) => {
            put_str(out, &h.view);
            put_count(out, h.pairs.len());
            for (k, t) in &h.pairs {
                encode_value(k, out);
                put_i64(out, *t);
            }
        }
        Request::Knn(k) => knn::put_request(out, k),
        Request::Context(c) => context::put_request(out, c),
        Request::Recent(r) => recent::put_request(out, r),
        Request::Ingest(i) => {
            put_str(out, &i.stream);
            match i.producer {
                None => put_u8(out, 0),
                Some(p) => {
                    put_u8(out, 1);
                    put_u64(out, p.id);
                    put_u64(out, p.seq);
                }
            }
            match &i.body {
                IngestBody::Json { layout, data } => {
                    put_u8(out, INGEST_JSON);
                    put_u8(out, *layout);
                    put_bytes(out, data);
                }
                IngestBody::Rows { columns, rows } => {
                    put_u8(out, INGEST_ROWS);
                    put_count(out, columns.len());
                    for c in columns {
                        put_str(out, c);
                    }
                    put_count(out, rows.len());
                    for r in rows {
                        put_row(out, r);
                    }
                }
            }
        }
    }
}

/// INGEST body kind byte: JSON text.
const INGEST_JSON: u8 = 1;
/// INGEST body kind byte: typed rows.
const INGEST_ROWS: u8 = 2;

/// Appends the payload (no header) of `resp`.
pub fn encode_response_payload(resp: &Response, out: &mut Vec<u8>) {
    match resp {
        Response::Hello(h) => {
            put_u16(out, h.version);
            put_str(out, &h.server_version);
            put_u32(out, h.shard_count);
            put_u32(out, h.max_frame_payload_bytes);
            put_u32(out, h.max_batch_rows);
            put_u32(out, h.max_in_flight);
        }
        Response::Pong(b) => put_bytes(out, b),
        Response::Sql(s) => {
            put_str(out, &s.message);
            put_columns(out, &s.columns);
            put_count(out, s.rows.len());
            for r in &s.rows {
                put_row(out, r);
            }
        }
        Response::Upsert(u) => put_u64(out, u.rows_applied),
        Response::Get(g) => put_get_reply(out, &g.columns, g.rows.iter().map(|r| r.as_deref())),
        Response::Delete(d) => put_u64(out, d.rows_deleted),
        Response::Ingest(i) => {
            put_u64(out, i.events);
            put_u8(out, u8::from(i.duplicate));
        }
        Response::History(h) => {
            put_columns(out, &h.columns);
            put_feature_rows(out, &h.rows);
        }
        Response::Features(f) => {
            put_i64(out, f.as_of_us);
            put_columns(out, &f.columns);
            put_feature_rows(out, &f.rows);
        }
        Response::Knn(k) => knn::put_reply(out, k),
        Response::Context(c) => context::put_reply(out, c),
        Response::Recent(r) => recent::put_reply(out, r),
        Response::Stats(s) => {
            put_count(out, s.shards.len());
            for sh in &s.shards {
                put_u32(out, sh.shard);
                put_i32(out, sh.cpu);
                put_u64(out, sh.rows);
                put_u64(out, sh.log_bytes);
                put_u64(out, sh.durable_lsn);
                put_u32(out, sh.connections);
                put_count(out, sh.ops.len());
                for op in &sh.ops {
                    put_str(out, &op.op);
                    put_u64(out, op.count);
                    put_u64(out, op.p50_us);
                    put_u64(out, op.p99_us);
                    put_u64(out, op.p999_us);
                    put_u64(out, op.max_us);
                }
                put_count(out, sh.indexes.len());
                for ix in &sh.indexes {
                    put_str(out, &ix.index);
                    for x in [
                        ix.rows_indexed,
                        ix.rows_pending,
                        ix.tombstones,
                        ix.memory_bytes,
                    ] {
                        put_u64(out, x);
                    }
                }
            }
        }
        Response::Error(e) => {
            put_u16(out, e.code.as_u16());
            put_str(out, &e.message);
            put_u32(out, e.row.unwrap_or(NO_ROW));
            put_str(out, e.column.as_deref().unwrap_or(""));
        }
    }
}

fn put_feature_rows(out: &mut Vec<u8>, rows: &[FeatureRow]) {
    put_count(out, rows.len());
    for r in rows {
        put_i64(out, r.as_of_us);
        match r.newest_event_time_us {
            None => put_u8(out, 0),
            Some(t) => {
                put_u8(out, 1);
                put_i64(out, t);
            }
        }
        put_row(out, &r.values);
    }
}

fn encode_frame(
    request_id: u64,
    opcode: Opcode,
    flags: u16,
    out: &mut Vec<u8>,
    payload: impl FnOnce(&mut Vec<u8>),
) {
    let start = out.len();
    out.extend_from_slice(&[0u8; HEADER_LEN]);
    payload(out);
    let header = FrameHeader {
        payload_len: len32(out.len() - start - HEADER_LEN),
        opcode: opcode.as_u16(),
        flags,
        request_id,
    };
    out[start..start + HEADER_LEN].copy_from_slice(&header.encode());
}

/// Appends a whole request frame (header + payload) to `out`. Does not enforce limits: the
/// caller may check `out.len()` growth against the server's `max_frame_payload_bytes`.
///
/// Panics only if a length exceeds `u32::MAX` (impossible for frames within the limits).
pub fn encode_request(request_id: u64, req: &Request, out: &mut Vec<u8>) {
    encode_frame(request_id, req.opcode(), 0, out, |o| {
        encode_request_payload(req, o)
    });
}

/// Appends a whole response frame (RESPONSE flag set; opcode of the request, or ERROR) to
/// `out`. Does not enforce limits: a server must check the frame it produced against
/// `MAX_FRAME_PAYLOAD_BYTES` and send an error instead if it is larger.
pub fn encode_response(request_id: u64, resp: &Response, out: &mut Vec<u8>) {
    encode_frame(request_id, resp.opcode(), FLAG_RESPONSE, out, |o| {
        encode_response_payload(resp, o)
    });
}

/// Appends a whole GET response frame built from borrowed parts: byte-for-byte what
/// [`encode_response`] writes for `Response::Get(GetReply { columns, rows })`, without the
/// server having to clone stored rows and column names into an owned reply first.
pub fn encode_get_reply<'a>(
    request_id: u64,
    columns: &[Column],
    rows: impl ExactSizeIterator<Item = Option<&'a [Value]>>,
    out: &mut Vec<u8>,
) {
    encode_frame(request_id, Opcode::Get, FLAG_RESPONSE, out, |o| {
        put_get_reply(o, columns, rows)
    });
}

// ---------------------------------------------------------------------------------------------
// Decoding

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    ctx: &'static str,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8], ctx: &'static str) -> Reader<'a> {
        Reader { buf, pos: 0, ctx }
    }

    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn err(&self, code: ErrorCode, at: usize, what: std::fmt::Arguments<'_>) -> DecodeError {
        DecodeError::new(
            code,
            format!("{}: {} at payload offset {}", self.ctx, what, at),
        )
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], DecodeError> {
        if self.remaining() < n {
            return Err(DecodeError::new(
                ErrorCode::Malformed,
                format!(
                    "{}: truncated at payload offset {}: need {} bytes for {}, {} left",
                    self.ctx,
                    self.pos,
                    n,
                    what,
                    self.remaining()
                ),
            ));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], DecodeError> {
        let s = self.take(N, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    fn u8(&mut self, what: &str) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(what)?[0])
    }
    fn u16(&mut self, what: &str) -> Result<u16, DecodeError> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }
    fn u32(&mut self, what: &str) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }
    fn u64(&mut self, what: &str) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }
    fn i32(&mut self, what: &str) -> Result<i32, DecodeError> {
        Ok(i32::from_le_bytes(self.array(what)?))
    }
    fn i64(&mut self, what: &str) -> Result<i64, DecodeError> {
        Ok(i64::from_le_bytes(self.array(what)?))
    }
    fn f32(&mut self, what: &str) -> Result<f32, DecodeError> {
        Ok(f32::from_le_bytes(self.array(what)?))
    }

    /// A u32 element count, checked against `limit` (error `over`) and against the bytes left
    /// (each element takes at least `min_elem` bytes) before anything is allocated.
    fn count(
        &mut self,
        what: &str,
        min_elem: usize,
        limit: u32,
        over: ErrorCode,
    ) -> Result<usize, DecodeError> {
        let at = self.pos;
        let n = self.u32(&format!("{what} count"))?;
        if n > limit {
            return Err(self.err(
                over,
                at,
                format_args!("{what} count {n} exceeds limit {limit}"),
            ));
        }
        let need = (n as u64).saturating_mul(min_elem as u64);
        if need > self.remaining() as u64 {
            return Err(self.err(
                ErrorCode::Malformed,
                at,
                format_args!(
                    "{what} count {n} needs at least {need} bytes, {} left",
                    self.remaining()
                ),
            ));
        }
        Ok(n as usize)
    }

    /// u32 length + bytes, the length checked against `limit` (error `over`).
    fn bytes(&mut self, what: &str, limit: u32, over: ErrorCode) -> Result<&'a [u8], DecodeError> {
        let at = self.pos;
        let n = self.u32(&format!("{what} length"))?;
        if n > limit {
            return Err(self.err(
                over,
                at,
                format_args!("{what} of {n} bytes exceeds limit of {limit} bytes"),
            ));
        }
        self.take(n as usize, what)
    }

    /// A `u8` presence flag (`what`): 0 = `None`, 1 = the field `read` reads follows, any other
    /// byte `MALFORMED`.
    fn optional<T>(
        &mut self,
        what: &str,
        read: impl FnOnce(&mut Self) -> Result<T, DecodeError>,
    ) -> Result<Option<T>, DecodeError> {
        let at = self.pos;
        match self.u8(what)? {
            0 => Ok(None),
            1 => read(self).map(Some),
            b => Err(self.err(ErrorCode::Malformed, at, format_args!("invalid {what} {b}"))),
        }
    }

    fn string_limited(
        &mut self,
        what: &str,
        limit: u32,
        over: ErrorCode,
    ) -> Result<String, DecodeError> {
        let at = self.pos + 4;
        let b = self.bytes(what, limit, over)?;
        match std::str::from_utf8(b) {
            Ok(s) => Ok(s.to_owned()),
            Err(e) => Err(self.err(
                ErrorCode::InvalidUtf8,
                at + e.valid_up_to(),
                format_args!("invalid UTF-8 in {what}"),
            )),
        }
    }

    fn string(&mut self, what: &str) -> Result<String, DecodeError> {
        self.string_limited(what, u32::MAX, ErrorCode::Malformed)
    }

    fn value(&mut self) -> Result<Value, DecodeError> {
        let at = self.pos;
        let tag = self.u8("value tag")?;
        if tag == VALUE_TAG_NULL {
            return Ok(Value::Null);
        }
        if tag == VECTOR_TAG {
            return self.vector();
        }
        let Some(ty) = ColumnType::from_tag(tag) else {
            return Err(self.err(
                ErrorCode::Malformed,
                at,
                format_args!("unknown value tag {tag}"),
            ));
        };
        Ok(match ty {
            ColumnType::Boolean => {
                let at = self.pos;
                match self.u8("BOOLEAN")? {
                    0 => Value::Bool(false),
                    1 => Value::Bool(true),
                    b => {
                        return Err(self.err(
                            ErrorCode::Malformed,
                            at,
                            format_args!("invalid BOOLEAN byte {b:#04x}"),
                        ))
                    }
                }
            }
            ColumnType::BigInt => Value::Int(self.i64("BIGINT")?),
            ColumnType::Double => Value::Double(f64::from_bits(self.u64("DOUBLE")?)),
            ColumnType::Text => Value::Text(self.string("TEXT")?),
            ColumnType::Bytes => Value::Bytes(
                self.bytes("BYTES", u32::MAX, ErrorCode::Malformed)?
                    .to_vec(),
            ),
            ColumnType::Timestamp => Value::Timestamp(self.i64("TIMESTAMP")?),
            ColumnType::Vector(_) => unreachable!("VECTOR_TAG is decoded above"),
        })
    }

    /// A vector value after its tag: a u32 count, at most [`MAX_VECTOR_COMPONENTS`]
    /// (`BAD_VECTOR`, checked before allocating), then that many f32 LE, which the frame must
    /// hold (`MALFORMED`). The components are carried bit for bit: whether they are finite and
    /// how many the column wants is checked by core's row validation, which names the row and
    /// column (see docs/PROTOCOL.md).
    fn vector(&mut self) -> Result<Value, DecodeError> {
        Ok(Value::Vector(self.f32s()?))
    }

    /// A vector body (see [`Reader::vector`]): the components, bit for bit.
    fn f32s(&mut self) -> Result<Box<[f32]>, DecodeError> {
        let n = self.count(
            "vector component",
            4,
            MAX_VECTOR_COMPONENTS,
            ErrorCode::BadVector,
        )?;
        let bytes = self.take(n * 4, "vector components")?;
        let v: Box<[f32]> = bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        debug_assert_eq!(v.len(), n);
        Ok(v)
    }

    fn row(&mut self) -> Result<Vec<Value>, DecodeError> {
        let n = self.count("row value", 1, MAX_COLUMNS, ErrorCode::Malformed)?;
        let mut row = Vec::with_capacity(n);
        for _ in 0..n {
            row.push(self.value()?);
        }
        Ok(row)
    }

    /// A reply row, which must have exactly `arity` values.
    /// A column-name list then rows (UPSERT and INGEST typed rows): at most `MAX_COLUMNS`
    /// names (`MALFORMED`) and `MAX_BATCH_ROWS` rows (`BATCH_TOO_LARGE`).
    #[allow(clippy::type_complexity)]
    fn columns_and_rows(&mut self) -> Result<(Vec<String>, Vec<Vec<Value>>), DecodeError> {
        let n = self.count("column", 4, MAX_COLUMNS, ErrorCode::Malformed)?;
        let mut columns = Vec::with_capacity(n);
        for _ in 0..n {
            columns.push(self.string("column name")?);
        }
        let n = self.count("row", 4, MAX_BATCH_ROWS, ErrorCode::BatchTooLarge)?;
        let mut rows = Vec::with_capacity(n);
        for _ in 0..n {
            rows.push(self.row()?);
        }
        Ok((columns, rows))
    }

    /// FEATURES / HISTORY reply rows: a count, then per row a newest-event flag (+ i64) and
    /// a row of exactly `arity` values.
    fn feature_rows(&mut self, arity: usize) -> Result<Vec<FeatureRow>, DecodeError> {
        let r = self;
        let n = r.count("feature row", 10, MAX_BATCH_ROWS, ErrorCode::Malformed)?;
        let mut rows = Vec::with_capacity(n);
        for i in 0..n {
            let as_of_us = r.i64("row as_of")?;
            let newest_event_time_us = r.optional("newest flag", |r| r.i64("newest event time"))?;
            let values = r.reply_row(i, arity)?;
            rows.push(FeatureRow {
                as_of_us,
                newest_event_time_us,
                values,
            });
        }
        Ok(rows)
    }

    fn reply_row(&mut self, index: usize, arity: usize) -> Result<Vec<Value>, DecodeError> {
        let at = self.pos;
        let row = self.row()?;
        if row.len() != arity {
            return Err(self.err(
                ErrorCode::Malformed,
                at,
                format_args!("row {index} has {} values, expected {arity}", row.len()),
            ));
        }
        Ok(row)
    }

    fn column_type(&mut self) -> Result<ColumnType, DecodeError> {
        let at = self.pos;
        let tag = self.u8("column type")?;
        if tag == VECTOR_TAG {
            let at = self.pos;
            let dim = self.u32("vector dimension")?;
            return ColumnType::vector(dim)
                .map_err(|e| self.err(ErrorCode::BadVector, at, format_args!("{e}")));
        }
        ColumnType::from_tag(tag).ok_or_else(|| {
            self.err(
                ErrorCode::Malformed,
                at,
                format_args!("unknown column type tag {tag}"),
            )
        })
    }

    fn columns(&mut self) -> Result<Vec<Column>, DecodeError> {
        let n = self.count("column", 5, MAX_COLUMNS, ErrorCode::Malformed)?;
        let mut cols = Vec::with_capacity(n);
        for _ in 0..n {
            let name = self.string("column name")?;
            let ty = self.column_type()?;
            cols.push(Column { name, ty });
        }
        Ok(cols)
    }

    fn finish<T>(self, v: T) -> Result<T, DecodeError> {
        if self.remaining() != 0 {
            return Err(self.err(
                ErrorCode::Malformed,
                self.pos,
                format_args!("{} trailing bytes", self.remaining()),
            ));
        }
        Ok(v)
    }
}

fn check_frame(
    h: &FrameHeader,
    payload: &[u8],
    response: bool,
) -> Result<(Opcode, &'static str), DecodeError> {
    if payload.len() != h.payload_len as usize {
        return Err(DecodeError::new(
            ErrorCode::Malformed,
            format!(
                "header announces {} payload bytes but {} were given",
                h.payload_len,
                payload.len()
            ),
        ));
    }
    if h.flags & !KNOWN_FLAGS != 0 {
        return Err(DecodeError::new(
            ErrorCode::Malformed,
            format!("reserved flag bits set: flags {:#06x}", h.flags),
        ));
    }
    if h.is_response() != response {
        return Err(DecodeError::new(
            ErrorCode::Malformed,
            if response {
                "RESPONSE flag missing on a server frame".to_string()
            } else {
                "RESPONSE flag set on a client frame".to_string()
            },
        ));
    }
    let op = match h.op() {
        Some(Opcode::Error) if !response => None,
        op => op,
    };
    match op {
        Some(op) => Ok((op, op.name())),
        None => Err(DecodeError::new(
            ErrorCode::UnknownOpcode,
            format!(
                "unknown {} opcode {:#06x}",
                if response { "response" } else { "request" },
                h.opcode
            ),
        )),
    }
}

/// Decodes a request frame's payload. Errors carry the code to send back (MALFORMED,
/// UNKNOWN_OPCODE, INVALID_UTF8, BATCH_TOO_LARGE, VALUE_TOO_LONG); none of them closes the
/// connection. Call [`FrameHeader::check`] first (done by `split_frame`/`FrameBuffer`).
pub fn decode_request(h: &FrameHeader, payload: &[u8]) -> Result<Request, DecodeError> {
    let (op, ctx) = check_frame(h, payload, false)?;
    let mut r = Reader::new(payload, ctx);
    let req = match op {
        Opcode::Hello => {
            let min_version = r.u16("min_version")?;
            let max_version = r.u16("max_version")?;
            let client_name = r.string("client_name")?;
            let auth_token = r.string("auth_token")?;
            Request::Hello(Hello {
                min_version,
                max_version,
                client_name,
                auth_token,
            })
        }
        Opcode::Ping => Request::Ping(
            r.bytes("ping data", MAX_PING_BYTES, ErrorCode::ValueTooLong)?
                .to_vec(),
        ),
        Opcode::Sql => {
            Request::Sql(r.string_limited("SQL text", MAX_SQL_BYTES, ErrorCode::ValueTooLong)?)
        }
        Opcode::Upsert => {
            let table = r.string("table")?;
            let at = r.pos;
            let mode_byte = r.u8("mode")?;
            let mode = UpsertMode::from_u8(mode_byte).ok_or_else(|| {
                r.err(
                    ErrorCode::Malformed,
                    at,
                    format_args!("invalid upsert mode {mode_byte}"),
                )
            })?;
            let (columns, rows) = r.columns_and_rows()?;
            Request::Upsert(UpsertRequest {
                table,
                mode,
                columns,
                rows,
            })
        }
        Opcode::Get | Opcode::Delete => {
            let table = r.string("table")?;
            let n = r.count("key", 1, MAX_BATCH_ROWS, ErrorCode::BatchTooLarge)?;
            let mut keys = Vec::with_capacity(n);
            for _ in 0..n {
                keys.push(r.value()?);
            }
            let k = KeysRequest { table, keys };
            if op == Opcode::Get {
                Request::Get(k)
            } else {
                Request::Delete(k)
            }
        }
        Opcode::Stats => Request::Stats,
        Opcode::Features => {
            let view = r.string("view")?;
            let n = r.count("key", 1, MAX_BATCH_ROWS, ErrorCode::BatchTooLarge)?;
            let mut keys = Vec::with_capacity(n);
            for _ in 0..n {
                keys.push(r.value()?);
            }
            let as_of_us = r.optional("as_of flag", |r| r.i64("as_of"))?;
            Request::Features(FeaturesRequest {
                view,
                keys,
                as_of_us,
            })
        }
        Opcode::History => {
            let view = r.string("view")?;
            let n = r.count("pair", 9, MAX_BATCH_ROWS, ErrorCode::BatchTooLarge)?;
            let mut pairs = Vec::with_capacity(n);
            for _ in 0..n {
                let k = r.value()?;
                pairs.push((k, r.i64("as_of")?));
            }
            Request::History(HistoryRequest { view, pairs })
        }
        Opcode::Ingest => {
            let stream = r.string("stream")?;
            let producer = r.optional("producer flag", |r| {
                Ok(Producer {
                    id: r.u64("producer id")?,
                    seq: r.u64("producer seq")?,
                })
            })?;
            let at = r.pos;
            let body = match r.u8("body kind")? {
                INGEST_JSON => {
                    let at = r.pos;
                    let layout = r.u8("JSON layout")?;
                    if layout > 2 {
                        return Err(r.err(
                            ErrorCode::Malformed,
                            at,
                            format_args!("invalid JSON layout {layout}"),
                        ));
                    }
                    let data = r
                        .bytes(
                            "JSON data",
                            MAX_FRAME_PAYLOAD_BYTES,
                            ErrorCode::FrameTooLarge,
                        )?
                        .to_vec();
                    IngestBody::Json { layout, data }
                }
                INGEST_ROWS => {
                    let (columns, rows) = r.columns_and_rows()?;
                    IngestBody::Rows { columns, rows }
                }
                k => {
                    return Err(r.err(
                        ErrorCode::Malformed,
                        at,
                        format_args!("invalid INGEST body kind {k}"),
                    ))
                }
            };
            Request::Ingest(IngestRequest {
                stream,
                producer,
                body,
            })
        }
        Opcode::Knn => Request::Knn(r.knn_request()?),
        Opcode::Context => Request::Context(r.context_request()?),
        Opcode::Recent => Request::Recent(r.recent_request()?),
        Opcode::Error => unreachable!("rejected by check_frame"),
    };
    r.finish(req)
}

/// Decodes a response frame's payload (RESPONSE flag required). ERROR frames decode to
/// `Response::Error`; an unknown error code becomes `ErrorCode::Unknown` with the number
/// prepended to the message.
pub fn decode_response(h: &FrameHeader, payload: &[u8]) -> Result<Response, DecodeError> {
    let (op, ctx) = check_frame(h, payload, true)?;
    let mut r = Reader::new(payload, ctx);
    let resp = match op {
        Opcode::Hello => Response::Hello(HelloReply {
            version: r.u16("version")?,
            server_version: r.string("server_version")?,
            shard_count: r.u32("shard_count")?,
            max_frame_payload_bytes: r.u32("max_frame_payload_bytes")?,
            max_batch_rows: r.u32("max_batch_rows")?,
            max_in_flight: r.u32("max_in_flight")?,
        }),
        Opcode::Ping => Response::Pong(
            r.bytes("ping data", MAX_PING_BYTES, ErrorCode::ValueTooLong)?
                .to_vec(),
        ),
        Opcode::Sql => {
            let message = r.string("message")?;
            let columns = r.columns()?;
            let n = r.count("row", 4, u32::MAX, ErrorCode::Malformed)?;
            let mut rows = Vec::with_capacity(n);
            for i in 0..n {
                rows.push(r.reply_row(i, columns.len())?);
            }
            Response::Sql(SqlReply {
                message,
                columns,
                rows,
            })
        }
        Opcode::Upsert => Response::Upsert(UpsertReply {
            rows_applied: r.u64("rows_applied")?,
        }),
        Opcode::Get => {
            let columns = r.columns()?;
            let n = r.count("row", 1, u32::MAX, ErrorCode::Malformed)?;
            let mut rows = Vec::with_capacity(n);
            for i in 0..n {
                let at = r.pos;
                match r.u8("row presence")? {
                    0 => rows.push(None),
                    1 => rows.push(Some(r.reply_row(i, columns.len())?)),
                    b => {
                        return Err(r.err(
                            ErrorCode::Malformed,
                            at,
                            format_args!("invalid row presence byte {b:#04x}"),
                        ))
                    }
                }
            }
            Response::Get(GetReply { columns, rows })
        }
        Opcode::History => {
            let columns = r.columns()?;
            let rows = r.feature_rows(columns.len())?;
            Response::History(HistoryReply { columns, rows })
        }
        Opcode::Features => {
            let as_of_us = r.i64("as_of")?;
            let columns = r.columns()?;
            let rows = r.feature_rows(columns.len())?;
            Response::Features(FeaturesReply {
                as_of_us,
                columns,
                rows,
            })
        }
        Opcode::Ingest => {
            let events = r.u64("events")?;
            let at = r.pos;
            let duplicate = match r.u8("duplicate")? {
                0 => false,
                1 => true,
                b => {
                    return Err(r.err(
                        ErrorCode::Malformed,
                        at,
                        format_args!("invalid duplicate flag {b}"),
                    ))
                }
            };
            Response::Ingest(IngestReply { events, duplicate })
        }
        Opcode::Delete => Response::Delete(DeleteReply {
            rows_deleted: r.u64("rows_deleted")?,
        }),
        Opcode::Knn => Response::Knn(r.knn_reply()?),
        Opcode::Context => Response::Context(r.context_reply()?),
        Opcode::Recent => Response::Recent(r.recent_reply()?),
        Opcode::Stats => {
            // shard (4) + cpu (4) + 3 x u64 (24) + connections (4) + op and index counts (8)
            let n = r.count("shard", 44, u32::MAX, ErrorCode::Malformed)?;
            let mut shards = Vec::with_capacity(n);
            for _ in 0..n {
                let shard = r.u32("shard")?;
                let cpu = r.i32("cpu")?;
                let rows = r.u64("rows")?;
                let log_bytes = r.u64("log_bytes")?;
                let durable_lsn = r.u64("durable_lsn")?;
                let connections = r.u32("connections")?;
                // op (>= 4) + 5 x u64
                let m = r.count("op", 44, u32::MAX, ErrorCode::Malformed)?;
                let mut ops = Vec::with_capacity(m);
                for _ in 0..m {
                    ops.push(OpStats {
                        op: r.string("op")?,
                        count: r.u64("count")?,
                        p50_us: r.u64("p50_us")?,
                        p99_us: r.u64("p99_us")?,
                        p999_us: r.u64("p999_us")?,
                        max_us: r.u64("max_us")?,
                    });
                }
                // index (>= 4) + 4 x u64
                let j = r.count("index", 36, u32::MAX, ErrorCode::Malformed)?;
                let mut indexes = Vec::with_capacity(j);
                for _ in 0..j {
                    indexes.push(IndexStats {
                        index: r.string("index")?,
                        rows_indexed: r.u64("rows_indexed")?,
                        rows_pending: r.u64("rows_pending")?,
                        tombstones: r.u64("tombstones")?,
                        memory_bytes: r.u64("memory_bytes")?,
                    });
                }
                shards.push(ShardStats {
                    shard,
                    cpu,
                    rows,
                    log_bytes,
                    durable_lsn,
                    connections,
                    ops,
                    indexes,
                });
            }
            Response::Stats(StatsReply { shards })
        }
        Opcode::Error => {
            let raw = r.u16("error code")?;
            let mut message = r.string("message")?;
            let code = ErrorCode::from_u16(raw);
            if code == ErrorCode::Unknown {
                message = format!("(error code {raw}) {message}");
            }
            let row = r.u32("row")?;
            let column = r.string("column")?;
            Response::Error(ErrorReply {
                code,
                message,
                row: (row != NO_ROW).then_some(row),
                column: (!column.is_empty()).then_some(column),
            })
        }
    };
    r.finish(resp)
}

/// Version negotiation: the highest version in `[min_version, max_version]` that this build
/// speaks (`[MIN_PROTOCOL_VERSION, PROTOCOL_VERSION]`), or `None` (→ UNSUPPORTED_VERSION, close).
pub fn negotiate_version(min_version: u16, max_version: u16) -> Option<u16> {
    let hi = max_version.min(crate::limits::PROTOCOL_VERSION);
    let lo = min_version.max(crate::limits::MIN_PROTOCOL_VERSION);
    (lo <= hi).then_some(hi)
}
