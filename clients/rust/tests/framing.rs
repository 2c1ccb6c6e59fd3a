//! Tests of the client's framing and pipelining against a tiny in-test server thread that
//! speaks frames via tarn-net. Not a test of Tarn itself (tests/ at the repo root does that).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread::JoinHandle;

use tarn_client::*;
use tarn_net::{decode_request, encode_response, FrameBuffer};

const MAX_IN_FLIGHT: u32 = 4;

/// Answers one request the way the fake server does.
fn answer(req: Request) -> Response {
    match req {
        Request::Hello(_) => unreachable!(),
        Request::Ping(d) => Response::Pong(d),
        Request::Sql(s) if s.starts_with("fail") => Response::Error(
            ErrorReply::new(ErrorCode::UnknownTable, "table \"x\" does not exist")
                .with_row(3)
                .with_column("y"),
        ),
        Request::Sql(s) => Response::Sql(SqlReply {
            message: s,
            columns: vec![],
            rows: vec![],
        }),
        Request::Upsert(u) => Response::Upsert(UpsertReply {
            rows_applied: u.rows.len() as u64,
        }),
        Request::Get(k) => Response::Get(GetReply {
            columns: vec![Column {
                name: "k".into(),
                ty: ColumnType::BigInt,
            }],
            rows: k
                .keys
                .into_iter()
                .map(|v| (!v.is_null()).then(|| vec![v]))
                .collect(),
        }),
        Request::Delete(k) => Response::Delete(DeleteReply {
            rows_deleted: k.keys.len() as u64,
        }),
        Request::Stats => Response::Stats(StatsReply { shards: vec![] }),
        Request::Features(f) => Response::Features(tarn_client::FeaturesReply {
            as_of_us: 1,
            columns: vec![],
            rows: f
                .keys
                .into_iter()
                .map(|_| tarn_client::FeatureRow {
                    as_of_us: 1_790_000_000_000_000,
                    newest_event_time_us: None,
                    values: vec![],
                })
                .collect(),
        }),
        Request::History(h) => Response::History(tarn_client::HistoryReply {
            columns: vec![],
            rows: h
                .pairs
                .into_iter()
                .map(|_| tarn_client::FeatureRow {
                    as_of_us: 1_790_000_000_000_000,
                    newest_event_time_us: None,
                    values: vec![],
                })
                .collect(),
        }),
        Request::Knn(q) => knn_answer(q),
        Request::Recent(r) => Response::Recent(tarn_client::RecentReply {
            columns: vec![Column {
                name: "k".into(),
                ty: ColumnType::BigInt,
            }],
            keys: r.keys.into_iter().map(|k| vec![vec![k]]).collect(),
        }),
        Request::Ingest(i) => Response::Ingest(tarn_client::IngestReply {
            events: match i.body {
                tarn_client::IngestBody::Rows { rows, .. } => rows.len() as u64,
                tarn_client::IngestBody::Json { .. } => 1,
            },
            duplicate: false,
        }),
    }
}

/// KNN: `k` rows at distances 0, 1, …, each holding the filter text and the query as the
/// server decoded it (so the test sees exactly what the client wrote); `distances` = the
/// query vector's length (0 for `Like`).
fn knn_answer(q: KnnRequest) -> Response {
    let (query, dim) = match q.query {
        KnnQuery::Vector(v) => (Value::Vector(v.clone().into()), v.len() as u64),
        KnnQuery::Like(key) => (key, 0),
    };
    Response::Knn(KnnReply {
        columns: vec![
            Column {
                name: "filter".into(),
                ty: ColumnType::Text,
            },
            Column {
                name: q.columns.join(","),
                ty: ColumnType::Text,
            },
        ],
        rows: (0..q.k)
            .map(|i| KnnRow {
                distance: i as f32,
                values: vec![Value::Text(q.filter.clone()), query.clone()],
            })
            .collect(),
        distances: dim + u64::from(q.ef.unwrap_or(0)),
    })
}

/// What the fake server does after the handshake.
#[derive(Clone, Copy)]
enum Mode {
    /// Answers every batch of requests it reads in reverse order; panics (failing the test
    /// via join) if more than MAX_IN_FLIGHT are outstanding.
    Reverse,
    /// Refuses the handshake with AUTH_FAILED and closes.
    RejectAuth,
    /// Answers the first request after HELLO with a request-id-0 SHUTTING_DOWN error, closes.
    ShutDown,
    /// Closes right after the handshake.
    Close,
}

fn spawn_server(mode: Mode) -> (String, JoinHandle<usize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let handle = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        serve(&mut s, mode)
    });
    (addr, handle)
}

