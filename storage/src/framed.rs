//! Header + CRC framing shared by checkpoint files and small files, and the atomic
//! replace sequence (temp file, write, fdatasync, rename, directory fsync).

use crate::{align_up, StorageError, FILE_WRITE_CHUNK_BYTES, MAX_SMALL_FILE_BYTES};
use crate::{BLOCK_SIZE_BYTES, SMALL_FILE_HEADER_SIZE_BYTES};
use glommio::io::{Directory, OpenOptions};
use std::path::{Path, PathBuf};

/// Bytes of the framed-file header that carry data; the rest of the header area is zero.
pub(crate) const FRAMED_HEADER_BYTES: usize = 64;
/// Current version of the framed-file header.
pub(crate) const FRAMED_VERSION: u32 = 1;
/// Magic of checkpoint files.
pub(crate) const CHECKPOINT_MAGIC: [u8; 8] = *b"TARNCKP\0";
/// Magic of small files.
pub(crate) const SMALL_FILE_MAGIC: [u8; 8] = *b"TARNSMF\0";

/// Decoded framed-file header (see FORMAT.md, "framed file header").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FramedHeader {
    pub magic: [u8; 8],
    pub header_len: u32,
    pub lsn: u64,
    pub payload_len: u64,
    pub payload_crc: u32,
}

impl FramedHeader {
    pub(crate) fn encode(&self) -> [u8; FRAMED_HEADER_BYTES] {
        let mut b = [0u8; FRAMED_HEADER_BYTES];
        b[0..8].copy_from_slice(&self.magic);
        b[8..12].copy_from_slice(&FRAMED_VERSION.to_le_bytes());
        b[12..16].copy_from_slice(&self.header_len.to_le_bytes());
        b[16..24].copy_from_slice(&self.lsn.to_le_bytes());
        b[24..32].copy_from_slice(&self.payload_len.to_le_bytes());
        b[32..36].copy_from_slice(&self.payload_crc.to_le_bytes());
        let crc = crc32c::crc32c(&b[0..60]);
        b[60..64].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Validates magic, version, header CRC and header_len; `Err(reason)` otherwise.
    pub(crate) fn decode(b: &[u8], magic: [u8; 8], header_len: u32) -> Result<Self, String> {
        if b.len() < FRAMED_HEADER_BYTES {
            return Err(format!(
                "file shorter than its {FRAMED_HEADER_BYTES}-byte header"
            ));
        }
        if b[0..8] != magic {
            return Err("bad magic".into());
        }
        let stored_crc = u32::from_le_bytes(b[60..64].try_into().unwrap());
        if crc32c::crc32c(&b[0..60]) != stored_crc {
            return Err("header CRC mismatch".into());
        }
        let version = u32::from_le_bytes(b[8..12].try_into().unwrap());
        if version != FRAMED_VERSION {
            return Err(format!("unsupported format version {version}"));
        }
        let h = FramedHeader {
            magic,
            header_len: u32::from_le_bytes(b[12..16].try_into().unwrap()),
            lsn: u64::from_le_bytes(b[16..24].try_into().unwrap()),
            payload_len: u64::from_le_bytes(b[24..32].try_into().unwrap()),
            payload_crc: u32::from_le_bytes(b[32..36].try_into().unwrap()),
        };
        if h.header_len != header_len {
            return Err(format!(
                "header length {} (expected {header_len})",
                h.header_len
            ));
        }
        Ok(h)
    }

    /// Validates a whole file image (header at 0, payload at header_len) and returns the
    /// payload's range. `Err((offset, reason))` names where validation failed.
    pub(crate) fn validate_image(
        image: &[u8],
        magic: [u8; 8],
        header_len: u32,
    ) -> Result<(Self, std::ops::Range<usize>), (u64, String)> {
        let h = Self::decode(image, magic, header_len).map_err(|r| (0, r))?;
        let start = header_len as u64;
        let end = start
            .checked_add(h.payload_len)
            .ok_or((24, "payload length overflows".to_string()))?;
        if end != image.len() as u64 {
            return Err((
                24,
                format!(
                    "payload length {} but file holds {} bytes after the header",
                    h.payload_len,
                    (image.len() as u64).saturating_sub(start)
                ),
            ));
        }
        let range = start as usize..end as usize;
        if crc32c::crc32c(&image[range.clone()]) != h.payload_crc {
            return Err((start, "payload CRC mismatch".into()));
        }
        Ok((h, range))
    }
}

/// Fsyncs directory `dir` so renames/creations inside it are durable.
pub(crate) async fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    let d = Directory::open(dir)
        .await
        .map_err(|e| StorageError::io(dir, e))?;
    let synced = d.sync().await.map_err(|e| StorageError::io(dir, e));
    let closed = d.close().await.map_err(|e| StorageError::io(dir, e));
    synced.and(closed)
}

