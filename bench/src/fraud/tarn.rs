//! The Tarn side of the suite on the load engine: INGEST of typed rows tagged with a producer
//! ([`TarnIngestCodec`], [`TarnIngestFactory`]), FEATURES of one key ([`TarnFeaturesCodec`],
//! [`TarnFeaturesFactory`]), and the helpers they share (typed rows of events, reply decoding,
//! producer ids).

use std::cell::Cell;
use std::io;
use std::net::TcpStream;

use tarn_net::limits::MAX_FRAME_PAYLOAD_BYTES;
use tarn_net::{
    decode_response, encode_request, split_frame, FeaturesRequest, IngestBody, IngestRequest,
    Producer, Request as NetRequest, Response, Value,
};

use super::{
    account_key, card_key, conn_seed, device_key, ip_text, merchant_key, Event, FraudShape,
    IngestCodec, View, COLUMNS, STREAM,
};
use crate::clock::{now_ns, realtime_us};
use crate::target::{Codec, CodecFactory, Decoded};
use crate::workload::{Request, Rng};

fn text_mut(v: &mut Value) -> &mut String {
    if !matches!(v, Value::Text(_)) {
        *v = Value::Text(String::new());
    }
    match v {
        Value::Text(s) => {
            s.clear();
            s
        }
        _ => unreachable!("just set to Text"),
    }
}

/// Overwrite a typed row (in [`COLUMNS`] order) with `e`, reusing its strings.
pub fn fill_row(row: &mut Vec<Value>, e: &Event) {
    row.resize(COLUMNS.len(), Value::Null);
    row[0] = Value::Timestamp(e.ts_us);
    card_key(e.card, text_mut(&mut row[1]));
    account_key(e.account, text_mut(&mut row[2]));
    device_key(e.device, text_mut(&mut row[3]));
    row[4] = Value::Double(e.amount);
    merchant_key(e.merchant, text_mut(&mut row[5]));
    ip_text(e.ip, text_mut(&mut row[6]));
}

/// Decode one Tarn reply frame from the front of `buf`: `(consumed, request id, reply)`.
pub fn decode_tarn(buf: &[u8]) -> Result<Option<(usize, u64, Response)>, String> {
    let Some((frame, used)) =
        split_frame(buf, MAX_FRAME_PAYLOAD_BYTES).map_err(|e| e.to_string())?
    else {
        return Ok(None);
    };
    let resp = decode_response(&frame.header, frame.payload).map_err(|e| e.to_string())?;
    Ok(Some((used, frame.header.request_id, resp)))
}

/// A process-unique base for producer ids (runs against the same server must not share ids:
/// the server would take a second run's batches for retries of the first run's).
pub fn producer_base() -> u64 {
    let mut r = Rng::new(((std::process::id() as u64) << 32) ^ now_ns() ^ realtime_us() as u64);
    // Room for 2^16 connections below each base.
    (r.next_u64() >> 1) & !0xffff
}

/// INGEST of `batch` random events per request (ts = now), tagged `(producer, seq)`.
pub struct TarnIngestCodec {
    req: NetRequest,
    shape: FraudShape,
    rng: Rng,
    batch: usize,
    events: Vec<Event>,
    first_error: bool,
}

impl TarnIngestCodec {
    pub fn new(shape: FraudShape, batch: usize, seed: u64, producer: Option<u64>) -> Self {
        Self {
            req: NetRequest::Ingest(IngestRequest {
                stream: STREAM.to_owned(),
                producer: producer.map(|id| Producer { id, seq: 0 }),
                body: IngestBody::Rows {
                    columns: COLUMNS.iter().map(|c| c.to_string()).collect(),
                    rows: Vec::new(),
                },
            }),
            shape,
            rng: Rng::new(seed),
            batch: batch.max(1),
            events: Vec::with_capacity(batch.max(1)),
            first_error: true,
        }
    }

    /// Fill the request template with `events` (next producer seq) and return it.
    pub fn build(&mut self, events: &[Event]) -> &NetRequest {
        let NetRequest::Ingest(r) = &mut self.req else {
            unreachable!("template is an INGEST")
        };
        if let Some(p) = r.producer.as_mut() {
            p.seq += 1;
        }
        let IngestBody::Rows { rows, .. } = &mut r.body else {
            unreachable!("template has typed rows")
        };
        rows.resize_with(events.len(), || Vec::with_capacity(COLUMNS.len()));
        for (row, e) in rows.iter_mut().zip(events) {
            fill_row(row, e);
        }
        &self.req
    }
}

