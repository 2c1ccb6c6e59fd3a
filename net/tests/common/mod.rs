//! Sample messages shared by the tests and the vector generator.
#![allow(dead_code)]

use tarn_net::*;

mod context;
mod knn;
pub use context::*;
mod recent;
pub use knn::*;
pub use recent::*;

pub fn all_values() -> Vec<Value> {
    vec![
        Value::Null,
        Value::Bool(true),
        Value::Bool(false),
        Value::Int(i64::MIN),
        Value::Int(-1),
        Value::Int(i64::MAX),
        Value::Double(1.5),
        Value::Double(-2.25e10),
        Value::Text(String::new()),
        Value::Text("héllo ✓".into()),
        Value::Bytes(vec![]),
        Value::Bytes(vec![0, 1, 0xfe, 0xff]),
        Value::Timestamp(1_700_000_000_123_456),
        Value::Timestamp(-1),
    ]
}

pub fn sample_requests() -> Vec<(&'static str, u64, Request)> {
    vec![
        (
            "hello",
            1,
            Request::Hello(Hello {
                min_version: 1,
                max_version: 1,
                client_name: "tarn-client-rust/0.1.0".into(),
                auth_token: "s3cret".into(),
            }),
        ),
        (
            "hello_no_token_future_range",
            1,
            Request::Hello(Hello {
                min_version: 1,
                max_version: 3,
                client_name: "go".into(),
                auth_token: String::new(),
            }),
        ),
        ("ping_empty", 2, Request::Ping(vec![])),
        ("ping_data", 3, Request::Ping(b"tarn".to_vec())),
        (
            "sql_create_table",
            4,
            Request::Sql(
                "CREATE TABLE cards (card_id TEXT PRIMARY KEY, flagged BOOLEAN, risk DOUBLE)"
                    .into(),
            ),
        ),
        (
            "upsert_replace_every_type",
            5,
            Request::Upsert(UpsertRequest {
                table: "t".into(),
                mode: UpsertMode::Replace,
                columns: vec![
                    "k".into(),
                    "b".into(),
                    "i".into(),
                    "d".into(),
                    "s".into(),
                    "x".into(),
                    "ts".into(),
                ],
                rows: vec![
                    vec![
                        Value::Text("k1".into()),
                        Value::Bool(true),
                        Value::Int(-42),
                        Value::Double(0.25),
                        Value::Text("héllo ✓".into()),
                        Value::Bytes(vec![0xde, 0xad, 0xbe, 0xef]),
                        Value::Timestamp(1_700_000_000_000_000),
                    ],
                    vec![
                        Value::Text("k2".into()),
                        Value::Null,
                        Value::Null,
                        Value::Null,
                        Value::Null,
                        Value::Null,
                        Value::Null,
                    ],
                ],
            }),
        ),
        (
            "upsert_merge_wrong_arity_row",
            6,
            Request::Upsert(UpsertRequest {
                table: "cards".into(),
                mode: UpsertMode::Merge,
                columns: vec!["card_id".into(), "risk".into()],
                rows: vec![
                    vec![Value::Text("c1".into()), Value::Double(0.9)],
                    vec![Value::Text("c2".into())],
                ],
            }),
        ),
        (
            "get_text_keys",
            7,
            Request::Get(KeysRequest {
                table: "cards".into(),
                keys: vec![Value::Text("c1".into()), Value::Text("nope".into())],
            }),
        ),
        (
            "get_int_key",
            8,
            Request::Get(KeysRequest {
                table: "accounts".into(),
                keys: vec![Value::Int(7)],
            }),
        ),
        (
            "delete_keys",
            9,
            Request::Delete(KeysRequest {
                table: "cards".into(),
                keys: vec![Value::Text("c1".into()), Value::Timestamp(5)],
            }),
        ),
        ("stats", 10, Request::Stats),
        (
            "ingest_json_lines_with_producer",
            11,
            Request::Ingest(IngestRequest {
                stream: "tx".into(),
                producer: Some(Producer { id: 42, seq: 7 }),
                body: IngestBody::Json {
                    layout: 1,
                    data: b"{\"ts\": \"2026-11-26T01:02:03Z\", \"card\": \"c1\"}\n".to_vec(),
                },
            }),
        ),
        (
            "features_now",
            13,
            Request::Features(FeaturesRequest {
                view: "card_10m".into(),
                keys: vec![Value::Text("c1".into()), Value::Text("c2".into())],
                as_of_us: None,
            }),
        ),
        (
            "features_as_of",
            14,
            Request::Features(FeaturesRequest {
                view: "card_10m".into(),
                keys: vec![Value::Text("c1".into())],
                as_of_us: Some(1_790_000_000_000_000),
            }),
        ),
        (
            "history_pairs",
            15,
            Request::History(HistoryRequest {
                view: "card_10m".into(),
                pairs: vec![
                    (Value::Text("c1".into()), 1_790_000_000_000_000),
                    (Value::Text("c1".into()), 1_790_000_060_000_000),
                ],
            }),
        ),
        (
            "ingest_rows",
            12,
            Request::Ingest(IngestRequest {
                stream: "tx".into(),
                producer: None,
                body: IngestBody::Rows {
                    columns: vec!["ts".into(), "card".into()],
                    rows: vec![vec![
                        Value::Timestamp(1_790_000_000_000_000),
                        Value::Text("c1".into()),
                    ]],
                },
            }),
        ),
        (
            "get_every_value_type",
            0x0102_0304_0506_0708,
            Request::Get(KeysRequest {
                table: "v".into(),
                keys: all_values(),
            }),
        ),
        (
            "upsert_vector_column",
            0x21,
            Request::Upsert(UpsertRequest {
                table: "docs".into(),
                mode: UpsertMode::Replace,
                columns: vec!["id".into(), "emb".into()],
                rows: vec![
                    vec![Value::Int(1), Value::Vector(vec![1.0, -2.5, 0.1].into())],
                    vec![Value::Int(2), Value::Null],
                ],
            }),
        ),
    ]
    .into_iter()
    .chain(knn_requests())
    .chain(context_requests())
    .chain(recent_requests())
    .collect()
}

