//! The `features` suite's workloads: a card-fraud event stream ingested into Tarn feature views
//! and, as the peer, kept in Redis the way a Redis user would (per-bucket hashes and
//! HyperLogLogs with a TTL).
//!
//! - [`FraudShape`] / [`Event`]: the events. Cards `card:%07d` uniform over 1M, account
//!   `acct:%07d` = card / 4, device `dev:%06d` uniform over 300k, merchant `m:%04d` over 1000,
//!   IP `10.x.y.z` over 10k, amount log-uniform in [1, 2000] rounded to cents (≈18% > 500).
//! - [`TarnIngestCodec`]: INGEST of typed rows (body kind 2) of one batch, tagged with a
//!   producer (id per connection, seq per batch) like a real producer.
//! - [`RedisFraudCodec`]: for each event the 17 commands of [`REDIS_CMDS_PER_EVENT`], all
//!   commands of a batch in one pipelined write; the batch completes with its last reply.
//! - [`TarnFeaturesCodec`]: FEATURES of one key (the engine's key index).
//! - [`BlockingTarn`], [`setup`], [`load`]: schema and bulk loads on blocking connections.
//! - [`freshness`]: the time from an event's ack to its effect being visible on another
//!   connection, under background ingest.
//! - [`vm_rss_kib`]: a server's resident set size from `/proc/<pid>/status`.

use std::cell::Cell;
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};

use hdrhistogram::Histogram;
use tarn_net::limits::MAX_FRAME_PAYLOAD_BYTES;
use tarn_net::{
    decode_response, encode_request, split_frame, FeaturesRequest, IngestBody, IngestRequest,
    Producer, Request as NetRequest, Response, Value,
};

use crate::clock::{now_ns, realtime_us};
use crate::engine::{self, EngineConfig, EngineOutput, LoadMode};
use crate::resp;
use crate::stats::new_hist;
use crate::sys::pin_current_thread;
use crate::target::{Codec, CodecFactory, Decoded};
use crate::workload::{Request, Rng, Workload};

/// The stream of the suite.
pub const STREAM: &str = "tx";
/// Bucket width of the views (10 s) in µs.
pub const BUCKET_US: i64 = 10_000_000;
/// Buckets per window (10 minutes / 10 s).
pub const WINDOW_BUCKETS: i64 = 60;
/// Cards per account (account = card / 4).
pub const CARDS_PER_ACCOUNT: u64 = 4;
/// Columns of the stream, in the order the typed rows carry them.
pub const COLUMNS: [&str; 7] = [
    "ts",
    "card_id",
    "account_id",
    "device_id",
    "amount",
    "merchant",
    "ip",
];
/// Commands Redis executes per event (card 7, account 5, device 5); see [`RedisFraudCodec`].
pub const REDIS_CMDS_PER_EVENT: usize = 17;
/// TTL of every Redis key: the 10-minute window.
pub const REDIS_TTL_SECS: &[u8] = b"600";

/// `CREATE STREAM` of the suite.
pub fn create_stream_sql() -> String {
    format!(
        "CREATE STREAM {STREAM} (ts TIMESTAMP, card_id TEXT, account_id TEXT, device_id TEXT, \
         amount DOUBLE, merchant TEXT, ip TEXT) WITH (event_time = 'ts', partition = 'card_id')"
    )
}

/// The three feature views.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum View {
    Card,
    Account,
    Device,
}

impl View {
    pub const ALL: [View; 3] = [View::Card, View::Account, View::Device];

    pub fn name(self) -> &'static str {
        match self {
            View::Card => "card_10m",
            View::Account => "account_10m",
            View::Device => "device_10m",
        }
    }

    /// `card`, `account` or `device` (also the full view names).
    pub fn parse(s: &str) -> Option<View> {
        View::ALL
            .into_iter()
            .find(|v| v.name() == s || v.name().strip_suffix("_10m") == Some(s))
    }

    /// Aggregates the view keeps.
    pub fn aggregates(self) -> usize {
        match self {
            View::Card => 10,
            View::Account | View::Device => 4,
        }
    }

    pub fn create_sql(self) -> String {
        let with = "WITH (window = '10 minutes', bucket = '10 seconds')";
        match self {
            View::Card => format!(
                "CREATE MATERIALIZED VIEW card_10m {with} AS SELECT card_id, count(*) AS txns, \
                 sum(amount) AS spend, max(amount) AS max_amount, min(amount) AS min_amount, \
                 avg(amount) AS avg_amount, stddev(amount) AS sd_amount, \
                 count(DISTINCT merchant) AS merchants, count(DISTINCT ip) AS ips, \
                 last(ip) AS last_ip, count(*) FILTER (WHERE amount > 500) AS big \
                 FROM {STREAM} GROUP BY card_id"
            ),
            View::Account | View::Device => {
                let key = if self == View::Account {
                    "account_id"
                } else {
                    "device_id"
                };
                format!(
                    "CREATE MATERIALIZED VIEW {} {with} AS SELECT {key}, count(*) AS txns, \
                     sum(amount) AS spend, max(amount) AS max_amount, \
                     count(DISTINCT card_id) AS cards FROM {STREAM} GROUP BY {key}",
                    self.name()
                )
            }
        }
    }

    /// The key text of index `i` in this view's key space.
    pub fn key(self, i: u64, out: &mut String) {
        match self {
            View::Card => card_key(i, out),
            View::Account => account_key(i, out),
            View::Device => device_key(i, out),
        }
    }
}

