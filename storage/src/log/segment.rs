//! Segment files and record framing (`storage/FORMAT.md` §1.1, §1.2): segment file names,
//! the segment header block's encoding and validation, and the framing of one record
//! (length, CRC32C, LSN, payload, padding to 8 bytes).

use crate::align_up;
use crate::{
    BLOCK_SIZE_BYTES, MAX_RECORD_PAYLOAD_BYTES, MAX_SEGMENT_SIZE_BYTES, MIN_SEGMENT_SIZE_BYTES,
    RECORD_ALIGNMENT_BYTES, RECORD_HEADER_SIZE_BYTES, SEGMENT_HEADER_SIZE_BYTES,
};

const SEGMENT_MAGIC: [u8; 8] = *b"TARNLOG\0";
const SEGMENT_VERSION: u32 = 1;
pub(super) const SEGMENT_HEADER_USED_BYTES: usize = 64;
const SEGMENT_PREFIX: &str = "log-";
const SEGMENT_SUFFIX: &str = ".seg";
/// Name of the preallocated, zero-filled spare segment while it waits to be installed.
pub(super) const SPARE_NAME: &str = "log-spare.tmp";

pub(super) fn segment_name(first_lsn: u64) -> String {
    format!("{SEGMENT_PREFIX}{first_lsn:020}{SEGMENT_SUFFIX}")
}

pub(super) fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name
        .strip_prefix(SEGMENT_PREFIX)?
        .strip_suffix(SEGMENT_SUFFIX)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

pub(super) fn encode_segment_header(
    first_lsn: u64,
    segment_size_bytes: u64,
) -> [u8; SEGMENT_HEADER_USED_BYTES] {
    let mut b = [0u8; SEGMENT_HEADER_USED_BYTES];
    b[0..8].copy_from_slice(&SEGMENT_MAGIC);
    b[8..12].copy_from_slice(&SEGMENT_VERSION.to_le_bytes());
    b[12..16].copy_from_slice(&(SEGMENT_HEADER_SIZE_BYTES as u32).to_le_bytes());
    b[16..24].copy_from_slice(&first_lsn.to_le_bytes());
    b[24..32].copy_from_slice(&segment_size_bytes.to_le_bytes());
    let crc = crc32c::crc32c(&b[0..60]);
    b[60..64].copy_from_slice(&crc.to_le_bytes());
    b
}

/// Returns (first_lsn, segment_size_bytes) or a reason.
pub(super) fn decode_segment_header(b: &[u8]) -> Result<(u64, u64), String> {
    assert!(b.len() >= SEGMENT_HEADER_USED_BYTES);
    if b[0..8] != SEGMENT_MAGIC {
        return Err("bad segment header magic".into());
    }
    let crc = u32::from_le_bytes(b[60..64].try_into().unwrap());
    if crc32c::crc32c(&b[0..60]) != crc {
        return Err("segment header CRC mismatch".into());
    }
    let version = u32::from_le_bytes(b[8..12].try_into().unwrap());
    if version != SEGMENT_VERSION {
        return Err(format!("unsupported segment format version {version}"));
    }
    let header_size = u32::from_le_bytes(b[12..16].try_into().unwrap());
    if header_size as u64 != SEGMENT_HEADER_SIZE_BYTES {
        return Err(format!(
            "segment header size {header_size}, expected {SEGMENT_HEADER_SIZE_BYTES}"
        ));
    }
    let first_lsn = u64::from_le_bytes(b[16..24].try_into().unwrap());
    let size = u64::from_le_bytes(b[24..32].try_into().unwrap());
    if size % BLOCK_SIZE_BYTES != 0
        || !(MIN_SEGMENT_SIZE_BYTES..=MAX_SEGMENT_SIZE_BYTES).contains(&size)
    {
        return Err(format!("segment size {size} in header is invalid"));
    }
    if first_lsn == 0 {
        return Err("segment first_lsn is 0".into());
    }
    Ok((first_lsn, size))
}

/// Framed size of a record with `payload_len` payload bytes (header + payload + padding).
pub(super) fn framed_len(payload_len: usize) -> u64 {
    align_up(
        RECORD_HEADER_SIZE_BYTES + payload_len as u64,
        RECORD_ALIGNMENT_BYTES,
    )
}

/// CRC32C over `total_len (u32 LE) ++ lsn (u64 LE) ++ payload`.
pub(super) fn record_crc(total_len: u32, lsn: u64, payload: &[u8]) -> u32 {
    let crc = crc32c::crc32c(&total_len.to_le_bytes());
    let crc = crc32c::crc32c_append(crc, &lsn.to_le_bytes());
    crc32c::crc32c_append(crc, payload)
}

/// Frames a record of `len` payload bytes that `fill` writes in place.
pub(super) fn encode_record_with(
    out: &mut Vec<u8>,
    lsn: u64,
    len: usize,
    fill: impl FnOnce(&mut [u8]),
) {
    let start = out.len();
    let total_len = (RECORD_HEADER_SIZE_BYTES as usize + len) as u32;
    let framed = framed_len(len) as usize;
    out.resize(start + framed, 0);
    let body = start + RECORD_HEADER_SIZE_BYTES as usize;
    fill(&mut out[body..body + len]);
    let crc = record_crc(total_len, lsn, &out[body..body + len]);
    out[start..start + 4].copy_from_slice(&total_len.to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    out[start + 8..start + 16].copy_from_slice(&lsn.to_le_bytes());
    debug_assert_eq!((out.len() - start) as u64 % RECORD_ALIGNMENT_BYTES, 0);
}

/// Parsed record header: (total_len, crc, lsn).
pub(super) fn parse_record_header(h: &[u8]) -> (u32, u32, u64) {
    (
        u32::from_le_bytes(h[0..4].try_into().unwrap()),
        u32::from_le_bytes(h[4..8].try_into().unwrap()),
        u64::from_le_bytes(h[8..16].try_into().unwrap()),
    )
}

/// Whether a record of `total_len` at `offset` fits a segment of `segment_size` bytes.
pub(super) fn record_len_sane(total_len: u32, offset: u64, segment_size: u64) -> bool {
    let total = total_len as u64;
    total >= RECORD_HEADER_SIZE_BYTES
        && total - RECORD_HEADER_SIZE_BYTES <= MAX_RECORD_PAYLOAD_BYTES as u64
        && offset + align_up(total, RECORD_ALIGNMENT_BYTES) <= segment_size
}
