//! `fraud_check` through the full server path (issue 9's performance section): the whole
//! decision context of a card payment — the named context of `examples/fraud/schema.sql`, 11
//! items over 4 tables, 4 feature views, the recent events and a filtered kNN — from Tarn in
//! one CONTEXT round trip, next to the same data from Redis 7 in one pipelined round trip per
//! dependent hop (three; the kNN a client-side exact scan, see [`tarn_bench::context`]), and
//! next to each system's point read of the card in the same run.
//!
//! `bench/run.sh fraud-check` = build tarnd, tarn, this binary and the Go tool, then
//! `target/release/fraud_check --server-cpu 0 --client-cpu 1 --go-bench target/go/tarn-go-bench`.
//! Smoke run: `--cards 3000 --accounts 1000 --events 20000 --seconds 1 --warmup 0.5`.
//!
//! In order: generate the data set (seeded) and its files; start `taskset -c <server-cpu>
//! tarnd --shards <n>` (n > 1 on one CPU: executors unpinned on that CPU, so keys are on
//! different shards and both systems get one CPU); load it with the `tarn` CLI; wait for the
//! index; check a sample of calls against the oracle; time GET, CONTEXT at each `--conns`
//! (closed loop, one call in flight per connection), and the Go client's CONTEXT; stop tarnd;
//! start Redis on the same CPU, load, check, time HGETALL and both Redis variants; write
//! `bench/results/fraud-check-<shards>shards-<date>.md`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::rc::Rc;
use std::time::Instant;

use clap::Parser;
use tarn_bench::ann::server::{free_port, process_sched, Sched, Tarnd, TarndOpts};
use tarn_bench::context::report::{self, Row};
use tarn_bench::context::{self, verify, BenchData, Sizes};
use tarn_bench::engine::{self, EngineConfig, LoadMode};
use tarn_bench::machine;
use tarn_bench::stats::LatSummary;
use tarn_bench::sys::{self_cpu_ns, CpuMark};
use tarn_bench::target::CodecFactory;
use tarn_bench::workload::Workload;

#[derive(Parser)]
#[command(
    name = "fraud_check",
    about = "fraud_check: Tarn CONTEXT next to Redis"
)]
struct Cli {
    #[arg(long)]
    tarnd: Option<PathBuf>,
    /// The `tarn` CLI (loads the data set).
    #[arg(long)]
    tarn: Option<PathBuf>,
    /// The Go load generator (clients/go/cmd/tarn-go-bench); its rows are left out without it.
    #[arg(long)]
    go_bench: Option<PathBuf>,
    #[arg(long, default_value_t = 0)]
    server_cpu: usize,
    #[arg(long, default_value_t = 1)]
    client_cpu: usize,
    #[arg(long, default_value_t = 2)]
    shards: u32,
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Connection counts, each a closed loop with one call in flight per connection.
    #[arg(long, default_value = "1,32")]
    conns: String,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    #[arg(long, default_value_t = 50_000)]
    accounts: usize,
    #[arg(long, default_value_t = 100_000)]
    cards: usize,
    #[arg(long, default_value_t = 1_000)]
    merchants: usize,
    #[arg(long, default_value_t = 500_000)]
    events: usize,
    #[arg(long, default_value_t = 30)]
    span_minutes: u32,
    /// Calls drawn (distinct cards); requests cycle over them at random.
    #[arg(long, default_value_t = 20_000)]
    calls: usize,
    /// Calls checked against the oracle on each system before timing.
    #[arg(long, default_value_t = 100)]
    verify: usize,
    /// Report directory.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Leave Redis out (a quicker run while working on Tarn's side; the goals need Redis).
    #[arg(long)]
    skip_redis: bool,
}

struct Run<'a> {
    cli: &'a Cli,
    conns: Vec<usize>,
    rows: Vec<Row>,
    notes: Vec<String>,
}

