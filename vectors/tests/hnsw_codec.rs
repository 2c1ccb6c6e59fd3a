//! The serialized HNSW index: a round trip gives the same graph and the same answers; damaged
//! bytes give `VectorError::Corrupt`, never a panic or a silently different index.

mod common;

use common::{gaussian, rng};
use rand::Rng;
use tarn_vectors::{
    unframe, Decoder, HnswIndex, HnswParams, Metric, RowId, SearchParams, VectorError, VectorIndex,
    CHUNK_FRAME_BYTES,
};

fn built(metric: Metric) -> HnswIndex {
    let mut r = rng(21);
    let mut idx = HnswIndex::new(metric, 12, HnswParams::default()).unwrap();
    for i in 0..1_500u64 {
        let v: Vec<f32> = (0..12).map(|_| gaussian(&mut r) as f32).collect();
        idx.upsert(i % 1_200, &v).unwrap();
        if i % 7 == 0 {
            idx.delete(i / 2);
        }
    }
    idx
}

fn decode(chunks: &[Vec<u8>]) -> Result<HnswIndex, VectorError> {
    let mut d = Decoder::new();
    for c in chunks {
        d.feed(c)?;
    }
    d.finish()
}

#[test]
fn a_round_trip_keeps_the_graph_and_the_answers() {
    for metric in Metric::ALL {
        let idx = built(metric);
        let chunks: Vec<Vec<u8>> = idx.encode(4_096).collect();
        assert!(chunks.len() > 10, "bounded chunks: {}", chunks.len());
        let back = decode(&chunks).unwrap();
        assert_eq!(back.digest(), idx.digest(), "{}", metric.name());
        assert_eq!(back.len(), idx.len());
        assert_eq!(back.tombstones(), idx.tombstones());
        let mut r = rng(5);
        for _ in 0..50 {
            let q: Vec<f32> = (0..12).map(|_| gaussian(&mut r) as f32).collect();
            let filter = |row: RowId| !row.is_multiple_of(3);
            let p = SearchParams::default();
            assert_eq!(
                back.search(&q, 10, &filter, &p).unwrap(),
                idx.search(&q, 10, &filter, &p).unwrap()
            );
        }
    }
}

#[test]
fn damaged_bytes_are_corrupt_never_a_panic() {
    let idx = built(Metric::InnerProduct);
    let chunks: Vec<Vec<u8>> = idx.encode(2_048).collect();
    let mut r = rng(99);
    for trial in 0..400 {
        let mut bad = chunks.clone();
        let c = r.random_range(0..bad.len());
        let i = r.random_range(0..bad[c].len());
        bad[c][i] ^= 1 << r.random_range(0..8);
        match decode(&bad) {
            Err(VectorError::Corrupt(_)) => {}
            other => panic!("trial {trial}: chunk {c} byte {i}: {other:?}"),
        }
    }
    // A damaged payload with a recomputed checksum: the checks behind the CRC still refuse
    // what breaks the format or the graph, and nothing panics.
    let mut caught = 0;
    for _trial in 0..300 {
        let mut bad = chunks.clone();
        let c = r.random_range(0..bad.len());
        let n = bad[c].len();
        let i = r.random_range(CHUNK_FRAME_BYTES..n);
        bad[c][i] ^= 0xff;
        let crc = crc(&bad[c][CHUNK_FRAME_BYTES..]);
        bad[c][4..8].copy_from_slice(&crc.to_le_bytes());
        match decode(&bad) {
            Err(VectorError::Corrupt(_)) => caught += 1,
            // A consistent change behind a valid checksum (a row id, a component, a
            // parameter) is a different valid index: the CRC is what catches damage.
            Ok(_) => {}
            Err(e) => panic!("{e:?}"),
        }
    }
    assert!(caught > 0);
}

fn crc(b: &[u8]) -> u32 {
    // CRC32C (Castagnoli), bitwise: the test's own implementation of the frame's checksum.
    let mut c = !0u32;
    for &x in b {
        c ^= u32::from(x);
        for _ in 0..8 {
            c = if c & 1 == 1 {
                (c >> 1) ^ 0x82F6_3B78
            } else {
                c >> 1
            };
        }
    }
    !c
}

#[test]
fn truncated_missing_or_reordered_chunks_are_corrupt() {
    let idx = built(Metric::L2);
    let chunks: Vec<Vec<u8>> = idx.encode(2_048).collect();
    let corrupt = |r: Result<HnswIndex, VectorError>| matches!(r, Err(VectorError::Corrupt(_)));
    assert!(
        corrupt(decode(&chunks[..chunks.len() - 1])),
        "last chunk missing"
    );
    assert!(corrupt(decode(&[])), "nothing");
    let mut swapped = chunks.clone();
    swapped.swap(1, 2);
    assert!(corrupt(decode(&swapped)), "reordered");
    let mut cut = chunks.clone();
    let last = cut.len() - 1;
    let keep = cut[last].len() - 3;
    cut[last].truncate(keep);
    assert!(corrupt(decode(&cut)), "truncated chunk");
    let mut magic = chunks.clone();
    magic[0][CHUNK_FRAME_BYTES] = b'X';
    assert!(matches!(unframe(&magic[0]), Err(VectorError::Corrupt(_))));
    assert!(corrupt(decode(&[chunks[1].clone()])), "no header");
}
