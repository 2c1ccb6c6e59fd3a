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
    // A panic anywhere — a failed assertion on a shard: a mis-routed message, a broken
    // invariant — stops the whole process. glommio would otherwise end only that shard's
    // thread, and the others would keep serving next to a dead shard (its keys unreachable,
    // shutdown waiting for it forever). After the abort a restart recovers from the logs.
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        report(info);
        std::process::abort();
    }));
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
