//! Server lifecycle: clean stop, persistence of data and catalog, DDL, async durability, auth,
//! configuration errors.

mod common;

use std::net::TcpListener;

use common::*;

fn names(r: &SqlReply) -> Vec<String> {
    let mut v: Vec<String> = r
        .rows
        .iter()
        .map(|row| match &row[0] {
            Value::Text(s) => s.clone(),
            other => panic!("SHOW TABLES name column {other:?}"),
        })
        .collect();
    v.sort();
    v
}

fn user(id: i64) -> Vec<Value> {
    vec![
        Value::Int(id),
        Value::Text(format!("user-{id}")),
        Value::Bool(id % 3 == 0),
        Value::Timestamp(id * 7),
    ]
}

#[test]
fn sigterm_exits_zero_and_data_and_catalog_persist() {
    let mut server = TarnServer::start_ok(ServerOpts::shards(2));
    assert!(
        server
            .ready_line
            .starts_with("tarnd 0.1.0 ready: listening on 127.0.0.1:"),
        "{}",
        server.ready_line
    );
    assert!(
        server.ready_line.contains("with 2 shard(s)"),
        "{}",
        server.ready_line
    );
    let mut c = server.client();
    c.sql("CREATE TABLE users (id BIGINT PRIMARY KEY, name TEXT, vip BOOLEAN, seen TIMESTAMP)")
        .unwrap();
    c.sql("CREATE TABLE tmp (k TEXT PRIMARY KEY, v BYTES)")
        .unwrap();
    c.sql("CREATE TABLE kept (k TEXT PRIMARY KEY, v DOUBLE)")
        .unwrap();
    let rows: Vec<Vec<Value>> = (0..1000).map(user).collect();
    assert_eq!(
        c.upsert("users", &["id", "name", "vip", "seen"], rows.clone())
            .unwrap(),
        1000
    );
    assert_eq!(
        c.upsert(
            "tmp",
            &["k", "v"],
            vec![vec![Value::Text("a".into()), Value::Bytes(vec![1])]]
        )
        .unwrap(),
        1
    );
    assert_eq!(
        c.upsert(
            "kept",
            &["k", "v"],
            vec![vec![Value::Text("pi".into()), Value::Double(3.25)]]
        )
        .unwrap(),
        1
    );
    // Merge keeps unlisted columns; replace nulls them.
    let merge = Request::Upsert(UpsertRequest {
        table: "users".into(),
        mode: UpsertMode::Merge,
        columns: vec!["id".into(), "vip".into()],
        rows: vec![vec![Value::Int(1), Value::Bool(true)]],
    });
    assert!(matches!(c.call(&merge).unwrap(), Response::Upsert(r) if r.rows_applied == 1));
    assert_eq!(
        c.upsert(
            "users",
            &["id", "name"],
            vec![vec![Value::Int(2), Value::Text("two".into())]]
        )
        .unwrap(),
        1
    );
    assert_eq!(
        c.delete("users", vec![Value::Int(3), Value::Int(4)])
            .unwrap(),
        2
    );
    c.sql("DROP TABLE tmp").unwrap();
    c.sql("DROP TABLE IF EXISTS never_existed")
        .expect("DROP TABLE IF EXISTS of a missing table succeeds");

    let expect = |c: &mut Conn| {
        assert_eq!(names(&c.sql("SHOW TABLES").unwrap()), ["kept", "users"]);
        let keys: Vec<Value> = (0..1000).map(Value::Int).collect();
        let got = c.get("users", keys).unwrap();
        for (i, r) in got.rows.into_iter().enumerate() {
            let i = i as i64;
            let want = match i {
                1 => Some(vec![
                    Value::Int(1),
                    Value::Text("user-1".into()),
                    Value::Bool(true),
                    Value::Timestamp(7),
                ]),
                2 => Some(vec![
                    Value::Int(2),
                    Value::Text("two".into()),
                    Value::Null,
                    Value::Null,
                ]),
                3 | 4 => None,
                _ => Some(user(i)),
            };
            assert_eq!(r, want, "users key {i}");
        }
        let d = c.sql("DESCRIBE users").unwrap();
        let cols: Vec<Vec<Value>> = d.rows;
        assert_eq!(cols.len(), 4);
        assert_eq!(cols[0][0], Value::Text("id".into()));
        assert_eq!(cols[0][1], Value::Text("BIGINT".into()));
        assert_eq!(cols[0][2], Value::Bool(true));
        assert_eq!(cols[3][1], Value::Text("TIMESTAMP".into()));
        assert_eq!(
            c.get("kept", vec![Value::Text("pi".into())]).unwrap().rows,
            vec![Some(vec![Value::Text("pi".into()), Value::Double(3.25)])]
        );
        assert_eq!(
            c.get("tmp", vec![Value::Text("a".into())])
                .unwrap_err()
                .code(),
            Some(ErrorCode::UnknownTable)
        );
        assert_eq!(total_rows(&c.stats().unwrap()), 998 + 1);
    };
    expect(&mut c);
    drop(c);

    let status = server.stop();
    assert_eq!(
        status.code(),
        Some(0),
        "SIGTERM must exit 0; stderr:\n{}",
        server.stderr()
    );
    server.restart_ok();
    expect(&mut server.client());
    // Twice: the checkpoint written at the first stop is read back correctly.
    server.stop_ok();
    server.restart_ok();
    expect(&mut server.client());
    // And after kill -9 (log replay on top of the checkpoint).
    server
        .client()
        .upsert("users", &["id"], vec![vec![Value::Int(5000)]])
        .unwrap();
    server.kill9();
    server.restart_ok();
    let mut c = server.client();
    assert_eq!(
        c.get("users", vec![Value::Int(5000)]).unwrap().rows,
        vec![Some(vec![
            Value::Int(5000),
            Value::Null,
            Value::Null,
            Value::Null
        ])]
    );
    c.delete("users", vec![Value::Int(5000)]).unwrap();
    expect(&mut c);
    drop(c);
    server.stop_ok();
}

