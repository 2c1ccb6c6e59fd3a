//! The features suite's commands: `features-setup` (the fraud stream and its views),
//! `features-load` (bulk load, optionally with the server's RSS before and after) and
//! `features-fresh` (the freshness probe under background ingest); see [`crate::fraud`].

use clap::Args;

use super::{cpu_mark, emit, interference_pct, resolve, RecordArgs, Target};
use crate::clock::secs_to_ns;
use crate::fraud::{self, FraudShape, View};
use crate::report::{self, BenchRecord, MemRecord};
use crate::stats::LatSummary;
use crate::sys::pin_current_thread;

#[derive(Args, Clone)]
pub struct ShapeArgs {
    /// Distinct cards (card:%07d); account = card / 4.
    #[arg(long, default_value_t = 1_000_000)]
    cards: u64,
    /// Distinct devices (dev:%06d).
    #[arg(long, default_value_t = 300_000)]
    devices: u64,
    #[arg(long, default_value_t = 1000)]
    merchants: u64,
    #[arg(long, default_value_t = 10_000)]
    ips: u64,
}

impl ShapeArgs {
    pub(super) fn shape(&self) -> FraudShape {
        FraudShape {
            cards: self.cards.max(1),
            devices: self.devices.max(1),
            merchants: self.merchants.max(1),
            ips: self.ips.max(1),
        }
    }
}

fn parse_views(list: &str) -> Result<Vec<View>, String> {
    if list.trim().is_empty() || list == "none" {
        return Ok(Vec::new());
    }
    list.split(',')
        .map(|v| View::parse(v.trim()).ok_or_else(|| format!("unknown view {v:?}")))
        .collect()
}

#[derive(Args)]
pub struct FeatSetupArgs {
    #[arg(long)]
    addr: String,
    /// Views to create: comma-separated card,account,device, or "none" (stream only).
    #[arg(long, default_value = "card,account,device")]
    views: String,
}

