mod common;

use common::*;
use rand::{Rng, SeedableRng};
use tarn_net::*;

fn decode_req_frame(frame: &[u8]) -> Result<Request, DecodeError> {
    let h = header(frame);
    decode_request(&h, &frame[HEADER_LEN..])
}

fn decode_resp_frame(frame: &[u8]) -> Result<Response, DecodeError> {
    let h = header(frame);
    decode_response(&h, &frame[HEADER_LEN..])
}

#[test]
fn every_request_roundtrips() {
    for (name, id, req) in sample_requests() {
        let f = request_frame(id, &req);
        let h = header(&f);
        assert_eq!(h.request_id, id, "{name}");
        assert_eq!(h.flags, 0, "{name}");
        assert_eq!(h.op(), Some(req.opcode()), "{name}");
        assert_eq!(h.payload_len as usize, f.len() - HEADER_LEN, "{name}");
        assert_eq!(decode_req_frame(&f).unwrap(), req, "{name}");
        // A request frame is not a valid response frame.
        assert!(decode_resp_frame(&f).is_err(), "{name}");
    }
}

#[test]
fn every_response_roundtrips() {
    for (name, id, resp) in sample_responses() {
        let f = response_frame(id, &resp);
        let h = header(&f);
        assert_eq!(h.request_id, id, "{name}");
        assert_eq!(h.flags, FLAG_RESPONSE, "{name}");
        assert_eq!(h.op(), Some(resp.opcode()), "{name}");
        assert_eq!(decode_resp_frame(&f).unwrap(), resp, "{name}");
        assert!(decode_req_frame(&f).is_err(), "{name}");
    }
}

#[test]
fn every_value_roundtrips_including_nan_bits() {
    for v in all_values() {
        let req = Request::Get(KeysRequest {
            table: "t".into(),
            keys: vec![v.clone()],
        });
        assert_eq!(decode_req_frame(&request_frame(1, &req)).unwrap(), req);
    }
    let nan = f64::from_bits(0x7ff8_0000_0000_0abc);
    let req = Request::Get(KeysRequest {
        table: "t".into(),
        keys: vec![Value::Double(nan)],
    });
    match decode_req_frame(&request_frame(1, &req)).unwrap() {
        Request::Get(k) => match k.keys[0] {
            Value::Double(d) => assert_eq!(d.to_bits(), nan.to_bits()),
            ref v => panic!("{v:?}"),
        },
        r => panic!("{r:?}"),
    }
}

#[test]
fn vectors_roundtrip_bit_exactly_and_counts_are_checked_first() {
    let nan = f32::from_bits(0x7fc0_0abc);
    let v: Vec<f32> = vec![-0.0, f32::from_bits(1), nan, f32::INFINITY, 1.5];
    let req = Request::Get(KeysRequest {
        table: "t".into(),
        keys: vec![Value::Vector(v.clone().into()), Value::Vector(Box::new([]))],
    });
    let frame = request_frame(1, &req);
    let Request::Get(k) = decode_req_frame(&frame).unwrap() else {
        panic!()
    };
    let Value::Vector(got) = &k.keys[0] else {
        panic!("{:?}", k.keys[0])
    };
    let bits = |x: &[f32]| x.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
    assert_eq!(
        bits(got),
        bits(&v),
        "the codec carries bits; core validates"
    );
    assert_eq!(k.keys[1], Value::Vector(Box::new([])));
    // Tag 7, count, components.
    let mut value = vec![7u8];
    value.extend_from_slice(&2u32.to_le_bytes());
    value.extend_from_slice(&1.0f32.to_le_bytes());
    value.extend_from_slice(&(-2.0f32).to_le_bytes());
    let Request::Get(k) = req_with_payload(Opcode::Get, &keys_payload(&value)).unwrap() else {
        panic!()
    };
    assert_eq!(k.keys, vec![Value::Vector(vec![1.0, -2.0].into())]);
    // Over the limit: BAD_VECTOR before looking at the bytes; within it but short: MALFORMED.
    for (count, code) in [
        (limits::MAX_VECTOR_COMPONENTS + 1, ErrorCode::BadVector),
        (u32::MAX, ErrorCode::BadVector),
        (limits::MAX_VECTOR_COMPONENTS, ErrorCode::Malformed),
        (3, ErrorCode::Malformed),
    ] {
        let mut value = vec![7u8];
        value.extend_from_slice(&count.to_le_bytes());
        value.extend_from_slice(&[0; 8]);
        let e = req_with_payload(Opcode::Get, &keys_payload(&value)).unwrap_err();
        assert_eq!(e.code, code, "count {count}: {e}");
    }
}

