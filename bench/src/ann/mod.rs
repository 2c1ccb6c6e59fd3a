//! What the two ANN benchmarks share: the seeded data and its filter attribute, the exact
//! ground truth, the files the peers read, the peers' run (`bench/peers/ann_peers.sh`) and
//! the scoring of one query's answer.
//!
//! `ann` (bin/ann.rs) searches Tarn's HNSW in-process; `ann_server` (bin/ann_server.rs)
//! searches it through a real `tarnd` ([`server`], [`served`]). Both score against the same
//! truth and run the same peers on the same bytes, so their tables can be read side by side.

pub mod served;
pub mod server;
pub mod server_report;

use std::path::{Path, PathBuf};
use std::process::Command;

use clap::Args;
use serde_json::Value as Json;
use tarn_vectors::{ExactIndex, Metric, RowId, SearchParams, VectorIndex};

use crate::vecdata::{write_fvecs, write_ivecs, Data, Rng};

/// The data and index parameters both ANN binaries take (`#[command(flatten)]`).
#[derive(Args, Clone, Debug)]
pub struct DataArgs {
    /// Base vectors.
    #[arg(long, default_value_t = 100_000)]
    pub rows: usize,
    /// Dimension.
    #[arg(long, default_value_t = 128)]
    pub dim: usize,
    /// Gaussian clusters of the data.
    #[arg(long, default_value_t = 100)]
    pub clusters: usize,
    /// Queries per case.
    #[arg(long, default_value_t = 1_000)]
    pub queries: usize,
    /// Neighbours per query.
    #[arg(long, default_value_t = 10)]
    pub k: usize,
    /// HNSW `m` (hnswlib's M) for every system.
    #[arg(long, default_value_t = 16)]
    pub m: usize,
    /// HNSW `ef_construction` for every system.
    #[arg(long, default_value_t = 200)]
    pub ef_construction: usize,
    /// `ef_search` values of the unfiltered case, comma-separated.
    #[arg(long, default_value = "16,32,64,128")]
    pub efs: String,
    /// `ef_search` of the filtered cases.
    #[arg(long, default_value_t = 64)]
    pub filter_ef: usize,
    /// l2, cosine or ip.
    #[arg(long, default_value = "l2")]
    pub metric: String,
    /// Seed of the data.
    #[arg(long, default_value_t = 0x5eed)]
    pub seed: u64,
}

/// Where a run's files go and whether the peers run, shared by both ANN binaries.
#[derive(Args, Clone, Debug)]
pub struct OutputArgs {
    /// Leave the peers out (Tarn only).
    #[arg(long)]
    pub no_peers: bool,
    /// Where the peers' data files go (default: a directory under the system temp dir, removed
    /// at the end).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Directory of the Markdown report (default: bench/results).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

impl OutputArgs {
    /// The data directory: `--data-dir`, or `<temp>/<prefix>-<pid>`.
    pub fn data_dir_or(&self, prefix: &str) -> PathBuf {
        self.data_dir.clone().unwrap_or_else(|| {
            std::env::temp_dir().join(format!("{prefix}-{}", std::process::id()))
        })
    }

    /// Writes `md` to `<--out or bench/results>/<name>`; returns the path.
    pub fn write_report(&self, name: &str, md: &str) -> std::io::Result<PathBuf> {
        let out = self
            .out
            .clone()
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("results"));
        std::fs::create_dir_all(&out)?;
        let path = out.join(name);
        std::fs::write(&path, md)?;
        Ok(path)
    }

    /// Removes the data directory unless the user named it.
    pub fn clean_data_dir(&self, dir: &Path) -> std::io::Result<()> {
        if self.data_dir.is_none() {
            std::fs::remove_dir_all(dir)?;
        }
        Ok(())
    }
}

impl DataArgs {
    /// The `--efs` list; an error names the bad entry.
    pub fn ef_list(&self) -> Result<Vec<usize>, String> {
        parse_efs(&self.efs)
    }
}

/// `"16, 32"` → `[16, 32]`; empty or non-numeric entries are refused by name.
pub fn parse_efs(text: &str) -> Result<Vec<usize>, String> {
    let efs: Result<Vec<usize>, String> = text
        .split(',')
        .map(|x| {
            let x = x.trim();
            x.parse::<usize>()
                .ok()
                .filter(|&ef| ef > 0)
                .ok_or_else(|| format!("--efs: {x:?} is not a positive integer"))
        })
        .collect();
    efs
}

/// One search case: every query, optionally restricted to `attr < bound`.
pub struct Case {
    pub name: &'static str,
    pub bound: Option<u32>,
}

impl Case {
    /// The case's filter as SQL text over the `attr` column (empty = every row).
    pub fn filter_sql(&self) -> String {
        self.bound
            .map_or_else(String::new, |b| format!("attr < {b}"))
    }
}

/// The attribute is uniform in `0..ATTR_RANGE`, so `attr < b` keeps `b / ATTR_RANGE` of rows.
pub const ATTR_RANGE: u64 = 1000;

