//! Wire fuzzer against a real tarnd (issue 7, point 6). Mutated frames of every opcode from
//! several connections at once, slowloris and reset connections, a client that never reads its
//! replies and a connection flood past the per-shard limit, while a canary connection must keep
//! getting correct answers. Oracles: the server never dies, every reply parses and answers a
//! request that was sent (as a model of the server's framing predicts, see `fuzz::Shadow`), no
//! connection hangs, memory stays under a derived bound, all connections are released, SIGTERM
//! exits 0 and the data directory restarts with the same contents.
//!
//! `TARN_FUZZ_SECS` (default 20), `TARN_FUZZ_SEED` (default: from the clock, printed); the rest
//! is in docs/FUZZING.md.

mod common;
#[path = "common/fuzz.rs"]
mod fuzz;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tarn::server::limits::{MAX_PENDING_REPLY_BYTES, READ_CHUNK_BYTES};
use tarn_net::limits::{
    MAX_CONNECTIONS_PER_SHARD, MAX_FRAME_PAYLOAD_BYTES, MAX_IN_FLIGHT_PER_CONNECTION,
};
use tarn_net::{FeaturesRequest, HEADER_LEN};

use common::*;
use fuzz::*;

const SHARDS: u32 = 2;
/// A connection with outstanding requests and no reply (nor any byte written) for this long is
/// hung. Generous: HISTORY replays a shard's log, DDL fsyncs the catalog, CI machines are slow.
const HANG: Duration = Duration::from_secs(60);
/// The never-reading client's replies must start flowing again within this once it reads.
const DRAIN_STALL: Duration = Duration::from_secs(15);
/// Requests the never-reading client sends per cycle: first GETs of a 256 KiB row (about
/// 47 KB of requests: one read of the server, 300 MiB of replies), then small PINGs (36 KB
/// more, so the server has requests left to read once it has stopped reading).
const NEVER_GETS: usize = 1200;
const NEVER_REQUESTS: usize = NEVER_GETS + 1000;
/// Unanswered request bytes a mutator keeps outstanding at most (like the Rust client).
const MUTATOR_UNANSWERED: usize = 4 << 20;
/// Largest seed frame the slowloris connections trickle.
const SLOW_MAX_FRAME: usize = 4096;
/// Connections the flood opens: past both shards' limits.
const FLOOD_TARGET: usize = 2 * MAX_CONNECTIONS_PER_SHARD as usize + 64;
/// Whether the never-reading client runs unless `TARN_FUZZ_NEVER_READER` says otherwise
/// (`TARN_FUZZ_NEVER_READER=0` runs everything else, for bisecting old builds).
const NEVER_READER_DEFAULT: bool = true;
/// Whether frames that triggered a (now fixed) server bug (`fuzz::known_bug`) are left out
/// unless `TARN_FUZZ_SUPPRESS` says otherwise: off, every frame is sent.
const SUPPRESS_KNOWN_BUGS_DEFAULT: bool = false;
/// RSS at which the sampler kills the server to protect the machine (a failed bound).
const RSS_SAFETY_CAP: u64 = 3 << 30;

// -------------------------------------------------------------------------------------------
// Configuration and shared state

struct Config {
    secs: u64,
    seed: u64,
    mutators: usize,
    slow: usize,
    never_reader: bool,
    flood: bool,
    /// Leave out frames that trigger a known server bug (`fuzz::known_bug`).
    suppress: bool,
    canary_deadline: Duration,
}

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    let v = v.trim();
    match v.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => v.parse().ok(),
    }
}

impl Config {
    fn from_env() -> Config {
        let seed = env_u64("TARN_FUZZ_SEED").unwrap_or_else(|| mix(now_us() as u64));
        Config {
            secs: env_u64("TARN_FUZZ_SECS").unwrap_or(20).max(5),
            seed,
            mutators: env_u64("TARN_FUZZ_MUTATORS").unwrap_or(4) as usize,
            slow: env_u64("TARN_FUZZ_SLOW").unwrap_or(8) as usize,
            never_reader: env_u64("TARN_FUZZ_NEVER_READER")
                .map_or(NEVER_READER_DEFAULT, |v| v != 0),
            flood: env_u64("TARN_FUZZ_FLOOD") != Some(0),
            suppress: env_u64("TARN_FUZZ_SUPPRESS").map_or(SUPPRESS_KNOWN_BUGS_DEFAULT, |v| v != 0),
            canary_deadline: Duration::from_millis(
                env_u64("TARN_FUZZ_CANARY_DEADLINE_MS").unwrap_or(5000),
            ),
        }
    }

    fn cycle(&self) -> f64 {
        (self.secs as f64).min(60.0)
    }

    fn reproduce(&self) -> String {
        format!(
            "TARN_FUZZ_SEED={:#018x} TARN_FUZZ_SECS={} cargo test{} --test wire_fuzz -- --nocapture",
            self.seed,
            self.secs,
            if cfg!(debug_assertions) { "" } else { " --release" }
        )
    }
}

type Tally = BTreeMap<String, u64>;

fn bump(t: &mut Tally, k: impl Into<String>) {
    *t.entry(k.into()).or_insert(0) += 1;
}

fn add(t: &mut Tally, k: impl Into<String>, n: u64) {
    *t.entry(k.into()).or_insert(0) += n;
}

struct Shared {
    cfg: Config,
    addr: SocketAddr,
    start: Instant,
    /// No new fuzz traffic after this; connections finish and close.
    deadline: Instant,
    stop: AtomicBool,
    /// Mutators start no new frames (the never-reader measures its own memory meanwhile).
    quiet: AtomicBool,
    tally: Mutex<Tally>,
    violations: Mutex<Vec<String>>,
    acked_rows: AtomicU64,
    acked_events: AtomicU64,
    rss: AtomicU64,
    rss_max: AtomicU64,
}

impl Shared {
    fn running(&self) -> bool {
        !self.stop.load(Ordering::Relaxed) && Instant::now() < self.deadline
    }

