//! The real Rust client crate (`tarn_client`) against a real server: every operation,
//! pipelining beyond the in-flight limit, error mapping, auth.

mod common;

use std::time::Duration;

use common::{free_port, shard_of, ServerOpts, TarnServer};
use tarn_client::{Client, ClientError, ClientOptions, ErrorCode, Request, Response, Value};

#[test]
fn client_operations_end_to_end() {
    let server = TarnServer::start_ok(ServerOpts::shards(2));
    let addr = server.addr_string();
    let mut c = Client::connect(&addr).expect("connect");
    let info = c.server_info().clone();
    assert_eq!(info.shard_count, 2);
    assert_eq!(
        info.max_in_flight,
        tarn_net::limits::MAX_IN_FLIGHT_PER_CONNECTION
    );
    assert_eq!(info.max_batch_rows, tarn_net::limits::MAX_BATCH_ROWS);
    assert_eq!(
        info.max_frame_payload_bytes,
        tarn_net::limits::MAX_FRAME_PAYLOAD_BYTES
    );
    assert_eq!(info.server_version, "0.1.0");
    c.ping().unwrap();

    c.sql("CREATE TABLE p (id BIGINT PRIMARY KEY, name TEXT, n BIGINT)")
        .unwrap();
    let rows: Vec<Vec<Value>> = (0..100)
        .map(|i| vec![Value::Int(i), Value::Text(format!("p{i}")), Value::Int(i)])
        .collect();
    assert_eq!(c.upsert("p", &["id", "name", "n"], rows).unwrap(), 100);
    assert_eq!(
        c.upsert_merge(
            "p",
            &["id", "n"],
            vec![vec![Value::Int(5), Value::Int(500)]]
        )
        .unwrap(),
        1
    );
    let g = c.get("p", vec![Value::Int(5), Value::Int(1000)]).unwrap();
    assert_eq!(
        g.rows,
        vec![
            Some(vec![
                Value::Int(5),
                Value::Text("p5".into()),
                Value::Int(500)
            ]),
            None
        ]
    );
    assert_eq!(
        c.delete("p", vec![Value::Int(6), Value::Int(7), Value::Int(1000)])
            .unwrap(),
        2
    );
    let st = c.stats().unwrap();
    assert_eq!(st.shards.iter().map(|s| s.rows).sum::<u64>(), 98);
    let mut per_shard = [0u64; 2];
    for i in (0..100).filter(|i| *i != 6 && *i != 7) {
        per_shard[shard_of(&Value::Int(i), 2) as usize] += 1;
    }
    for s in &st.shards {
        assert_eq!(s.rows, per_shard[s.shard as usize]);
    }
    // Latencies are recorded by the shard that served the connection.
    let upserts: u64 = st
        .shards
        .iter()
        .flat_map(|s| &s.ops)
        .filter(|o| o.op == "UPSERT")
        .map(|o| o.count)
        .sum();
    assert!(upserts >= 2, "STATS must count the UPSERTs: {st:?}");

    // Pipelining more requests than the server's in-flight limit: the client windows them.
    let reqs: Vec<Request> = (0..1000)
        .map(|i| {
            common::upsert_req(
                "p",
                &["id", "n"],
                vec![vec![Value::Int(10_000 + i), Value::Int(i)]],
            )
        })
        .collect();
    let results = c.pipeline(&reqs).unwrap();
    assert_eq!(results.len(), 1000);
    assert!(
        results
            .iter()
            .all(|r| matches!(r, Ok(Response::Upsert(u)) if u.rows_applied == 1)),
        "pipeline results"
    );
    let keys: Vec<Value> = (0..1000).map(|i| Value::Int(10_000 + i)).collect();
    assert!(c.get("p", keys).unwrap().rows.iter().all(|r| r.is_some()));

    // send/recv: out-of-order matching by id.
    let a = c.send(&Request::Ping(b"a".to_vec())).unwrap();
    let b = c.send(&Request::Stats).unwrap();
    let mut got = [c.recv().unwrap(), c.recv().unwrap()];
    got.sort_by_key(|(id, _)| *id);
    assert_eq!(got[0].0, a);
    assert!(matches!(&got[0].1, Response::Pong(d) if d == b"a"));
    assert_eq!(got[1].0, b);
    assert!(matches!(got[1].1, Response::Stats(_)));

    // Server errors carry code, row and column; the connection stays usable.
    let err = c
        .upsert(
            "p",
            &["id", "n"],
            vec![
                vec![Value::Int(1), Value::Int(1)],
                vec![Value::Int(2), Value::Text("x".into())],
            ],
        )
        .unwrap_err();
    match err {
        ClientError::Server(e) => {
            assert_eq!(e.code, ErrorCode::TypeMismatch);
            assert_eq!(e.row, Some(1));
            assert_eq!(e.column.as_deref(), Some("n"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        c.get("nope", vec![Value::Int(1)]).unwrap_err().code(),
        Some(ErrorCode::UnknownTable)
    );
    c.ping().unwrap();
}

#[test]
fn client_auth_and_connect_errors() {
    let server = TarnServer::start_ok(ServerOpts::shards(1).args(&["--auth-token", "abc"]));
    let addr = server.addr_string();
    assert_eq!(
        Client::connect(&addr).err().and_then(|e| e.code()),
        Some(ErrorCode::AuthFailed)
    );
    let opts = ClientOptions {
        auth_token: Some("abc".into()),
        ..Default::default()
    };
    let mut c = Client::connect_with(&addr, opts).expect("token accepted");
    c.ping().unwrap();
    let opts = ClientOptions {
        auth_token: Some("abd".into()),
        ..Default::default()
    };
    assert_eq!(
        Client::connect_with(&addr, opts)
            .err()
            .and_then(|e| e.code()),
        Some(ErrorCode::AuthFailed)
    );

    // Nothing listens: a prompt I/O error, not a hang.
    let opts = ClientOptions {
        connect_timeout: Duration::from_secs(2),
        ..Default::default()
    };
    match Client::connect_with(&format!("127.0.0.1:{}", free_port()), opts) {
        Err(ClientError::Io(_)) => {}
        other => panic!("connect to a closed port: {:?}", other.err()),
    }
}
