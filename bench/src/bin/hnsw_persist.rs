//! Restart cost of an HNSW index, the two ways issue 8 asks to compare: rebuild the graph
//! from the rows (what a shard does at start-up today), or save it (`HnswIndex::encode`, the
//! framed chunks of `vectors/FORMAT.md`) and load it back (`Decoder`).
//!
//! `cargo run --release -p tarn-bench --bin hnsw_persist -- --rows 1000000 --cpu 0`
//!
//! Data: `--rows` vectors of `--dim` from `--clusters` seeded gaussian clusters (centres
//! uniform in [-1, 1], σ 0.1). It times, on one pinned thread: the build (one `upsert` per
//! row, as a shard's build does), the encoding into 1 MiB chunks, writing them to a file in
//! `--dir` with one `fdatasync`, reading the file back and decoding it, and checks that the
//! loaded graph is the same graph (`digest()`) and answers a query the same way. The report
//! goes to stdout and, with `--out`, to a Markdown file.

use std::fs::File;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::Instant;

use clap::Parser;
use tarn_bench::machine;
use tarn_vectors::{Decoder, HnswIndex, HnswParams, Metric, SearchParams, VectorIndex};

#[derive(Parser)]
#[command(
    name = "hnsw_persist",
    about = "HNSW restart: rebuild from rows vs load a saved graph"
)]
struct Cli {
    #[arg(long, default_value_t = 1_000_000)]
    rows: usize,
    #[arg(long, default_value_t = 128)]
    dim: usize,
    #[arg(long, default_value_t = 100)]
    clusters: usize,
    #[arg(long, default_value_t = 16)]
    m: usize,
    #[arg(long, default_value_t = 64)]
    ef_construction: usize,
    /// Directory for the saved graph (on the disk the data dir would be on).
    #[arg(long, default_value = "/tmp")]
    dir: PathBuf,
    /// Pin to this CPU.
    #[arg(long)]
    cpu: Option<usize>,
    /// Also write the report here.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// SplitMix64: a seeded, dependency-free generator (the data only needs to be reproducible).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn gauss(&mut self) -> f64 {
        let (u, v) = (self.unit().max(1e-300), self.unit());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

fn data(cli: &Cli) -> Vec<f32> {
    let mut rng = Rng(0x5eed);
    let centres: Vec<f64> = (0..cli.clusters * cli.dim)
        .map(|_| rng.unit() * 2.0 - 1.0)
        .collect();
    let mut out = Vec::with_capacity(cli.rows * cli.dim);
    for _ in 0..cli.rows {
        let c = (rng.next() % cli.clusters as u64) as usize;
        for d in 0..cli.dim {
            out.push((centres[c * cli.dim + d] + 0.1 * rng.gauss()) as f32);
        }
    }
    out
}

fn main() -> std::io::Result<()> {
    let cli = Cli::parse();
    if let Some(cpu) = cli.cpu {
        tarn_bench::sys::pin_current_thread(cpu)?;
    }
    let vectors = data(&cli);
    let params = HnswParams {
        m: cli.m,
        ef_construction: cli.ef_construction,
        ..HnswParams::default()
    };
    let mut index = HnswIndex::new(Metric::L2, cli.dim, params).expect("valid parameters");
    let t = Instant::now();
    for (row, v) in vectors.chunks_exact(cli.dim).enumerate() {
        index.upsert(row as u64, v).expect("finite vectors");
    }
    let build_s = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let chunks: Vec<Vec<u8>> = index.encode(1 << 20).collect();
    let encode_s = t.elapsed().as_secs_f64();
    let bytes: usize = chunks.iter().map(Vec::len).sum();
    let path = cli.dir.join("tarn-hnsw-persist.bin");
    let t = Instant::now();
    {
        let mut f = File::create(&path)?;
        for c in &chunks {
            f.write_all(&(c.len() as u32).to_le_bytes())?;
            f.write_all(c)?;
        }
        f.sync_data()?;
    }
    let write_s = t.elapsed().as_secs_f64();
    drop(chunks);

    let t = Instant::now();
    let mut raw = Vec::with_capacity(bytes + 4096);
    File::open(&path)?.read_to_end(&mut raw)?;
    let read_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let mut d = Decoder::new();
    let mut pos = 0;
    while pos < raw.len() {
        let n = u32::from_le_bytes(raw[pos..pos + 4].try_into().unwrap()) as usize;
        d.feed(&raw[pos + 4..pos + 4 + n])
            .expect("own encoding decodes");
        pos += 4 + n;
    }
    let loaded = d.finish().expect("own encoding decodes");
    let decode_s = t.elapsed().as_secs_f64();
    std::fs::remove_file(&path)?;

    assert_eq!(
        loaded.digest(),
        index.digest(),
        "the loaded graph is the saved graph"
    );
    let q = &vectors[..cli.dim];
    let p = SearchParams::default();
    let same =
        loaded.search(q, 10, &|_| true, &p).unwrap() == index.search(q, 10, &|_| true, &p).unwrap();
    assert!(same, "the loaded graph answers as the saved one");

    let (date, time) = machine::utc_now();
    let load_s = read_s + decode_s;
    let report = format!(
        "# HNSW restart: rebuild from rows vs load the saved graph ({date} {time} UTC)\n\n\
         Command: `cargo run --release -p tarn-bench --bin hnsw_persist -- --rows {} --dim {} \
         --m {} --ef-construction {}{}`\n\n{}\n\n\
         | step | seconds | notes |\n|---|---:|---|\n\
         | build from rows (one upsert per row) | {build_s:.2} | {:.0} rows/s: what a start-up rebuild costs |\n\
         | encode (1 MiB chunks) | {encode_s:.2} | {bytes} bytes, {:.0} bytes per vector |\n\
         | write + fdatasync | {write_s:.2} | |\n\
         | read | {read_s:.2} | page cache likely warm |\n\
         | decode (CRC32C + field checks) | {decode_s:.2} | |\n\
         | **load = read + decode** | **{load_s:.2}** | **{:.0}× faster than the rebuild** |\n\n\
         The loaded graph has the same digest and answers a query identically.\n",
        cli.rows,
        cli.dim,
        cli.m,
        cli.ef_construction,
        cli.cpu.map(|c| format!(" --cpu {c}")).unwrap_or_default(),
        machine::describe(),
        cli.rows as f64 / build_s,
        bytes as f64 / cli.rows as f64,
        build_s / load_s.max(1e-9),
    );
    print!("{report}");
    if let Some(out) = &cli.out {
        std::fs::write(out, &report)?;
    }
    Ok(())
}