impl IngestCodec for TarnIngestCodec {
    fn encode_events(&mut self, events: &[Event], id: u64, out: &mut Vec<u8>) {
        let r = self.build(events);
        encode_request(id, r, out);
    }
}

impl Codec for TarnIngestCodec {
    fn handshake(&mut self, stream: &mut TcpStream) -> io::Result<()> {
        crate::tarn::hello(stream)
    }

    /// Ignores `req`: sends the next batch of random events, event time = now.
    fn encode(&mut self, _req: &Request<'_>, id: u64, out: &mut Vec<u8>) {
        let mut events = std::mem::take(&mut self.events);
        events.clear();
        let ts = realtime_us();
        for _ in 0..self.batch {
            events.push(self.shape.random_event(&mut self.rng, ts));
        }
        self.encode_events(&events, id, out);
        self.events = events;
    }

    fn decode(&mut self, buf: &[u8]) -> Result<Option<(usize, Decoded)>, String> {
        let Some((used, id, resp)) = decode_tarn(buf)? else {
            return Ok(None);
        };
        let ok = match &resp {
            Response::Ingest(r) => !r.duplicate,
            _ => false,
        };
        if !ok && self.first_error {
            self.first_error = false;
            eprintln!("tarn-bench: INGEST got {resp:?} (further errors not shown)");
        }
        Ok(Some((used, Decoded { id: Some(id), ok })))
    }
}

/// FEATURES of one key of `view` (the engine's key index) on a connection. A reply whose row
/// holds no event (the key is unknown to the view) counts as an error: the preload failed.
pub struct TarnFeaturesCodec {
    view: View,
    req: NetRequest,
}

impl TarnFeaturesCodec {
    pub fn new(view: View) -> Self {
        Self {
            view,
            req: NetRequest::Features(FeaturesRequest {
                view: view.name().to_owned(),
                keys: vec![Value::Text(String::new())],
                as_of_us: None,
            }),
        }
    }
}

impl Codec for TarnFeaturesCodec {
    fn handshake(&mut self, stream: &mut TcpStream) -> io::Result<()> {
        crate::tarn::hello(stream)
    }

    fn encode(&mut self, req: &Request<'_>, id: u64, out: &mut Vec<u8>) {
        let NetRequest::Features(f) = &mut self.req else {
            unreachable!("template is a FEATURES")
        };
        f.keys.resize(req.keys.len().max(1), Value::Null);
        for (slot, &k) in f.keys.iter_mut().zip(req.keys) {
            self.view.key(k, text_mut(slot));
        }
        encode_request(id, &self.req, out);
    }

    fn decode(&mut self, buf: &[u8]) -> Result<Option<(usize, Decoded)>, String> {
        let Some((used, id, resp)) = decode_tarn(buf)? else {
            return Ok(None);
        };
        let ok = match &resp {
            Response::Features(r) => r.rows.iter().all(|row| row.newest_event_time_us.is_some()),
            _ => false,
        };
        Ok(Some((used, Decoded { id: Some(id), ok })))
    }
}

/// Tarn INGEST connections: producer id `base + connection index`.
pub struct TarnIngestFactory {
    pub shape: FraudShape,
    pub batch: usize,
    pub seed: u64,
    pub producer_base: u64,
    next: Cell<u64>,
}

impl TarnIngestFactory {
    pub fn new(shape: FraudShape, batch: usize, seed: u64) -> Self {
        Self {
            shape,
            batch,
            seed,
            producer_base: producer_base(),
            next: Cell::new(0),
        }
    }
}

impl CodecFactory for TarnIngestFactory {
    fn name(&self) -> &str {
        "tarn"
    }
    fn make(&self) -> Box<dyn Codec> {
        let n = self.next.get();
        self.next.set(n + 1);
        Box::new(TarnIngestCodec::new(
            self.shape.clone(),
            self.batch,
            conn_seed(self.seed, n),
            Some(self.producer_base + n),
        ))
    }
}

pub struct TarnFeaturesFactory {
    pub view: View,
}

