//! Clients that do not read their replies, or send nothing, cannot take the server down:
//! reply memory stays bounded (the reader stops dispatching, then stops reading, once a
//! connection's queued replies reach `MAX_PENDING_REPLY_BYTES`), other clients keep being
//! served, a closed connection releases everything at once, SIGTERM still exits 0 with its
//! checkpoint, and silent connections are closed by the handshake, frame and idle timeouts
//! (after an ERROR frame of request id 0 saying which, when the client reads it).
//!
//! Every assertion is about behaviour; waits are bounded with generous limits, never measured.

mod common;

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::*;

/// `MAX_PENDING_REPLY_BYTES` of src/server/limits.rs, in KiB.
const MAX_PENDING_REPLY_KIB: u64 = 32 << 10;
/// The largest frame, in KiB.
const FRAME_KIB: u64 = (tarn_net::limits::MAX_FRAME_PAYLOAD_BYTES as u64) >> 10;
/// How far the server's RSS may grow per hog above its level before the hogs connected, in
/// KiB: the connection's queued replies (at most `MAX_PENDING_REPLY_BYTES` plus the last reply), the
/// replies of requests in flight (bounded by the same budget, plus one frame), transient copies
/// of rows on their owner shard (a few frames) and allocator slack. Without back-pressure it
/// grows by gigabytes within seconds.
const RSS_GROWTH_BOUND_KIB: u64 = 3 * MAX_PENDING_REPLY_KIB + 4 * FRAME_KIB;

/// How long each hog keeps sending.
const HOG_TIME: Duration = Duration::from_secs(5);
/// A hog must have been unable to send for this long at the end of [`HOG_TIME`].
const BLOCKED_TIME: Duration = Duration::from_millis(1_500);
/// Generous bound for the server to notice a closed connection.
const RELEASE_DEADLINE: Duration = Duration::from_secs(10);

/// A client that sends one request over and over and never reads a reply.
struct Hog {
    stop: Arc<AtomicBool>,
    /// Request bytes the kernel accepted so far.
    sent: Arc<AtomicU64>,
    /// The connection, the bytes sent, and the send error that ended it early (if any).
    thread: JoinHandle<(Conn, u64, Option<std::io::Error>)>,
}

impl Hog {
    fn start(server: &TarnServer, req: &Request) -> Hog {
        let mut conn = server.client();
        let (_, frame) = conn.encode(req);
        let batch = frame.repeat(64);
        conn.stream
            .set_write_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let (flag, counter) = (stop.clone(), sent.clone());
        let thread = std::thread::spawn(move || {
            let (mut pos, mut sent) = (0usize, 0u64);
            let mut failed = None;
            while !flag.load(Ordering::Relaxed) {
                match conn.stream.write(&batch[pos..]) {
                    Ok(n) => {
                        pos = (pos + n) % batch.len();
                        sent += n as u64;
                        counter.store(sent, Ordering::Relaxed);
                    }
                    Err(e)
                        if e.kind() == std::io::ErrorKind::WouldBlock
                            || e.kind() == std::io::ErrorKind::TimedOut => {}
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                }
            }
            (conn, sent, failed)
        });
        Hog { stop, sent, thread }
    }

    /// Stops sending; returns the still-open connection and the bytes it sent.
    fn stop(self) -> (Conn, u64) {
        let (conn, sent, failed) = self.stop_any();
        if let Some(e) = failed {
            panic!("hog: the server closed the connection (send failed: {e})");
        }
        (conn, sent)
    }

    /// Stops sending; the server may have closed the connection meanwhile.
    fn stop_any(self) -> (Conn, u64, Option<std::io::Error>) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("hog thread")
    }
}

/// Asserts that `seen` is exactly one ERROR TIMEOUT with request id 0 whose message names
/// `flag` and `value`.
fn assert_timeout_frame(seen: &[(u64, Response)], flag: &str, value: &str, what: &str) {
    match seen {
        [(0, Response::Error(e))] if e.code == ErrorCode::Timeout => assert!(
            e.message.contains(flag) && e.message.contains(value),
            "{what}: the TIMEOUT message must name {flag} and {value}: {e}"
        ),
        _ => panic!("{what}: expected ERROR TIMEOUT (request id 0) before the close, got {seen:?}"),
    }
}

