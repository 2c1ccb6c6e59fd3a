//! Test harness: start/stop/kill a real `tarnd` process, and a small blocking protocol client
//! built directly on `tarn_net` (so tests can also send arbitrary bytes).
//!
//! Every wait is bounded; a server still running when its `TarnServer` is dropped is SIGKILLed.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

#[allow(unused_imports)]
pub use tarn_net::{
    ColumnType, ErrorCode, ErrorReply, FrameHeader, GetReply, Hello, KeysRequest, Request,
    Response, SqlReply, StatsReply, UpsertMode, UpsertRequest, Value,
};

/// How long a server may take to print its ready line (recovery of a big log included).
pub const START_DEADLINE: Duration = Duration::from_secs(30);
/// How long a graceful stop may take.
pub const STOP_DEADLINE: Duration = Duration::from_secs(30);
/// Socket read/write timeout of the test client: no test blocks forever on a silent server.
pub const IO_TIMEOUT: Duration = Duration::from_secs(30);

pub fn tarnd_bin() -> &'static str {
    env!("CARGO_BIN_EXE_tarnd")
}

pub fn tarn_bin() -> &'static str {
    env!("CARGO_BIN_EXE_tarn")
}

/// Ports tests start servers on: below the kernel's ephemeral range (32768.. by default), so
/// an outgoing connection never takes a test server's port as its source port while the server
/// restarts on it.
pub const TEST_PORTS: std::ops::Range<u16> = 20_000..32_000;

/// A loopback port in [`TEST_PORTS`] that was free a moment ago (random, probed by binding it).
pub fn free_port() -> u16 {
    use rand::Rng;
    let mut rng = rand::rng();
    for _ in 0..1000 {
        let port = rng.random_range(TEST_PORTS);
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port in {TEST_PORTS:?}");
}

/// Resident memory of process `pid` in KiB (`VmRSS` of /proc/<pid>/status).
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("read /proc/{pid}/status: {e}"));
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmRSS in /proc/{pid}/status"))
}

pub fn online_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

// -------------------------------------------------------------------------------------------
// Server process

#[derive(Clone, Debug)]
pub struct ServerOpts {
    pub shards: u32,
    /// "sync" or "async"; `None` leaves the server default.
    pub durability: Option<String>,
    pub extra_args: Vec<String>,
    /// Use this data dir instead of a fresh temporary one (not deleted by the harness).
    pub data_dir: Option<PathBuf>,
}

impl Default for ServerOpts {
    fn default() -> Self {
        ServerOpts {
            shards: 2,
            durability: Some("sync".into()),
            extra_args: Vec::new(),
            data_dir: None,
        }
    }
}

impl ServerOpts {
    pub fn shards(n: u32) -> Self {
        ServerOpts {
            shards: n,
            ..Default::default()
        }
    }
    pub fn arg(mut self, a: impl Into<String>) -> Self {
        self.extra_args.push(a.into());
        self
    }
    pub fn args(mut self, a: &[&str]) -> Self {
        self.extra_args.extend(a.iter().map(|s| s.to_string()));
        self
    }
    pub fn durability(mut self, d: &str) -> Self {
        self.durability = Some(d.into());
        self
    }
}

pub struct TarnServer {
    child: Option<Child>,
    port: u16,
    data_dir: PathBuf,
    opts: ServerOpts,
    /// Holds the temporary data dir (when the harness created it).
    _tmp: Option<tempfile::TempDir>,
    /// Holds the stderr capture files.
    logs: tempfile::TempDir,
    stderr_path: PathBuf,
    starts: u32,
    pub ready_line: String,
}

