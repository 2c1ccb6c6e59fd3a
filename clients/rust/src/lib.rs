//! Blocking Rust client for Tarn (std `TcpStream`, no async runtime).
//!
//! ```no_run
//! use tarn_client::{Client, Value};
//! let mut c = Client::connect("127.0.0.1:7070")?;
//! c.sql("CREATE TABLE cards (card_id TEXT PRIMARY KEY, risk DOUBLE)")?;
//! c.upsert("cards", &["card_id", "risk"], vec![vec![Value::Text("c1".into()), Value::Double(0.5)]])?;
//! let got = c.get("cards", vec![Value::Text("c1".into())])?;
//! assert!(got.rows[0].is_some());
//! # Ok::<(), tarn_client::ClientError>(())
//! ```
//!
//! `VECTOR(n)` columns carry [`Value::Vector`] (the `n` f32 components, sent bit for bit; the
//! server checks the dimension and that every component is finite, answering `BAD_VECTOR`):
//! `Value::Vector(vec![0.5, -1.0, 2.0].into())`.
//!
//! [`Client::knn`] asks a vector index for the rows nearest to a query vector (or to the vector
//! of a row given by its key), optionally filtered by a SQL condition.
//!
//! Requests can be pipelined: [`Client::send`] / [`Client::recv`] expose the raw request ids,
//! [`Client::pipeline`] keeps up to the server's `max_in_flight` requests outstanding and returns
//! results in request order. The simple methods (`sql`, `get`, ...) can be mixed with `send`:
//! replies that arrive for other requests are kept and handed out by later `recv` calls.

use std::collections::{HashMap, VecDeque};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use tarn_net::{decode_response, encode_request, FrameBuffer, CONNECTION_REQUEST_ID};
pub use tarn_net::{
    limits, Column, ColumnType, ContextCall, ContextGroup, ContextItemReply, ContextReply,
    ContextRequest, DeleteReply, ErrorCode, ErrorReply, FeatureRow, FeaturesReply, FeaturesRequest,
    GetReply, Hello, HelloReply, HistoryReply, HistoryRequest, IndexStats, IngestBody, IngestReply,
    IngestRequest, KeysRequest, KnnQuery, KnnReply, KnnRequest, KnnRow, OpStats, Producer,
    RecentReply, RecentRequest, Request, Response, ShardAsOf, ShardStats, SqlReply, StatsReply,
    UpsertMode, UpsertReply, UpsertRequest, Value,
};

/// Most request bytes the client keeps unanswered in [`Client::pipeline`] (besides the count
/// limit), so that client and server can never both block writing into full socket buffers.
pub const PIPELINE_WINDOW_BYTES: usize = 4 * 1024 * 1024;

/// Connection options. `Default`: no token, name `tarn-client-rust/<version>`, 5 s connect
/// timeout, 30 s read/write timeout.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    pub auth_token: Option<String>,
    pub client_name: String,
    pub connect_timeout: Duration,
    /// Read and write timeout on the socket; `None` blocks indefinitely.
    pub io_timeout: Option<Duration>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            auth_token: None,
            client_name: format!("tarn-client-rust/{}", env!("CARGO_PKG_VERSION")),
            connect_timeout: Duration::from_secs(5),
            io_timeout: Some(Duration::from_secs(30)),
        }
    }
}

/// An ERROR reply from the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerError {
    pub code: ErrorCode,
    pub message: String,
    pub row: Option<u32>,
    pub column: Option<String>,
}

impl From<ErrorReply> for ServerError {
    fn from(e: ErrorReply) -> Self {
        ServerError {
            code: e.code,
            message: e.message,
            row: e.row,
            column: e.column,
        }
    }
}

impl std::fmt::Display for ServerError {
    /// `UNKNOWN_TABLE: table "x" does not exist (row 3, column "y")`
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)?;
        match (&self.row, &self.column) {
            (Some(r), Some(c)) => write!(f, " (row {r}, column {c:?})"),
            (Some(r), None) => write!(f, " (row {r})"),
            (None, Some(c)) => write!(f, " (column {c:?})"),
            (None, None) => Ok(()),
        }
    }
}

