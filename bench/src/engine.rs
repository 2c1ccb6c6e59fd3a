//! The load engine: N non-blocking connections driven from one thread with epoll.
//!
//! Closed loop: every connection keeps `depth` requests in flight; latency runs from the
//! moment a request is queued, and a CO-corrected histogram is kept alongside.
//! Open loop: requests are released on a fixed-rate grid (see [`crate::sched`]) and
//! latency runs from the *intended* time, so a stalled server (or a late generator) is
//! charged for every request that should have gone out during the stall.
//! `spin` replaces parking in epoll_wait with a zero-timeout busy poll.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;

use crate::clock::now_ns;
use crate::sched::{pick_conn, Schedule};
use crate::stats::{Origin, Recorder};
use crate::sys::{Epoll, TimerFd};
use crate::target::{Codec, CodecFactory};
use crate::workload::{Generator, Workload};

/// Closed or open loop.
#[derive(Clone, Copy, Debug)]
pub enum LoadMode {
    /// Each connection keeps `depth` requests outstanding.
    Closed { depth: usize },
    /// `rate` requests/s overall; at most `max_outstanding` in flight per connection
    /// (further due requests wait in a backlog, still timed from their intended time).
    Open { rate: f64, max_outstanding: usize },
}

/// Engine parameters.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    pub addr: SocketAddr,
    pub conns: usize,
    pub mode: LoadMode,
    pub spin: bool,
    pub warmup_ns: u64,
    pub measure_ns: u64,
    /// After the measurement window, how long to wait for in-flight replies.
    pub drain_ns: u64,
    pub seed: u64,
    pub workload: Workload,
    /// Closed loop only: interval for `record_correct` (default: mean warm-up latency).
    pub expected_interval_ns: Option<u64>,
}

/// What a run produced.
pub struct EngineOutput {
    pub recorder: Recorder,
    pub sent: u64,
    /// Open loop: requests intended inside the run that never got a connection.
    pub unsent: u64,
    /// Requests still without a reply when the drain period ended.
    pub timed_out: u64,
    pub loop_iterations: u64,
}

struct Inflight {
    id: u64,
    intended: u64,
    sent: u64,
}

struct Conn {
    stream: TcpStream,
    codec: Box<dyn Codec>,
    rbuf: Vec<u8>,
    rstart: usize,
    rlen: usize,
    wbuf: Vec<u8>,
    wpos: usize,
    inflight: VecDeque<Inflight>,
    next_id: u64,
    want_out: bool,
    dirty: bool,
}

const RBUF: usize = 256 * 1024;
const TIMER_TOKEN: u64 = u64::MAX;

impl Conn {
    fn enqueue(&mut self, gen: &mut Generator, intended: u64, now: u64) {
        let id = self.next_id;
        self.next_id += 1;
        let req = gen.next_request();
        self.codec.encode(&req, id, &mut self.wbuf);
        self.inflight.push_back(Inflight {
            id,
            intended,
            sent: now,
        });
    }

