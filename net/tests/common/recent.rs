//! Sample RECENT messages.

use tarn_net::*;

pub fn recent_requests() -> Vec<(&'static str, u64, Request)> {
    vec![
        (
            "recent_two_keys_all_columns",
            0x30,
            Request::Recent(RecentRequest {
                stream: "tx".into(),
                keys: vec![Value::Text("c1".into()), Value::Text("c2".into())],
                n: 5,
                columns: vec![],
            }),
        ),
        (
            "recent_columns",
            0x31,
            Request::Recent(RecentRequest {
                stream: "tx".into(),
                keys: vec![Value::Int(7)],
                n: 1,
                columns: vec!["amount".into(), "ts".into()],
            }),
        ),
    ]
}

pub fn recent_responses() -> Vec<(&'static str, u64, Response)> {
    vec![(
        "recent_reply_known_and_unknown_key",
        0x30,
        Response::Recent(RecentReply {
            columns: vec![
                Column {
                    name: "ts".into(),
                    ty: ColumnType::Timestamp,
                },
                Column {
                    name: "amount".into(),
                    ty: ColumnType::Double,
                },
            ],
            keys: vec![
                vec![
                    vec![Value::Timestamp(1_790_000_000_500_000), Value::Double(12.5)],
                    vec![Value::Timestamp(1_790_000_000_000_000), Value::Null],
                ],
                vec![],
            ],
        }),
    )]
}