impl std::error::Error for ServerError {}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// The server sent something this client cannot interpret, or the connection is unusable
    /// after an earlier error.
    #[error("protocol error: {0}")]
    Protocol(String),
    #[error("{0}")]
    Server(ServerError),
    #[error("connection closed by the server")]
    Closed,
}

impl From<ServerError> for ClientError {
    fn from(e: ServerError) -> Self {
        ClientError::Server(e)
    }
}

impl ClientError {
    /// The server error code, if this is a server error.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            ClientError::Server(e) => Some(e.code),
            _ => None,
        }
    }
}

/// A blocking connection to one tarnd. Not thread-safe by design (`&mut self`); open one per
/// thread.
pub struct Client {
    stream: TcpStream,
    rbuf: FrameBuffer,
    wbuf: Vec<u8>,
    next_id: u64,
    info: HelloReply,
    /// Requests sent and not yet answered.
    outstanding: usize,
    /// Replies received while waiting for another request id, in arrival order.
    stash: VecDeque<(u64, Response)>,
    /// Set after an error that leaves the stream in an unknown state.
    broken: Option<String>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("peer", &self.stream.peer_addr().ok())
            .field("info", &self.info)
            .field("outstanding", &self.outstanding)
            .finish_non_exhaustive()
    }
}

fn connect_any(addr: &str, timeout: Duration) -> Result<TcpStream, ClientError> {
    let addrs: Vec<SocketAddr> = addr.to_socket_addrs()?.collect();
    let mut last = None;
    for a in &addrs {
        match TcpStream::connect_timeout(a, timeout) {
            Ok(s) => return Ok(s),
            Err(e) => last = Some(e),
        }
    }
    Err(ClientError::Io(last.unwrap_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{addr:?} resolved to no address"),
        )
    })))
}

impl Client {
    /// Connects with default options and performs the HELLO handshake.
    pub fn connect(addr: &str) -> Result<Client, ClientError> {
        Client::connect_with(addr, ClientOptions::default())
    }

    /// Connects and performs the HELLO handshake.
    pub fn connect_with(addr: &str, opts: ClientOptions) -> Result<Client, ClientError> {
        let stream = connect_any(addr, opts.connect_timeout)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(opts.io_timeout)?;
        stream.set_write_timeout(opts.io_timeout)?;
        let mut c = Client {
            stream,
            rbuf: FrameBuffer::new(limits::MAX_FRAME_PAYLOAD_BYTES),
            wbuf: Vec::new(),
            next_id: 1,
            info: HelloReply {
                version: 0,
                server_version: String::new(),
                shard_count: 0,
                max_frame_payload_bytes: limits::MAX_FRAME_PAYLOAD_BYTES,
                max_batch_rows: limits::MAX_BATCH_ROWS,
                max_in_flight: limits::MAX_IN_FLIGHT_PER_CONNECTION,
            },
            outstanding: 0,
            stash: VecDeque::new(),
            broken: None,
        };
        let hello = Request::Hello(Hello {
            min_version: limits::MIN_PROTOCOL_VERSION,
            max_version: limits::PROTOCOL_VERSION,
            client_name: opts.client_name,
            auth_token: opts.auth_token.unwrap_or_default(),
        });
        match c.call(&hello)? {
            Response::Hello(h) => {
                if !(limits::MIN_PROTOCOL_VERSION..=limits::PROTOCOL_VERSION).contains(&h.version) {
                    return Err(ClientError::Protocol(format!(
                        "server chose protocol version {}, outside the offered range {}..={}",
                        h.version,
                        limits::MIN_PROTOCOL_VERSION,
                        limits::PROTOCOL_VERSION
                    )));
                }
                // Replies are bounded by the same limit the server advertises for requests.
                c.rbuf.set_max_payload(
                    h.max_frame_payload_bytes
                        .max(limits::MAX_FRAME_PAYLOAD_BYTES),
                );
                c.info = h;
                Ok(c)
            }
            other => Err(unexpected("HELLO", &other)),
        }
    }

    /// The server's HELLO reply: negotiated version, shard count and limits.
    pub fn server_info(&self) -> &HelloReply {
        &self.info
    }