/// Spawns tarnd with `args`, stderr to `stderr_path`; waits for the ready line or the exit.
/// `Ok((child, line))` once ready; `Err((status, stderr))` if it exited first.
fn spawn_tarnd(
    args: &[String],
    stderr_path: &Path,
) -> Result<(Child, String), (Option<ExitStatus>, String)> {
    let stderr = std::fs::File::create(stderr_path).expect("create stderr capture file");
    let mut child = Command::new(tarnd_bin())
        .args(args)
        .env("TARN_LOG", "warn")
        .env_remove("TARN_AUTH_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(stderr))
        .spawn()
        .expect("spawn tarnd");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        let mut r = BufReader::new(stdout);
        let mut line = String::new();
        loop {
            line.clear();
            match r.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {
                    let _ = tx.send(line.trim_end().to_string());
                }
            }
        }
    });
    let deadline = Instant::now() + START_DEADLINE;
    loop {
        match rx.recv_timeout(Duration::from_millis(20)) {
            Ok(line) if line.starts_with("tarnd ") && line.contains(" ready: ") => {
                return Ok((child, line))
            }
            Ok(_) => {}
            Err(mpsc::RecvTimeoutError::Timeout) | Err(mpsc::RecvTimeoutError::Disconnected) => {}
        }
        if let Ok(Some(status)) = child.try_wait() {
            // It may have printed the ready line just before exiting: drain first.
            let err = std::fs::read_to_string(stderr_path).unwrap_or_default();
            return Err((Some(status), err));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let err = std::fs::read_to_string(stderr_path).unwrap_or_default();
            return Err((
                None,
                format!("tarnd printed no ready line within {START_DEADLINE:?}; stderr:\n{err}"),
            ));
        }
    }
}

/// Waits for `child` to exit, at most `limit`. `None` on timeout.
/// What one `tarn` CLI run gave.
pub struct CliOut {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `tarn --addr ADDR ARGS...` (no TARN_ADDR/TARN_TOKEN from the environment, stdin
/// closed) with a 60 s deadline.
pub fn run_tarn(addr: &str, args: &[&str]) -> CliOut {
    let dir = tempfile::tempdir().unwrap();
    let (o, e) = (dir.path().join("out"), dir.path().join("err"));
    let mut child = Command::new(tarn_bin())
        .arg("--addr")
        .arg(addr)
        .args(args)
        .env_remove("TARN_ADDR")
        .env_remove("TARN_TOKEN")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&o).unwrap())
        .stderr(std::fs::File::create(&e).unwrap())
        .spawn()
        .expect("spawn tarn");
    let status = match wait_with_deadline(&mut child, Duration::from_secs(60)) {
        Some(s) => s,
        None => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("tarn {args:?} did not finish within 60 s");
        }
    };
    CliOut {
        status,
        stdout: std::fs::read_to_string(o).unwrap(),
        stderr: std::fs::read_to_string(e).unwrap(),
    }
}

