//! Log-record payloads: one record = one shard's part of one client request.
//!
//! Layout (all integers little-endian):
//! ```text
//! u8  RECORD_FORMAT_VERSION (= 3; versions 1 (no VECTOR values) and 2 (no index records)
//!     are still read)
//! u8  kind: 1 = Upsert, 2 = Delete, 3 = Prepare, 4 = Commit, 5 = Abort, 6 = Events,
//!     16 = IndexCreate, 17 = IndexStep (version 3 on; 7..=15 reserved: feature-view updates)
//! Upsert: u32 table_id, u8 mode (0 Replace, 1 Merge), u16 ncols, ncols × u16 column index,
//!         u32 nrows, nrows × { u32 key_len, key bytes, ncols × value }
//! Delete: u32 table_id, u32 nkeys, nkeys × { u32 key_len, key bytes }
//! Events: i64 append_time_us (stamped by the owner's log, see [`EVENTS_STAMP_OFFSET`]),
//!         u8 duplicate (set by the owner when it appends a producer-tagged part it already
//!         has: such a part is logged but never applied), u32 stream_id,
//!         u64 routing_version (the catalog version the coordinator split the batch with), u8 has_producer, [u64 producer_id, u64 producer_seq],
//!         u8 ntargets (1..=64), ntargets × u32 target (0 = the home copy, else a view id),
//!         u32 nrows, nrows × { u64 target mask, u16 nvalues, nvalues × value }
//!         (full rows in stream order; bit i of a row's mask = the row goes to target i)
//! Prepare: u32 coordinator, u16 nparts, nparts × { u32 shard, u64 seq },
//!          then the inner mutation from its kind byte on (kind 1, 2 or 6 and its body)
//! Commit: u32 coordinator, u64 seq (the TxnId on the receiving shard), i64 append_time_us
//! Abort:  u32 coordinator, u64 seq
//! IndexCreate: u32 index_id          (see [`IndexOp`])
//! IndexStep:   u32 index_id, u32 rows (1..=[`MAX_INDEX_STEP_ROWS`])
//! value:  u8 tag (0 = NULL, else the ColumnType tag) then
//!         BOOLEAN u8 (0/1) | BIGINT i64 | DOUBLE f64 bits | TEXT u32 len + UTF-8 |
//!         BYTES u32 len + bytes | TIMESTAMP i64 |
//!         VECTOR (tag 7, version 2 only) u32 count (1..=MAX_VECTOR_DIMENSIONS) + count × f32
//! ```
//! The payload must be consumed exactly: trailing bytes are corruption. Storage adds framing and
//! the CRC; this layer still never panics and never over-allocates on hostile bytes.

use tarn_types::{ColumnType, Value, MAX_VECTOR_DIMENSIONS, VECTOR_TAG};

use crate::batch::UpsertMode;
use crate::CoreError;

/// First byte of every record payload. Bumped on any incompatible layout change; older versions
/// stay decodable for as long as logs written by them may exist. Version 2 added VECTOR values
/// (tag 7); version 1 is the same layout without them.
///
/// Version 3 added the index records (kinds 16 and 17); the other kinds are laid out as in
/// version 2.
pub const RECORD_FORMAT_VERSION: u8 = 3;

/// Oldest record format this build reads (see [`RECORD_FORMAT_VERSION`]).
pub const MIN_RECORD_FORMAT_VERSION: u8 = 1;

/// Record kind byte for [`Mutation::Upsert`].
pub const KIND_UPSERT: u8 = 1;
/// Record kind byte for [`Mutation::Delete`].
pub const KIND_DELETE: u8 = 2;

/// Record kind byte for [`Mutation::Events`].
pub const KIND_EVENTS: u8 = 6;

/// Offset, in the body of an Events mutation (just after its kind byte), of its 8-byte
/// append timestamp. The coordinator encodes 0 there; the owner's log overwrites it at the
/// moment the record gets its LSN, so timestamps never decrease along a shard's log.
pub const EVENTS_STAMP_OFFSET: usize = 0;