#[test]
fn vector_column_types_carry_their_dimension() {
    let resp = Response::Get(GetReply {
        columns: vec![Column {
            name: "e".into(),
            ty: ColumnType::Vector(4096),
        }],
        rows: vec![None],
    });
    let frame = response_frame(3, &resp);
    assert_eq!(decode_resp_frame(&frame).unwrap(), resp);
    // The dimension is the u32 after tag 7: make it 0, then 4097.
    let at = frame
        .windows(5)
        .position(|w| w == [7, 0, 16, 0, 0])
        .unwrap();
    for dim in [0u32, 4097] {
        let mut bad = frame.clone();
        bad[at + 1..at + 5].copy_from_slice(&dim.to_le_bytes());
        let e = decode_resp_frame(&bad).unwrap_err();
        assert_eq!(e.code, ErrorCode::BadVector, "{e}");
        assert!(e.message.contains("vector dimension"), "{e}");
    }
}

#[test]
fn every_truncated_prefix_is_an_error() {
    for (name, id, req) in sample_requests() {
        let f = request_frame(id, &req);
        let payload = &f[HEADER_LEN..];
        let mut h = header(&f);
        for n in 0..payload.len() {
            // Header still announcing the full length: mismatch.
            assert!(decode_request(&h, &payload[..n]).is_err(), "{name} @{n}");
            h.payload_len = n as u32;
            let e = decode_request(&h, &payload[..n]).expect_err(name);
            assert_eq!(e.code, ErrorCode::Malformed, "{name} @{n}: {e}");
            h.payload_len = payload.len() as u32;
        }
    }
    for (name, id, resp) in sample_responses() {
        let f = response_frame(id, &resp);
        let payload = &f[HEADER_LEN..];
        let mut h = header(&f);
        for n in 0..payload.len() {
            h.payload_len = n as u32;
            let e = decode_response(&h, &payload[..n]).expect_err(name);
            assert_eq!(e.code, ErrorCode::Malformed, "{name} @{n}: {e}");
        }
    }
}

#[test]
fn truncation_message_names_offset_and_need() {
    let req = Request::Upsert(UpsertRequest {
        table: "t".into(),
        mode: UpsertMode::Replace,
        columns: vec!["a".into()],
        rows: vec![vec![Value::Int(5)]],
    });
    let f = request_frame(1, &req);
    // table: 4+1, mode 1, cols: 4 + 4+1, rows: 4, row count 4, tag 1 -> BIGINT at offset 24
    let mut h = header(&f);
    let payload = &f[HEADER_LEN..HEADER_LEN + 27];
    h.payload_len = 27;
    let e = decode_request(&h, payload).unwrap_err();
    assert_eq!(
        e.message,
        "UPSERT: truncated at payload offset 24: need 8 bytes for BIGINT, 3 left"
    );
}

#[test]
fn trailing_bytes_are_rejected() {
    let mut f = request_frame(1, &Request::Sql("SELECT 1".into()));
    f.push(0);
    let mut h = header(&f);
    h.payload_len += 1;
    let e = decode_request(&h, &f[HEADER_LEN..]).unwrap_err();
    assert_eq!(e.code, ErrorCode::Malformed);
    assert!(e.message.contains("1 trailing bytes"), "{e}");

    let mut f = request_frame(1, &Request::Stats);
    f.push(9);
    let mut h = header(&f);
    h.payload_len += 1;
    assert!(decode_request(&h, &f[HEADER_LEN..]).is_err());
}

#[test]
fn oversize_header_is_frame_too_large() {
    let h = FrameHeader {
        payload_len: limits::MAX_FRAME_PAYLOAD_BYTES + 1,
        opcode: Opcode::Sql.as_u16(),
        flags: 0,
        request_id: 9,
    };
    assert_eq!(
        h.check(limits::MAX_FRAME_PAYLOAD_BYTES).unwrap_err().code,
        ErrorCode::FrameTooLarge
    );
    assert!(h.check(u32::MAX).is_ok());
    // split_frame reports it from the header alone, before any payload arrives.
    let e = split_frame(&h.encode(), limits::MAX_FRAME_PAYLOAD_BYTES).unwrap_err();
    assert_eq!(e.code, ErrorCode::FrameTooLarge);
    assert!(ErrorCode::FrameTooLarge.closes_connection());
    assert!(ErrorCode::Timeout.closes_connection());
}

