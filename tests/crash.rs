//! The acceptance test: nothing acknowledged is lost across `kill -9` in sync mode, and no
//! batch is ever partially applied, even one that spans shards.
//!
//! Atomicity, precisely (DESIGN.md §3, `tarn_core::txn`): a batch whose rows all live on one
//! shard is one log record there. A batch that spans shards is prepared on every owner and
//! committed once every part is durable; recovery commits a batch whose commit the crash cut
//! short if and only if every part had reached the disk. So:
//! - an ACKED batch is fully present after a crash;
//! - an UNACKED batch is either fully present or fully absent, on all shards together;
//! - a NEVER-SENT batch is absent.
//!
//! Key design that makes every outcome decidable: after the initial load (generation 0), the
//! writer's batches touch disjoint key sets: batch `g` rewrites a window of base keys that no
//! other batch touches and inserts fresh keys only it writes, all with generation `g`. So each
//! key is either at its base value, or at the value of the single batch that touched it.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use common::*;

const SHARDS: u32 = 2;
const BASE_ROWS: i64 = 100_000;
const LOAD_BATCH: usize = 500;
const LOAD_DEPTH: usize = 4;
/// Base keys rewritten by each writer batch, and fresh keys it inserts.
const REWRITE_PER_BATCH: usize = 20;
const FRESH_PER_BATCH: usize = 20;
/// Writer batches planned per crash round (the kill comes long before they run out).
const MAX_WRITER_BATCHES: usize = 600;
/// kill -9 rounds; each round's batches touch keys no earlier round touched.
const ROUNDS: usize = 3;
const WRITER_DEPTH: usize = 8;
/// Acked writer batches before the kill (plus a per-round offset, to vary the moment).
const ACKED_BEFORE_KILL: usize = 40;
const FRESH_START: i64 = 10_000_000;
const FRESH_PER_ROUND: i64 = 1_000_000;
const AFTER_RECOVERY_START: i64 = 20_000_000;
const PAD: &str = "pppppppppppppppppppppppppppppppppppppppppppppppp";

fn row(id: i64, gen: i64) -> Vec<Value> {
    vec![
        Value::Int(id),
        Value::Int(gen),
        Value::Text(format!("k{id}-g{gen}-{PAD}")),
    ]
}

const COLS: [&str; 3] = ["id", "gen", "val"];

struct Plan {
    gen: i64,
    /// Rewritten base keys (previous value: generation 0).
    rewrite: Vec<i64>,
    /// Fresh keys (previous value: absent).
    fresh: Vec<i64>,
    /// Some(shard) when every key of the batch lives on that shard.
    single: Option<u32>,
}

impl Plan {
    fn keys(&self) -> impl Iterator<Item = (i64, bool)> + '_ {
        self.rewrite
            .iter()
            .map(|&k| (k, false))
            .chain(self.fresh.iter().map(|&k| (k, true)))
    }
    fn request(&self) -> Request {
        let rows = self.keys().map(|(k, _)| row(k, self.gen)).collect();
        upsert_req("kv", &COLS, rows)
    }
}

fn shard_of_id(id: i64) -> u32 {
    shard_of(&Value::Int(id), SHARDS)
}