pub fn wait_with_deadline(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(Some(s)) = child.try_wait() {
            return Some(s);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

impl TarnServer {
    pub fn start(opts: ServerOpts) -> Result<TarnServer, String> {
        let (tmp, data_dir) = match &opts.data_dir {
            Some(d) => (None, d.clone()),
            None => {
                let t = tempfile::Builder::new()
                    .prefix("tarn-test-")
                    .tempdir()
                    .expect("tempdir");
                let p = t.path().join("data");
                (Some(t), p)
            }
        };
        let logs = tempfile::Builder::new()
            .prefix("tarn-test-logs-")
            .tempdir()
            .expect("tempdir");
        let mut s = TarnServer {
            child: None,
            port: 0,
            data_dir,
            opts,
            _tmp: tmp,
            stderr_path: logs.path().join("stderr-0.txt"),
            logs,
            starts: 0,
            ready_line: String::new(),
        };
        s.launch(true)?;
        Ok(s)
    }

    /// Like `start` but panics with the server's stderr on failure.
    pub fn start_ok(opts: ServerOpts) -> TarnServer {
        TarnServer::start(opts).unwrap_or_else(|e| panic!("tarnd failed to start: {e}"))
    }

    fn args(&self) -> Vec<String> {
        let mut a = vec![
            "--listen".to_string(),
            format!("127.0.0.1:{}", self.port),
            "--data-dir".to_string(),
            self.data_dir.display().to_string(),
            "--shards".to_string(),
            self.opts.shards.to_string(),
        ];
        if let Some(d) = &self.opts.durability {
            a.push("--durability".into());
            a.push(d.clone());
        }
        a.extend(self.opts.extra_args.iter().cloned());
        a
    }

    fn launch(&mut self, new_port: bool) -> Result<(), String> {
        assert!(self.child.is_none(), "server already running");
        // A free port can be taken between our probe and tarnd's bind: retry a few times on a
        // fresh port when starting for the first time.
        let attempts = if new_port { 3 } else { 1 };
        let mut last = String::new();
        for _ in 0..attempts {
            if new_port {
                self.port = free_port();
            }
            self.starts += 1;
            self.stderr_path = self.logs.path().join(format!("stderr-{}.txt", self.starts));
            match spawn_tarnd(&self.args(), &self.stderr_path) {
                Ok((child, line)) => {
                    self.child = Some(child);
                    self.ready_line = line;
                    return Ok(());
                }
                Err((status, err)) => {
                    last = format!("tarnd exited ({status:?}) before it was ready; stderr:\n{err}");
                    if !(new_port && err.contains("cannot listen")) {
                        break;
                    }
                }
            }
        }
        Err(last)
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }
    pub fn addr_string(&self) -> String {
        self.addr().to_string()
    }
    pub fn port(&self) -> u16 {
        self.port
    }
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }
    pub fn opts(&self) -> &ServerOpts {
        &self.opts
    }
    pub fn opts_mut(&mut self) -> &mut ServerOpts {
        &mut self.opts
    }
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("server not running").id()
    }
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            None => false,
            Some(c) => matches!(c.try_wait(), Ok(None)),
        }
    }
    /// stderr of the current (or last) run.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// A connected, handshaken client.
    pub fn client(&self) -> Conn {
        Conn::connect(self.addr()).unwrap_or_else(|e| {
            panic!(
                "connect to {}: {e:?}\nstderr:\n{}",
                self.addr(),
                self.stderr()
            )
        })
    }

    pub fn client_with_token(&self, token: &str) -> Result<Conn, ClientError> {
        Conn::connect_with(self.addr(), token)
    }

    /// SIGKILL and reap.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            wait_with_deadline(&mut c, STOP_DEADLINE).expect("tarnd did not die after SIGKILL");
        }
    }

    /// SIGTERM and wait (bounded). Returns the exit status; panics if it does not stop in time.
    pub fn stop(&mut self) -> ExitStatus {
        let mut c = self.child.take().expect("server not running");
        // SAFETY: sending a signal to our own child's pid.
        unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
        match wait_with_deadline(&mut c, STOP_DEADLINE) {
            Some(s) => s,
            None => {
                let _ = c.kill();
                let _ = c.wait();
                panic!(
                    "tarnd did not exit within {STOP_DEADLINE:?} of SIGTERM; stderr:\n{}",
                    self.stderr()
                );
            }
        }
    }

    /// SIGTERM, and assert a clean exit (status 0).
    pub fn stop_ok(&mut self) {
        let s = self.stop();
        assert!(
            s.success(),
            "tarnd exited with {s:?} after SIGTERM; stderr:\n{}",
            self.stderr()
        );
    }

    /// Starts again on the same data dir and the same port. Never moves to another port: a
    /// server that cannot listen on its old port right after a stop or a kill is a bug
    /// (tests/restart.rs).
    pub fn restart(&mut self) -> Result<(), String> {
        if self.child.is_some() {
            self.stop_ok();
        }
        self.launch(false)
    }

    pub fn restart_ok(&mut self) {
        self.restart()
            .unwrap_or_else(|e| panic!("tarnd failed to restart: {e}"));
    }

    /// Starts another tarnd with exactly `args` (plus TARN_LOG=warn); expects it to fail.
    /// Returns (exit status, stderr). Panics if it becomes ready.
    pub fn start_expect_failure(args: &[String]) -> (ExitStatus, String) {
        let logs = tempfile::tempdir().expect("tempdir");
        let path = logs.path().join("stderr.txt");
        match spawn_tarnd(args, &path) {
            Ok((mut child, line)) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("tarnd {args:?} was expected to fail but became ready: {line}");
            }
            Err((Some(status), err)) => (status, err),
            Err((None, err)) => panic!("tarnd {args:?}: {err}"),
        }
    }

    /// Arguments that would start a server on this data dir with `shards` shards and a new port.
    pub fn args_for_data_dir(&self, shards: u32) -> Vec<String> {
        vec![
            "--listen".into(),
            format!("127.0.0.1:{}", free_port()),
            "--data-dir".into(),
            self.data_dir.display().to_string(),
            "--shards".into(),
            shards.to_string(),
        ]
    }
}