pub fn sample_responses() -> Vec<(&'static str, u64, Response)> {
    let cols = vec![
        Column {
            name: "card_id".into(),
            ty: ColumnType::Text,
        },
        Column {
            name: "flagged".into(),
            ty: ColumnType::Boolean,
        },
        Column {
            name: "risk".into(),
            ty: ColumnType::Double,
        },
    ];
    vec![
        (
            "hello_reply",
            1,
            Response::Hello(HelloReply {
                version: 1,
                server_version: "tarnd 0.1.0".into(),
                shard_count: 4,
                max_frame_payload_bytes: limits::MAX_FRAME_PAYLOAD_BYTES,
                max_batch_rows: limits::MAX_BATCH_ROWS,
                max_in_flight: limits::MAX_IN_FLIGHT_PER_CONNECTION,
            }),
        ),
        ("pong", 3, Response::Pong(b"tarn".to_vec())),
        (
            "sql_reply_ddl",
            4,
            Response::Sql(SqlReply {
                message: "CREATE TABLE".into(),
                columns: vec![],
                rows: vec![],
            }),
        ),
        (
            "sql_reply_every_type",
            4,
            Response::Sql(SqlReply {
                message: "SELECT 2".into(),
                columns: vec![
                    Column {
                        name: "b".into(),
                        ty: ColumnType::Boolean,
                    },
                    Column {
                        name: "i".into(),
                        ty: ColumnType::BigInt,
                    },
                    Column {
                        name: "d".into(),
                        ty: ColumnType::Double,
                    },
                    Column {
                        name: "s".into(),
                        ty: ColumnType::Text,
                    },
                    Column {
                        name: "x".into(),
                        ty: ColumnType::Bytes,
                    },
                    Column {
                        name: "ts".into(),
                        ty: ColumnType::Timestamp,
                    },
                ],
                rows: vec![
                    vec![
                        Value::Bool(false),
                        Value::Int(i64::MAX),
                        Value::Double(-1.0e-3),
                        Value::Text("".into()),
                        Value::Bytes(vec![]),
                        Value::Timestamp(0),
                    ],
                    vec![
                        Value::Null,
                        Value::Int(i64::MIN),
                        Value::Null,
                        Value::Text("ü".into()),
                        Value::Bytes(vec![0]),
                        Value::Null,
                    ],
                ],
            }),
        ),
        (
            "upsert_reply",
            5,
            Response::Upsert(UpsertReply { rows_applied: 2 }),
        ),
        (
            "get_reply_found_and_missing",
            7,
            Response::Get(GetReply {
                columns: cols,
                rows: vec![
                    Some(vec![
                        Value::Text("c1".into()),
                        Value::Bool(true),
                        Value::Double(0.9),
                    ]),
                    None,
                ],
            }),
        ),
        (
            "delete_reply",
            9,
            Response::Delete(DeleteReply { rows_deleted: 1 }),
        ),
        (
            "ingest_reply",
            11,
            Response::Ingest(IngestReply {
                events: 1,
                duplicate: false,
            }),
        ),
        (
            "features_reply",
            13,
            Response::Features(FeaturesReply {
                as_of_us: 1_790_000_000_000_000,
                columns: vec![
                    Column {
                        name: "card_id".into(),
                        ty: ColumnType::Text,
                    },
                    Column {
                        name: "txns".into(),
                        ty: ColumnType::BigInt,
                    },
                    Column {
                        name: "max_amount".into(),
                        ty: ColumnType::Double,
                    },
                ],
                rows: vec![
                    FeatureRow {
                        as_of_us: 1_790_000_000_000_000,
                        newest_event_time_us: Some(1_789_999_999_000_000),
                        values: vec![Value::Text("c1".into()), Value::Int(3), Value::Double(12.5)],
                    },
                    FeatureRow {
                        as_of_us: 1_790_000_000_000_000,
                        newest_event_time_us: None,
                        values: vec![Value::Text("c2".into()), Value::Int(0), Value::Null],
                    },
                ],
            }),
        ),
        (
            "history_reply",
            15,
            Response::History(HistoryReply {
                columns: vec![
                    Column {
                        name: "card_id".into(),
                        ty: ColumnType::Text,
                    },
                    Column {
                        name: "txns".into(),
                        ty: ColumnType::BigInt,
                    },
                ],
                rows: vec![FeatureRow {
                    as_of_us: 1_790_000_000_000_000,
                    newest_event_time_us: Some(1_789_999_999_000_000),
                    values: vec![Value::Text("c1".into()), Value::Int(3)],
                }],
            }),
        ),
        (
            "ingest_reply_duplicate",
            12,
            Response::Ingest(IngestReply {
                events: 1,
                duplicate: true,
            }),
        ),
        (
            "stats_reply",
            10,
            Response::Stats(StatsReply {
                shards: vec![
                    ShardStats {
                        shard: 0,
                        cpu: 2,
                        rows: 1000,
                        log_bytes: 65536,
                        durable_lsn: 77,
                        connections: 3,
                        ops: vec![
                            OpStats {
                                op: "GET".into(),
                                count: 500,
                                p50_us: 12,
                                p99_us: 40,
                                p999_us: 90,
                                max_us: 300,
                            },
                            OpStats {
                                op: "UPSERT".into(),
                                count: 20,
                                p50_us: 150,
                                p99_us: 900,
                                p999_us: 1200,
                                max_us: 2000,
                            },
                        ],
                        indexes: vec![IndexStats {
                            index: "docs_emb".into(),
                            rows_indexed: 990,
                            rows_pending: 10,
                            tombstones: 4,
                            memory_bytes: 1 << 20,
                        }],
                    },
                    ShardStats {
                        shard: 1,
                        cpu: -1,
                        rows: 0,
                        log_bytes: 0,
                        durable_lsn: 0,
                        connections: 0,
                        ops: vec![],
                        indexes: vec![],
                    },
                ],
            }),
        ),
        (
            "error_malformed",
            6,
            Response::error(
                ErrorCode::Malformed,
                "UPSERT: truncated at payload offset 37: need 8 bytes for BIGINT, 3 left",
            ),
        ),
        (
            "error_unknown_table",
            7,
            Response::error(ErrorCode::UnknownTable, "table \"nope\" does not exist"),
        ),
        (
            "error_type_mismatch_row_column",
            5,
            Response::Error(
                ErrorReply::new(ErrorCode::TypeMismatch, "expected DOUBLE, got TEXT")
                    .with_row(3)
                    .with_column("risk"),
            ),
        ),
        (
            "error_wrong_arity_row_only",
            6,
            Response::Error(
                ErrorReply::new(ErrorCode::Malformed, "row has 1 values, expected 2").with_row(1),
            ),
        ),
        (
            "error_handshake_required",
            1,
            Response::error(
                ErrorCode::HandshakeRequired,
                "the first request must be HELLO",
            ),
        ),
        (
            "error_frame_too_large",
            12,
            Response::error(
                ErrorCode::FrameTooLarge,
                "frame payload of 9000000 bytes exceeds limit of 8388608 bytes",
            ),
        ),
        (
            "error_too_many_connections_id0",
            0,
            Response::error(
                ErrorCode::TooManyConnections,
                "shard 0 has 1024 connections",
            ),
        ),
        (
            "error_busy",
            13,
            Response::error(ErrorCode::Busy, "shard 2 queue full, retry"),
        ),
        (
            "sql_reply_create_view_backfill",
            4,
            Response::Sql(SqlReply {
                message: "CREATE MATERIALIZED VIEW card_10m (back-filled 1200 events)".into(),
                columns: vec![
                    Column {
                        name: "view".into(),
                        ty: ColumnType::Text,
                    },
                    Column {
                        name: "backfilled_events".into(),
                        ty: ColumnType::BigInt,
                    },
                ],
                rows: vec![vec![Value::Text("card_10m".into()), Value::Int(1200)]],
            }),
        ),
        (
            "sql_reply_two_statements",
            4,
            Response::Sql(SqlReply {
                message: "CREATE TABLE cards\n1 table(s)".into(),
                columns: vec![
                    Column {
                        name: "table".into(),
                        ty: ColumnType::Text,
                    },
                    Column {
                        name: "key".into(),
                        ty: ColumnType::Text,
                    },
                    Column {
                        name: "columns".into(),
                        ty: ColumnType::BigInt,
                    },
                ],
                rows: vec![vec![
                    Value::Text("cards".into()),
                    Value::Text("card_id".into()),
                    Value::Int(3),
                ]],
            }),
        ),
    ]
    .into_iter()
    .chain(error_vectors())
    .chain(knn_responses())
    .chain(context_responses())
    .chain(recent_responses())
    .collect()
}