/// Returns the number of requests answered after HELLO.
fn serve(s: &mut TcpStream, mode: Mode) -> usize {
    let mut fb = FrameBuffer::new(limits::MAX_FRAME_PAYLOAD_BYTES);
    let mut handshaken = false;
    let mut answered = 0;
    loop {
        let mut batch = vec![];
        while let Some(f) = fb.next_frame().unwrap() {
            let req = decode_request(&f.header, f.payload).unwrap();
            batch.push((f.header.request_id, req));
        }
        let mut out = vec![];
        if !handshaken && !batch.is_empty() {
            let (id, hello) = batch.remove(0);
            let Request::Hello(h) = hello else {
                panic!("first request must be HELLO")
            };
            if let Mode::RejectAuth = mode {
                encode_response(
                    id,
                    &Response::error(ErrorCode::AuthFailed, "bad token"),
                    &mut out,
                );
                s.write_all(&out).unwrap();
                return 0;
            }
            assert_eq!(h.auth_token, "tok");
            encode_response(
                id,
                &Response::Hello(HelloReply {
                    version: 1,
                    server_version: "fake".into(),
                    shard_count: 1,
                    max_frame_payload_bytes: 1 << 20,
                    max_batch_rows: 100,
                    max_in_flight: MAX_IN_FLIGHT,
                }),
                &mut out,
            );
            handshaken = true;
            if let Mode::Close = mode {
                s.write_all(&out).unwrap();
                return 0;
            }
        }
        if !batch.is_empty() {
            if let Mode::ShutDown = mode {
                encode_response(
                    0,
                    &Response::error(ErrorCode::ShuttingDown, "bye"),
                    &mut out,
                );
                s.write_all(&out).unwrap();
                return answered;
            }
            assert!(
                batch.len() <= MAX_IN_FLIGHT as usize,
                "{} in flight",
                batch.len()
            );
        }
        for (id, req) in batch.into_iter().rev() {
            encode_response(id, &answer(req), &mut out);
            answered += 1;
        }
        s.write_all(&out).unwrap();
        let spare = fb.spare(4096);
        let n = s.read(spare).unwrap();
        fb.filled(n);
        if n == 0 {
            return answered;
        }
    }
}

fn opts() -> ClientOptions {
    ClientOptions {
        auth_token: Some("tok".into()),
        ..ClientOptions::default()
    }
}

#[test]
fn knn_writes_the_request_and_returns_the_reply() {
    let (addr, server) = spawn_server(Mode::Reverse);
    let mut c = Client::connect_with(&addr, opts()).unwrap();
    let mut req = KnnRequest {
        index: "docs_emb".into(),
        query: KnnQuery::Vector(vec![0.5, -1.0, 2.0]),
        k: 2,
        ef: Some(40),
        filter: "lang = 'en'".into(),
        columns: vec!["id".into(), "title".into()],
    };
    let r = c.knn(&req).unwrap();
    assert_eq!(r.distances, 43);
    assert_eq!(r.columns[1].name, "id,title");
    let distances: Vec<f32> = r.rows.iter().map(|row| row.distance).collect();
    assert_eq!(distances, [0.0, 1.0]);
    assert_eq!(
        r.rows[1].values,
        [
            Value::Text("lang = 'en'".into()),
            Value::Vector(vec![0.5, -1.0, 2.0].into())
        ]
    );
    req.query = KnnQuery::Like(Value::Text("doc-7".into()));
    req.k = 1;
    req.ef = None;
    let r = c.knn(&req).unwrap();
    assert_eq!(r.distances, 0);
    assert_eq!(r.rows[0].values[1], Value::Text("doc-7".into()));
    drop(c);
    assert_eq!(server.join().unwrap(), 2);
}

#[test]
fn simple_calls_and_server_errors() {
    let (addr, server) = spawn_server(Mode::Reverse);
    let mut c = Client::connect_with(&addr, opts()).unwrap();
    assert_eq!(c.server_info().max_in_flight, MAX_IN_FLIGHT);
    assert_eq!(c.server_info().server_version, "fake");
    c.ping().unwrap();
    assert_eq!(c.sql("CREATE TABLE t").unwrap().message, "CREATE TABLE t");
    let rows = vec![vec![Value::Int(1)], vec![Value::Int(2)]];
    assert_eq!(c.upsert("t", &["k"], rows.clone()).unwrap(), 2);
    assert_eq!(c.upsert_merge("t", &["k"], rows).unwrap(), 2);
    let got = c.get("t", vec![Value::Int(1), Value::Null]).unwrap();
    assert_eq!(got.rows, vec![Some(vec![Value::Int(1)]), None]);
    assert_eq!(c.delete("t", vec![Value::Int(1)]).unwrap(), 1);
    assert!(c.stats().unwrap().shards.is_empty());
    match c.sql("fail").unwrap_err() {
        ClientError::Server(e) => {
            assert_eq!(e.code, ErrorCode::UnknownTable);
            assert_eq!(
                e.to_string(),
                "UNKNOWN_TABLE: table \"x\" does not exist (row 3, column \"y\")"
            );
        }
        e => panic!("{e:?}"),
    }
    // Still usable after a server error.
    c.ping().unwrap();
    // Oversize requests are refused locally, and the connection stays usable.
    let err = c.sql(&"x".repeat(2 << 20)).unwrap_err();
    assert!(matches!(err, ClientError::Protocol(_)), "{err:?}");
    c.ping().unwrap();
    drop(c);
    assert_eq!(server.join().unwrap(), 10);
}