fn connections(c: &mut Conn) -> u32 {
    c.stats()
        .expect("STATS")
        .shards
        .iter()
        .map(|s| s.connections)
        .sum()
}

fn blob(k: i64, len: usize) -> Vec<u8> {
    (0..len).map(|i| (i as i64 * 31 + k) as u8).collect()
}

/// Creates `big (k BIGINT PRIMARY KEY, v BYTES)` with `n` rows of `len` bytes, and
/// `small (k BIGINT PRIMARY KEY, v TEXT)` with keys 1..=16 holding `small_len` bytes.
fn load(server: &TarnServer, n: i64, len: usize, small_len: usize) {
    let mut c = server.client();
    c.sql("CREATE TABLE big (k BIGINT PRIMARY KEY, v BYTES)")
        .unwrap();
    c.sql("CREATE TABLE small (k BIGINT PRIMARY KEY, v TEXT)")
        .unwrap();
    for k in 0..n {
        let row = vec![Value::Int(k), Value::Bytes(blob(k, len))];
        assert_eq!(c.upsert("big", &["k", "v"], vec![row]).unwrap(), 1);
    }
    // Sixteen keys: every shard has something to checkpoint.
    let rows = (1..=16)
        .map(|k| vec![Value::Int(k), Value::Text("s".repeat(small_len))])
        .collect();
    assert_eq!(c.upsert("small", &["k", "v"], rows).unwrap(), 16);
}

fn assert_big_intact(server: &TarnServer, n: i64, len: usize) {
    let mut c = server.client();
    for k in 0..n {
        let got = c.get("big", vec![Value::Int(k)]).unwrap();
        assert_eq!(
            got.rows,
            vec![Some(vec![Value::Int(k), Value::Bytes(blob(k, len))])],
            "row {k}"
        );
    }
}

/// The canary's round: a PING and a GET of the small row, each answered.
fn canary_round(canary: &mut Conn, what: &str) {
    canary
        .ping()
        .unwrap_or_else(|e| panic!("{what}: canary PING: {e}"));
    let got = canary
        .get("small", vec![Value::Int(1)])
        .unwrap_or_else(|e| panic!("{what}: canary GET: {e}"));
    assert_eq!(got.rows.len(), 1, "{what}: canary GET");
}