/// Record kind byte for [`Record::Prepare`].
pub const KIND_PREPARE: u8 = 3;
/// Record kind byte for [`Record::Commit`].
pub const KIND_COMMIT: u8 = 4;
/// Record kind byte for [`Record::Abort`].
pub const KIND_ABORT: u8 = 5;
/// Record kind byte for [`IndexOp::Create`] (format version 3 on).
pub const KIND_INDEX_CREATE: u8 = 16;
/// Record kind byte for [`IndexOp::Step`] (format version 3 on).
pub const KIND_INDEX_STEP: u8 = 17;

/// Most rows one [`IndexOp::Step`] may ask for. Why: a step runs inside the apply loop, where
/// nothing else runs until it ends; the server asks for `INDEX_BUILD_STEP_ROWS` (64, about a
/// millisecond), and a record asking for more than this is treated as corrupt rather than
/// allowed to hold a shard for seconds at recovery. What it costs: nothing at run time.
pub const MAX_INDEX_STEP_ROWS: u32 = 4096;

/// One log record, as logged and replayed: a plain mutation (a batch whose rows all live on
/// this shard), or one of the three records of a batch that spans several shards (see
/// [`crate::txn`] for the protocol and why it makes such a batch all-or-nothing).
#[derive(Clone, Debug, PartialEq)]
pub enum Record {
    /// Apply now (kinds 1 and 2).
    Apply(Mutation),
    /// This shard's part of a multi-shard batch: kept aside until its [`Record::Commit`].
    Prepare {
        /// The batch's coordinator and every participant's link sequence number.
        txn: TxnPart,
        /// This shard's part.
        mutation: Mutation,
    },
    /// Apply the prepared part `TxnId` here, in log order. The `i64` is the Commit's own append
    /// time (µs, stamped by the owner's log like an Events record, see [`stamp_offset`]): the
    /// committed events take it as their append time, so append times follow apply order.
    Commit(TxnId, i64),
    /// Forget the prepared part `TxnId` (written only by recovery).
    Abort(TxnId),
    /// A change to one of this shard's vector indexes that is not a row write (kinds 16, 17).
    Index(IndexOp),
}

/// Why index work is logged: a graph depends on the order in which rows enter it, so every
/// event that puts rows into a graph — a write, the creation of the index over existing rows,
/// each bounded build or rebuild step — is a record, and replaying the log rebuilds the same
/// graph (see `tarn_core::state` on indexes and recovery).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IndexOp {
    /// The shard's part of catalog index `index_id` comes into being here, over the table's
    /// rows as they are at this point of the log (row ids in key-byte order). Ignored if the
    /// index exists already or the catalog no longer has it.
    Create {
        /// Catalog id of the index.
        index_id: u32,
    },
    /// One bounded maintenance step of `index_id`: insert up to `rows` unbuilt rows, or else
    /// advance a tombstone rebuild by as many. Ignored for an index the shard does not have.
    Step {
        /// Catalog id of the index.
        index_id: u32,
        /// Rows to insert or copy, `1..=MAX_INDEX_STEP_ROWS`.
        rows: u32,
    },
}

/// Names one shard's prepared part of a multi-shard batch: the coordinator shard and the
/// sequence number the coordinator gave this part on its link to this shard. Unique per
/// receiving shard.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TxnId {
    /// The shard that received the client's batch and coordinates it.
    pub coordinator: u32,
    /// Sequence number on the link coordinator → this shard (1, 2, 3, … with no gaps).
    pub seq: u64,
}

/// What every participant logs about a multi-shard batch: who coordinates it and, for every
/// participant shard, the link sequence number of its part.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxnPart {
    /// The coordinating shard.
    pub coordinator: u32,
    /// `(participant shard, link seq)` for every part, ascending by shard.
    pub parts: Vec<(u32, u64)>,
}

impl TxnPart {
    /// The id of the part that shard `shard` holds, if it is a participant.
    pub fn id_on(&self, shard: u32) -> Option<TxnId> {
        self.parts
            .iter()
            .find(|(s, _)| *s == shard)
            .map(|&(_, seq)| TxnId {
                coordinator: self.coordinator,
                seq,
            })
    }

