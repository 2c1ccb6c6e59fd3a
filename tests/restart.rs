//! Restarting on the same port at once: after SIGTERM with an idle client still connected,
//! after kill -9 with clients connected (some mid-pipeline), after the server closed a bad
//! client's connection. Connections the old server closed stay in FIN-WAIT-2 / TIME-WAIT on
//! its port for up to a minute; none of them may stop the new server from listening. A port
//! another live process listens on is still refused, with a clear message, within the bounded
//! retry.

mod common;

use std::net::TcpListener;
use std::time::{Duration, Instant};

use common::*;

const COLS: [&str; 2] = ["k", "v"];

fn row(k: i64) -> Vec<Value> {
    vec![Value::Int(k), Value::Text(format!("value {k}"))]
}

/// A 2-shard server with table `kv` holding keys `0..500`.
fn loaded_server() -> TarnServer {
    let server = TarnServer::start_ok(ServerOpts::shards(2));
    let mut c = server.client();
    c.sql("CREATE TABLE kv (k BIGINT PRIMARY KEY, v TEXT)")
        .unwrap();
    for chunk in (0..500).collect::<Vec<i64>>().chunks(100) {
        let rows = chunk.iter().map(|&k| row(k)).collect();
        assert_eq!(c.upsert("kv", &COLS, rows).unwrap(), chunk.len() as u64);
    }
    server
}

/// The server answers on its port and keys `0..500` are intact.
fn assert_serving_intact(server: &TarnServer, port: u16, after: &str) {
    assert_eq!(server.port(), port, "after {after}: the server moved ports");
    let mut c = server.client();
    c.ping()
        .unwrap_or_else(|e| panic!("after {after}: PING: {e}"));
    let keys: Vec<Value> = (0..500).map(Value::Int).collect();
    let got = c
        .get_many("kv", &keys, 100)
        .unwrap_or_else(|e| panic!("after {after}: GET: {e}"));
    for (k, r) in got.into_iter().enumerate() {
        assert_eq!(r, Some(row(k as i64)), "after {after}: key {k}");
    }
}

/// TCP states (the kernel's numbers: 1 ESTABLISHED, 5 FIN-WAIT-2, 6 TIME-WAIT, 8 CLOSE-WAIT,
/// 10 LISTEN, ...) of every IPv4 socket whose local port is `port`.
fn local_tcp_states(port: u16) -> Vec<u8> {
    let table = std::fs::read_to_string("/proc/net/tcp").expect("read /proc/net/tcp");
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let local = fields.nth(1)?;
            let state = fields.nth(1)?;
            let local_port = u16::from_str_radix(local.rsplit(':').next()?, 16).ok()?;
            (local_port == port).then(|| u8::from_str_radix(state, 16).ok())?
        })
        .collect()
}

const FIN_WAIT2: u8 = 5;
const TIME_WAIT: u8 = 6;

#[test]
fn restart_on_the_same_port_right_after_sigterm_with_an_idle_client() {
    let mut server = loaded_server();
    let port = server.port();
    // One handshaken client and one that never sent a byte; both stay connected, silent.
    let idle = server.client();
    let silent = Conn::connect_raw(server.addr()).unwrap();
    server.stop_ok();
    // The server closed both connections; the clients did not: the server's side waits in
    // FIN-WAIT-2 on the listen port.
    let states = local_tcp_states(port);
    assert!(
        states.contains(&FIN_WAIT2),
        "expected the stopped server's connections in FIN-WAIT-2 on port {port}: {states:?}"
    );
    server.restart_ok();
    assert_serving_intact(
        &server,
        port,
        "SIGTERM + restart with idle clients connected",
    );
    // And once more, with the old connections now closed by the clients too (TIME-WAIT).
    drop(idle);
    drop(silent);
    server.stop_ok();
    server.restart_ok();
    assert_serving_intact(&server, port, "a second SIGTERM + restart");
}

#[test]
fn restart_on_the_same_port_right_after_kill9_with_clients_mid_pipeline() {
    let mut server = loaded_server();
    let port = server.port();
    let idle = server.client();
    // Mid-pipeline: requests sent, replies never read.
    let mut readers = server.client();
    let mut buf = Vec::new();
    for i in 0..200 {
        let keys = vec![Value::Int(i), Value::Int(i + 1)];
        let (_, frame) = readers.encode(&Request::Get(KeysRequest {
            table: "kv".into(),
            keys,
        }));
        buf.extend_from_slice(&frame);
    }
    readers.send_raw(&buf).unwrap();
    let mut writer = server.client();
    let mut buf = Vec::new();
    for k in 1_000..1_200 {
        let (_, frame) = writer.encode(&upsert_req("kv", &COLS, vec![row(k)]));
        buf.extend_from_slice(&frame);
    }
    writer.send_raw(&buf).unwrap();
    // Half a frame: the server is waiting for the rest.
    let mut partial = server.client();
    let (_, frame) = partial.encode(&Request::Ping(vec![7; 1000]));
    partial.send_raw(&frame[..500]).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    server.kill9();
    server.restart_ok();
    assert_serving_intact(&server, port, "kill -9 + restart with clients mid-pipeline");
    // Unacknowledged writes are all-or-nothing per row.
    let mut c = server.client();
    let keys: Vec<Value> = (1_000..1_200).map(Value::Int).collect();
    for (i, r) in c
        .get_many("kv", &keys, 100)
        .unwrap()
        .into_iter()
        .enumerate()
    {
        if let Some(r) = r {
            assert_eq!(
                r,
                row(1_000 + i as i64),
                "an unacknowledged write, half applied"
            );
        }
    }
    drop((idle, readers, writer, partial));
    // Killed again while those connections are still draining, then restarted at once.
    server.kill9();
    server.restart_ok();
    assert_serving_intact(&server, port, "a second kill -9 + restart");
}

