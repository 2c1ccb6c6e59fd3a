//! On-disk damage: corruption in the middle of the log refuses to start and names the file and
//! offset; a torn tail is truncated and the server carries on.
//!
//! Segment layout (storage/src/log/segment.rs): a 4096-byte segment header block, then records
//! from offset 4096, each `{total_len u32 LE (header included), crc32c u32, lsn u64}` + payload,
//! padded to 8 bytes; a zero `total_len` marks the end of data. Segments are preallocated and
//! zero-filled.

mod common;

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use common::*;

const SEGMENT_HEADER: u64 = 4096;
const RECORD_HEADER: u64 = 16;

/// (offset, total_len, lsn) of every record in a segment file, in order.
fn records(path: &Path) -> Vec<(u64, u32, u64)> {
    let bytes = std::fs::read(path).expect("read segment");
    let mut out = Vec::new();
    let mut off = SEGMENT_HEADER as usize;
    while off + RECORD_HEADER as usize <= bytes.len() {
        let len = u32::from_le_bytes(bytes[off..off + 4].try_into().unwrap());
        if len == 0 {
            break;
        }
        let lsn = u64::from_le_bytes(bytes[off + 8..off + 16].try_into().unwrap());
        assert!(
            len as u64 >= RECORD_HEADER && off + len as usize <= bytes.len(),
            "unparsable record at {off} in {}",
            path.display()
        );
        out.push((off as u64, len, lsn));
        off += (len as usize).div_ceil(8) * 8;
    }
    out
}

fn patch(path: &Path, offset: u64, f: impl FnOnce(&mut [u8]), len: usize) {
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    file.seek(SeekFrom::Start(offset)).unwrap();
    let mut buf = vec![0u8; len];
    file.read_exact(&mut buf).unwrap();
    f(&mut buf);
    file.seek(SeekFrom::Start(offset)).unwrap();
    file.write_all(&buf).unwrap();
    file.sync_all().unwrap();
}

fn row(id: i64, text_len: usize) -> Vec<Value> {
    let mut s = format!("row-{id}-");
    while s.len() < text_len {
        s.push(char::from(b'a' + (s.len() % 26) as u8));
    }
    vec![Value::Int(id), Value::Text(s)]
}

/// Creates table `big` and writes `batches` × 50 rows of ~1 KB (`row(id, 1000)`), pipelined.
fn fill_big(server: &TarnServer, batches: i64) {
    let mut c = server.client();
    c.sql("CREATE TABLE big (id BIGINT PRIMARY KEY, body TEXT)")
        .unwrap();
    let reqs: Vec<Request> = (0..batches)
        .map(|b| {
            upsert_req(
                "big",
                &["id", "body"],
                (0..50).map(|i| row(b * 50 + i, 1000)).collect(),
            )
        })
        .collect();
    pipelined(&mut c, &reqs, 4);
}

#[test]
fn corruption_in_the_middle_of_the_log_refuses_to_start() {
    // One shard, 1 MiB segments, no checkpoint (huge interval, and SIGKILL skips the
    // shutdown checkpoint): the whole log stays on disk.
    let mut server = TarnServer::start_ok(ServerOpts::shards(1).args(&[
        "--segment-mib",
        "1",
        "--checkpoint-mib",
        "1024",
    ]));
    fill_big(&server, 70);
    server.kill9();

    let segs = segments(server.data_dir(), 0);
    assert!(segs.len() >= 3, "expected >= 3 segments, found {segs:?}");
    assert!(
        checkpoints(server.data_dir(), 0).is_empty(),
        "no checkpoint expected"
    );
    let first = &segs[0].1;
    let recs = records(first);
    assert!(
        recs.len() >= 3,
        "first segment holds {} records",
        recs.len()
    );
    let (off, len, lsn) = recs[recs.len() / 2];
    // Flip one payload byte in the middle of that record.
    let at = off + RECORD_HEADER + (len as u64 - RECORD_HEADER) / 2;
    patch(first, at, |b| b[0] ^= 0x40, 1);

    let err = match server.restart() {
        Ok(()) => panic!(
            "tarnd started on a log with a corrupt record (lsn {lsn} at offset {off} of {})",
            first.display()
        ),
        Err(e) => e,
    };
    eprintln!("refused as expected: {err}");
    let name = first.file_name().unwrap().to_string_lossy().to_string();
    assert!(err.contains("tarnd: "), "{err}");
    assert!(
        err.contains(&name),
        "the error must name the segment {name}: {err}"
    );
    assert!(
        err.contains(&format!("offset {off}")),
        "the error must name the record's offset {off}: {err}"
    );
    assert!(!err.contains("panicked"), "{err}");

    // Repairing the byte makes the log whole again: every row is back.
    patch(first, at, |b| b[0] ^= 0x40, 1);
    server.restart_ok();
    let mut c = server.client();
    let keys: Vec<Value> = (0..3500).map(Value::Int).collect();
    let got = c.get_many("big", &keys, 1000).unwrap();
    for (i, r) in got.into_iter().enumerate() {
        assert_eq!(r, Some(row(i as i64, 1000)), "key {i}");
    }
    drop(c);
    server.kill9();

    // A damaged record header (its lsn) in the middle of the log is refused too.
    let (off2, _, _) = recs[1];
    patch(first, off2 + 8, |b| b[0] ^= 0x01, 1);
    let err = server
        .restart()
        .expect_err("tarnd started with a damaged record header mid-log");
    assert!(
        err.contains(&name) && err.contains(&format!("offset {off2}")),
        "{err}"
    );
}