impl Drop for TarnServer {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = wait_with_deadline(&mut c, Duration::from_secs(10));
        }
    }
}

// -------------------------------------------------------------------------------------------
// Data directory helpers

/// `(first_lsn, path)` of every log segment of shard `shard`, sorted.
pub fn segments(data_dir: &Path, shard: u32) -> Vec<(u64, PathBuf)> {
    numbered_files(&data_dir.join(format!("shard-{shard}")), "log-", ".seg")
}

/// `(lsn, path)` of every checkpoint of shard `shard`, sorted.
pub fn checkpoints(data_dir: &Path, shard: u32) -> Vec<(u64, PathBuf)> {
    numbered_files(
        &data_dir.join(format!("shard-{shard}")),
        "checkpoint-",
        ".ckp",
    )
}

fn numbered_files(dir: &Path, prefix: &str, suffix: &str) -> Vec<(u64, PathBuf)> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if let Some(n) = name
                .strip_prefix(prefix)
                .and_then(|r| r.strip_suffix(suffix))
            {
                if let Ok(n) = n.parse::<u64>() {
                    out.push((n, e.path()));
                }
            }
        }
    }
    out.sort();
    out
}

// -------------------------------------------------------------------------------------------
// Keys and shards

pub fn key_bytes(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    tarn_types::encode_key(v, &mut out).expect("valid key");
    out
}

pub fn shard_of(v: &Value, shard_count: u32) -> u32 {
    tarn_types::shard_for(&key_bytes(v), shard_count)
}

// -------------------------------------------------------------------------------------------
// Client

#[derive(Debug)]
pub enum ClientError {
    Io(std::io::Error),
    /// The server closed the connection.
    Closed,
    Protocol(String),
    Server(ErrorReply),
}

impl ClientError {
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            ClientError::Server(e) => Some(e.code),
            _ => None,
        }
    }
    pub fn server(self) -> ErrorReply {
        match self {
            ClientError::Server(e) => e,
            other => panic!("expected a server error reply, got {other:?}"),
        }
    }
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientError::Io(e) => write!(f, "io: {e}"),
            ClientError::Closed => write!(f, "connection closed"),
            ClientError::Protocol(m) => write!(f, "protocol: {m}"),
            ClientError::Server(e) => write!(f, "server: {e}"),
        }
    }
}

pub type CResult<T> = Result<T, ClientError>;

/// A blocking protocol client. Requests may be pipelined with `send`/`recv`.
pub struct Conn {
    pub stream: TcpStream,
    next_id: u64,
    pub hello: Option<tarn_net::HelloReply>,
}

fn io_err(e: std::io::Error) -> ClientError {
    match e.kind() {
        std::io::ErrorKind::UnexpectedEof
        | std::io::ErrorKind::ConnectionReset
        | std::io::ErrorKind::ConnectionAborted
        | std::io::ErrorKind::BrokenPipe => ClientError::Closed,
        _ => ClientError::Io(e),
    }
}

impl Conn {
    /// TCP connect only: no HELLO sent.
    pub fn connect_raw(addr: SocketAddr) -> CResult<Conn> {
        let stream =
            TcpStream::connect_timeout(&addr, Duration::from_secs(10)).map_err(ClientError::Io)?;
        stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        stream.set_nodelay(true).unwrap();
        Ok(Conn {
            stream,
            next_id: 1,
            hello: None,
        })
    }

    pub fn connect(addr: SocketAddr) -> CResult<Conn> {
        Conn::connect_with(addr, "")
    }

    pub fn connect_with(addr: SocketAddr, token: &str) -> CResult<Conn> {
        let mut c = Conn::connect_raw(addr)?;
        c.handshake(token)?;
        Ok(c)
    }