fn push_padded(out: &mut String, prefix: &str, n: u64, width: usize) {
    out.push_str(prefix);
    let mut d = [b'0'; 20];
    let mut i = d.len();
    let mut n = n;
    loop {
        i -= 1;
        d[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let len = (d.len() - i).max(width);
    // Digits are ASCII.
    out.push_str(std::str::from_utf8(&d[d.len() - len..]).unwrap_or("0"));
}

/// `card:%07d`.
pub fn card_key(i: u64, out: &mut String) {
    push_padded(out, "card:", i, 7);
}
/// `acct:%07d`.
pub fn account_key(i: u64, out: &mut String) {
    push_padded(out, "acct:", i, 7);
}
/// `dev:%06d`.
pub fn device_key(i: u64, out: &mut String) {
    push_padded(out, "dev:", i, 6);
}
/// `m:%04d`.
pub fn merchant_key(i: u64, out: &mut String) {
    push_padded(out, "m:", i, 4);
}
/// `10.a.b.c` from the low 24 bits.
pub fn ip_text(i: u64, out: &mut String) {
    use std::fmt::Write as _;
    let _ = write!(out, "10.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255);
}

/// One transaction.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Event {
    pub ts_us: i64,
    pub card: u64,
    pub account: u64,
    pub device: u64,
    pub amount: f64,
    pub merchant: u64,
    pub ip: u64,
}

/// Sizes of the key spaces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FraudShape {
    pub cards: u64,
    pub devices: u64,
    pub merchants: u64,
    pub ips: u64,
}

impl Default for FraudShape {
    fn default() -> Self {
        Self {
            cards: 1_000_000,
            devices: 300_000,
            merchants: 1000,
            ips: 10_000,
        }
    }
}

/// Log-uniform in [1, 2000], rounded to cents.
fn amount(rng: &mut Rng) -> f64 {
    let u = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
    (2000f64.powf(u) * 100.0).round() / 100.0
}

impl FraudShape {
    pub fn accounts(&self) -> u64 {
        self.cards.div_ceil(CARDS_PER_ACCOUNT)
    }

    /// An event of `card` at `ts_us`; the other fields random.
    pub fn event(&self, rng: &mut Rng, card: u64, ts_us: i64) -> Event {
        Event {
            ts_us,
            card,
            account: card / CARDS_PER_ACCOUNT,
            device: rng.below(self.devices.max(1)),
            amount: amount(rng),
            merchant: rng.below(self.merchants.max(1)),
            ip: rng.below(self.ips.max(1)),
        }
    }

    /// An event of a uniformly random card.
    pub fn random_event(&self, rng: &mut Rng, ts_us: i64) -> Event {
        let card = rng.below(self.cards.max(1));
        self.event(rng, card, ts_us)
    }
}

/// A codec that can encode a given batch of events as one request (Tarn) or one pipeline
/// (Redis), so that bulk loads and the load engine send exactly the same bytes.
pub trait IngestCodec: Codec {
    fn encode_events(&mut self, events: &[Event], id: u64, out: &mut Vec<u8>);
}

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

/// Redis: per event and per 10-second bucket `b = ts / 10 s`, what a Redis user keeps for the
/// same three views (17 commands, pipelined with the rest of the batch):
///
/// ```text
/// HINCRBY      card:%07d:b txns 1          HINCRBY      acct:%07d:b txns 1     (device alike:
/// HINCRBYFLOAT card:%07d:b spend <amount>  HINCRBYFLOAT acct:%07d:b spend <a>   dev:%06d:b,
/// PFADD        card:%07d:b:merchants <m>   PFADD        acct:%07d:b:cards <card> :cards)
/// PFADD        card:%07d:b:ips <ip>        EXPIRE (both keys) 600
/// EXPIRE (all three keys) 600
/// ```
///
/// It keeps fewer aggregates than the Tarn views: no max/min/stddev (not expressible without
/// Lua), no filtered count (`big`), no `last(ip)`; avg is derivable from spend / txns; the
/// distinct counts are HyperLogLogs (Tarn: exact up to 1024 per bucket). A read would still
/// have to fetch and merge 60 buckets per key (not measured here).
pub struct RedisFraudCodec {
    shape: FraudShape,
    rng: Rng,
    batch: usize,
    events: Vec<Event>,
    /// Replies expected for each batch in flight, oldest first.
    pending: VecDeque<usize>,
    /// Bytes of `buf` (as passed to `decode`) already parsed for the oldest batch.
    scan: usize,
    seen: usize,
    errors: usize,
    first_error: bool,
    base: String,
    key: String,
    member: String,
    amount: String,
}

impl RedisFraudCodec {
    pub fn new(shape: FraudShape, batch: usize, seed: u64) -> Self {
        Self {
            shape,
            rng: Rng::new(seed),
            batch: batch.max(1),
            events: Vec::with_capacity(batch.max(1)),
            pending: VecDeque::new(),
            scan: 0,
            seen: 0,
            errors: 0,
            first_error: true,
            base: String::with_capacity(32),
            key: String::with_capacity(48),
            member: String::with_capacity(24),
            amount: String::with_capacity(16),
        }
    }

    /// HINCRBY + HINCRBYFLOAT on `base`, PFADD `base:suffix member` for each set, EXPIRE of
    /// every key. Returns the number of commands.
    fn entity(&mut self, out: &mut Vec<u8>, sets: &[(&str, &str)]) -> usize {
        resp::encode_command(&[b"HINCRBY", self.base.as_bytes(), b"txns", b"1"], out);
        resp::encode_command(
            &[
                b"HINCRBYFLOAT",
                self.base.as_bytes(),
                b"spend",
                self.amount.as_bytes(),
            ],
            out,
        );
        for (suffix, member) in sets {
            self.key.clear();
            self.key.push_str(&self.base);
            self.key.push_str(suffix);
            resp::encode_command(&[b"PFADD", self.key.as_bytes(), member.as_bytes()], out);
        }
        resp::encode_command(&[b"EXPIRE", self.base.as_bytes(), REDIS_TTL_SECS], out);
        for (suffix, _) in sets {
            self.key.clear();
            self.key.push_str(&self.base);
            self.key.push_str(suffix);
            resp::encode_command(&[b"EXPIRE", self.key.as_bytes(), REDIS_TTL_SECS], out);
        }
        3 + 2 * sets.len()
    }

    fn set_base(&mut self, view: View, id: u64, bucket: i64) {
        use std::fmt::Write as _;
        self.base.clear();
        view.key(id, &mut self.base);
        let _ = write!(self.base, ":{bucket}");
    }
}

impl IngestCodec for RedisFraudCodec {
    fn encode_events(&mut self, events: &[Event], _id: u64, out: &mut Vec<u8>) {
        use std::fmt::Write as _;
        let mut cmds = 0;
        let mut merchant = String::with_capacity(8);
        let mut ip = String::with_capacity(16);
        for e in events {
            let bucket = e.ts_us.div_euclid(BUCKET_US);
            self.amount.clear();
            let _ = write!(self.amount, "{:.2}", e.amount);
            merchant.clear();
            merchant_key(e.merchant, &mut merchant);
            ip.clear();
            ip_text(e.ip, &mut ip);
            self.set_base(View::Card, e.card, bucket);
            cmds += self.entity(out, &[(":merchants", &merchant), (":ips", &ip)]);
            self.member.clear();
            card_key(e.card, &mut self.member);
            let card = std::mem::take(&mut self.member);
            self.set_base(View::Account, e.account, bucket);
            cmds += self.entity(out, &[(":cards", &card)]);
            self.set_base(View::Device, e.device, bucket);
            cmds += self.entity(out, &[(":cards", &card)]);
            self.member = card;
        }
        self.pending.push_back(cmds);
    }
}

impl Codec for RedisFraudCodec {
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

    /// Completes a batch when its last reply has arrived. Progress is kept between calls
    /// (`buf` always starts at the first unconsumed byte, so offsets stay valid).
    fn decode(&mut self, buf: &[u8]) -> Result<Option<(usize, Decoded)>, String> {
        let Some(&want) = self.pending.front() else {
            return if buf.is_empty() {
                Ok(None)
            } else {
                Err("Redis reply with no batch in flight".into())
            };
        };
        while self.seen < want {
            match resp::parse(&buf[self.scan..]).map_err(|e| e.to_string())? {
                Some((n, f)) => {
                    if let resp::Frame::Error(r) = &f {
                        self.errors += 1;
                        if self.first_error {
                            self.first_error = false;
                            let s = self.scan;
                            eprintln!(
                                "tarn-bench: Redis error reply {:?} (further errors not shown)",
                                String::from_utf8_lossy(&buf[s + r.start..s + r.end])
                            );
                        }
                    }
                    self.scan += n;
                    self.seen += 1;
                }
                None => return Ok(None),
            }
        }
        let used = self.scan;
        let ok = self.errors == 0;
        self.pending.pop_front();
        self.scan = 0;
        self.seen = 0;
        self.errors = 0;
        Ok(Some((used, Decoded { id: None, ok })))
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

/// Per-connection seeds: distinct, deterministic for a given `--seed`.
fn conn_seed(seed: u64, n: u64) -> u64 {
    seed ^ n.wrapping_add(1).wrapping_mul(0x9e37_79b9_7f4a_7c15)
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

pub struct RedisFraudFactory {
    pub shape: FraudShape,
    pub batch: usize,
    pub seed: u64,
    next: Cell<u64>,
}

impl RedisFraudFactory {
    pub fn new(shape: FraudShape, batch: usize, seed: u64) -> Self {
        Self {
            shape,
            batch,
            seed,
            next: Cell::new(0),
        }
    }
}

impl CodecFactory for RedisFraudFactory {
    fn name(&self) -> &str {
        "redis"
    }
    fn make(&self) -> Box<dyn Codec> {
        let n = self.next.get();
        self.next.set(n + 1);
        Box::new(RedisFraudCodec::new(
            self.shape.clone(),
            self.batch,
            conn_seed(self.seed, n),
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

/// A blocking Tarn connection with a proper read buffer (replies may be pipelined).
pub struct BlockingTarn {
    pub stream: TcpStream,
    buf: Vec<u8>,
    start: usize,
    next_id: u64,
    out: Vec<u8>,
}

impl BlockingTarn {
    pub fn connect(addr: SocketAddr) -> io::Result<Self> {
        let mut stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        crate::tarn::hello(&mut stream)?;
        Ok(Self {
            stream,
            buf: Vec::with_capacity(64 * 1024),
            start: 0,
            next_id: 2,
            out: Vec::with_capacity(4096),
        })
    }

    /// Send one request; returns its id.
    pub fn send(&mut self, req: &NetRequest) -> io::Result<u64> {
        let id = self.next_id;
        self.next_id += 1;
        self.out.clear();
        encode_request(id, req, &mut self.out);
        self.stream.write_all(&self.out)?;
        Ok(id)
    }

    /// Receive the next reply.
    pub fn recv(&mut self) -> io::Result<(u64, Response)> {
        loop {
            if let Some((used, id, resp)) = decode_tarn(&self.buf[self.start..])
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?
            {
                self.start += used;
                if self.start == self.buf.len() {
                    self.buf.clear();
                    self.start = 0;
                }
                return Ok((id, resp));
            }
            if self.start > 0 {
                self.buf.drain(..self.start);
                self.start = 0;
            }
            read_more(&mut self.stream, &mut self.buf)?;
        }
    }

    /// Send and wait for the reply.
    pub fn call(&mut self, req: &NetRequest) -> io::Result<Response> {
        let id = self.send(req)?;
        let (got, resp) = self.recv()?;
        if got != id {
            return Err(io::Error::other(format!(
                "reply for request {got}, expected {id}"
            )));
        }
        Ok(resp)
    }

    /// Run one SQL statement: Ok(message) or Err(server error text).
    pub fn sql(&mut self, text: &str) -> io::Result<Result<String, String>> {
        Ok(match self.call(&NetRequest::Sql(text.to_owned()))? {
            Response::Sql(r) => Ok(r.message),
            Response::Error(e) => Err(e.to_string()),
            other => Err(format!("unexpected reply {other:?}")),
        })
    }
}

fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<()> {
    let old = buf.len();
    buf.resize(old + 64 * 1024, 0);
    let n = match stream.read(&mut buf[old..]) {
        Ok(n) => n,
        Err(e) => {
            buf.truncate(old);
            return Err(e);
        }
    };
    buf.truncate(old + n);
    if n == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "server closed the connection",
        ));
    }
    Ok(())
}

/// Create the stream and `views` ("already exists" is fine). Returns the server's messages.
pub fn setup(addr: SocketAddr, views: &[View]) -> Result<Vec<String>, String> {
    let mut c = BlockingTarn::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
    let mut msgs = Vec::new();
    let stmts: Vec<String> = std::iter::once(create_stream_sql())
        .chain(views.iter().map(|v| v.create_sql()))
        .collect();
    for s in &stmts {
        match c.sql(s).map_err(|e| format!("{s}: {e}"))? {
            Ok(m) => msgs.push(m),
            Err(e) if e.to_lowercase().contains("exist") => msgs.push(format!("exists: {e}")),
            Err(e) => return Err(format!("{s}: {e}")),
        }
    }
    Ok(msgs)
}

/// Send batches from `next_batch` (an empty batch ends) over a blocking connection, at most
/// `window` batches in flight. Returns (batches, error replies).
pub fn pipeline_events(
    stream: &mut TcpStream,
    codec: &mut dyn IngestCodec,
    next_batch: &mut dyn FnMut(&mut Vec<Event>),
    window: usize,
) -> io::Result<(u64, u64)> {
    let mut events = Vec::new();
    let mut out = Vec::with_capacity(256 * 1024);
    let mut inbuf: Vec<u8> = Vec::with_capacity(256 * 1024);
    let mut start = 0usize;
    let mut inflight = 0usize;
    let mut more = true;
    let mut id = 1u64;
    let (mut batches, mut errors) = (0u64, 0u64);
    loop {
        while more && inflight < window.max(1) {
            events.clear();
            next_batch(&mut events);
            if events.is_empty() {
                more = false;
                break;
            }
            out.clear();
            codec.encode_events(&events, id, &mut out);
            id += 1;
            stream.write_all(&out)?;
            inflight += 1;
        }
        if inflight == 0 {
            return Ok((batches, errors));
        }
        loop {
            match codec
                .decode(&inbuf[start..])
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?
            {
                Some((n, d)) => {
                    start += n;
                    inflight -= 1;
                    batches += 1;
                    if !d.ok {
                        errors += 1;
                    }
                    break;
                }
                None => {
                    inbuf.drain(..start);
                    start = 0;
                    read_more(stream, &mut inbuf)?;
                }
            }
        }
    }
}

/// What [`load`] sends: for every card in `first_card .. first_card + cards`, one event in
/// each of the `buckets` most recent 10-second buckets (1 = now only), oldest bucket first.
#[derive(Clone, Debug)]
pub struct LoadPlan {
    pub first_card: u64,
    pub cards: u64,
    pub buckets: u32,
    pub batch: usize,
    pub window: usize,
    pub seed: u64,
}

/// What [`load`] did.
#[derive(Clone, Debug, Default)]
pub struct LoadStats {
    pub events: u64,
    pub batches: u64,
    pub errors: u64,
    pub secs: f64,
    /// Distinct keys the load touched per view: cards, accounts, devices.
    pub cards: u64,
    pub accounts: u64,
    pub devices: u64,
}

/// Bulk-load events through `codec` (connected and handshaken here).
pub fn load(
    addr: SocketAddr,
    codec: &mut dyn IngestCodec,
    shape: &FraudShape,
    plan: &LoadPlan,
) -> Result<LoadStats, String> {
    let mut stream = TcpStream::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    codec
        .handshake(&mut stream)
        .map_err(|e| format!("handshake: {e}"))?;
    let mut rng = Rng::new(plan.seed);
    let mut devices = vec![0u64; shape.devices.div_ceil(64) as usize];
    let buckets = plan.buckets.max(1) as i64;
    let mut j = buckets - 1; // buckets back from now
    let mut card = plan.first_card;
    let end_card = plan.first_card + plan.cards;
    let mut events_sent = 0u64;
    let started = std::time::Instant::now();
    let mut next = |events: &mut Vec<Event>| {
        let now = realtime_us();
        let b_now = now.div_euclid(BUCKET_US);
        while events.len() < plan.batch.max(1) && j >= 0 {
            if card >= end_card {
                card = plan.first_card;
                j -= 1;
                continue;
            }
            let lo = (b_now - j) * BUCKET_US;
            let hi = (lo + BUCKET_US - 1).min(now);
            let ts = lo + rng.below((hi - lo + 1) as u64) as i64;
            let e = shape.event(&mut rng, card, ts);
            if let Some(w) = devices.get_mut((e.device / 64) as usize) {
                *w |= 1 << (e.device % 64);
            }
            events.push(e);
            card += 1;
        }
        events_sent += events.len() as u64;
    };
    let (batches, errors) = pipeline_events(&mut stream, codec, &mut next, plan.window)
        .map_err(|e| format!("load: {e}"))?;
    let accounts = if plan.cards == 0 {
        0
    } else {
        (end_card - 1) / CARDS_PER_ACCOUNT - plan.first_card / CARDS_PER_ACCOUNT + 1
    };
    Ok(LoadStats {
        events: events_sent,
        batches,
        errors,
        secs: started.elapsed().as_secs_f64(),
        cards: plan.cards,
        accounts,
        devices: devices.iter().map(|w| w.count_ones() as u64).sum(),
    })
}

/// Resident set size of a process in KiB (`VmRSS` of `/proc/<pid>/status`).
pub fn vm_rss_kib(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_vm_rss(&text)
}

/// `VmRSS:   1234 kB` → 1234.
pub fn parse_vm_rss(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// Background load of [`freshness`]: open loop at `events_per_sec`.
#[derive(Clone, Debug)]
pub struct BgLoad {
    pub events_per_sec: f64,
    pub conns: usize,
    pub batch: usize,
    pub depth: usize,
}

/// Parameters of [`freshness`].
#[derive(Clone, Debug)]
pub struct FreshConfig {
    pub addr: SocketAddr,
    pub warmup_ns: u64,
    pub measure_ns: u64,
    /// Pause between probes (from one probe's send to the next).
    pub interval_ns: u64,
    /// Reads per probe before it is given up as "never visible".
    pub max_reads: u32,
    pub bg: Option<BgLoad>,
    pub shape: FraudShape,
    pub cpu: Option<usize>,
    pub seed: u64,
}

/// What [`freshness`] measured (probes whose ingest was sent in the measurement window).
pub struct FreshOutput {
    /// Ack received → reply of the first read that shows the event received.
    pub visible: Histogram<u64>,
    /// Ack latency of the probe's single-event INGEST.
    pub ack: Histogram<u64>,
    pub probes: u64,
    /// Probes whose first read did not show the event yet.
    pub multi_read: u64,
    pub max_reads: u32,
    pub never_visible: u64,
    pub measure_secs: f64,
    pub bg: Option<Result<EngineOutput, String>>,
}

fn probe_request(key: &str, producer: u64, seq: u64, ts: i64) -> NetRequest {
    let t = |s: &str| Value::Text(s.to_owned());
    NetRequest::Ingest(IngestRequest {
        stream: STREAM.to_owned(),
        producer: Some(Producer { id: producer, seq }),
        body: IngestBody::Rows {
            columns: COLUMNS.iter().map(|c| c.to_string()).collect(),
            rows: vec![vec![
                Value::Timestamp(ts),
                t(key),
                t("acct:fresh"),
                t("dev:fresh"),
                Value::Double(1.0),
                t("m:0000"),
                t("10.0.0.1"),
            ]],
        },
    })
}

/// The card view's `txns` (first aggregate) in a FEATURES reply of one key.
pub fn txns_of(resp: &Response) -> Result<i64, String> {
    match resp {
        Response::Features(r) => match r.rows.first().and_then(|row| row.values.get(1)) {
            Some(Value::Int(n)) => Ok(*n),
            other => Err(format!("FEATURES row without a txns count: {other:?}")),
        },
        Response::Error(e) => Err(format!("FEATURES failed: {e}")),
        other => Err(format!("unexpected FEATURES reply {other:?}")),
    }
}

/// Freshness probe: connection A ingests one tagged event for a key nobody else writes, and
/// as soon as its ack arrives connection B reads the key's features, again and again until the
/// count includes the event. Recorded: ack received → reply of the first read that shows it.
/// Meanwhile (optionally) a background open-loop ingest from other connections.
pub fn freshness(cfg: &FreshConfig) -> Result<FreshOutput, String> {
    if let Some(c) = cfg.cpu {
        pin_current_thread(c).map_err(|e| format!("pin to CPU {c}: {e}"))?;
    }
    let bg_handle = cfg.bg.clone().map(|bg| {
        let ecfg = EngineConfig {
            addr: cfg.addr,
            conns: bg.conns.max(1),
            mode: LoadMode::Open {
                rate: (bg.events_per_sec / bg.batch.max(1) as f64).max(1.0),
                max_outstanding: bg.depth.max(1),
            },
            spin: false,
            warmup_ns: cfg.warmup_ns,
            measure_ns: cfg.measure_ns,
            drain_ns: 2_000_000_000,
            seed: cfg.seed ^ 0xb6,
            workload: Workload {
                keys: 1,
                value_size: 0,
                write_ratio: 1.0,
                batch: 1,
            },
            expected_interval_ns: None,
        };
        let shape = cfg.shape.clone();
        let cpu = cfg.cpu;
        let seed = cfg.seed;
        std::thread::spawn(move || -> Result<EngineOutput, String> {
            if let Some(c) = cpu {
                pin_current_thread(c).map_err(|e| format!("pin to CPU {c}: {e}"))?;
            }
            let f = TarnIngestFactory::new(shape, bg.batch, seed ^ 0x5eed);
            engine::run(&ecfg, &f)
        })
    });
    let res = probe_loop(cfg);
    let bg = bg_handle.map(|h| {
        h.join()
            .unwrap_or_else(|_| Err("background load panicked".into()))
    });
    let mut out = res?;
    out.bg = bg;
    Ok(out)
}

fn probe_loop(cfg: &FreshConfig) -> Result<FreshOutput, String> {
    let ctx = |what: &'static str| move |e: io::Error| format!("{what}: {e}");
    let mut a = BlockingTarn::connect(cfg.addr).map_err(ctx("probe connect (ingest)"))?;
    let mut b = BlockingTarn::connect(cfg.addr).map_err(ctx("probe connect (read)"))?;
    let producer = producer_base() | 0xfff0;
    let nonce = Rng::new(cfg.seed ^ now_ns()).next_u64() % 1_000_000;
    let mut out = FreshOutput {
        visible: new_hist(),
        ack: new_hist(),
        probes: 0,
        multi_read: 0,
        max_reads: 0,
        never_visible: 0,
        measure_secs: cfg.measure_ns as f64 / 1e9,
        bg: None,
    };
    let t0 = now_ns();
    let warm_end = t0 + cfg.warmup_ns;
    let end = warm_end + cfg.measure_ns;
    // A fresh key every 5 minutes keeps every probe event inside the 10-minute window.
    const KEY_LIFETIME_NS: u64 = 300_000_000_000;
    let mut key_started = t0;
    let mut key_no = 0u64;
    let mut key = format!("card:fresh-{nonce}-{key_no}");
    let mut expected = 0i64;
    let mut seq = 0u64;
    let mut last_ts = 0i64;
    let mut read = NetRequest::Features(FeaturesRequest {
        view: View::Card.name().to_owned(),
        keys: vec![Value::Text(key.clone())],
        as_of_us: None,
    });
    loop {
        let now = now_ns();
        if now >= end {
            break;
        }
        if now - key_started > KEY_LIFETIME_NS {
            key_no += 1;
            key = format!("card:fresh-{nonce}-{key_no}");
            key_started = now;
            expected = 0;
            if let NetRequest::Features(f) = &mut read {
                f.keys[0] = Value::Text(key.clone());
            }
        }
        seq += 1;
        let ts = realtime_us().max(last_ts + 1);
        last_ts = ts;
        let req = probe_request(&key, producer, seq, ts);
        let sent = now_ns();
        a.send(&req).map_err(ctx("probe INGEST"))?;
        let (_, resp) = a.recv().map_err(ctx("probe INGEST reply"))?;
        let acked = now_ns();
        match resp {
            Response::Ingest(r) if !r.duplicate => {}
            other => return Err(format!("probe INGEST: unexpected reply {other:?}")),
        }
        expected += 1;
        let mut reads = 0u32;
        let seen_at = loop {
            b.send(&read).map_err(ctx("probe FEATURES"))?;
            let (_, resp) = b.recv().map_err(ctx("probe FEATURES reply"))?;
            let t = now_ns();
            reads += 1;
            if txns_of(&resp)? >= expected {
                break Some(t);
            }
            if reads >= cfg.max_reads.max(1) {
                break None;
            }
        };
        if sent >= warm_end {
            out.probes += 1;
            let _ = out.ack.record(acked.saturating_sub(sent).max(1));
            match seen_at {
                Some(t) => {
                    let _ = out.visible.record(t.saturating_sub(acked).max(1));
                }
                None => out.never_visible += 1,
            }
            if reads > 1 {
                out.multi_read += 1;
            }
            out.max_reads = out.max_reads.max(reads);
        }
        let next = sent + cfg.interval_ns;
        let now = now_ns();
        if next > now && next < end {
            std::thread::sleep(std::time::Duration::from_nanos(next - now));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
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
    fn keys_are_padded() {
        let mut s = String::new();
        card_key(42, &mut s);
        assert_eq!(s, "card:0000042");
        s.clear();
        account_key(1_234_567, &mut s);
        assert_eq!(s, "acct:1234567");
        s.clear();
        device_key(7, &mut s);
        assert_eq!(s, "dev:000007");
        s.clear();
        merchant_key(12_345, &mut s);
        assert_eq!(s, "m:12345");
        s.clear();
        ip_text(0x01_02_03, &mut s);
        assert_eq!(s, "10.1.2.3");
        assert_eq!(View::parse("card"), Some(View::Card));
        assert_eq!(View::parse("device_10m"), Some(View::Device));
        assert_eq!(View::parse("x"), None);
    }

    #[test]
    fn events_follow_the_shape() {
        let shape = FraudShape::default();
        let mut rng = Rng::new(1);
        let mut big = 0;
        for _ in 0..10_000 {
            let e = shape.random_event(&mut rng, 5);
            assert!(e.card < shape.cards && e.device < shape.devices);
            assert_eq!(e.account, e.card / 4);
            assert!(e.merchant < 1000 && e.ip < 10_000);
            assert!((1.0..=2000.0).contains(&e.amount), "{}", e.amount);
            assert_eq!((e.amount * 100.0).round() / 100.0, e.amount);
            big += (e.amount > 500.0) as u32;
        }
        assert!((1200..2500).contains(&big), "{big}");
    }

    #[test]
    fn view_sql_has_the_promised_aggregates() {
        let card = View::Card.create_sql();
        for agg in [
            "count(*) AS txns",
            "stddev(amount)",
            "count(DISTINCT merchant)",
            "last(ip)",
            "FILTER (WHERE amount > 500)",
        ] {
            assert!(card.contains(agg), "{agg}");
        }
        assert_eq!(card.matches(" AS ").count(), 11); // 10 aggregates + AS SELECT
        assert!(View::Device.create_sql().contains("GROUP BY device_id"));
        assert!(create_stream_sql().contains("partition = 'card_id'"));
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
    fn redis_batch_is_17_commands_per_event_and_completes_on_its_last_reply() {
        let mut c = RedisFraudCodec::new(FraudShape::default(), 2, 1);
        let e = Event {
            ts_us: 25_000_000,
            card: 9,
            account: 2,
            device: 3,
            amount: 12.5,
            merchant: 4,
            ip: 5,
        };
        let mut out = Vec::new();
        c.encode_events(&[e, e], 1, &mut out);
        let mut cmds = Vec::new();
        let mut pos = 0;
        while let Some((n, f)) = resp::parse(&out[pos..]).unwrap() {
            assert!(matches!(f, resp::Frame::Array(Some(_))));
            let words: Vec<String> = String::from_utf8_lossy(&out[pos..pos + n])
                .split("\r\n")
                .filter(|w| !w.is_empty() && !w.starts_with('*') && !w.starts_with('$'))
                .map(str::to_owned)
                .collect();
            cmds.push(words.join(" "));
            pos += n;
        }
        assert_eq!(pos, out.len());
        assert_eq!(cmds.len(), 2 * REDIS_CMDS_PER_EVENT);
        assert_eq!(cmds[0], "HINCRBY card:0000009:2 txns 1");
        assert_eq!(cmds[1], "HINCRBYFLOAT card:0000009:2 spend 12.50");
        assert_eq!(cmds[2], "PFADD card:0000009:2:merchants m:0004");
        assert_eq!(cmds[3], "PFADD card:0000009:2:ips 10.0.0.5");
        assert_eq!(cmds[4], "EXPIRE card:0000009:2 600");
        assert_eq!(cmds[6], "EXPIRE card:0000009:2:ips 600");
        assert_eq!(cmds[9], "PFADD acct:0000002:2:cards card:0000009");
        assert_eq!(cmds[11], "EXPIRE acct:0000002:2:cards 600");
        assert_eq!(cmds[12], "HINCRBY dev:000003:2 txns 1");
        assert_eq!(cmds[16], "EXPIRE dev:000003:2:cards 600");
        // Replies: the batch completes only with its 34th reply; partial input is kept.
        let mut replies = Vec::new();
        for i in 0..2 * REDIS_CMDS_PER_EVENT {
            replies.extend_from_slice(if i == 3 { b"-ERR x\r\n" } else { b":1\r\n" });
        }
        replies.extend_from_slice(b":1\r\n"); // first reply of a later batch
        let cut = 50;
        assert_eq!(c.decode(&replies[..cut]).unwrap(), None);
        let (n, d) = c.decode(&replies).unwrap().unwrap();
        assert_eq!(n, replies.len() - 4);
        assert_eq!(
            d,
            Decoded {
                id: None,
                ok: false
            }
        );
        assert!(c.decode(b"").unwrap().is_none());
        assert!(c.decode(b":1\r\n").is_err());
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

    #[test]
    fn parses_vm_rss() {
        let s = "Name:\ttarnd\nVmHWM:\t  9999 kB\nVmRSS:\t   12345 kB\nThreads: 3\n";
        assert_eq!(parse_vm_rss(s), Some(12345));
        assert_eq!(parse_vm_rss("Name: x\n"), None);
        assert!(vm_rss_kib(std::process::id()).unwrap() > 0);
    }
}
