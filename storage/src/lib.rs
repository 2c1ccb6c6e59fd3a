//! `tarn-storage`: the only crate in Tarn that lays out bytes on disk.
//!
//! * [`Log`] — the per-shard durable log: preallocated, zero-filled segment files written
//!   with O_DIRECT through io_uring (glommio DMA files), CRC32C-framed records, group
//!   commit (one O_DSYNC write per group), torn-tail repair and refusal to start on
//!   mid-log corruption.
//! * [`checkpoint`] — whole-state snapshots, written atomically and loaded with `mmap`.
//! * [`write_file_atomic`] / [`read_file_checked`] — small whole-file values (the catalog,
//!   the data-dir meta) with the same header + CRC framing.
//!
//! The byte layout of every file is drawn in `storage/FORMAT.md`.
//!
//! Threading: everything here runs on ONE glommio executor (thread-per-core). [`Log`] is
//! `!Send` and is shared within its executor as `Rc<Log>`.

mod error;
mod framed;
mod log;
mod notify;

pub mod checkpoint;

pub use error::{OpenError, StorageError};
pub use framed::{read_file_checked, write_file_atomic};
pub use log::{Durability, Log, LogOptions, RecoveryReport, TruncatedTail};

use std::time::Duration;

/// Alignment and granularity of every O_DIRECT write and read (the logical block size of
/// NVMe drives in native mode). Larger logical block sizes are refused at open. Cost: a
/// group smaller than this still writes a whole block.
pub const BLOCK_SIZE_BYTES: u64 = 4096;

/// Size of the header block at the start of every log segment. One whole block so the first
/// record starts block-aligned and the header is never rewritten by record flushes.
pub const SEGMENT_HEADER_SIZE_BYTES: u64 = BLOCK_SIZE_BYTES;

/// Size of the fixed record header (`total_len u32`, `crc32c u32`, `lsn u64`).
pub const RECORD_HEADER_SIZE_BYTES: u64 = 16;

/// Every record starts at a multiple of this; records are zero-padded up to it. Keeps
/// the `u64` LSN naturally aligned and makes the torn-tail scan step 8 bytes instead of 1.
/// Cost: up to 7 padding bytes per record.
pub const RECORD_ALIGNMENT_BYTES: u64 = 8;

/// Largest payload one log record can carry. Twice the wire protocol's 8 MiB frame limit,
/// so one shard's part of the largest ingest batch always fits even after re-encoding.
/// Cost: a segment must be at least this big to hold it (see [`Log::max_record_payload_bytes`]
/// for logs configured with smaller segments) and recovery may hold one such record in memory.
pub const MAX_RECORD_PAYLOAD_BYTES: usize = 16 << 20;

/// Default log segment size. Big enough that rotation (a rename + directory fsync) is rare
/// and that [`MAX_RECORD_PAYLOAD_BYTES`] fits; small enough that a checkpoint frees disk
/// promptly. Cost: one spare segment of this size is always preallocated and zero-filled,
/// so a shard's log uses at least 2 × this much disk.
pub const DEFAULT_SEGMENT_SIZE_BYTES: u64 = 64 << 20;

/// Smallest accepted segment size (tests use small segments to exercise rotation). Below
/// this the header block dominates and rotation would dominate the write path.
pub const MIN_SEGMENT_SIZE_BYTES: u64 = 64 << 10;

/// Largest accepted segment size. Zero-filling a spare of this size takes ~1 s of device
/// bandwidth in the background, and recovery scans whole segments.
pub const MAX_SEGMENT_SIZE_BYTES: u64 = 1 << 30;

/// Appenders wait (backpressure) when this many appended bytes are not yet handed to the
/// flusher, so a slow disk bounds memory instead of growing it. A single record bigger
/// than this is still accepted when nothing else is pending. Cost: the in-memory group
/// buffer and the in-flight DMA buffer can each reach about this size.
pub const MAX_PENDING_BYTES: u64 = 4 << 20;

/// In async mode, pending bytes at which the flusher starts a flush without waiting for
/// the interval, so a burst turns into large sequential writes instead of memory growth.
pub const ASYNC_FLUSH_THRESHOLD_BYTES: u64 = 1 << 20;

/// Default for [`LogOptions::async_flush_interval`]: in async mode an acknowledged write
/// is at most this old when it becomes durable (plus one flush). Cost: the window of
/// acknowledged-but-lost writes on power loss.
pub const DEFAULT_ASYNC_FLUSH_INTERVAL: Duration = Duration::from_millis(5);

/// Size of each write used to zero-fill a new segment (and to zero a torn tail). Large
/// enough for sequential bandwidth, small enough not to monopolise the device queue ahead
/// of foreground commits. Cost: one DMA buffer of this size while filling.
pub const ZERO_FILL_CHUNK_BYTES: u64 = 1 << 20;

/// Read size used when scanning segments during recovery. Cost: memory held while scanning
/// (a record larger than this is read in one piece of its own size).
pub const RECOVERY_READ_CHUNK_BYTES: u64 = 1 << 20;

/// Size of each write when writing checkpoint and small files. Bounds the extra DMA memory
/// a checkpoint write needs, whatever the checkpoint's size.
pub const FILE_WRITE_CHUNK_BYTES: u64 = 1 << 20;

/// Header size of a checkpoint file: the payload starts at this offset, so through `mmap`
/// (page-aligned) the payload is 4096-byte aligned — rkyv archives are read in place.
pub const CHECKPOINT_HEADER_SIZE_BYTES: u64 = BLOCK_SIZE_BYTES;

/// Header size of a small file ([`write_file_atomic`]); the rest of its framing is the same
/// as a checkpoint's.
pub const SMALL_FILE_HEADER_SIZE_BYTES: u64 = 64;

/// Largest small file [`read_file_checked`] accepts: the whole file is read into memory
/// at start-up. The catalog is far smaller.
pub const MAX_SMALL_FILE_BYTES: u64 = 64 << 20;

pub(crate) fn align_up(v: u64, align: u64) -> u64 {
    debug_assert!(align.is_power_of_two());
    (v + align - 1) & !(align - 1)
}

pub(crate) fn align_down(v: u64, align: u64) -> u64 {
    debug_assert!(align.is_power_of_two());
    v & !(align - 1)
}