    /// Encoded size of the Prepare header (version, kind, coordinator, parts).
    pub fn header_len(nparts: usize) -> usize {
        2 + 4 + 2 + nparts * 12
    }
}

/// One shard's part of one client request, as logged and replayed.
#[derive(Clone, Debug, PartialEq)]
pub enum Mutation {
    /// Upsert rows: `rows[r] = (canonical key, values for column_idx)`.
    Upsert {
        /// Target table id.
        table_id: u32,
        /// Replace or merge.
        mode: UpsertMode,
        /// Table column index of each value position.
        column_idx: Vec<u16>,
        /// `(key bytes, values)` in batch order.
        rows: Vec<(Vec<u8>, Vec<Value>)>,
    },
    /// Delete rows by canonical key.
    Delete {
        /// Target table id.
        table_id: u32,
        /// Canonical key bytes.
        keys: Vec<Vec<u8>>,
    },
    /// Events appended to a stream on their home shard.
    Events(Events),
}

/// A batch part of stream events, as logged on the shard that owns them.
#[derive(Clone, Debug, PartialEq)]
pub struct Events {
    /// The stream.
    pub stream_id: u32,
    /// When the owner's log appended the record (µs since the epoch; 0 until stamped).
    pub append_time_us: i64,
    /// `(producer id, seq)` of the client batch, if tagged: applied at most once.
    pub producer: Option<(u64, u64)>,
    /// Decided by the owner when it appended the part (see [`crate::producer`]): the producer's
    /// seq was already taken, so the part is a retry and is not applied.
    pub duplicate: bool,
    /// The catalog version the batch was split with: a view created later did not get these
    /// events and back-fills them from the home copies.
    pub routing_version: u64,
    /// What this shard does with the rows: [`HOME_TARGET`] = keep the stream's copy (the
    /// shard is the events' home), otherwise the id of a feature view whose key this shard
    /// owns. At most [`MAX_EVENT_TARGETS`].
    pub targets: Vec<u32>,
    /// `(mask, row)`: bit `i` of `mask` set = the row goes to `targets[i]`; full rows in
    /// stream column order.
    pub rows: Vec<(u64, Vec<Value>)>,
}

/// [`Events::targets`] entry for the stream's own (home) copy. Catalog ids start at 1.
pub const HOME_TARGET: u32 = 0;

/// Most targets one Events part can name (its rows carry a 64-bit target mask): the home copy
/// plus 63 feature views on one stream.
pub const MAX_EVENT_TARGETS: usize = 64;

impl Mutation {
    /// The table or stream the mutation targets.
    pub fn table_id(&self) -> u32 {
        match self {
            Mutation::Upsert { table_id, .. } | Mutation::Delete { table_id, .. } => *table_id,
            Mutation::Events(e) => e.stream_id,
        }
    }

    /// Number of rows (upsert), keys (delete) or events.
    pub fn len(&self) -> usize {
        match self {
            Mutation::Upsert { rows, .. } => rows.len(),
            Mutation::Delete { keys, .. } => keys.len(),
            Mutation::Events(e) => e.rows.len(),
        }
    }

    /// True when every key (or event partition value) belongs to shard `shard` of `count`.
    /// Events of a stream the catalog no longer has count as owned (they are skipped anyway).
    pub fn owned_by(&self, catalog: &crate::catalog::Catalog, shard: u32, count: u32) -> bool {
        use tarn_types::shard_for;
        match self {
            Mutation::Upsert { rows, .. } => rows.iter().all(|(k, _)| shard_for(k, count) == shard),
            Mutation::Delete { keys, .. } => keys.iter().all(|k| shard_for(k, count) == shard),
            Mutation::Events(e) => {
                let Some(def) = catalog.stream_by_id(e.stream_id) else {
                    return true;
                };
                // Each target's routing column: the partition for the home copy, the view's
                // key for a view (a view the catalog no longer has is skipped anyway).
                let cols: Vec<Option<usize>> = e
                    .targets
                    .iter()
                    .map(|&t| {
                        if t == HOME_TARGET {
                            Some(def.partition)
                        } else {
                            catalog.view_key_column(t)
                        }
                    })
                    .collect();
                let mut key = Vec::new();
                e.rows.iter().all(|(mask, r)| {
                    cols.iter().enumerate().all(|(i, col)| {
                        let Some(col) = col else { return true };
                        if mask & (1u64 << i) == 0 {
                            return true;
                        }
                        key.clear();
                        r.get(*col)
                            .is_some_and(|v| tarn_types::encode_key(v, &mut key).is_ok())
                            && shard_for(&key, count) == shard
                    })
                })
            }
        }
    }