    fn t(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    /// The moment `frac` of the way through cycle `cycle` (cycles of `Config::cycle` s).
    fn cycle_at(&self, frac: f64, cycle: u64) -> Instant {
        self.start + Duration::from_secs_f64(self.cfg.cycle() * (cycle as f64 + frac))
    }

    fn merge(&self, t: &mut Tally) {
        let mut g = self.tally.lock().unwrap();
        for (k, v) in std::mem::take(t) {
            *g.entry(k).or_insert(0) += v;
        }
    }

    fn violation(&self, who: &str, msg: impl AsRef<str>) {
        let line = format!("[t={:.1}s] {who}: {}", self.t(), msg.as_ref());
        eprintln!("wire_fuzz VIOLATION {line}");
        let mut v = self.violations.lock().unwrap();
        if v.len() < 100 {
            v.push(line);
        }
        if v.len() == 40 {
            // Something is badly broken; more traffic only adds noise.
            eprintln!("wire_fuzz: 40 violations: stopping the traffic early");
            self.stop.store(true, Ordering::Relaxed);
        }
    }

    fn sleep_until(&self, t: Instant) -> bool {
        while Instant::now() < t {
            if self.stop.load(Ordering::Relaxed) {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        !self.stop.load(Ordering::Relaxed)
    }
}

// -------------------------------------------------------------------------------------------
// A fuzzed connection: the wire, the model of the server's side, and the oracles

struct FuzzConn<'a> {
    sh: &'a Shared,
    label: String,
    wire: Wire,
    model: Shadow,
    recent: Recent,
    tally: Tally,
    next_id: u64,
    last_progress: Instant,
    rejected: bool,
    failed: bool,
    /// Bytes sent since the connection last had nothing outstanding.
    unanswered: usize,
    /// Request ids of the replies in arrival order, when wanted.
    order: Option<Vec<u64>>,
}

impl<'a> FuzzConn<'a> {
    fn open(sh: &'a Shared, label: String, kind: &str) -> Option<FuzzConn<'a>> {
        match Wire::connect(sh.addr) {
            Ok(wire) => {
                let mut tally = Tally::new();
                bump(&mut tally, format!("connections opened: {kind}"));
                let mut model = Shadow::new(SHARDS);
                model.tolerate_scan_enoent = sh.cfg.suppress;
                Some(FuzzConn {
                    sh,
                    label,
                    wire,
                    model,
                    recent: Recent::default(),
                    tally,
                    next_id: 1,
                    last_progress: Instant::now(),
                    rejected: false,
                    failed: false,
                    unanswered: 0,
                    order: None,
                })
            }
            Err(e) => {
                let mut t = Tally::new();
                bump(&mut t, format!("connect failed ({})", e.kind()));
                sh.merge(&mut t);
                None
            }
        }
    }

    fn id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    fn fail(&mut self, msg: impl AsRef<str>) {
        if !self.failed {
            self.failed = true;
            self.sh.violation(
                &self.label,
                format!(
                    "{}\n  outstanding: {}\n  last frames sent (hex, first 256 bytes each):\n{}",
                    msg.as_ref(),
                    self.model.outstanding(),
                    self.recent.dump()
                ),
            );
        }
    }

    /// Queues bytes for the server (and feeds the model in the same order).
    fn send(&mut self, bytes: &[u8]) {
        if self.model.closing.is_some() {
            return;
        }
        self.model.feed(bytes);
        self.wire.queue(bytes);
        self.recent.push(bytes);
        self.unanswered += bytes.len();
    }

    /// `HANG`, or 5 s once the run was stopped early (the server is known to be broken).
    fn hang_limit(&self) -> Duration {
        if self.sh.stop.load(Ordering::Relaxed) {
            Duration::from_secs(5)
        } else {
            HANG
        }
    }

    fn usable(&self) -> bool {
        !self.failed && !self.rejected && self.wire.peer == PeerState::Open
    }

    /// One round of I/O and checks. False once the connection is over (closed, failed).
    fn pump(&mut self, wait: Duration, read: bool) -> bool {
        if self.failed {
            return false;
        }
        let written = self.wire.written;
        let replies = match self.wire.step(wait, read, 256 * 1024) {
            Ok(r) => r,
            Err(msg) => {
                self.fail(msg);
                return false;
            }
        };
        if !replies.is_empty() || self.wire.written != written {
            self.last_progress = Instant::now();
        }
        for r in replies {
            bump(
                &mut self.tally,
                format!("reply {}", reply_category(&r.response)),
            );
            if let Some(o) = self.order.as_mut() {
                o.push(r.header.request_id);
            }
            match self.model.answer(r.header.request_id, r.response) {
                Ok(true) => {
                    self.rejected = true;
                    bump(&mut self.tally, "connections rejected (id 0 error)");
                    self.model.forget();
                }
                Ok(false) => {}
                Err(msg) => {
                    self.fail(msg);
                    return false;
                }
            }
        }
        if self.model.open == 0 {
            self.unanswered = 0;
        }
        match self.wire.peer {
            PeerState::Open => {}
            PeerState::Eof => {
                if self.wire.partial_reply() > 0 {
                    self.fail(format!(
                        "server closed in the middle of a reply frame ({} bytes received)",
                        self.wire.partial_reply()
                    ));
                } else if !(self.model.closing.is_some() || self.rejected || self.wire.write_closed)
                {
                    self.fail(
                        "server closed the connection (FIN) although no closing error was due",
                    );
                } else if self.model.open > 0 && !self.rejected {
                    self.fail(format!(
                        "server closed the connection with {} request(s) unanswered",
                        self.model.open
                    ));
                }
                return false;
            }
            PeerState::Reset => {
                if self.model.closing.is_some() || self.rejected {
                    // The server closes with unread input: the kernel resets, replies in
                    // flight may be lost. Legitimate TCP behaviour after a closing error.
                    bump(&mut self.tally, "server reset after a closing error");
                    if self.model.closing_unanswered() {
                        bump(&mut self.tally, "closing error reply lost to that reset");
                    }
                } else {
                    self.fail("connection reset by the server although no closing error was due");
                }
                return false;
            }
        }
        let hang = self.hang_limit();
        if (self.model.open > 0 || self.wire.unsent() > 0) && self.last_progress.elapsed() > hang {
            self.fail(format!(
                "hang: no reply and no byte written for {hang:?} with {} request(s) outstanding and {} bytes unsent",
                self.model.open,
                self.wire.unsent()
            ));
            return false;
        }
        true
    }

    /// Writes everything queued, half-closes, and reads every reply until the server closes.
    fn finish_graceful(mut self) {
        while self.wire.unsent() > 0 && self.pump(Duration::from_millis(5), true) {}
        if self.usable() {
            self.wire.close_write();
            let t = Instant::now();
            while self.pump(Duration::from_millis(10), true) {
                let hang = self.hang_limit();
                if t.elapsed() > hang {
                    self.fail(format!(
                        "the server did not close the connection within {hang:?} of the client's FIN"
                    ));
                    break;
                }
            }
        }
        bump(&mut self.tally, "connections closed: FIN");
        self.done();
    }

    fn finish_reset(mut self) {
        bump(&mut self.tally, "connections closed: RST");
        let sh = self.sh;
        let mut tally = std::mem::take(&mut self.tally);
        self.absorb(&mut tally);
        sh.merge(&mut tally);
        self.wire.reset();
    }

    fn absorb(&self, t: &mut Tally) {
        for (k, v) in &self.model.seen {
            add(t, format!("server saw: {k}"), *v);
        }
        for (k, v) in &self.model.known {
            add(t, format!("known bug met (tolerated): {k}"), *v);
        }
        self.sh
            .acked_rows
            .fetch_add(self.model.acked_rows, Ordering::Relaxed);
        self.sh
            .acked_events
            .fetch_add(self.model.acked_events, Ordering::Relaxed);
    }

    fn done(mut self) {
        let mut tally = std::mem::take(&mut self.tally);
        self.absorb(&mut tally);
        self.sh.merge(&mut tally);
    }
}

// -------------------------------------------------------------------------------------------
// Mutators: pipelined mutated traffic, reading replies

struct Corpus {
    seeds: Vec<Seed>,
    picker: Picker,
    built: Instant,
    producer: u64,
    suppress: bool,
}

impl Corpus {
    fn new(producer: u64, suppress: bool) -> Corpus {
        let seeds = corpus(now_us(), producer, suppress);
        Corpus {
            picker: Picker::new(&seeds),
            seeds,
            built: Instant::now(),
            producer,
            suppress,
        }
    }

    /// Timestamps in the seeds follow the clock (events must not get too old or future).
    fn refresh(&mut self) {
        if self.built.elapsed() > Duration::from_secs(20) {
            *self = Corpus::new(self.producer, self.suppress);
        }
    }

    /// Whether `f` may be sent: not touching a protected object, not a suppressed known bug.
    fn allowed(&self, f: &[u8], tally: &mut Tally) -> bool {
        if dangerous(f) {
            bump(tally, "frames filtered (would touch a protected object)");
            return false;
        }
        if self.suppress {
            if let Some(bug) = known_bug(f) {
                bump(tally, format!("frames suppressed (known bug: {bug})"));
                return false;
            }
        }
        true
    }

    fn pick(&self, rng: &mut StdRng) -> &Seed {
        &self.seeds[self.picker.pick(rng)]
    }

    fn costly(s: &Seed) -> bool {
        s.kind == "HISTORY" || s.name.contains("as_of past")
    }
}

/// One frame for the traffic: a seed with the next request id, mutated with probability `p`.
fn next_frame(c: &mut FuzzConn, rng: &mut StdRng, corpus: &Corpus, p: f64) -> Vec<u8> {
    for _ in 0..8 {
        let s = corpus.pick(rng);
        if Corpus::costly(s) && c.model.costly >= 2 {
            continue;
        }
        let mut f = s.frame.clone();
        let id = c.id();
        set_request_id(&mut f, id);
        bump(&mut c.tally, format!("frames from seeds: {}", s.kind));
        if rng.random_bool(p) {
            let n = 1 + (rng.random_range(0..8u32)).trailing_zeros().min(3) as usize;
            let other = corpus.pick(rng).frame.clone();
            for _ in 0..n {
                let m = mutate(rng, &mut f, &other, id.saturating_sub(1));
                bump(&mut c.tally, format!("mutation: {m}"));
            }
            bump(&mut c.tally, "frames mutated");
        } else {
            bump(&mut c.tally, "frames valid");
        }
        if !corpus.allowed(&f, &mut c.tally) {
            continue;
        }
        return f;
    }
    let mut f = Vec::new();
    tarn_net::encode_request(c.id(), &Request::Ping(b"fallback".to_vec()), &mut f);
    f
}

/// Starts a connection with one of the classic openings (a valid HELLO most of the time);
/// returns its name.
fn opening(c: &mut FuzzConn, rng: &mut StdRng, corpus: &Corpus) -> &'static str {
    let hello = |c: &mut FuzzConn| {
        let id = c.id();
        hello_frame(id)
    };
    let x = rng.random_range(0..100);
    let name = match x {
        0..=69 => {
            let f = hello(c);
            c.send(&f);
            "HELLO"
        }
        70..=72 => {
            let mut f = corpus.pick(rng).frame.clone();
            set_request_id(&mut f, c.id());
            c.send(&f);
            "no HELLO (a request first)"
        }
        73..=75 => {
            let n = rng.random_range(1..=64);
            let junk: Vec<u8> = (0..n).map(|_| rng.random()).collect();
            c.send(&junk);
            let f = hello(c);
            c.send(&f);
            "garbage before HELLO"
        }
        76..=78 => {
            let f = hello(c);
            c.send(&f);
            let f = hello(c);
            c.send(&f);
            "HELLO twice"
        }
        79..=81 => {
            let f = hello(c);
            c.send(&f);
            let id = c.id();
            c.send(&raw_frame(MAX_FRAME_PAYLOAD_BYTES + 1, 4, id, b"xx"));
            "oversize header after HELLO"
        }
        82..=84 => {
            let id = c.id();
            c.send(&raw_frame(u32::MAX, 1, id, b""));
            "oversize header first"
        }
        85..=87 => {
            let f = hello(c);
            c.send(&f);
            for op in [1u16, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0xff] {
                let id = c.id();
                c.send(&raw_frame(0, op, id, b""));
            }
            "zero-length payloads after HELLO"
        }
        88..=89 => {
            let mut f = Vec::new();
            let id = c.id();
            tarn_net::encode_request(id, &hello_req(2, 9, "future", ""), &mut f);
            c.send(&f);
            "unsupported version"
        }
        90..=91 => {
            let mut f = hello(c);
            f[6] = 1;
            c.send(&f);
            "HELLO with the RESPONSE flag"
        }
        92..=93 => {
            let id = c.id();
            c.send(&raw_frame(3, 0x77, id, b"abc"));
            "unknown opcode first"
        }
        94..=95 => {
            let f = hello(c);
            let cut = rng.random_range(1..f.len());
            c.send(&f[..cut]);
            "truncated HELLO"
        }
        96..=97 => "nothing sent",
        _ => {
            let mut f = hello(c);
            let other = corpus.pick(rng).frame.clone();
            let m = mutate(rng, &mut f, &other, 0);
            bump(&mut c.tally, format!("mutation: {m}"));
            c.send(&f);
            "mutated HELLO"
        }
    };
    bump(&mut c.tally, format!("openings: {name}"));
    name
}

fn mutator(sh: &Shared, idx: usize) {
    let wseed = mix(sh.cfg.seed ^ ((idx as u64 + 1) << 40));
    let mut corpus = Corpus::new(0x1000 * (idx as u64 + 1), sh.cfg.suppress);
    let mut n = 0u64;
    while sh.running() {
        if sh.quiet.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(50));
            continue;
        }
        n += 1;
        corpus.refresh();
        let cseed = mix(wseed.wrapping_add(n));
        mutator_conn(sh, &format!("mutator {idx} conn #{n}"), cseed, &corpus);
    }
}

