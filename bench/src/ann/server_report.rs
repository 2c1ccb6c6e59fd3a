//! The Markdown report of `ann_server`: builds, memory per vector, searches (server path and
//! the in-process peers), the operating point at the recall target, and upserts.

use super::served::Load;
use super::{first_at_recall, Build, Row};

/// The recall the throughput figure is quoted at.
pub const RECALL_TARGET: f64 = 0.95;

/// One search row and how it was driven.
#[derive(Clone, Debug)]
pub struct ServedRow {
    pub row: Row,
    /// `closed`, `pipelined ×N`, or `in-process` (the peers).
    pub mode: String,
    /// tarnd's CPU time (all threads) per query over the measurement, µs.
    pub server_cpu_us: Option<f64>,
}

/// tarnd's resident memory growth over one step, per row loaded or indexed.
#[derive(Clone, Debug)]
pub struct Memory {
    pub what: String,
    /// VmRSS growth / rows.
    pub bytes_per_vector: f64,
    /// RssAnon (heap) growth / rows.
    pub anon_per_vector: f64,
}

/// Everything the report shows.
pub struct Report {
    /// Free text above the tables: machine, data, command, server set-up.
    pub preamble: String,
    /// Server builds (CREATE INDEX over the loaded table; load into an indexed table).
    pub builds: Vec<Build>,
    pub peer_builds: Vec<Build>,
    pub memory: Vec<Memory>,
    pub rows: Vec<ServedRow>,
    pub loads: Vec<Load>,
    pub notes: Vec<String>,
}

impl Report {
    pub fn render(&self) -> String {
        let mut md = self.preamble.clone();
        md.push_str(&self.render_operating_point());
        md.push_str(
            "\n## Build\n\n| system | how | seconds | bytes/vector |\n|---|---|---:|---:|\n",
        );
        for b in self.builds.iter().chain(&self.peer_builds) {
            md.push_str(&format!(
                "| {} | {} | {:.2} | {:.0} |\n",
                b.system, b.version, b.build_s, b.bytes_per_vector
            ));
        }
        md.push_str(
            "\n## Memory (tarnd resident growth per vector)\n\n\
             | step | VmRSS bytes/vector | RssAnon (heap) bytes/vector |\n|---|---:|---:|\n",
        );
        for m in &self.memory {
            md.push_str(&format!(
                "| {} | {:.0} | {:.0} |\n",
                m.what, m.bytes_per_vector, m.anon_per_vector
            ));
        }
        md.push_str(&self.render_searches());
        md.push_str(&self.render_loads());
        if !self.notes.is_empty() {
            md.push_str("\n## Notes\n\n");
            for n in &self.notes {
                md.push_str(&format!("- {n}\n"));
            }
        }
        md
    }

    fn render_searches(&self) -> String {
        let mut md = String::from(
            "\n## Searches\n\n\
             | case | system | mode | ef | recall@k | q/s | p50 µs | p99 µs | distances/query | \
             tarnd CPU µs/query | short |\n|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
        );
        let mut sorted = self.rows.clone();
        sorted.sort_by(|a, b| {
            let key = |r: &ServedRow| {
                (
                    r.row.case.clone(),
                    r.row.ef,
                    r.row.system.clone(),
                    r.mode.clone(),
                )
            };
            key(a).cmp(&key(b))
        });
        let opt = |x: Option<f64>, digits: usize| {
            x.map_or("n/a".to_string(), |v| format!("{v:.digits$}"))
        };
        for s in &sorted {
            let r = &s.row;
            md.push_str(&format!(
                "| {} | {} | {} | {} | {:.4} | {:.0} | {:.1} | {:.1} | {} | {} | {} |\n",
                r.case,
                r.system,
                s.mode,
                r.ef,
                r.recall,
                r.qps,
                r.p50_us,
                r.p99_us,
                opt(r.distances, 0),
                opt(s.server_cpu_us, 1),
                r.short
            ));
        }
        md
    }

