//! Thread-per-core sharding: pinning, key placement, cross-shard routing, the data directory's
//! fixed shard count and lock, and running unpinned with more shards than CPUs.

mod common;

use std::collections::BTreeSet;

use common::*;

const KEYS: i64 = 2_000;

fn row(id: i64) -> Vec<Value> {
    vec![
        Value::Int(id),
        Value::Text(format!("name-{id}")),
        Value::Double(id as f64 * 0.5),
    ]
}

/// (tid, comm, Cpus_allowed_list) of each shard's executor thread. glommio gives an executor's
/// helper (blocking-pool) threads the executor's name too; the executor thread is the first
/// one created with that name (lowest tid).
fn shard_threads(pid: u32) -> Vec<(String, String, String)> {
    let all = named_threads(pid);
    let mut first: std::collections::BTreeMap<String, (u64, String, String, String)> =
        Default::default();
    for (tid, comm, cpus) in all {
        let n: u64 = tid.parse().unwrap();
        let e = first
            .entry(comm.clone())
            .or_insert((n, tid.clone(), comm.clone(), cpus.clone()));
        if n < e.0 {
            *e = (n, tid, comm, cpus);
        }
    }
    first.into_values().map(|(_, t, c, l)| (t, c, l)).collect()
}

/// (tid, comm, Cpus_allowed_list) of every thread of `pid` whose name starts with "tarn-shard".
fn named_threads(pid: u32) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(format!("/proc/{pid}/task"))
        .expect("read /proc/PID/task")
        .flatten()
    {
        let dir = e.path();
        let comm = std::fs::read_to_string(dir.join("comm"))
            .unwrap_or_default()
            .trim()
            .to_string();
        if !comm.starts_with("tarn-shard") {
            continue;
        }
        let status = std::fs::read_to_string(dir.join("status")).unwrap_or_default();
        let cpus = status
            .lines()
            .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
            .unwrap_or("")
            .trim()
            .to_string();
        out.push((e.file_name().to_string_lossy().to_string(), comm, cpus));
    }
    out
}