/// One mutator connection, fully determined by `cseed` (and the corpus' timestamps).
fn mutator_conn(sh: &Shared, who: &str, cseed: u64, corpus: &Corpus) {
    let mut rng = StdRng::seed_from_u64(cseed);
    let label = format!("{who} (conn seed {cseed:#018x})");
    let Some(mut c) = FuzzConn::open(sh, label, "mutator") else {
        std::thread::sleep(Duration::from_millis(50));
        return;
    };
    let opened = opening(&mut c, &mut rng, corpus);
    if opened == "nothing sent" {
        if rng.random_bool(0.5) {
            c.finish_reset();
        } else {
            c.finish_graceful();
        }
        return;
    }
    let frames = 1usize << rng.random_range(0..10);
    let frames = rng.random_range(1..=frames);
    let window = match rng.random_range(0..10) {
        0 => MAX_IN_FLIGHT_PER_CONNECTION as usize + 50,
        1..=3 => 1,
        _ => rng.random_range(2..=128),
    };
    let p = rng.random_range(0.0..0.9);
    let mut sent = 0;
    while sent < frames && sh.running() && !sh.quiet.load(Ordering::Relaxed) {
        if !c.usable() || c.model.closing.is_some() {
            break;
        }
        if c.model.open < window && c.wire.unsent() < 1 << 20 && c.unanswered < MUTATOR_UNANSWERED {
            let burst = if rng.random_bool(0.05) {
                rng.random_range(2..=200)
            } else {
                1
            };
            let mut bytes = Vec::new();
            for _ in 0..burst {
                bytes.extend(next_frame(&mut c, &mut rng, corpus, p));
            }
            if burst > 1 {
                bump(&mut c.tally, "bursts (frames concatenated in one write)");
            }
            c.send(&bytes);
            sent += burst;
            let missing = c.model.missing();
            if missing > 256 * 1024 {
                // The server waits for a big announced payload: complete it sometimes (its
                // bytes are random), else end the connection.
                if missing <= 8 << 20 && rng.random_bool(0.1) {
                    let pad: Vec<u8> = (0..missing).map(|_| rng.random()).collect();
                    c.send(&pad);
                    bump(&mut c.tally, "big announced payloads completed");
                } else {
                    bump(&mut c.tally, "big announced payloads abandoned");
                    break;
                }
            }
            if !c.pump(Duration::ZERO, true) {
                break;
            }
        } else if !c.pump(Duration::from_millis(10), true) {
            break;
        }
    }
    if !c.usable() {
        c.done();
        return;
    }
    match rng.random_range(0..10) {
        0..=7 => c.finish_graceful(),
        8 => {
            // Reset mid-frame.
            let mut f = corpus.pick(&mut rng).frame.clone();
            set_request_id(&mut f, 1);
            let cut = rng.random_range(1..f.len());
            c.send(&f[..cut]);
            let _ = c.pump(Duration::from_millis(5), true);
            c.finish_reset();
        }
        _ => c.finish_reset(),
    }
}

// -------------------------------------------------------------------------------------------
// Slowloris: a few bytes at a time with pauses, partial headers and payloads

struct Slow<'a> {
    conn: FuzzConn<'a>,
    script: Vec<u8>,
    pos: usize,
    next: Instant,
    rng: StdRng,
    reset_at_end: bool,
}

fn slow_script(rng: &mut StdRng, corpus: &Corpus) -> (Vec<u8>, bool) {
    let mut script = hello_frame(1);
    let mut id = 2;
    for _ in 0..rng.random_range(1..=6) {
        let s = loop {
            let s = corpus.pick(rng);
            if s.frame.len() <= SLOW_MAX_FRAME && !Corpus::costly(s) {
                break s;
            }
        };
        let mut f = s.frame.clone();
        set_request_id(&mut f, id);
        id += 1;
        if f.len() > HEADER_LEN && rng.random_bool(0.3) {
            // Payload bytes only: the server's buffer stays at one read chunk.
            let p = rng.random_range(HEADER_LEN..f.len());
            f[p] = rng.random();
        }
        if corpus.allowed(&f, &mut Tally::new()) {
            script.extend(f);
        }
    }
    let reset = rng.random_bool(0.25);
    if reset {
        // End in the middle of a frame, then reset.
        let mut f = corpus.seeds[0].frame.clone();
        set_request_id(&mut f, id);
        let cut = rng.random_range(1..f.len());
        script.extend_from_slice(&f[..cut]);
    }
    (script, reset)
}

