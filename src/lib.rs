//! The Tarn appliance: configuration, the data directory, start-up checks and the shard
//! executors that serve the binary protocol.
//!
//! API boundary: this crate owns sockets and processes. It never encodes a frame by hand
//! (`tarn-net` does), never lays out bytes on disk (`tarn-storage` does) and never interprets
//! SQL or rows itself (`tarn-core` does).

pub mod checks;
pub mod config;
pub mod datadir;
pub mod server;
