//! KNN request and reply codec: round trips over random shapes, and the frames the decoder
//! refuses (layout only: `k` and `ef` values are the server's to judge).

mod common;

use common::*;
use rand::{Rng, SeedableRng};
use tarn_net::*;

fn roundtrip_request(req: &Request) {
    let f = request_frame(9, req);
    let h = header(&f);
    assert_eq!(h.op(), Some(Opcode::Knn));
    assert_eq!(decode_request(&h, &f[HEADER_LEN..]).unwrap(), *req);
}

fn roundtrip_response(resp: &Response) {
    let f = response_frame(9, resp);
    let h = header(&f);
    assert_eq!(h.op(), Some(Opcode::Knn));
    assert_eq!(decode_response(&h, &f[HEADER_LEN..]).unwrap(), *resp);
}

fn random_text(rng: &mut impl Rng, max: usize) -> String {
    const CHARS: [char; 12] = ['a', 'b', ' ', 'c', '\'', '=', '<', '>', '(', 'é', '_', '1'];
    let n = rng.random_range(0..=max);
    (0..n)
        .map(|_| CHARS[rng.random_range(0..CHARS.len())])
        .collect()
}

/// Any f32 bit pattern: the codec carries NaN payloads, infinities and -0 bit for bit.
fn random_f32s(rng: &mut impl Rng, n: usize) -> Vec<f32> {
    (0..n).map(|_| f32::from_bits(rng.random())).collect()
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn random_knn_requests_roundtrip_bit_exactly() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x6b6e6e);
    for _ in 0..500 {
        let dim = rng.random_range(0..=64);
        let v = random_f32s(&mut rng, dim);
        let req = KnnRequest {
            index: random_text(&mut rng, 12),
            query: KnnQuery::Vector(v.clone()),
            k: rng.random(),
            ef: rng.random_bool(0.5).then(|| rng.random()),
            filter: random_text(&mut rng, 40),
            columns: (0..rng.random_range(0..5))
                .map(|_| random_text(&mut rng, 8))
                .collect(),
        };
        let f = request_frame(1, &Request::Knn(req.clone()));
        let h = header(&f);
        let Request::Knn(got) = decode_request(&h, &f[HEADER_LEN..]).unwrap() else {
            panic!("not a KNN request")
        };
        // NaN != NaN: compare the vector by bits and the rest by value.
        let KnnQuery::Vector(got_v) = &got.query else {
            panic!("query kind changed")
        };
        assert_eq!(bits(got_v), bits(&v));
        let without_query = |r: KnnRequest| KnnRequest {
            query: KnnQuery::Vector(vec![]),
            ..r
        };
        assert_eq!(without_query(got), without_query(req));
    }
}

#[test]
fn like_queries_roundtrip_with_every_key_type() {
    for key in all_values()
        .into_iter()
        .chain([Value::Vector(vec![1.0, 2.0].into())])
    {
        roundtrip_request(&Request::Knn(KnnRequest {
            index: "i".into(),
            query: KnnQuery::Like(key),
            k: 1,
            ef: None,
            filter: String::new(),
            columns: vec![],
        }));
    }
}

#[test]
fn limits_that_are_the_servers_to_judge_decode() {
    // k = 0, k over MAX_KNN_K, ef = 0 and ef over MAX_KNN_EF all decode: the server answers
    // them INVALID_ARGUMENT / LIMIT_EXCEEDED naming the value. An empty vector decodes too.
    for (k, ef) in [
        (0, None),
        (limits::MAX_KNN_K + 1, None),
        (u32::MAX, Some(0)),
        (10, Some(limits::MAX_KNN_EF + 1)),
    ] {
        roundtrip_request(&Request::Knn(KnnRequest {
            index: "i".into(),
            query: KnnQuery::Vector(vec![]),
            k,
            ef,
            filter: "x".repeat(limits::MAX_FILTER_BYTES as usize),
            columns: vec!["c".into(); limits::MAX_KNN_COLUMNS as usize],
        }));
    }
}

#[test]
fn random_knn_replies_roundtrip() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x7265706c79);
    let values = all_values();
    for _ in 0..200 {
        let arity = rng.random_range(0..4);
        let columns: Vec<Column> = (0..arity)
            .map(|i| Column {
                name: format!("c{i}"),
                ty: ColumnType::Vector(rng.random_range(1..=8)),
            })
            .collect();
        let rows = (0..rng.random_range(0..20))
            .map(|_| KnnRow {
                // Finite distances only: a NaN row would not compare equal to itself.
                distance: rng.random_range(-4.0f32..4.0),
                values: (0..arity)
                    .map(|_| values[rng.random_range(0..values.len())].clone())
                    .collect(),
            })
            .collect();
        roundtrip_response(&Response::Knn(KnnReply {
            columns,
            rows,
            distances: rng.random(),
        }));
    }
}