#[test]
fn bad_flags_and_direction_are_malformed() {
    let f = request_frame(1, &Request::Stats);
    let mut h = header(&f);
    h.flags = 0x0004;
    assert_eq!(
        decode_request(&h, &[]).unwrap_err().code,
        ErrorCode::Malformed
    );
    h.flags = FLAG_RESPONSE;
    assert_eq!(
        decode_request(&h, &[]).unwrap_err().code,
        ErrorCode::Malformed
    );
    let f = response_frame(1, &Response::Delete(DeleteReply { rows_deleted: 1 }));
    let mut h = header(&f);
    h.flags = FLAG_RESPONSE | 0x8000;
    assert_eq!(
        decode_response(&h, &f[HEADER_LEN..]).unwrap_err().code,
        ErrorCode::Malformed
    );
    h.flags = 0;
    assert_eq!(
        decode_response(&h, &f[HEADER_LEN..]).unwrap_err().code,
        ErrorCode::Malformed
    );
}

#[test]
fn unknown_opcodes() {
    for op in [0u16, 0x30, 0x42, 0xFE, 0x100, 0xFFFF] {
        let h = FrameHeader {
            payload_len: 0,
            opcode: op,
            flags: 0,
            request_id: 1,
        };
        let e = decode_request(&h, &[]).unwrap_err();
        assert_eq!(e.code, ErrorCode::UnknownOpcode, "{op}");
        assert!(!e.code.closes_connection());
    }
    // ERROR is response-only.
    let h = FrameHeader {
        payload_len: 0,
        opcode: Opcode::Error.as_u16(),
        flags: 0,
        request_id: 1,
    };
    assert_eq!(
        decode_request(&h, &[]).unwrap_err().code,
        ErrorCode::UnknownOpcode
    );
}

fn req_with_payload(op: Opcode, payload: &[u8]) -> Result<Request, DecodeError> {
    let h = FrameHeader {
        payload_len: payload.len() as u32,
        opcode: op.as_u16(),
        flags: 0,
        request_id: 1,
    };
    decode_request(&h, payload)
}

#[test]
fn bad_utf8_is_invalid_utf8() {
    let mut p = vec![];
    p.extend_from_slice(&4u32.to_le_bytes());
    p.extend_from_slice(&[b'a', 0xff, b'b', b'c']);
    let e = req_with_payload(Opcode::Sql, &p).unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidUtf8);
    assert!(e.message.contains("offset 5"), "{e}");

    // In a TEXT value of a key.
    let mut p = vec![];
    p.extend_from_slice(&1u32.to_le_bytes());
    p.push(b't');
    p.extend_from_slice(&1u32.to_le_bytes());
    p.push(ColumnType::Text.tag());
    p.extend_from_slice(&2u32.to_le_bytes());
    p.extend_from_slice(&[0xc3, 0x28]);
    assert_eq!(
        req_with_payload(Opcode::Get, &p).unwrap_err().code,
        ErrorCode::InvalidUtf8
    );
}

fn keys_payload(value_bytes: &[u8]) -> Vec<u8> {
    let mut p = vec![];
    p.extend_from_slice(&1u32.to_le_bytes());
    p.push(b't');
    p.extend_from_slice(&1u32.to_le_bytes());
    p.extend_from_slice(value_bytes);
    p
}

#[test]
fn bad_bool_byte_and_bad_tags_are_malformed() {
    assert!(req_with_payload(Opcode::Get, &keys_payload(&[1, 1])).is_ok());
    let e = req_with_payload(Opcode::Get, &keys_payload(&[1, 2])).unwrap_err();
    assert_eq!(e.code, ErrorCode::Malformed);
    assert!(e.message.contains("BOOLEAN"), "{e}");
    let e = req_with_payload(Opcode::Get, &keys_payload(&[8])).unwrap_err();
    assert_eq!(e.code, ErrorCode::Malformed);
    assert!(e.message.contains("value tag 8"), "{e}");
    // Tag 7 is a vector: a bare tag is a truncated count.
    let e = req_with_payload(Opcode::Get, &keys_payload(&[7])).unwrap_err();
    assert_eq!(e.code, ErrorCode::Malformed);
    assert!(e.message.contains("vector component count"), "{e}");
    // Upsert mode other than 0/1.
    let mut p = vec![];
    p.extend_from_slice(&1u32.to_le_bytes());
    p.push(b't');
    p.push(2);
    p.extend_from_slice(&0u32.to_le_bytes());
    p.extend_from_slice(&0u32.to_le_bytes());
    assert_eq!(
        req_with_payload(Opcode::Upsert, &p).unwrap_err().code,
        ErrorCode::Malformed
    );
}

