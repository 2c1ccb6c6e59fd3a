//! RECENT end to end: a stream created with `recent = 5` on 2 shards; events of several keys,
//! late ones and ties among them; reads through the Rust client and the CLI equal an oracle
//! computed here, and stay identical across a graceful restart and a `kill -9` (sync mode)
//! after checkpoints were written (small `--checkpoint-mib`, so rings come back from a
//! checkpoint plus the log tail). Errors: a stream without recent, n = 0, unknown column,
//! unknown stream.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{checkpoints, run_tarn, ServerOpts, TarnServer};
use tarn_client::{Client, ErrorCode, IngestBody, IngestRequest, Value};

const KEEP: usize = 5;
const KEYS: usize = 12;
const BATCH: usize = 500;

fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64
}

/// The events sent so far, in send order (one client, batches one after another: the order
/// of the owners' logs, and within a batch the position in its record).
struct Oracle {
    events: Vec<Vec<Value>>,
}

impl Oracle {
    /// Key `card`'s newest `n` events, newest first by (event time, send order).
    fn recent(&self, card: &str, n: usize, cols: &[usize]) -> Vec<Vec<Value>> {
        let mut mine: Vec<(i64, usize, &Vec<Value>)> = (self.events.iter().enumerate())
            .filter(|(_, e)| e[1] == Value::Text(card.into()))
            .map(|(i, e)| match e[0] {
                Value::Timestamp(t) => (t, i, e),
                ref v => panic!("{v:?}"),
            })
            .collect();
        mine.sort_by_key(|&(t, i, _)| std::cmp::Reverse((t, i)));
        mine.into_iter()
            .take(n.min(KEEP))
            .map(|(_, _, e)| cols.iter().map(|&c| e[c].clone()).collect())
            .collect()
    }
}

fn card(i: usize) -> String {
    format!("card-{i}")
}

/// Sends `batches` batches of events: event times around `t0`, 1 in 10 late (an hour
/// earlier), coarse enough that ties are common; a padding note grows the log so that
/// checkpoints are taken.
fn ingest(c: &mut Client, oracle: &mut Oracle, t0: i64, batches: usize) {
    for _ in 0..batches {
        let n0 = oracle.events.len();
        let rows: Vec<Vec<Value>> = (n0..n0 + BATCH)
            .map(|k| {
                let ts = if k % 10 == 3 {
                    t0 - 3_600_000_000 - (k % 7) as i64
                } else {
                    t0 - ((k * 7919) % 50) as i64 * 1_000
                };
                vec![
                    Value::Timestamp(ts),
                    Value::Text(card((k * 31) % KEYS)),
                    Value::Double((k % 100) as f64),
                    Value::Text(format!("{k:08}-{}", "x".repeat(200))),
                ]
            })
            .collect();
        oracle.events.extend(rows.iter().cloned());
        let req = IngestRequest {
            stream: "ev".into(),
            producer: None,
            body: IngestBody::Rows {
                columns: ["ts", "card", "amount", "note"].map(String::from).to_vec(),
                rows,
            },
        };
        c.ingest(req).expect("ingest");
    }
}

/// Every key's recent events (and an unknown key's) at n = 5, 2 and 100, all columns and a
/// projection; asserted equal to the oracle. Returns what was read.
fn read_all(c: &mut Client, oracle: &Oracle) -> Vec<Vec<Vec<Value>>> {
    let mut keys: Vec<Value> = (0..KEYS).map(|i| Value::Text(card(i))).collect();
    keys.push(Value::Text("nobody".into()));
    let mut seen = Vec::new();
    for (n, cols, idx) in [
        (5, vec![], vec![0, 1, 2, 3]),
        (2, vec!["amount", "ts"], vec![2, 0]),
        (100, vec!["note"], vec![3]),
    ] {
        let r = c.recent("ev", keys.clone(), n, &cols).expect("recent");
        assert_eq!(r.keys.len(), keys.len());
        assert_eq!(r.columns.len(), idx.len());
        for (i, rows) in r.keys.iter().enumerate() {
            let name = match &keys[i] {
                Value::Text(s) => s.clone(),
                _ => unreachable!(),
            };
            assert_eq!(
                rows,
                &oracle.recent(&name, n as usize, &idx),
                "{name} n={n} {cols:?}"
            );
        }
        assert!(r.keys.last().unwrap().is_empty(), "unknown key");
        seen.extend(r.keys);
    }
    seen
}