    /// True when the mutation carries no rows/keys.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn put_len(out: &mut Vec<u8>, n: usize) {
    // Lengths are bounded by MAX_VALUE_BYTES / batch limits far below u32::MAX.
    let n = u32::try_from(n).expect("record length fits in u32");
    out.extend_from_slice(&n.to_le_bytes());
}

fn put_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Null => out.push(0),
        Value::Bool(b) => {
            out.push(ColumnType::Boolean.tag());
            out.push(u8::from(*b));
        }
        Value::Int(i) => {
            out.push(ColumnType::BigInt.tag());
            out.extend_from_slice(&i.to_le_bytes());
        }
        Value::Double(d) => {
            out.push(ColumnType::Double.tag());
            out.extend_from_slice(&d.to_bits().to_le_bytes());
        }
        Value::Text(s) => {
            out.push(ColumnType::Text.tag());
            put_len(out, s.len());
            out.extend_from_slice(s.as_bytes());
        }
        Value::Bytes(b) => {
            out.push(ColumnType::Bytes.tag());
            put_len(out, b.len());
            out.extend_from_slice(b);
        }
        Value::Timestamp(t) => {
            out.push(ColumnType::Timestamp.tag());
            out.extend_from_slice(&t.to_le_bytes());
        }
        Value::Vector(v) => {
            out.push(VECTOR_TAG);
            put_len(out, v.len());
            for x in v.iter() {
                out.extend_from_slice(&x.to_le_bytes());
            }
        }
    }
}

/// Appends the payload of `m` to `out` (does not clear it).
pub fn encode(m: &Mutation, out: &mut Vec<u8>) {
    let start = out.len();
    out.push(RECORD_FORMAT_VERSION);
    match m {
        Mutation::Upsert {
            table_id,
            mode,
            column_idx,
            rows,
        } => {
            out.push(KIND_UPSERT);
            out.extend_from_slice(&table_id.to_le_bytes());
            out.push(*mode as u8);
            let ncols = u16::try_from(column_idx.len()).expect("column count fits in u16");
            out.extend_from_slice(&ncols.to_le_bytes());
            for c in column_idx {
                out.extend_from_slice(&c.to_le_bytes());
            }
            put_len(out, rows.len());
            for (key, values) in rows {
                debug_assert_eq!(values.len(), column_idx.len());
                put_len(out, key.len());
                out.extend_from_slice(key);
                for v in values {
                    put_value(out, v);
                }
            }
        }
        Mutation::Delete { table_id, keys } => {
            out.push(KIND_DELETE);
            out.extend_from_slice(&table_id.to_le_bytes());
            put_len(out, keys.len());
            for key in keys {
                put_len(out, key.len());
                out.extend_from_slice(key);
            }
        }
        Mutation::Events(e) => {
            out.push(KIND_EVENTS);
            debug_assert_eq!(out.len() - start, 2 + EVENTS_STAMP_OFFSET);
            out.extend_from_slice(&e.append_time_us.to_le_bytes());
            out.push(u8::from(e.duplicate));
            out.extend_from_slice(&e.stream_id.to_le_bytes());
            out.extend_from_slice(&e.routing_version.to_le_bytes());
            match e.producer {
                None => out.push(0),
                Some((id, seq)) => {
                    out.push(1);
                    out.extend_from_slice(&id.to_le_bytes());
                    out.extend_from_slice(&seq.to_le_bytes());
                }
            }
            assert!((1..=MAX_EVENT_TARGETS).contains(&e.targets.len()));
            out.push(e.targets.len() as u8);
            for t in &e.targets {
                out.extend_from_slice(&t.to_le_bytes());
            }
            put_len(out, e.rows.len());
            for (mask, row) in &e.rows {
                out.extend_from_slice(&mask.to_le_bytes());
                let n = u16::try_from(row.len()).expect("row width fits in u16");
                out.extend_from_slice(&n.to_le_bytes());
                for v in row {
                    put_value(out, v);
                }
            }
        }
    }
}

