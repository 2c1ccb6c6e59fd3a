//! `tarn upsert`: JSON rows -> typed rows -> batches -> pipelined UPSERT requests.
//!
//! Semantics (documented in `tarn upsert --help`):
//! - Each input row is a JSON object; keys are column names, values are converted per the
//!   column type that `DESCRIBE <table>` reports (see `value.rs`).
//! - Replace mode: a batch lists the union of its rows' keys; a row missing a listed key gets
//!   NULL for it, which is what Replace does to unlisted columns anyway.
//! - Merge mode: a batch holds consecutive rows with the same key set, so a missing key never
//!   overwrites a stored value with NULL, and file order is preserved.
//! - A batch is at most `--batch-rows` rows and never more bytes than the server's frame limit.
//! - Up to `in_flight` batches are outstanding. A rejected batch is never partly applied. When
//!   one is rejected the loader waits for every outstanding reply, then either stops (default)
//!   or (`--keep-going`) drops the rejected row and re-sends that batch and every batch after it
//!   in file order. Re-sending an already applied batch is harmless (an upsert is idempotent),
//!   and it keeps "later lines win" true for keys that occur more than once.
//! - BUSY replies are retried with backoff; a batch the server calls too large is split.

use std::collections::VecDeque;
use std::time::Duration;

use tarn_client::{
    Client, ClientError, ErrorCode, Request, Response, ServerError, UpsertMode, UpsertRequest,
};
use tarn_types::{Value, MAX_VALUE_BYTES};

use super::schema::Schema;
use super::value::json_to_value;

/// One input row after conversion: the source line and (schema column index, value), sorted by
/// column index.
#[derive(Clone, Debug, PartialEq)]
pub struct PendingRow {
    pub line: u64,
    pub cells: Vec<(usize, Value)>,
}

/// Converts one JSON text to a row of `schema`. Errors name the offending column.
pub fn convert_row(schema: &Schema, line: u64, text: &str) -> Result<PendingRow, String> {
    let json: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        // serde's message ends in "at line 1 column N"; the line is ours to name.
        let msg = e.to_string();
        let msg = msg.split(" at line ").next().unwrap_or(&msg).to_string();
        if e.line() > 1 {
            format!(
                "invalid JSON at line {} column {}: {msg}",
                e.line(),
                e.column()
            )
        } else {
            format!("invalid JSON at column {}: {msg}", e.column())
        }
    })?;
    let serde_json::Value::Object(obj) = json else {
        return Err("expected a JSON object".into());
    };
    let mut cells = Vec::with_capacity(obj.len());
    for (k, v) in &obj {
        let idx = schema.index_of(k).ok_or_else(|| {
            format!(
                "unknown column {k:?} (table {} has columns: {})",
                schema.table,
                schema.names()
            )
        })?;
        let ty = schema.columns[idx]
            .ty
            .as_ref()
            .map_err(|t| format!("column {k:?} has type {t}, which tarn upsert cannot write"))?;
        let value = json_to_value(v, *ty).map_err(|e| format!("column {k:?}: {e}"))?;
        if let Value::Text(s) = &value {
            check_len(k, s.len())?;
        }
        if let Value::Bytes(b) = &value {
            check_len(k, b.len())?;
        }
        cells.push((idx, value));
    }
    for k in schema.key_columns() {
        let name = &schema.columns[k].name;
        match cells.iter().find(|(i, _)| *i == k) {
            None => return Err(format!("missing primary key column {name:?}")),
            Some((_, Value::Null)) => return Err(format!("primary key column {name:?} is null")),
            Some(_) => {}
        }
    }
    cells.sort_by_key(|(i, _)| *i);
    Ok(PendingRow { line, cells })
}

fn check_len(col: &str, len: usize) -> Result<(), String> {
    if len > MAX_VALUE_BYTES {
        Err(format!(
            "column {col:?}: value of {len} bytes exceeds the limit of {MAX_VALUE_BYTES} bytes"
        ))
    } else {
        Ok(())
    }
}