    /// Per system and mode: the smallest unfiltered ef reaching [`RECALL_TARGET`].
    fn render_operating_point(&self) -> String {
        let mut md = format!(
            "\n## At recall@k ≥ {RECALL_TARGET} (unfiltered, smallest ef that reaches it)\n\n\
             | system | mode | ef | recall@k | q/s | p50 µs | p99 µs | q/s per tarnd CPU-second |\n\
             |---|---|---:|---:|---:|---:|---:|---:|\n"
        );
        let mut groups: Vec<(String, String)> = self
            .rows
            .iter()
            .map(|r| (r.row.system.clone(), r.mode.clone()))
            .collect();
        groups.dedup();
        groups.sort();
        groups.dedup();
        for (system, mode) in groups {
            let of_group: Vec<&ServedRow> = self
                .rows
                .iter()
                .filter(|r| r.row.system == system && r.mode == mode)
                .collect();
            let rows: Vec<Row> = of_group.iter().map(|r| r.row.clone()).collect();
            let Some(best) = first_at_recall(&rows, &system, RECALL_TARGET) else {
                md.push_str(&format!(
                    "| {system} | {mode} | none reaches it | | | | | |\n"
                ));
                continue;
            };
            let cpu = of_group
                .iter()
                .find(|r| r.row.ef == best.ef && r.row.case == best.case)
                .and_then(|r| r.server_cpu_us)
                .map_or("n/a".to_string(), |us| format!("{:.0}", 1e6 / us));
            md.push_str(&format!(
                "| {system} | {mode} | {} | {:.4} | {:.0} | {:.1} | {:.1} | {cpu} |\n",
                best.ef, best.recall, best.qps, best.p50_us, best.p99_us
            ));
        }
        md
    }

    fn render_loads(&self) -> String {
        let mut md = String::from(
            "\n## Upserts (one connection, one batch in flight)\n\n\
             | table | index | rows | batch | seconds | rows/s | batch p50 ms | batch p99 ms |\n\
             |---|---|---:|---:|---:|---:|---:|---:|\n",
        );
        for l in &self.loads {
            md.push_str(&format!(
                "| {} | {} | {} | {} | {:.2} | {:.0} | {:.2} | {:.2} |\n",
                l.table,
                if l.indexed { "hnsw" } else { "none" },
                l.rows,
                l.batch,
                l.secs,
                l.rows_per_s(),
                l.batch_p50_ms,
                l.batch_p99_ms
            ));
        }
        md
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(system: &str, ef: usize, recall: f64, qps: f64) -> Row {
        Row {
            system: system.into(),
            case: "unfiltered".into(),
            ef,
            recall,
            qps,
            p50_us: 100.0,
            p99_us: 200.0,
            short: 0,
            distances: None,
        }
    }

    #[test]
    fn the_operating_point_is_the_smallest_ef_at_the_target_per_system_and_mode() {
        let served = |r: Row, mode: &str, cpu: Option<f64>| ServedRow {
            row: r,
            mode: mode.into(),
            server_cpu_us: cpu,
        };
        let report = Report {
            preamble: "# t\n".into(),
            builds: Vec::new(),
            peer_builds: Vec::new(),
            memory: vec![Memory {
                what: "table".into(),
                bytes_per_vector: 600.0,
                anon_per_vector: 550.0,
            }],
            rows: vec![
                served(row("tarnd", 16, 0.90, 5000.0), "closed", Some(150.0)),
                served(row("tarnd", 32, 0.96, 4000.0), "closed", Some(200.0)),
                served(row("tarnd", 64, 0.99, 3000.0), "closed", Some(300.0)),
                served(row("hnswlib", 16, 0.97, 9000.0), "in-process", None),
                served(row("faiss", 16, 0.5, 9000.0), "in-process", None),
            ],
            loads: Vec::new(),
            notes: vec!["a note".into()],
        };
        let md = report.render();
        assert!(
            md.contains("| tarnd | closed | 32 | 0.9600 | 4000 | 100.0 | 200.0 | 5000 |"),
            "{md}"
        );
        assert!(
            md.contains("| hnswlib | in-process | 16 | 0.9700 | 9000 | 100.0 | 200.0 | n/a |"),
            "{md}"
        );
        assert!(
            md.contains("| faiss | in-process | none reaches it |"),
            "{md}"
        );
        assert!(md.contains("| table | 600 | 550 |"));
        assert!(md.contains("- a note"));
    }
}