#[test]
fn drop_then_create_same_name_starts_empty() {
    let mut server = TarnServer::start_ok(ServerOpts::shards(2));
    let mut c = server.client();
    c.sql("CREATE TABLE t (id BIGINT PRIMARY KEY, v TEXT)")
        .unwrap();
    let rows: Vec<Vec<Value>> = (0..200)
        .map(|i| vec![Value::Int(i), Value::Text(format!("old-{i}"))])
        .collect();
    c.upsert("t", &["id", "v"], rows).unwrap();
    c.sql("DROP TABLE t").unwrap();
    assert_eq!(
        c.get("t", vec![Value::Int(1)]).unwrap_err().code(),
        Some(ErrorCode::UnknownTable)
    );
    c.sql("CREATE TABLE t (id BIGINT PRIMARY KEY, w BIGINT, x TEXT)")
        .unwrap();
    let keys: Vec<Value> = (0..200).map(Value::Int).collect();
    assert_eq!(
        c.get("t", keys.clone()).unwrap().rows,
        vec![None; 200],
        "a re-created table must start empty"
    );
    assert_eq!(total_rows(&c.stats().unwrap()), 0);
    c.upsert("t", &["id", "w"], vec![vec![Value::Int(7), Value::Int(70)]])
        .unwrap();
    // The old schema's column is gone.
    assert_eq!(
        c.upsert(
            "t",
            &["id", "v"],
            vec![vec![Value::Int(8), Value::Text("x".into())]]
        )
        .unwrap_err()
        .code(),
        Some(ErrorCode::UnknownColumn)
    );
    drop(c);

    // Replay after kill -9 must skip the dropped table's log records (table ids are not reused).
    server.kill9();
    server.restart_ok();
    let check = |c: &mut Conn| {
        let got = c.get("t", keys.clone()).unwrap();
        assert_eq!(
            got.columns
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>(),
            ["id", "w", "x"]
        );
        for (i, r) in got.rows.into_iter().enumerate() {
            let want = (i == 7).then(|| vec![Value::Int(7), Value::Int(70), Value::Null]);
            assert_eq!(r, want, "key {i}");
        }
        assert_eq!(total_rows(&c.stats().unwrap()), 1);
    };
    check(&mut server.client());
    server.stop_ok();
    server.restart_ok();
    check(&mut server.client());
    server.stop_ok();
}