#[test]
fn restart_on_the_same_port_after_the_server_closed_bad_clients() {
    let mut server = loaded_server();
    let port = server.port();
    // A frame announcing more than the frame limit: FRAME_TOO_LARGE, the server closes.
    let mut oversize = server.client();
    oversize
        .send_raw(&raw_frame(
            tarn_net::limits::MAX_FRAME_PAYLOAD_BYTES + 1,
            2,
            9,
            &[],
        ))
        .unwrap();
    let mut seen = Vec::new();
    assert!(
        oversize.expect_closed(Duration::from_secs(10), &mut seen),
        "the server must close after FRAME_TOO_LARGE"
    );
    assert!(
        seen.iter()
            .any(|(_, r)| matches!(r, Response::Error(e) if e.code == ErrorCode::FrameTooLarge)),
        "{seen:?}"
    );
    // A first frame that is not HELLO: HANDSHAKE_REQUIRED, the server closes.
    let mut rude = Conn::connect_raw(server.addr()).unwrap();
    rude.send(&Request::Ping(b"x".to_vec())).unwrap();
    assert!(rude.expect_closed(Duration::from_secs(10), &mut Vec::new()));
    // The first client closes too (its port pair goes to TIME-WAIT on the server side); the
    // second keeps its end open (the server side stays in FIN-WAIT-2).
    drop(oversize);
    std::thread::sleep(Duration::from_millis(50));
    let states = local_tcp_states(port);
    assert!(
        states.contains(&TIME_WAIT) && states.contains(&FIN_WAIT2),
        "expected TIME-WAIT and FIN-WAIT-2 sockets on port {port}: {states:?}"
    );
    server.stop_ok();
    server.restart_ok();
    assert_serving_intact(&server, port, "bad clients closed, SIGTERM, restart");
    // Same again, ended by kill -9.
    let mut bad = server.client();
    bad.send_raw(&raw_frame(
        tarn_net::limits::MAX_FRAME_PAYLOAD_BYTES + 1,
        2,
        5,
        &[],
    ))
    .unwrap();
    assert!(bad.expect_closed(Duration::from_secs(10), &mut Vec::new()));
    server.kill9();
    server.restart_ok();
    assert_serving_intact(&server, port, "a bad client, kill -9, restart");
    drop(rude);
}

/// Arguments for a fresh tarnd on `port` (its own data dir).
fn args_on_port(dir: &std::path::Path, port: u16) -> Vec<String> {
    vec![
        "--listen".into(),
        format!("127.0.0.1:{port}"),
        "--data-dir".into(),
        dir.join("data").display().to_string(),
        "--shards".into(),
        "1".into(),
    ]
}

fn assert_refused(port: u16, holder: &str) {
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let (status, err) = TarnServer::start_expect_failure(&args_on_port(dir.path(), port));
    let took = started.elapsed();
    assert!(!status.success(), "{holder}: exit status {status:?}");
    assert!(
        err.contains(&format!("cannot listen on 127.0.0.1:{port}"))
            && err.contains("another process listens on it"),
        "{holder}: the message must name the address and say another process listens on it: {err}"
    );
    // Refused after the bounded retry (2 s), not after a minute of kernel timeouts.
    assert!(
        took < Duration::from_secs(20),
        "{holder}: refused only after {took:?}"
    );
}

#[test]
fn a_port_another_live_process_listens_on_is_refused() {
    // A plain listener (std sets SO_REUSEADDR, not SO_REUSEPORT).
    let plain = TcpListener::bind(("127.0.0.1", free_port())).unwrap();
    let port = plain.local_addr().unwrap().port();
    assert_refused(port, "a std listener");
    // It still owns the port.
    let _c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    plain.accept().expect("the holder still accepts");

    // A listener of the same user with SO_REUSEPORT (and SO_REUSEADDR): the shards' own binds
    // would share the port with it, so the start-up probe must refuse it explicitly.
    let port = free_port();
    let shared = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    shared.set_reuse_address(true).unwrap();
    shared.set_reuse_port(true).unwrap();
    shared
        .bind(&std::net::SocketAddr::from(([127, 0, 0, 1], port)).into())
        .unwrap();
    shared.listen(16).unwrap();
    let shared: TcpListener = shared.into();
    assert_refused(port, "a SO_REUSEPORT listener of the same user");
    let _c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    shared.accept().expect("the holder still accepts");
}