impl Run<'_> {
    /// Times `factory` at `conns` connections; `sched` reads the server's scheduler counts.
    fn measure(
        &mut self,
        addr: &str,
        factory: &dyn CodecFactory,
        (system, op, trips): (&str, &str, &str),
        conns: usize,
        sched: &dyn Fn() -> Sched,
    ) -> Result<(), String> {
        let calls = self.cli.calls as u64;
        let cfg = EngineConfig {
            addr: addr.parse::<SocketAddr>().map_err(|e| e.to_string())?,
            conns,
            mode: LoadMode::Closed { depth: 1 },
            spin: false,
            warmup_ns: (self.cli.warmup * 1e9) as u64,
            measure_ns: (self.cli.seconds * 1e9) as u64,
            drain_ns: 5_000_000_000,
            seed: self.cli.seed ^ conns as u64,
            workload: Workload {
                keys: calls,
                value_size: 0,
                write_ratio: 0.0,
                batch: 1,
            },
            expected_interval_ns: None,
        };
        let (sched0, client0) = (sched(), self_cpu_ns());
        let out = engine::run(&cfg, factory)?;
        let (server, client) = (sched() - sched0, self_cpu_ns() - client0);
        let r = &out.recorder;
        let total = r.completed + r.warmup_completed;
        let row = Row {
            system: system.into(),
            op: op.into(),
            conns,
            round_trips: trips.into(),
            lat: LatSummary::from_ns(&r.hist),
            corrected: r
                .corrected
                .as_ref()
                .map(LatSummary::from_ns)
                .unwrap_or_default(),
            throughput: r.throughput(),
            errors: r.errors,
            server_cpu_us: (total > 0).then(|| server.run_ns as f64 / 1e3 / total as f64),
            client_cpu_us: (total > 0).then(|| client as f64 / 1e3 / total as f64),
            server_runs: (total > 0).then(|| server.timeslices as f64 / total as f64),
        };
        eprintln!(
            "{system} {op} conns={conns}: {} {:.0}/s errors={}",
            row.lat.line(),
            row.throughput,
            row.errors
        );
        self.rows.push(row);
        Ok(())
    }
}

fn main() {
    let cli = Cli::parse();
    if let Err(e) = run(&cli) {
        eprintln!("fraud_check: {e}");
        std::process::exit(1);
    }
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("bench/ has a parent")
}