    pub fn handshake(&mut self, token: &str) -> CResult<()> {
        let r = self.call(&Request::Hello(Hello {
            min_version: 1,
            max_version: 1,
            client_name: "tarn-tests".into(),
            auth_token: token.into(),
        }))?;
        match r {
            Response::Hello(h) => {
                self.hello = Some(h);
                Ok(())
            }
            other => Err(ClientError::Protocol(format!(
                "unexpected HELLO answer {other:?}"
            ))),
        }
    }

    pub fn set_read_timeout(&self, t: Duration) {
        self.stream.set_read_timeout(Some(t)).unwrap();
    }

    /// Sends one request; returns its id.
    pub fn send(&mut self, req: &Request) -> CResult<u64> {
        let id = self.next_id;
        self.next_id += 1;
        let mut buf = Vec::new();
        tarn_net::encode_request(id, req, &mut buf);
        self.send_raw(&buf)?;
        Ok(id)
    }

    /// Encodes (without sending) a request with the next id; returns (id, frame bytes).
    pub fn encode(&mut self, req: &Request) -> (u64, Vec<u8>) {
        let id = self.next_id;
        self.next_id += 1;
        let mut buf = Vec::new();
        tarn_net::encode_request(id, req, &mut buf);
        (id, buf)
    }

    pub fn send_raw(&mut self, bytes: &[u8]) -> CResult<()> {
        self.stream.write_all(bytes).map_err(io_err)
    }

    /// Reads one response frame.
    pub fn recv(&mut self) -> CResult<(u64, Response)> {
        let mut h = [0u8; 16];
        self.stream.read_exact(&mut h).map_err(io_err)?;
        let header = FrameHeader::decode(&h);
        if header.payload_len > tarn_net::limits::MAX_FRAME_PAYLOAD_BYTES {
            return Err(ClientError::Protocol(format!(
                "server frame of {} bytes",
                header.payload_len
            )));
        }
        let mut payload = vec![0u8; header.payload_len as usize];
        self.stream.read_exact(&mut payload).map_err(io_err)?;
        let resp = tarn_net::decode_response(&header, &payload)
            .map_err(|e| ClientError::Protocol(format!("undecodable server frame: {e}")))?;
        Ok((header.request_id, resp))
    }

    /// Reads until the server closes the connection (or `limit` passes). True if it closed.
    /// Frames read meanwhile are returned through `seen`.
    pub fn expect_closed(&mut self, limit: Duration, seen: &mut Vec<(u64, Response)>) -> bool {
        let deadline = Instant::now() + limit;
        self.stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        loop {
            match self.recv() {
                Ok(f) => seen.push(f),
                Err(ClientError::Closed) => return true,
                Err(ClientError::Io(e))
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut =>
                {
                    if Instant::now() > deadline {
                        return false;
                    }
                }
                Err(_) => return true,
            }
        }
    }

    /// Sends and waits for the reply to this request (no other request may be outstanding).
    pub fn call(&mut self, req: &Request) -> CResult<Response> {
        let id = self.send(req)?;
        let (rid, resp) = self.recv()?;
        if rid != id {
            // A connection-level error (id 0) is still an answer.
            if let Response::Error(e) = resp {
                return Err(ClientError::Server(e));
            }
            return Err(ClientError::Protocol(format!(
                "reply id {rid}, expected {id}"
            )));
        }
        match resp {
            Response::Error(e) => Err(ClientError::Server(e)),
            r => Ok(r),
        }
    }

    pub fn sql(&mut self, sql: &str) -> CResult<SqlReply> {
        match self.call(&Request::Sql(sql.into()))? {
            Response::Sql(r) => Ok(r),
            o => Err(ClientError::Protocol(format!("unexpected {o:?}"))),
        }
    }

    pub fn upsert(&mut self, table: &str, columns: &[&str], rows: Vec<Vec<Value>>) -> CResult<u64> {
        match self.call(&upsert_req(table, columns, rows))? {
            Response::Upsert(r) => Ok(r.rows_applied),
            o => Err(ClientError::Protocol(format!("unexpected {o:?}"))),
        }
    }

    pub fn get(&mut self, table: &str, keys: Vec<Value>) -> CResult<GetReply> {
        match self.call(&Request::Get(KeysRequest {
            table: table.into(),
            keys,
        }))? {
            Response::Get(r) => Ok(r),
            o => Err(ClientError::Protocol(format!("unexpected {o:?}"))),
        }
    }

