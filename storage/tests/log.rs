mod common;

use common::*;
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;
use tarn_storage::*;

const HDR: u64 = SEGMENT_HEADER_SIZE_BYTES;

#[test]
fn append_reopen_replays_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("shard-0");
    run(|| async move {
        let o = opts(&dir, 256 << 10, Durability::Sync);
        let (log, report, seen) = open_collect(o.clone(), 0).await.unwrap();
        assert_eq!(
            report,
            RecoveryReport {
                records_replayed: 0,
                last_lsn: 0,
                truncated_tail: None
            }
        );
        assert!(seen.is_empty());
        let mut expect = Vec::new();
        for i in 0..300u64 {
            let p = payload(i, (i as usize * 37) % 1500);
            let lsn = log.append(&p).await.unwrap();
            assert_eq!(lsn, i + 1);
            expect.push((lsn, p));
        }
        log.wait_durable(150).await.unwrap();
        assert!(log.durable_lsn() >= 150);
        log.flush().await.unwrap();
        assert_eq!(log.durable_lsn(), 300);
        log.close().await.unwrap();
        assert!(matches!(log.append(b"x").await, Err(StorageError::Closed)));

        let (log, report, seen) = open_collect(o.clone(), 0).await.unwrap();
        assert_eq!(report.records_replayed, 300);
        assert_eq!(report.last_lsn, 300);
        assert_eq!(report.truncated_tail, None);
        assert_eq!(seen, expect);
        assert_eq!(log.last_lsn(), 300);
        assert_eq!(log.durable_lsn(), 300);
        // Appends continue right after the recovered records, in the same partial block.
        let lsn = log.append(b"after reopen").await.unwrap();
        assert_eq!(lsn, 301);
        log.wait_durable(lsn).await.unwrap();
        log.close().await.unwrap();
        expect.push((301, b"after reopen".to_vec()));

        // after_lsn: records up to it are validated but not replayed.
        let (log, report, seen) = open_collect(o, 120).await.unwrap();
        assert_eq!(report.records_replayed, 181);
        assert_eq!(seen, expect[120..].to_vec());
        log.close().await.unwrap();
    });
}

#[test]
fn group_commit_many_concurrent_appenders() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    run(|| async move {
        let o = opts(&dir, 1 << 20, Durability::Sync);
        let (log, _, _) = open_collect(o.clone(), 0).await.unwrap();
        const TASKS: u64 = 64;
        const PER_TASK: u64 = 40;
        let acked: Rc<RefCell<Replayed>> = Rc::default();
        let mut tasks = Vec::new();
        for t in 0..TASKS {
            let log = log.clone();
            let acked = acked.clone();
            tasks.push(glommio::spawn_local(async move {
                for i in 0..PER_TASK {
                    let p = payload(t * 1000 + i, 10 + ((t + i) as usize % 300));
                    let lsn = log.append(&p).await.unwrap();
                    log.wait_durable(lsn).await.unwrap();
                    assert!(log.durable_lsn() >= lsn);
                    acked.borrow_mut().push((lsn, p));
                }
            }));
        }
        for t in tasks {
            t.await;
        }
        let mut acked = acked.take();
        acked.sort();
        let lsns: Vec<u64> = acked.iter().map(|(l, _)| *l).collect();
        assert_eq!(
            lsns,
            (1..=TASKS * PER_TASK).collect::<Vec<_>>(),
            "LSNs must be unique and contiguous"
        );
        assert_eq!(log.durable_lsn(), TASKS * PER_TASK);
        log.close().await.unwrap();
        let (log, _, seen) = open_collect(o, 0).await.unwrap();
        assert_eq!(seen, acked);
        log.close().await.unwrap();
    });
}

