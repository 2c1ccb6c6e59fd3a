//! Server configuration: command-line flags over an optional TOML file over built-in defaults.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use serde::Deserialize;
use tarn_storage::Durability;

use crate::server::limits::{
    DEFAULT_FRAME_TIMEOUT_MS, DEFAULT_HANDSHAKE_TIMEOUT_MS, DEFAULT_IDLE_TIMEOUT_S,
    MAX_CONNECTION_TIMEOUT_S,
};

/// Default listen address: loopback only, so a fresh install is not reachable from the network.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7070";
/// Default data directory, relative to the working directory.
pub const DEFAULT_DATA_DIR: &str = "./tarn-data";

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DurabilityArg {
    /// Acknowledge a write after its log record is fdatasync'd (default).
    Sync,
    /// Acknowledge after apply; the log is flushed within a bounded interval.
    Async,
}

/// `tarnd` command line. Every flag can also be set in the TOML file given by `--config`
/// (same names, `_` for `-`); a flag on the command line wins over the file.
#[derive(Parser, Debug, Default)]
#[command(
    name = "tarnd",
    version,
    about = "Tarn server: a single-node Context Lake appliance"
)]
pub struct Args {
    /// TOML configuration file (e.g. /etc/tarn/tarn.toml).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Address every shard listens on (SO_REUSEPORT). Default 127.0.0.1:7070.
    #[arg(long)]
    pub listen: Option<String>,
    /// Data directory. Default ./tarn-data.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Number of shards (one pinned executor each). Default: the count recorded in the data
    /// directory, else one per available CPU.
    #[arg(long)]
    pub shards: Option<u32>,
    /// Write durability: sync (ack after fdatasync) or async (ack after apply).
    #[arg(long, value_enum)]
    pub durability: Option<DurabilityArg>,
    /// Async mode: longest time an acknowledged write waits before it is flushed, in ms.
    #[arg(long)]
    pub async_flush_ms: Option<u64>,
    /// Require this token in every client's HELLO (env TARN_AUTH_TOKEN).
    #[arg(long, env = "TARN_AUTH_TOKEN", hide_env_values = true)]
    pub auth_token: Option<String>,
    /// Busy-poll this many microseconds before an idle shard parks (0 = park at once).
    /// Spinning trades a core's idle time for lower wake-up latency.
    #[arg(long)]
    pub spin_us: Option<u64>,
    /// Log segment size in MiB (tests use small segments to exercise rotation).
    #[arg(long)]
    pub segment_mib: Option<u64>,
    /// Take a checkpoint once this many MiB of log were written since the last one.
    #[arg(long)]
    pub checkpoint_mib: Option<u64>,
    /// Close a connection that has not completed its HELLO this many ms after connecting.
    /// Default 10000.
    #[arg(long)]
    pub handshake_timeout_ms: Option<u64>,
    /// Close a connection whose frame, once begun, is not complete after this many ms.
    /// Default 60000.
    #[arg(long)]
    pub frame_timeout_ms: Option<u64>,
    /// Close a connection that received nothing, has no request running and wrote nothing for
    /// this many seconds (0 = never). Default 300.
    #[arg(long)]
    pub idle_timeout_s: Option<u64>,
}

/// The same settings as [`Args`], read from TOML.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    data_dir: Option<PathBuf>,
    shards: Option<u32>,
    durability: Option<DurabilityArg>,
    async_flush_ms: Option<u64>,
    auth_token: Option<String>,
    spin_us: Option<u64>,
    segment_mib: Option<u64>,
    checkpoint_mib: Option<u64>,
    handshake_timeout_ms: Option<u64>,
    frame_timeout_ms: Option<u64>,
    idle_timeout_s: Option<u64>,
}

/// Longest accepted `--async-flush-ms`: beyond this an "acknowledged" write could sit
/// unflushed for longer than any operator would expect of a database.
pub const MAX_ASYNC_FLUSH_MS: u64 = 1_000;
/// Largest shard count: one executor per CPU; more shards than this is a configuration error.
pub const MAX_SHARDS: u32 = 256;

/// Resolved configuration the server runs with.
#[derive(Clone, Debug)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// `None`: take the count recorded in the data directory, else one per CPU.
    pub shards: Option<u32>,
    pub durability: Durability,
    pub async_flush_interval: Duration,
    pub auth_token: Option<String>,
    pub spin: Duration,
    pub segment_size_bytes: u64,
    pub checkpoint_interval_bytes: u64,
    /// A connection must complete its HELLO within this of being accepted.
    pub handshake_timeout: Duration,
    /// A frame must be complete within this of its first byte being read.
    pub frame_timeout: Duration,
    /// `None`: idle connections are never closed.
    pub idle_timeout: Option<Duration>,
}

