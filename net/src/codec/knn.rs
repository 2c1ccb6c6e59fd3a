//! KNN request and reply payloads (`docs/PROTOCOL.md` §3, KNN). The decoder checks the layout
//! only: `k`, `ef`, the index, filter and column names are judged by the server so that its
//! errors (`INVALID_ARGUMENT`, `LIMIT_EXCEEDED`, `UNKNOWN_*`) name the offending value.

use super::{put_columns, Reader};
use crate::encode::{encode_value, put_count, put_f32, put_f32s, put_row, put_str, put_u32};
use crate::encode::{put_u64, put_u8};
use crate::error::{DecodeError, ErrorCode};
use crate::limits::{MAX_FILTER_BYTES, MAX_KNN_COLUMNS, MAX_KNN_K};
use crate::message::{KnnQuery, KnnReply, KnnRequest, KnnRow};

/// Query kind byte: the query vector follows (count + f32 × n).
const QUERY_VECTOR: u8 = 1;
/// Query kind byte: a primary-key Value follows; that row's vector is the query.
const QUERY_LIKE: u8 = 2;

/// Smallest encoding of one reply row: its distance (4) and an empty value count (4).
const MIN_ROW_BYTES: usize = 8;

pub(super) fn put_request(out: &mut Vec<u8>, k: &KnnRequest) {
    put_str(out, &k.index);
    put_u32(out, k.k);
    match k.ef {
        None => put_u8(out, 0),
        Some(ef) => {
            put_u8(out, 1);
            put_u32(out, ef);
        }
    }
    match &k.query {
        KnnQuery::Vector(v) => {
            put_u8(out, QUERY_VECTOR);
            put_f32s(out, v);
        }
        KnnQuery::Like(key) => {
            put_u8(out, QUERY_LIKE);
            encode_value(key, out);
        }
    }
    put_str(out, &k.filter);
    put_count(out, k.columns.len());
    for c in &k.columns {
        put_str(out, c);
    }
}

pub(super) fn put_reply(out: &mut Vec<u8>, r: &KnnReply) {
    put_u64(out, r.distances);
    put_columns(out, &r.columns);
    put_count(out, r.rows.len());
    for row in &r.rows {
        debug_assert_eq!(row.values.len(), r.columns.len(), "KNN row arity");
        put_f32(out, row.distance);
        put_row(out, &row.values);
    }
}

impl Reader<'_> {
    pub(super) fn knn_request(&mut self) -> Result<KnnRequest, DecodeError> {
        let index = self.string("index")?;
        let k = self.u32("k")?;
        let at = self.pos;
        let ef = match self.u8("ef flag")? {
            0 => None,
            1 => Some(self.u32("ef")?),
            b => {
                return Err(self.err(
                    ErrorCode::Malformed,
                    at,
                    format_args!("invalid ef flag {b}"),
                ))
            }
        };
        let query = self.knn_query()?;
        let filter = self.string_limited("filter", MAX_FILTER_BYTES, ErrorCode::ValueTooLong)?;
        let n = self.count("column", 4, MAX_KNN_COLUMNS, ErrorCode::Malformed)?;
        let mut columns = Vec::with_capacity(n);
        for _ in 0..n {
            columns.push(self.string("column name")?);
        }
        Ok(KnnRequest {
            index,
            query,
            k,
            ef,
            filter,
            columns,
        })
    }

    fn knn_query(&mut self) -> Result<KnnQuery, DecodeError> {
        let at = self.pos;
        match self.u8("query kind")? {
            QUERY_VECTOR => Ok(KnnQuery::Vector(self.f32s()?.into_vec())),
            QUERY_LIKE => Ok(KnnQuery::Like(self.value()?)),
            b => Err(self.err(
                ErrorCode::Malformed,
                at,
                format_args!("invalid query kind {b}"),
            )),
        }
    }

    /// A KNN reply: the row count is at most [`MAX_KNN_K`] (a server never sends more than
    /// `k` rows) and every row has exactly one value per column.
    pub(super) fn knn_reply(&mut self) -> Result<KnnReply, DecodeError> {
        let distances = self.u64("distances")?;
        let columns = self.columns()?;
        let n = self.count("KNN row", MIN_ROW_BYTES, MAX_KNN_K, ErrorCode::Malformed)?;
        let mut rows = Vec::with_capacity(n);
        for i in 0..n {
            let distance = self.f32("distance")?;
            let values = self.reply_row(i, columns.len())?;
            rows.push(KnnRow { distance, values });
        }
        Ok(KnnReply {
            columns,
            rows,
            distances,
        })
    }
}