#[test]
fn backpressure_with_large_records_keeps_order() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    run(|| async move {
        let o = opts(&dir, 8 << 20, Durability::Async);
        let (log, _, _) = open_collect(o.clone(), 0).await.unwrap();
        // 24 MiB appended without waiting for durability: more than MAX_PENDING_BYTES, so
        // appenders must be throttled by the flusher instead of buffering everything.
        let mut tasks = Vec::new();
        for t in 0..8u64 {
            let log = log.clone();
            tasks.push(glommio::spawn_local(async move {
                let mut got = Vec::new();
                for i in 0..6u64 {
                    let p = payload(t * 100 + i, 512 << 10);
                    got.push((log.append(&p).await.unwrap(), p));
                }
                got
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await);
        }
        all.sort();
        assert_eq!(
            all.iter().map(|x| x.0).collect::<Vec<_>>(),
            (1..=48).collect::<Vec<_>>()
        );
        log.close().await.unwrap();
        let (log, _, seen) = open_collect(o, 0).await.unwrap();
        assert_eq!(seen, all);
        log.close().await.unwrap();
    });
}

#[test]
fn segment_rotation_with_small_segments() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    run(|| async move {
        let o = opts(&dir, SMALL_SEGMENT_BYTES, Durability::Sync);
        let (log, _, _) = open_collect(o.clone(), 0).await.unwrap();
        assert_eq!(
            log.max_record_payload_bytes() as u64,
            SMALL_SEGMENT_BYTES - HDR - 16
        );
        let too_big = vec![7u8; log.max_record_payload_bytes() + 1];
        assert!(matches!(
            log.append(&too_big).await,
            Err(StorageError::RecordTooLarge { .. })
        ));
        let mut expect = Vec::new();
        for i in 0..200u64 {
            let p = payload(i, 1000 + (i as usize % 7) * 300);
            let lsn = log.append(&p).await.unwrap();
            expect.push((lsn, p));
            if i % 9 == 0 {
                log.wait_durable(lsn).await.unwrap();
            }
        }
        // A maximal record still fits an empty segment.
        let max = vec![0xAB; log.max_record_payload_bytes()];
        let lsn = log.append(&max).await.unwrap();
        expect.push((lsn, max));
        log.flush().await.unwrap();
        let segs = segments(&dir);
        assert!(segs.len() >= 5, "expected rotation, got {segs:?}");
        assert_eq!(log.disk_bytes(), segs.len() as u64 * SMALL_SEGMENT_BYTES);
        for s in &segs {
            assert_eq!(
                std::fs::metadata(s).unwrap().len(),
                SMALL_SEGMENT_BYTES,
                "segments are preallocated"
            );
        }
        // A segment file is named after its first LSN.
        assert!(segs[0].ends_with("log-00000000000000000001.seg"));
        assert!(log.bytes_since(0) > 200 * 1000);
        assert!(log.bytes_since(100) < log.bytes_since(0));
        assert_eq!(log.bytes_since(log.last_lsn()), 0);
        log.close().await.unwrap();
        assert!(
            !dir.join("log-spare.tmp").exists(),
            "close removes the spare"
        );
        let (log, report, seen) = open_collect(o, 0).await.unwrap();
        assert_eq!(report.truncated_tail, None);
        assert_eq!(seen, expect);
        log.close().await.unwrap();
    });
}

/// Writes `n` records of `len` bytes (lsn 1..=n) and closes the log.
async fn fill(o: &LogOptions, n: u64, len: usize) -> Vec<(u64, Vec<u8>)> {
    let (log, _, _) = open_collect(o.clone(), 0).await.unwrap();
    let mut v = Vec::new();
    for i in 0..n {
        let p = payload(i, len);
        v.push((log.append(&p).await.unwrap(), p));
    }
    log.close().await.unwrap();
    v
}

