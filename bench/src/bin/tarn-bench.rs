//! tarn-bench: load generator and floors. See bench/README.md.
//!
//! This binary parses the arguments and dispatches; the commands live in
//! `tarn_bench::suites`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use tarn_bench::report;
use tarn_bench::suites::features::{
    features_fresh, features_load, features_setup, FeatFreshArgs, FeatLoadArgs, FeatSetupArgs,
};
use tarn_bench::suites::floor::{floor_fsync, floor_ping, FsyncArgs, PingArgs};
use tarn_bench::suites::pgbench::{pgbench_log, PgArgs};
use tarn_bench::suites::run::{preload, run, Outcome, PreloadArgs, RunArgs, EXIT_INTERFERENCE};
#[derive(Parser)]
#[command(
    name = "tarn-bench",
    version,
    about = "Tarn load generator, peers and floors"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Drive load against a server (closed loop by default, open loop with --rate).
    Run(RunArgs),
    /// Preload keys 0..K (batched upserts / MSETs) and exit.
    Preload(PreloadArgs),
    /// Loopback TCP ping-pong floor: same-core, cross-core parked, cross-core busy-poll.
    FloorPingpong(PingArgs),
    /// 4 KiB fdatasync floor: append+fdatasync, O_DIRECT overwrite+fdatasync, O_DIRECT|O_DSYNC.
    FloorFsync(FsyncArgs),
    /// Summarise pgbench per-transaction logs (pgbench -l) into a result record.
    PgbenchLog(PgArgs),
    /// Render a JSONL results file as Markdown tables.
    Report { file: PathBuf },
    /// Features suite: create the fraud stream and its feature views on tarnd.
    FeaturesSetup(FeatSetupArgs),
    /// Features suite: bulk-load fraud events (Tarn or Redis), optionally recording the
    /// server's RSS before and after (--pid).
    FeaturesLoad(FeatLoadArgs),
    /// Features suite: freshness probe (ack → visible on another connection) under
    /// background ingest.
    FeaturesFresh(FeatFreshArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let res = match &cli.cmd {
        Cmd::Run(a) => match run(a) {
            Ok(Outcome::Done) => Ok(()),
            Ok(Outcome::Interfered) => return ExitCode::from(EXIT_INTERFERENCE),
            Err(e) => Err(e),
        },
        Cmd::Preload(a) => preload(&a.target, &a.workload, a.chunk),
        Cmd::FloorPingpong(a) => floor_ping(a),
        Cmd::FloorFsync(a) => floor_fsync(a),
        Cmd::PgbenchLog(a) => pgbench_log(a),
        Cmd::Report { file } => std::fs::read_to_string(file)
            .map_err(|e| format!("{}: {e}", file.display()))
            .and_then(|t| report::parse_lines(&t))
            .map(|ls| print!("{}", report::render_all(&ls))),
        Cmd::FeaturesSetup(a) => features_setup(a),
        Cmd::FeaturesLoad(a) => features_load(a),
        Cmd::FeaturesFresh(a) => features_fresh(a),
    };
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tarn-bench: error: {e}");
            ExitCode::FAILURE
        }
    }
}