fn slowloris(sh: &Shared) {
    let corpus = Corpus::new(0x9000, sh.cfg.suppress);
    let mut rng = StdRng::seed_from_u64(mix(sh.cfg.seed ^ 0x51_0000_0000));
    let mut conns: Vec<Slow> = Vec::new();
    let mut n = 0u64;
    while sh.running() {
        while conns.len() < sh.cfg.slow && sh.running() {
            n += 1;
            let cseed = rng.random();
            let mut crng = StdRng::seed_from_u64(cseed);
            let label = format!("slowloris conn #{n} (conn seed {cseed:#018x})");
            let Some(conn) = FuzzConn::open(sh, label, "slowloris") else {
                std::thread::sleep(Duration::from_millis(100));
                break;
            };
            let (script, reset_at_end) = slow_script(&mut crng, &corpus);
            conns.push(Slow {
                conn,
                script,
                pos: 0,
                next: Instant::now(),
                rng: crng,
                reset_at_end,
            });
        }
        let now = Instant::now();
        let mut i = 0;
        while i < conns.len() {
            let s = &mut conns[i];
            let mut over = !s.conn.pump(Duration::ZERO, true);
            if !over && s.pos < s.script.len() && now >= s.next {
                let k = s.rng.random_range(1..=3).min(s.script.len() - s.pos);
                let chunk = s.script[s.pos..s.pos + k].to_vec();
                s.conn.send(&chunk);
                bump(&mut s.conn.tally, "slowloris bytes");
                s.pos += k;
                let pause = if s.rng.random_bool(0.02) {
                    s.rng.random_range(1000..3000)
                } else {
                    s.rng.random_range(5..300)
                };
                s.next = now + Duration::from_millis(pause);
            }
            if !over && s.pos == s.script.len() && (s.conn.model.open == 0 || s.reset_at_end) {
                over = true;
            }
            if over {
                let s = conns.swap_remove(i);
                if !s.conn.usable() {
                    s.conn.done();
                } else if s.reset_at_end {
                    s.conn.finish_reset();
                } else {
                    s.conn.finish_graceful();
                }
            } else {
                i += 1;
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    for s in conns {
        if s.conn.usable() {
            s.conn.finish_graceful();
        } else {
            s.conn.done();
        }
    }
}

// -------------------------------------------------------------------------------------------
// Abrupt resets (SO_LINGER 0) at every moment of a connection's life

fn resetter(sh: &Shared) {
    let corpus = Corpus::new(0xa000, sh.cfg.suppress);
    let mut rng = StdRng::seed_from_u64(mix(sh.cfg.seed ^ 0x2e_0000_0000));
    let mut n = 0u64;
    while sh.running() {
        n += 1;
        let Some(mut c) = FuzzConn::open(sh, format!("resetter conn #{n}"), "reset") else {
            std::thread::sleep(Duration::from_millis(100));
            continue;
        };
        let what = rng.random_range(0..5);
        if what > 0 {
            let f = hello_frame(c.id());
            c.send(&f);
        }
        match what {
            0 | 1 => {}
            2 => {
                // Requests in flight (writes wait for fdatasync) when the reset comes.
                for _ in 0..rng.random_range(1..50) {
                    let s = corpus.pick(&mut rng);
                    if s.frame.len() < 64 * 1024 {
                        let mut f = s.frame.clone();
                        set_request_id(&mut f, c.id());
                        if corpus.allowed(&f, &mut c.tally) {
                            c.send(&f);
                        }
                    }
                }
            }
            3 => {
                // The writer busy with big replies.
                for _ in 0..20 {
                    let mut f = Vec::new();
                    tarn_net::encode_request(c.id(), &Request::Ping(vec![3; 64 * 1024]), &mut f);
                    c.send(&f);
                }
            }
            _ => {
                // Mid-frame: a header and part of a payload.
                let mut f = corpus.pick(&mut rng).frame.clone();
                set_request_id(&mut f, c.id());
                let cut = rng.random_range(1..f.len().max(2));
                c.send(&f[..cut.min(f.len())]);
            }
        }
        let until = Instant::now() + Duration::from_millis(rng.random_range(0..30));
        while Instant::now() < until && c.pump(Duration::from_millis(2), true) {}
        bump(&mut c.tally, format!("resets at stage {what}"));
        c.finish_reset();
        std::thread::sleep(Duration::from_millis(rng.random_range(5..40)));
    }
}

// -------------------------------------------------------------------------------------------
// The client that never reads its replies

struct BigKeys {
    keys: [i64; 2],
}

/// One never-reading connection per cycle: fills, waits, then reads everything and must get
/// every reply and then a PONG. Memory growth while it is not read is measured in a quiet
/// window (mutators paused) and must stay within what the pending-reply limit allows.
fn never_reader(sh: &Shared, big: &BigKeys, growths: &Mutex<Vec<u64>>) {
    const WHO: &str = "never-reading client [back-pressure]";
    let mut cycle = 0u64;
    loop {
        if !sh.sleep_until(sh.cycle_at(0.08, cycle)) || !sh.running() {
            return;
        }
        sh.quiet.store(true, Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(700));
        let before = sh.rss.load(Ordering::Relaxed);
        let Some(mut c) = FuzzConn::open(sh, format!("{WHO} cycle {cycle}"), "never-reader") else {
            sh.quiet.store(false, Ordering::Relaxed);
            sh.violation(WHO, "could not connect");
            return;
        };
        let key = match probe_local_key(&mut c, big) {
            Ok(k) => k,
            Err(e) => {
                sh.quiet.store(false, Ordering::Relaxed);
                c.fail(e);
                c.finish_reset();
                return;
            }
        };
        let fill_end = sh.cycle_at(0.45, cycle);
        let mut sent = 0usize;
        let mut stalled_at = None;
        let mut peak = before;
        let mut last_write = Instant::now();
        let fill_start = Instant::now();
        while Instant::now() < fill_end && !sh.stop.load(Ordering::Relaxed) {
            if sent < NEVER_REQUESTS && c.wire.unsent() < 64 * 1024 {
                let mut f = Vec::new();
                let id = c.id();
                let req = if sent >= NEVER_GETS {
                    Request::Ping(vec![9; 16])
                } else {
                    Request::Get(KeysRequest {
                        table: T_BIG.into(),
                        keys: vec![Value::Int(key)],
                    })
                };
                tarn_net::encode_request(id, &req, &mut f);
                c.send(&f);
                sent += 1;
                continue;
            }
            let w = c.wire.written;
            if !c.pump(Duration::from_millis(10), false) {
                break;
            }
            if c.wire.written != w {
                last_write = Instant::now();
            }
            peak = peak.max(sh.rss.load(Ordering::Relaxed));
            if stalled_at.is_none()
                && (c.wire.unsent() == 0 && sent == NEVER_REQUESTS
                    || last_write.elapsed() > Duration::from_secs(2))
            {
                stalled_at = Some(fill_start.elapsed());
                // Let the server settle, then end the quiet window.
                std::thread::sleep(Duration::from_millis(1500));
                peak = peak.max(sh.rss.load(Ordering::Relaxed));
                sh.quiet.store(false, Ordering::Relaxed);
            }
        }
        sh.quiet.store(false, Ordering::Relaxed);
        let growth = peak.saturating_sub(before);
        growths.lock().unwrap().push(growth);
        add(&mut c.tally, "never-reader requests sent", sent as u64);
        add(&mut c.tally, "never-reader bytes sent", c.wire.written);
        eprintln!(
            "wire_fuzz: never-reader cycle {cycle}: {sent} requests, {} bytes written, {} unsent, stopped writing after {:?}; server RSS {:.1} -> {:.1} MiB (+{:.1})",
            c.wire.written,
            c.wire.unsent(),
            stalled_at,
            mib(before),
            mib(peak),
            mib(growth)
        );
        let allowed = never_reader_bound();
        if growth > allowed + (32 << 20) {
            sh.violation(
                WHO,
                format!(
                    "server RSS grew by {:.1} MiB while a client did not read the replies of {NEVER_GETS} inline GETs of a 256 KiB row; the pending-reply limit allows {:.1} MiB (+32 MiB noise): 3 x MAX_PENDING_REPLY_BYTES (queue while it grows, writer's buffer) + one frame",
                    mib(growth),
                    mib(allowed)
                ),
            );
        }
        // Now read: every request must be answered, then a PING.
        let mut last = Instant::now();
        let mut got_before = c.model.open;
        while c.model.open > 0 || c.wire.unsent() > 0 {
            if !c.pump(Duration::from_millis(10), true) {
                break;
            }
            if c.model.open != got_before {
                got_before = c.model.open;
                last = Instant::now();
            }
            if last.elapsed() > DRAIN_STALL {
                c.fail(format!(
                    "after the client started reading, {} of {} requests stayed unanswered for {DRAIN_STALL:?} (the server stopped reading the connection and never resumed)",
                    c.model.open,
                    sent + 1
                ));
                break;
            }
        }
        if c.usable() {
            let mut f = Vec::new();
            let id = c.id();
            tarn_net::encode_request(id, &Request::Ping(b"after".to_vec()), &mut f);
            c.send(&f);
            let t = Instant::now();
            while c.model.open > 0 && t.elapsed() < Duration::from_secs(10) {
                if !c.pump(Duration::from_millis(10), true) {
                    break;
                }
            }
            if c.model.open > 0 {
                c.fail("no PONG within 10 s after the replies were read");
            }
        }
        if c.usable() {
            c.finish_graceful();
        } else {
            c.finish_reset();
        }
        cycle += 1;
    }
}

/// HELLO, then finds which big row the accepting shard owns: a GET answered inline is
/// queued before the PING that follows it; one that goes to the other shard runs as a task
/// and is answered after it. The never-reader then GETs only that key, so every reply is
/// answered inline (none waits in flight) and only the pending-reply limit bounds them.
fn probe_local_key(c: &mut FuzzConn, big: &BigKeys) -> Result<i64, String> {
    let f = hello_frame(c.id());
    c.send(&f);
    let mut ids = Vec::new();
    for k in big.keys {
        for req in [
            Request::Get(KeysRequest {
                table: T_BIG.into(),
                keys: vec![Value::Int(k)],
            }),
            Request::Ping(b"probe".to_vec()),
        ] {
            let mut f = Vec::new();
            let id = c.id();
            tarn_net::encode_request(id, &req, &mut f);
            ids.push(id);
            c.send(&f);
        }
    }
    c.order = Some(Vec::new());
    let t = Instant::now();
    while c.model.open > 0 && t.elapsed() < Duration::from_secs(30) {
        if !c.pump(Duration::from_millis(10), true) {
            return Err("the connection ended during the probe".into());
        }
    }
    let order = c.order.take().unwrap_or_default();
    let pos = |id: u64| order.iter().position(|&x| x == id);
    let local: Vec<i64> = big
        .keys
        .iter()
        .enumerate()
        .filter(|(i, _)| pos(ids[2 * i]) < pos(ids[2 * i + 1]))
        .map(|(_, k)| *k)
        .collect();
    match local[..] {
        [k] => Ok(k),
        _ => Err(format!(
            "probe: cannot tell which shard accepted the connection (reply order {order:?} for requests {ids:?})"
        )),
    }
}

/// What one never-reading connection may make the server hold: the replies queued (up to
/// the limit, x 1.5 while the queue grows by reallocation: old and new buffer), those the
/// writer is writing (up to the limit again), one frame of overshoot. Its GETs are all
/// answered inline, so none waits in flight.
fn never_reader_bound() -> u64 {
    (3 * MAX_PENDING_REPLY_BYTES + HEADER_LEN + MAX_FRAME_PAYLOAD_BYTES as usize) as u64
}

// -------------------------------------------------------------------------------------------
// Connection flood past MAX_CONNECTIONS_PER_SHARD

fn flood(sh: &Shared, budget: usize) {
    const WHO: &str = "flood";
    let target = FLOOD_TARGET.min(budget);
    let mut cycle = 0u64;
    loop {
        if !sh.sleep_until(sh.cycle_at(0.55, cycle)) || !sh.running() {
            return;
        }
        let mut t = Tally::new();
        let mut stats_conn = Conn::connect(sh.addr).ok();
        let started = Instant::now();
        let mut socks = Vec::with_capacity(target);
        for _ in 0..target {
            if !sh.running() {
                break;
            }
            match Wire::connect(sh.addr) {
                Ok(w) => socks.push((w, Shadow::new(SHARDS), 0u8)),
                Err(e) => bump(&mut t, format!("flood connect failed ({})", e.kind())),
            }
        }
        let opened = socks.len();
        // Give the shards time to accept (and reject) before anything is sent: a rejected
        // connection then closes cleanly instead of with a reset over an unread HELLO.
        std::thread::sleep(Duration::from_millis(300));
        // state: 0 = pending, 1 = accepted, 2 = rejected, 3 = closed without any reply
        let check = |w: &mut Wire, m: &mut Shadow, st: &mut u8, who: &str| -> Option<String> {
            let replies = match w.step(Duration::ZERO, true, 1 << 16) {
                Ok(r) => r,
                Err(e) => return Some(e),
            };
            for r in replies {
                match m.answer(r.header.request_id, r.response) {
                    Ok(true) => *st = 2,
                    Ok(false) => *st = 1,
                    Err(e) => return Some(format!("{who}: {e}")),
                }
            }
            if *st == 0 && w.peer != PeerState::Open {
                *st = 3;
            }
            None
        };
        for (w, m, st) in socks.iter_mut() {
            if let Some(e) = check(w, m, st, "before HELLO") {
                sh.violation(WHO, e);
            }
            if *st == 0 {
                m.feed(&hello_frame(1));
                w.queue(&hello_frame(1));
            }
        }
        let until = Instant::now() + Duration::from_secs(30);
        while socks.iter().any(|s| s.2 == 0) && Instant::now() < until {
            for (w, m, st) in socks.iter_mut().filter(|s| s.2 == 0) {
                if let Some(e) = check(w, m, st, "after HELLO") {
                    sh.violation(WHO, e);
                    *st = 3;
                }
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let count = |k: u8| socks.iter().filter(|s| s.2 == k).count();
        let (accepted, rejected, silent, pending) = (count(1), count(2), count(3), count(0));
        eprintln!(
            "wire_fuzz: flood cycle {cycle}: {opened} connections in {:.1}s: {accepted} accepted, {rejected} rejected with TOO_MANY_CONNECTIONS, {silent} closed without a reply, {pending} unanswered",
            started.elapsed().as_secs_f64()
        );
        add(&mut t, "flood connections opened", opened as u64);
        add(&mut t, "flood connections accepted", accepted as u64);
        add(&mut t, "flood connections rejected", rejected as u64);
        add(
            &mut t,
            "flood connections closed without reply",
            silent as u64,
        );
        let limit = SHARDS as usize * MAX_CONNECTIONS_PER_SHARD as usize;
        if pending > 0 {
            sh.violation(
                WHO,
                format!("{pending} flood connections got no HELLO reply within 30 s"),
            );
        }
        if accepted > limit {
            sh.violation(
                WHO,
                format!("{accepted} connections accepted, more than {SHARDS} x MAX_CONNECTIONS_PER_SHARD"),
            );
        }
        if opened > limit && rejected + silent < opened - limit {
            sh.violation(
                WHO,
                format!(
                    "{opened} connections opened but only {} refused; at most {limit} fit",
                    rejected + silent
                ),
            );
        }
        if let Some(c) = stats_conn.as_mut() {
            match c.stats() {
                Ok(st) => {
                    let per: Vec<u32> = st.shards.iter().map(|s| s.connections).collect();
                    eprintln!("wire_fuzz: flood: STATS connections per shard {per:?}");
                    if per.iter().any(|&n| n > MAX_CONNECTIONS_PER_SHARD) {
                        sh.violation(
                            WHO,
                            format!("STATS shows {per:?} connections per shard, over the limit"),
                        );
                    }
                }
                Err(e) => sh.violation(WHO, format!("STATS during the flood failed: {e}")),
            }
        }
        // Accepted connections are served at the limit: PING a few.
        for (w, m, _) in socks.iter_mut().filter(|s| s.2 == 1).take(16) {
            let mut f = Vec::new();
            tarn_net::encode_request(2, &Request::Ping(b"flood".to_vec()), &mut f);
            m.feed(&f);
            w.queue(&f);
            let t0 = Instant::now();
            while m.open > 0 && t0.elapsed() < Duration::from_secs(10) && w.peer == PeerState::Open
            {
                match w.step(Duration::from_millis(10), true, 1 << 16) {
                    Ok(rs) => {
                        for r in rs {
                            if let Err(e) = m.answer(r.header.request_id, r.response) {
                                sh.violation(WHO, e);
                            }
                        }
                    }
                    Err(e) => {
                        sh.violation(WHO, e);
                        break;
                    }
                }
            }
            if m.open > 0 {
                sh.violation(
                    WHO,
                    "a PING on an accepted flood connection got no PONG within 10 s",
                );
            }
        }
        let hold = sh.cycle_at(0.8, cycle);
        let _ = sh.sleep_until(hold.min(sh.deadline));
        for (i, (w, _, _)) in socks.into_iter().enumerate() {
            if i % 2 == 0 {
                w.reset();
            } else {
                let mut w = w;
                w.close_write();
                drop(w);
            }
        }
        add(&mut t, "connections opened: flood", opened as u64);
        sh.merge(&mut t);
        drop(stats_conn);
        cycle += 1;
    }
}

// -------------------------------------------------------------------------------------------
// The canary

struct CanaryReport {
    ping: Histogram<u64>,
    get: Histogram<u64>,
    write: Histogram<u64>,
    stats: Histogram<u64>,
    acked: Vec<(String, i64)>,
    rounds: u64,
}

fn known_row() -> Vec<Value> {
    vec![
        Value::Text("known".into()),
        Value::Int(42),
        Value::Text("the known row ✓".into()),
    ]
}

fn canary_row(i: u64) -> Vec<Value> {
    vec![
        Value::Text(format!("c-{i}")),
        Value::Int(i as i64),
        Value::Text(format!("canary write {i}")),
    ]
}

fn canary(sh: &Shared, stop: &AtomicBool) -> CanaryReport {
    const WHO: &str = "canary";
    let hist = || Histogram::<u64>::new_with_bounds(1, 600_000_000, 3).expect("histogram");
    let mut rep = CanaryReport {
        ping: hist(),
        get: hist(),
        write: hist(),
        stats: hist(),
        acked: Vec::new(),
        rounds: 0,
    };
    let deadline = sh.cfg.canary_deadline;
    let connect = || -> Option<Conn> {
        match Conn::connect(sh.addr) {
            Ok(c) => Some(c),
            Err(e) => {
                sh.violation(WHO, format!("cannot connect: {e}"));
                None
            }
        }
    };
    let mut conn = connect();
    let mut i = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let tick = Instant::now();
        let Some(c) = conn.as_mut() else {
            std::thread::sleep(Duration::from_secs(1));
            conn = connect();
            continue;
        };
        i += 1;
        let mut broken = None;
        // PING with unique data.
        c.set_read_timeout(deadline);
        let data = i.to_le_bytes().to_vec();
        let t0 = Instant::now();
        match c.call(&Request::Ping(data.clone())) {
            Ok(Response::Pong(d)) if d == data => {
                let _ = rep.ping.record(t0.elapsed().as_micros() as u64);
            }
            other => broken = Some(format!("PING #{i}: {other:?}")),
        }
        // GET of the known row.
        if broken.is_none() {
            let t0 = Instant::now();
            match c.get(T_CANARY, vec![Value::Text("known".into())]) {
                Ok(r) if r.rows == vec![Some(known_row())] => {
                    let _ = rep.get.record(t0.elapsed().as_micros() as u64);
                }
                other => broken = Some(format!("GET known #{i}: {other:?}")),
            }
        }
        // Every third round: an UPSERT + GET round trip (fdatasync: a longer deadline).
        if broken.is_none() && i.is_multiple_of(3) {
            c.set_read_timeout(deadline * 3);
            let row = canary_row(i);
            let t0 = Instant::now();
            match c.upsert(T_CANARY, &["k", "v", "note"], vec![row.clone()]) {
                Ok(1) => match c.get(T_CANARY, vec![row[0].clone()]) {
                    Ok(r) if r.rows == vec![Some(row.clone())] => {
                        let _ = rep.write.record(t0.elapsed().as_micros() as u64);
                        rep.acked.push((format!("c-{i}"), i as i64));
                    }
                    other => broken = Some(format!("GET after UPSERT #{i}: {other:?}")),
                },
                other => broken = Some(format!("UPSERT #{i}: {other:?}")),
            }
        }
        // Every tenth round: STATS, which every shard answers (a dead or stuck shard shows
        // here even when the canary's own shard is fine).
        if broken.is_none() && i % 10 == 5 {
            c.set_read_timeout(deadline);
            let t0 = Instant::now();
            match c.stats() {
                Ok(st) if st.shards.len() == SHARDS as usize => {
                    let _ = rep.stats.record(t0.elapsed().as_micros() as u64);
                }
                other => broken = Some(format!("STATS #{i}: {other:?}")),
            }
        }
        if let Some(msg) = broken {
            sh.violation(
                WHO,
                format!(
                    "{msg} (deadline {deadline:?}; {:.1}s after the round began); reconnecting",
                    tick.elapsed().as_secs_f64()
                ),
            );
            conn = connect();
        }
        rep.rounds = i;
        let next = tick + Duration::from_millis(100);
        if let Some(d) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(d);
        }
    }
    rep
}

// -------------------------------------------------------------------------------------------
// Setup, snapshot, summary

fn setup(server: &TarnServer) -> BigKeys {
    let mut c = server.client();
    for sql in SCHEMA {
        c.sql(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    c.upsert(T_CANARY, &["k", "v", "note"], vec![known_row()])
        .expect("known row");
    // One big row on each shard, so the never-reader's GETs are answered inline and by a task.
    let mut keys = [None, None];
    for k in 0..1000i64 {
        let s = shard_of(&Value::Int(k), SHARDS) as usize;
        keys[s].get_or_insert(k);
    }
    let keys = [
        keys[0].expect("a key on shard 0"),
        keys[1].expect("a key on shard 1"),
    ];
    for k in keys {
        c.upsert(
            T_BIG,
            &["k", "blob"],
            vec![vec![
                Value::Int(k),
                Value::Bytes(vec![0xb1; BIG_VALUE_BYTES]),
            ]],
        )
        .expect("big row");
    }
    BigKeys { keys }
}

/// What must survive the restart unchanged.
#[derive(Debug, PartialEq)]
struct Snapshot {
    rows_per_shard: Vec<u64>,
    stream_events: i64,
    features: Vec<Vec<Value>>,
}

fn snapshot(c: &mut Conn) -> Result<Snapshot, String> {
    let st = c.stats().map_err(|e| format!("STATS: {e}"))?;
    let streams = c
        .sql("SHOW STREAMS")
        .map_err(|e| format!("SHOW STREAMS: {e}"))?;
    let events_col = streams
        .columns
        .iter()
        .position(|col| col.name == "events")
        .ok_or("SHOW STREAMS has no events column")?;
    let stream_events = streams
        .rows
        .iter()
        .find(|r| r[0] == Value::Text(S_EV.into()))
        .and_then(|r| match r[events_col] {
            Value::Int(n) => Some(n),
            _ => None,
        })
        .ok_or("SHOW STREAMS lacks fz_ev")?;
    let keys: Vec<Value> = VIEW_KEYS
        .iter()
        .map(|k| Value::Text(k.to_string()))
        .collect();
    let features = match c
        .call(&Request::Features(FeaturesRequest {
            view: V_LIFE.into(),
            keys,
            as_of_us: None,
        }))
        .map_err(|e| format!("FEATURES: {e}"))?
    {
        Response::Features(f) => f.rows.into_iter().map(|r| r.values).collect(),
        o => return Err(format!("FEATURES: unexpected {o:?}")),
    };
    Ok(Snapshot {
        rows_per_shard: rows_per_shard(&st),
        stream_events,
        features,
    })
}

fn total_connections(c: &mut Conn) -> Result<u32, String> {
    Ok(c.stats()
        .map_err(|e| e.to_string())?
        .shards
        .iter()
        .map(|s| s.connections)
        .sum())
}

fn pct(h: &Histogram<u64>) -> String {
    if h.is_empty() {
        return "no samples".into();
    }
    format!(
        "n={} p50={:.2}ms p99={:.2}ms max={:.2}ms",
        h.len(),
        h.value_at_quantile(0.5) as f64 / 1000.0,
        h.value_at_quantile(0.99) as f64 / 1000.0,
        h.max() as f64 / 1000.0
    )
}

/// The first panic in tarnd's stderr, if any (a shard thread can die while the process lives).
fn panic_report(stderr: &str) -> Option<String> {
    let at = stderr.find("panicked at")?;
    let start = stderr[..at].rfind('\n').map_or(0, |i| i + 1);
    Some(format!(
        "{} panic(s) in tarnd's log; the first:\n{}",
        stderr.matches("panicked at").count(),
        stderr[start..]
            .lines()
            .take(5)
            .collect::<Vec<_>>()
            .join("\n")
    ))
}

/// The RSS bound of the whole run: base + what each behaviour may make the server hold at
/// once (its read buffers, requests in flight, queued replies) + the data acknowledged + fixed
/// overheads, with 25% for allocator fragmentation.
struct Bound {
    base: u64,
    terms: Vec<(String, u64)>,
    fixed: u64,
}

impl Bound {
    fn total(&self) -> u64 {
        let sum: u64 = self.terms.iter().map(|t| t.1).sum();
        self.base + sum + sum / 4 + self.fixed
    }
}

fn rss_bound(sh: &Shared, base: u64, flood_conns: usize) -> Bound {
    let frame = (HEADER_LEN + MAX_FRAME_PAYLOAD_BYTES as usize) as u64;
    let chunk = READ_CHUNK_BYTES as u64;
    let mut terms = vec![
        (
            format!(
                "{} mutators x (a max frame buffer + read chunk + 5 x {} MiB unanswered)",
                sh.cfg.mutators,
                MUTATOR_UNANSWERED >> 20
            ),
            sh.cfg.mutators as u64 * (frame + chunk + 5 * MUTATOR_UNANSWERED as u64),
        ),
        (
            format!("{} slowloris x read chunk", sh.cfg.slow),
            sh.cfg.slow as u64 * chunk,
        ),
        (
            "resetter: a max frame buffer + read chunk".into(),
            frame + chunk,
        ),
        ("canary and checker connections".into(), 4 * chunk),
    ];
    if sh.cfg.never_reader {
        terms.push((
            "never-reader: 3 x MAX_PENDING_REPLY_BYTES + a frame".into(),
            never_reader_bound(),
        ));
    }
    if sh.cfg.flood {
        terms.push((
            format!("flood: {flood_conns} x read chunk"),
            flood_conns as u64 * chunk,
        ));
    }
    let rows = sh.acked_rows.load(Ordering::Relaxed);
    let events = sh.acked_events.load(Ordering::Relaxed);
    terms.push((
        format!("data: {rows} rows acknowledged x 2 KiB + {events} events x 2 KiB"),
        (rows + events) * 2048,
    ));
    Bound {
        base,
        terms,
        // Catalog, producer windows (65,536 x 2 shards), checkpoint steps, 2 history scans per
        // shard of 4 MiB segments, histograms.
        fixed: 64 << 20,
    }
}

// -------------------------------------------------------------------------------------------
// The test

fn run(cfg: Config) {
    println!(
        "wire_fuzz: seed {:#018x}, {} s, {} mutators, {} slowloris, never-reader {}, flood {}; reproduce with: {}",
        cfg.seed,
        cfg.secs,
        cfg.mutators,
        cfg.slow,
        cfg.never_reader,
        cfg.flood,
        cfg.reproduce()
    );
    let nofile = raise_nofile(FLOOD_TARGET as u64 * 2 + 1024);
    let flood_budget = (nofile as usize).saturating_sub(512);
    if cfg.flood && flood_budget < FLOOD_TARGET {
        println!(
            "wire_fuzz: RLIMIT_NOFILE is {nofile}: the flood opens {flood_budget} connections, not {FLOOD_TARGET}"
        );
    }
    let mut server = TarnServer::start_ok(ServerOpts::shards(SHARDS).args(&[
        "--segment-mib",
        "4",
        "--checkpoint-mib",
        "8",
    ]));
    let big = setup(&server);
    let pid = server.pid();
    std::thread::sleep(Duration::from_millis(300));
    let base = vm_rss(pid).expect("server RSS");
    let start = Instant::now();
    let sh = Arc::new(Shared {
        addr: server.addr(),
        start,
        deadline: start + Duration::from_secs(cfg.secs),
        cfg,
        stop: AtomicBool::new(false),
        quiet: AtomicBool::new(false),
        tally: Mutex::new(Tally::new()),
        violations: Mutex::new(Vec::new()),
        acked_rows: AtomicU64::new(0),
        acked_events: AtomicU64::new(0),
        rss: AtomicU64::new(base),
        rss_max: AtomicU64::new(base),
    });

    // RSS sampler (and a second liveness probe through /proc).
    let sampler_stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (sh, stop) = (sh.clone(), sampler_stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if let Some(r) = vm_rss(pid) {
                    sh.rss.store(r, Ordering::Relaxed);
                    sh.rss_max.fetch_max(r, Ordering::Relaxed);
                    if r > RSS_SAFETY_CAP {
                        sh.violation(
                            "rss",
                            format!(
                                "server RSS {:.0} MiB over the safety cap: killing it",
                                mib(r)
                            ),
                        );
                        // SAFETY: SIGKILL to our own child's pid.
                        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
                        sh.stop.store(true, Ordering::Relaxed);
                    }
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    let canary_stop = Arc::new(AtomicBool::new(false));
    let canary_thread = {
        let (sh, stop) = (sh.clone(), canary_stop.clone());
        std::thread::spawn(move || canary(&sh, &stop))
    };

    let (done_tx, done_rx) = mpsc::channel::<String>();
    let mut workers = Vec::new();
    let mut spawn = |name: String, f: Box<dyn FnOnce(&Shared) + Send>| {
        let sh = sh.clone();
        let tx = done_tx.clone();
        workers.push(name.clone());
        std::thread::spawn(move || {
            let r = catch_unwind(AssertUnwindSafe(|| f(&sh)));
            if let Err(p) = r {
                let msg = p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                sh.violation(&name, format!("fuzzer thread panicked: {msg}"));
            }
            let _ = tx.send(name);
        });
    };
    for i in 0..sh.cfg.mutators {
        spawn(format!("mutator {i}"), Box::new(move |sh| mutator(sh, i)));
    }
    if sh.cfg.slow > 0 {
        spawn("slowloris".into(), Box::new(slowloris));
    }
    spawn("resetter".into(), Box::new(resetter));
    let growths = Arc::new(Mutex::new(Vec::new()));
    if sh.cfg.never_reader {
        let g = growths.clone();
        let big = BigKeys { keys: big.keys };
        spawn(
            "never-reader".into(),
            Box::new(move |sh| never_reader(sh, &big, &g)),
        );
    }
    if sh.cfg.flood {
        spawn("flood".into(), Box::new(move |sh| flood(sh, flood_budget)));
    }
    drop(done_tx);

    // The server must stay alive throughout.
    let mut died = false;
    let mut panic_reported = false;
    let mut next_log_check = Instant::now();
    // RSS over time (a slow leak shows as a trend the bound alone would hide).
    let every = Duration::from_secs((sh.cfg.secs / 20).max(2));
    let mut series: Vec<(u64, f64)> = Vec::new();
    let mut next_sample = start + every;
    while Instant::now() < sh.deadline && !sh.stop.load(Ordering::Relaxed) {
        if !server.is_running() {
            died = true;
            break;
        }
        if Instant::now() >= next_log_check {
            next_log_check += Duration::from_secs(1);
            if let Some(p) = panic_report(&server.stderr()) {
                // The server is broken from here on: report it and stop the traffic.
                sh.violation("server", p);
                panic_reported = true;
                sh.stop.store(true, Ordering::Relaxed);
                break;
            }
        }
        if Instant::now() >= next_sample {
            next_sample += every;
            let r = sh.rss.load(Ordering::Relaxed);
            series.push((start.elapsed().as_secs(), (mib(r) * 10.0).round() / 10.0));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    if died || !server.is_running() {
        let tail: String = server.stderr().chars().rev().take(4000).collect::<String>();
        sh.violation(
            "server",
            format!(
                "tarnd exited during the run; stderr (tail):\n{}",
                tail.chars().rev().collect::<String>()
            ),
        );
        sh.stop.store(true, Ordering::Relaxed);
    }
    println!(
        "wire_fuzz: {:.1}s: traffic stops; waiting for the fuzzer's connections to finish",
        sh.t()
    );
    let mut pending: Vec<String> = workers.clone();
    let join_deadline = Instant::now() + HANG + Duration::from_secs(60);
    while !pending.is_empty() {
        let left = join_deadline.saturating_duration_since(Instant::now());
        match done_rx.recv_timeout(left.max(Duration::from_millis(1))) {
            Ok(name) => pending.retain(|n| *n != name),
            Err(_) => {
                sh.violation(
                    "fuzzer",
                    format!("threads {pending:?} did not finish (a connection hung past every deadline)"),
                );
                break;
            }
        }
    }

    // Every fuzzer connection is closed: STATS must show only the checker's own connection
    // (the canary's closes first), within a bounded wait.
    let mut final_conns = None;
    if server.is_running() {
        canary_stop.store(true, Ordering::Relaxed);
    }
    let canary_rep = canary_thread.join().expect("canary thread");
    sh.stop.store(true, Ordering::Relaxed);
    let mut checker = if server.is_running() {
        Conn::connect(server.addr()).ok()
    } else {
        None
    };
    let mut snap_before = None;
    if let Some(c) = checker.as_mut() {
        let t = Instant::now();
        loop {
            match total_connections(c) {
                Ok(1) => {
                    final_conns = Some(1);
                    break;
                }
                Ok(n) => final_conns = Some(n),
                Err(e) => {
                    sh.violation("connections", format!("STATS failed: {e}"));
                    break;
                }
            }
            if t.elapsed() > Duration::from_secs(20) {
                sh.violation(
                    "connections",
                    format!(
                        "20 s after every fuzzer connection was closed STATS still counts {} connections (only the checker's should be left): the server leaked {} connection(s)",
                        final_conns.unwrap_or(0),
                        final_conns.unwrap_or(1).saturating_sub(1)
                    ),
                );
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        match snapshot(c) {
            Ok(s) => snap_before = Some(s),
            Err(e) => sh.violation("snapshot", e),
        }
    } else if server.is_running() {
        sh.violation("connections", "the checker could not connect after the run");
    }
    sampler_stop.store(true, Ordering::Relaxed);
    sampler.join().expect("sampler");
    let rss_max = sh.rss_max.load(Ordering::Relaxed);
    let flood_conns = if sh.cfg.flood {
        FLOOD_TARGET.min(flood_budget)
    } else {
        0
    };
    let bound = rss_bound(&sh, base, flood_conns);
    if rss_max > bound.total() {
        sh.violation(
            "rss",
            format!(
                "server RSS reached {:.1} MiB, over the bound of {:.1} MiB",
                mib(rss_max),
                mib(bound.total())
            ),
        );
    }

    // A shard thread can panic while the process lives on: look for it in the log.
    if !panic_reported {
        if let Some(p) = panic_report(&server.stderr()) {
            sh.violation("server", p);
        }
    }

    // Clean SIGTERM (a connection still open: the checker's), then the same data dir again.
    let mut restarted = false;
    let mut notes: Vec<String> = Vec::new();
    if server.is_running() {
        match catch_unwind(AssertUnwindSafe(|| server.stop())) {
            Ok(status) if status.success() => notes.push("SIGTERM: tarnd exited 0".into()),
            Ok(status) => sh.violation(
                "sigterm",
                format!(
                    "tarnd exited with {status:?} after SIGTERM; stderr:\n{}",
                    server.stderr()
                ),
            ),
            Err(_) => sh.violation(
                "sigterm",
                "tarnd did not exit within the stop deadline after SIGTERM (killed)",
            ),
        }
    } else {
        server.kill9();
    }
    drop(checker);
    match catch_unwind(AssertUnwindSafe(|| server.restart())) {
        Ok(Ok(())) => restarted = true,
        Ok(Err(e)) => sh.violation("restart", e),
        Err(_) => sh.violation("restart", "restart panicked"),
    }
    if restarted {
        let mut c = server.client();
        match c.get(T_CANARY, vec![Value::Text("known".into())]) {
            Ok(r) if r.rows == vec![Some(known_row())] => {}
            other => sh.violation("restart", format!("known row after restart: {other:?}")),
        }
        let keys: Vec<Value> = canary_rep
            .acked
            .iter()
            .map(|(k, _)| Value::Text(k.clone()))
            .collect();
        match c.get_many(T_CANARY, &keys, 1000) {
            Ok(rows) => {
                notes.push(format!(
                    "restart: known row and {} acknowledged canary writes checked",
                    rows.len()
                ));
                for ((k, i), row) in canary_rep.acked.iter().zip(rows) {
                    if row != Some(canary_row(*i as u64)) {
                        sh.violation(
                            "restart",
                            format!("the canary's acknowledged write {k} reads back as {row:?}"),
                        );
                    }
                }
            }
            Err(e) => sh.violation("restart", format!("GET of the canary's writes: {e}")),
        }
        match (snapshot(&mut c), &snap_before) {
            (Ok(after), Some(before)) if after != *before => sh.violation(
                "restart",
                format!("state differs after the restart:\n  before {before:?}\n  after  {after:?}"),
            ),
            (Err(e), _) => sh.violation("restart", e),
            (Ok(after), Some(_)) => notes.push(format!(
                "restart: same rows per shard {:?}, {} events in {S_EV}, same {V_LIFE} features of {} keys",
                after.rows_per_shard,
                after.stream_events,
                after.features.len()
            )),
            (Ok(_), None) => {}
        }
        drop(c);
        match catch_unwind(AssertUnwindSafe(|| server.stop())) {
            Ok(s) if s.success() => {}
            other => sh.violation("restart", format!("second SIGTERM: {:?}", other.ok())),
        }
    }

    // Summary.
    let tally = sh.tally.lock().unwrap().clone();
    println!(
        "\n===== wire_fuzz summary (seed {:#018x}, {} s) =====",
        sh.cfg.seed, sh.cfg.secs
    );
    let section = |title: &str, prefix: &str| {
        println!("{title}:");
        for (k, v) in tally.iter().filter(|(k, _)| k.starts_with(prefix)) {
            println!("  {:>10}  {}", v, k.trim_start_matches(prefix));
        }
    };
    section("frames sent by seed kind", "frames from seeds: ");
    section("mutations applied", "mutation: ");
    section("openings", "openings: ");
    section("frames as the server framed them", "server saw: ");
    section("replies", "reply ");
    section("connections opened", "connections opened: ");
    section("connections closed", "connections closed: ");
    println!("other counters:");
    for (k, v) in tally.iter().filter(|(k, _)| {
        ![
            "frames from seeds: ",
            "mutation: ",
            "openings: ",
            "server saw: ",
            "reply ",
            "connections opened: ",
            "connections closed: ",
        ]
        .iter()
        .any(|p| k.starts_with(p))
    }) {
        println!("  {v:>10}  {k}");
    }
    println!(
        "canary: {} rounds, {} acknowledged writes\n  PING        {}\n  GET known   {}\n  UPSERT+GET  {}\n  STATS       {}",
        canary_rep.rounds,
        canary_rep.acked.len(),
        pct(&canary_rep.ping),
        pct(&canary_rep.get),
        pct(&canary_rep.write),
        pct(&canary_rep.stats)
    );
    println!(
        "server RSS: base {:.1} MiB, max {:.1} MiB, bound {:.1} MiB = base + 1.25 x (terms) + {:.0} MiB fixed:",
        mib(base),
        mib(rss_max),
        mib(bound.total()),
        mib(bound.fixed)
    );
    for (what, b) in &bound.terms {
        println!("  {:>9.1} MiB  {what}", mib(*b));
    }
    println!("server RSS over time (s, MiB): {series:?}");
    if !growths.lock().unwrap().is_empty() {
        println!(
            "never-reader RSS growth per cycle (MiB): {:?}, allowed {:.1} (+32 noise)",
            growths
                .lock()
                .unwrap()
                .iter()
                .map(|g| (mib(*g) * 10.0).round() / 10.0)
                .collect::<Vec<_>>(),
            mib(never_reader_bound())
        );
    }
    println!(
        "connections at the end (STATS): {final_conns:?}; data acknowledged: {} rows, {} events",
        sh.acked_rows.load(Ordering::Relaxed),
        sh.acked_events.load(Ordering::Relaxed)
    );
    for n in &notes {
        println!("{n}");
    }
    let violations = sh.violations.lock().unwrap().clone();
    println!("violations: {}", violations.len());
    if !violations.is_empty() {
        panic!(
            "wire_fuzz found {} violation(s) (seed {:#018x}; reproduce with: {}):\n{}",
            violations.len(),
            sh.cfg.seed,
            sh.cfg.reproduce(),
            violations.join("\n")
        );
    }
}

#[test]
fn wire_fuzz() {
    run(Config::from_env());
}

/// Replays one mutator connection against a fresh server: `TARN_FUZZ_REPLAY=<conn seed>` (the
/// `conn seed` a violation names). `cargo test --test wire_fuzz -- --ignored replay --nocapture`
#[test]
#[ignore]
fn replay_mutator_connection() {
    let Some(cseed) = env_u64("TARN_FUZZ_REPLAY") else {
        println!("set TARN_FUZZ_REPLAY to the conn seed of a mutator connection");
        return;
    };
    let mut server = TarnServer::start_ok(ServerOpts::shards(SHARDS).args(&[
        "--segment-mib",
        "4",
        "--checkpoint-mib",
        "8",
    ]));
    let _ = setup(&server);
    let start = Instant::now();
    let sh = Shared {
        cfg: Config::from_env(),
        addr: server.addr(),
        start,
        deadline: start + Duration::from_secs(3600),
        stop: AtomicBool::new(false),
        quiet: AtomicBool::new(false),
        tally: Mutex::new(Tally::new()),
        violations: Mutex::new(Vec::new()),
        acked_rows: AtomicU64::new(0),
        acked_events: AtomicU64::new(0),
        rss: AtomicU64::new(0),
        rss_max: AtomicU64::new(0),
    };
    let corpus = Corpus::new(0x1000, sh.cfg.suppress);
    mutator_conn(&sh, "replay", cseed, &corpus);
    assert!(server.is_running(), "tarnd died: {}", server.stderr());
    for (k, v) in sh.tally.lock().unwrap().iter() {
        println!("  {v:>8}  {k}");
    }
    server.stop_ok();
    let v = sh.violations.lock().unwrap();
    assert!(v.is_empty(), "{}", v.join("\n"));
}

/// The model alone (no server): framing, closing errors, and replies to requests that share an
/// id matched as a whole, quickly even for many of them in an adversarial order.
#[test]
fn model_matches_replies() {
    use tarn_net::{ErrorReply, UpsertReply};
    let err = |code| Response::Error(ErrorReply::new(code, "x"));
    let mut m = Shadow::new(SHARDS);
    m.feed(&hello_frame(1));
    // 40 requests with id 7: 20 valid UPSERTs, then 20 that do not decode.
    let bad = raw_frame(1, 4, 7, b"x");
    let upsert = {
        let mut f = Vec::new();
        tarn_net::encode_request(
            7,
            &upsert_req(T_ALL, &["id"], vec![vec![Value::Int(1)]]),
            &mut f,
        );
        f
    };
    for _ in 0..20 {
        m.feed(&upsert);
    }
    for _ in 0..20 {
        m.feed(&bad);
    }
    assert_eq!(m.open, 41);
    let hello = Response::Hello(tarn_net::HelloReply {
        version: 1,
        server_version: "t".into(),
        shard_count: SHARDS,
        max_frame_payload_bytes: MAX_FRAME_PAYLOAD_BYTES,
        max_batch_rows: tarn_net::limits::MAX_BATCH_ROWS,
        max_in_flight: MAX_IN_FLIGHT_PER_CONNECTION,
    });
    assert_eq!(m.answer(1, hello), Ok(false));
    // MALFORMED errors first fit the UPSERTs too (a greedy match would take them), then the
    // UPSERT successes need the UPSERT slots back.
    let t = Instant::now();
    for _ in 0..20 {
        assert_eq!(m.answer(7, err(ErrorCode::Malformed)), Ok(false));
    }
    for _ in 0..20 {
        assert_eq!(
            m.answer(7, Response::Upsert(UpsertReply { rows_applied: 1 })),
            Ok(false)
        );
    }
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "matching took {:?}",
        t.elapsed()
    );
    assert_eq!(m.open, 0);
    assert!(
        m.answer(7, err(ErrorCode::Malformed)).is_err(),
        "one reply too many"
    );
    // An oversize header is answered FRAME_TOO_LARGE and closes; later bytes are not read.
    m.feed(&raw_frame(MAX_FRAME_PAYLOAD_BYTES + 1, 2, 9, b""));
    assert_eq!(m.closing, Some(ErrorCode::FrameTooLarge));
    m.feed(&hello_frame(10));
    assert_eq!(m.open, 1);
    assert!(m.answer(10, err(ErrorCode::Unsupported)).is_err());
    assert_eq!(m.answer(9, err(ErrorCode::FrameTooLarge)), Ok(false));
    // A connection-level error with id 0 is not an answer.
    assert_eq!(m.answer(0, err(ErrorCode::TooManyConnections)), Ok(true));
}
