//! Checks docs/protocol-vectors.json: every vector's hex decodes to its `decoded` JSON, and the
//! `decoded` JSON re-encodes to the same bytes.
//!
//! Regenerate the file (after a deliberate format change) with
//! `TARN_REGEN_VECTORS=1 cargo test -p tarn-net --test vectors -- --ignored regenerate`.

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;

use common::*;
use serde_json::{json, Value as Json};
use tarn_net::*;

fn vectors_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/protocol-vectors.json")
}

#[test]
fn protocol_vectors_decode_and_reencode() {
    let text = std::fs::read_to_string(vectors_path()).expect("read docs/protocol-vectors.json");
    let vectors: Vec<Json> = serde_json::from_str(&text).expect("vectors are a JSON list");
    let mut seen = BTreeSet::new();
    let mut names = BTreeSet::new();
    let mut codes = BTreeSet::new();
    for v in &vectors {
        let name = v["name"].as_str().expect("name");
        assert!(names.insert(name.to_owned()), "duplicate vector {name}");
        let direction = v["direction"].as_str().expect("direction");
        let bytes = hex::decode(v["hex"].as_str().expect("hex")).expect("valid hex");
        if direction == "bad_request" {
            check_bad_request(name, &bytes, &v["error"]);
            continue;
        }
        let decoded = &v["decoded"];
        assert!(bytes.len() >= HEADER_LEN, "{name}: shorter than a header");
        let h = FrameHeader::decode(bytes[..HEADER_LEN].try_into().unwrap());
        h.check(limits::MAX_FRAME_PAYLOAD_BYTES).unwrap();
        let payload = &bytes[HEADER_LEN..];
        assert_eq!(h.payload_len as usize, payload.len(), "{name}");
        let mut reencoded = Vec::new();
        match direction {
            "request" => {
                let req = decode_request(&h, payload).unwrap_or_else(|e| panic!("{name}: {e}"));
                assert_eq!(&serde_json::to_value(&req).unwrap(), decoded, "{name}");
                let from_json: Request = serde_json::from_value(decoded.clone()).unwrap();
                assert_eq!(from_json, req, "{name}");
                encode_request(h.request_id, &from_json, &mut reencoded);
                seen.insert(("request", req.opcode()));
            }
            "response" => {
                let resp = decode_response(&h, payload).unwrap_or_else(|e| panic!("{name}: {e}"));
                assert_eq!(&serde_json::to_value(&resp).unwrap(), decoded, "{name}");
                let from_json: Response = serde_json::from_value(decoded.clone()).unwrap();
                assert_eq!(from_json, resp, "{name}");
                encode_response(h.request_id, &from_json, &mut reencoded);
                seen.insert(("response", resp.opcode()));
                if let Response::Error(e) = &resp {
                    codes.insert(e.code.as_u16());
                }
            }
            d => panic!("{name}: bad direction {d}"),
        }
        assert_eq!(hex::encode(&reencoded), hex::encode(&bytes), "{name}");
    }
    // Coverage: every opcode in both directions (ERROR only as a response).
    for op in [
        Opcode::Hello,
        Opcode::Ping,
        Opcode::Sql,
        Opcode::Upsert,
        Opcode::Get,
        Opcode::Delete,
        Opcode::Stats,
        Opcode::Ingest,
        Opcode::Features,
        Opcode::History,
        Opcode::Knn,
        Opcode::Recent,
    ] {
        assert!(
            seen.contains(&("request", op)),
            "no request vector for {op}"
        );
        assert!(
            seen.contains(&("response", op)),
            "no response vector for {op}"
        );
    }
    assert!(seen.contains(&("response", Opcode::Error)));
    // Coverage: an ERROR vector for every error code.
    for c in ErrorCode::ALL {
        assert!(
            codes.contains(&c.as_u16()),
            "no ERROR vector for {c} ({}): add one to net/tests/common/mod.rs and regenerate",
            c.as_u16()
        );
    }
}

/// A malformed request vector: the decoder refuses it with the vector's error code.
fn check_bad_request(name: &str, bytes: &[u8], error: &Json) {
    let h = FrameHeader::decode(bytes[..HEADER_LEN].try_into().unwrap());
    let e = decode_request(&h, &bytes[HEADER_LEN..]).expect_err(name);
    assert_eq!(
        e.code.as_u16(),
        error["code"].as_u64().expect("code") as u16,
        "{name}: {e}"
    );
    assert_eq!(
        e.message,
        error["message"].as_str().expect("message"),
        "{name}"
    );
}