    /// Requests sent with [`Client::send`] and not yet received.
    pub fn outstanding(&self) -> usize {
        self.outstanding + self.stash.len()
    }

    pub fn ping(&mut self) -> Result<(), ClientError> {
        let data = b"tarn".to_vec();
        match self.call(&Request::Ping(data.clone()))? {
            Response::Pong(d) if d == data => Ok(()),
            Response::Pong(_) => Err(ClientError::Protocol(
                "PONG does not echo the PING data".into(),
            )),
            other => Err(unexpected("PING", &other)),
        }
    }

    pub fn sql(&mut self, sql: &str) -> Result<SqlReply, ClientError> {
        match self.call(&Request::Sql(sql.to_owned()))? {
            Response::Sql(r) => Ok(r),
            other => Err(unexpected("SQL", &other)),
        }
    }

    /// UPSERT in Replace mode; returns the number of rows applied.
    pub fn upsert(
        &mut self,
        table: &str,
        columns: &[&str],
        rows: Vec<Vec<Value>>,
    ) -> Result<u64, ClientError> {
        self.upsert_mode(table, UpsertMode::Replace, columns, rows)
    }

    /// UPSERT in Merge mode (unlisted columns keep their values).
    pub fn upsert_merge(
        &mut self,
        table: &str,
        columns: &[&str],
        rows: Vec<Vec<Value>>,
    ) -> Result<u64, ClientError> {
        self.upsert_mode(table, UpsertMode::Merge, columns, rows)
    }

    fn upsert_mode(
        &mut self,
        table: &str,
        mode: UpsertMode,
        columns: &[&str],
        rows: Vec<Vec<Value>>,
    ) -> Result<u64, ClientError> {
        let req = Request::Upsert(UpsertRequest {
            table: table.to_owned(),
            mode,
            columns: columns.iter().map(|c| (*c).to_owned()).collect(),
            rows,
        });
        match self.call(&req)? {
            Response::Upsert(r) => Ok(r.rows_applied),
            other => Err(unexpected("UPSERT", &other)),
        }
    }

    /// One entry per key, in key order; `None` = not found.
    pub fn get(&mut self, table: &str, keys: Vec<Value>) -> Result<GetReply, ClientError> {
        let req = Request::Get(KeysRequest {
            table: table.to_owned(),
            keys,
        });
        match self.call(&req)? {
            Response::Get(r) => Ok(r),
            other => Err(unexpected("GET", &other)),
        }
    }

    /// Returns the number of rows deleted.
    pub fn delete(&mut self, table: &str, keys: Vec<Value>) -> Result<u64, ClientError> {
        let req = Request::Delete(KeysRequest {
            table: table.to_owned(),
            keys,
        });
        match self.call(&req)? {
            Response::Delete(r) => Ok(r.rows_deleted),
            other => Err(unexpected("DELETE", &other)),
        }
    }

    /// INGEST events given as JSON text (JSON lines, or one JSON array of objects), optionally
    /// tagged with a producer `(id, seq)` so a retry is applied at most once.
    pub fn ingest_json(
        &mut self,
        stream: &str,
        json: Vec<u8>,
        producer: Option<Producer>,
    ) -> Result<IngestReply, ClientError> {
        self.ingest(IngestRequest {
            stream: stream.to_owned(),
            producer,
            body: IngestBody::Json {
                layout: 0,
                data: json,
            },
        })
    }

    /// INGEST events given as typed rows (`columns` names each value position).
    pub fn ingest_rows(
        &mut self,
        stream: &str,
        columns: &[&str],
        rows: Vec<Vec<Value>>,
        producer: Option<Producer>,
    ) -> Result<IngestReply, ClientError> {
        self.ingest(IngestRequest {
            stream: stream.to_owned(),
            producer,
            body: IngestBody::Rows {
                columns: columns.iter().map(|c| (*c).to_owned()).collect(),
                rows,
            },
        })
    }