/// Encoded size of a value in an UPSERT payload (see `tarn_net::encode_value`).
pub fn value_wire_size(v: &Value) -> usize {
    match v {
        Value::Null => 1,
        Value::Bool(_) => 2,
        Value::Int(_) | Value::Double(_) | Value::Timestamp(_) => 9,
        Value::Text(s) => 5 + s.len(),
        Value::Bytes(b) => 5 + b.len(),
        Value::Vector(v) => 5 + 4 * v.len(),
    }
}

/// A batch ready to send: the source line of each row, the schema columns it lists, and the
/// rows (one value per listed column).
#[derive(Clone, Debug, PartialEq)]
pub struct Batch {
    pub lines: Vec<u64>,
    pub columns: Vec<usize>,
    pub rows: Vec<Vec<Value>>,
}

impl Batch {
    fn remove_row(&mut self, i: usize) -> u64 {
        self.rows.remove(i);
        self.lines.remove(i)
    }

    fn split(self) -> (Batch, Batch) {
        let mid = self.rows.len() / 2;
        let mut first = self;
        let second = Batch {
            lines: first.lines.split_off(mid),
            columns: first.columns.clone(),
            rows: first.rows.split_off(mid),
        };
        (first, second)
    }
}

/// Groups rows into batches (see the module docs).
pub struct Batcher {
    merge: bool,
    max_rows: usize,
    max_bytes: usize,
    /// Payload bytes of an empty batch: table name, mode, counts.
    base_bytes: usize,
    /// Wire bytes of each schema column's name in the column list.
    col_name_bytes: Vec<usize>,
    rows: Vec<PendingRow>,
    listed: Vec<bool>,
    listed_count: usize,
    listed_bytes: usize,
    cell_bytes: usize,
    cell_count: usize,
}

impl Batcher {
    pub fn new(schema: &Schema, mode: UpsertMode, max_rows: usize, max_bytes: usize) -> Batcher {
        Batcher {
            merge: mode == UpsertMode::Merge,
            max_rows: max_rows.max(1),
            max_bytes,
            base_bytes: 4 + schema.table.len() + 1 + 4 + 4,
            col_name_bytes: schema.columns.iter().map(|c| 4 + c.name.len()).collect(),
            rows: Vec::new(),
            listed: vec![false; schema.columns.len()],
            listed_count: 0,
            listed_bytes: 0,
            cell_bytes: 0,
            cell_count: 0,
        }
    }

    /// Payload size of the current batch with `row` added.
    fn size_with(&self, row: &PendingRow) -> usize {
        let mut listed_count = self.listed_count;
        let mut listed_bytes = self.listed_bytes;
        for (i, _) in &row.cells {
            if !self.listed[*i] {
                listed_count += 1;
                listed_bytes += self.col_name_bytes[*i];
            }
        }
        let rows = self.rows.len() + 1;
        let cell_bytes = self.cell_bytes
            + row
                .cells
                .iter()
                .map(|(_, v)| value_wire_size(v))
                .sum::<usize>();
        let cell_count = self.cell_count + row.cells.len();
        // Each row: a value count, its cells, and one NULL byte per listed column it lacks.
        self.base_bytes + listed_bytes + rows * 4 + cell_bytes + (rows * listed_count - cell_count)
    }

    fn same_keys(&self, row: &PendingRow) -> bool {
        let first = &self.rows[0].cells;
        first.len() == row.cells.len() && first.iter().zip(&row.cells).all(|(a, b)| a.0 == b.0)
    }

