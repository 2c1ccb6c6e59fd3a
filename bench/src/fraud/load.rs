//! Schema set-up and bulk loads on blocking connections: [`BlockingTarn`] (a blocking Tarn
//! connection), [`setup`] (the stream and its views), [`pipeline_events`] and [`load`] (events
//! sent through an [`IngestCodec`], a window of batches in flight), and [`vm_rss_kib`] (the
//! server's resident set size around a load).

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};

use tarn_net::{encode_request, Request as NetRequest, Response};

use super::{
    create_stream_sql, decode_tarn, Event, FraudShape, IngestCodec, View, BUCKET_US,
    CARDS_PER_ACCOUNT,
};
use crate::clock::realtime_us;
use crate::workload::Rng;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_vm_rss() {
        let s = "Name:\ttarnd\nVmHWM:\t  9999 kB\nVmRSS:\t   12345 kB\nThreads: 3\n";
        assert_eq!(parse_vm_rss(s), Some(12345));
        assert_eq!(parse_vm_rss("Name: x\n"), None);
        assert!(vm_rss_kib(std::process::id()).unwrap() > 0);
    }
}