/// Deterministic writer plans: every third batch lies on a single shard (alternating), the
/// others span both shards. Key sets are disjoint across batches.
fn make_plans(round: usize) -> Vec<Plan> {
    // Base keys: round r uses [r * BASE_ROWS / ROUNDS, (r + 1) * BASE_ROWS / ROUNDS).
    let base_limit = (round as i64 + 1) * BASE_ROWS / ROUNDS as i64;
    let mut base_cursor = round as i64 * BASE_ROWS / ROUNDS as i64;
    let mut fresh_cursor = FRESH_START + round as i64 * FRESH_PER_ROUND;
    let fresh_limit = fresh_cursor + FRESH_PER_ROUND;
    let mut plans = Vec::new();
    for i in 0..MAX_WRITER_BATCHES {
        let single = (i % 3 == 0).then_some(((i / 3) % 2) as u32);
        let take = |cursor: &mut i64, n: usize, limit: i64| {
            let mut v = Vec::with_capacity(n);
            while v.len() < n {
                assert!(*cursor < limit, "key space exhausted");
                let k = *cursor;
                *cursor += 1;
                if single.is_none_or(|s| shard_of_id(k) == s) {
                    v.push(k);
                }
            }
            v
        };
        let rewrite = take(&mut base_cursor, REWRITE_PER_BATCH, base_limit);
        let fresh = take(&mut fresh_cursor, FRESH_PER_BATCH, fresh_limit);
        let plan = Plan {
            gen: (round * MAX_WRITER_BATCHES + i) as i64 + 1,
            rewrite,
            fresh,
            single,
        };
        if plan.single.is_none() {
            let shards: std::collections::BTreeSet<u32> =
                plan.keys().map(|(k, _)| shard_of_id(k)).collect();
            assert_eq!(
                shards.len(),
                SHARDS as usize,
                "a multi-shard batch must span every shard"
            );
        }
        plans.push(plan);
    }
    plans
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Status {
    NotSent,
    /// Sent, no success reply (no reply at all, or an error reply).
    Unacked,
    Acked,
}

/// Keeps WRITER_DEPTH batches in flight until the connection dies or the plans run out.
/// Once `kill_after` batches are acked, it tops the pipeline up and SIGKILLs the server at
/// once, so batches are certainly in flight (sent, not yet durable) at the kill.
fn writer(
    addr: std::net::SocketAddr,
    plans: Arc<Vec<Plan>>,
    pid: u32,
    kill_after: usize,
) -> Vec<Status> {
    let mut acked = 0usize;
    let mut killed = false;
    let mut status = vec![Status::NotSent; plans.len()];
    let mut conn = match Conn::connect(addr) {
        Ok(c) => c,
        Err(e) => panic!("writer connect: {e}"),
    };
    let mut outstanding: HashMap<u64, usize> = HashMap::new();
    let mut next = 0usize;
    let mut send_failed = false;
    loop {
        while !send_failed && outstanding.len() < WRITER_DEPTH && next < plans.len() {
            // Mark as sent first: a write that fails half-way may still reach the server.
            status[next] = Status::Unacked;
            match conn.send(&plans[next].request()) {
                Ok(id) => {
                    outstanding.insert(id, next);
                    next += 1;
                }
                // Keep reading: acks already received by our kernel still count.
                Err(_) => send_failed = true,
            }
        }
        if !killed && acked >= kill_after && outstanding.len() == WRITER_DEPTH {
            // SAFETY: signalling our own child process.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            killed = true;
        }
        if outstanding.is_empty() {
            break;
        }
        match conn.recv() {
            Ok((id, resp)) => {
                let Some(i) = outstanding.remove(&id) else {
                    panic!("reply for unknown request {id}")
                };
                match resp {
                    Response::Upsert(r) => {
                        let n = plans[i].rewrite.len() + plans[i].fresh.len();
                        assert_eq!(
                            r.rows_applied, n as u64,
                            "batch {} acked with a wrong row count",
                            plans[i].gen
                        );
                        status[i] = Status::Acked;
                        acked += 1;
                    }
                    Response::Error(e) => eprintln!("writer batch {} failed: {e}", plans[i].gen),
                    other => panic!("unexpected reply {other:?}"),
                }
            }
            Err(_) => break,
        }
    }
    status
}

/// Every key the test may have written, in a fixed order.
fn all_keys(rounds: &[Vec<Plan>]) -> Vec<i64> {
    let mut keys: Vec<i64> = (0..BASE_ROWS).collect();
    for plans in rounds {
        for p in plans {
            keys.extend(&p.fresh);
        }
    }
    keys
}

fn read_all(server: &TarnServer, keys: &[i64]) -> BTreeMap<i64, Option<Vec<Value>>> {
    let mut c = server.client();
    let vals: Vec<Value> = keys.iter().map(|&k| Value::Int(k)).collect();
    let rows = c.get_many("kv", &vals, 5_000).expect("GET after restart");
    keys.iter().copied().zip(rows).collect()
}

/// Checks the recovered state against the writer's record of this round and the state
/// verified before the round (`prior`). Returns a short summary.
fn verify(
    observed: &BTreeMap<i64, Option<Vec<Value>>>,
    prior: &BTreeMap<i64, Option<Vec<Value>>>,
    plans: &[Plan],
    status: &[Status],
) -> String {
    let mut touched = std::collections::BTreeSet::new();
    let mut failures = Vec::new();
    let (mut unacked_full, mut unacked_none, mut unacked_split) = (0, 0, 0);
    for (p, st) in plans.iter().zip(status) {
        // Per shard: which keys of this batch hold the batch's value ("new") or the prior ("old").
        let mut per_shard: BTreeMap<u32, (usize, usize)> = BTreeMap::new();
        for (k, fresh) in p.keys() {
            touched.insert(k);
            let got = observed.get(&k).expect("key was read");
            let new = Some(row(k, p.gen));
            let old = prior.get(&k).cloned().flatten();
            assert_eq!(
                old.is_none(),
                fresh,
                "test bug: fresh key {k} existed before, or a base key did not"
            );
            let is_new = *got == new;
            let is_old = *got == old;
            match st {
                Status::Acked if !is_new => failures.push(format!(
                    "ACKED batch {} (single-shard: {:?}): key {k} (shard {}) is {got:?}, expected generation {}",
                    p.gen,
                    p.single,
                    shard_of_id(k),
                    p.gen
                )),
                Status::NotSent if !is_old => {
                    failures.push(format!("never-sent batch {}: key {k} is {got:?}, expected its prior value", p.gen))
                }
                Status::Unacked if !is_new && !is_old => failures.push(format!(
                    "unacked batch {}: key {k} is {got:?}, which is neither its prior value nor generation {}",
                    p.gen, p.gen
                )),
                _ => {}
            }
            let e = per_shard.entry(shard_of_id(k)).or_default();
            if is_new {
                e.0 += 1
            } else if is_old {
                e.1 += 1
            }
        }
        if *st == Status::Unacked {
            for (shard, (new, old)) in &per_shard {
                if *new > 0 && *old > 0 {
                    failures.push(format!(
                        "unacked batch {} is PARTIALLY applied on shard {shard}: {new} of its rows there present, {old} absent",
                        p.gen
                    ));
                }
            }
            let new: usize = per_shard.values().map(|v| v.0).sum();
            let old: usize = per_shard.values().map(|v| v.1).sum();
            if new > 0 && old > 0 {
                failures.push(format!(
                    "unacked batch {} (single-shard: {:?}) is PARTIALLY applied: {new} rows present, {old} absent ({per_shard:?} per shard as (present, absent))",
                    p.gen, p.single
                ));
            }
            match (new, old) {
                (_, 0) => unacked_full += 1,
                (0, _) => unacked_none += 1,
                _ => unacked_split += 1,
            }
        }
    }
    for (k, v) in prior {
        if !touched.contains(k) && observed.get(k) != Some(v) {
            failures.push(format!(
                "key {k}, untouched this round, changed from {v:?} to {:?}",
                observed.get(k)
            ));
        }
    }
    if !failures.is_empty() {
        let n = failures.len();
        failures.truncate(20);
        panic!(
            "{n} violation(s) after recovery, first ones:\n{}",
            failures.join("\n")
        );
    }
    format!(
        "unacked batches: {unacked_full} fully applied, {unacked_none} not applied, {unacked_split} partially applied (must be 0)"
    )
}

#[test]
fn kill9_loses_nothing_acknowledged_and_applies_no_partial_batch() {
    let mut server = TarnServer::start_ok(ServerOpts::shards(SHARDS).durability("sync").args(&[
        "--segment-mib",
        "1",
        "--checkpoint-mib",
        "1",
    ]));
    let data_dir = server.data_dir().to_path_buf();
    let mut c = server.client();
    c.sql("CREATE TABLE kv (id BIGINT PRIMARY KEY, gen BIGINT, val TEXT)")
        .expect("create table");

    // Initial load: 100k rows, generation 0, pipelined.
    let reqs: Vec<Request> = (0..BASE_ROWS)
        .collect::<Vec<_>>()
        .chunks(LOAD_BATCH)
        .map(|ids| upsert_req("kv", &COLS, ids.iter().map(|&k| row(k, 0)).collect()))
        .collect();
    for (r, req) in pipelined(&mut c, &reqs, LOAD_DEPTH).iter().zip(&reqs) {
        let Request::Upsert(u) = req else {
            unreachable!()
        };
        assert!(
            matches!(r, Response::Upsert(a) if a.rows_applied == u.rows.len() as u64),
            "load reply {r:?}"
        );
    }
    let st = c.stats().expect("stats");
    assert_eq!(
        total_rows(&st),
        BASE_ROWS as u64,
        "rows after the initial load: {st:?}"
    );

    // Small segments and checkpoints: by now every shard checkpointed and dropped old segments.
    wait_until(
        Duration::from_secs(30),
        "a checkpoint and segment removal on every shard",
        || {
            (0..SHARDS).all(|s| {
                !checkpoints(&data_dir, s).is_empty()
                    && segments(&data_dir, s).first().is_some_and(|f| f.0 > 1)
            })
        },
    );
    for s in 0..SHARDS {
        eprintln!(
            "shard {s}: checkpoints {:?}, segments {:?}",
            checkpoints(&data_dir, s)
                .iter()
                .map(|c| c.0)
                .collect::<Vec<_>>(),
            segments(&data_dir, s)
                .iter()
                .map(|c| c.0)
                .collect::<Vec<_>>()
        );
    }

    // The verified state: every key the test may touch -> its value (None = absent).
    let all_rounds: Vec<Vec<Plan>> = (0..ROUNDS).map(make_plans).collect();
    let keys = all_keys(&all_rounds);
    let mut state: BTreeMap<i64, Option<Vec<Value>>> = keys
        .iter()
        .map(|&k| (k, (k < BASE_ROWS).then(|| row(k, 0))))
        .collect();
    drop(c);

    for (round, plans) in all_rounds.into_iter().enumerate() {
        // Concurrent writer; it SIGKILLs the server while its batches are in flight.
        let plans = Arc::new(plans);
        let kill_after = ACKED_BEFORE_KILL + 17 * round;
        let handle = {
            let (addr, plans, pid) = (server.addr(), plans.clone(), server.pid());
            std::thread::spawn(move || writer(addr, plans, pid, kill_after))
        };
        let status = handle.join().expect("writer thread panicked");
        server.kill9();
        let n_acked = status.iter().filter(|s| **s == Status::Acked).count();
        let n_unacked = status.iter().filter(|s| **s == Status::Unacked).count();
        eprintln!(
            "round {round}: {n_acked} batches acked, {n_unacked} sent but unacked at the kill"
        );
        assert!(
            n_acked >= kill_after,
            "the writer stopped early: {n_acked} acked"
        );
        assert!(
            n_unacked > 0,
            "no batch was in flight at the kill; the test did not exercise a crash mid-write"
        );

        // Crash recovery.
        server.restart_ok();
        let observed = read_all(&server, &keys);
        let summary = verify(&observed, &state, &plans, &status);
        eprintln!("round {round} after kill -9: {summary}");
        for line in server
            .stderr()
            .lines()
            .filter(|l| l.contains("decided multi-shard"))
        {
            eprintln!("  server: {line}");
        }
        let present = observed.values().filter(|v| v.is_some()).count() as u64;
        let mut c = server.client();
        assert_eq!(
            total_rows(&c.stats().unwrap()),
            present,
            "STATS row count disagrees with the rows GET finds"
        );
        state = observed;
    }
    let observed = state;
    let present = observed.values().filter(|v| v.is_some()).count() as u64;

    // Writes keep working after recovery.
    let mut c = server.client();
    let extra: Vec<i64> = (AFTER_RECOVERY_START..AFTER_RECOVERY_START + 100).collect();
    assert_eq!(
        c.upsert("kv", &COLS, extra.iter().map(|&k| row(k, 7)).collect())
            .unwrap(),
        100
    );
    drop(c);

    // Clean stop (checkpoint at shutdown) and start again: the same data.
    server.stop_ok();
    server.restart_ok();
    let again = read_all(&server, &keys);
    if again != observed {
        let diff: Vec<_> = observed
            .iter()
            .filter(|(k, v)| again.get(k) != Some(v))
            .take(10)
            .collect();
        panic!("data changed across a clean restart; first differences (before): {diff:?}");
    }
    let mut c = server.client();
    let extra_rows = c
        .get_many(
            "kv",
            &extra.iter().map(|&k| Value::Int(k)).collect::<Vec<_>>(),
            1000,
        )
        .unwrap();
    for (k, r) in extra.iter().zip(extra_rows) {
        assert_eq!(
            r,
            Some(row(*k, 7)),
            "row written after recovery lost across a clean restart"
        );
    }
    assert_eq!(total_rows(&c.stats().unwrap()), present + 100);
    drop(c);
    server.stop_ok();
}