impl CodecFactory for TarnFeaturesFactory {
    fn name(&self) -> &str {
        "tarn"
    }
    fn make(&self) -> Box<dyn Codec> {
        Box::new(TarnFeaturesCodec::new(self.view))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fraud::txns_of;
    use tarn_net::{decode_request, encode_response, IngestReply};

    fn decode_req(bytes: &[u8]) -> (u64, NetRequest) {
        let (f, used) = split_frame(bytes, MAX_FRAME_PAYLOAD_BYTES)
            .unwrap()
            .unwrap();
        assert_eq!(used, bytes.len());
        (
            f.header.request_id,
            tarn_net::decode_request(&f.header, f.payload).unwrap(),
        )
    }

    #[test]
    fn tarn_ingest_is_tagged_typed_rows_with_increasing_seq() {
        let mut c = TarnIngestCodec::new(FraudShape::default(), 3, 1, Some(77));
        let mut out = Vec::new();
        c.encode(
            &Request {
                kind: crate::workload::OpKind::Set,
                keys: &[0],
                value: b"",
            },
            5,
            &mut out,
        );
        let (id, r) = decode_req(&out);
        assert_eq!(id, 5);
        let NetRequest::Ingest(r) = r else { panic!() };
        assert_eq!(r.stream, "tx");
        assert_eq!(r.producer, Some(Producer { id: 77, seq: 1 }));
        let IngestBody::Rows { columns, rows } = r.body else {
            panic!()
        };
        assert_eq!(columns, COLUMNS);
        assert_eq!(rows.len(), 3);
        assert!(matches!(&rows[0][1], Value::Text(t) if t.starts_with("card:")));
        assert!(matches!(rows[0][0], Value::Timestamp(t) if t > 1_600_000_000_000_000));
        out.clear();
        let e = FraudShape::default().event(&mut Rng::new(3), 9, 1);
        c.encode_events(&[e], 6, &mut out);
        let (_, NetRequest::Ingest(r)) = decode_req(&out) else {
            panic!()
        };
        assert_eq!(r.producer.unwrap().seq, 2);
        let IngestBody::Rows { rows, .. } = r.body else {
            panic!()
        };
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0][1], Value::Text("card:0000009".into()));
        assert_eq!(rows[0][2], Value::Text("acct:0000002".into()));
        // Replies: a duplicate counts as an error.
        let mut buf = Vec::new();
        encode_response(
            6,
            &Response::Ingest(IngestReply {
                events: 1,
                duplicate: true,
            }),
            &mut buf,
        );
        let (n, d) = c.decode(&buf).unwrap().unwrap();
        assert_eq!(n, buf.len());
        assert_eq!(
            d,
            Decoded {
                id: Some(6),
                ok: false
            }
        );
    }

    #[test]
    fn features_codec_reads_the_key_and_flags_unknown_keys() {
        let mut c = TarnFeaturesCodec::new(View::Card);
        let mut out = Vec::new();
        c.encode(
            &Request {
                kind: crate::workload::OpKind::Get,
                keys: &[12],
                value: b"",
            },
            3,
            &mut out,
        );
        let (f, _) = split_frame(&out, MAX_FRAME_PAYLOAD_BYTES).unwrap().unwrap();
        let NetRequest::Features(r) = decode_request(&f.header, f.payload).unwrap() else {
            panic!()
        };
        assert_eq!(r.view, "card_10m");
        assert_eq!(r.keys, vec![Value::Text("card:0000012".into())]);
        let row = |newest| tarn_net::FeatureRow {
            as_of_us: 1,
            newest_event_time_us: newest,
            values: vec![Value::Text("card:0000012".into()), Value::Int(3)],
        };
        for (newest, ok) in [(Some(5), true), (None, false)] {
            let mut buf = Vec::new();
            let resp = Response::Features(tarn_net::FeaturesReply {
                as_of_us: 1,
                columns: vec![
                    tarn_net::Column {
                        name: "card_id".into(),
                        ty: tarn_net::ColumnType::Text,
                    },
                    tarn_net::Column {
                        name: "txns".into(),
                        ty: tarn_net::ColumnType::BigInt,
                    },
                ],
                rows: vec![row(newest)],
            });
            assert_eq!(txns_of(&resp), Ok(3));
            encode_response(3, &resp, &mut buf);
            assert_eq!(c.decode(&buf).unwrap().unwrap().1.ok, ok);
        }
    }
}