pub const CASES: [Case; 4] = [
    Case {
        name: "unfiltered",
        bound: None,
    },
    Case {
        name: "filter-10pct",
        bound: Some(100),
    },
    Case {
        name: "filter-1pct",
        bound: Some(10),
    },
    Case {
        name: "filter-0.1pct",
        bound: Some(1),
    },
];

/// The result of one (system, case, ef) measurement, as the peers report it too.
#[derive(Clone, Debug)]
pub struct Row {
    pub system: String,
    pub case: String,
    pub ef: usize,
    pub recall: f64,
    pub qps: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    /// Queries answered with fewer than min(k, matching rows) rows.
    pub short: u64,
    /// Distance computations per query, where the system reports them.
    pub distances: Option<f64>,
}

/// One system's index build, as the peers report it.
#[derive(Clone, Debug)]
pub struct Build {
    pub system: String,
    pub version: String,
    pub build_s: f64,
    pub bytes_per_vector: f64,
}

/// The data of one run and its ground truth.
pub struct Bench {
    pub base: Vec<Vec<f32>>,
    pub queries: Vec<Vec<f32>>,
    pub attr: Vec<u32>,
    /// Per case, per query: the exact top-k row ids.
    pub truth: Vec<Vec<Vec<RowId>>>,
}

impl Bench {
    /// Draws the data of `args` (seeded) and computes the exact top-k of every case.
    pub fn generate(args: &DataArgs, metric: Metric) -> Bench {
        let mut data = Data::new(args.seed, args.dim, args.clusters);
        let base: Vec<Vec<f32>> = (0..args.rows).map(|_| data.draw()).collect();
        let queries: Vec<Vec<f32>> = (0..args.queries).map(|_| data.draw()).collect();
        let mut rng = Rng(args.seed ^ 0xa77);
        let attr = (0..args.rows)
            .map(|_| (rng.next_u64() % ATTR_RANGE) as u32)
            .collect();
        let mut b = Bench {
            base,
            queries,
            attr,
            truth: Vec::new(),
        };
        b.truth = CASES
            .iter()
            .map(|c| b.ground_truth(metric, args.k, c.bound))
            .collect();
        b
    }

    fn ground_truth(&self, metric: Metric, k: usize, bound: Option<u32>) -> Vec<Vec<RowId>> {
        let exact = self.exact_index(metric);
        let filter = |row: RowId| bound.is_none_or(|x| self.attr[row as usize] < x);
        self.queries
            .iter()
            .map(|q| {
                let hits = exact.search(q, k, &filter, &SearchParams::default());
                hits.expect("valid query").iter().map(|n| n.row).collect()
            })
            .collect()
    }

    /// Every base vector in an exact index, row id = position.
    pub fn exact_index(&self, metric: Metric) -> ExactIndex {
        let dim = self.base.first().map_or(1, Vec::len);
        let mut exact = ExactIndex::new(metric, dim).expect("valid dimension");
        for (i, v) in self.base.iter().enumerate() {
            exact.upsert(i as RowId, v).expect("valid vector");
        }
        exact
    }

    /// Writes base, queries, attributes, ground truth and cases to `dir` for the peers.
    pub fn write_data(&self, dir: &Path, k: usize) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        write_fvecs(&dir.join("base.fvecs"), &self.base)?;
        write_fvecs(&dir.join("query.fvecs"), &self.queries)?;
        let attr: Vec<u8> = self.attr.iter().flat_map(|a| a.to_le_bytes()).collect();
        std::fs::write(dir.join("attr.u32"), attr)?;
        let mut cases = Vec::new();
        for (case, truth) in CASES.iter().zip(&self.truth) {
            write_ivecs(&dir.join(format!("gt-{}.ivecs", case.name)), truth, k)?;
            cases.push(serde_json::json!({"name": case.name, "bound": case.bound}));
        }
        std::fs::write(dir.join("cases.json"), Json::Array(cases).to_string())
    }
}

/// Running totals of recall and short answers over the queries of one measurement.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Score {
    pub hits: usize,
    pub expected: usize,
    pub short: u64,
}

impl Score {
    /// Scores one answer: true neighbours found, out of min(k, matching rows).
    pub fn add(&mut self, truth: &[RowId], found: &[RowId], k: usize) {
        let want = truth.len().min(k);
        self.expected += want;
        if found.len() < want {
            self.short += 1;
        }
        self.hits += found.iter().filter(|r| truth.contains(r)).count();
    }

    /// Found true neighbours / Σ min(k, matching rows); 1 when nothing was expected.
    pub fn recall(&self) -> f64 {
        if self.expected == 0 {
            1.0
        } else {
            self.hits as f64 / self.expected as f64
        }
    }
}