    /// Adds a row. Returns a finished batch when the row does not fit in the current one, or
    /// `Err` when the row alone exceeds the frame limit.
    pub fn push(&mut self, row: PendingRow) -> Result<Option<Batch>, (PendingRow, String)> {
        let mut out = None;
        if !self.rows.is_empty()
            && (self.rows.len() >= self.max_rows
                || (self.merge && !self.same_keys(&row))
                || self.size_with(&row) > self.max_bytes)
        {
            out = self.flush();
        }
        let size = self.size_with(&row);
        if size > self.max_bytes {
            let msg = format!(
                "row needs {size} bytes in a request, more than the server's limit of {} bytes",
                self.max_bytes
            );
            return Err((row, msg));
        }
        for (i, v) in &row.cells {
            if !self.listed[*i] {
                self.listed[*i] = true;
                self.listed_count += 1;
                self.listed_bytes += self.col_name_bytes[*i];
            }
            self.cell_bytes += value_wire_size(v);
        }
        self.cell_count += row.cells.len();
        self.rows.push(row);
        Ok(out)
    }

    /// The current batch, if it has rows.
    pub fn flush(&mut self) -> Option<Batch> {
        if self.rows.is_empty() {
            return None;
        }
        let columns: Vec<usize> = (0..self.listed.len()).filter(|&i| self.listed[i]).collect();
        let mut pos = vec![usize::MAX; self.listed.len()];
        for (p, &c) in columns.iter().enumerate() {
            pos[c] = p;
        }
        let mut lines = Vec::with_capacity(self.rows.len());
        let mut rows = Vec::with_capacity(self.rows.len());
        for r in self.rows.drain(..) {
            let mut vals = vec![Value::Null; columns.len()];
            for (c, v) in r.cells {
                vals[pos[c]] = v;
            }
            lines.push(r.line);
            rows.push(vals);
        }
        self.listed.iter_mut().for_each(|l| *l = false);
        self.listed_count = 0;
        self.listed_bytes = 0;
        self.cell_bytes = 0;
        self.cell_count = 0;
        Some(Batch {
            lines,
            columns,
            rows,
        })
    }
}

/// Where batches go: the server, or a fake in tests.
pub trait Sink {
    /// Sends a batch without waiting; returns its request id.
    fn send(&mut self, batch: &Batch) -> Result<u64, ClientError>;
    /// The next reply: request id and rows applied or the server's error.
    fn recv(&mut self) -> Result<(u64, Result<u64, ServerError>), ClientError>;
}

pub struct ClientSink<'a> {
    pub client: &'a mut Client,
    pub table: String,
    pub mode: UpsertMode,
    pub names: Vec<String>,
}

impl Sink for ClientSink<'_> {
    fn send(&mut self, batch: &Batch) -> Result<u64, ClientError> {
        let req = Request::Upsert(UpsertRequest {
            table: self.table.clone(),
            mode: self.mode,
            columns: batch
                .columns
                .iter()
                .map(|&c| self.names[c].clone())
                .collect(),
            rows: batch.rows.clone(),
        });
        self.client.send(&req)
    }

    fn recv(&mut self) -> Result<(u64, Result<u64, ServerError>), ClientError> {
        let (id, resp) = self.client.recv()?;
        Ok((
            id,
            match resp {
                Response::Upsert(r) => Ok(r.rows_applied),
                Response::Error(e) => Err(e.into()),
                other => {
                    return Err(ClientError::Protocol(format!(
                        "unexpected {} reply to UPSERT",
                        other.opcode().name()
                    )))
                }
            },
        ))
    }
}

/// A row the loader did not apply, and why.
#[derive(Clone, Debug, PartialEq)]
pub struct Rejected {
    pub line: u64,
    pub reason: String,
}

/// Why a load stopped early.
#[derive(Clone, Debug, PartialEq)]
pub enum Stop {
    /// A row was rejected and `--keep-going` was not given.
    Rejected(Rejected),
    /// The server refused a whole batch, or the connection failed.
    Fatal(String),
}

#[derive(Debug)]
enum State {
    Unsent,
    Pending(u64),
    Acked(u64),
    Failed(ServerError),
}

struct Slot {
    batch: Batch,
    state: State,
}

/// The pipelined sender (see the module docs).
pub struct Engine<S: Sink> {
    sink: S,
    window: VecDeque<Slot>,
    in_flight: usize,
    max_in_flight: usize,
    keep_going: bool,
    busy_retries: u32,
    /// Rows acknowledged by the server (counted once, when their batch leaves the window).
    pub upserted: u64,
    /// Rows rejected, by the client or the server.
    pub rejected: Vec<Rejected>,
    pub stop: Option<Stop>,
}

