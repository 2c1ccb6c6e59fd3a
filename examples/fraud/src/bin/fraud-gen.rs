//! `fraud-gen`: writes the fraud example's data set (accounts, cards, devices, merchants as
//! JSON lines for `tarn upsert`, transactions for `tarn ingest`) into a directory, and prints
//! the planted ring's members. The same flags give the same files (`--now-us` included).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use clap::Parser;
use fraud::{Config, Dataset, FILES};

/// Generate the fraud example's data set (see examples/fraud/README.md).
#[derive(Parser, Debug)]
#[command(name = "fraud-gen", version)]
struct Args {
    /// Seed of the generator: the same seed gives the same data
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Directory to write the .jsonl files into (created if missing)
    #[arg(long, default_value = "fraud-data")]
    out: PathBuf,
    /// Events are dated in the minutes before this time (µs since the epoch) [default: now]
    #[arg(long, value_name = "US")]
    now_us: Option<i64>,
    /// Ordinary accounts
    #[arg(long, default_value_t = 200)]
    accounts: usize,
    /// Ordinary cards
    #[arg(long, default_value_t = 300)]
    cards: usize,
    #[arg(long, default_value_t = 40)]
    merchants: usize,
    /// Ordinary transactions
    #[arg(long, default_value_t = 2_800)]
    events: usize,
    /// Minutes before --now-us the ordinary transactions spread over
    #[arg(long, default_value_t = 30)]
    span_minutes: u32,
    /// Accounts of the ring, shared by its cards
    #[arg(long, default_value_t = 2)]
    ring_accounts: usize,
    #[arg(long, default_value_t = 12)]
    ring_cards: usize,
    /// Devices of the ring (near-identical fingerprints)
    #[arg(long, default_value_t = 4)]
    ring_devices: usize,
    /// Transactions of the ring's cards, in a burst
    #[arg(long, default_value_t = 200)]
    ring_events: usize,
    /// Minutes before --now-us the ring's burst spreads over
    #[arg(long, default_value_t = 5)]
    burst_minutes: u32,
}

fn main() -> ExitCode {
    let a = Args::parse();
    let now_us = a.now_us.unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock before 1970")
            .as_micros() as i64
    });
    let config = Config {
        seed: a.seed,
        now_us,
        accounts: a.accounts,
        cards: a.cards,
        merchants: a.merchants,
        events: a.events,
        span_minutes: a.span_minutes,
        ring_accounts: a.ring_accounts,
        ring_cards: a.ring_cards,
        ring_devices: a.ring_devices,
        ring_events: a.ring_events,
        burst_minutes: a.burst_minutes,
    };
    if let Err(e) = config.check() {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    let data = Dataset::generate(&config);
    if let Err(e) = std::fs::create_dir_all(&a.out).and_then(|_| data.write_files(&a.out)) {
        eprintln!("error: writing {}: {e}", a.out.display());
        return ExitCode::FAILURE;
    }
    for (name, file) in FILES {
        let n = data.json_lines(name).len();
        println!("{:>6} {name:<12} {}", n, a.out.join(file).display());
    }
    let r = &data.ring;
    println!("ring accounts: {}", r.accounts.join(" "));
    println!("ring devices:  {}", r.devices.join(" "));
    println!("ring cards:    {}", r.cards.join(" "));
    println!("ring ips:      {}", r.ips.join(" "));
    println!("decoy (allowlisted, near the ring): {}", r.decoy_device);
    ExitCode::SUCCESS
}