#[test]
fn torn_tail_truncated_file_is_cut_and_appends_continue() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    run(|| async move {
        let o = opts(&dir, 256 << 10, Durability::Sync);
        let expect = fill(&o, 20, 100).await;
        let seg = segments(&dir).pop().unwrap();
        let rec20 = HDR + 19 * framed(100);
        // Cut the file in the middle of record 20.
        std::fs::OpenOptions::new()
            .write(true)
            .open(&seg)
            .unwrap()
            .set_len(rec20 + 40)
            .unwrap();
        let (log, report, seen) = open_collect(o.clone(), 0).await.unwrap();
        assert_eq!(seen, expect[..19].to_vec());
        let tail = report.truncated_tail.clone().expect("torn tail reported");
        assert_eq!((tail.path.as_path(), tail.offset), (seg.as_path(), rec20));
        assert_eq!(report.last_lsn, 19);
        assert_eq!(
            std::fs::metadata(&seg).unwrap().len(),
            256 << 10,
            "segment restored to full size"
        );
        let lsn = log.append(b"new 20").await.unwrap();
        assert_eq!(lsn, 20);
        log.close().await.unwrap();
        let (log, report, seen) = open_collect(o, 0).await.unwrap();
        assert_eq!(report.truncated_tail, None, "repair was durable");
        assert_eq!(seen.len(), 20);
        assert_eq!(seen[19], (20, b"new 20".to_vec()));
        log.close().await.unwrap();
    });
}

#[test]
fn torn_tail_garbage_after_last_record_is_cut() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    run(|| async move {
        let o = opts(&dir, 256 << 10, Durability::Sync);
        let expect = fill(&o, 10, 300).await;
        let seg = segments(&dir).pop().unwrap();
        let end = HDR + 10 * framed(300);
        let garbage = payload(999, 5000);
        write_bytes(&seg, end, &garbage);
        let (log, report, seen) = open_collect(o.clone(), 0).await.unwrap();
        assert_eq!(seen, expect);
        let tail = report
            .truncated_tail
            .expect("garbage reported as torn tail");
        assert_eq!(tail.offset, end);
        assert!(
            tail.bytes_discarded >= 4990 && tail.bytes_discarded <= 5008,
            "{tail:?}"
        );
        for i in 0..5u64 {
            assert_eq!(log.append(&payload(100 + i, 50)).await.unwrap(), 11 + i);
        }
        log.close().await.unwrap();
        let (log, report, seen) = open_collect(o, 0).await.unwrap();
        assert_eq!(report.truncated_tail, None);
        assert_eq!(seen.len(), 15);
        log.close().await.unwrap();
    });
}

#[test]
fn torn_tail_half_written_record_header_only() {
    // Only the first bytes of a record reached the disk: a header whose CRC cannot match.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    run(|| async move {
        let o = opts(&dir, 256 << 10, Durability::Sync);
        fill(&o, 3, 64).await;
        let seg = segments(&dir).pop().unwrap();
        let end = HDR + 3 * framed(64);
        let mut hdr = Vec::new();
        hdr.extend_from_slice(&(16u32 + 64).to_le_bytes());
        hdr.extend_from_slice(&0xDEAD_BEEFu32.to_le_bytes());
        hdr.extend_from_slice(&4u64.to_le_bytes());
        write_bytes(&seg, end, &hdr);
        let (log, report, seen) = open_collect(o, 0).await.unwrap();
        assert_eq!(seen.len(), 3);
        assert_eq!(report.truncated_tail.unwrap().offset, end);
        assert_eq!(log.append(b"4").await.unwrap(), 4);
        log.close().await.unwrap();
    });
}

#[test]
fn flipped_byte_in_non_last_segment_is_corrupt() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    run(|| async move {
        let o = opts(&dir, SMALL_SEGMENT_BYTES, Durability::Sync);
        fill(&o, 150, 1000).await;
        let segs = segments(&dir);
        assert!(segs.len() >= 3);
        let rec10 = HDR + 9 * framed(1000);
        flip_byte(&segs[0], rec10 + 16 + 500);
        let err = open_collect(o, 0).await.unwrap_err();
        assert_corrupt(&err, &segs[0], rec10, "CRC mismatch");
        assert!(err.to_string().starts_with("log corrupt: "), "{err}");
    });
}

#[test]
fn flipped_byte_in_last_segment_followed_by_valid_records_is_corrupt() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    run(|| async move {
        let o = opts(&dir, 256 << 10, Durability::Sync);
        fill(&o, 30, 200).await;
        let segs = segments(&dir);
        assert_eq!(segs.len(), 1);
        let rec12 = HDR + 11 * framed(200);
        flip_byte(&segs[0], rec12 + 20);
        let err = open_collect(o.clone(), 0).await.unwrap_err();
        assert_corrupt(&err, &segs[0], rec12, "not a torn tail");
        // A flipped length field is caught the same way.
        flip_byte(&segs[0], rec12 + 20);
        flip_byte(&segs[0], rec12 + 1);
        let err = open_collect(o, 0).await.unwrap_err();
        assert_corrupt(&err, &segs[0], rec12, "not a torn tail");
    });
}