/// Writes `header ++ zeros(header_len - 64) ++ payload` to `dir/tmp_name` with O_DIRECT,
/// truncates to the exact length, fdatasyncs, renames over `dir/final_name` and fsyncs `dir`.
pub(crate) async fn write_framed_atomic(
    dir: &Path,
    tmp_name: &str,
    final_name: &str,
    magic: [u8; 8],
    header_len: u32,
    lsn: u64,
    payload: &[&[u8]],
) -> Result<PathBuf, StorageError> {
    assert!(header_len as usize >= FRAMED_HEADER_BYTES);
    let payload_len: u64 = payload.iter().map(|p| p.len() as u64).sum();
    let header = FramedHeader {
        magic,
        header_len,
        lsn,
        payload_len,
        payload_crc: payload
            .iter()
            .fold(0, |crc, p| crc32c::crc32c_append(crc, p)),
    }
    .encode();
    prime_dma_probe(dir).await?;
    let tmp = dir.join(tmp_name);
    let fin = dir.join(final_name);
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .dma_open(&tmp)
        .await
        .map_err(|e| StorageError::io(&tmp, e))?;
    let total_bytes = header_len as u64 + payload_len;
    let result = async {
        let mut offset = 0u64;
        while offset < total_bytes {
            let len = FILE_WRITE_CHUNK_BYTES.min(total_bytes - offset);
            let buf_len = align_up(len, BLOCK_SIZE_BYTES) as usize;
            let mut buf = glommio::allocate_dma_buffer(buf_len);
            let bytes = buf.as_bytes_mut();
            fill_image(
                bytes,
                offset,
                len as usize,
                &header,
                header_len as u64,
                payload,
            );
            assert_eq!(offset % BLOCK_SIZE_BYTES, 0);
            assert_eq!(bytes.len() % BLOCK_SIZE_BYTES as usize, 0);
            let written = file
                .write_at(buf, offset)
                .await
                .map_err(|e| StorageError::io(&tmp, e))?;
            if written != buf_len {
                return Err(StorageError::io(
                    &tmp,
                    std::io::Error::new(
                        std::io::ErrorKind::WriteZero,
                        format!("short write: {written} of {buf_len} bytes at offset {offset}"),
                    ),
                ));
            }
            offset += len;
        }
        // The last chunk was padded to a block; cut the file to its exact length.
        file.truncate(total_bytes)
            .await
            .map_err(|e| StorageError::io(&tmp, e))?;
        file.fdatasync()
            .await
            .map_err(|e| StorageError::io(&tmp, e))?;
        Ok(())
    }
    .await;
    let closed = file.close().await.map_err(|e| StorageError::io(&tmp, e));
    result?;
    closed?;
    glommio::io::rename(&tmp, &fin)
        .await
        .map_err(|e| StorageError::io(&fin, e))?;
    sync_dir(dir).await?;
    Ok(fin)
}

/// Copies image bytes `[offset, offset+len)` of `header ++ zeros ++ payload` into `dst`
/// and zeroes the rest of `dst` (block padding).
fn fill_image(
    dst: &mut [u8],
    offset: u64,
    len: usize,
    header: &[u8],
    header_len: u64,
    payload: &[&[u8]],
) {
    assert!(len <= dst.len());
    let mut pos = 0usize;
    while pos < len {
        let virt = offset + pos as u64;
        if virt < header.len() as u64 {
            let n = (header.len() - virt as usize).min(len - pos);
            dst[pos..pos + n].copy_from_slice(&header[virt as usize..virt as usize + n]);
            pos += n;
        } else if virt < header_len {
            let n = ((header_len - virt) as usize).min(len - pos);
            dst[pos..pos + n].fill(0);
            pos += n;
        } else {
            // The payload is the concatenation of its parts: find the part holding `p`.
            let mut p = (virt - header_len) as usize;
            let part = payload
                .iter()
                .find(|part| {
                    if p < part.len() {
                        true
                    } else {
                        p -= part.len();
                        false
                    }
                })
                .expect("offset within the payload");
            let n = (part.len() - p).min(len - pos);
            dst[pos..pos + n].copy_from_slice(&part[p..p + n]);
            pos += n;
        }
    }
    dst[len..].fill(0);
}