fn run(cli: &Cli) -> Result<(), String> {
    tarn_bench::sys::pin_current_thread(cli.client_cpu)
        .map_err(|e| format!("pin to CPU {}: {e}", cli.client_cpu))?;
    if cfg!(debug_assertions) {
        eprintln!("warning: debug build; run with --release for meaningful numbers");
    }
    let conns = tarn_bench::ann::parse_efs(&cli.conns).map_err(|e| format!("--conns: {e}"))?;
    let sizes = Sizes {
        seed: cli.seed,
        accounts: cli.accounts,
        cards: cli.cards,
        merchants: cli.merchants,
        events: cli.events,
        span_minutes: cli.span_minutes,
        calls: cli.calls,
    };
    let t = Instant::now();
    let data = Rc::new(BenchData::generate(
        &sizes,
        tarn_bench::clock::realtime_us(),
    )?);
    eprintln!(
        "data set: {} accounts, {} cards, {} devices, {} events, {} calls in {:.1} s",
        data.data.accounts.len(),
        data.data.cards.len(),
        data.data.devices.len(),
        data.data.events.len(),
        data.calls.len(),
        t.elapsed().as_secs_f64()
    );
    let dir = std::env::temp_dir().join(format!("tarn-fraud-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let result = measure_all(cli, conns, &data, &dir);
    let _ = std::fs::remove_dir_all(&dir); // best effort: the run's outcome is the news
    result
}

fn measure_all(
    cli: &Cli,
    conns: Vec<usize>,
    data: &Rc<BenchData>,
    dir: &Path,
) -> Result<(), String> {
    data.data
        .write_files(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut run = Run {
        cli,
        conns,
        rows: Vec::new(),
        notes: Vec::new(),
    };
    let load = tarn_side(&mut run, data, dir)?;
    let redis = if cli.skip_redis {
        Setup {
            load_s: 0.0,
            checked: verify::Checked::default(),
            interference: "not run (--skip-redis)".into(),
        }
    } else {
        redis_side(&mut run, data)?
    };
    let md = report(&run, data, &load, &redis);
    let out = cli
        .out
        .clone()
        .unwrap_or_else(|| root().join("bench/results"));
    std::fs::create_dir_all(&out).map_err(|e| e.to_string())?;
    let (date, _) = machine::utc_now();
    let path = out.join(format!("fraud-check-{}shards-{date}.md", cli.shards));
    std::fs::write(&path, md).map_err(|e| format!("{}: {e}", path.display()))?;
    eprintln!("report: {}", path.display());
    Ok(())
}

/// What the report says about one system's setup.
struct Setup {
    load_s: f64,
    checked: verify::Checked,
    interference: String,
}

fn tarn_side(run: &mut Run, data: &Rc<BenchData>, dir: &Path) -> Result<Setup, String> {
    let cli = run.cli;
    let opts = TarndOpts {
        binary: cli
            .tarnd
            .clone()
            .unwrap_or_else(|| root().join("target/release/tarnd")),
        cpu: cli.server_cpu,
        durability: "sync".into(),
        shards: cli.shards,
        extra: Vec::new(),
    };
    let t = Tarnd::start(&opts)?;
    let addr = t.addr.clone();
    let tarn = cli
        .tarn
        .clone()
        .unwrap_or_else(|| root().join("target/release/tarn"));
    let started = Instant::now();
    context::tarn::load(&tarn, &addr, &root().join("examples/fraud/schema.sql"), dir)
        .map_err(|e| format!("{e} (tarnd log: {})", t.log_tail()))?;
    let mut c = tarn_client::Client::connect(&addr).map_err(|e| e.to_string())?;
    tarn_bench::ann::served::wait_built(&mut c, "device_fp")?;
    drop(c);
    let load_s = started.elapsed().as_secs_f64();
    eprintln!("tarn: loaded in {load_s:.1} s");
    let checked = verify::tarn(&addr, data, cli.verify)?;
    eprintln!("{}", checked.line("tarn"));
    let server_mark = CpuMark::take(cli.server_cpu, t.cpu_ns());
    let client_mark = CpuMark::take(cli.client_cpu, self_cpu_ns());
    let sched = || t.sched();
    let get = context::tarn::get_factory(&data.calls);
    run.measure(
        &addr,
        &get,
        (report::TARN, report::TARN_GET, "1"),
        1,
        &sched,
    )?;
    let ctx = context::tarn::context_factory(&data.calls);
    for n in run.conns.clone() {
        run.measure(
            &addr,
            &ctx,
            (report::TARN, report::TARN_CONTEXT, "1"),
            n,
            &sched,
        )?;
    }
    if let Some(go) = &cli.go_bench {
        let params = dir.join("go-params.tsv");
        let text: String = data
            .calls
            .iter()
            .map(|c| {
                format!(
                    "card_id={}\tdevice_id={}\tip={}\n",
                    c.card_id, c.device_id, c.ip
                )
            })
            .collect();
        std::fs::write(&params, text).map_err(|e| format!("{}: {e}", params.display()))?;
        for n in run.conns.clone() {
            go_row(run, go, &addr, &params, n, &sched)?;
        }
    }
    let interference = interference(cli, server_mark, client_mark, t.cpu_ns());
    t.stop()?;
    Ok(Setup {
        load_s,
        checked,
        interference,
    })
}

fn interference(cli: &Cli, s: Option<CpuMark>, c: Option<CpuMark>, server_ns: u64) -> String {
    let pct = |x: Option<f64>| x.map_or("unknown".to_string(), |p| format!("{p:.1} %"));
    format!(
        "other processes took {} of CPU {} and {} of CPU {} while timed",
        pct(s.and_then(|m| m.other_pct(server_ns))),
        cli.server_cpu,
        pct(c.and_then(|m| m.other_pct(self_cpu_ns()))),
        cli.client_cpu
    )
}

/// The Go client's CONTEXT at `conns`, pinned to the client CPU.
fn go_row(
    run: &mut Run,
    go: &Path,
    addr: &str,
    params: &Path,
    conns: usize,
    sched: &dyn Fn() -> Sched,
) -> Result<(), String> {
    let sched0 = sched();
    let out = Command::new("taskset")
        .arg("-c")
        .arg(run.cli.client_cpu.to_string())
        .arg(go)
        .args(["-addr", addr, "-context", context::CONTEXT, "-items", "11"])
        .arg("-params")
        .arg(params)
        .args(["-conns", &conns.to_string()])
        .args(["-warmup", &run.cli.warmup.to_string()])
        .args(["-seconds", &run.cli.seconds.to_string()])
        .output()
        .map_err(|e| format!("cannot run {}: {e}", go.display()))?;
    let server = sched() - sched0;
    if !out.status.success() {
        return Err(format!(
            "{}: {}",
            go.display(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("{} printed no JSON: {e}", go.display()))?;
    let lat = |k: &str| -> LatSummary {
        let h = &v[k];
        let f = |n: &str| h[n].as_f64().unwrap_or(f64::NAN);
        LatSummary {
            count: h["count"].as_u64().unwrap_or(0),
            mean_us: f("mean"),
            p50_us: f("p50"),
            p90_us: f("p90"),
            p99_us: f("p99"),
            p999_us: f("p999"),
            max_us: f("max"),
        }
    };
    // The Go tool reports only the measured calls; its warm-up calls also cost the server.
    let warm = v["warmup_requests"].as_u64();
    let requests = v["requests"].as_u64().unwrap_or(0) + warm.unwrap_or(0);
    let row = Row {
        system: format!(
            "Tarn (Go client, {})",
            v["go_version"].as_str().unwrap_or("go")
        ),
        op: report::TARN_CONTEXT.into(),
        conns,
        round_trips: "1".into(),
        lat: lat("latency_us"),
        corrected: lat("corrected_latency_us"),
        throughput: v["throughput_per_s"].as_f64().unwrap_or(0.0),
        errors: v["errors"].as_u64().unwrap_or(0),
        server_cpu_us: (warm.is_some() && requests > 0)
            .then(|| server.run_ns as f64 / 1e3 / requests as f64),
        client_cpu_us: None,
        server_runs: (warm.is_some() && requests > 0)
            .then(|| server.timeslices as f64 / requests as f64),
    };
    eprintln!(
        "go conns={conns}: {} {:.0}/s",
        row.lat.line(),
        row.throughput
    );
    run.rows.push(row);
    Ok(())
}

/// A private redis-server on the server CPU (bench/peers/redis.sh), stopped on drop.
struct Redis {
    port: u16,
    dir: PathBuf,
}

impl Redis {
    fn script(&self, verb: &str, cpu: usize) -> Result<String, String> {
        let out = Command::new(root().join("bench/peers/redis.sh"))
            .arg(verb)
            .env("REDIS_PORT", self.port.to_string())
            .env("REDIS_CPU", cpu.to_string())
            .env("REDIS_DIR", &self.dir)
            .output()
            .map_err(|e| format!("bench/peers/redis.sh {verb}: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "bench/peers/redis.sh {verb}: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    fn pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.dir.join("redis.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        if let Err(e) = self.script("stop", 0) {
            eprintln!("fraud_check: {e}");
        }
    }
}

fn redis_side(run: &mut Run, data: &Rc<BenchData>) -> Result<Setup, String> {
    let cli = run.cli;
    let port = free_port(16_379)?;
    let redis = Redis {
        port,
        dir: std::env::temp_dir().join(format!("tarn-fraud-check-redis-{}", std::process::id())),
    };
    let started_text = redis.script("start", cli.server_cpu)?;
    run.notes.push(started_text);
    let addr = format!("127.0.0.1:{port}");
    let t = Instant::now();
    let cmds = context::redis::load(&addr, &data.data)?;
    let load_s = t.elapsed().as_secs_f64();
    eprintln!("redis: {cmds} commands loaded in {load_s:.1} s");
    let checked = verify::redis(&addr, data, cli.verify)?;
    eprintln!("{}", checked.line("redis"));
    let pid = redis.pid().ok_or("redis.sh wrote no pid file")?;
    let sched = move || process_sched(pid);
    let server_mark = CpuMark::take(cli.server_cpu, sched().run_ns);
    let client_mark = CpuMark::take(cli.client_cpu, self_cpu_ns());
    let get = context::RedisGetFactory { data: data.clone() };
    run.measure(&addr, &get, (report::REDIS, "HGETALL card", "1"), 1, &sched)?;
    for knn in [true, false] {
        let f = context::RedisContextFactory {
            data: data.clone(),
            knn,
        };
        let (op, trips) = if knn {
            (report::REDIS_CONTEXT, "3")
        } else {
            (report::REDIS_FLOOR, "2")
        };
        for n in run.conns.clone() {
            run.measure(&addr, &f, (report::REDIS, op, trips), n, &sched)?;
        }
    }
    let interference = interference(cli, server_mark, client_mark, sched().run_ns);
    drop(redis);
    Ok(Setup {
        load_s,
        checked,
        interference,
    })
}

fn report(run: &Run, data: &BenchData, tarn: &Setup, redis: &Setup) -> String {
    report::render(&report::Input {
        machine: machine::describe(),
        date: machine::utc_now(),
        command: std::env::args().collect::<Vec<_>>().join(" "),
        shards: run.cli.shards,
        server_cpu: run.cli.server_cpu,
        client_cpu: run.cli.client_cpu,
        seconds: run.cli.seconds,
        warmup: run.cli.warmup,
        data: format!(
            "{} accounts, {} cards, {} devices ({} kNN candidates), {} merchants, {} events over \
             {} minutes; {} calls",
            data.data.accounts.len(),
            data.data.cards.len(),
            data.data.devices.len(),
            data.prints.candidates(),
            data.data.merchants.len(),
            data.data.events.len(),
            run.cli.span_minutes,
            data.calls.len()
        ),
        setups: vec![
            (
                "Tarn",
                tarn.load_s,
                tarn.checked.line("Tarn"),
                tarn.interference.clone(),
            ),
            (
                "Redis",
                redis.load_s,
                redis.checked.line("Redis"),
                redis.interference.clone(),
            ),
        ],
        exact: tarn.checked.exact() && redis.checked.exact(),
        notes: run.notes.clone(),
        rows: run.rows.clone(),
    })
}
