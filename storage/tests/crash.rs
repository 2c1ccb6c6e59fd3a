//! Everything acknowledged in Sync mode survives `kill -9` of the process.
//!
//! The test re-runs its own binary as a child that appends from many tasks and prints
//! `ACK <lsn> <tag>` after each `wait_durable`; the parent SIGKILLs it mid-stream and
//! reopens the log.

mod common;

use common::*;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use tarn_storage::Durability;

const CHILD_ENV: &str = "TARN_STORAGE_CRASH_CHILD_DIR";
const TEST_NAME: &str = "sync_acked_records_survive_kill_9";
const ACKS_BEFORE_KILL: usize = 2000;

fn child(dir: &str) {
    let dir = std::path::PathBuf::from(dir);
    run(|| async move {
        let (log, _, _) = open_collect(opts(&dir, SMALL_SEGMENT_BYTES * 4, Durability::Sync), 0)
            .await
            .unwrap();
        let mut tasks = Vec::new();
        for t in 0..16u64 {
            let log = log.clone();
            tasks.push(glommio::spawn_local(async move {
                for i in 0.. {
                    let tag = t * 1_000_000 + i;
                    let lsn = log
                        .append(&payload(tag, (tag % 700) as usize))
                        .await
                        .unwrap();
                    log.wait_durable(lsn).await.unwrap();
                    println!("ACK {lsn} {tag}");
                }
            }));
        }
        for t in tasks {
            t.await;
        }
    });
}

#[test]
fn sync_acked_records_survive_kill_9() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        child(&dir);
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("shard-0");
    let mut c = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", TEST_NAME, "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, &dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut acked = Vec::new();
    for line in BufReader::new(c.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if let Some(rest) = line.strip_prefix("ACK ") {
            let mut it = rest.split(' ').map(|x| x.parse::<u64>().unwrap());
            acked.push((it.next().unwrap(), it.next().unwrap()));
            if acked.len() == ACKS_BEFORE_KILL {
                c.kill().unwrap(); // SIGKILL
                break;
            }
        }
    }
    c.wait().unwrap();
    assert_eq!(acked.len(), ACKS_BEFORE_KILL, "child stopped early");
    run(|| async move {
        let (log, report, seen) =
            open_collect(opts(&dir, SMALL_SEGMENT_BYTES * 4, Durability::Sync), 0)
                .await
                .unwrap();
        assert!(seen.len() >= ACKS_BEFORE_KILL);
        assert_eq!(report.last_lsn, seen.len() as u64);
        for (lsn, tag) in acked {
            let (got_lsn, got) = &seen[lsn as usize - 1];
            assert_eq!(*got_lsn, lsn);
            assert_eq!(
                *got,
                payload(tag, (tag % 700) as usize),
                "acked lsn {lsn} lost or altered"
            );
        }
        log.close().await.unwrap();
    });
}