const MAX_BUSY_RETRIES: u32 = 10;

/// The server's reason without the row index (which the loader turns into a line number).
pub fn reason(e: &ServerError) -> String {
    match &e.column {
        Some(c) => format!("{}: {} (column {c:?})", e.code, e.message),
        None => format!("{}: {}", e.code, e.message),
    }
}

impl<S: Sink> Engine<S> {
    pub fn new(sink: S, max_in_flight: usize, keep_going: bool) -> Engine<S> {
        Engine {
            sink,
            window: VecDeque::new(),
            in_flight: 0,
            max_in_flight: max_in_flight.max(1),
            keep_going,
            busy_retries: 0,
            upserted: 0,
            rejected: Vec::new(),
            stop: None,
        }
    }

    /// Records a row rejected before sending. Without `--keep-going` this stops the load:
    /// nothing more is sent, but replies to batches already sent are still awaited by
    /// [`Engine::finish`] and counted.
    pub fn reject_local(&mut self, line: u64, reason: String) {
        let r = Rejected { line, reason };
        if !self.keep_going && self.stop.is_none() {
            self.stop = Some(Stop::Rejected(r.clone()));
        }
        self.rejected.push(r);
    }

    /// Queues a batch and sends what the window allows, waiting for replies while it is full.
    pub fn submit(&mut self, batch: Batch) {
        if self.stop.is_some() {
            return;
        }
        self.window.push_back(Slot {
            batch,
            state: State::Unsent,
        });
        self.pump(false);
    }

    /// Sends everything queued and waits for every reply.
    pub fn finish(&mut self) {
        self.pump(true);
    }

    fn fatal(&mut self, msg: String) {
        if !matches!(self.stop, Some(Stop::Fatal(_))) {
            self.stop = Some(Stop::Fatal(msg));
        }
        // Replies to requests still outstanding are not waited for: the connection is either
        // broken or about to be dropped.
        self.window.clear();
        self.in_flight = 0;
    }

    fn pump(&mut self, drain: bool) {
        loop {
            if self.stop.is_none() {
                // Send unsent batches in window order.
                let mut i = 0;
                while self.in_flight < self.max_in_flight && i < self.window.len() {
                    if matches!(self.window[i].state, State::Unsent) {
                        match self.sink.send(&self.window[i].batch) {
                            Ok(id) => {
                                self.window[i].state = State::Pending(id);
                                self.in_flight += 1;
                            }
                            Err(e) => return self.fatal(client_error(e)),
                        }
                    }
                    i += 1;
                }
            } else {
                // Stopped: what was not sent is not applied; what was sent is still counted.
                self.window.retain(|s| !matches!(s.state, State::Unsent));
            }
            self.retire();
            let unsent = self.window.iter().any(|s| matches!(s.state, State::Unsent));
            let wait = if drain {
                self.in_flight > 0 || unsent
            } else {
                self.stop.is_none() && self.in_flight >= self.max_in_flight
            };
            if !wait {
                return;
            }
            match self.recv_one() {
                Ok(true) => self.handle_failure(),
                Ok(false) => {}
                Err(e) => return self.fatal(e),
            }
        }
    }

    /// Receives one reply; `Ok(true)` when it is a server error.
    fn recv_one(&mut self) -> Result<bool, String> {
        let (id, res) = self.sink.recv().map_err(client_error)?;
        let slot = self
            .window
            .iter_mut()
            .find(|s| matches!(s.state, State::Pending(p) if p == id))
            .ok_or_else(|| format!("protocol error: reply to unknown request {id}"))?;
        self.in_flight -= 1;
        let failed = res.is_err();
        slot.state = match res {
            Ok(n) => State::Acked(n),
            Err(e) => State::Failed(e),
        };
        Ok(failed)
    }