#[test]
fn pipeline_returns_results_in_request_order() {
    let (addr, server) = spawn_server(Mode::Reverse);
    let mut c = Client::connect_with(&addr, opts()).unwrap();
    let reqs: Vec<Request> = (0..50)
        .map(|i| {
            if i % 7 == 3 {
                Request::Sql(format!("fail {i}"))
            } else {
                Request::Sql(format!("q{i}"))
            }
        })
        .collect();
    let results = c.pipeline(&reqs).unwrap();
    assert_eq!(results.len(), 50);
    for (i, r) in results.iter().enumerate() {
        match r {
            Err(e) if i % 7 == 3 => assert_eq!(e.code, ErrorCode::UnknownTable),
            Ok(Response::Sql(s)) if i % 7 != 3 => assert_eq!(s.message, format!("q{i}")),
            other => panic!("{i}: {other:?}"),
        }
    }
    assert_eq!(c.outstanding(), 0);
    drop(c);
    assert_eq!(server.join().unwrap(), 50);
}

#[test]
fn send_recv_and_interleaved_calls() {
    let (addr, server) = spawn_server(Mode::Reverse);
    let mut c = Client::connect_with(&addr, opts()).unwrap();
    let a = c.send(&Request::Sql("a".into())).unwrap();
    let b = c.send(&Request::Sql("b".into())).unwrap();
    assert_eq!(b, a + 1);
    // A simple call while two requests are outstanding: their replies are kept for recv.
    assert_eq!(c.sql("c").unwrap().message, "c");
    let mut got = vec![];
    while c.outstanding() > 0 {
        let (id, resp) = c.recv().unwrap();
        let Response::Sql(s) = resp else { panic!() };
        got.push((id, s.message));
    }
    got.sort();
    assert_eq!(got, vec![(a, "a".to_string()), (b, "b".to_string())]);
    // Pipeline with an earlier send outstanding: the earlier reply stays available.
    let d = c.send(&Request::Ping(vec![1])).unwrap();
    let r = c
        .pipeline(&[Request::Stats, Request::Ping(vec![2])])
        .unwrap();
    assert!(matches!(r[0], Ok(Response::Stats(_))));
    assert_eq!(r[1], Ok(Response::Pong(vec![2])));
    assert_eq!(c.recv().unwrap(), (d, Response::Pong(vec![1])));
    drop(c);
    server.join().unwrap();
}

#[test]
fn handshake_rejection_and_closed_connections() {
    let (addr, server) = spawn_server(Mode::RejectAuth);
    let err = Client::connect_with(&addr, opts()).unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::AuthFailed), "{err}");
    server.join().unwrap();

    let (addr, server) = spawn_server(Mode::Close);
    let mut c = Client::connect_with(&addr, opts()).unwrap();
    server.join().unwrap();
    assert!(matches!(
        c.ping(),
        Err(ClientError::Closed) | Err(ClientError::Io(_))
    ));
    assert!(c.ping().is_err());

    let (addr, server) = spawn_server(Mode::ShutDown);
    let mut c = Client::connect_with(&addr, opts()).unwrap();
    let err = c.ping().unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::ShuttingDown), "{err}");
    server.join().unwrap();
}

#[test]
fn send_raw_reaches_the_server() {
    let (addr, server) = spawn_server(Mode::Reverse);
    let mut c = Client::connect_with(&addr, opts()).unwrap();
    let mut frame = vec![];
    tarn_net::encode_request(77, &Request::Ping(vec![9]), &mut frame);
    c.send_raw(&frame[..5]).unwrap();
    c.send_raw(&frame[5..]).unwrap();
    assert_eq!(c.recv().unwrap(), (77, Response::Pong(vec![9])));
    drop(c);
    server.join().unwrap();
}
