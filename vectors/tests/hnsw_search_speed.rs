//! In-process HNSW search throughput, for comparing storage layouts (run by hand, release):
//! `cargo test -p tarn-vectors --release --test hnsw_search_speed -- --ignored --nocapture`.
//! Prints queries/s; asserts only that every search returns `k` rows (behaviour, not time).
//!
//! On a shared machine wall time is noise; count instructions instead, by difference:
//! `TARN_SPEED_ROWS=10000 TARN_SPEED_REPEAT=0` and `=2` under `valgrind --tool=callgrind`,
//! (Ir₂ − Ir₀) / 4,000 queries (measured: 96.5 k before copy-on-write blocks, 101.2 k after).

mod common;

use std::time::Instant;

use common::{clustered, rng};
use tarn_vectors::{HnswIndex, HnswParams, Metric, SearchParams, VectorIndex};

/// Rows of the measured index (`TARN_SPEED_ROWS` overrides).
const ROWS: usize = 50_000;
const DIM: usize = 128;
const QUERIES: usize = 2_000;
const K: usize = 10;

#[test]
#[ignore = "a measurement, run by hand in release"]
fn search_throughput() {
    let rows = std::env::var("TARN_SPEED_ROWS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(ROWS);
    let mut r = rng(5);
    let data = clustered(&mut r, rows + QUERIES, DIM, 64);
    let mut idx = HnswIndex::new(Metric::L2, DIM, HnswParams::default()).unwrap();
    let t = Instant::now();
    for (i, v) in data[..rows].iter().enumerate() {
        idx.upsert(i as u64, v).unwrap();
    }
    let build = t.elapsed();
    let params = SearchParams::default();
    // `TARN_SPEED_REPEAT` passes over the queries (0 and n under `perf stat` give the
    // instructions of the searches alone by difference).
    let repeat: usize = std::env::var("TARN_SPEED_REPEAT")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let mut found = 0;
    let t = Instant::now();
    for _ in 0..repeat {
        for q in &data[rows..] {
            let got = idx.search(q, K, &|_| true, &params).unwrap();
            found += got.len();
        }
    }
    let search = t.elapsed();
    assert_eq!(found, repeat * QUERIES * K);
    println!(
        "rows {rows} dim {DIM}: build {:.1} s ({:.0} inserts/s), search {:.0} q/s (ef 40, k {K})",
        build.as_secs_f64(),
        rows as f64 / build.as_secs_f64(),
        (repeat * QUERIES) as f64 / search.as_secs_f64()
    );
}
