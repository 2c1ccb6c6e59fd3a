//! KNN sample messages, shared by the codec tests and the vector generator.

use tarn_net::*;

fn knn(query: KnnQuery, k: u32, ef: Option<u32>, filter: &str, columns: &[&str]) -> Request {
    Request::Knn(KnnRequest {
        index: "docs_emb".into(),
        query,
        k,
        ef,
        filter: filter.into(),
        columns: columns.iter().map(|c| (*c).to_owned()).collect(),
    })
}

pub fn knn_requests() -> Vec<(&'static str, u64, Request)> {
    vec![
        (
            "knn_vector",
            0x30,
            knn(KnnQuery::Vector(vec![1.0, -2.5, 0.1]), 10, None, "", &[]),
        ),
        (
            "knn_vector_ef_filter_columns",
            0x31,
            knn(
                KnnQuery::Vector(vec![0.5, 0.25, -0.125]),
                3,
                Some(64),
                "lang = 'en' AND year >= 2020",
                &["id", "title"],
            ),
        ),
        (
            "knn_like_int_key",
            0x32,
            knn(KnnQuery::Like(Value::Int(7)), 5, None, "", &["id"]),
        ),
        (
            "knn_like_text_key",
            0x33,
            knn(
                KnnQuery::Like(Value::Text("doc-7".into())),
                1,
                Some(1000),
                "",
                &[],
            ),
        ),
    ]
}

pub fn knn_responses() -> Vec<(&'static str, u64, Response)> {
    let col = |name: &str, ty| Column {
        name: name.into(),
        ty,
    };
    vec![
        (
            "knn_reply",
            0x31,
            Response::Knn(KnnReply {
                columns: vec![
                    col("id", ColumnType::BigInt),
                    col("title", ColumnType::Text),
                    col("emb", ColumnType::Vector(3)),
                ],
                rows: vec![
                    KnnRow {
                        distance: 0.0,
                        values: vec![
                            Value::Int(7),
                            Value::Text("near".into()),
                            Value::Vector(vec![0.5, 0.25, -0.125].into()),
                        ],
                    },
                    KnnRow {
                        distance: 1.5,
                        values: vec![Value::Int(3), Value::Null, Value::Null],
                    },
                ],
                distances: 412,
            }),
        ),
        (
            "knn_reply_empty",
            0x30,
            Response::Knn(KnnReply {
                columns: vec![col("id", ColumnType::BigInt)],
                rows: vec![],
                distances: 0,
            }),
        ),
    ]
}

/// The payload of a KNN request up to (not including) its query, for hand-made bad frames:
/// index `docs_emb`, k 10, no ef.
pub fn knn_payload_head() -> Vec<u8> {
    let mut p = Vec::new();
    p.extend_from_slice(&8u32.to_le_bytes());
    p.extend_from_slice(b"docs_emb");
    p.extend_from_slice(&10u32.to_le_bytes());
    p.push(0);
    p
}

pub fn frame_of(op: Opcode, request_id: u64, payload: &[u8]) -> Vec<u8> {
    let h = FrameHeader {
        opcode: op.as_u16(),
        flags: 0,
        request_id,
        payload_len: payload.len() as u32,
    };
    let mut frame = h.encode().to_vec();
    frame.extend_from_slice(payload);
    frame
}

/// KNN frames the decoder refuses: `(name, frame, code)`.
pub fn knn_bad_frames() -> Vec<(&'static str, Vec<u8>, ErrorCode)> {
    // A query vector announcing one component more than a vector can have.
    let mut over = knn_payload_head();
    over.push(1);
    over.extend_from_slice(&(limits::MAX_VECTOR_COMPONENTS + 1).to_le_bytes());
    over.extend_from_slice(&[0; 8]);
    // A query kind byte that is neither 1 (vector) nor 2 (like).
    let mut kind = knn_payload_head();
    kind.push(3);
    // A filter one byte over MAX_FILTER_BYTES.
    let mut filter = knn_payload_head();
    filter.push(2);
    filter.extend_from_slice(&[2, 7, 0, 0, 0, 0, 0, 0, 0]);
    filter.extend_from_slice(&(limits::MAX_FILTER_BYTES + 1).to_le_bytes());
    filter.extend_from_slice(&[b'x'; 8]);
    vec![
        (
            "knn_query_count_over_limit",
            frame_of(Opcode::Knn, 0x34, &over),
            ErrorCode::BadVector,
        ),
        (
            "knn_bad_query_kind",
            frame_of(Opcode::Knn, 0x35, &kind),
            ErrorCode::Malformed,
        ),
        (
            "knn_filter_over_limit",
            frame_of(Opcode::Knn, 0x36, &filter),
            ErrorCode::ValueTooLong,
        ),
    ]
}