/// `ErrorCode::ALL` lists every variant: this match has no wildcard, so a new variant does not
/// compile until it is given the next ordinal here, and then the length check fails until it
/// is in `ALL` too (and the vector test above until it has a vector).
#[test]
fn error_code_all_lists_every_variant() {
    fn ordinal(c: ErrorCode) -> usize {
        use ErrorCode::*;
        match c {
            Unknown => 0,
            Malformed => 1,
            UnknownOpcode => 2,
            FrameTooLarge => 3,
            UnsupportedVersion => 4,
            AuthFailed => 5,
            HandshakeRequired => 6,
            BatchTooLarge => 7,
            TooManyInFlight => 8,
            TooManyConnections => 9,
            InvalidUtf8 => 10,
            BadRequestId => 11,
            Timeout => 12,
            SqlParse => 13,
            Unsupported => 14,
            UnknownTable => 15,
            TableExists => 16,
            UnknownColumn => 17,
            DuplicateColumn => 18,
            TypeMismatch => 19,
            NullKey => 20,
            MissingKey => 21,
            ValueTooLong => 22,
            NonFiniteDouble => 23,
            BatchEmpty => 24,
            UnknownStream => 25,
            StreamExists => 26,
            BadEvent => 27,
            MissingValue => 28,
            FutureEvent => 29,
            UnknownView => 30,
            LimitExceeded => 31,
            InvalidArgument => 32,
            Busy => 33,
            ShuttingDown => 34,
            BadVector => 35,
            UnknownIndex => 36,
            UnknownContext => 37,
            UnknownModel => 38,
            Storage => 39,
            Internal => 40,
        }
    }
    let ordinals: BTreeSet<usize> = ErrorCode::ALL.iter().map(|&c| ordinal(c)).collect();
    assert_eq!(
        ordinals,
        (1..=40).collect::<BTreeSet<usize>>(),
        "ErrorCode::ALL must list every variant but Unknown exactly once"
    );
    let numbers: BTreeSet<u16> = ErrorCode::ALL.iter().map(|c| c.as_u16()).collect();
    assert_eq!(numbers.len(), ErrorCode::ALL.len(), "codes are distinct");
    assert!(ErrorCode::ALL
        .windows(2)
        .all(|w| w[0].as_u16() < w[1].as_u16()));
}

/// The vectors the file should contain; the committed file is what the test above checks.
fn generate() -> Json {
    let mut out = vec![];
    for (name, id, req) in sample_requests() {
        out.push(json!({
            "name": name,
            "direction": "request",
            "hex": hex::encode(request_frame(id, &req)),
            "decoded": serde_json::to_value(&req).unwrap(),
        }));
    }
    for (name, id, resp) in sample_responses() {
        out.push(json!({
            "name": name,
            "direction": "response",
            "hex": hex::encode(response_frame(id, &resp)),
            "decoded": serde_json::to_value(&resp).unwrap(),
        }));
    }
    for (name, frame, code) in sample_bad_frames() {
        let h = FrameHeader::decode(frame[..HEADER_LEN].try_into().unwrap());
        let e = decode_request(&h, &frame[HEADER_LEN..]).expect_err(name);
        assert_eq!(e.code, code, "{name}: {e}");
        out.push(json!({
            "name": name,
            "direction": "bad_request",
            "hex": hex::encode(&frame),
            "error": {"code": code.as_u16(), "name": code.to_string(), "message": e.message},
        }));
    }
    Json::Array(out)
}

#[test]
fn committed_vectors_match_the_generator() {
    // If this fails after a deliberate change, regenerate (see the module docs) and review the
    // diff: any change to existing hex is a wire-format change.
    let text = std::fs::read_to_string(vectors_path()).unwrap();
    let file: Json = serde_json::from_str(&text).unwrap();
    assert_eq!(file, generate());
}

#[test]
#[ignore = "writes docs/protocol-vectors.json; run with TARN_REGEN_VECTORS=1"]
fn regenerate() {
    if std::env::var_os("TARN_REGEN_VECTORS").is_none() {
        eprintln!(
            "set TARN_REGEN_VECTORS=1 to rewrite {}",
            vectors_path().display()
        );
        return;
    }
    let mut text = serde_json::to_string_pretty(&generate()).unwrap();
    text.push('\n');
    std::fs::write(vectors_path(), text).unwrap();
}