/// Offset, in the body of an Events mutation, of its duplicate flag (right after the stamp).
pub const EVENTS_DUPLICATE_OFFSET: usize = EVENTS_STAMP_OFFSET + 8;

/// Offset of the append time in a Commit payload.
const COMMIT_STAMP_OFFSET: usize = 2 + 4 + 8;

/// Offset of the append timestamp the owner's log fills in, in a record payload: an Events part
/// (plain, or inside a Prepare) or a Commit. `None` for other records.
pub fn stamp_offset(payload: &[u8]) -> Option<usize> {
    match *payload.get(1)? {
        KIND_EVENTS => Some(2 + EVENTS_STAMP_OFFSET),
        KIND_COMMIT => Some(COMMIT_STAMP_OFFSET),
        KIND_PREPARE => {
            let n = u16::from_le_bytes([*payload.get(6)?, *payload.get(7)?]) as usize;
            let inner = TxnPart::header_len(n);
            (payload.get(inner)? == &KIND_EVENTS).then_some(inner + 1 + EVENTS_STAMP_OFFSET)
        }
        _ => None,
    }
}

/// Convenience: the payload of `m` in a new buffer.
pub fn encode_to_vec(m: &Mutation) -> Vec<u8> {
    let mut out = Vec::new();
    encode(m, &mut out);
    out
}

/// The payload of a Prepare record: `txn`'s header followed by `mutation_record` (a payload
/// made by [`encode`]) without its version byte. Lets the coordinator check the size of the
/// mutation once and add the header after link sequence numbers are assigned.
pub fn encode_prepare(txn: &TxnPart, mutation_record: &[u8]) -> Vec<u8> {
    assert_eq!(mutation_record.first(), Some(&RECORD_FORMAT_VERSION));
    assert!(matches!(
        mutation_record.get(1),
        Some(&KIND_UPSERT | &KIND_DELETE | &KIND_EVENTS)
    ));
    let mut out = Vec::with_capacity(TxnPart::header_len(txn.parts.len()) + mutation_record.len());
    out.push(RECORD_FORMAT_VERSION);
    out.push(KIND_PREPARE);
    out.extend_from_slice(&txn.coordinator.to_le_bytes());
    let n = u16::try_from(txn.parts.len()).expect("participant count fits in u16");
    out.extend_from_slice(&n.to_le_bytes());
    for (shard, seq) in &txn.parts {
        out.extend_from_slice(&shard.to_le_bytes());
        out.extend_from_slice(&seq.to_le_bytes());
    }
    out.extend_from_slice(&mutation_record[1..]);
    debug_assert_eq!(
        out.len(),
        TxnPart::header_len(txn.parts.len()) + mutation_record.len() - 1
    );
    out
}

/// Appends the payload of any record to `out`.
pub fn encode_record(rec: &Record, out: &mut Vec<u8>) {
    match rec {
        Record::Apply(m) => encode(m, out),
        Record::Prepare { txn, mutation } => {
            out.extend_from_slice(&encode_prepare(txn, &encode_to_vec(mutation)));
        }
        Record::Commit(id, stamp) => {
            out.push(RECORD_FORMAT_VERSION);
            out.push(KIND_COMMIT);
            out.extend_from_slice(&id.coordinator.to_le_bytes());
            out.extend_from_slice(&id.seq.to_le_bytes());
            debug_assert_eq!(out.len(), COMMIT_STAMP_OFFSET);
            out.extend_from_slice(&stamp.to_le_bytes());
        }
        Record::Abort(id) => {
            out.push(RECORD_FORMAT_VERSION);
            out.push(KIND_ABORT);
            out.extend_from_slice(&id.coordinator.to_le_bytes());
            out.extend_from_slice(&id.seq.to_le_bytes());
        }
        Record::Index(op) => {
            out.push(RECORD_FORMAT_VERSION);
            match *op {
                IndexOp::Create { index_id } => {
                    out.push(KIND_INDEX_CREATE);
                    out.extend_from_slice(&index_id.to_le_bytes());
                }
                IndexOp::Step { index_id, rows } => {
                    assert!(
                        (1..=MAX_INDEX_STEP_ROWS).contains(&rows),
                        "step of {rows} rows"
                    );
                    out.push(KIND_INDEX_STEP);
                    out.extend_from_slice(&index_id.to_le_bytes());
                    out.extend_from_slice(&rows.to_le_bytes());
                }
            }
        }
    }
}