fn all_thread_names(pid: u32) -> Vec<String> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|rd| {
            rd.flatten()
                .map(|e| {
                    std::fs::read_to_string(e.path().join("comm"))
                        .unwrap_or_default()
                        .trim()
                        .to_string()
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn two_shards_pinned_routed_and_locked() {
    let mut server = TarnServer::start_ok(ServerOpts::shards(2));
    let pid = server.pid();
    let cpus = online_cpus();

    // Pinning: STATS and the kernel agree that each shard runs on its own CPU.
    let mut c = server.client();
    let st = c.stats().expect("stats");
    assert_eq!(st.shards.len(), 2, "{st:?}");
    let threads = shard_threads(pid);
    eprintln!("threads named tarn-shard*: {:?}", named_threads(pid));
    assert_eq!(
        threads.len(),
        2,
        "expected 2 threads named tarn-shard*, found {threads:?} (all threads: {:?})",
        all_thread_names(pid)
    );
    if cpus < 2 {
        eprintln!(
            "SKIPPED the pinning assertions: this machine has {cpus} CPU(s), pinning needs >= 2"
        );
    } else {
        assert!(
            server.ready_line.contains("(pinned)"),
            "ready line: {}",
            server.ready_line
        );
        let stat_cpus: BTreeSet<i32> = st.shards.iter().map(|s| s.cpu).collect();
        assert!(
            st.shards.iter().all(|s| s.cpu >= 0),
            "every shard must report its CPU: {st:?}"
        );
        assert_eq!(
            stat_cpus.len(),
            2,
            "shards must be pinned to distinct CPUs: {st:?}"
        );
        let mut kernel_cpus = BTreeSet::new();
        for (tid, comm, list) in &threads {
            let cpu: i32 = list.parse().unwrap_or_else(|_| {
                panic!("thread {tid} ({comm}) may run on CPUs {list:?}, expected exactly one")
            });
            kernel_cpus.insert(cpu);
        }
        assert_eq!(
            kernel_cpus.len(),
            2,
            "shard threads must be pinned to distinct CPUs: {threads:?}"
        );
        assert_eq!(
            kernel_cpus, stat_cpus,
            "STATS cpu values disagree with the kernel's affinity: {threads:?} vs {st:?}"
        );
    }

    // Placement: 2,000 keys land exactly where shard_for says.
    c.sql("CREATE TABLE users (id BIGINT PRIMARY KEY, name TEXT, score DOUBLE)")
        .unwrap();
    let ids: Vec<i64> = (0..KEYS).collect();
    for chunk in ids.chunks(500) {
        assert_eq!(
            c.upsert(
                "users",
                &["id", "name", "score"],
                chunk.iter().map(|&i| row(i)).collect()
            )
            .unwrap(),
            500
        );
    }
    let mut expected = [0u64; 2];
    for &i in &ids {
        expected[shard_of(&Value::Int(i), 2) as usize] += 1;
    }
    assert!(expected.iter().all(|&n| n > 0));
    let st = c.stats().unwrap();
    assert_eq!(
        rows_per_shard(&st),
        expected.to_vec(),
        "rows per shard must match shard_for: {st:?}"
    );

    // Many connections land on different shards (SO_REUSEPORT); each reads every key, so keys
    // owned by another shard than the accepting one are answered correctly.
    let keys: Vec<Value> = ids.iter().map(|&i| Value::Int(i)).collect();
    let mut conns: Vec<Conn> = (0..16).map(|_| server.client()).collect();
    let st = c.stats().unwrap();
    let per_shard: Vec<u32> = st.shards.iter().map(|s| s.connections).collect();
    assert_eq!(
        per_shard.iter().sum::<u32>(),
        17,
        "open connections per shard: {per_shard:?}"
    );
    assert!(
        per_shard.iter().all(|&n| n > 0),
        "17 connections all landed on one shard: {per_shard:?}"
    );
    for (n, conn) in conns.iter_mut().enumerate() {
        let got = conn.get_many("users", &keys, 2_000).unwrap();
        for (i, r) in got.into_iter().enumerate() {
            assert_eq!(
                r,
                Some(row(i as i64)),
                "connection {n}: wrong row for key {i}"
            );
        }
        // A GET mixing missing and present keys keeps request order.
        let r = conn
            .get(
                "users",
                vec![
                    Value::Int(-1),
                    Value::Int(5),
                    Value::Int(KEYS + 7),
                    Value::Int(1999),
                ],
            )
            .unwrap();
        assert_eq!(r.rows, vec![None, Some(row(5)), None, Some(row(1999))]);
        assert_eq!(
            r.columns
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>(),
            ["id", "name", "score"]
        );
    }

    // DELETE across shards: even keys, from one connection.
    let evens: Vec<Value> = ids
        .iter()
        .filter(|&&i| i % 2 == 0)
        .map(|&i| Value::Int(i))
        .collect();
    assert_eq!(conns[3].delete("users", evens.clone()).unwrap(), 1_000);
    // Deleting again deletes nothing.
    assert_eq!(conns[4].delete("users", evens[..10].to_vec()).unwrap(), 0);
    for conn in conns.iter_mut().take(4) {
        let got = conn.get_many("users", &keys, 2_000).unwrap();
        for (i, r) in got.into_iter().enumerate() {
            let want = if i % 2 == 0 {
                None
            } else {
                Some(row(i as i64))
            };
            assert_eq!(r, want, "key {i} after deleting the even keys");
        }
    }
    let mut expected = [0u64; 2];
    for &i in ids.iter().filter(|&&i| i % 2 == 1) {
        expected[shard_of(&Value::Int(i), 2) as usize] += 1;
    }
    assert_eq!(rows_per_shard(&c.stats().unwrap()), expected.to_vec());

    // A second tarnd on the same data directory is refused (LOCK), and the first keeps serving.
    let (status, err) = TarnServer::start_expect_failure(&server.args_for_data_dir(2));
    assert!(!status.success());
    assert!(err.starts_with("tarnd: "), "stderr: {err}");
    assert!(
        err.contains("LOCK") || err.contains("in use"),
        "second server on the same dir: {err}"
    );
    c.ping().unwrap();
    drop(conns);
    drop(c);

    // Data survive a restart with the same shard count; another shard count is refused.
    server.stop_ok();
    let (status, err) = TarnServer::start_expect_failure(&server.args_for_data_dir(3));
    assert!(!status.success());
    assert!(err.starts_with("tarnd: "), "stderr: {err}");
    assert!(
        err.contains("re-sharding"),
        "restart with --shards 3 on a 2-shard dir: {err}"
    );
    let (status, err) = TarnServer::start_expect_failure(&server.args_for_data_dir(1));
    assert!(
        !status.success() && err.contains("re-sharding"),
        "restart with --shards 1: {err}"
    );
    server.restart_ok();
    let mut c = server.client();
    let got = c.get_many("users", &keys, 2_000).unwrap();
    for (i, r) in got.into_iter().enumerate() {
        let want = if i % 2 == 0 {
            None
        } else {
            Some(row(i as i64))
        };
        assert_eq!(r, want, "key {i} after restart");
    }
    assert_eq!(rows_per_shard(&c.stats().unwrap()), expected.to_vec());
    drop(c);
    server.stop_ok();
}

#[test]
fn more_shards_than_cpus_runs_unpinned() {
    let shards = online_cpus() as u32 + 1;
    let mut server = TarnServer::start_ok(ServerOpts::shards(shards));
    assert!(
        server.ready_line.contains("(unpinned)"),
        "ready line: {}",
        server.ready_line
    );
    assert!(
        server
            .ready_line
            .contains(&format!("with {shards} shard(s)")),
        "ready line: {}",
        server.ready_line
    );
    let mut c = server.client();
    assert_eq!(c.hello.as_ref().unwrap().shard_count, shards);
    let st = c.stats().unwrap();
    assert_eq!(st.shards.len(), shards as usize);
    assert!(
        st.shards.iter().all(|s| s.cpu == -1),
        "unpinned shards report cpu -1: {st:?}"
    );
    let threads = shard_threads(server.pid());
    assert_eq!(threads.len(), shards as usize, "{threads:?}");

    c.sql("CREATE TABLE t (k TEXT PRIMARY KEY, v BIGINT)")
        .unwrap();
    let rows: Vec<Vec<Value>> = (0..300)
        .map(|i| vec![Value::Text(format!("key-{i}")), Value::Int(i)])
        .collect();
    assert_eq!(c.upsert("t", &["k", "v"], rows.clone()).unwrap(), 300);
    let mut expected = vec![0u64; shards as usize];
    for r in &rows {
        expected[shard_of(&r[0], shards) as usize] += 1;
    }
    assert_eq!(rows_per_shard(&c.stats().unwrap()), expected);
    for _ in 0..4 {
        let mut other = server.client();
        let got = other
            .get("t", rows.iter().map(|r| r[0].clone()).collect())
            .unwrap();
        assert_eq!(got.rows, rows.iter().cloned().map(Some).collect::<Vec<_>>());
    }
    drop(c);
    server.stop_ok();
    server.restart_ok();
    let got = server
        .client()
        .get("t", rows.iter().map(|r| r[0].clone()).collect())
        .unwrap();
    assert_eq!(got.rows.iter().filter(|r| r.is_some()).count(), 300);
}
