#![allow(dead_code)]

use std::future::Future;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use tarn_storage::{Durability, Log, LogOptions, OpenError, RecoveryReport, StorageError};

/// Runs `f` to completion inside a real glommio executor on this thread.
pub fn run<Fut: Future<Output = ()>>(f: impl FnOnce() -> Fut) {
    glommio::LocalExecutor::default().run(f());
}

pub const SMALL_SEGMENT_BYTES: u64 = 64 << 10;

pub fn opts(dir: &Path, segment_size_bytes: u64, durability: Durability) -> LogOptions {
    let mut o = LogOptions::new(dir.to_path_buf(), durability);
    o.segment_size_bytes = segment_size_bytes;
    o
}

pub type Replayed = Vec<(u64, Vec<u8>)>;

pub async fn open_collect(
    o: LogOptions,
    after_lsn: u64,
) -> Result<(Rc<Log>, RecoveryReport, Replayed), StorageError> {
    let mut seen = Vec::new();
    let r = Log::open(
        o,
        after_lsn,
        |lsn, p: &[u8]| -> Result<(), std::convert::Infallible> {
            seen.push((lsn, p.to_vec()));
            Ok(())
        },
    )
    .await;
    match r {
        Ok((log, report)) => Ok((log, report, seen)),
        Err(OpenError::Storage(e)) => Err(e),
        Err(OpenError::Replay(never)) => match never {},
    }
}

/// Deterministic payload for (lsn-independent) identification.
pub fn payload(tag: u64, len: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(len);
    let mut x = tag.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.push(x as u8);
    }
    v
}

/// Framed size of a record (header 16 + payload, padded to 8).
pub fn framed(len: usize) -> u64 {
    (16 + len as u64).div_ceil(8) * 8
}

pub fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_str().unwrap();
            n.starts_with("log-") && n.ends_with(".seg")
        })
        .collect();
    v.sort();
    v
}

pub fn flip_byte(path: &Path, offset: u64) {
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    f.seek(SeekFrom::Start(offset)).unwrap();
    let mut b = [0u8; 1];
    f.read_exact(&mut b).unwrap();
    b[0] ^= 0x5A;
    f.seek(SeekFrom::Start(offset)).unwrap();
    f.write_all(&b).unwrap();
    f.sync_all().unwrap();
}

pub fn write_bytes(path: &Path, offset: u64, bytes: &[u8]) {
    let mut f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.seek(SeekFrom::Start(offset)).unwrap();
    f.write_all(bytes).unwrap();
    f.sync_all().unwrap();
}

pub fn assert_corrupt(e: &StorageError, path: &Path, offset: u64, reason_contains: &str) {
    match e {
        StorageError::Corrupt {
            path: p,
            offset: o,
            reason,
        } => {
            assert_eq!(p, path, "wrong file in {e}");
            assert_eq!(*o, offset, "wrong offset in {e}");
            assert!(
                reason.contains(reason_contains),
                "reason {reason:?} lacks {reason_contains:?}"
            );
            let shown = e.to_string();
            assert!(
                shown.contains(&path.display().to_string())
                    && shown.contains(&format!("at offset {offset}")),
                "{shown}"
            );
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
}