/// The peers' side through `bench/peers/ann_peers.sh` on the files in `dir`, pinned to
/// `peer_cpu`: their search rows and builds.
pub fn run_peers(
    args: &DataArgs,
    dir: &Path,
    peer_cpu: Option<usize>,
) -> Result<(Vec<Row>, Vec<Build>), String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("peers/ann_peers.sh");
    let out = dir.join("peers.jsonl");
    let mut cmd = Command::new(&script);
    cmd.arg("run").arg(dir).arg(&out);
    cmd.args([
        "--m",
        &args.m.to_string(),
        "--efc",
        &args.ef_construction.to_string(),
    ]);
    cmd.args([
        "--efs",
        &args.efs,
        "--filter-ef",
        &args.filter_ef.to_string(),
    ]);
    cmd.args(["--metric", &args.metric, "--k", &args.k.to_string()]);
    if let Some(cpu) = peer_cpu {
        cmd.env("PEER_CPU", cpu.to_string());
    }
    let status = cmd
        .status()
        .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    if !status.success() {
        return Err(format!("ann_peers.sh failed: {status}"));
    }
    let text = std::fs::read_to_string(&out).map_err(|e| format!("peers' results: {e}"))?;
    parse_peer_lines(&text)
}

/// The peers' JSON lines: one object per build (`"case": "build"`) or measurement.
pub fn parse_peer_lines(text: &str) -> Result<(Vec<Row>, Vec<Build>), String> {
    let (mut rows, mut builds) = (Vec::new(), Vec::new());
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: Json = serde_json::from_str(line).map_err(|e| format!("peer line {line:?}: {e}"))?;
        let s = |f: &str| v[f].as_str().unwrap_or_default().to_string();
        let f = |f: &str| v[f].as_f64().unwrap_or(f64::NAN);
        if s("case") == "build" {
            builds.push(Build {
                system: s("system"),
                version: s("version"),
                build_s: f("build_s"),
                bytes_per_vector: f("bytes_per_vector"),
            });
            continue;
        }
        rows.push(Row {
            system: s("system"),
            case: s("case"),
            ef: f("ef") as usize,
            recall: f("recall"),
            qps: f("qps"),
            p50_us: f("p50_us"),
            p99_us: f("p99_us"),
            short: f("short_results") as u64,
            distances: v["distances_per_query"].as_f64(),
        });
    }
    Ok((rows, builds))
}

/// The smallest-ef unfiltered row of `system` reaching `recall` (the operating point the
/// issue asks for), if any does.
pub fn first_at_recall<'a>(rows: &'a [Row], system: &str, recall: f64) -> Option<&'a Row> {
    rows.iter()
        .filter(|r| r.system == system && r.case == CASES[0].name && r.recall >= recall)
        .min_by_key(|r| r.ef)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_score_counts_hits_out_of_min_k_and_matching_and_short_answers() {
        let mut s = Score::default();
        s.add(&[1, 2, 3], &[3, 2, 9], 3);
        assert_eq!(
            s,
            Score {
                hits: 2,
                expected: 3,
                short: 0
            }
        );
        // Two matching rows only: both expected, one found, the answer is short.
        s.add(&[5, 6], &[5], 10);
        assert_eq!(
            s,
            Score {
                hits: 3,
                expected: 5,
                short: 1
            }
        );
        assert!((s.recall() - 0.6).abs() < 1e-12);
        assert_eq!(Score::default().recall(), 1.0);
    }

    #[test]
    fn cases_filter_by_the_attribute_and_efs_parse_or_name_the_bad_entry() {
        assert_eq!(CASES[0].filter_sql(), "");
        assert_eq!(CASES[2].filter_sql(), "attr < 10");
        assert_eq!(parse_efs("16, 32,64").unwrap(), vec![16, 32, 64]);
        assert!(parse_efs("16,x").unwrap_err().contains("\"x\""));
        assert!(parse_efs("0").is_err());
    }

    #[test]
    fn ground_truth_of_a_filter_holds_only_matching_rows() {
        let args = DataArgs {
            rows: 300,
            dim: 4,
            clusters: 3,
            queries: 5,
            k: 10,
            m: 8,
            ef_construction: 16,
            efs: "16".into(),
            filter_ef: 16,
            metric: "l2".into(),
            seed: 1,
        };
        let b = Bench::generate(&args, Metric::L2);
        assert_eq!(b.truth.len(), CASES.len());
        assert!(b.truth[0].iter().all(|t| t.len() == 10));
        for t in &b.truth[2] {
            assert!(t.iter().all(|&r| b.attr[r as usize] < 10));
        }
    }

    #[test]
    fn peer_lines_give_builds_and_rows_with_optional_distances() {
        let text = r#"{"system":"faiss","version":"1.15.1","case":"build","build_s":2.5,"bytes_per_vector":640}
{"system":"faiss","case":"unfiltered","ef":32,"recall":0.97,"qps":9000,"p50_us":100,"p99_us":200,"short_results":0,"distances_per_query":812.5}
{"system":"hnswlib","case":"unfiltered","ef":16,"recall":0.9,"qps":12000,"p50_us":80,"p99_us":150,"short_results":1}
"#;
        let (rows, builds) = parse_peer_lines(text).unwrap();
        assert_eq!(builds.len(), 1);
        assert_eq!(builds[0].version, "1.15.1");
        assert_eq!(rows[0].distances, Some(812.5));
        assert_eq!(rows[1].distances, None);
        assert_eq!(first_at_recall(&rows, "faiss", 0.95).unwrap().ef, 32);
        assert!(first_at_recall(&rows, "hnswlib", 0.95).is_none());
        assert!(parse_peer_lines("{").is_err());
    }
}