    /// Counts acknowledged batches at the front of the window.
    fn retire(&mut self) {
        while let Some(Slot {
            state: State::Acked(n),
            ..
        }) = self.window.front()
        {
            self.upserted += n;
            self.window.pop_front();
        }
    }

    fn handle_failure(&mut self) {
        // Let everything outstanding settle, so the window's state is final.
        while self.in_flight > 0 {
            if let Err(e) = self.recv_one() {
                return self.fatal(e);
            }
        }
        self.retire();
        let Some(pos) = self
            .window
            .iter()
            .position(|s| matches!(s.state, State::Failed(_)))
        else {
            return;
        };
        let State::Failed(err) = std::mem::replace(&mut self.window[pos].state, State::Unsent)
        else {
            unreachable!("position found a failed slot");
        };
        let rows = self.window[pos].batch.rows.len();
        let row = err.row.map(|r| r as usize).filter(|&r| r < rows);
        let first_line = self.window[pos].batch.lines[0];

        if let Some(r) = row {
            let line = self.window[pos].batch.lines[r];
            let rej = Rejected {
                line,
                reason: reason(&err),
            };
            self.rejected.push(rej.clone());
            if !self.keep_going {
                // This line precedes any row rejected locally (those were never sent).
                self.stop = Some(Stop::Rejected(rej));
                // Batches after the failed one that the server acknowledged were applied.
                for s in self.window.iter().skip(pos + 1) {
                    if let State::Acked(n) = s.state {
                        self.upserted += n;
                    }
                }
                self.window.clear();
                return;
            }
            self.window[pos].batch.remove_row(r);
            if self.window[pos].batch.rows.is_empty() {
                self.window.remove(pos);
            }
        } else if err.code == ErrorCode::Busy && self.busy_retries < MAX_BUSY_RETRIES {
            self.busy_retries += 1;
            std::thread::sleep(Duration::from_millis(10 << self.busy_retries.min(7)));
        } else if err.code == ErrorCode::BatchTooLarge && rows > 1 {
            let slot = self.window.remove(pos).expect("pos is in the window");
            let (a, b) = slot.batch.split();
            self.window.insert(
                pos,
                Slot {
                    batch: b,
                    state: State::Unsent,
                },
            );
            self.window.insert(
                pos,
                Slot {
                    batch: a,
                    state: State::Unsent,
                },
            );
        } else {
            let what = if rows == 1 {
                format!("line {first_line}")
            } else {
                format!("batch starting at line {first_line}")
            };
            return self.fatal(format!("{what}: {err}"));
        }
        if err.code != ErrorCode::Busy {
            self.busy_retries = 0;
        }
        // Re-send the failed batch and everything after it, in order.
        for s in self.window.iter_mut().skip(pos) {
            s.state = State::Unsent;
        }
    }
}

