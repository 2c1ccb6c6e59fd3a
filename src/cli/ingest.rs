//! `tarn ingest STREAM FILE`: JSON lines → INGEST batches, pipelined, with producer tags.
//!
//! Lines are sent as they are (the server parses them with simd-json), in batches of
//! `--batch-events` lines, several batches in flight. Every batch carries this run's producer
//! id and a new sequence number, so the server applies it at most once. A batch rejected for
//! one event (the reply names its index) is re-sent without that event, so every good line is
//! ingested and every bad one is reported with its line number and the server's reason.

use std::collections::{HashMap, VecDeque};

use tarn_client::{Client, ClientError, IngestBody, IngestRequest, Producer, Request, Response};

/// One batch: (line number, line bytes) pairs.
pub type Batch = Vec<(u64, Vec<u8>)>;

/// A rejected line and why.
#[derive(Clone, Debug)]
pub struct Rejection {
    pub line: u64,
    pub reason: String,
}

/// Sends batches with at most `in_flight` unanswered, re-sending a batch without the event a
/// reply rejects. Stops at the first error that is not about one event.
pub struct Ingester<'c> {
    client: &'c mut Client,
    stream: String,
    producer_id: u64,
    next_seq: u64,
    in_flight: usize,
    pending: HashMap<u64, Batch>,
    order: VecDeque<u64>,
    pub ingested: u64,
    pub duplicates: u64,
    pub rejected: Vec<Rejection>,
    /// Set when the run must stop (the message to print).
    pub stop: Option<String>,
}

impl<'c> Ingester<'c> {
    pub fn new(client: &'c mut Client, stream: String, in_flight: usize) -> Ingester<'c> {
        let producer_id = producer_id();
        Ingester {
            client,
            stream,
            producer_id,
            next_seq: 1,
            in_flight: in_flight.max(1),
            pending: HashMap::new(),
            order: VecDeque::new(),
            ingested: 0,
            duplicates: 0,
            rejected: Vec::new(),
            stop: None,
        }
    }

    /// Sends `batch`, first waiting for replies while `in_flight` batches are unanswered.
    pub fn submit(&mut self, batch: Batch) {
        if batch.is_empty() || self.stop.is_some() {
            return;
        }
        while self.pending.len() >= self.in_flight && self.stop.is_none() {
            self.receive_one();
        }
        if self.stop.is_some() {
            return;
        }
        let mut data = Vec::with_capacity(batch.iter().map(|(_, l)| l.len() + 1).sum());
        for (_, l) in &batch {
            data.extend_from_slice(l);
            data.push(b'\n');
        }
        let req = Request::Ingest(IngestRequest {
            stream: self.stream.clone(),
            producer: Some(Producer {
                id: self.producer_id,
                seq: self.next_seq,
            }),
            body: IngestBody::Json { layout: 1, data },
        });
        self.next_seq += 1;
        match self.client.send(&req) {
            Ok(id) => {
                self.pending.insert(id, batch);
                self.order.push_back(id);
            }
            Err(e) => self.stop = Some(describe(e)),
        }
    }

    /// Waits for every batch in flight (re-sending what rejections leave).
    pub fn finish(&mut self) {
        while !self.pending.is_empty() && self.stop.is_none() {
            self.receive_one();
        }
    }

    fn receive_one(&mut self) {
        let (id, resp) = match self.client.recv() {
            Ok(x) => x,
            Err(e) => {
                self.stop = Some(describe(e));
                return;
            }
        };
        let Some(mut batch) = self.pending.remove(&id) else {
            self.stop = Some(format!("reply to unknown request {id}"));
            return;
        };
        self.order.retain(|x| *x != id);
        match resp {
            Response::Ingest(r) if r.duplicate => self.duplicates += batch.len() as u64,
            Response::Ingest(r) => self.ingested += r.events,
            Response::Error(e) => match e.row {
                Some(r) if (r as usize) < batch.len() => {
                    let (line, _) = batch.remove(r as usize);
                    // The message starts with the event's index in its batch; the line number
                    // replaces it.
                    let prefix = format!("row {r}, ");
                    let message = e.message.strip_prefix(&prefix).unwrap_or(&e.message);
                    let message = message
                        .strip_prefix(&format!("row {r}: "))
                        .unwrap_or(message);
                    self.rejected.push(Rejection {
                        line,
                        reason: format!("{}: {message}", e.code),
                    });
                    self.submit(batch);
                }
                _ => self.stop = Some(e.to_string()),
            },
            other => self.stop = Some(format!("unexpected reply {:?}", other.opcode())),
        }
    }
}

fn describe(e: ClientError) -> String {
    match e {
        ClientError::Server(s) => s.to_string(),
        other => other.to_string(),
    }
}

/// A producer id unlikely to collide with another run's: clock and process id mixed.
fn producer_id() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let mut x = nanos ^ (u64::from(std::process::id()) << 32);
    // splitmix64 finaliser
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}
