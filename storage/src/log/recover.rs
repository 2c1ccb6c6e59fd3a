//! Recovery at [`Log::open`](super::Log::open) (`storage/FORMAT.md` §1.4): list and validate
//! the segments, replay the records after the checkpoint, tell a torn tail (zeroed durably)
//! from corruption (refused), and zero-extend a newest segment that was cut short.

use super::flusher::{short_write, zero_range};
use super::reader::{framed_len_from_header, Reader};
use super::segment::{
    decode_segment_header, parse_segment_name, SEGMENT_HEADER_USED_BYTES, SPARE_NAME,
};
use super::{io_error, LogOptions, SegInfo, TruncatedTail};
use crate::{align_down, align_up, OpenError, StorageError};
use crate::{
    BLOCK_SIZE_BYTES, RECORD_ALIGNMENT_BYTES, RECORD_HEADER_SIZE_BYTES, SEGMENT_HEADER_SIZE_BYTES,
};
use glommio::io::{DmaFile, OpenOptions};
use std::path::{Path, PathBuf};

pub(super) struct ActiveSegment {
    pub(super) file: DmaFile,
    pub(super) path: PathBuf,
    pub(super) first_lsn: u64,
    pub(super) size_bytes: u64,
    pub(super) data_end: u64,
    /// Bytes `[align_down(data_end), data_end)`: the partial block appends continue.
    pub(super) tail_block: Vec<u8>,
}

pub(super) struct Recovered {
    pub(super) segments: Vec<SegInfo>,
    pub(super) active: Option<ActiveSegment>,
    pub(super) records_replayed: u64,
    /// Last valid record's LSN (after_lsn when there are no segments).
    pub(super) last_lsn: u64,
    pub(super) truncated_tail: Option<TruncatedTail>,
}

struct Found {
    first_lsn: u64,
    path: PathBuf,
    size_bytes: u64,
    file: DmaFile,
}