/// One ERROR reply per error code not covered above (the vector test requires every code).
fn error_vectors() -> Vec<(&'static str, u64, Response)> {
    let e = |code, message: &str| ErrorReply::new(code, message);
    let resp = |r: ErrorReply| Response::Error(r);
    vec![
        (
            "error_unknown_opcode",
            14,
            resp(e(ErrorCode::UnknownOpcode, "unknown request opcode 0x0042")),
        ),
        (
            "error_unsupported_version",
            1,
            resp(e(
                ErrorCode::UnsupportedVersion,
                "client speaks protocol versions 2..=3, server speaks 1..=1",
            )),
        ),
        (
            "error_auth_failed",
            1,
            resp(e(
                ErrorCode::AuthFailed,
                "authentication failed: wrong or missing token",
            )),
        ),
        (
            "error_batch_too_large",
            15,
            resp(e(
                ErrorCode::BatchTooLarge,
                "GET: key count 10001 exceeds limit 10000 at payload offset 9",
            )),
        ),
        (
            "error_too_many_in_flight",
            16,
            resp(e(
                ErrorCode::TooManyInFlight,
                "more than 256 requests in flight on this connection (MAX_IN_FLIGHT_PER_CONNECTION); wait for replies",
            )),
        ),
        (
            "error_invalid_utf8",
            17,
            resp(e(
                ErrorCode::InvalidUtf8,
                "SQL: invalid UTF-8 in SQL text at payload offset 6",
            )),
        ),
        (
            "error_bad_request_id_id0",
            0,
            resp(e(
                ErrorCode::BadRequestId,
                "request id 0 is reserved for connection-level errors; number requests from 1",
            )),
        ),
        (
            "error_timeout_id0",
            0,
            resp(e(
                ErrorCode::Timeout,
                "idle for 300 s (--idle-timeout-s): connection closed",
            )),
        ),
        (
            "error_sql_parse",
            4,
            resp(e(
                ErrorCode::SqlParse,
                "SQL parse error: Expected: an SQL statement, found: SELEKT at Line: 1, Column: 1",
            )),
        ),
        (
            "error_unsupported",
            4,
            resp(e(
                ErrorCode::Unsupported,
                "not supported: DOUBLE primary key on column \"id\" (NaN and -0.0 make DOUBLE equality ambiguous)",
            )),
        ),
        (
            "error_sql_second_of_three_statements",
            4,
            resp(
                e(
                    ErrorCode::TableExists,
                    "statement 2 of 3 failed (statement 1 was applied, the statements after it were not run): table \"cards\" already exists",
                )
                .with_row(1),
            ),
        ),
        (
            "error_unknown_column",
            5,
            resp(
                e(
                    ErrorCode::UnknownColumn,
                    "table \"cards\" has no column \"nope\"",
                )
                .with_column("nope"),
            ),
        ),
        (
            "error_duplicate_column",
            5,
            resp(
                e(
                    ErrorCode::DuplicateColumn,
                    "column \"risk\" is listed more than once",
                )
                .with_column("risk"),
            ),
        ),
        (
            "error_null_key",
            7,
            resp(
                e(
                    ErrorCode::NullKey,
                    "row 1, column \"card_id\": primary key is NULL",
                )
                .with_row(1)
                .with_column("card_id"),
            ),
        ),
        (
            "error_missing_key",
            5,
            resp(
                e(
                    ErrorCode::MissingKey,
                    "primary key column \"card_id\" is missing from the column list",
                )
                .with_column("card_id"),
            ),
        ),
        (
            "error_value_too_long",
            5,
            resp(
                e(
                    ErrorCode::ValueTooLong,
                    "row 0, column \"photo\": value is 1048577 bytes, the limit is 1048576",
                )
                .with_row(0)
                .with_column("photo"),
            ),
        ),
        (
            "error_non_finite_double",
            5,
            resp(
                e(
                    ErrorCode::NonFiniteDouble,
                    "row 2, column \"risk\": DOUBLE value must be finite (NaN and infinity are not allowed)",
                )
                .with_row(2)
                .with_column("risk"),
            ),
        ),
        (
            "error_batch_empty",
            15,
            resp(e(ErrorCode::BatchEmpty, "batch is empty")),
        ),
        (
            "error_unknown_stream",
            11,
            resp(e(ErrorCode::UnknownStream, "stream \"tx\" does not exist")),
        ),
        (
            "error_stream_exists",
            4,
            resp(e(ErrorCode::StreamExists, "\"tx\" already exists")),
        ),
        (
            "error_bad_event",
            11,
            resp(
                e(
                    ErrorCode::BadEvent,
                    "row 4, column \"amount\": expected a number, got a string",
                )
                .with_row(4)
                .with_column("amount"),
            ),
        ),
        (
            "error_missing_value",
            11,
            resp(
                e(
                    ErrorCode::MissingValue,
                    "row 0, column \"ts\": a value is required (missing or null)",
                )
                .with_row(0)
                .with_column("ts"),
            ),
        ),
        (
            "error_future_event",
            11,
            resp(
                e(
                    ErrorCode::FutureEvent,
                    "row 123, column \"ts\": event time 1790000600000000 µs is more than 60000000 µs after the server's clock (1790000000000000 µs)",
                )
                .with_row(123)
                .with_column("ts"),
            ),
        ),
        (
            "error_unknown_view",
            13,
            resp(e(
                ErrorCode::UnknownView,
                "feature view \"card_10m\" does not exist",
            )),
        ),
        (
            "error_limit_exceeded",
            4,
            resp(e(
                ErrorCode::LimitExceeded,
                "limit exceeded: materialized view \"card_10m\" has more than 64 aggregates",
            )),
        ),
        (
            "error_invalid_argument_pair",
            15,
            resp(
                e(
                    ErrorCode::InvalidArgument,
                    "as-of time 1790000060000000 is not in the past (server clock 1790000000000000); read the current values without as_of",
                )
                .with_row(1),
            ),
        ),
        (
            "error_shutting_down",
            18,
            resp(e(ErrorCode::ShuttingDown, "server is shutting down")),
        ),
        (
            "error_storage",
            4,
            resp(e(
                ErrorCode::Storage,
                "cannot write the catalog: No space left on device (os error 28)",
            )),
        ),
        (
            "error_internal",
            19,
            resp(e(ErrorCode::Internal, "shard 1 dropped the request")),
        ),
        (
            "get_reply_vector_column",
            0x22,
            Response::Get(GetReply {
                columns: vec![
                    Column {
                        name: "id".into(),
                        ty: ColumnType::BigInt,
                    },
                    Column {
                        name: "emb".into(),
                        ty: ColumnType::Vector(3),
                    },
                ],
                rows: vec![
                    Some(vec![
                        Value::Int(1),
                        Value::Vector(vec![1.0, -2.5, 0.1].into()),
                    ]),
                    None,
                ],
            }),
        ),
        (
            "error_bad_vector",
            0x23,
            resp(
                e(
                    ErrorCode::BadVector,
                    "row 0, column \"emb\": vector has 2 dimensions, expected 3",
                )
                .with_row(0),
            ),
        ),
        (
            "error_unknown_index",
            0x24,
            resp(e(ErrorCode::UnknownIndex, "unknown index \"docs_emb\"")),
        ),
        (
            "error_unknown_context",
            0x25,
            resp(e(ErrorCode::UnknownContext, "context \"fraud_check\" does not exist")),
        ),
        (
            "error_unknown_model",
            0x26,
            resp(e(ErrorCode::UnknownModel, "unknown model \"fraud_lr\"")),
        ),
    ]
}

