//! RECENT request and reply payloads (`docs/PROTOCOL.md` §3, RECENT). The decoder checks the
//! layout only: the stream, `n` and the column names are judged by the server so that its
//! errors (`INVALID_ARGUMENT`, `UNKNOWN_*`) name the offending value.

use super::{put_columns, Reader};
use crate::encode::{encode_value, put_count, put_row, put_str, put_u32};
use crate::error::{DecodeError, ErrorCode};
use crate::limits::{MAX_RECENT_COLUMNS, MAX_RECENT_KEYS, MAX_RECENT_N};
use crate::message::{RecentReply, RecentRequest};

pub(super) fn put_request(out: &mut Vec<u8>, r: &RecentRequest) {
    put_str(out, &r.stream);
    put_count(out, r.keys.len());
    for k in &r.keys {
        encode_value(k, out);
    }
    put_u32(out, r.n);
    put_count(out, r.columns.len());
    for c in &r.columns {
        put_str(out, c);
    }
}

pub(super) fn put_reply(out: &mut Vec<u8>, r: &RecentReply) {
    put_columns(out, &r.columns);
    put_count(out, r.keys.len());
    for rows in &r.keys {
        put_count(out, rows.len());
        for row in rows {
            debug_assert_eq!(row.len(), r.columns.len(), "RECENT row arity");
            put_row(out, row);
        }
    }
}

impl Reader<'_> {
    pub(super) fn recent_request(&mut self) -> Result<RecentRequest, DecodeError> {
        let stream = self.string("stream")?;
        let n = self.count("key", 1, MAX_RECENT_KEYS, ErrorCode::BatchTooLarge)?;
        let mut keys = Vec::with_capacity(n);
        for _ in 0..n {
            keys.push(self.value()?);
        }
        let n_events = self.u32("n")?;
        let c = self.count("column", 4, MAX_RECENT_COLUMNS, ErrorCode::Malformed)?;
        let mut columns = Vec::with_capacity(c);
        for _ in 0..c {
            columns.push(self.string("column name")?);
        }
        Ok(RecentRequest {
            stream,
            keys,
            n: n_events,
            columns,
        })
    }

    pub(super) fn recent_reply(&mut self) -> Result<RecentReply, DecodeError> {
        let columns = self.columns()?;
        let n = self.count("key", 4, MAX_RECENT_KEYS, ErrorCode::Malformed)?;
        let mut keys = Vec::with_capacity(n);
        let mut index = 0;
        for _ in 0..n {
            let m = self.count("event", 4, MAX_RECENT_N, ErrorCode::Malformed)?;
            let mut rows = Vec::with_capacity(m);
            for _ in 0..m {
                rows.push(self.reply_row(index, columns.len())?);
                index += 1;
            }
            keys.push(rows);
        }
        Ok(RecentReply { columns, keys })
    }
}
