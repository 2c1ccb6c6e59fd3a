//! Checkpoint files: `<dir>/checkpoint-<lsn:020>.ckp`, a 4096-byte framed header followed by
//! the payload (an rkyv archive produced by tarn-core). Written atomically; loaded by `mmap`
//! so the payload is read in place, 4096-byte aligned.

use crate::framed::{write_framed_atomic, FramedHeader, CHECKPOINT_MAGIC};
use crate::{StorageError, CHECKPOINT_HEADER_SIZE_BYTES};
use std::path::{Path, PathBuf};

const PREFIX: &str = "checkpoint-";
const SUFFIX: &str = ".ckp";

/// File name of the checkpoint covering `lsn`.
pub fn file_name(lsn: u64) -> String {
    format!("{PREFIX}{lsn:020}{SUFFIX}")
}

fn parse_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Writes `payload` as `<dir>/checkpoint-<lsn:020>.ckp` (temp file, write, fdatasync,
/// rename, directory fsync), then deletes older checkpoints and stray temp files.
/// `lsn` is the last log record the payload reflects; after this returns the caller may
/// call [`crate::Log::remove_segments_covered_by`]`(lsn)`.
pub async fn write(dir: &Path, lsn: u64, payload: &[u8]) -> Result<PathBuf, StorageError> {
    write_parts(dir, lsn, &[payload]).await
}

/// Like [`write`], with the payload given as parts written back to back (a large state
/// serialised in chunks need not be copied into one buffer first).
pub async fn write_parts(dir: &Path, lsn: u64, payload: &[&[u8]]) -> Result<PathBuf, StorageError> {
    let name = file_name(lsn);
    let tmp_name = format!("{name}.tmp");
    let path = write_framed_atomic(
        dir,
        &tmp_name,
        &name,
        CHECKPOINT_MAGIC,
        CHECKPOINT_HEADER_SIZE_BYTES as u32,
        lsn,
        payload,
    )
    .await?;
    // Cold path: glommio has no async readdir.
    let entries = std::fs::read_dir(dir).map_err(|e| StorageError::io(dir, e))?;
    let mut old = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| StorageError::io(dir, e))?;
        let Some(fname) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        let stale = match parse_name(&fname) {
            Some(l) => l < lsn,
            None => fname
                .strip_suffix(".tmp")
                .and_then(parse_name)
                .is_some_and(|l| l != lsn),
        };
        if stale {
            old.push(entry.path());
        }
    }
    for p in old {
        glommio::io::remove(&p)
            .await
            .map_err(|e| StorageError::io(&p, e))?;
    }
    Ok(path)
}

/// A validated checkpoint, memory-mapped.
pub struct LoadedCheckpoint {
    /// The last log record this checkpoint reflects: open the log with `after_lsn = lsn`.
    pub lsn: u64,
    pub path: PathBuf,
    mmap: memmap2::Mmap,
    payload_len: usize,
}

impl LoadedCheckpoint {
    /// The payload; starts at a 4096-byte-aligned address (page-aligned mapping + 4096-byte header).
    pub fn payload(&self) -> &[u8] {
        let start = CHECKPOINT_HEADER_SIZE_BYTES as usize;
        &self.mmap[start..start + self.payload_len]
    }
}

impl std::fmt::Debug for LoadedCheckpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedCheckpoint")
            .field("lsn", &self.lsn)
            .field("path", &self.path)
            .field("payload_len", &self.payload_len)
            .finish()
    }
}

/// Finds the newest checkpoint in `dir` whose header and CRC validate and maps it. A newer
/// one that fails validation is reported with `tracing::warn` and the next older is tried.
/// `Ok(None)` if there is none (or `dir` does not exist).
///
/// Cold path (start-up): blocking `std::fs` + `mmap`; the whole payload is CRC-checked once.
pub fn load_latest(dir: &Path) -> Result<Option<LoadedCheckpoint>, StorageError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(StorageError::io(dir, e)),
    };
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| StorageError::io(dir, e))?;
        if let Some(lsn) = entry.file_name().to_str().and_then(parse_name) {
            found.push((lsn, entry.path()));
        }
    }
    found.sort_unstable_by_key(|f| std::cmp::Reverse(f.0));
    for (lsn, path) in found {
        match load_one(&path, lsn) {
            Ok(c) => return Ok(Some(c)),
            Err(e @ StorageError::Corrupt { .. }) => {
                tracing::warn!(error = %e, "skipping invalid checkpoint, trying the next older one");
            }
            Err(e) => return Err(e),
        }
    }
    Ok(None)
}

fn load_one(path: &Path, lsn: u64) -> Result<LoadedCheckpoint, StorageError> {
    let file = std::fs::File::open(path).map_err(|e| StorageError::io(path, e))?;
    let len = file
        .metadata()
        .map_err(|e| StorageError::io(path, e))?
        .len();
    if len < CHECKPOINT_HEADER_SIZE_BYTES {
        return Err(StorageError::corrupt(
            path,
            0,
            format!("file is {len} bytes, shorter than its header"),
        ));
    }
    // SAFETY: checkpoint files are immutable once renamed into place (they are only ever
    // deleted, never written), so the mapping cannot change under us.
    let mmap = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| StorageError::io(path, e))?;
    let (h, range) =
        FramedHeader::validate_image(&mmap, CHECKPOINT_MAGIC, CHECKPOINT_HEADER_SIZE_BYTES as u32)
            .map_err(|(offset, reason)| StorageError::corrupt(path, offset, reason))?;
    if h.lsn != lsn {
        return Err(StorageError::corrupt(
            path,
            16,
            format!("header lsn {} does not match the file name", h.lsn),
        ));
    }
    let c = LoadedCheckpoint {
        lsn,
        path: path.to_path_buf(),
        mmap,
        payload_len: range.len(),
    };
    assert_eq!(
        c.payload().as_ptr() as usize % 16,
        0,
        "checkpoint payload must be 16-byte aligned"
    );
    Ok(c)
}