    /// GET any number of keys, in requests of at most `chunk` keys.
    pub fn get_many(
        &mut self,
        table: &str,
        keys: &[Value],
        chunk: usize,
    ) -> CResult<Vec<Option<Vec<Value>>>> {
        let mut out = Vec::with_capacity(keys.len());
        for c in keys.chunks(chunk) {
            let r = self.get(table, c.to_vec())?;
            if r.rows.len() != c.len() {
                return Err(ClientError::Protocol(format!(
                    "GET of {} keys returned {} rows",
                    c.len(),
                    r.rows.len()
                )));
            }
            out.extend(r.rows);
        }
        Ok(out)
    }

    pub fn delete(&mut self, table: &str, keys: Vec<Value>) -> CResult<u64> {
        match self.call(&Request::Delete(KeysRequest {
            table: table.into(),
            keys,
        }))? {
            Response::Delete(r) => Ok(r.rows_deleted),
            o => Err(ClientError::Protocol(format!("unexpected {o:?}"))),
        }
    }

    pub fn stats(&mut self) -> CResult<StatsReply> {
        match self.call(&Request::Stats)? {
            Response::Stats(r) => Ok(r),
            o => Err(ClientError::Protocol(format!("unexpected {o:?}"))),
        }
    }

    pub fn ping(&mut self) -> CResult<()> {
        match self.call(&Request::Ping(b"tarn".to_vec()))? {
            Response::Pong(d) if d == b"tarn" => Ok(()),
            o => Err(ClientError::Protocol(format!("unexpected {o:?}"))),
        }
    }
}

pub fn upsert_req(table: &str, columns: &[&str], rows: Vec<Vec<Value>>) -> Request {
    Request::Upsert(UpsertRequest {
        table: table.into(),
        mode: UpsertMode::Replace,
        columns: columns.iter().map(|c| c.to_string()).collect(),
        rows,
    })
}

/// Builds a frame from raw parts (any opcode, any payload, any declared length).
pub fn raw_frame(payload_len: u32, opcode: u16, request_id: u64, payload: &[u8]) -> Vec<u8> {
    let h = FrameHeader {
        payload_len,
        opcode,
        flags: 0,
        request_id,
    };
    let mut out = h.encode().to_vec();
    out.extend_from_slice(payload);
    out
}

/// Appends a protocol string (u32 LE length + bytes).
pub fn put_str(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_le_bytes());
    out.extend_from_slice(b);
}

/// Total rows per shard from STATS, indexed by shard id.
pub fn rows_per_shard(st: &StatsReply) -> Vec<u64> {
    let mut v = vec![0; st.shards.len()];
    for s in &st.shards {
        v[s.shard as usize] = s.rows;
    }
    v
}

/// Sums STATS rows over all shards.
pub fn total_rows(st: &StatsReply) -> u64 {
    st.shards.iter().map(|s| s.rows).sum()
}

/// Polls `f` until it returns true (bounded); panics with `what` on timeout.
pub fn wait_until(limit: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !f() {
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends `reqs` on `conn` keeping at most `depth` outstanding; every reply must be a success.
/// Returns the replies in request order.
pub fn pipelined(conn: &mut Conn, reqs: &[Request], depth: usize) -> Vec<Response> {
    let mut ids = Vec::with_capacity(reqs.len());
    let mut replies: std::collections::HashMap<u64, Response> = std::collections::HashMap::new();
    let mut next = 0;
    let mut outstanding = 0;
    while next < reqs.len() || outstanding > 0 {
        while outstanding < depth && next < reqs.len() {
            ids.push(
                conn.send(&reqs[next])
                    .unwrap_or_else(|e| panic!("send request {next}: {e}")),
            );
            next += 1;
            outstanding += 1;
        }
        let (id, resp) = conn
            .recv()
            .unwrap_or_else(|e| panic!("receive a reply: {e}"));
        if let Response::Error(e) = &resp {
            panic!("request {id} failed: {e}");
        }
        assert!(
            replies.insert(id, resp).is_none(),
            "two replies for request {id}"
        );
        outstanding -= 1;
    }
    ids.iter()
        .map(|id| {
            replies
                .remove(id)
                .unwrap_or_else(|| panic!("no reply for request {id}"))
        })
        .collect()
}

/// The integer ids in the first column of a kNN reply, in answer order.
pub fn knn_ids(r: &tarn_net::KnnReply) -> Vec<i64> {
    r.rows
        .iter()
        .map(|row| match row.values[0] {
            Value::Int(id) => id,
            ref o => panic!("id column holds {o:?}"),
        })
        .collect()
}

/// The wall clock in µs since the epoch (event times of test data).
pub fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_micros() as i64
}

/// A TEXT value.
pub fn text(s: &str) -> Value {
    Value::Text(s.to_string())
}

/// Euclidean distance (the `l2` metric's reported distance).
pub fn l2(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y) * (x - y))
        .sum::<f32>()
        .sqrt()
}