#[derive(Args)]
pub struct FeatLoadArgs {
    #[arg(long, value_enum, default_value = "tarn")]
    target: Target,
    #[arg(long)]
    addr: String,
    #[command(flatten)]
    shape: ShapeArgs,
    /// First card of the load.
    #[arg(long, default_value_t = 0)]
    first_card: u64,
    /// Cards to load (default: --cards).
    #[arg(long)]
    load_cards: Option<u64>,
    /// One event per card in each of the N most recent 10-second buckets (1 = now only).
    #[arg(long, default_value_t = 1)]
    buckets: u32,
    /// Events per batch (default: 1000 for Tarn, 100 for Redis).
    #[arg(long)]
    batch: Option<usize>,
    /// Batches in flight.
    #[arg(long, default_value_t = 8)]
    window: usize,
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Views that exist on the server (for the memory record's key counts).
    #[arg(long, default_value = "card,account,device")]
    views: String,
    /// Record the server's VmRSS before and after the load (tarnd's pid).
    #[arg(long)]
    pid: Option<u32>,
    /// Seconds to wait after the load before reading VmRSS again.
    #[arg(long, default_value_t = 1.0)]
    settle: f64,
    #[arg(long)]
    cpu: Option<usize>,
    #[command(flatten)]
    record: RecordArgs,
}

#[derive(Args)]
pub struct FeatFreshArgs {
    #[arg(long)]
    addr: String,
    #[command(flatten)]
    shape: ShapeArgs,
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Pause between probes, µs (from one probe's INGEST to the next).
    #[arg(long, default_value_t = 1000.0)]
    interval_us: f64,
    /// Reads per probe before giving it up as "never visible".
    #[arg(long, default_value_t = 1000)]
    max_reads: u32,
    /// Background ingest, events/s (open loop; 0 = none).
    #[arg(long, default_value_t = 20_000.0)]
    bg_rate: f64,
    #[arg(long, default_value_t = 8)]
    bg_conns: usize,
    #[arg(long, default_value_t = 100)]
    bg_batch: usize,
    /// Background batches in flight per connection at most.
    #[arg(long, default_value_t = 4)]
    bg_depth: usize,
    #[arg(long)]
    cpu: Option<usize>,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    #[command(flatten)]
    record: RecordArgs,
}

pub fn features_setup(a: &FeatSetupArgs) -> Result<(), String> {
    let views = parse_views(&a.views)?;
    for m in fraud::setup(resolve(&a.addr)?, &views)? {
        eprintln!("tarn: {m}");
    }
    Ok(())
}

pub fn features_load(a: &FeatLoadArgs) -> Result<(), String> {
    if let Some(cpu) = a.cpu {
        pin_current_thread(cpu).map_err(|e| format!("pin to CPU {cpu}: {e}"))?;
    }
    let addr = resolve(&a.addr)?;
    let shape = a.shape.shape();
    let views = parse_views(&a.views)?;
    let plan = fraud::LoadPlan {
        first_card: a.first_card,
        cards: a.load_cards.unwrap_or(shape.cards),
        buckets: a.buckets.max(1),
        batch: a.batch.unwrap_or(match a.target {
            Target::Tarn => 1000,
            Target::Redis => 100,
        }),
        window: a.window.max(1),
        seed: a.seed,
    };
    let rss =
        |pid: u32| fraud::vm_rss_kib(pid).ok_or_else(|| format!("cannot read VmRSS of pid {pid}"));
    let before = a.pid.map(rss).transpose()?;
    let mut codec: Box<dyn fraud::IngestCodec> = match a.target {
        Target::Tarn => Box::new(fraud::TarnIngestCodec::new(
            shape.clone(),
            plan.batch,
            a.seed,
            Some(fraud::producer_base()),
        )),
        Target::Redis => Box::new(fraud::RedisFraudCodec::new(
            shape.clone(),
            plan.batch,
            a.seed,
        )),
    };
    let st = fraud::load(addr, codec.as_mut(), &shape, &plan)?;
    eprintln!(
        "loaded {} events ({} cards x {} buckets) in {:.1}s ({:.0} events/s, {} batches, {} error replies); active keys: {} cards, {} accounts, {} devices",
        st.events,
        st.cards,
        plan.buckets,
        st.secs,
        st.events as f64 / st.secs.max(1e-9),
        st.batches,
        st.errors,
        st.cards,
        st.accounts,
        st.devices
    );
    if st.errors > 0 {
        return Err(format!("load got {} error replies", st.errors));
    }
    if let (Some(pid), Some(before)) = (a.pid, before) {
        std::thread::sleep(std::time::Duration::from_secs_f64(a.settle.max(0.0)));
        let after = rss(pid)?;
        let keys = views
            .iter()
            .map(|v| match v {
                View::Card => st.cards,
                View::Account => st.accounts,
                View::Device => st.devices,
            })
            .collect();
        let mut notes = a.record.notes.clone();
        if !notes.is_empty() {
            notes.push_str("; ");
        }
        notes.push_str(&format!(
            "loaded at {:.0} events/s in batches of {}",
            st.events as f64 / st.secs.max(1e-9),
            plan.batch
        ));
        let m = MemRecord {
            suite: a.record.suite.clone(),
            system: a.record.label.clone().unwrap_or_else(|| "tarn".into()),
            views: views.iter().map(|v| v.name().to_string()).collect(),
            events: st.events,
            keys,
            rss_before_kib: before,
            rss_after_kib: after,
            load_secs: st.secs,
            tag: a.record.tag.clone(),
            notes,
        };
        let per_key = if m.total_keys() > 0 {
            format!(
                ", +{:.0} B per active key per view",
                m.delta_bytes() as f64 / m.total_keys() as f64
            )
        } else {
            String::new()
        };
        println!(
            "{} | memory | views {:?} | {} events | RSS {} -> {} KiB (+{} B per event{per_key})",
            m.system,
            m.views,
            m.events,
            m.rss_before_kib,
            m.rss_after_kib,
            m.delta_bytes() / m.events.max(1),
        );
        if let Some(p) = &a.record.json {
            report::append_json_line(p, &m).map_err(|e| format!("writing {}: {e}", p.display()))?;
        }
    }
    Ok(())
}

pub fn features_fresh(a: &FeatFreshArgs) -> Result<(), String> {
    let cfg = fraud::FreshConfig {
        addr: resolve(&a.addr)?,
        warmup_ns: secs_to_ns(a.warmup),
        measure_ns: secs_to_ns(a.seconds),
        interval_ns: (a.interval_us.max(0.0) * 1000.0) as u64,
        max_reads: a.max_reads.max(1),
        bg: (a.bg_rate > 0.0).then(|| fraud::BgLoad {
            events_per_sec: a.bg_rate,
            conns: a.bg_conns.max(1),
            batch: a.bg_batch.max(1),
            depth: a.bg_depth.max(1),
        }),
        shape: a.shape.shape(),
        cpu: a.cpu,
        seed: a.seed,
    };
    let before = cpu_mark(a.cpu);
    let out = fraud::freshness(&cfg)?;
    let interference = interference_pct(before);
    let mut notes = a.record.notes.clone();
    let mut add = |s: String| {
        if !notes.is_empty() {
            notes.push_str("; ");
        }
        notes.push_str(&s);
    };
    let pct = |n: u64| 100.0 * n as f64 / out.probes.max(1) as f64;
    add(format!(
        "{:.2}% of probes needed more than one read (max {} reads)",
        pct(out.multi_read),
        out.max_reads
    ));
    if out.never_visible > 0 {
        add(format!(
            "{} probes ({:.2}%) never visible within {} reads",
            out.never_visible,
            pct(out.never_visible),
            a.max_reads
        ));
    }
    let mode = match &out.bg {
        None => "no background load".to_string(),
        Some(Ok(bg)) => {
            let r = &bg.recorder;
            add(format!(
                "background: {:.0} ev/s achieved of {:.0} ({} conns, batches of {}, batch ack p99 {:.0} µs{}{})",
                r.throughput() * a.bg_batch as f64,
                a.bg_rate,
                a.bg_conns,
                a.bg_batch,
                LatSummary::from_ns(&r.hist).p99_us,
                if r.errors > 0 { format!(", {} error replies", r.errors) } else { String::new() },
                if bg.unsent > 0 { format!(", {} batches never sent (overloaded)", bg.unsent) } else { String::new() },
            ));
            format!(
                "bg {:.0} ev/s, probe every {:.0} µs",
                a.bg_rate, a.interval_us
            )
        }
        Some(Err(e)) => {
            add(format!("background load FAILED: {e}"));
            format!("bg {:.0} ev/s (failed)", a.bg_rate)
        }
    };
    if let Some(cpu) = a.cpu {
        add(format!("client on CPU {cpu}"));
    }
    if let Some(pct) = interference.filter(|p| *p >= 2.0) {
        add(format!(
            "WARNING: other processes used {pct:.0}% of the client CPU"
        ));
    }
    let system = a.record.label.clone().unwrap_or_else(|| "tarn".into());
    let secs = out.measure_secs.max(1e-9);
    let visible = BenchRecord {
        suite: a.record.suite.clone(),
        system: system.clone(),
        workload: a
            .record
            .workload_label
            .clone()
            .unwrap_or_else(|| "freshness: INGEST ack → FEATURES on 2nd conn sees it".into()),
        mode: mode.clone(),
        conns: 2,
        depth: 1,
        throughput: out.probes as f64 / secs,
        lat: LatSummary::from_ns(&out.visible),
        lat_corrected: None,
        notes,
        tag: a.record.tag.clone(),
        unit: Some("probes/s".into()),
    };
    emit(&a.record, visible)?;
    let ack = BenchRecord {
        suite: a.record.suite.clone(),
        system,
        workload: "INGEST x1 event (freshness probe, tagged)".into(),
        mode,
        conns: 1,
        depth: 1,
        throughput: out.probes as f64 / secs,
        lat: LatSummary::from_ns(&out.ack),
        lat_corrected: None,
        notes: "ack latency of the probe events above".into(),
        tag: None,
        unit: Some("ev/s".into()),
    };
    emit(&a.record, ack)
}