#[test]
fn async_durability_persists_after_sigterm() {
    let mut server = TarnServer::start_ok(ServerOpts::shards(2).durability("async"));
    assert!(
        server.ready_line.to_lowercase().contains("async"),
        "{}",
        server.ready_line
    );
    let mut c = server.client();
    c.sql("CREATE TABLE ev (id BIGINT PRIMARY KEY, body TEXT)")
        .unwrap();
    let reqs: Vec<Request> = (0..20)
        .map(|b| {
            upsert_req(
                "ev",
                &["id", "body"],
                (0..250)
                    .map(|i| {
                        vec![
                            Value::Int(b * 250 + i),
                            Value::Text(format!("e{}", b * 250 + i)),
                        ]
                    })
                    .collect(),
            )
        })
        .collect();
    pipelined(&mut c, &reqs, 8);
    drop(c);
    server.stop_ok();
    server.restart_ok();
    let mut c = server.client();
    let keys: Vec<Value> = (0..5000).map(Value::Int).collect();
    let got = c.get_many("ev", &keys, 5000).unwrap();
    for (i, r) in got.into_iter().enumerate() {
        assert_eq!(
            r,
            Some(vec![Value::Int(i as i64), Value::Text(format!("e{i}"))]),
            "key {i}"
        );
    }
    drop(c);
    server.stop_ok();
}

#[test]
fn auth_token_required_when_configured() {
    let mut server = TarnServer::start_ok(ServerOpts::shards(1).args(&["--auth-token", "tok-123"]));
    assert_eq!(
        server.client_with_token("").map(|_| ()).unwrap_err().code(),
        Some(ErrorCode::AuthFailed)
    );
    assert_eq!(
        server
            .client_with_token("tok-12")
            .map(|_| ())
            .unwrap_err()
            .code(),
        Some(ErrorCode::AuthFailed)
    );
    let mut c = server.client_with_token("tok-123").unwrap();
    c.ping().unwrap();
    drop(c);
    server.stop_ok();
    // Without the flag, no token is needed (and a token is ignored).
    server.opts_mut().extra_args.clear();
    server.restart_ok();
    server.client().ping().unwrap();
    server
        .client_with_token("anything")
        .unwrap()
        .ping()
        .unwrap();
}

fn expect_config_error(args: &[&str], needle: &str) -> String {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let (status, err) = TarnServer::start_expect_failure(&args);
    assert!(!status.success(), "{args:?} must fail");
    assert!(
        status.code().is_some(),
        "{args:?} must exit, not die of a signal: {status:?}"
    );
    assert!(
        err.contains("tarnd: ") || err.contains("error:"),
        "{args:?}: stderr must say it is tarnd's error: {err}"
    );
    assert!(
        err.contains(needle),
        "{args:?}: stderr must mention {needle:?}: {err}"
    );
    assert!(!err.contains("panicked"), "{args:?}: tarnd panicked: {err}");
    err
}

#[test]
fn configuration_errors_are_clear() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d").display().to_string();
    let listen = format!("127.0.0.1:{}", free_port());
    let err = expect_config_error(
        &["--listen", &listen, "--data-dir", &data, "--shards", "0"],
        "--shards",
    );
    assert!(err.starts_with("tarnd: "), "{err}");
    expect_config_error(
        &[
            "--listen",
            "not-an-address",
            "--data-dir",
            &data,
            "--shards",
            "1",
        ],
        "listen",
    );
    expect_config_error(
        &[
            "--listen",
            "127.0.0.1:99999",
            "--data-dir",
            &data,
            "--shards",
            "1",
        ],
        "listen",
    );
    expect_config_error(
        &[
            "--listen",
            &listen,
            "--data-dir",
            &data,
            "--shards",
            "1",
            "--durability",
            "sometimes",
        ],
        "durability",
    );
    expect_config_error(
        &[
            "--listen",
            &listen,
            "--data-dir",
            &data,
            "--shards",
            "1",
            "--segment-mib",
            "0",
        ],
        "segment",
    );
    expect_config_error(
        &[
            "--listen",
            &listen,
            "--data-dir",
            &data,
            "--shards",
            "1",
            "--no-such-flag",
        ],
        "no-such-flag",
    );
    // A data dir that is a file.
    let file = dir.path().join("file");
    std::fs::write(&file, b"not a directory").unwrap();
    expect_config_error(
        &[
            "--listen",
            &listen,
            "--data-dir",
            &file.display().to_string(),
            "--shards",
            "1",
        ],
        "data",
    );
    // A data dir whose meta is garbage.
    let bad = dir.path().join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    std::fs::write(bad.join("meta"), b"{{{{").unwrap();
    expect_config_error(
        &[
            "--listen",
            &listen,
            "--data-dir",
            &bad.display().to_string(),
            "--shards",
            "1",
        ],
        "meta",
    );

    // Port already in use.
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let err = expect_config_error(
        &[
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
            &data,
            "--shards",
            "1",
        ],
        &port.to_string(),
    );
    assert!(
        err.to_lowercase().contains("in use") || err.contains("cannot listen"),
        "port in use: {err}"
    );
    drop(taken);
}

