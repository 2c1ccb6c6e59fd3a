//! CONTEXT request and reply payloads (`docs/PROTOCOL.md` §3, CONTEXT). The decoder checks the
//! layout and the counts; names, parameter types and the item text are judged by the server.

use super::{put_columns, Reader};
use crate::encode::{encode_value, put_count, put_i64, put_row, put_str, put_u32, put_u8};
use crate::error::{DecodeError, ErrorCode};
use crate::limits::{
    MAX_CONTEXT_ITEMS, MAX_CONTEXT_PARAMS, MAX_CONTEXT_ROWS, MAX_CONTEXT_SHARDS, MAX_SQL_BYTES,
};
use crate::message::{
    ContextCall, ContextGroup, ContextItemReply, ContextReply, ContextRequest, ShardAsOf,
};

/// Call kind byte: a context name follows.
const CALL_NAMED: u8 = 1;
/// Call kind byte: ad hoc item text follows.
const CALL_AD_HOC: u8 = 2;

pub(super) fn put_request(out: &mut Vec<u8>, c: &ContextRequest) {
    match &c.call {
        ContextCall::Named(name) => {
            put_u8(out, CALL_NAMED);
            put_str(out, name);
        }
        ContextCall::AdHoc(text) => {
            put_u8(out, CALL_AD_HOC);
            put_str(out, text);
        }
    }
    put_count(out, c.params.len());
    for (name, v) in &c.params {
        put_str(out, name);
        encode_value(v, out);
    }
}

pub(super) fn put_reply(out: &mut Vec<u8>, r: &ContextReply) {
    put_count(out, r.shards.len());
    for s in &r.shards {
        put_u32(out, s.shard);
        put_i64(out, s.as_of_us);
    }
    put_count(out, r.items.len());
    for item in &r.items {
        put_str(out, &item.name);
        put_columns(out, &item.columns);
        put_count(out, item.groups.len());
        for g in &item.groups {
            encode_value(&g.key, out);
            put_count(out, g.rows.len());
            for row in &g.rows {
                debug_assert_eq!(row.len(), item.columns.len(), "CONTEXT row arity");
                put_row(out, row);
            }
        }
    }
}

impl Reader<'_> {
    pub(super) fn context_request(&mut self) -> Result<ContextRequest, DecodeError> {
        let at = self.pos;
        let call = match self.u8("call kind")? {
            CALL_NAMED => ContextCall::Named(self.string("context name")?),
            CALL_AD_HOC => ContextCall::AdHoc(self.string_limited(
                "context items",
                MAX_SQL_BYTES,
                ErrorCode::ValueTooLong,
            )?),
            b => {
                return Err(self.err(
                    ErrorCode::Malformed,
                    at,
                    format_args!("invalid call kind {b}"),
                ))
            }
        };
        let n = self.count("parameter", 5, MAX_CONTEXT_PARAMS, ErrorCode::Malformed)?;
        let mut params = Vec::with_capacity(n);
        for _ in 0..n {
            let name = self.string("parameter name")?;
            params.push((name, self.value()?));
        }
        Ok(ContextRequest { call, params })
    }

    /// A CONTEXT reply: every count within the protocol's context limits, every row of
    /// exactly one value per column of its item.
    pub(super) fn context_reply(&mut self) -> Result<ContextReply, DecodeError> {
        let n = self.count("shard", 12, MAX_CONTEXT_SHARDS, ErrorCode::Malformed)?;
        let mut shards = Vec::with_capacity(n);
        for _ in 0..n {
            let shard = self.u32("shard")?;
            let as_of_us = self.i64("as_of")?;
            shards.push(ShardAsOf { shard, as_of_us });
        }
        let n = self.count("item", 12, MAX_CONTEXT_ITEMS, ErrorCode::Malformed)?;
        let mut items = Vec::with_capacity(n);
        let mut rows_left = MAX_CONTEXT_ROWS as usize;
        for _ in 0..n {
            let name = self.string("item name")?;
            let columns = self.columns()?;
            let g = self.count("group", 5, MAX_CONTEXT_ROWS, ErrorCode::Malformed)?;
            let mut groups = Vec::with_capacity(g);
            for _ in 0..g {
                let key = self.value()?;
                let at = self.pos;
                let r = self.count("row", 4, MAX_CONTEXT_ROWS, ErrorCode::Malformed)?;
                if r > rows_left {
                    return Err(self.err(
                        ErrorCode::Malformed,
                        at,
                        format_args!("more than {MAX_CONTEXT_ROWS} rows in a CONTEXT reply"),
                    ));
                }
                rows_left -= r;
                let mut rows = Vec::with_capacity(r);
                for i in 0..r {
                    rows.push(self.reply_row(i, columns.len())?);
                }
                groups.push(ContextGroup { key, rows });
            }
            items.push(ContextItemReply {
                name,
                columns,
                groups,
            });
        }
        Ok(ContextReply { shards, items })
    }
}