#[test]
fn limits_on_sql_ping_and_batches() {
    let sql = "x".repeat(limits::MAX_SQL_BYTES as usize + 1);
    let f = request_frame(1, &Request::Sql(sql));
    assert_eq!(
        decode_req_frame(&f).unwrap_err().code,
        ErrorCode::ValueTooLong
    );
    let sql = "x".repeat(limits::MAX_SQL_BYTES as usize);
    assert!(decode_req_frame(&request_frame(1, &Request::Sql(sql))).is_ok());

    let f = request_frame(
        1,
        &Request::Ping(vec![0; limits::MAX_PING_BYTES as usize + 1]),
    );
    assert_eq!(
        decode_req_frame(&f).unwrap_err().code,
        ErrorCode::ValueTooLong
    );

    let keys = vec![Value::Null; limits::MAX_BATCH_ROWS as usize + 1];
    let f = request_frame(
        1,
        &Request::Delete(KeysRequest {
            table: "t".into(),
            keys,
        }),
    );
    assert_eq!(
        decode_req_frame(&f).unwrap_err().code,
        ErrorCode::BatchTooLarge
    );
    let rows = vec![vec![]; limits::MAX_BATCH_ROWS as usize];
    let f = request_frame(
        1,
        &Request::Upsert(UpsertRequest {
            table: "t".into(),
            mode: UpsertMode::Replace,
            columns: vec![],
            rows,
        }),
    );
    assert!(decode_req_frame(&f).is_ok());
}

#[test]
fn huge_counts_fail_before_allocating() {
    // These would allocate gigabytes if the count were trusted; the test finishing at all (and
    // quickly) shows they are not. tests/alloc.rs measures it with a counting allocator.
    for op in [Opcode::Get, Opcode::Delete] {
        let mut p = vec![];
        p.extend_from_slice(&1u32.to_le_bytes());
        p.push(b't');
        p.extend_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(
            req_with_payload(op, &p).unwrap_err().code,
            ErrorCode::BatchTooLarge
        );
        let mut p = vec![];
        p.extend_from_slice(&1u32.to_le_bytes());
        p.push(b't');
        p.extend_from_slice(&10_000u32.to_le_bytes());
        p.extend_from_slice(&[0; 100]);
        assert_eq!(
            req_with_payload(op, &p).unwrap_err().code,
            ErrorCode::Malformed
        );
    }
    // A string claiming 4 GiB.
    let mut p = vec![];
    p.extend_from_slice(&u32::MAX.to_le_bytes());
    p.extend_from_slice(b"abc");
    assert_eq!(
        req_with_payload(Opcode::Hello, &[1, 0, 1, 0, 0xff, 0xff, 0xff, 0xff])
            .unwrap_err()
            .code,
        ErrorCode::Malformed
    );
    assert_eq!(
        req_with_payload(Opcode::Sql, &p).unwrap_err().code,
        ErrorCode::ValueTooLong
    );
    // Response side: row counts up to u32::MAX are checked against remaining bytes.
    let mut p = vec![];
    p.extend_from_slice(&0u32.to_le_bytes()); // no columns
    p.extend_from_slice(&u32::MAX.to_le_bytes());
    let h = FrameHeader {
        payload_len: p.len() as u32,
        opcode: Opcode::Get.as_u16(),
        flags: FLAG_RESPONSE,
        request_id: 1,
    };
    assert_eq!(
        decode_response(&h, &p).unwrap_err().code,
        ErrorCode::Malformed
    );
}

#[test]
fn reply_rows_must_match_columns() {
    let resp = Response::Sql(SqlReply {
        message: String::new(),
        columns: vec![Column {
            name: "a".into(),
            ty: ColumnType::BigInt,
        }],
        rows: vec![vec![Value::Int(1), Value::Int(2)]],
    });
    let e = decode_resp_frame(&response_frame(1, &resp)).unwrap_err();
    assert!(e.message.contains("row 0 has 2 values, expected 1"), "{e}");
}