#[test]
fn flipped_byte_in_segment_header_is_corrupt() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    run(|| async move {
        let o = opts(&dir, SMALL_SEGMENT_BYTES, Durability::Sync);
        fill(&o, 150, 1000).await;
        let segs = segments(&dir);
        flip_byte(&segs[1], 17);
        let err = open_collect(o.clone(), 0).await.unwrap_err();
        assert_corrupt(&err, &segs[1], 0, "header CRC mismatch");
        // The newest segment with a bad header but valid records is corrupt too.
        flip_byte(&segs[1], 17);
        let last = segs.last().unwrap();
        flip_byte(last, 3);
        let err = open_collect(o, 0).await.unwrap_err();
        assert_corrupt(&err, last, 0, "valid record");
    });
}

#[test]
fn newest_segment_never_written_is_removed() {
    // Crash after the spare was renamed into place but before its first write was durable.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    run(|| async move {
        let o = opts(&dir, SMALL_SEGMENT_BYTES, Durability::Sync);
        let expect = fill(&o, 5, 100).await;
        let ghost = dir.join("log-00000000000000000006.seg");
        std::fs::write(&ghost, vec![0u8; SMALL_SEGMENT_BYTES as usize]).unwrap();
        std::fs::write(dir.join("log-spare.tmp"), b"half made spare").unwrap();
        let (log, report, seen) = open_collect(o, 0).await.unwrap();
        assert_eq!(seen, expect);
        assert_eq!(report.last_lsn, 5);
        assert!(!ghost.exists());
        assert_eq!(log.append(b"6").await.unwrap(), 6);
        log.close().await.unwrap();
    });
}

#[test]
fn missing_segment_gap_is_corrupt() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    run(|| async move {
        let o = opts(&dir, SMALL_SEGMENT_BYTES, Durability::Sync);
        fill(&o, 200, 1000).await;
        let segs = segments(&dir);
        assert!(segs.len() >= 4);
        std::fs::remove_file(&segs[1]).unwrap();
        let err = open_collect(o.clone(), 0).await.unwrap_err();
        assert_corrupt(&err, &segs[2], 0, "missing records");

        // Missing first segment without a checkpoint covering it.
        let tmp2 = tempfile::tempdir().unwrap();
        let o2 = opts(tmp2.path(), SMALL_SEGMENT_BYTES, Durability::Sync);
        fill(&o2, 200, 1000).await;
        let segs2 = segments(tmp2.path());
        std::fs::remove_file(&segs2[0]).unwrap();
        let err = open_collect(o2.clone(), 0).await.unwrap_err();
        assert_corrupt(&err, &segs2[1], 0, "missing records");
        // ... but fine when a checkpoint covers the missing records.
        let first2 = 61; // 60 records of 1016 bytes fit a 64 KiB segment
        assert!(segs2[1].ends_with(format!("log-{first2:020}.seg")));
        let (log, report, seen) = open_collect(o2, first2 - 1).await.unwrap();
        assert_eq!(seen.first().unwrap().0, first2);
        assert_eq!(report.last_lsn, 200);
        log.close().await.unwrap();
    });
}

