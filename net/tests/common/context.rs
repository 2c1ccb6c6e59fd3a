//! CONTEXT sample messages, shared by the codec tests and the vector generator.

use tarn_net::*;

use super::knn::frame_of;

pub fn context_requests() -> Vec<(&'static str, u64, Request)> {
    vec![
        (
            "context_named",
            0x40,
            Request::Context(ContextRequest {
                call: ContextCall::Named("fraud_check".into()),
                params: vec![
                    ("card_id".into(), Value::Text("c-1".into())),
                    ("amount".into(), Value::Double(12.5)),
                ],
            }),
        ),
        (
            "context_ad_hoc",
            0x41,
            Request::Context(ContextRequest {
                call: ContextCall::AdHoc(
                    "row(cards, 'c-1') AS card, features(card_10m, card.card_id) AS f".into(),
                ),
                params: vec![],
            }),
        ),
    ]
}

pub fn context_responses() -> Vec<(&'static str, u64, Response)> {
    let col = |name: &str, ty| Column {
        name: name.into(),
        ty,
    };
    vec![(
        "context_reply",
        0x40,
        Response::Context(ContextReply {
            shards: vec![
                ShardAsOf {
                    shard: 0,
                    as_of_us: 1_714_564_800_000_000,
                },
                ShardAsOf {
                    shard: 1,
                    as_of_us: 1_714_564_800_000_007,
                },
            ],
            items: vec![
                ContextItemReply {
                    name: "card".into(),
                    columns: vec![
                        col("card_id", ColumnType::Text),
                        col("risk", ColumnType::Double),
                    ],
                    groups: vec![ContextGroup {
                        key: Value::Text("c-1".into()),
                        rows: vec![vec![Value::Text("c-1".into()), Value::Double(0.5)]],
                    }],
                },
                ContextItemReply {
                    name: "similar".into(),
                    columns: vec![
                        col("distance", ColumnType::Double),
                        col("id", ColumnType::BigInt),
                    ],
                    groups: vec![ContextGroup {
                        key: Value::Int(7),
                        rows: vec![
                            vec![Value::Double(0.0), Value::Int(7)],
                            vec![Value::Double(1.5), Value::Int(3)],
                        ],
                    }],
                },
                ContextItemReply {
                    name: "account".into(),
                    columns: vec![col("owner", ColumnType::Text)],
                    groups: vec![],
                },
            ],
        }),
    )]
}

pub fn context_bad_frames() -> Vec<(&'static str, Vec<u8>, ErrorCode)> {
    // A call kind byte that is neither 1 (named) nor 2 (ad hoc).
    let kind = vec![3u8, 0, 0, 0, 0];
    // A named call announcing one parameter more than MAX_CONTEXT_PARAMS.
    let mut params = vec![1u8, 1, 0, 0, 0, b'c'];
    params.extend_from_slice(&(limits::MAX_CONTEXT_PARAMS + 1).to_le_bytes());
    params.extend_from_slice(&[0; 200]);
    vec![
        (
            "context_bad_call_kind",
            frame_of(Opcode::Context, 0x42, &kind),
            ErrorCode::Malformed,
        ),
        (
            "context_params_over_limit",
            frame_of(Opcode::Context, 0x43, &params),
            ErrorCode::Malformed,
        ),
    ]
}