fn client_error(e: ClientError) -> String {
    match e {
        ClientError::Server(s) => s.to_string(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::schema::SchemaColumn;
    use std::collections::HashMap;
    use tarn_types::ColumnType;

    fn schema() -> Schema {
        let col = |name: &str, ty, key| SchemaColumn {
            name: name.into(),
            ty: Ok(ty),
            key,
        };
        Schema {
            table: "t".into(),
            columns: vec![
                col("id", ColumnType::BigInt, true),
                col("name", ColumnType::Text, false),
                col("score", ColumnType::Double, false),
                col("at", ColumnType::Timestamp, false),
                SchemaColumn {
                    name: "emb".into(),
                    ty: Err("VECTOR(2)".into()),
                    key: false,
                },
            ],
        }
    }

    #[test]
    fn rows_convert_with_types_and_clear_errors() {
        let s = schema();
        let r = convert_row(
            &s,
            3,
            r#"{"score": 2, "id": 7, "at": "1970-01-01T00:00:01Z", "name": null}"#,
        )
        .unwrap();
        assert_eq!(
            r,
            PendingRow {
                line: 3,
                cells: vec![
                    (0, Value::Int(7)),
                    (1, Value::Null),
                    (2, Value::Double(2.0)),
                    (3, Value::Timestamp(1_000_000)),
                ],
            }
        );
        let err = |text| convert_row(&s, 1, text).unwrap_err();
        assert_eq!(
            err(r#"{"id": 1, "nme": "x"}"#),
            "unknown column \"nme\" (table t has columns: id, name, score, at, emb)"
        );
        assert_eq!(err(r#"{"name": "x"}"#), "missing primary key column \"id\"");
        assert_eq!(err(r#"{"id": null}"#), "primary key column \"id\" is null");
        assert_eq!(
            err(r#"{"id": "1"}"#),
            "column \"id\": expected BIGINT (an integer) but got a string"
        );
        assert!(err(r#"{"id": 1, "emb": [1, 2]}"#).contains("VECTOR(2)"));
        assert!(err(r#"[1]"#).contains("JSON object"));
        assert_eq!(
            err(r#"{"id": 1"#),
            "invalid JSON at column 8: EOF while parsing an object"
        );
        let long = format!(
            r#"{{"id": 1, "name": "{}"}}"#,
            "x".repeat(MAX_VALUE_BYTES + 1)
        );
        assert!(err(&long).contains("exceeds the limit"));
    }

    fn row(line: u64, cells: &[(usize, i64)]) -> PendingRow {
        PendingRow {
            line,
            cells: cells.iter().map(|&(c, v)| (c, Value::Int(v))).collect(),
        }
    }

    #[test]
    fn wire_sizes_match_the_codec() {
        for v in [
            Value::Null,
            Value::Bool(true),
            Value::Int(1),
            Value::Double(1.0),
            Value::Timestamp(1),
            Value::Text("héllo".into()),
            Value::Bytes(vec![1, 2, 3]),
        ] {
            let mut out = Vec::new();
            tarn_net::encode_value(&v, &mut out);
            assert_eq!(value_wire_size(&v), out.len(), "{v:?}");
        }
        // The batch size estimate is the exact payload size.
        let s = schema();
        let mut b = Batcher::new(&s, UpsertMode::Replace, 100, usize::MAX);
        b.push(row(1, &[(0, 1), (2, 5)])).unwrap();
        b.push(row(2, &[(0, 2), (1, 5)])).unwrap();
        let predicted = b.size_with(&row(3, &[(0, 3)]));
        b.push(row(3, &[(0, 3)])).unwrap();
        let batch = b.flush().unwrap();
        let req = Request::Upsert(UpsertRequest {
            table: "t".into(),
            mode: UpsertMode::Replace,
            columns: batch
                .columns
                .iter()
                .map(|&c| s.columns[c].name.clone())
                .collect(),
            rows: batch.rows,
        });
        let mut out = Vec::new();
        tarn_net::encode_request_payload(&req, &mut out);
        assert_eq!(predicted, out.len());
    }

    #[test]
    fn replace_batches_take_the_union_of_keys() {
        let s = schema();
        let mut b = Batcher::new(&s, UpsertMode::Replace, 2, usize::MAX);
        assert_eq!(b.push(row(1, &[(0, 1), (2, 5)])).unwrap(), None);
        assert_eq!(b.push(row(2, &[(0, 2), (1, 6)])).unwrap(), None);
        let full = b.push(row(4, &[(0, 3)])).unwrap().unwrap();
        assert_eq!(full.lines, vec![1, 2]);
        assert_eq!(full.columns, vec![0, 1, 2]);
        assert_eq!(
            full.rows,
            vec![
                vec![Value::Int(1), Value::Null, Value::Int(5)],
                vec![Value::Int(2), Value::Int(6), Value::Null],
            ]
        );
        let rest = b.flush().unwrap();
        assert_eq!((rest.lines, rest.columns), (vec![4], vec![0]));
        assert_eq!(b.flush(), None);
    }

    #[test]
    fn merge_batches_are_runs_of_one_key_set() {
        let s = schema();
        let mut b = Batcher::new(&s, UpsertMode::Merge, 100, usize::MAX);
        assert_eq!(b.push(row(1, &[(0, 1), (1, 5)])).unwrap(), None);
        assert_eq!(b.push(row(2, &[(0, 2), (1, 6)])).unwrap(), None);
        let first = b.push(row(3, &[(0, 1), (2, 7)])).unwrap().unwrap();
        assert_eq!((first.lines, first.columns), (vec![1, 2], vec![0, 1]));
        let second = b.push(row(4, &[(0, 1), (1, 8)])).unwrap().unwrap();
        assert_eq!((second.lines, second.columns), (vec![3], vec![0, 2]));
        assert_eq!(b.flush().unwrap().lines, vec![4]);
    }

    #[test]
    fn batches_respect_the_byte_limit() {
        let s = schema();
        // base 4+1+1+4+4 = 14; column "id" 6; each row 4 + 9 = 13.
        let mut b = Batcher::new(&s, UpsertMode::Replace, 100, 14 + 6 + 13 * 2);
        assert_eq!(b.push(row(1, &[(0, 1)])).unwrap(), None);
        assert_eq!(b.push(row(2, &[(0, 2)])).unwrap(), None);
        assert_eq!(
            b.push(row(3, &[(0, 3)])).unwrap().unwrap().lines,
            vec![1, 2]
        );
        let mut tiny = Batcher::new(&s, UpsertMode::Replace, 100, 20);
        let (r, msg) = tiny.push(row(9, &[(0, 1)])).unwrap_err();
        assert_eq!(r.line, 9);
        assert!(msg.contains("limit of 20 bytes"), "{msg}");
    }

    /// A fake server: applies rows into a map (key -> value of column 1), rejects rows whose
    /// second value is negative, answers BUSY on request ids listed in `busy`, and answers in
    /// reverse order of arrival whenever it holds `hold` requests.
    struct FakeServer {
        next_id: u64,
        held: Vec<(u64, Result<u64, ServerError>)>,
        hold: usize,
        busy: Vec<u64>,
        table: HashMap<i64, i64>,
        sends: usize,
    }

    impl FakeServer {
        fn new(hold: usize) -> FakeServer {
            FakeServer {
                next_id: 1,
                held: Vec::new(),
                hold,
                busy: Vec::new(),
                table: HashMap::new(),
                sends: 0,
            }
        }
    }

    impl Sink for &mut FakeServer {
        fn send(&mut self, batch: &Batch) -> Result<u64, ClientError> {
            let id = self.next_id;
            self.next_id += 1;
            self.sends += 1;
            let res = if self.busy.contains(&id) {
                Err(ServerError {
                    code: ErrorCode::Busy,
                    message: "busy".into(),
                    row: None,
                    column: None,
                })
            } else if let Some(bad) = batch.rows.iter().position(|r| r[1] == Value::Int(-1)) {
                Err(ServerError {
                    code: ErrorCode::TypeMismatch,
                    message: "negative".into(),
                    row: Some(bad as u32),
                    column: Some("v".into()),
                })
            } else {
                for r in &batch.rows {
                    let (Value::Int(k), Value::Int(v)) = (&r[0], &r[1]) else {
                        panic!("test rows are ints")
                    };
                    self.table.insert(*k, *v);
                }
                Ok(batch.rows.len() as u64)
            };
            self.held.push((id, res));
            Ok(id)
        }

        fn recv(&mut self) -> Result<(u64, Result<u64, ServerError>), ClientError> {
            if self.held.is_empty() {
                return Err(ClientError::Closed);
            }
            // Out of order: newest first once `hold` are waiting, else oldest.
            if self.held.len() >= self.hold {
                Ok(self.held.pop().unwrap())
            } else {
                Ok(self.held.remove(0))
            }
        }
    }

    /// Batches of two rows (key, value) from (line, key, value) triples.
    fn batches(rows: &[(u64, i64, i64)]) -> Vec<Batch> {
        rows.chunks(2)
            .map(|c| Batch {
                lines: c.iter().map(|r| r.0).collect(),
                columns: vec![0, 1],
                rows: c
                    .iter()
                    .map(|r| vec![Value::Int(r.1), Value::Int(r.2)])
                    .collect(),
            })
            .collect()
    }

    fn run<'a>(
        server: &'a mut FakeServer,
        keep_going: bool,
        rows: &[(u64, i64, i64)],
    ) -> Engine<&'a mut FakeServer> {
        let mut e = Engine::new(server, 3, keep_going);
        for b in batches(rows) {
            e.submit(b);
        }
        e.finish();
        e
    }

    #[test]
    fn pipelined_load_applies_everything_in_order() {
        let mut server = FakeServer::new(3);
        let rows: Vec<(u64, i64, i64)> = (1..=11).map(|i| (i, i as i64 % 4, i as i64)).collect();
        let e = run(&mut server, false, &rows);
        assert_eq!(
            (e.upserted, e.rejected.clone(), e.stop.clone()),
            (11, vec![], None)
        );
        // Later lines win for repeated keys.
        assert_eq!(server.table[&0], 8);
        assert_eq!(server.table[&1], 9);
        assert_eq!(server.table[&3], 11);
    }

    #[test]
    fn keep_going_drops_bad_rows_and_preserves_order() {
        let mut server = FakeServer::new(3);
        // Line 3 is bad; key 1 is written again by later lines that may be applied before the
        // retry of the batch holding line 4, which also writes key 1.
        let rows = [
            (1, 1, 10),
            (2, 2, 20),
            (3, 3, -1),
            (4, 1, 40),
            (5, 1, 50),
            (6, 2, 60),
            (7, 4, -1),
            (8, 5, 80),
        ];
        let e = run(&mut server, true, &rows);
        assert_eq!(e.upserted, 6);
        assert_eq!(
            e.rejected.iter().map(|r| r.line).collect::<Vec<_>>(),
            vec![3, 7]
        );
        assert_eq!(
            e.rejected[0].reason,
            "TYPE_MISMATCH: negative (column \"v\")"
        );
        assert_eq!(e.stop, None);
        assert_eq!(server.table[&1], 50);
        assert_eq!(server.table[&2], 60);
        assert_eq!(server.table.get(&3), None);
        assert_eq!(server.table[&5], 80);
    }

    #[test]
    fn default_stops_at_the_first_rejected_batch() {
        let mut server = FakeServer::new(1);
        let rows = [
            (1, 1, 10),
            (2, 2, 20),
            (3, 3, 30),
            (4, 4, -1),
            (5, 5, 50),
            (6, 6, 60),
        ];
        let e = run(&mut server, false, &rows);
        assert_eq!(
            e.stop,
            Some(Stop::Rejected(Rejected {
                line: 4,
                reason: "TYPE_MISMATCH: negative (column \"v\")".into()
            }))
        );
        // Lines 1-2 applied; the batch of lines 3-4 was not; lines 5-6 were sent in the same
        // window and acknowledged, so they count.
        assert_eq!(e.upserted, 4);
        assert_eq!(server.table.get(&3), None);
    }

    #[test]
    fn busy_is_retried_and_local_rejections_stop() {
        let mut server = FakeServer::new(2);
        server.busy = vec![2];
        let rows = [(1, 1, 10), (2, 2, 20), (3, 3, 30), (4, 4, 40), (5, 5, 50)];
        let e = run(&mut server, false, &rows);
        assert_eq!((e.upserted, e.stop.clone()), (5, None));
        assert_eq!(server.table.len(), 5);

        let mut server = FakeServer::new(1);
        let mut e = Engine::new(&mut server, 2, false);
        e.reject_local(1, "bad".into());
        e.submit(batches(&[(2, 2, 2)]).remove(0));
        e.finish();
        assert_eq!(e.upserted, 0);
        assert!(matches!(
            e.stop,
            Some(Stop::Rejected(Rejected { line: 1, .. }))
        ));
    }
}