#[test]
fn port_in_use_by_another_tarnd() {
    let server = TarnServer::start_ok(ServerOpts::shards(1));
    let dir = tempfile::tempdir().unwrap();
    let args: Vec<String> = vec![
        "--listen".into(),
        server.addr_string(),
        "--data-dir".into(),
        dir.path().join("other").display().to_string(),
        "--shards".into(),
        "1".into(),
    ];
    let (status, err) = TarnServer::start_expect_failure(&args);
    assert!(!status.success());
    assert!(
        err.contains("cannot listen") || err.to_lowercase().contains("in use"),
        "{err}"
    );
    // The first server was not disturbed (SO_REUSEPORT must not let the second one share it).
    let mut c = server.client();
    c.ping().unwrap();
}

#[test]
fn duplicate_keys_in_a_batch_last_wins_also_after_replay() {
    let mut server = TarnServer::start_ok(ServerOpts::shards(2));
    let mut c = server.client();
    c.sql("CREATE TABLE d (id BIGINT PRIMARY KEY, v TEXT, n BIGINT)")
        .unwrap();
    let rows = vec![
        vec![Value::Int(1), Value::Text("first".into()), Value::Int(1)],
        vec![Value::Int(2), Value::Text("only".into()), Value::Int(2)],
        vec![Value::Int(1), Value::Text("second".into()), Value::Int(3)],
        vec![Value::Int(1), Value::Text("last".into()), Value::Null],
    ];
    c.upsert("d", &["id", "v", "n"], rows).unwrap();
    // Merge mode, repeated key: each row merges into the result of the previous one.
    let merge = Request::Upsert(UpsertRequest {
        table: "d".into(),
        mode: UpsertMode::Merge,
        columns: vec!["id".into(), "n".into()],
        rows: vec![
            vec![Value::Int(2), Value::Int(20)],
            vec![Value::Int(2), Value::Int(21)],
        ],
    });
    assert!(matches!(c.call(&merge).unwrap(), Response::Upsert(_)));
    let want = vec![
        Some(vec![Value::Int(1), Value::Text("last".into()), Value::Null]),
        Some(vec![
            Value::Int(2),
            Value::Text("only".into()),
            Value::Int(21),
        ]),
    ];
    assert_eq!(
        c.get("d", vec![Value::Int(1), Value::Int(2)]).unwrap().rows,
        want
    );
    assert_eq!(total_rows(&c.stats().unwrap()), 2);
    drop(c);
    server.kill9();
    server.restart_ok();
    let mut c = server.client();
    assert_eq!(
        c.get("d", vec![Value::Int(1), Value::Int(2)]).unwrap().rows,
        want,
        "after log replay"
    );
    assert_eq!(total_rows(&c.stats().unwrap()), 2);
    drop(c);
    server.stop_ok();
    server.restart_ok();
    assert_eq!(
        server
            .client()
            .get("d", vec![Value::Int(1), Value::Int(2)])
            .unwrap()
            .rows,
        want,
        "after a checkpoint"
    );
}