// -------------------------------------------------------------------------------------------
// CONTEXT requests

#[allow(unused_imports)]
pub use tarn_net::{ContextCall, ContextGroup, ContextItemReply, ContextReply, ContextRequest};

impl Conn {
    /// Calls the named context `name` with `params`.
    pub fn context(&mut self, name: &str, params: &[(&str, Value)]) -> CResult<ContextReply> {
        self.context_call(ContextCall::Named(name.into()), params)
    }

    /// Runs ad hoc context items (the syntax of `CREATE CONTEXT … AS`).
    pub fn context_items(&mut self, items: &str) -> CResult<ContextReply> {
        self.context_call(ContextCall::AdHoc(items.into()), &[])
    }

    fn context_call(
        &mut self,
        call: ContextCall,
        params: &[(&str, Value)],
    ) -> CResult<ContextReply> {
        let req = Request::Context(ContextRequest {
            call,
            params: params
                .iter()
                .map(|(n, v)| (n.to_string(), v.clone()))
                .collect(),
        });
        match self.call(&req)? {
            Response::Context(r) => Ok(r),
            o => Err(ClientError::Protocol(format!("unexpected {o:?}"))),
        }
    }
}

/// The item `name` of a context reply (panics naming it when absent).
pub fn ctx_item<'r>(r: &'r ContextReply, name: &str) -> &'r ContextItemReply {
    r.items
        .iter()
        .find(|i| i.name == name)
        .unwrap_or_else(|| panic!("no item {name} in the reply {r:?}"))
}

/// The value of column `column` in row `row` of group `group` of item `item`.
pub fn ctx_value(r: &ContextReply, item: &str, group: usize, row: usize, column: &str) -> Value {
    let it = ctx_item(r, item);
    let c = it
        .columns
        .iter()
        .position(|c| c.name == column)
        .unwrap_or_else(|| panic!("item {item} has no column {column}: {:?}", it.columns));
    it.groups[group].rows[row][c].clone()
}

/// The non-empty command lines of the first ```sh block after the text `section` in
/// `readme` (README walkthrough tests run them as written).
pub fn readme_block<'r>(readme: &'r str, section: &str) -> Vec<&'r str> {
    let start = readme.find(section).expect("the README section");
    let block = &readme[start..];
    let block = &block[block.find("```sh\n").expect("a sh block") + 6..];
    let block = &block[..block.find("```").expect("the end of the block")];
    block.lines().filter(|l| !l.trim().is_empty()).collect()
}

/// Splits a README command line like a POSIX shell would for these lines: words separated by
/// spaces, single- or double-quoted parts kept whole.
pub fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut quote = None;
    let mut in_word = false;
    for ch in line.chars() {
        match (quote, ch) {
            (None, '\'' | '"') => {
                quote = Some(ch);
                in_word = true;
            }
            (Some(q), c) if c == q => quote = None,
            (None, ' ') => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (_, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    words
}

pub mod go;

/// The `tarn-go-context` tool (`clients/go/cmd/tarn-go-context`): calls a named context through
/// the Go client and prints what `tarn context NAME … --json` prints. Built once per test
/// binary into the cargo target dir (Go found or installed as for tests/go_client.rs).
pub fn go_context_tool() -> PathBuf {
    go::context_tool()
}