#[test]
fn torn_tail_is_truncated_and_writes_continue() {
    let mut server =
        TarnServer::start_ok(ServerOpts::shards(1).args(&["--checkpoint-mib", "1024"]));
    let mut c = server.client();
    c.sql("CREATE TABLE t (id BIGINT PRIMARY KEY, body TEXT)")
        .unwrap();
    for b in 0..10 {
        assert_eq!(
            c.upsert(
                "t",
                &["id", "body"],
                (0..20).map(|i| row(b * 20 + i, 100)).collect()
            )
            .unwrap(),
            20
        );
    }
    drop(c);
    server.kill9();

    // (1) Garbage after the last valid record: half a record with a plausible header.
    let segs = segments(server.data_dir(), 0);
    let last = &segs.last().unwrap().1;
    let recs = records(last);
    let (off, len, lsn) = *recs.last().unwrap();
    let end = off + (len as u64).div_ceil(8) * 8;
    patch(
        last,
        end,
        |b| {
            b[0..4].copy_from_slice(&400u32.to_le_bytes());
            b[4..8].copy_from_slice(&0xdead_beefu32.to_le_bytes());
            b[8..16].copy_from_slice(&(lsn + 1).to_le_bytes());
            for (i, x) in b[16..].iter_mut().enumerate() {
                *x = (i * 7 + 3) as u8;
            }
        },
        16 + 150,
    );
    server.restart_ok();
    let mut c = server.client();
    let check = |c: &mut Conn, upto: i64| {
        let keys: Vec<Value> = (0..upto).map(Value::Int).collect();
        let got = c.get("t", keys).unwrap();
        for (i, r) in got.rows.into_iter().enumerate() {
            assert_eq!(r, Some(row(i as i64, 100)), "key {i}");
        }
    };
    check(&mut c, 200);
    // Writes continue and survive another crash and a clean restart.
    assert_eq!(
        c.upsert(
            "t",
            &["id", "body"],
            (200..220).map(|i| row(i, 100)).collect()
        )
        .unwrap(),
        20
    );
    drop(c);
    server.kill9();
    server.restart_ok();
    check(&mut server.client(), 220);
    server.stop_ok();
    server.restart_ok();
    check(&mut server.client(), 220);
    let mut c = server.client();
    assert_eq!(
        c.upsert(
            "t",
            &["id", "body"],
            (220..240).map(|i| row(i, 100)).collect()
        )
        .unwrap(),
        20
    );
    drop(c);
    server.kill9();

    // (2) A torn last record: its second half never reached the disk (zeros). That batch is
    // lost as a whole (it was one record); everything before it is intact.
    let segs = segments(server.data_dir(), 0);
    let last = &segs.last().unwrap().1;
    let recs = records(last);
    let (off, len, _) = *recs.last().unwrap();
    let half = len as u64 / 2;
    patch(
        last,
        off + half,
        |b| b.fill(0),
        (len as u64 - half) as usize,
    );
    server.restart_ok();
    let mut c = server.client();
    check(&mut c, 220);
    let torn: Vec<Value> = (220..240).map(Value::Int).collect();
    assert_eq!(
        c.get("t", torn).unwrap().rows,
        vec![None; 20],
        "the torn batch must vanish as a whole"
    );
    assert_eq!(
        c.upsert(
            "t",
            &["id", "body"],
            (220..240).map(|i| row(i, 100)).collect()
        )
        .unwrap(),
        20
    );
    drop(c);
    server.kill9();
    server.restart_ok();
    check(&mut server.client(), 240);
    server.stop_ok();
}

/// A damaged checkpoint must never be loaded as if it were good: the server either recovers
/// every row some other way (an older checkpoint / the full log) or refuses to start with a
/// message that points at the checkpoint problem.
#[test]
fn damaged_checkpoint_is_never_silently_trusted() {
    let mut server = TarnServer::start_ok(ServerOpts::shards(1).args(&[
        "--segment-mib",
        "1",
        "--checkpoint-mib",
        "1",
    ]));
    fill_big(&server, 60);
    server.stop_ok(); // writes a final checkpoint
    let ckps = checkpoints(server.data_dir(), 0);
    assert!(!ckps.is_empty(), "no checkpoint after a clean stop");
    let (lsn, path) = ckps.last().unwrap().clone();
    let len = std::fs::metadata(&path).unwrap().len();
    eprintln!(
        "checkpoint {} ({len} bytes, lsn {lsn}); segments {:?}",
        path.display(),
        segments(server.data_dir(), 0)
    );
    patch(&path, len / 2, |b| b[0] ^= 0x10, 1);

    match server.restart() {
        Ok(()) => {
            let mut c = server.client();
            let keys: Vec<Value> = (0..3000).map(Value::Int).collect();
            let got = c.get_many("big", &keys, 1000).unwrap();
            let missing = got.iter().filter(|r| r.is_none()).count();
            assert_eq!(
                missing, 0,
                "started from a damaged checkpoint and lost {missing} rows"
            );
            for (i, r) in got.into_iter().enumerate() {
                assert_eq!(r, Some(row(i as i64, 1000)), "key {i}");
            }
        }
        Err(err) => {
            eprintln!("refused: {err}");
            assert!(err.contains("tarnd: "), "{err}");
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            assert!(
                err.contains(&name),
                "the refusal must name the damaged checkpoint {name}: {err}"
            );
            assert!(!err.contains("panicked"), "{err}");
        }
    }
}