/// SIGTERM while a client has writes in flight: exit 0, every reply is a success or
/// SHUTTING_DOWN, and every acknowledged write is there after the restart.
#[test]
fn sigterm_during_writes_keeps_every_acknowledged_write() {
    let mut server = TarnServer::start_ok(ServerOpts::shards(2));
    let mut c = server.client();
    c.sql("CREATE TABLE w (id BIGINT PRIMARY KEY, b BIGINT)")
        .unwrap();
    drop(c);
    let pid = server.pid();
    let addr = server.addr();
    const PER_BATCH: i64 = 50;
    let writer = std::thread::spawn(move || {
        let mut c = Conn::connect(addr).unwrap();
        let mut batch_of = std::collections::HashMap::new();
        let mut acked = Vec::new();
        let mut other = Vec::new();
        let mut next = 0i64;
        let mut signalled = false;
        let mut send_failed = false;
        loop {
            while !send_failed && batch_of.len() < 16 && next < 5_000 {
                let rows = (0..PER_BATCH)
                    .map(|i| vec![Value::Int(next * PER_BATCH + i), Value::Int(next)])
                    .collect();
                match c.send(&upsert_req("w", &["id", "b"], rows)) {
                    Ok(id) => {
                        batch_of.insert(id, next);
                        next += 1;
                    }
                    // Keep reading: replies to what was already sent may still come.
                    Err(_) => send_failed = true,
                }
            }
            if batch_of.is_empty() {
                return (acked, other, next);
            }
            if !signalled && acked.len() >= 30 {
                // SAFETY: signalling our own child.
                unsafe { libc::kill(pid as i32, libc::SIGTERM) };
                signalled = true;
            }
            match c.recv() {
                Ok((id, Response::Upsert(_))) => {
                    acked.push(batch_of.remove(&id).expect("known id"))
                }
                Ok((id, Response::Error(e))) => {
                    let b = if id == 0 { None } else { batch_of.remove(&id) };
                    other.push((b, e));
                }
                Ok((_, r)) => panic!("unexpected {r:?}"),
                Err(e) => {
                    eprintln!("writer stopped: {e}");
                    return (acked, other, next);
                }
            }
        }
    });
    let (acked, errors, sent) = writer.join().unwrap();
    let status = server.stop();
    assert_eq!(
        status.code(),
        Some(0),
        "SIGTERM under load must exit 0; stderr:\n{}",
        server.stderr()
    );
    eprintln!(
        "{} batches acked, {} error replies, {sent} sent",
        acked.len(),
        errors.len()
    );
    for (b, e) in &errors {
        assert_eq!(
            e.code,
            ErrorCode::ShuttingDown,
            "batch {b:?}: only SHUTTING_DOWN is expected while stopping: {e}"
        );
    }
    assert!(acked.len() >= 30);
    server.restart_ok();
    let mut c = server.client();
    let keys: Vec<Value> = (0..sent * PER_BATCH).map(Value::Int).collect();
    let got = c.get_many("w", &keys, 5_000).unwrap();
    for &b in &acked {
        for i in 0..PER_BATCH {
            let k = b * PER_BATCH + i;
            assert_eq!(
                got[k as usize],
                Some(vec![Value::Int(k), Value::Int(b)]),
                "acked batch {b} lost key {k}"
            );
        }
    }
    // Batches are all-or-nothing (each lies on both shards, so check per shard).
    for b in 0..sent {
        for s in 0..2 {
            let present: Vec<bool> = (0..PER_BATCH)
                .map(|i| b * PER_BATCH + i)
                .filter(|&k| shard_of(&Value::Int(k), 2) == s)
                .map(|k| got[k as usize].is_some())
                .collect();
            assert!(
                present.iter().all(|&p| p) || present.iter().all(|&p| !p),
                "batch {b} partially applied on shard {s}"
            );
        }
    }
    let unreplied: Vec<i64> = (0..sent)
        .filter(|b| !acked.contains(b) && !errors.iter().any(|(e, _)| *e == Some(*b)))
        .collect();
    let applied_unreplied: Vec<i64> = unreplied
        .iter()
        .copied()
        .filter(|&b| {
            got[(b * PER_BATCH) as usize..((b + 1) * PER_BATCH) as usize]
                .iter()
                .any(|r| r.is_some())
        })
        .collect();
    eprintln!(
        "{} batches got no reply; of those, applied: {applied_unreplied:?}",
        unreplied.len()
    );
    // OPERATIONS.md: "answers every request it already read"; a request never answered must
    // therefore not have been read, hence not applied.
    assert!(
        applied_unreplied.is_empty(),
        "batches applied but never answered at SIGTERM: {applied_unreplied:?}"
    );
    let errored: Vec<i64> = errors.iter().filter_map(|(b, _)| *b).collect();
    for b in errored {
        let any = (0..PER_BATCH).any(|i| got[(b * PER_BATCH + i) as usize].is_some());
        assert!(
            !any,
            "batch {b} was answered SHUTTING_DOWN (\"nothing was applied\") but is present"
        );
    }
}