#[test]
fn unknown_error_code_decodes_to_catch_all() {
    let resp = Response::error(ErrorCode::Busy, "later");
    let mut f = response_frame(1, &resp);
    f[HEADER_LEN..HEADER_LEN + 2].copy_from_slice(&999u16.to_le_bytes());
    match decode_resp_frame(&f).unwrap() {
        Response::Error(e) => {
            assert_eq!(e.code, ErrorCode::Unknown);
            assert_eq!(e.message, "(error code 999) later");
        }
        r => panic!("{r:?}"),
    }
}

#[test]
fn error_codes_are_stable() {
    for c in ErrorCode::ALL {
        assert_eq!(ErrorCode::from_u16(c.as_u16()), c);
        assert_eq!(ErrorCode::try_from_u16(c.as_u16()), Some(c));
        assert_eq!(c.to_string(), c.name());
    }
    assert_eq!(ErrorCode::UnknownTable.as_u16(), 22);
    assert_eq!(ErrorCode::Internal.as_u16(), 60);
    assert_eq!(ErrorCode::try_from_u16(0), None);
    assert_eq!(ErrorCode::from_u16(13), ErrorCode::Unknown);
    assert_eq!(ErrorCode::Timeout.as_u16(), 12);
    assert_eq!(ErrorCode::BadRequestId.as_u16(), 11);
    assert_eq!(ErrorCode::LimitExceeded.as_u16(), 38);
    assert_eq!(ErrorCode::InvalidArgument.as_u16(), 39);
    assert_eq!(ErrorCode::UnknownTable.name(), "UNKNOWN_TABLE");
    let e = ErrorReply::new(ErrorCode::UnknownTable, "table \"x\" does not exist")
        .with_row(3)
        .with_column("y");
    assert_eq!(
        e.to_string(),
        "UNKNOWN_TABLE: table \"x\" does not exist (row 3, column \"y\")"
    );
}

#[test]
fn version_negotiation() {
    assert_eq!(negotiate_version(1, 1), Some(1));
    assert_eq!(negotiate_version(1, 9), Some(1));
    assert_eq!(negotiate_version(0, 1), Some(1));
    assert_eq!(negotiate_version(2, 9), None);
    assert_eq!(negotiate_version(1, 0), None);
    assert_eq!(negotiate_version(0, 0), None);
}

#[test]
fn split_frames_handles_partial_and_multiple_frames() {
    let mut stream = Vec::new();
    let reqs: Vec<_> = sample_requests();
    for (_, id, r) in &reqs {
        encode_request(*id, r, &mut stream);
    }
    // Feed one byte at a time through a FrameBuffer.
    let mut fb = FrameBuffer::new(limits::MAX_FRAME_PAYLOAD_BYTES);
    let mut got = vec![];
    for b in &stream {
        fb.extend(std::slice::from_ref(b));
        while let Some(f) = fb.next_frame().unwrap() {
            got.push((
                f.header.request_id,
                decode_request(&f.header, f.payload).unwrap(),
            ));
        }
    }
    assert!(fb.is_empty());
    let want: Vec<_> = reqs.iter().map(|(_, id, r)| (*id, r.clone())).collect();
    assert_eq!(got, want);

    // spare/filled in uneven chunks.
    let mut fb = FrameBuffer::new(limits::MAX_FRAME_PAYLOAD_BYTES);
    let mut got = 0;
    let mut pos = 0;
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    while pos < stream.len() {
        let spare = fb.spare(rng.random_range(1..50));
        let n = spare
            .len()
            .min(stream.len() - pos)
            .min(rng.random_range(1..40));
        spare[..n].copy_from_slice(&stream[pos..pos + n]);
        fb.filled(n);
        pos += n;
        while let Some(f) = fb.next_frame().unwrap() {
            decode_request(&f.header, f.payload).unwrap();
            got += 1;
        }
    }
    assert_eq!(got, reqs.len());

    // split_frames over a buffer with a partial tail.
    let cut = stream.len() - 3;
    let mut it = split_frames(&stream[..cut], limits::MAX_FRAME_PAYLOAD_BYTES);
    let n = it.by_ref().count();
    assert_eq!(n, reqs.len() - 1);
    assert!(it.error().is_none());
    let consumed = it.consumed();
    assert!(needed_bytes(&stream[consumed..cut]) > cut - consumed);
    assert_eq!(it.stopped_at().unwrap().request_id, reqs.last().unwrap().1);
}