/// Convenience: the payload of `rec` in a new buffer.
pub fn encode_record_to_vec(rec: &Record) -> Vec<u8> {
    let mut out = Vec::new();
    encode_record(rec, &mut out);
    out
}

fn corrupt(what: impl std::fmt::Display) -> CoreError {
    CoreError::Corrupt(format!("log record: {what}"))
}

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
    /// The record's format version: VECTOR values exist from version 2 on.
    version: u8,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], CoreError> {
        if self.b.len() - self.pos < n {
            return Err(corrupt(format_args!(
                "truncated {what} at byte {} (need {n}, have {})",
                self.pos,
                self.b.len() - self.pos
            )));
        }
        let s = &self.b[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    fn arr<const N: usize>(&mut self, what: &str) -> Result<[u8; N], CoreError> {
        let s = self.take(N, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }
    fn u8(&mut self, what: &str) -> Result<u8, CoreError> {
        Ok(self.arr::<1>(what)?[0])
    }
    fn u16(&mut self, what: &str) -> Result<u16, CoreError> {
        Ok(u16::from_le_bytes(self.arr(what)?))
    }
    fn u32(&mut self, what: &str) -> Result<u32, CoreError> {
        Ok(u32::from_le_bytes(self.arr(what)?))
    }
    fn i64(&mut self, what: &str) -> Result<i64, CoreError> {
        Ok(i64::from_le_bytes(self.arr(what)?))
    }
    fn u64(&mut self, what: &str) -> Result<u64, CoreError> {
        Ok(u64::from_le_bytes(self.arr(what)?))
    }
    fn remaining(&self) -> usize {
        self.b.len() - self.pos
    }
    /// A count whose items take at least `min_item` bytes each: bounded by what is left, so a
    /// corrupt count can never trigger a huge allocation.
    fn count(&mut self, min_item: usize, what: &str) -> Result<usize, CoreError> {
        let n = self.u32(what)? as usize;
        if n.saturating_mul(min_item) > self.remaining() {
            return Err(corrupt(format_args!(
                "{what} {n} exceeds the remaining {} bytes",
                self.remaining()
            )));
        }
        Ok(n)
    }
    fn bytes(&mut self, what: &str) -> Result<&'a [u8], CoreError> {
        let n = self.u32(what)? as usize;
        self.take(n, what)
    }
    fn value(&mut self) -> Result<Value, CoreError> {
        let tag = self.u8("value tag")?;
        if tag == 0 {
            return Ok(Value::Null);
        }
        let at = self.pos - 1;
        if tag == VECTOR_TAG && self.version >= 2 {
            return self.vector(at);
        }
        let ty = ColumnType::from_tag(tag)
            .ok_or_else(|| corrupt(format_args!("unknown value tag {tag} at byte {at}")))?;
        Ok(match ty {
            ColumnType::Boolean => match self.u8("BOOLEAN")? {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                b => return Err(corrupt(format_args!("BOOLEAN byte {b} at byte {}", at + 1))),
            },
            ColumnType::BigInt => Value::Int(self.i64("BIGINT")?),
            ColumnType::Double => Value::Double(f64::from_bits(self.i64("DOUBLE")? as u64)),
            ColumnType::Timestamp => Value::Timestamp(self.i64("TIMESTAMP")?),
            ColumnType::Text => {
                let b = self.bytes("TEXT")?;
                let s = std::str::from_utf8(b)
                    .map_err(|e| corrupt(format_args!("TEXT at byte {at}: {e}")))?;
                Value::Text(s.to_owned())
            }
            ColumnType::Bytes => Value::Bytes(self.bytes("BYTES")?.to_vec()),
            ColumnType::Vector(_) => unreachable!("from_tag never returns VECTOR"),
        })
    }
    /// A VECTOR value after its tag (at byte `at`): the count is bounded by the column limit
    /// and by the bytes left before anything is allocated. Components are taken bit for bit:
    /// they were validated before they were logged.
    fn vector(&mut self, at: usize) -> Result<Value, CoreError> {
        let n = self.count(4, "VECTOR count")?;
        if n == 0 || n > MAX_VECTOR_DIMENSIONS as usize {
            return Err(corrupt(format_args!(
                "VECTOR of {n} components at byte {at}"
            )));
        }
        let b = self.take(n * 4, "VECTOR")?;
        let v: Box<[f32]> = b
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        Ok(Value::Vector(v))
    }
}

/// Decodes a plain mutation payload (kinds 1 and 2). Any other kind, and any malformed byte
/// (unknown version/kind/mode/tag, truncation, bad UTF-8, trailing bytes), is
/// [`CoreError::Corrupt`]; never panics.
pub fn decode(bytes: &[u8]) -> Result<Mutation, CoreError> {
    match decode_record(bytes)? {
        Record::Apply(m) => Ok(m),
        _ => Err(corrupt("expected an upsert or delete record")),
    }
}

/// Decodes any record payload. Malformed bytes are [`CoreError::Corrupt`]; never panics.
pub fn decode_record(bytes: &[u8]) -> Result<Record, CoreError> {
    let mut r = Reader {
        b: bytes,
        pos: 0,
        version: 0,
    };
    let version = r.u8("format version")?;
    if !(MIN_RECORD_FORMAT_VERSION..=RECORD_FORMAT_VERSION).contains(&version) {
        return Err(corrupt(format_args!(
            "unsupported format version {version} (this build reads \
             {MIN_RECORD_FORMAT_VERSION}..={RECORD_FORMAT_VERSION})"
        )));
    }
    r.version = version;
    let kind = r.u8("record kind")?;
    let rec = match kind {
        KIND_UPSERT | KIND_DELETE | KIND_EVENTS => Record::Apply(mutation_body(&mut r, kind)?),
        KIND_PREPARE => {
            let coordinator = r.u32("coordinator")?;
            let n = usize::from(r.u16("participant count")?);
            if n < 2 || n * 12 > r.remaining() {
                return Err(corrupt(format_args!("bad participant count {n}")));
            }
            let mut parts = Vec::with_capacity(n);
            for _ in 0..n {
                let shard = r.u32("participant")?;
                let seq = r.u64("link seq")?;
                if seq == 0 || parts.last().is_some_and(|&(s, _)| s >= shard) {
                    return Err(corrupt(format_args!(
                        "participants not strictly ascending or seq 0 (shard {shard}, seq {seq})"
                    )));
                }
                parts.push((shard, seq));
            }
            let inner = r.u8("inner record kind")?;
            if inner != KIND_UPSERT && inner != KIND_DELETE && inner != KIND_EVENTS {
                return Err(corrupt(format_args!("prepared record of kind {inner}")));
            }
            Record::Prepare {
                txn: TxnPart { coordinator, parts },
                mutation: mutation_body(&mut r, inner)?,
            }
        }
        KIND_COMMIT | KIND_ABORT => {
            let id = TxnId {
                coordinator: r.u32("coordinator")?,
                seq: r.u64("link seq")?,
            };
            if kind == KIND_COMMIT {
                Record::Commit(id, r.i64("commit append time")?)
            } else {
                Record::Abort(id)
            }
        }
        KIND_INDEX_CREATE | KIND_INDEX_STEP if version >= 3 => {
            Record::Index(index_op(&mut r, kind)?)
        }
        k => return Err(corrupt(format_args!("unknown record kind {k}"))),
    };
    if r.remaining() != 0 {
        return Err(corrupt(format_args!(
            "{} trailing bytes after the record",
            r.remaining()
        )));
    }
    Ok(rec)
}

/// The body of an index record after its kind byte.
fn index_op(r: &mut Reader<'_>, kind: u8) -> Result<IndexOp, CoreError> {
    let index_id = r.u32("index id")?;
    if kind == KIND_INDEX_CREATE {
        return Ok(IndexOp::Create { index_id });
    }
    let rows = r.u32("index step rows")?;
    if !(1..=MAX_INDEX_STEP_ROWS).contains(&rows) {
        return Err(corrupt(format_args!(
            "index step of {rows} rows (1..={MAX_INDEX_STEP_ROWS})"
        )));
    }
    Ok(IndexOp::Step { index_id, rows })
}

/// The body of an upsert or delete after its kind byte.
fn mutation_body(r: &mut Reader<'_>, kind: u8) -> Result<Mutation, CoreError> {
    Ok(match kind {
        KIND_UPSERT => {
            let table_id = r.u32("table id")?;
            let mode_b = r.u8("upsert mode")?;
            let mode = UpsertMode::from_u8(mode_b)
                .ok_or_else(|| corrupt(format_args!("unknown upsert mode {mode_b}")))?;
            let ncols = usize::from(r.u16("column count")?);
            let mut column_idx = Vec::with_capacity(ncols.min(r.remaining() / 2));
            for _ in 0..ncols {
                column_idx.push(r.u16("column index")?);
            }
            // Each row: 4-byte key length + one tag byte per value, at least.
            let nrows = r.count(4 + ncols, "row count")?;
            let mut rows = Vec::with_capacity(nrows);
            for _ in 0..nrows {
                let key = r.bytes("key")?.to_vec();
                let mut values = Vec::with_capacity(ncols);
                for _ in 0..ncols {
                    values.push(r.value()?);
                }
                rows.push((key, values));
            }
            Mutation::Upsert {
                table_id,
                mode,
                column_idx,
                rows,
            }
        }
        KIND_DELETE => {
            let table_id = r.u32("table id")?;
            let n = r.count(4, "key count")?;
            let mut keys = Vec::with_capacity(n);
            for _ in 0..n {
                keys.push(r.bytes("key")?.to_vec());
            }
            Mutation::Delete { table_id, keys }
        }
        KIND_EVENTS => {
            let append_time_us = r.i64("append time")?;
            let duplicate = match r.u8("duplicate flag")? {
                0 => false,
                1 => true,
                b => return Err(corrupt(format_args!("duplicate flag {b}"))),
            };
            let stream_id = r.u32("stream id")?;
            let routing_version = r.u64("routing version")?;
            let producer = match r.u8("producer flag")? {
                0 => None,
                1 => Some((r.u64("producer id")?, r.u64("producer seq")?)),
                b => return Err(corrupt(format_args!("producer flag {b}"))),
            };
            let nt = usize::from(r.u8("target count")?);
            if nt == 0 || nt > MAX_EVENT_TARGETS {
                return Err(corrupt(format_args!("target count {nt}")));
            }
            let mut targets = Vec::with_capacity(nt);
            for _ in 0..nt {
                targets.push(r.u32("target")?);
            }
            // Each row: an 8-byte mask and a 2-byte width at least.
            let n = r.count(10, "event count")?;
            let mut rows = Vec::with_capacity(n);
            for _ in 0..n {
                let mask = r.u64("target mask")?;
                if nt < 64 && mask >> nt != 0 {
                    return Err(corrupt(format_args!(
                        "target mask {mask:#x} names a target beyond {nt}"
                    )));
                }
                let w = usize::from(r.u16("row width")?);
                if w > r.remaining() {
                    return Err(corrupt(format_args!("row width {w} exceeds the record")));
                }
                let mut row = Vec::with_capacity(w);
                for _ in 0..w {
                    row.push(r.value()?);
                }
                rows.push((mask, row));
            }
            Mutation::Events(Events {
                stream_id,
                append_time_us,
                producer,
                duplicate,
                routing_version,
                targets,
                rows,
            })
        }
        k => unreachable!("mutation_body called with kind {k}"),
    })
}
