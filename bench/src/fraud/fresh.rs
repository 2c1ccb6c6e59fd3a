//! The freshness probe: the time from an event's ack to its effect being visible on another
//! connection ([`freshness`]), optionally under a background open-loop ingest ([`BgLoad`]).

use std::io;
use std::net::SocketAddr;

use hdrhistogram::Histogram;
use tarn_net::{
    FeaturesRequest, IngestBody, IngestRequest, Producer, Request as NetRequest, Response, Value,
};

use super::{producer_base, BlockingTarn, FraudShape, TarnIngestFactory, View, COLUMNS, STREAM};
use crate::clock::{now_ns, realtime_us};
use crate::engine::{self, EngineConfig, EngineOutput, LoadMode};
use crate::stats::new_hist;
use crate::sys::pin_current_thread;
use crate::workload::{Rng, Workload};

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
