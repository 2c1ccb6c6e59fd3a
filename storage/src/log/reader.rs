//! Reading a segment file: [`Reader`], a window of aligned DMA reads that validates records
//! (length, CRC) and scans for later valid records, and [`Log::read_records`], the reader of
//! the log's retained history.

use super::segment::{parse_record_header, record_crc, record_len_sane};
use super::{io_error, Log};
use crate::{align_down, align_up, StorageError};
use crate::{
    BLOCK_SIZE_BYTES, RECORD_ALIGNMENT_BYTES, RECORD_HEADER_SIZE_BYTES, RECOVERY_READ_CHUNK_BYTES,
    SEGMENT_HEADER_SIZE_BYTES,
};
use glommio::io::{DmaFile, OpenOptions, ReadResult};
use std::path::{Path, PathBuf};

impl Log {
    /// Calls `f(lsn, payload)` for every durable record with `lsn ≥ from_lsn`, in LSN order,
    /// reading the segment files. While it runs, the segments it has yet to read are pinned:
    /// a checkpoint's [`Log::remove_segments_covered_by`] leaves them (and a later one removes
    /// them). Stops early when `f` returns false. Validates every
    /// record it reads (CRC): a bad one is [`StorageError::Corrupt`] naming file and offset.
    /// Records before the oldest retained segment cannot be read: [`Log::first_lsn`] says
    /// where the log starts. Returns the LSN of the last record read (0 if none).
    pub async fn read_records(
        &self,
        from_lsn: u64,
        mut f: impl FnMut(u64, &[u8]) -> bool,
    ) -> Result<u64, StorageError> {
        let upto = self.durable_lsn.get();
        // Listed and pinned at once (no await between): nothing listed can be removed.
        let mut pin = ReadPin {
            log: self,
            at: None,
        };
        let segs: Vec<(u64, PathBuf, u64)> = {
            let st = self.st.borrow();
            let n = st.segments.len();
            (0..n)
                .filter(|&k| k + 1 == n || st.segments[k + 1].first_lsn > from_lsn)
                .map(|k| {
                    let s = &st.segments[k];
                    (s.first_lsn, s.path.clone(), s.size_bytes)
                })
                .collect()
        };
        if let Some(&(first, ..)) = segs.first() {
            pin.move_to(first);
        }
        let mut last = 0;
        for (first, path, size) in segs {
            if first > upto {
                break;
            }
            pin.move_to(first);
            let file = OpenOptions::new()
                .read(true)
                .dma_open(&path)
                .await
                .map_err(|e| io_error(&path, "opening log segment for reading", e))?;
            let mut reader = Reader::new(&file, &path, size);
            let mut off = SEGMENT_HEADER_SIZE_BYTES;
            let done = loop {
                match reader.record(off).await? {
                    Ok(None) => break false,
                    Err(reason) => {
                        return Err(StorageError::corrupt(&path, off, reason));
                    }
                    Ok(Some((lsn, framed))) => {
                        if lsn > upto {
                            break true;
                        }
                        if lsn >= from_lsn {
                            let total = framed_len_from_header(&mut reader, off).await?;
                            let payload = reader.get(off + RECORD_HEADER_SIZE_BYTES, total).await?;
                            last = lsn;
                            if !f(lsn, payload) {
                                break true;
                            }
                        }
                        if lsn == upto {
                            break true;
                        }
                        off += framed;
                    }
                }
            };
            drop(reader);
            let _ = file.close().await;
            if done {
                break;
            }
        }
        Ok(last)
    }
}

/// Reads a segment through a window of aligned DMA reads.
pub(super) struct Reader<'a> {
    file: &'a DmaFile,
    path: &'a Path,
    size: u64,
    window: Option<ReadResult>,
    window_start: u64,
}

impl<'a> Reader<'a> {
    pub(super) fn new(file: &'a DmaFile, path: &'a Path, size: u64) -> Self {
        Reader {
            file,
            path,
            size,
            window: None,
            window_start: 0,
        }
    }

    /// Bytes `[off, off+len)` of the segment (must lie within it).
    pub(super) async fn get(&mut self, off: u64, len: usize) -> Result<&[u8], StorageError> {
        let end = off + len as u64;
        assert!(end <= self.size, "read past segment end");
        let hit = match &self.window {
            Some(w) => off >= self.window_start && end <= self.window_start + w.len() as u64,
            None => false,
        };
        if !hit {
            let start = align_down(off, BLOCK_SIZE_BYTES);
            let want = RECOVERY_READ_CHUNK_BYTES
                .max(align_up(end, BLOCK_SIZE_BYTES) - start)
                .min(self.size - start);
            assert_eq!(want % BLOCK_SIZE_BYTES, 0);
            let r = self
                .file
                .read_at_aligned(start, want as usize)
                .await
                .map_err(|e| io_error(self.path, "reading log segment", e))?;
            if (r.len() as u64) < end - start {
                return Err(StorageError::corrupt(
                    self.path,
                    start + r.len() as u64,
                    format!("file ends before its segment size {}", self.size),
                ));
            }
            self.window = Some(r);
            self.window_start = start;
        }
        let w = self.window.as_ref().unwrap();
        let s = (off - self.window_start) as usize;
        Ok(&w[s..s + len])
    }