    /// Reads feature view `view` for `keys`: as of now (`as_of_us` None), with per key the
    /// aggregates and the newest event time applied.
    pub fn features(
        &mut self,
        view: &str,
        keys: Vec<Value>,
        as_of_us: Option<i64>,
    ) -> Result<FeaturesReply, ClientError> {
        let req = Request::Features(FeaturesRequest {
            view: view.to_owned(),
            keys,
            as_of_us,
        });
        match self.call(&req)? {
            Response::Features(r) => Ok(r),
            other => Err(unexpected("FEATURES", &other)),
        }
    }

    /// Point-in-time history: the view's features for each `(key, as_of_us)` pair.
    pub fn history(
        &mut self,
        view: &str,
        pairs: Vec<(Value, i64)>,
    ) -> Result<HistoryReply, ClientError> {
        let req = Request::History(HistoryRequest {
            view: view.to_owned(),
            pairs,
        });
        match self.call(&req)? {
            Response::History(r) => Ok(r),
            other => Err(unexpected("HISTORY", &other)),
        }
    }

    /// The `req.k` rows of the index's table nearest to `req.query` (a vector, or the vector of
    /// the row with a given key), among the rows matching `req.filter`, nearest first, each
    /// with its distance under the index's metric (l2: Euclidean; cosine: 1 − cos; ip: −a·b).
    ///
    /// ```no_run
    /// # use tarn_client::{Client, KnnQuery, KnnRequest};
    /// # let mut c = Client::connect("127.0.0.1:7070")?;
    /// let reply = c.knn(&KnnRequest {
    ///     index: "docs_emb".into(),
    ///     query: KnnQuery::Vector(vec![0.1, 0.2, 0.3]),
    ///     k: 10,
    ///     ef: None,
    ///     filter: "lang = 'en'".into(),
    ///     columns: vec!["id".into(), "title".into()],
    /// })?;
    /// for row in &reply.rows {
    ///     println!("{} {:?}", row.distance, row.values);
    /// }
    /// # Ok::<(), tarn_client::ClientError>(())
    /// ```
    ///
    /// Bad arguments are the server's to refuse (`k` = 0 or an `ef` out of range:
    /// `INVALID_ARGUMENT`; `k` over `limits::MAX_KNN_K`: `LIMIT_EXCEEDED`; a query vector of the
    /// wrong dimension: `BAD_VECTOR`; see docs/PROTOCOL.md, KNN).
    pub fn knn(&mut self, req: &KnnRequest) -> Result<KnnReply, ClientError> {
        match self.call(&Request::Knn(req.clone()))? {
            Response::Knn(r) => Ok(r),
            other => Err(unexpected("KNN", &other)),
        }
    }

    /// Calls the named context `name` with `params` (by parameter name) and waits for its
    /// reply.
    pub fn context(
        &mut self,
        name: &str,
        params: Vec<(String, Value)>,
    ) -> Result<ContextReply, ClientError> {
        self.context_call(ContextCall::Named(name.to_string()), params)
    }

    /// Runs an ad hoc context: `items` in the syntax of `CREATE CONTEXT … AS` (docs/SQL.md).
    pub fn context_items(&mut self, items: &str) -> Result<ContextReply, ClientError> {
        self.context_call(ContextCall::AdHoc(items.to_string()), Vec::new())
    }

    fn context_call(
        &mut self,
        call: ContextCall,
        params: Vec<(String, Value)>,
    ) -> Result<ContextReply, ClientError> {
        match self.call(&Request::Context(ContextRequest { call, params }))? {
            Response::Context(r) => Ok(r),
            other => Err(unexpected("CONTEXT", &other)),
        }
    }

    /// The newest `n` events of each partition key in `keys` of `stream` (created with
    /// `recent = N`), newest first, projected on `columns` (empty = every column). One list
    /// per key, in request order; a key with no events has an empty list.
    pub fn recent(
        &mut self,
        stream: &str,
        keys: Vec<Value>,
        n: u32,
        columns: &[&str],
    ) -> Result<RecentReply, ClientError> {
        let req = Request::Recent(RecentRequest {
            stream: stream.to_owned(),
            keys,
            n,
            columns: columns.iter().map(|c| (*c).to_owned()).collect(),
        });
        match self.call(&req)? {
            Response::Recent(r) => Ok(r),
            other => Err(unexpected("RECENT", &other)),
        }
    }