/// Runs `hogs` for [`HOG_TIME`] while a canary keeps being served; returns the highest RSS
/// seen (KiB). Fails as soon as RSS exceeds `base` + [`RSS_GROWTH_BOUND_KIB`] per hog, and if
/// a hog could still send during the last [`BLOCKED_TIME`] (the server must have stopped
/// reading it: TCP back-pressure reaches the client).
fn run_hogs(server: &TarnServer, canary: &mut Conn, base: u64, hogs: &[Hog], what: &str) -> u64 {
    let pid = server.pid();
    let bound = base + hogs.len() as u64 * RSS_GROWTH_BOUND_KIB;
    let started = Instant::now();
    let deadline = started + HOG_TIME;
    let mut sent_before: Option<Vec<u64>> = None;
    let (mut max, mut rounds, mut slowest) = (0, 0, Duration::ZERO);
    while Instant::now() < deadline {
        if sent_before.is_none() && Instant::now() + BLOCKED_TIME >= deadline {
            sent_before = Some(
                hogs.iter()
                    .map(|h| h.sent.load(Ordering::Relaxed))
                    .collect(),
            );
        }
        let rss = rss_kib(pid);
        max = max.max(rss);
        if rss > bound {
            for h in hogs {
                h.stop.store(true, Ordering::Relaxed);
            }
            panic!(
                "{what}: RSS {rss} KiB exceeds {bound} KiB ({base} KiB + {RSS_GROWTH_BOUND_KIB} KiB per hog) while clients do not read their replies"
            );
        }
        let round = Instant::now();
        canary_round(canary, what);
        slowest = slowest.max(round.elapsed());
        rounds += 1;
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(rounds > 0);
    let sent_after: Vec<u64> = hogs
        .iter()
        .map(|h| h.sent.load(Ordering::Relaxed))
        .collect();
    assert_eq!(
        sent_before.as_ref(),
        Some(&sent_after),
        "{what}: a hog could still send during the last {BLOCKED_TIME:?}: the server kept reading a client that does not read"
    );
    eprintln!(
        "{what}: {rounds} canary rounds (PING + GET) answered, the slowest in {slowest:?}; hogs blocked after sending {sent_after:?} bytes"
    );
    max
}

/// Closes both hogs and waits until STATS counts only the canary.
fn close_hogs(hogs: [Hog; 2], canary: &mut Conn, what: &str) {
    let [a, b] = hogs;
    drop((a.stop(), b.stop()));
    wait_connections(canary, 1, what);
}

/// Waits (bounded) until STATS counts `want` connections.
fn wait_connections(canary: &mut Conn, want: u32, what: &str) {
    let deadline = Instant::now() + RELEASE_DEADLINE;
    loop {
        let n = connections(canary);
        if n == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: STATS still counts {n} connections {RELEASE_DEADLINE:?} later, expected {want}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// SIGTERM: exit 0, and the final checkpoint of every shard exists.
fn stop_with_checkpoint(server: &mut TarnServer, shards: u32, what: &str) {
    let status = server.stop();
    assert!(
        status.success(),
        "{what}: tarnd exited with {status:?} after SIGTERM; stderr:\n{}",
        server.stderr()
    );
    for s in 0..shards {
        assert!(
            !checkpoints(server.data_dir(), s).is_empty(),
            "{what}: shard {s} wrote no checkpoint at shutdown"
        );
    }
}

#[test]
fn a_client_pipelining_900kb_gets_without_reading_is_bounded_and_released() {
    const ROWS: i64 = 9;
    const LEN: usize = 900_000;
    let mut server = TarnServer::start_ok(ServerOpts::shards(2));
    load(&server, ROWS, LEN, 100);
    assert!(checkpoints(server.data_dir(), 0).is_empty());
    let mut canary = server.client();
    canary_round(&mut canary, "before the hog");
    let pid = server.pid();
    let base = rss_kib(pid);
    // Each GET asks for all nine rows: an ~8.1 MB reply (most keys live on the other shard).
    let get_all = Request::Get(KeysRequest {
        table: "big".into(),
        keys: (0..ROWS).map(Value::Int).collect(),
    });
    let hog = Hog::start(&server, &get_all);
    let max = run_hogs(
        &server,
        &mut canary,
        base,
        std::slice::from_ref(&hog),
        "900 kB GETs",
    );
    let (conn, sent) = hog.stop();
    assert!(connections(&mut canary) == 2);
    eprintln!(
        "900 kB rows: RSS {base} KiB before, at most {max} KiB with the hog (bound {} KiB); the hog sent {sent} bytes of requests",
        base + RSS_GROWTH_BOUND_KIB
    );
    // The hog goes away without reading: its connection and replies are released.
    drop(conn);
    wait_connections(&mut canary, 1, "after the hog closed");
    let after_close = rss_kib(pid);
    std::thread::sleep(Duration::from_millis(500));
    canary_round(&mut canary, "after the hog closed");
    let later = rss_kib(pid);
    eprintln!("900 kB rows: RSS {after_close} KiB once the hog closed, {later} KiB 0.5 s later");
    assert!(
        later <= max,
        "RSS kept growing after the hog closed: {later} KiB > {max} KiB"
    );
    stop_with_checkpoint(&mut server, 2, "900 kB GETs");
    server.restart_ok();
    assert_big_intact(&server, ROWS, LEN);
}

#[test]
fn a_client_pipelining_100kb_inline_gets_without_reading_is_bounded_and_sigterm_still_exits() {
    const ROWS: i64 = 10;
    const LEN: usize = 100_000;
    // One shard: every GET is answered inline by the reader, without a task.
    let mut server = TarnServer::start_ok(ServerOpts::shards(1));
    load(&server, ROWS, LEN, 100);
    let mut canary = server.client();
    canary_round(&mut canary, "before the hog");
    let base = rss_kib(server.pid());
    let one = Request::Get(KeysRequest {
        table: "big".into(),
        keys: vec![Value::Int(3)],
    });
    let ten = Request::Get(KeysRequest {
        table: "big".into(),
        keys: (0..ROWS).map(Value::Int).collect(),
    });
    let pair = || [Hog::start(&server, &one), Hog::start(&server, &ten)];
    let hogs = pair();
    let max = run_hogs(&server, &mut canary, base, &hogs, "100 kB GETs");
    eprintln!(
        "100 kB rows: RSS {base} KiB before, at most {max} KiB with two hogs (bound {} KiB)",
        base + 2 * RSS_GROWTH_BOUND_KIB
    );
    close_hogs(hogs, &mut canary, "after the hogs closed");
    // What closed connections held is freed: the same load again, three times, on new
    // connections reuses it (one shard, one heap). The peak of a round varies with timing by up
    // to what a connection may legitimately hold beyond its typical level (its pending replies
    // move between 16 and 32 MiB plus a reply in flight): the second round's peak has been seen
    // from 28 up to 70 MiB above the first (the heap still holds the first round's freed pages
    // while the new connections fill up), later rounds back at the first's, with one at times
    // 30 MiB above. Memory that closed connections kept would instead add a share of the first
    // round's whole growth (`grown = max - base`) every round, so it would show in *every*
    // later round: the lower peak of the third and fourth rounds must stay within half of
    // `grown` of the first peak — a leak of more than a quarter of a round fails. The second
    // round is held to the absolute bound only (`run_hogs`).
    let grown = max - base;
    let allowed = max + grown / 2;
    let mut hogs = pair();
    let mut later = Vec::new();
    for (i, round) in ["second", "third", "fourth"].into_iter().enumerate() {
        if i > 0 {
            close_hogs(hogs, &mut canary, "after the hogs closed");
            hogs = pair();
        }
        let what = format!("100 kB GETs, {round} round");
        let again = run_hogs(&server, &mut canary, base, &hogs, &what);
        eprintln!("100 kB rows: at most {again} KiB in the {round} round");
        if i > 0 {
            later.push(again);
        }
    }
    let lower = *later.iter().min().expect("two later rounds");
    assert!(
        lower <= allowed,
        "RSS grew from {max} KiB to at least {lower} KiB in each of the third and fourth rounds with the same load on new connections (allowed {allowed} KiB): memory of closed connections was not released"
    );
    // SIGTERM while both hogs are still connected, their replies unread.
    let [a, b] = hogs;
    let conns = (a.stop(), b.stop());
    stop_with_checkpoint(&mut server, 1, "100 kB GETs, hogs still connected");
    drop(conns);
    server.restart_ok();
    assert_big_intact(&server, ROWS, LEN);
}

#[test]
fn two_clients_pipelining_small_gets_without_reading_then_closing_are_released() {
    let mut server = TarnServer::start_ok(ServerOpts::shards(2));
    load(&server, 0, 0, 3_000);
    let mut canary = server.client();
    let base = rss_kib(server.pid());
    let get = Request::Get(KeysRequest {
        table: "small".into(),
        keys: vec![Value::Int(1)],
    });
    let hogs = [Hog::start(&server, &get), Hog::start(&server, &get)];
    let max = run_hogs(&server, &mut canary, base, &hogs, "3 kB GETs");
    eprintln!("3 kB rows: RSS {base} KiB before, at most {max} KiB with two hogs");
    assert_eq!(connections(&mut canary), 3);
    close_hogs(hogs, &mut canary, "after both hogs closed");
    canary_round(&mut canary, "after both hogs closed");
    stop_with_checkpoint(&mut server, 2, "3 kB GETs");
}

#[test]
fn a_client_that_stops_reading_and_stays_connected_is_closed_by_the_idle_timeout() {
    let server = TarnServer::start_ok(ServerOpts::shards(2).args(&["--idle-timeout-s", "1"]));
    load(&server, 0, 0, 3_000);
    let mut canary = server.client();
    let get = Request::Get(KeysRequest {
        table: "small".into(),
        keys: vec![Value::Int(1)],
    });
    let hog = Hog::start(&server, &get);
    // The canary stays active, so only the hog goes idle.
    for _ in 0..10 {
        canary_round(&mut canary, "while the hog sends");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Once the server stops reading it (its replies are not read), the hog's sends block: the
    // connection is idle for the server and may already be closed here.
    let (mut conn, _, _) = hog.stop_any();
    let deadline = Instant::now() + RELEASE_DEADLINE;
    while connections(&mut canary) != 1 {
        assert!(
            Instant::now() < deadline,
            "a connection whose replies are not read for longer than the idle timeout must be closed"
        );
        canary.ping().unwrap();
        std::thread::sleep(Duration::from_millis(100));
    }
    // Its replies were dropped: reading now finds the connection closed (after whatever the
    // kernel had already buffered). The TIMEOUT frame is best-effort: the full socket did not
    // take it, so it is absent, or last if the socket happened to have room.
    let mut seen = Vec::new();
    assert!(conn.expect_closed(RELEASE_DEADLINE, &mut seen));
    let timeouts = seen
        .iter()
        .filter(|(_, r)| matches!(r, Response::Error(e) if e.code == ErrorCode::Timeout))
        .count();
    assert!(
        timeouts == 0
            || (timeouts == 1
                && matches!(seen.last(), Some((0, Response::Error(e))) if e.code == ErrorCode::Timeout)),
        "at most one TIMEOUT, after every reply: {:?}",
        seen.iter().rev().take(3).collect::<Vec<_>>()
    );
}

#[test]
fn handshake_timeout_closes_connections_without_a_timely_hello() {
    let server =
        TarnServer::start_ok(ServerOpts::shards(1).args(&["--handshake-timeout-ms", "300"]));
    let mut canary = server.client();
    // Silent: ERROR HANDSHAKE_REQUIRED with request id 0, then closed.
    let mut silent = Conn::connect_raw(server.addr()).unwrap();
    let mut seen = Vec::new();
    assert!(silent.expect_closed(RELEASE_DEADLINE, &mut seen));
    assert!(
        matches!(&seen[..], [(0, Response::Error(e))] if e.code == ErrorCode::HandshakeRequired),
        "expected ERROR HANDSHAKE_REQUIRED (request id 0) before the close, got {seen:?}"
    );
    // A HELLO trickled one byte per 100 ms (slowloris) does not complete in time either.
    let mut slow = Conn::connect_raw(server.addr()).unwrap();
    let (_, hello) = slow.encode(&Request::Hello(Hello {
        min_version: 1,
        max_version: 1,
        client_name: "slow".into(),
        auth_token: String::new(),
    }));
    let started = Instant::now();
    let mut closed = false;
    for b in &hello {
        if slow.send_raw(std::slice::from_ref(b)).is_err() {
            closed = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        if started.elapsed() > RELEASE_DEADLINE {
            break;
        }
    }
    if !closed {
        closed = slow.expect_closed(RELEASE_DEADLINE, &mut Vec::new());
    }
    assert!(closed, "a HELLO trickled byte by byte must be cut off");
    // A timely HELLO is not affected, however long the connection then stays quiet.
    let mut prompt = server.client();
    std::thread::sleep(Duration::from_millis(900));
    prompt
        .ping()
        .expect("a handshaken connection outlives the handshake timeout");
    wait_connections(&mut canary, 2, "after the handshake timeouts");
}

#[test]
fn idle_timeout_closes_idle_connections_and_spares_active_ones() {
    let server = TarnServer::start_ok(ServerOpts::shards(2).args(&["--idle-timeout-s", "1"]));
    let mut active = server.client();
    let mut idle = server.client();
    let started = Instant::now();
    // The active client sends a PING every 200 ms for 2.5 s: never idle for a second.
    while started.elapsed() < Duration::from_millis(2_500) {
        active.ping().expect("an active connection stays open");
        std::thread::sleep(Duration::from_millis(200));
    }
    let mut seen = Vec::new();
    assert!(
        idle.expect_closed(RELEASE_DEADLINE, &mut seen),
        "an idle connection must be closed after the idle timeout"
    );
    // A client that reads is told why before the close.
    assert_timeout_frame(&seen, "--idle-timeout-s", "1 s", "idle timeout");
    wait_connections(&mut active, 1, "after the idle connection was closed");
}

#[test]
fn frame_timeout_cuts_off_a_frame_trickled_byte_by_byte() {
    // Idle timeout off: only the frame timeout bounds a partial frame.
    let server = TarnServer::start_ok(ServerOpts::shards(1).args(&[
        "--frame-timeout-ms",
        "500",
        "--idle-timeout-s",
        "0",
    ]));
    let mut quiet = server.client();
    let mut slow = server.client();
    let (_, ping) = slow.encode(&Request::Ping(vec![1; 64]));
    let started = Instant::now();
    for b in &ping {
        // Once the server closed, a send fails; what it sent before stays readable.
        if slow.send_raw(std::slice::from_ref(b)).is_err() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        if started.elapsed() > RELEASE_DEADLINE {
            break;
        }
    }
    let mut seen = Vec::new();
    assert!(
        slow.expect_closed(RELEASE_DEADLINE, &mut seen),
        "a frame trickled byte by byte must be cut off"
    );
    // The trickled PING is not answered; the client is told why instead.
    assert_timeout_frame(&seen, "--frame-timeout-ms", "500 ms", "frame timeout");
    // With the idle timeout off, a quiet connection with no partial frame stays open.
    quiet
        .ping()
        .expect("a quiet connection stays open when the idle timeout is off");
    wait_connections(&mut quiet, 1, "after the slow connection was closed");
}

#[test]
fn frame_timeout_closes_a_client_that_does_not_read_either() {
    // Idle timeout off: only the frame timeout can close this connection.
    let server = TarnServer::start_ok(ServerOpts::shards(1).args(&[
        "--frame-timeout-ms",
        "500",
        "--idle-timeout-s",
        "0",
    ]));
    let mut canary = server.client();
    let mut slow = server.client();
    // ~19 MB of PONGs it never reads: more than the socket buffers hold, less than the
    // back-pressure limit (so the server keeps reading it and the frame timeout applies); the
    // writer stays blocked on the full socket.
    let data = vec![7u8; tarn_net::limits::MAX_PING_BYTES as usize - 1024];
    let mut batch = Vec::new();
    for _ in 0..300 {
        batch.extend_from_slice(&slow.encode(&Request::Ping(data.clone())).1);
    }
    assert!(batch.len() < (MAX_PENDING_REPLY_KIB << 10) as usize);
    slow.send_raw(&batch).expect("the server reads the PINGs");
    // Then half a header, never completed.
    let (_, partial) = slow.encode(&Request::Ping(vec![1; 8]));
    slow.send_raw(&partial[..8]).unwrap();
    // Closed without the client reading anything: the TIMEOUT frame cannot be delivered and
    // is not waited for.
    wait_connections(
        &mut canary,
        1,
        "after the frame timeout of a client that does not read",
    );
    // What the kernel had buffered is readable, then the close; the reset dropped the rest.
    let mut seen = Vec::new();
    assert!(slow.expect_closed(RELEASE_DEADLINE, &mut seen));
    assert!(
        seen.len() < 300,
        "the unsent replies were dropped, got all {} of them",
        seen.len()
    );
    assert!(
        seen.iter()
            .all(|(id, r)| *id > 1 && matches!(r, Response::Pong(_))),
        "only PONGs: {:?}",
        seen.iter().find(|(_, r)| !matches!(r, Response::Pong(_)))
    );
    canary
        .ping()
        .expect("other connections are unaffected by the frame timeout");
}