    /// Validates the record at `off`: `Ok(Ok(Some((lsn, framed, payload_range))))`,
    /// `Ok(Ok(None))` at a zero length (end of data), `Ok(Err(reason))` if invalid.
    pub(super) async fn record(
        &mut self,
        off: u64,
    ) -> Result<Result<Option<(u64, u64)>, String>, StorageError> {
        if off + RECORD_HEADER_SIZE_BYTES > self.size {
            return Ok(Ok(None));
        }
        let (total_len, crc, lsn) =
            parse_record_header(self.get(off, RECORD_HEADER_SIZE_BYTES as usize).await?);
        if total_len == 0 {
            return Ok(Ok(None));
        }
        if !record_len_sane(total_len, off, self.size) {
            return Ok(Err(format!("record length {total_len} out of bounds")));
        }
        let rec = self.get(off, total_len as usize).await?;
        if record_crc(total_len, lsn, &rec[RECORD_HEADER_SIZE_BYTES as usize..]) != crc {
            return Ok(Err("CRC mismatch".into()));
        }
        Ok(Ok(Some((
            lsn,
            align_up(total_len as u64, RECORD_ALIGNMENT_BYTES),
        ))))
    }

    /// Scans `[from, size)` at 8-byte steps for a valid record with lsn ≥ `min_lsn`.
    /// Returns it (lsn, offset) if any, and the end of the last non-zero 8-byte word seen
    /// (up to the found record, or the whole range).
    pub(super) async fn scan_after(
        &mut self,
        from: u64,
        min_lsn: u64,
    ) -> Result<(Option<(u64, u64)>, u64), StorageError> {
        assert_eq!(from % RECORD_ALIGNMENT_BYTES, 0);
        let mut nonzero_end = from;
        let mut pos = from;
        while pos + RECORD_ALIGNMENT_BYTES <= self.size {
            let word = self.get(pos, RECORD_ALIGNMENT_BYTES as usize).await?;
            if word.iter().any(|b| *b != 0) {
                nonzero_end = pos + RECORD_ALIGNMENT_BYTES;
                if pos + RECORD_HEADER_SIZE_BYTES <= self.size {
                    let (total_len, _, lsn) = parse_record_header(
                        self.get(pos, RECORD_HEADER_SIZE_BYTES as usize).await?,
                    );
                    if lsn >= min_lsn && record_len_sane(total_len, pos, self.size) {
                        if let Ok(Some((lsn, _))) = self.record(pos).await? {
                            return Ok((Some((lsn, pos)), nonzero_end));
                        }
                    }
                }
            }
            pos += RECORD_ALIGNMENT_BYTES;
        }
        Ok((None, nonzero_end))
    }
}

pub(super) async fn framed_len_from_header(
    reader: &mut Reader<'_>,
    off: u64,
) -> Result<usize, StorageError> {
    let (total_len, _, _) =
        parse_record_header(reader.get(off, RECORD_HEADER_SIZE_BYTES as usize).await?);
    Ok(total_len as usize - RECORD_HEADER_SIZE_BYTES as usize)
}

/// A running [`Log::read_records`]'s claim on the segments from the one it is at: moved
/// forward as it reads on, released when it ends (however it ends).
struct ReadPin<'a> {
    log: &'a Log,
    /// First LSN of the segment pinned.
    at: Option<u64>,
}

impl ReadPin<'_> {
    fn move_to(&mut self, first_lsn: u64) {
        assert!(
            self.at.is_none_or(|at| at <= first_lsn),
            "a log scan only moves forward"
        );
        let mut st = self.log.st.borrow_mut();
        *st.read_pins.entry(first_lsn).or_insert(0) += 1;
        if let Some(at) = self.at.replace(first_lsn) {
            unpin(&mut st.read_pins, at);
        }
    }
}

impl Drop for ReadPin<'_> {
    fn drop(&mut self) {
        if let Some(at) = self.at.take() {
            unpin(&mut self.log.st.borrow_mut().read_pins, at);
        }
    }
}

fn unpin(pins: &mut std::collections::BTreeMap<u64, usize>, at: u64) {
    let n = pins.get_mut(&at).expect("a pinned segment is counted");
    *n -= 1;
    if *n == 0 {
        pins.remove(&at);
    }
}