#[test]
fn remove_segments_covered_by_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    run(|| async move {
        let o = opts(&dir, SMALL_SEGMENT_BYTES, Durability::Sync);
        let (log, _, _) = open_collect(o.clone(), 0).await.unwrap();
        let mut expect = Vec::new();
        for i in 0..250u64 {
            let p = payload(i, 1000);
            expect.push((log.append(&p).await.unwrap(), p));
        }
        log.flush().await.unwrap();
        let before = segments(&dir);
        assert_eq!(before.len(), 5); // 60 records per segment
        assert_eq!(
            log.remove_segments_covered_by(59, None).await.unwrap(),
            0,
            "segment 1 holds lsn 60"
        );
        let disk_before = log.disk_bytes();
        assert_eq!(log.remove_segments_covered_by(130, None).await.unwrap(), 2);
        assert_eq!(segments(&dir), before[2..].to_vec());
        assert_eq!(log.disk_bytes(), disk_before - 2 * SMALL_SEGMENT_BYTES);
        assert_eq!(log.remove_segments_covered_by(130, None).await.unwrap(), 0);
        // The newest segment is never removed.
        assert_eq!(
            log.remove_segments_covered_by(u64::MAX, None)
                .await
                .unwrap(),
            2
        );
        assert_eq!(segments(&dir).len(), 1);
        log.close().await.unwrap();
        let (log, report, seen) = open_collect(o, 250).await.unwrap();
        assert!(seen.is_empty());
        assert_eq!(report.last_lsn, 250);
        assert_eq!(log.append(b"x").await.unwrap(), 251);
        log.close().await.unwrap();
    });
}

#[test]
fn checkpoint_ahead_of_log_starts_a_new_segment() {
    // Async mode: a checkpoint may cover records whose log write was lost in a crash.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    run(|| async move {
        let o = opts(&dir, SMALL_SEGMENT_BYTES, Durability::Sync);
        fill(&o, 10, 100).await;
        let (log, report, seen) = open_collect(o.clone(), 25).await.unwrap();
        assert!(seen.is_empty());
        assert_eq!(report.last_lsn, 25);
        assert_eq!(log.append(b"26").await.unwrap(), 26);
        log.close().await.unwrap();
        assert!(dir.join("log-00000000000000000026.seg").exists());
        let (log, _, seen) = open_collect(o, 25).await.unwrap();
        assert_eq!(seen, vec![(26, b"26".to_vec())]);
        log.close().await.unwrap();
    });
}

#[test]
fn async_mode_flushes_within_the_interval() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    run(|| async move {
        let mut o = opts(&dir, 256 << 10, Durability::Async);
        o.async_flush_interval = Duration::from_millis(20);
        let (log, _, _) = open_collect(o.clone(), 0).await.unwrap();
        for i in 0..50u64 {
            log.append(&payload(i, 100)).await.unwrap();
        }
        // Nothing has yielded to the flusher yet: not durable, and no wait_durable is called.
        assert_eq!(log.durable_lsn(), 0);
        let mut became_durable = false;
        for _ in 0..500 {
            glommio::timer::sleep(o.async_flush_interval).await;
            if log.durable_lsn() == 50 {
                became_durable = true;
                break;
            }
        }
        assert!(
            became_durable,
            "async flusher never made the records durable"
        );
        // The records are on disk: a second executor-less check by reopening after close.
        log.close().await.unwrap();
        let (log, _, seen) = open_collect(o, 0).await.unwrap();
        assert_eq!(seen.len(), 50);
        log.close().await.unwrap();
    });
}

#[test]
fn invalid_options_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    run(|| async move {
        for size in [4096, SMALL_SEGMENT_BYTES + 1, MAX_SEGMENT_SIZE_BYTES * 2] {
            let err = open_collect(opts(&dir, size, Durability::Sync), 0)
                .await
                .unwrap_err();
            assert!(matches!(err, StorageError::InvalidOptions(_)), "{err}");
        }
    });
}

#[test]
fn replay_error_is_returned() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    run(|| async move {
        let o = opts(&dir, 256 << 10, Durability::Sync);
        fill(&o, 5, 10).await;
        let r = Log::open(o, 0, |lsn, _| {
            if lsn == 3 {
                Err("bad record 3")
            } else {
                Ok(())
            }
        })
        .await;
        match r {
            Err(OpenError::Replay(e)) => assert_eq!(e, "bad record 3"),
            other => panic!("expected replay error, got {:?}", other.map(|_| ())),
        }
    });
}