    /// Write as much as the socket takes. Ok(true) when the buffer is empty.
    fn flush(&mut self) -> io::Result<bool> {
        while self.wpos < self.wbuf.len() {
            match (&self.stream).write(&self.wbuf[self.wpos..]) {
                Ok(0) => return Err(io::Error::new(io::ErrorKind::WriteZero, "write returned 0")),
                Ok(n) => self.wpos += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.wbuf.clear();
        self.wpos = 0;
        Ok(true)
    }

    /// Read what is available. Ok(false) on EOF.
    fn fill(&mut self) -> io::Result<bool> {
        loop {
            if self.rstart == self.rlen {
                self.rstart = 0;
                self.rlen = 0;
            } else if self.rlen == self.rbuf.len() {
                if self.rstart > 0 {
                    self.rbuf.copy_within(self.rstart..self.rlen, 0);
                    self.rlen -= self.rstart;
                    self.rstart = 0;
                } else {
                    let n = self.rbuf.len() * 2;
                    self.rbuf.resize(n, 0);
                }
            }
            let spare = self.rbuf.len() - self.rlen;
            match (&self.stream).read(&mut self.rbuf[self.rlen..]) {
                Ok(0) => return Ok(false),
                Ok(n) => {
                    self.rlen += n;
                    if n < spare {
                        return Ok(true);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(true),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// Open `n` connections (blocking connect + handshake, then non-blocking).
fn connect_all(
    addr: SocketAddr,
    n: usize,
    factory: &dyn CodecFactory,
) -> Result<Vec<Conn>, String> {
    let mut conns = Vec::with_capacity(n);
    for i in 0..n {
        let mut stream =
            TcpStream::connect(addr).map_err(|e| format!("connect #{i} to {addr}: {e}"))?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        let mut codec = factory.make();
        codec
            .handshake(&mut stream)
            .map_err(|e| format!("handshake #{i} with {addr}: {e}"))?;
        stream.set_nonblocking(true).map_err(|e| e.to_string())?;
        conns.push(Conn {
            stream,
            codec,
            rbuf: vec![0; RBUF],
            rstart: 0,
            rlen: 0,
            wbuf: Vec::with_capacity(64 * 1024),
            wpos: 0,
            inflight: VecDeque::new(),
            next_id: 1,
            want_out: false,
            dirty: false,
        });
    }
    Ok(conns)
}

/// Run one load test. Blocks for warm-up + measurement (+ at most the drain period).
pub fn run(cfg: &EngineConfig, factory: &dyn CodecFactory) -> Result<EngineOutput, String> {
    if cfg.conns == 0 {
        return Err("need at least one connection".into());
    }
    let mut conns = connect_all(cfg.addr, cfg.conns, factory)?;
    let ep = Epoll::new().map_err(|e| e.to_string())?;
    let in_ev = libc::EPOLLIN as u32;
    let inout_ev = (libc::EPOLLIN | libc::EPOLLOUT) as u32;
    for (i, c) in conns.iter().enumerate() {
        ep.add(c.stream.as_raw_fd(), in_ev, i as u64)
            .map_err(|e| e.to_string())?;
    }
    let mut timer = TimerFd::new().map_err(|e| e.to_string())?;
    ep.add(timer.fd(), in_ev, TIMER_TOKEN)
        .map_err(|e| e.to_string())?;

    let mut gen = Generator::new(cfg.workload.clone(), cfg.seed);
    let t0 = now_ns();
    let warm_end = t0 + cfg.warmup_ns;
    let end = warm_end + cfg.measure_ns;
    let hard_end = end + cfg.drain_ns;
    let origin = match cfg.mode {
        LoadMode::Closed { .. } => Origin::Sent,
        LoadMode::Open { .. } => Origin::Intended,
    };
    let mut rec = Recorder::new(origin, warm_end, end, cfg.expected_interval_ns);
    let mut schedule = match cfg.mode {
        LoadMode::Open { rate, .. } => Some(Schedule::new(t0, rate)),
        LoadMode::Closed { .. } => None,
    };
    let mut backlog: VecDeque<u64> = VecDeque::new();
    let mut inflight_counts = vec![0usize; conns.len()];
    let mut cursor = 0usize;
    let mut dirty: Vec<usize> = Vec::with_capacity(conns.len());
    let mut sent = 0u64;
    let mut total_inflight = 0u64;
    let mut iterations = 0u64;

    if let LoadMode::Closed { depth } = cfg.mode {
        let now = now_ns();
        for (i, c) in conns.iter_mut().enumerate() {
            for _ in 0..depth.max(1) {
                c.enqueue(&mut gen, now, now);
                sent += 1;
                total_inflight += 1;
                inflight_counts[i] += 1;
            }
            c.dirty = true;
            dirty.push(i);
        }
    }

    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 256];
    loop {
        iterations += 1;
        let now = now_ns();
        let running = now < end;
        if !running && (total_inflight == 0 || now >= hard_end) {
            break;
        }
        if let (
            Some(s),
            LoadMode::Open {
                max_outstanding, ..
            },
        ) = (schedule.as_mut(), cfg.mode)
        {
            if running {
                s.release_due(now, end, &mut backlog);
                while let Some(&intended) = backlog.front() {
                    let Some(i) = pick_conn(&inflight_counts, max_outstanding.max(1), &mut cursor)
                    else {
                        break;
                    };
                    backlog.pop_front();
                    let c = &mut conns[i];
                    c.enqueue(&mut gen, intended, now);
                    inflight_counts[i] += 1;
                    sent += 1;
                    total_inflight += 1;
                    if !c.dirty {
                        c.dirty = true;
                        dirty.push(i);
                    }
                }
            }
        }
        for &i in &dirty {
            let c = &mut conns[i];
            c.dirty = false;
            let empty = c.flush().map_err(|e| format!("write: {e}"))?;
            if empty == c.want_out {
                // Need EPOLLOUT iff bytes remain.
                c.want_out = !empty;
                ep.modify(
                    c.stream.as_raw_fd(),
                    if empty { in_ev } else { inout_ev },
                    i as u64,
                )
                .map_err(|e| e.to_string())?;
            }
        }
        dirty.clear();

        let timeout_ms = if cfg.spin {
            0
        } else {
            if let Some(s) = schedule.as_ref() {
                if running && backlog.is_empty() {
                    timer
                        .arm_at(s.next_due().min(end))
                        .map_err(|e| e.to_string())?;
                }
            }
            let deadline = if running { end } else { hard_end };
            let ms = deadline.saturating_sub(now).div_ceil(1_000_000);
            ms.clamp(1, 100) as i32
        };
        let n = ep
            .wait(&mut events, timeout_ms)
            .map_err(|e| e.to_string())?;
        for ev in &events[..n] {
            let token = ev.u64;
            if token == TIMER_TOKEN {
                timer.clear();
                continue;
            }
            let i = token as usize;
            let c = &mut conns[i];
            let flags = ev.events;
            if flags & (libc::EPOLLIN | libc::EPOLLERR | libc::EPOLLHUP) as u32 != 0 {
                let open = c.fill().map_err(|e| format!("read from conn #{i}: {e}"))?;
                let done = now_ns();
                let mut completed = 0usize;
                while let Some((used, d)) = c
                    .codec
                    .decode(&c.rbuf[c.rstart..c.rlen])
                    .map_err(|e| format!("conn #{i}: {e}"))?
                {
                    c.rstart += used;
                    let pos = match d.id {
                        None => 0,
                        Some(id) => {
                            c.inflight.iter().position(|f| f.id == id).ok_or_else(|| {
                                format!("conn #{i}: reply for unknown request id {id}")
                            })?
                        }
                    };
                    let f = c
                        .inflight
                        .remove(pos)
                        .ok_or_else(|| format!("conn #{i}: reply with nothing in flight"))?;
                    rec.complete(f.intended, f.sent, done, d.ok);
                    completed += 1;
                }
                if c.codec.take_output(&mut c.wbuf) && !c.dirty {
                    c.dirty = true;
                    dirty.push(i);
                }
                total_inflight -= completed as u64;
                inflight_counts[i] -= completed;
                if let LoadMode::Closed { .. } = cfg.mode {
                    if done < end && completed > 0 {
                        for _ in 0..completed {
                            c.enqueue(&mut gen, done, done);
                        }
                        sent += completed as u64;
                        total_inflight += completed as u64;
                        inflight_counts[i] += completed;
                        if !c.dirty {
                            c.dirty = true;
                            dirty.push(i);
                        }
                    }
                }
                if !open {
                    if !running && c.inflight.is_empty() {
                        continue;
                    }
                    return Err(format!(
                        "conn #{i}: server closed the connection with {} requests in flight",
                        c.inflight.len()
                    ));
                }
            }
            if flags & libc::EPOLLOUT as u32 != 0 && !c.dirty {
                c.dirty = true;
                dirty.push(i);
            }
        }
    }
    Ok(EngineOutput {
        recorder: rec,
        sent,
        unsent: backlog.len() as u64,
        timed_out: total_inflight,
        loop_iterations: iterations,
    })
}