/// Atomically replaces `dir/name` with `payload` framed by the small-file header
/// (temp file `dir/name.tmp`, write, fdatasync, rename, directory fsync). After it returns,
/// a crash leaves either the old or the new value, never a mix.
pub async fn write_file_atomic(dir: &Path, name: &str, payload: &[u8]) -> Result<(), StorageError> {
    assert!(
        !name.is_empty() && !name.contains('/'),
        "small-file name must be a plain file name"
    );
    if payload.len() as u64 > MAX_SMALL_FILE_BYTES - SMALL_FILE_HEADER_SIZE_BYTES {
        return Err(StorageError::RecordTooLarge {
            len: payload.len(),
            max: (MAX_SMALL_FILE_BYTES - SMALL_FILE_HEADER_SIZE_BYTES) as usize,
        });
    }
    let tmp_name = format!("{name}.tmp");
    write_framed_atomic(
        dir,
        &tmp_name,
        name,
        SMALL_FILE_MAGIC,
        SMALL_FILE_HEADER_SIZE_BYTES as u32,
        0,
        &[payload],
    )
    .await
    .map(|_| ())
}

/// Reads a file written by [`write_file_atomic`]: `Ok(None)` if it does not exist,
/// `Err(Corrupt)` if its header or CRC is bad.
///
/// Cold path (start-up, DDL): plain blocking `std::fs::read`, since the file is small and
/// glommio has no buffered whole-file read.
pub fn read_file_checked(path: &Path) -> Result<Option<Vec<u8>>, StorageError> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(StorageError::io(path, e)),
    };
    if meta.len() > MAX_SMALL_FILE_BYTES {
        return Err(StorageError::corrupt(
            path,
            0,
            format!(
                "file is {} bytes, more than the {MAX_SMALL_FILE_BYTES}-byte limit",
                meta.len()
            ),
        ));
    }
    let image = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(StorageError::io(path, e)),
    };
    let (_, range) = FramedHeader::validate_image(
        &image,
        SMALL_FILE_MAGIC,
        SMALL_FILE_HEADER_SIZE_BYTES as u32,
    )
    .map_err(|(offset, reason)| StorageError::corrupt(path, offset, reason))?;
    let mut image = image;
    image.truncate(range.end);
    image.drain(..range.start);
    Ok(Some(image))
}

thread_local! {
    /// Devices (st_dev) whose glommio iopoll probe this thread has primed.
    static PRIMED_DEVICES: std::cell::RefCell<Vec<u64>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Makes glommio's per-thread, per-device iopoll probe see a non-empty file.
///
/// glommio decides whether a device supports polled I/O by reading offset 0 of the FIRST
/// DMA file opened on it (per thread). If that file is empty the read "succeeds" at EOF and
/// the device is marked pollable even when it is not; every later read of real data then
/// fails with EOPNOTSUPP (seen on virtio disks). So before opening any DMA file in `dir`
/// we open a one-block file there once per (thread, device).
///
/// Cold path (first use of a directory on a thread): blocking `std::fs` for the probe file.
pub(crate) async fn prime_dma_probe(dir: &Path) -> Result<(), StorageError> {
    use std::os::unix::fs::MetadataExt;
    let dev = std::fs::metadata(dir)
        .map_err(|e| StorageError::io(dir, e))?
        .dev();
    if PRIMED_DEVICES.with(|p| p.borrow().contains(&dev)) {
        return Ok(());
    }
    let probe = dir.join(".tarn-dma-probe");
    std::fs::write(&probe, [0x55u8; BLOCK_SIZE_BYTES as usize])
        .map_err(|e| StorageError::io(&probe, e))?;
    let opened = glommio::io::DmaFile::open(&probe)
        .await
        .map_err(|e| StorageError::io(&probe, e));
    if let Ok(f) = opened {
        let _ = f.close().await;
    }
    let _ = std::fs::remove_file(&probe);
    PRIMED_DEVICES.with(|p| p.borrow_mut().push(dev));
    Ok(())
}