impl Config {
    pub fn from_args(args: Args) -> Result<Config, String> {
        let file = match &args.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
                toml::from_str::<FileConfig>(&text)
                    .map_err(|e| format!("invalid config file {}: {e}", path.display()))?
            }
            None => FileConfig::default(),
        };
        let listen_text = args
            .listen
            .or(file.listen)
            .unwrap_or_else(|| DEFAULT_LISTEN.to_string());
        let listen: SocketAddr = listen_text.parse().map_err(|e| {
            format!("invalid listen address {listen_text:?}: {e} (expected IP:PORT, e.g. 127.0.0.1:7070)")
        })?;
        let shards = args.shards.or(file.shards);
        if let Some(n) = shards {
            if n == 0 || n > MAX_SHARDS {
                return Err(format!(
                    "--shards must be between 1 and {MAX_SHARDS}, got {n}"
                ));
            }
        }
        let durability = match args
            .durability
            .or(file.durability)
            .unwrap_or(DurabilityArg::Sync)
        {
            DurabilityArg::Sync => Durability::Sync,
            DurabilityArg::Async => Durability::Async,
        };
        let flush_ms = args.async_flush_ms.or(file.async_flush_ms).unwrap_or(5);
        if flush_ms == 0 || flush_ms > MAX_ASYNC_FLUSH_MS {
            return Err(format!(
                "--async-flush-ms must be between 1 and {MAX_ASYNC_FLUSH_MS}, got {flush_ms}"
            ));
        }
        let segment_mib = args.segment_mib.or(file.segment_mib).unwrap_or(64);
        if !(1..=1024).contains(&segment_mib) {
            return Err(format!(
                "--segment-mib must be between 1 and 1024, got {segment_mib}"
            ));
        }
        let checkpoint_mib = args.checkpoint_mib.or(file.checkpoint_mib).unwrap_or(256);
        if checkpoint_mib == 0 {
            return Err("--checkpoint-mib must be at least 1".to_string());
        }
        let max_ms = MAX_CONNECTION_TIMEOUT_S * 1000;
        let handshake_ms = args
            .handshake_timeout_ms
            .or(file.handshake_timeout_ms)
            .unwrap_or(DEFAULT_HANDSHAKE_TIMEOUT_MS);
        if !(1..=max_ms).contains(&handshake_ms) {
            return Err(format!(
                "--handshake-timeout-ms must be between 1 and {max_ms}, got {handshake_ms}"
            ));
        }
        let frame_ms = args
            .frame_timeout_ms
            .or(file.frame_timeout_ms)
            .unwrap_or(DEFAULT_FRAME_TIMEOUT_MS);
        if !(1..=max_ms).contains(&frame_ms) {
            return Err(format!(
                "--frame-timeout-ms must be between 1 and {max_ms}, got {frame_ms}"
            ));
        }
        let idle_s = args
            .idle_timeout_s
            .or(file.idle_timeout_s)
            .unwrap_or(DEFAULT_IDLE_TIMEOUT_S);
        if idle_s > MAX_CONNECTION_TIMEOUT_S {
            return Err(format!(
                "--idle-timeout-s must be between 0 (never) and {MAX_CONNECTION_TIMEOUT_S}, got {idle_s}"
            ));
        }
        let auth_token = args
            .auth_token
            .or(file.auth_token)
            .filter(|t| !t.is_empty());
        Ok(Config {
            listen,
            data_dir: args
                .data_dir
                .or(file.data_dir)
                .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)),
            shards,
            durability,
            async_flush_interval: Duration::from_millis(flush_ms),
            auth_token,
            spin: Duration::from_micros(args.spin_us.or(file.spin_us).unwrap_or(0)),
            segment_size_bytes: segment_mib << 20,
            checkpoint_interval_bytes: checkpoint_mib << 20,
            handshake_timeout: Duration::from_millis(handshake_ms),
            frame_timeout: Duration::from_millis(frame_ms),
            idle_timeout: (idle_s > 0).then(|| Duration::from_secs(idle_s)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(args: &[&str]) -> Result<Config, String> {
        let args = Args::try_parse_from(std::iter::once("tarnd").chain(args.iter().copied()))
            .map_err(|e| e.to_string())?;
        Config::from_args(args)
    }

    #[test]
    fn connection_timeouts_default_to_the_documented_constants() {
        let c = config(&[]).unwrap();
        assert_eq!(
            c.handshake_timeout,
            Duration::from_millis(DEFAULT_HANDSHAKE_TIMEOUT_MS)
        );
        assert_eq!(
            c.frame_timeout,
            Duration::from_millis(DEFAULT_FRAME_TIMEOUT_MS)
        );
        assert_eq!(
            c.idle_timeout,
            Some(Duration::from_secs(DEFAULT_IDLE_TIMEOUT_S))
        );
    }

    #[test]
    fn connection_timeouts_are_set_by_flags_and_checked() {
        let c = config(&[
            "--handshake-timeout-ms",
            "250",
            "--frame-timeout-ms",
            "1500",
            "--idle-timeout-s",
            "0",
        ])
        .unwrap();
        assert_eq!(c.handshake_timeout, Duration::from_millis(250));
        assert_eq!(c.frame_timeout, Duration::from_millis(1500));
        assert_eq!(c.idle_timeout, None, "0 turns the idle timeout off");
        for (flag, value) in [
            ("--handshake-timeout-ms", "0"),
            ("--frame-timeout-ms", "0"),
            ("--handshake-timeout-ms", "86400001"),
            ("--idle-timeout-s", "86401"),
        ] {
            let err = config(&[flag, value]).unwrap_err();
            assert!(err.contains(flag), "{flag} {value}: {err}");
        }
    }

    #[test]
    fn connection_timeouts_are_read_from_the_config_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tarn.toml");
        std::fs::write(
            &path,
            "handshake_timeout_ms = 300\nframe_timeout_ms = 400\nidle_timeout_s = 5\n",
        )
        .unwrap();
        let path = path.display().to_string();
        let c = config(&["--config", &path]).unwrap();
        assert_eq!(c.handshake_timeout, Duration::from_millis(300));
        assert_eq!(c.frame_timeout, Duration::from_millis(400));
        assert_eq!(c.idle_timeout, Some(Duration::from_secs(5)));
        // A flag wins over the file.
        let c = config(&["--config", &path, "--idle-timeout-s", "7"]).unwrap();
        assert_eq!(c.idle_timeout, Some(Duration::from_secs(7)));
    }
}