/// The CLI's JSON for two keys equals the oracle.
fn check_cli(server: &TarnServer, oracle: &Oracle) {
    let addr = server.addr_string();
    let out = run_tarn(
        &addr,
        &[
            "--json",
            "recent",
            "ev",
            "card-1",
            "card-2",
            "-n",
            "3",
            "--columns",
            "ts,amount",
        ],
    );
    assert!(out.status.success(), "{}", out.stderr);
    let j: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON");
    for (i, name) in ["card-1", "card-2"].into_iter().enumerate() {
        assert_eq!(j[i]["key"], name);
        let want: Vec<serde_json::Value> = oracle
            .recent(name, 3, &[0, 2])
            .into_iter()
            .map(|r| match (&r[0], &r[1]) {
                (Value::Timestamp(t), Value::Double(a)) => {
                    serde_json::json!({"ts": t, "amount": a})
                }
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(j[i]["events"], serde_json::Value::Array(want), "{name}");
    }
    let table = run_tarn(&addr, &["recent", "ev", "card-1", "nobody", "-n", "2"]);
    assert!(table.status.success(), "{}", table.stderr);
    assert!(
        table.stdout.contains("no events: nobody"),
        "{}",
        table.stdout
    );
    let rows = (table.stdout.lines())
        .filter(|l| l.trim_start().starts_with("card-1 "))
        .count();
    assert_eq!(rows, 2, "{}", table.stdout);
}

fn errors(c: &mut Client) {
    let code = |r: Result<tarn_client::RecentReply, tarn_client::ClientError>| {
        let e = r.expect_err("an error");
        (e.code(), e.to_string())
    };
    let k = || vec![Value::Text(card(1))];
    let (cd, msg) = code(c.recent("plain", k(), 3, &[]));
    assert_eq!(cd, Some(ErrorCode::Unsupported), "{msg}");
    assert!(msg.contains("plain") && msg.contains("recent"), "{msg}");
    let (cd, msg) = code(c.recent("ev", k(), 0, &[]));
    assert_eq!(cd, Some(ErrorCode::InvalidArgument), "{msg}");
    let over = tarn_core::MAX_RECENT_EVENTS_PER_KEY + 1;
    let (cd, msg) = code(c.recent("ev", k(), over, &[]));
    assert_eq!(cd, Some(ErrorCode::InvalidArgument), "{msg}");
    assert!(msg.contains(&over.to_string()), "{msg}");
    let (cd, msg) = code(c.recent("ev", k(), 3, &["ts", "colour"]));
    assert_eq!(cd, Some(ErrorCode::UnknownColumn), "{msg}");
    assert!(msg.contains("colour"), "{msg}");
    let (cd, _) = code(c.recent("nope", k(), 3, &[]));
    assert_eq!(cd, Some(ErrorCode::UnknownStream));
    let (cd, _) = code(c.recent("ev", vec![Value::Int(1)], 3, &[]));
    assert_eq!(
        cd,
        Some(ErrorCode::TypeMismatch),
        "a BIGINT key of a TEXT partition"
    );
}

/// Waits (bounded) until every shard has written a checkpoint above `above`.
fn wait_for_checkpoints(server: &TarnServer, above: &[u64]) -> Vec<u64> {
    for _ in 0..600 {
        let now: Vec<u64> = (0..2)
            .map(|s| checkpoints(server.data_dir(), s).last().map_or(0, |c| c.0))
            .collect();
        if now.iter().zip(above).all(|(n, a)| n > a) {
            return now;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("no checkpoint above {above:?} within 30 s");
}

#[test]
fn recent_events_per_key_survive_restart_and_kill9() {
    let mut server = TarnServer::start_ok(ServerOpts::shards(2).durability("sync").args(&[
        "--segment-mib",
        "1",
        "--checkpoint-mib",
        "1",
    ]));
    let mut c = Client::connect(&server.addr_string()).unwrap();
    c.sql(
        "CREATE STREAM ev (ts TIMESTAMP, card TEXT, amount DOUBLE, note TEXT) \
         WITH (event_time = 'ts', partition = 'card', recent = 5); \
         CREATE STREAM plain (ts TIMESTAMP, card TEXT) WITH (event_time = 'ts')",
    )
    .unwrap();
    let shown = c.sql("SHOW STREAMS").unwrap();
    let recent_col = shown
        .columns
        .iter()
        .position(|c| c.name == "recent")
        .unwrap();
    assert_eq!(shown.rows[0][recent_col], Value::Int(5), "ev");
    assert_eq!(shown.rows[1][recent_col], Value::Int(0), "plain");
    let d = c.sql("DESCRIBE ev").unwrap();
    assert!(d.message.contains("last 5 events"), "{}", d.message);

    let t0 = now_us();
    let mut oracle = Oracle { events: Vec::new() };
    // ~2.5 MiB of events per shard: checkpoints are taken mid-way.
    ingest(&mut c, &mut oracle, t0, 30);
    let ck = wait_for_checkpoints(&server, &[0, 0]);
    let before = read_all(&mut c, &oracle);
    check_cli(&server, &oracle);
    errors(&mut c);
    drop(c);

    server.restart_ok();
    let mut c = Client::connect(&server.addr_string()).unwrap();
    assert_eq!(read_all(&mut c, &oracle), before, "graceful restart");

    // More events after the shutdown checkpoint, then a checkpoint and a tail, then kill -9.
    ingest(&mut c, &mut oracle, t0 + 1_000_000, 12);
    wait_for_checkpoints(&server, &ck);
    ingest(&mut c, &mut oracle, t0 + 2_000_000, 2);
    let before = read_all(&mut c, &oracle);
    drop(c);
    server.kill9();
    server.restart_ok();
    let mut c = Client::connect(&server.addr_string()).unwrap();
    assert_eq!(read_all(&mut c, &oracle), before, "kill -9");
    check_cli(&server, &oracle);

    // Dropping the stream drops its rings: a new stream of the same name starts empty.
    c.sql(
        "DROP STREAM ev; CREATE STREAM ev (ts TIMESTAMP, card TEXT, amount DOUBLE, note TEXT) \
           WITH (event_time = 'ts', partition = 'card', recent = 5)",
    )
    .unwrap();
    let r = c.recent("ev", vec![Value::Text(card(1))], 5, &[]).unwrap();
    assert_eq!(r.keys, vec![Vec::<Vec<Value>>::new()]);
}