/// Frames the decoder must refuse, with the error code it must give: `(name, frame, code)`.
pub fn sample_bad_frames() -> Vec<(&'static str, Vec<u8>, ErrorCode)> {
    // GET of table "docs" with one key: a vector value announcing 4,097 components (one over
    // MAX_VECTOR_COMPONENTS), refused before anything is allocated or read.
    let mut p = Vec::new();
    p.extend_from_slice(&4u32.to_le_bytes());
    p.extend_from_slice(b"docs");
    p.extend_from_slice(&1u32.to_le_bytes());
    p.push(7);
    p.extend_from_slice(&(limits::MAX_VECTOR_COMPONENTS + 1).to_le_bytes());
    p.extend_from_slice(&[0; 8]);
    let over = FrameHeader {
        opcode: Opcode::Get.as_u16(),
        flags: 0,
        request_id: 0x24,
        payload_len: p.len() as u32,
    };
    let mut frame = over.encode().to_vec();
    frame.extend_from_slice(&p);
    let mut frames = vec![("get_vector_count_over_limit", frame, ErrorCode::BadVector)];
    frames.extend(knn_bad_frames());
    frames.extend(context_bad_frames());
    frames
}

pub fn request_frame(id: u64, req: &Request) -> Vec<u8> {
    let mut out = Vec::new();
    encode_request(id, req, &mut out);
    out
}

pub fn response_frame(id: u64, resp: &Response) -> Vec<u8> {
    let mut out = Vec::new();
    encode_response(id, resp, &mut out);
    out
}

pub fn header(frame: &[u8]) -> FrameHeader {
    FrameHeader::decode(frame[..HEADER_LEN].try_into().unwrap())
}