    /// Sends an INGEST request and waits for its reply.
    pub fn ingest(&mut self, req: IngestRequest) -> Result<IngestReply, ClientError> {
        match self.call(&Request::Ingest(req))? {
            Response::Ingest(r) => Ok(r),
            other => Err(unexpected("INGEST", &other)),
        }
    }

    pub fn stats(&mut self) -> Result<StatsReply, ClientError> {
        match self.call(&Request::Stats)? {
            Response::Stats(r) => Ok(r),
            other => Err(unexpected("STATS", &other)),
        }
    }

    /// Sends one request without waiting; returns its request id. An encoded payload over the
    /// server's `max_frame_payload_bytes` is refused locally (`Protocol`) without sending.
    pub fn send(&mut self, req: &Request) -> Result<u64, ClientError> {
        self.check_usable()?;
        let id = self.encode(req)?;
        self.flush()?;
        Ok(id)
    }

    /// The next reply in arrival order, with its request id. Server errors are returned as
    /// `Ok((id, Response::Error(..)))`; an error with request id 0 (connection-level, e.g.
    /// SHUTTING_DOWN) is returned as `Err(ClientError::Server)`.
    pub fn recv(&mut self) -> Result<(u64, Response), ClientError> {
        if let Some(r) = self.stash.pop_front() {
            return Ok(r);
        }
        self.check_usable()?;
        self.read_reply()
    }

    /// Sends every request, keeping at most the server's `max_in_flight` (and
    /// [`PIPELINE_WINDOW_BYTES`]) outstanding, and returns the results in request order.
    /// Replies to requests sent earlier with [`Client::send`] are kept for [`Client::recv`].
    /// On `Err` (I/O, protocol, connection-level server error) the outcome of the unanswered
    /// requests is unknown; discard the connection.
    pub fn pipeline(
        &mut self,
        reqs: &[Request],
    ) -> Result<Vec<Result<Response, ServerError>>, ClientError> {
        self.check_usable()?;
        let max_in_flight = (self.info.max_in_flight.max(1)) as usize;
        let mut results: Vec<Option<Result<Response, ServerError>>> = vec![None; reqs.len()];
        // request id -> (index, encoded size)
        let mut pending: HashMap<u64, (usize, usize)> = HashMap::new();
        let mut window_bytes = 0usize;
        let mut next = 0usize;
        let mut done = 0usize;
        while done < reqs.len() {
            // Fill the window, batching the writes into one syscall.
            while next < reqs.len()
                && self.outstanding < max_in_flight
                && (pending.is_empty() || window_bytes < PIPELINE_WINDOW_BYTES)
            {
                let before = self.wbuf.len();
                let id = self.encode(&reqs[next])?;
                let size = self.wbuf.len() - before;
                pending.insert(id, (next, size));
                window_bytes += size;
                next += 1;
            }
            self.flush()?;
            let (id, resp) = self.read_reply()?;
            match pending.remove(&id) {
                Some((index, size)) => {
                    window_bytes -= size;
                    results[index] = Some(match resp {
                        Response::Error(e) => Err(e.into()),
                        r => Ok(r),
                    });
                    done += 1;
                }
                None => self.stash.push_back((id, resp)),
            }
        }
        Ok(results.into_iter().flatten().collect())
    }

    /// Writes arbitrary bytes (for tests of the server's framing). Replies, if any, come from
    /// [`Client::recv`]; bytes written this way are not counted as outstanding requests.
    pub fn send_raw(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        self.check_usable()?;
        let r = self
            .stream
            .write_all(bytes)
            .and_then(|_| self.stream.flush());
        r.map_err(|e| self.poison(e))
    }