pub(super) async fn recover<E>(
    opts: &LogOptions,
    after_lsn: u64,
    mut replay: impl FnMut(u64, &[u8]) -> Result<(), E>,
) -> Result<Recovered, OpenError<E>> {
    let dir = &opts.dir;
    // Cold path (start-up): glommio has no async readdir.
    let mut names: Vec<(u64, PathBuf)> = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|e| io_error(dir, "listing log directory", e))?;
    for entry in entries {
        let entry = entry.map_err(|e| io_error(dir, "listing log directory", e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name == SPARE_NAME {
            glommio::io::remove(entry.path())
                .await
                .map_err(|e| io_error(&entry.path(), "removing stale spare", e))?;
        } else if let Some(lsn) = parse_segment_name(name) {
            names.push((lsn, entry.path()));
        }
    }
    names.sort_unstable_by_key(|(lsn, _)| *lsn);

    // Pass 1: open every segment and validate its header.
    let mut found: Vec<Found> = Vec::with_capacity(names.len());
    let count = names.len();
    for (i, (name_lsn, path)) in names.into_iter().enumerate() {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .dma_open(&path)
            .await
            .map_err(|e| io_error(&path, "opening log segment", e))?;
        if file.alignment() > BLOCK_SIZE_BYTES {
            return Err(StorageError::InvalidOptions(format!(
                "device needs {}-byte O_DIRECT alignment",
                file.alignment()
            ))
            .into());
        }
        let file_size = file
            .file_size()
            .await
            .map_err(|e| io_error(&path, "stat of log segment", e))?;
        let header = if file_size >= SEGMENT_HEADER_SIZE_BYTES {
            let r = file
                .read_at_aligned(0, SEGMENT_HEADER_SIZE_BYTES as usize)
                .await
                .map_err(|e| io_error(&path, "reading segment header", e))?;
            if r.len() < SEGMENT_HEADER_USED_BYTES {
                Err("segment shorter than its header".to_string())
            } else {
                decode_segment_header(&r[..SEGMENT_HEADER_USED_BYTES])
            }
        } else {
            Err(format!("segment file is only {file_size} bytes"))
        };
        let is_last = i + 1 == count;
        let checked = header.and_then(|(first_lsn, size)| {
            if first_lsn != name_lsn {
                Err(format!(
                    "header first_lsn {first_lsn} does not match the file name"
                ))
            } else if file_size < size && !is_last {
                Err(format!("file is {file_size} bytes, header says {size}"))
            } else {
                Ok(size)
            }
        });
        match checked {
            Ok(size) => {
                if file_size < size {
                    // The newest segment was cut short (e.g. copied or truncated): what is
                    // missing reads as zeros. Restore its full preallocated, zero-filled size
                    // so the record scan below treats any cut record as a torn tail.
                    tracing::warn!(path = %path.display(), file_size, segment_size = size, "newest log segment is shorter than its header says; zero-extending it");
                    extend_short_segment(&file, &path, file_size, size).await?;
                }
                found.push(Found {
                    first_lsn: name_lsn,
                    path,
                    size_bytes: size,
                    file,
                })
            }
            Err(reason) if is_last => {
                // The newest segment: installed (renamed) but its first write never became
                // durable? Then it holds no valid record and nothing in it was acknowledged.
                let size = align_down(file_size, BLOCK_SIZE_BYTES);
                let mut reader = Reader::new(&file, &path, size);
                let (valid, _) = if size > SEGMENT_HEADER_SIZE_BYTES {
                    reader.scan_after(SEGMENT_HEADER_SIZE_BYTES, 0).await?
                } else {
                    (None, 0)
                };
                drop(reader);
                if let Some((lsn, off)) = valid {
                    return Err(StorageError::corrupt(
                        &path,
                        0,
                        format!(
                            "{reason} (yet a valid record with lsn {lsn} exists at offset {off})"
                        ),
                    )
                    .into());
                }
                tracing::warn!(path = %path.display(), reason = %reason, "removing newest log segment whose header was never written durably (it holds no valid record)");
                let _ = file.close().await;
                glommio::io::remove(&path)
                    .await
                    .map_err(|e| io_error(&path, "removing torn segment", e))?;
            }
            Err(reason) => return Err(StorageError::corrupt(&path, 0, reason).into()),
        }
    }

    let Some(first) = found.first() else {
        return Ok(Recovered {
            segments: Vec::new(),
            active: None,
            records_replayed: 0,
            last_lsn: after_lsn,
            truncated_tail: None,
        });
    };
    if first.first_lsn > after_lsn + 1 {
        return Err(StorageError::corrupt(
            &first.path,
            0,
            format!("missing records: the log starts at lsn {} but the checkpoint covers only up to lsn {after_lsn}", first.first_lsn),
        )
        .into());
    }

    // Pass 2: scan records.
    let mut expected = first.first_lsn;
    let mut records_replayed = 0u64;
    let mut segments = Vec::with_capacity(found.len());
    let mut truncated_tail = None;
    let mut active = None;
    let count = found.len();
    let firsts: Vec<u64> = found.iter().map(|f| f.first_lsn).collect();
    let mut prev_end: Option<(PathBuf, u64)> = None;
    for (i, seg) in found.into_iter().enumerate() {
        let is_last = i + 1 == count;
        if !is_last && firsts[i + 1] <= after_lsn + 1 && seg.first_lsn >= expected {
            // Wholly covered by the checkpoint and kept only for retention: not needed to
            // rebuild the state, so not read (restart time does not grow with retention).
            // Its records are validated when history reads them.
            segments.push(SegInfo {
                first_lsn: seg.first_lsn,
                path: seg.path.clone(),
                size_bytes: seg.size_bytes,
                data_end: seg.size_bytes,
                sealed_at: Some(std::time::SystemTime::now()),
            });
            prev_end = Some((seg.path.clone(), seg.size_bytes));
            expected = firsts[i + 1];
            continue;
        }
        if seg.first_lsn != expected {
            // Records missing between segments are fine only if the checkpoint covers them.
            if seg.first_lsn < expected || seg.first_lsn > after_lsn + 1 {
                let prev = prev_end.as_ref().map_or(String::new(), |(p, o)| {
                    format!(" (previous segment {} ends at offset {o})", p.display())
                });
                return Err(StorageError::corrupt(
                    &seg.path,
                    0,
                    format!(
                        "missing records: segment starts at lsn {}, expected lsn {expected}{prev}",
                        seg.first_lsn
                    ),
                )
                .into());
            }
            expected = seg.first_lsn;
        }
        let mut reader = Reader::new(&seg.file, &seg.path, seg.size_bytes);
        let mut off = SEGMENT_HEADER_SIZE_BYTES;
        let bad = loop {
            match reader.record(off).await? {
                Ok(None) => break None,
                Err(reason) => break Some(reason),
                Ok(Some((lsn, framed))) => {
                    if lsn != expected {
                        break Some(format!("record has lsn {lsn}, expected {expected}"));
                    }
                    if lsn > after_lsn {
                        let total = framed_len_from_header(&mut reader, off).await?;
                        let payload = reader.get(off + RECORD_HEADER_SIZE_BYTES, total).await?;
                        replay(lsn, payload).map_err(OpenError::Replay)?;
                        records_replayed += 1;
                    }
                    expected += 1;
                    off += framed;
                }
            }
        };
        let zero_end = off + RECORD_HEADER_SIZE_BYTES > seg.size_bytes;
        if is_last && !zero_end {
            // Anything after the last valid record must be a torn tail: no valid record
            // with a larger lsn may follow.
            let scan_from = if bad.is_some() {
                off + RECORD_ALIGNMENT_BYTES
            } else {
                off
            };
            let (later, nonzero_end) = reader.scan_after(scan_from, expected).await?;
            if let Some((lsn, at)) = later {
                let reason = bad.unwrap_or_else(|| "zero record length (end of data)".into());
                return Err(StorageError::corrupt(
                    &seg.path,
                    off,
                    format!("{reason}; not a torn tail: a valid record with lsn {lsn} follows at offset {at}"),
                )
                .into());
            }
            let discard_end = if bad.is_some() {
                nonzero_end.max(off + RECORD_ALIGNMENT_BYTES)
            } else {
                nonzero_end
            };
            if discard_end > off {
                let why = bad.unwrap_or_else(|| "non-zero bytes after the end of data".into());
                tracing::warn!(path = %seg.path.display(), offset = off, bytes = discard_end - off, reason = %why, "truncating torn log tail");
                let keep = reader
                    .get(
                        align_down(off, BLOCK_SIZE_BYTES),
                        (off % BLOCK_SIZE_BYTES) as usize,
                    )
                    .await?
                    .to_vec();
                drop(reader);
                zero_tail(
                    &seg.file,
                    &seg.path,
                    off,
                    &keep,
                    align_up(discard_end, BLOCK_SIZE_BYTES),
                )
                .await?;
                truncated_tail = Some(TruncatedTail {
                    path: seg.path.clone(),
                    offset: off,
                    bytes_discarded: discard_end - off,
                });
                reader = Reader::new(&seg.file, &seg.path, seg.size_bytes);
            }
        } else if let Some(reason) = bad {
            return Err(StorageError::corrupt(&seg.path, off, reason).into());
        }
        segments.push(SegInfo {
            first_lsn: seg.first_lsn,
            path: seg.path.clone(),
            size_bytes: seg.size_bytes,
            data_end: off,
            sealed_at: (!is_last).then(std::time::SystemTime::now),
        });
        prev_end = Some((seg.path.clone(), off));
        if is_last {
            let base = align_down(off, BLOCK_SIZE_BYTES);
            let tail_block = reader.get(base, (off - base) as usize).await?.to_vec();
            drop(reader);
            // Records read back may still sit in a volatile device cache after a process
            // crash: make them durable before reporting them durable.
            seg.file
                .fdatasync()
                .await
                .map_err(|e| io_error(&seg.path, "fdatasync of recovered segment", e))?;
            active = Some(ActiveSegment {
                file: seg.file,
                path: seg.path,
                first_lsn: seg.first_lsn,
                size_bytes: seg.size_bytes,
                data_end: off,
                tail_block,
            });
        } else {
            drop(reader);
            seg.file
                .close()
                .await
                .map_err(|e| io_error(&seg.path, "closing log segment", e))?;
        }
    }
    Ok(Recovered {
        segments,
        active,
        records_replayed,
        last_lsn: expected - 1,
        truncated_tail,
    })
}

/// Durably zeroes a torn tail: `[off, end)`, keeping `keep` (= bytes `[align_down(off), off)`).
async fn zero_tail(
    file: &DmaFile,
    path: &Path,
    off: u64,
    keep: &[u8],
    end: u64,
) -> Result<(), StorageError> {
    let base = align_down(off, BLOCK_SIZE_BYTES);
    assert_eq!(keep.len() as u64, off - base);
    assert!(end > base && end.is_multiple_of(BLOCK_SIZE_BYTES));
    let mut first = glommio::allocate_dma_buffer(BLOCK_SIZE_BYTES as usize);
    let b = first.as_bytes_mut();
    b[..keep.len()].copy_from_slice(keep);
    b[keep.len()..].fill(0);
    let written = file
        .write_at(first, base)
        .await
        .map_err(|e| io_error(path, "zeroing torn tail", e))?;
    if written as u64 != BLOCK_SIZE_BYTES {
        return Err(short_write(path, written, BLOCK_SIZE_BYTES, base));
    }
    zero_range(
        file,
        path,
        base + BLOCK_SIZE_BYTES,
        end.max(base + BLOCK_SIZE_BYTES),
    )
    .await?;
    file.fdatasync()
        .await
        .map_err(|e| io_error(path, "fdatasync after zeroing torn tail", e))
}

/// Zero-extends a segment cut short at `file_size` to its full `size`, keeping every byte
/// that is there.
async fn extend_short_segment(
    file: &DmaFile,
    path: &Path,
    file_size: u64,
    size: u64,
) -> Result<(), StorageError> {
    assert!(file_size < size && size.is_multiple_of(BLOCK_SIZE_BYTES));
    let base = align_down(file_size, BLOCK_SIZE_BYTES);
    let keep_len = (file_size - base) as usize;
    let mut block = glommio::allocate_dma_buffer(BLOCK_SIZE_BYTES as usize);
    {
        let b = block.as_bytes_mut();
        b.fill(0);
        if keep_len > 0 {
            let r = file
                .read_at_aligned(base, BLOCK_SIZE_BYTES as usize)
                .await
                .map_err(|e| io_error(path, "reading short segment", e))?;
            assert!(r.len() >= keep_len);
            b[..keep_len].copy_from_slice(&r[..keep_len]);
        }
    }
    file.pre_allocate(size, false)
        .await
        .map_err(|e| io_error(path, "preallocating short segment", e))?;
    let written = file
        .write_at(block, base)
        .await
        .map_err(|e| io_error(path, "zero-extending short segment", e))?;
    if written as u64 != BLOCK_SIZE_BYTES {
        return Err(short_write(path, written, BLOCK_SIZE_BYTES, base));
    }
    zero_range(file, path, base + BLOCK_SIZE_BYTES, size).await?;
    file.fdatasync()
        .await
        .map_err(|e| io_error(path, "fdatasync of extended segment", e))
}
