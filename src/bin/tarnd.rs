//! `tarnd`: the Tarn server.

use clap::Parser;

/// mimalloc instead of glibc malloc: every request allocates (decoded rows, keys, replies) and
/// glibc's malloc/free were ~14% of a shard's CPU under durable-write load.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TARN_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let args = tarn::config::Args::parse();
    let cfg = match tarn::config::Config::from_args(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("tarnd: {e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = tarn::server::run(cfg) {
        eprintln!("tarnd: {e}");
        std::process::exit(1);
    }
}