    /// The underlying socket (e.g. to adjust timeouts).
    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }

    // -----------------------------------------------------------------------------------------

    /// Sends `req` and waits for its reply; ERROR replies become `ClientError::Server`.
    fn call(&mut self, req: &Request) -> Result<Response, ClientError> {
        let id = self.send(req)?;
        if let Some(pos) = self.stash.iter().position(|(i, _)| *i == id) {
            let (_, resp) = self.stash.remove(pos).expect("position is valid");
            return into_result(resp);
        }
        loop {
            let (rid, resp) = self.read_reply()?;
            if rid == id {
                return into_result(resp);
            }
            self.stash.push_back((rid, resp));
        }
    }

    fn check_usable(&self) -> Result<(), ClientError> {
        match &self.broken {
            None => Ok(()),
            Some(why) => Err(ClientError::Protocol(format!(
                "connection unusable after an earlier error: {why}"
            ))),
        }
    }

    fn poison(&mut self, e: std::io::Error) -> ClientError {
        self.broken = Some(e.to_string());
        ClientError::Io(e)
    }

    /// Encodes `req` into the write buffer, assigning the next request id.
    fn encode(&mut self, req: &Request) -> Result<u64, ClientError> {
        let id = self.next_id;
        let start = self.wbuf.len();
        encode_request(id, req, &mut self.wbuf);
        let payload = self.wbuf.len() - start - tarn_net::HEADER_LEN;
        if payload > self.info.max_frame_payload_bytes as usize {
            self.wbuf.truncate(start);
            return Err(ClientError::Protocol(format!(
                "{} request payload of {payload} bytes exceeds the server limit of {} bytes",
                req.opcode(),
                self.info.max_frame_payload_bytes
            )));
        }
        self.next_id += 1;
        self.outstanding += 1;
        Ok(id)
    }

    fn flush(&mut self) -> Result<(), ClientError> {
        if self.wbuf.is_empty() {
            return Ok(());
        }
        let r = self.stream.write_all(&self.wbuf);
        self.wbuf.clear();
        r.map_err(|e| self.poison(e))
    }

    /// Reads the next reply frame from the socket (ignores the stash).
    fn read_reply(&mut self) -> Result<(u64, Response), ClientError> {
        loop {
            let frame = match self.rbuf.next_frame() {
                Ok(f) => f,
                Err(e) => {
                    let msg = format!("server sent {e}");
                    self.broken = Some(msg.clone());
                    return Err(ClientError::Protocol(msg));
                }
            };
            if let Some(f) = frame {
                let id = f.header.request_id;
                let resp = match decode_response(&f.header, f.payload) {
                    Ok(r) => r,
                    Err(e) => {
                        // The frame boundary is intact, so the connection stays usable.
                        self.outstanding = self.outstanding.saturating_sub(1);
                        return Err(ClientError::Protocol(format!(
                            "undecodable reply to request {id}: {e}"
                        )));
                    }
                };
                if id == CONNECTION_REQUEST_ID {
                    return match resp {
                        Response::Error(e) => {
                            if e.code.closes_connection() {
                                self.broken = Some(format!("server sent {e}"));
                            }
                            Err(ClientError::Server(e.into()))
                        }
                        other => Err(unexpected("request id 0", &other)),
                    };
                }
                self.outstanding = self.outstanding.saturating_sub(1);
                return Ok((id, resp));
            }
            let spare = self.rbuf.spare(64 * 1024);
            let n = match self.stream.read(spare) {
                Ok(n) => n,
                Err(e) => {
                    self.rbuf.filled(0);
                    if e.kind() == std::io::ErrorKind::Interrupted {
                        continue;
                    }
                    // A timed-out read loses nothing (partial bytes stay buffered).
                    return Err(ClientError::Io(e));
                }
            };
            self.rbuf.filled(n);
            if n == 0 {
                self.broken = Some(if self.rbuf.is_empty() {
                    "connection closed by the server".into()
                } else {
                    "connection closed by the server mid-frame".into()
                });
                return Err(ClientError::Closed);
            }
        }
    }
}

fn into_result(resp: Response) -> Result<Response, ClientError> {
    match resp {
        Response::Error(e) => Err(ClientError::Server(e.into())),
        r => Ok(r),
    }
}

fn unexpected(what: &str, got: &Response) -> ClientError {
    ClientError::Protocol(format!(
        "unexpected {} reply to {what}",
        got.opcode().name()
    ))
}
