use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tarn_types::Value;

use crate::batch::UpsertMode;
use crate::record::{decode, encode, encode_to_vec, Mutation, RECORD_FORMAT_VERSION};
use crate::ErrorKind;

pub(crate) fn random_value(rng: &mut StdRng) -> Value {
    match rng.random_range(0..7) {
        0 => Value::Null,
        1 => Value::Bool(rng.random()),
        2 => Value::Int(rng.random()),
        3 => Value::Double(f64::from_bits(rng.random::<u64>() & !(0x7ff << 52)) * 1e3),
        4 => {
            let n = rng.random_range(0..20);
            Value::Text((0..n).map(|_| rng.random_range('a'..='ü')).collect())
        }
        5 => {
            let n = rng.random_range(0..20);
            Value::Bytes((0..n).map(|_| rng.random()).collect())
        }
        _ => Value::Timestamp(rng.random()),
    }
}

fn random_mutation(rng: &mut StdRng) -> Mutation {
    let nrows = rng.random_range(0..8);
    let key = |rng: &mut StdRng| {
        (0..rng.random_range(0..12))
            .map(|_| rng.random())
            .collect::<Vec<u8>>()
    };
    if rng.random_bool(0.7) {
        let ncols = rng.random_range(0..6);
        Mutation::Upsert {
            table_id: rng.random(),
            mode: if rng.random() {
                UpsertMode::Replace
            } else {
                UpsertMode::Merge
            },
            column_idx: (0..ncols).map(|_| rng.random()).collect(),
            rows: (0..nrows)
                .map(|_| (key(rng), (0..ncols).map(|_| random_value(rng)).collect()))
                .collect(),
        }
    } else {
        Mutation::Delete {
            table_id: rng.random(),
            keys: (0..nrows).map(|_| key(rng)).collect(),
        }
    }
}

#[test]
fn roundtrip_property() {
    let mut rng = StdRng::seed_from_u64(0x7a4e);
    let mut buf = Vec::new();
    for _ in 0..2000 {
        let m = random_mutation(&mut rng);
        buf.clear();
        encode(&m, &mut buf);
        assert_eq!(buf[0], RECORD_FORMAT_VERSION);
        assert_eq!(decode(&buf).unwrap(), m);
    }
}

#[test]
fn exact_layout_of_a_small_delete() {
    let m = Mutation::Delete {
        table_id: 0x0102_0304,
        keys: vec![vec![9, 8]],
    };
    assert_eq!(
        encode_to_vec(&m),
        vec![3, 2, 4, 3, 2, 1, 1, 0, 0, 0, 2, 0, 0, 0, 9, 8]
    );
    let m = Mutation::Upsert {
        table_id: 1,
        mode: UpsertMode::Merge,
        column_idx: vec![0, 2],
        rows: vec![(vec![4, b'a'], vec![Value::Text("a".into()), Value::Null])],
    };
    assert_eq!(
        encode_to_vec(&m),
        vec![
            3, 1, 1, 0, 0, 0, 1, 2, 0, 0, 0, 2, 0, 1, 0, 0, 0, 2, 0, 0, 0, 4, b'a', 4, 1, 0, 0, 0,
            b'a', 0
        ]
    );
}

#[test]
fn truncated_and_garbage_bytes_are_corrupt_not_panics() {
    let mut rng = StdRng::seed_from_u64(42);
    for _ in 0..300 {
        let m = random_mutation(&mut rng);
        let bytes = encode_to_vec(&m);
        // Every strict prefix is corrupt (the format has no optional tail).
        for cut in 0..bytes.len() {
            let e = decode(&bytes[..cut]).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Corrupt, "{e}");
        }
        // Trailing byte.
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(decode(&longer).unwrap_err().kind(), ErrorKind::Corrupt);
        // Random bit flips: must not panic; may decode to something else.
        for _ in 0..20 {
            let mut b = bytes.clone();
            let i = rng.random_range(0..b.len());
            b[i] ^= 1 << rng.random_range(0..8);
            let _ = decode(&b);
        }
    }
    for _ in 0..5000 {
        let n = rng.random_range(0..64);
        let mut b: Vec<u8> = (0..n).map(|_| rng.random()).collect();
        if n > 1 && rng.random_bool(0.5) {
            b[0] = RECORD_FORMAT_VERSION;
            b[1] = rng.random_range(1..=2);
        }
        if let Err(e) = decode(&b) {
            assert_eq!(e.kind(), ErrorKind::Corrupt);
        }
    }
}

#[test]
fn specific_corruptions() {
    let cases: &[&[u8]] = &[
        &[],
        &[2, 1],                                                       // unknown version
        &[1, 9],                                                       // unknown kind
        &[1, 1, 1, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0],                      // unknown mode
        &[1, 2, 1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff],                   // huge key count, no bytes
        &[1, 1, 1, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 9], // bad value tag
        &[
            1, 1, 1, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 2,
        ], // bad bool
        &[
            1, 1, 1, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 4, 1, 0, 0, 0, 0xff,
        ], // bad UTF-8
    ];
    for c in cases {
        let e = decode(c).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Corrupt, "{c:?}");
        assert!(
            e.to_string().starts_with("corrupt data: log record: "),
            "{e}"
        );
    }
}