#[test]
fn split_frames_stops_at_oversize_header() {
    let mut stream = request_frame(1, &Request::Stats);
    let big = FrameHeader {
        payload_len: 100,
        opcode: 3,
        flags: 0,
        request_id: 2,
    };
    stream.extend_from_slice(&big.encode());
    let mut it = split_frames(&stream, 50);
    assert_eq!(it.next().unwrap().header.request_id, 1);
    assert!(it.next().is_none());
    assert_eq!(it.error().unwrap().code, ErrorCode::FrameTooLarge);
    assert_eq!(it.stopped_at().unwrap().request_id, 2);
    let mut fb = FrameBuffer::new(50);
    fb.extend(&stream);
    assert!(fb.next_frame().unwrap().is_some());
    assert_eq!(fb.next_frame().unwrap_err().code, ErrorCode::FrameTooLarge);
    assert_eq!(fb.peek_header().unwrap().request_id, 2);
}

#[test]
fn seeded_random_inputs_never_panic() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x7a27);
    let mut frames: Vec<Vec<u8>> = vec![];
    for (_, id, r) in sample_requests() {
        frames.push(request_frame(id, &r));
    }
    for (_, id, r) in sample_responses() {
        frames.push(response_frame(id, &r));
    }
    for i in 0..200_000u32 {
        let f: Vec<u8> = if i % 4 == 0 {
            // Pure random bytes with a plausible header.
            let len = rng.random_range(0..64usize);
            let mut f: Vec<u8> = (0..HEADER_LEN + len).map(|_| rng.random()).collect();
            f[0..4].copy_from_slice(&(len as u32).to_le_bytes());
            f[4..6].copy_from_slice(&rng.random_range(0u16..9).to_le_bytes());
            f[6..8].copy_from_slice(&rng.random_range(0u16..2).to_le_bytes());
            f
        } else {
            // Mutated valid frame.
            let mut f = frames[rng.random_range(0..frames.len())].clone();
            for _ in 0..rng.random_range(1..4) {
                let at = rng.random_range(HEADER_LEN..f.len().max(HEADER_LEN + 1));
                if at < f.len() {
                    f[at] = if rng.random_bool(0.5) {
                        rng.random()
                    } else {
                        0xff
                    };
                }
            }
            if rng.random_bool(0.1) {
                let cut = rng.random_range(HEADER_LEN..=f.len());
                f.truncate(cut);
                let l = (f.len() - HEADER_LEN) as u32;
                f[0..4].copy_from_slice(&l.to_le_bytes());
            }
            f
        };
        let h = header(&f);
        let p = &f[HEADER_LEN..];
        let _ = decode_request(&h, p);
        let _ = decode_response(&h, p);
        let mut h2 = h;
        h2.flags ^= FLAG_RESPONSE;
        let _ = decode_request(&h2, p);
        let _ = decode_response(&h2, p);
        let _ = split_frames(&f, 1 << 20).count();
    }
}

#[test]
fn recent_limits_are_checked_before_allocating() {
    use tarn_net::limits::{MAX_RECENT_KEYS, MAX_RECENT_N};
    let too_many = Request::Recent(RecentRequest {
        stream: "tx".into(),
        keys: vec![Value::Int(1); MAX_RECENT_KEYS as usize + 1],
        n: 1,
        columns: vec![],
    });
    let f = request_frame(3, &too_many);
    let e = decode_request(&header(&f), &f[HEADER_LEN..]).unwrap_err();
    assert_eq!(e.code, ErrorCode::BatchTooLarge, "{e:?}");
    // A reply with more rows for one key than any stream keeps is malformed.
    let cols = vec![Column {
        name: "k".into(),
        ty: ColumnType::BigInt,
    }];
    let reply = Response::Recent(RecentReply {
        columns: cols,
        keys: vec![vec![vec![Value::Int(1)]; MAX_RECENT_N as usize + 1]],
    });
    let f = response_frame(3, &reply);
    let e = decode_response(&header(&f), &f[HEADER_LEN..]).unwrap_err();
    assert_eq!(e.code, ErrorCode::Malformed, "{e:?}");
    // n is the server's to judge: 0 decodes.
    let zero = Request::Recent(RecentRequest {
        stream: "tx".into(),
        keys: vec![Value::Int(1)],
        n: 0,
        columns: vec!["k".into()],
    });
    let f = request_frame(4, &zero);
    assert_eq!(decode_request(&header(&f), &f[HEADER_LEN..]).unwrap(), zero);
}