#[test]
fn retention_keeps_covered_segments_readable_and_restart_skips_them() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    run(|| async move {
        let o = opts(&dir, SMALL_SEGMENT_BYTES, Durability::Sync);
        let (log, _, _) = open_collect(o.clone(), 0).await.unwrap();
        let start = std::time::SystemTime::now();
        let mut expect = Vec::new();
        for i in 0..250u64 {
            let p = payload(i, 1000);
            expect.push((log.append(&p).await.unwrap(), p));
        }
        log.flush().await.unwrap();
        // Every record reads back in order, from any start.
        let mut seen = Vec::new();
        let last = log
            .read_records(1, |lsn, p| {
                seen.push((lsn, p.to_vec()));
                true
            })
            .await
            .unwrap();
        assert_eq!((last, seen.len()), (250, 250));
        assert_eq!(seen, expect);
        let mut from_100 = 0;
        log.read_records(100, |lsn, _| {
            assert!(lsn >= 100);
            from_100 += 1;
            lsn < 120
        })
        .await
        .unwrap();
        assert_eq!(from_100, 21, "stops when asked");
        // Segments sealed after `start` are retained even though covered.
        assert_eq!(
            log.remove_segments_covered_by(130, Some(start))
                .await
                .unwrap(),
            0
        );
        assert_eq!(log.first_lsn(), 1);
        let later = std::time::SystemTime::now() + Duration::from_secs(1);
        assert_eq!(
            log.remove_segments_covered_by(130, Some(later))
                .await
                .unwrap(),
            2
        );
        assert_eq!(log.first_lsn(), 121);
        log.close().await.unwrap();
        // Damage a record in a segment the checkpoint (lsn 200) covers: start-up does not read
        // it, a history reader that reaches it gets Corrupt naming the file.
        let segs = segments(&dir);
        let victim = segs[0].clone();
        let mut bytes = std::fs::read(&victim).unwrap();
        bytes[4096 + 40] ^= 0xFF;
        std::fs::write(&victim, bytes).unwrap();
        let (log, report, seen) = open_collect(o, 200).await.unwrap();
        assert_eq!(report.last_lsn, 250);
        assert_eq!(seen.len(), 50);
        let err = log.read_records(121, |_, _| true).await.unwrap_err();
        assert!(
            err.to_string().contains(&victim.display().to_string()),
            "{err}"
        );
        let mut n = 0;
        log.read_records(181, |_, _| {
            n += 1;
            true
        })
        .await
        .unwrap();
        assert_eq!(n, 70);
        log.close().await.unwrap();
    });
}

/// A checkpoint that removes covered segments while a history scan is reading them leaves the
/// segments the scan has yet to read: the scan reads every record, and a later removal takes
/// them. (Found by the wire fuzzer: the scan listed the segments, a checkpoint deleted some,
/// and the scan failed opening them.)
#[test]
fn a_running_scan_keeps_the_segments_it_has_yet_to_read() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    run(|| async move {
        let o = opts(&dir, SMALL_SEGMENT_BYTES, Durability::Sync);
        let (log, _, _) = open_collect(o.clone(), 0).await.unwrap();
        for i in 0..250u64 {
            log.append(&payload(i, 1000)).await.unwrap();
        }
        log.flush().await.unwrap();
        assert_eq!(segments(&dir).len(), 5);
        // The scan starts (and is suspended opening its first segment); the removal runs
        // while it is suspended.
        let scan = {
            let log = log.clone();
            glommio::spawn_local(async move {
                let mut lsns = Vec::new();
                let r = log
                    .read_records(1, |lsn, _| {
                        lsns.push(lsn);
                        true
                    })
                    .await;
                (r, lsns)
            })
        };
        let remover = {
            let log = log.clone();
            glommio::spawn_local(async move { log.remove_segments_covered_by(200, None).await })
        };
        let removed = remover.await.unwrap();
        let (read, lsns) = scan.await;
        assert_eq!(read.unwrap(), 250, "the scan reads to the end");
        assert_eq!(lsns, (1..=250).collect::<Vec<u64>>());
        assert_eq!(removed, 0, "every covered segment was still to be read");
        assert_eq!(segments(&dir).len(), 5);
        // Once no scan runs, the same removal takes them.
        assert_eq!(log.remove_segments_covered_by(200, None).await.unwrap(), 3);
        assert_eq!(log.first_lsn(), 181);
        log.close().await.unwrap();
    });
}
