//! Writes: UPSERT, DELETE and INGEST split by owner, each part checked against the log record
//! size before anything is sent, then written atomically (one owner, or the multi-shard path).

use std::rc::Rc;

use crate::server::error::ServerError;
use tarn_core::record::{Mutation, TxnPart};
use tarn_net::limits::MAX_BATCH_ROWS;
use tarn_net::{ErrorCode, IngestBody, IngestReply, IngestRequest, Response};

use crate::server::shard::Shard;

/// Encodes each shard's part of a write as its log record, refuses the whole batch if any part
/// is too big for one record (before anything is sent), then sends each owner its part and
/// waits for all of them (concurrently).
pub(super) async fn run_parts(
    shard: &Rc<Shard>,
    parts: Vec<(u32, Mutation)>,
    producer: Option<(u64, u64)>,
) -> Result<u64, ServerError> {
    let max = shard.max_record_bytes();
    // A part of a multi-shard batch is logged inside a Prepare record, with a header.
    let header = if parts.len() > 1 {
        TxnPart::header_len(parts.len()) - 1
    } else {
        0
    };
    let mut encoded = Vec::with_capacity(parts.len());
    for (target, m) in parts {
        let record = tarn_core::record::encode_to_vec(&m);
        if record.len() + header > max {
            return Err(ServerError::new(
                ErrorCode::BatchTooLarge,
                format!(
                    "shard {target}'s part of this batch encodes to {} bytes, more than one log record holds ({max} bytes with this segment size); send smaller batches",
                    record.len() + header
                ),
            ));
        }
        encoded.push((target, m, record));
    }
    if encoded.len() == 1 {
        // One owner (always, with one shard): one log record, atomic by itself.
        let (target, m, record) = encoded.pop().expect("one part");
        return shard.write(target, m, record).await;
    }
    shard.write_txn_for(producer, encoded).await
}

/// Validates an INGEST completely, splits it by home shard and writes it (atomically across
/// shards). A batch whose producer tag was already applied is acknowledged as a duplicate.
pub(super) async fn ingest(shard: &Rc<Shard>, req: IngestRequest) -> Result<Response, ServerError> {
    let catalog = shard.catalog();
    let def = catalog.stream(&req.stream).ok_or_else(|| ServerError {
        code: ErrorCode::UnknownStream,
        message: format!("stream {:?} does not exist", req.stream),
        row: None,
        column: None,
    })?;
    let now_us = crate::server::now_us();
    let rows = match req.body {
        IngestBody::Rows { columns, rows } => {
            tarn_core::events::validate_event_rows(def, &columns, rows, now_us)
        }
        IngestBody::Json { layout, mut data } => {
            let layout = match layout {
                1 => tarn_core::ingest::JsonLayout::Lines,
                2 => tarn_core::ingest::JsonLayout::Array,
                _ => tarn_core::ingest::JsonLayout::Auto,
            };
            tarn_core::ingest::parse_json_events(
                &def.columns,
                &def.required(),
                &mut data,
                layout,
                MAX_BATCH_ROWS as usize,
            )
            .and_then(|rows| tarn_core::events::check_events(def, &rows, now_us).map(|()| rows))
        }
    }
    .map_err(|e| {
        let too_many = e.kind() == tarn_core::ErrorKind::LimitExceeded;
        let mut reply = ServerError::from(e);
        if too_many {
            reply.code = ErrorCode::BatchTooLarge;
        }
        reply
    })?;
    let events = rows.len() as u64;
    let producer = req.producer.map(|p| (p.id, p.seq));
    let _routing = shard.route_guard(catalog.version);
    let parts = tarn_core::events::split_events(&catalog, def, rows, producer, shard.count);
    let applied = run_parts(shard, parts, producer).await?;
    Ok(Response::Ingest(IngestReply {
        events,
        duplicate: applied == 0,
    }))
}
