//! tarn-bench: a single-threaded, epoll-driven load generator for Tarn and its peers
//! (Redis over RESP, PostgreSQL through pgbench), plus the physical floors (loopback
//! ping-pong, fdatasync). See `bench/README.md` for methodology.
//!
//! Everything that decides *which* number gets recorded (scheduling, coordinated-omission
//! correction, warm-up windows, protocol parsing) is plain logic with unit tests; nothing
//! in the tests asserts on wall-clock times.
//!
//! The commands of the `tarn-bench` binary (their options and what they run) are in
//! [`suites`]; the binary itself only parses the arguments and dispatches.

pub mod ann;
pub mod clock;
pub mod context;
pub mod engine;
pub mod floors;
pub mod fraud;
pub mod machine;
pub mod pglog;
pub mod report;
pub mod resp;
pub mod sched;
pub mod stats;
pub mod suites;
pub mod sys;
pub mod target;
pub mod tarn;
pub mod vecdata;
pub mod workload;