fn knn_request_payload() -> Vec<u8> {
    let req = Request::Knn(KnnRequest {
        index: "docs_emb".into(),
        query: KnnQuery::Vector(vec![1.0, 2.0]),
        k: 10,
        ef: Some(40),
        filter: "a = 1".into(),
        columns: vec!["id".into()],
    });
    request_frame(1, &req)[HEADER_LEN..].to_vec()
}

fn decode_knn(payload: &[u8]) -> Result<Request, DecodeError> {
    decode_request(&header(&frame_of(Opcode::Knn, 1, payload)), payload)
}

#[test]
fn refused_request_layouts_say_what_and_where() {
    let good = knn_request_payload();
    // index: 4 + 8, k: 4, ef flag at 16.
    let mut bad_ef = good.clone();
    bad_ef[16] = 2;
    let e = decode_knn(&bad_ef).unwrap_err();
    assert_eq!(e.code, ErrorCode::Malformed);
    assert_eq!(e.message, "KNN: invalid ef flag 2 at payload offset 16");

    let mut trailing = good.clone();
    trailing.push(0);
    let e = decode_knn(&trailing).unwrap_err();
    assert_eq!(
        e.message,
        format!("KNN: 1 trailing bytes at payload offset {}", good.len())
    );

    let e = decode_knn(&good[..good.len() - 1]).unwrap_err();
    assert_eq!(e.code, ErrorCode::Malformed);
    assert!(e.message.starts_with("KNN: truncated"), "{e}");

    // A column count over MAX_KNN_COLUMNS, before any name is read.
    let mut cols = good[..good.len() - 4 - 2 - 4].to_vec();
    cols.extend_from_slice(&(limits::MAX_KNN_COLUMNS + 1).to_le_bytes());
    let e = decode_knn(&cols).unwrap_err();
    assert_eq!(e.code, ErrorCode::Malformed);
    assert!(
        e.message.contains("column count 1025 exceeds limit 1024"),
        "{e}"
    );
}

#[test]
fn refused_frames_in_the_vectors_file_fail_with_their_codes() {
    for (name, frame, code) in knn_bad_frames() {
        let e = decode_request(&header(&frame), &frame[HEADER_LEN..]).expect_err(name);
        assert_eq!(e.code, code, "{name}: {e}");
        assert!(!e.code.closes_connection(), "{name}");
    }
}

fn reply_payload(rows: u32, arity_of_first: u32) -> Vec<u8> {
    let mut p = Vec::new();
    p.extend_from_slice(&7u64.to_le_bytes());
    p.extend_from_slice(&1u32.to_le_bytes()); // one column
    p.extend_from_slice(&2u32.to_le_bytes());
    p.extend_from_slice(b"id");
    p.push(2); // BIGINT
    p.extend_from_slice(&rows.to_le_bytes());
    p.extend_from_slice(&0.5f32.to_le_bytes());
    p.extend_from_slice(&arity_of_first.to_le_bytes());
    for _ in 0..arity_of_first {
        p.push(0);
    }
    p
}

fn decode_knn_reply(payload: &[u8]) -> Result<Response, DecodeError> {
    let mut h = header(&frame_of(Opcode::Knn, 1, payload));
    h.flags = FLAG_RESPONSE;
    decode_response(&h, payload)
}

#[test]
fn refused_reply_layouts() {
    assert!(matches!(
        decode_knn_reply(&reply_payload(1, 1)).unwrap(),
        Response::Knn(KnnReply { distances: 7, ref rows, .. }) if rows.len() == 1
    ));
    // A row whose value count differs from the column count.
    let e = decode_knn_reply(&reply_payload(1, 2)).unwrap_err();
    assert_eq!(e.code, ErrorCode::Malformed);
    assert!(e.message.contains("row 0 has 2 values, expected 1"), "{e}");
    // More rows than any k allows, refused before allocating.
    let e = decode_knn_reply(&reply_payload(limits::MAX_KNN_K + 1, 1)).unwrap_err();
    assert_eq!(e.code, ErrorCode::Malformed);
    assert!(
        e.message.contains("KNN row count 1001 exceeds limit 1000"),
        "{e}"
    );
    // A row count the remaining bytes cannot hold.
    let e = decode_knn_reply(&reply_payload(3, 1)).unwrap_err();
    assert!(e.message.contains("needs at least 24 bytes"), "{e}");
}
