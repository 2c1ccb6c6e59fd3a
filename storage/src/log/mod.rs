//! The per-shard durable log: segment files, group commit, recovery.
//!
//! Concurrency model: one glommio executor. Appenders copy framed records into the open
//! group (`State::open`, a `Vec<u8>` image of the segment from the last partially written
//! block onwards). One flusher task takes the group (copying it into one DMA buffer),
//! writes it with O_DIRECT|O_DSYNC at its block-aligned offset (durable on completion), advances
//! `durable_lsn` and wakes waiters. While that I/O is in flight, new appends accumulate
//! in the next group. No RefCell borrow is ever held across an `.await`.
//!
//! This module holds the public API ([`Log`], [`LogOptions`], [`RecoveryReport`]) and the
//! in-memory state; the parts of the work live in:
//!
//! * [`segment`] — segment file names, the segment header and record framing
//!   (`storage/FORMAT.md` §1.1, §1.2);
//! * [`flusher`] — group commit: the open and sealed groups, the flusher task, the spare
//!   segment and rotation on disk (§1.3);
//! * [`reader`] — reading and validating records of a segment file, and
//!   [`Log::read_records`];
//! * [`recover`](mod@recover) — [`Log::open`]'s recovery: header checks, the record scan,
//!   torn-tail truncation and zero-extension of a short newest segment (§1.4).

mod flusher;
mod reader;
mod recover;
mod segment;

use crate::framed::sync_dir;
use crate::notify::Notify;
use crate::{align_down, OpenError, StorageError};
use crate::{
    ASYNC_FLUSH_THRESHOLD_BYTES, BLOCK_SIZE_BYTES, DEFAULT_ASYNC_FLUSH_INTERVAL,
    DEFAULT_SEGMENT_SIZE_BYTES, MAX_PENDING_BYTES, MAX_RECORD_PAYLOAD_BYTES,
    MAX_SEGMENT_SIZE_BYTES, MIN_SEGMENT_SIZE_BYTES, RECORD_HEADER_SIZE_BYTES,
    SEGMENT_HEADER_SIZE_BYTES,
};
use flusher::{run_flusher, Group};
use glommio::Task;
use recover::recover;
use segment::{encode_record_with, framed_len, segment_name};
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use std::io;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

/// When an append counts as done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// The server acknowledges after [`Log::wait_durable`]: written and fdatasync'd.
    Sync,
    /// The server acknowledges after apply; the flusher makes records durable within
    /// [`LogOptions::async_flush_interval`].
    Async,
}

/// Options of [`Log::open`].
#[derive(Clone, Debug)]
pub struct LogOptions {
    /// The shard's log directory (e.g. `<data>/shard-3`); created if missing.
    pub dir: PathBuf,
    /// Size of each segment file; a multiple of [`BLOCK_SIZE_BYTES`] within
    /// [`MIN_SEGMENT_SIZE_BYTES`]..=[`MAX_SEGMENT_SIZE_BYTES`].
    pub segment_size_bytes: u64,
    pub durability: Durability,
    /// Async mode: the longest an appended record waits before its flush starts.
    pub async_flush_interval: Duration,
}

impl LogOptions {
    /// Options with [`DEFAULT_SEGMENT_SIZE_BYTES`] and [`DEFAULT_ASYNC_FLUSH_INTERVAL`].
    pub fn new(dir: PathBuf, durability: Durability) -> Self {
        LogOptions {
            dir,
            segment_size_bytes: DEFAULT_SEGMENT_SIZE_BYTES,
            durability,
            async_flush_interval: DEFAULT_ASYNC_FLUSH_INTERVAL,
        }
    }
}

/// What [`Log::open`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Records passed to the replay callback (those with lsn > after_lsn).
    pub records_replayed: u64,
    /// The log's last LSN after recovery (never below `after_lsn`): the next append gets `last_lsn + 1`.
    pub last_lsn: u64,
    /// Set when a torn tail was cut off.
    pub truncated_tail: Option<TruncatedTail>,
}

/// A torn tail that recovery discarded (zeroed durably).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TruncatedTail {
    pub path: PathBuf,
    /// Offset of the first invalid byte range (the first bad record header).
    pub offset: u64,
    /// Bytes from `offset` up to the end of the last non-zero byte found after it.
    pub bytes_discarded: u64,
}

fn io_error(path: &Path, what: &str, e: impl Into<io::Error>) -> StorageError {
    let e: io::Error = e.into();
    StorageError::io(path, io::Error::new(e.kind(), format!("{what}: {e}")))
}

// ---------------------------------------------------------------------------------------
// In-memory state
// ---------------------------------------------------------------------------------------

/// A live segment file (for accounting and removal).
#[derive(Debug)]
struct SegInfo {
    first_lsn: u64,
    path: PathBuf,
    size_bytes: u64,
    /// End of record data (offset of the next record). For a segment recovery did not scan
    /// (wholly covered by the checkpoint), its size.
    data_end: u64,
    /// When it stopped taking records (rotation; for segments found at open, the open time:
    /// retention then counts from the restart, which errs on keeping). `None`: still open.
    sealed_at: Option<std::time::SystemTime>,
}

struct State {
    /// Group of the newest segment; appends go here.
    open: Group,
    /// Complete groups of older segments not yet taken by the flusher (after a rotation).
    sealed: VecDeque<Group>,
    /// Live segments in LSN order; the last one is the segment of `open`.
    segments: Vec<SegInfo>,
    /// Bytes appended and not yet taken by the flusher.
    pending_bytes: u64,
    /// When `pending_bytes` last went from zero to non-zero (async mode deadline).
    first_pending_at: Option<Instant>,
    /// Start the next flush now (async mode): flush()/wait_durable()/threshold/close.
    kick: bool,
    /// The next append must start a new segment (recovery found after_lsn > last record).
    force_rotate: bool,
    closing: bool,
    closed: bool,
    /// First I/O error of the flusher; the log refuses all further work (no fsync retry).
    failed: Option<(PathBuf, io::ErrorKind, String)>,
    /// Segments readers of [`Log::read_records`] still need: per first LSN of the segment a
    /// reader is at, how many readers are there. No segment from the lowest one on is removed.
    read_pins: BTreeMap<u64, usize>,
}

/// The per-shard durable log. Use from ONE glommio executor, shared as `Rc<Log>`.
pub struct Log {
    opts: LogOptions,
    max_payload: usize,
    st: RefCell<State>,
    last_lsn: Cell<u64>,
    durable_lsn: Cell<u64>,
    /// Wakes the flusher (data appended, kick, close).
    data_ready: Notify,
    /// Wakes appenders and durability waiters (group taken, group durable, failure, close).
    progress: Notify,
    flusher: RefCell<Option<Task<()>>>,
}

impl std::fmt::Debug for Log {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Log")
            .field("dir", &self.opts.dir)
            .field("last_lsn", &self.last_lsn.get())
            .field("durable_lsn", &self.durable_lsn.get())
            .finish()
    }
}

impl Log {
    /// Opens the log in `opts.dir` (creating it), validates every segment, calls
    /// `replay(lsn, payload)` for every record with `lsn > after_lsn` in LSN order,
    /// truncates a torn tail (`tracing::warn` + [`RecoveryReport::truncated_tail`]),
    /// refuses corruption before the tail with [`StorageError::Corrupt`] naming file and
    /// offset, spawns the group-commit flusher on the current glommio executor, and
    /// returns the log ready for appends.
    ///
    /// `after_lsn` is the LSN covered by the loaded checkpoint (0 without one). If open
    /// fails, `replay` may already have been called for a prefix: discard that state.
    pub async fn open<E>(
        opts: LogOptions,
        after_lsn: u64,
        replay: impl FnMut(u64, &[u8]) -> Result<(), E>,
    ) -> Result<(Rc<Log>, RecoveryReport), OpenError<E>> {
        validate_options(&opts)?;
        create_dir(&opts.dir).await?;
        crate::framed::prime_dma_probe(&opts.dir).await?;
        let rec = recover(&opts, after_lsn, replay).await?;
        let max_payload = (opts.segment_size_bytes
            - SEGMENT_HEADER_SIZE_BYTES
            - RECORD_HEADER_SIZE_BYTES) as usize;
        let max_payload = max_payload.min(MAX_RECORD_PAYLOAD_BYTES);
        assert!(framed_len(max_payload) <= opts.segment_size_bytes - SEGMENT_HEADER_SIZE_BYTES);

        let last_lsn = rec.last_lsn.max(after_lsn);
        let (open, active_file, force_rotate) = match rec.active {
            Some(a) => {
                let group = Group {
                    segment_first_lsn: a.first_lsn,
                    segment_size: a.size_bytes,
                    install: false,
                    base: align_down(a.data_end, BLOCK_SIZE_BYTES),
                    bytes: a.tail_block,
                    new_bytes: 0,
                    last_lsn: rec.last_lsn,
                };
                assert_eq!(group.end(), a.data_end);
                (group, Some((a.file, a.path)), rec.last_lsn < after_lsn)
            }
            None => (
                Group::new_segment(last_lsn + 1, opts.segment_size_bytes),
                None,
                false,
            ),
        };
        let mut segments = rec.segments;
        if open.install {
            segments.push(SegInfo {
                first_lsn: open.segment_first_lsn,
                path: opts.dir.join(segment_name(open.segment_first_lsn)),
                size_bytes: open.segment_size,
                data_end: SEGMENT_HEADER_SIZE_BYTES,
                sealed_at: None,
            });
        }
        let report = RecoveryReport {
            records_replayed: rec.records_replayed,
            last_lsn,
            truncated_tail: rec.truncated_tail,
        };
        let log = Rc::new(Log {
            max_payload,
            st: RefCell::new(State {
                open,
                sealed: VecDeque::new(),
                segments,
                pending_bytes: 0,
                first_pending_at: None,
                kick: false,
                force_rotate,
                closing: false,
                closed: false,
                failed: None,
                read_pins: BTreeMap::new(),
            }),
            last_lsn: Cell::new(last_lsn),
            durable_lsn: Cell::new(last_lsn),
            data_ready: Notify::default(),
            progress: Notify::default(),
            flusher: RefCell::new(None),
            opts,
        });
        let task = glommio::spawn_local(run_flusher(log.clone(), active_file));
        *log.flusher.borrow_mut() = Some(task);
        Ok((log, report))
    }

    /// Largest payload [`Log::append`] accepts: [`MAX_RECORD_PAYLOAD_BYTES`], or less when
    /// the configured segment is too small to hold such a record.
    pub fn max_record_payload_bytes(&self) -> usize {
        self.max_payload
    }

    /// Appends one record to the pending group and returns its LSN (first LSN is 1,
    /// contiguous). Waits only when more than [`MAX_PENDING_BYTES`] are waiting for the
    /// flusher (backpressure). The record is durable once [`Log::wait_durable`] returns.
    pub async fn append(&self, payload: &[u8]) -> Result<u64, StorageError> {
        self.append_with(payload.len(), |b| b.copy_from_slice(payload))
            .await
    }

    /// [`Log::append`] of a `len`-byte payload that `fill` writes in place, called exactly once
    /// at the moment the record gets its LSN (after any back-pressure wait, with no await in
    /// between). Lets a caller put something in the record that must follow LSN order, such
    /// as an append timestamp that never decreases along the log.
    pub async fn append_with(
        &self,
        len: usize,
        fill: impl FnOnce(&mut [u8]),
    ) -> Result<u64, StorageError> {
        if len > self.max_payload {
            return Err(StorageError::RecordTooLarge {
                len,
                max: self.max_payload,
            });
        }
        let framed = framed_len(len);
        loop {
            let progressed = {
                let st = self.st.borrow();
                self.check_writable(&st)?;
                if st.pending_bytes == 0 || st.pending_bytes + framed <= MAX_PENDING_BYTES {
                    break;
                }
                self.progress.notified()
            };
            self.data_ready.notify_all();
            progressed.await;
        }
        let (lsn, wake_flusher) = {
            let mut guard = self.st.borrow_mut();
            let st = &mut *guard;
            let lsn = self.last_lsn.get() + 1;
            if st.force_rotate || st.open.end() + framed > st.open.segment_size {
                self.rotate(st, lsn);
            }
            let before = st.open.end();
            encode_record_with(&mut st.open.bytes, lsn, len, fill);
            assert_eq!(st.open.end(), before + framed);
            assert!(st.open.end() <= st.open.segment_size);
            assert_eq!(st.open.last_lsn + 1, lsn);
            st.open.last_lsn = lsn;
            st.open.new_bytes += framed;
            let was_idle = st.pending_bytes == 0;
            st.pending_bytes += framed;
            let seg = st.segments.last_mut().expect("a live segment");
            assert_eq!(seg.first_lsn, st.open.segment_first_lsn);
            seg.data_end = st.open.end();
            self.last_lsn.set(lsn);
            let wake = match self.opts.durability {
                Durability::Sync => true,
                Durability::Async => {
                    if was_idle {
                        st.first_pending_at = Some(Instant::now());
                    }
                    if st.pending_bytes >= ASYNC_FLUSH_THRESHOLD_BYTES {
                        st.kick = true;
                    }
                    was_idle || st.kick
                }
            };
            (lsn, wake)
        };
        if wake_flusher {
            self.data_ready.notify_all();
        }
        Ok(lsn)
    }

    /// Seals the open group and starts a new segment whose first record is `lsn`.
    fn rotate(&self, st: &mut State, lsn: u64) {
        let fresh = Group::new_segment(lsn, self.opts.segment_size_bytes);
        let old = std::mem::replace(&mut st.open, fresh);
        assert!(
            !(old.install && old.new_bytes == 0),
            "a new segment must hold at least one record"
        );
        if old.new_bytes > 0 {
            st.sealed.push_back(old);
        }
        st.force_rotate = false;
        if let Some(last) = st.segments.last_mut() {
            last.sealed_at = Some(std::time::SystemTime::now());
        }
        st.segments.push(SegInfo {
            first_lsn: lsn,
            path: self.opts.dir.join(segment_name(lsn)),
            size_bytes: self.opts.segment_size_bytes,
            data_end: SEGMENT_HEADER_SIZE_BYTES,
            sealed_at: None,
        });
    }

    fn check_writable(&self, st: &State) -> Result<(), StorageError> {
        if let Some(f) = &st.failed {
            return Err(failure_error(f));
        }
        if st.closing || st.closed {
            return Err(StorageError::Closed);
        }
        Ok(())
    }

    /// Resolves once `lsn` is durable (written and fdatasync'd). In async mode this asks
    /// the flusher to flush now instead of at the end of its interval.
    pub async fn wait_durable(&self, lsn: u64) -> Result<(), StorageError> {
        assert!(
            lsn <= self.last_lsn.get(),
            "wait_durable({lsn}) beyond last_lsn {}",
            self.last_lsn.get()
        );
        loop {
            if self.durable_lsn.get() >= lsn {
                return Ok(());
            }
            let progressed = {
                let mut st = self.st.borrow_mut();
                if let Some(f) = &st.failed {
                    return Err(failure_error(f));
                }
                if st.closed {
                    return Err(StorageError::Closed);
                }
                st.kick = true;
                self.progress.notified()
            };
            self.data_ready.notify_all();
            progressed.await;
        }
    }

    /// Makes everything appended so far durable.
    pub async fn flush(&self) -> Result<(), StorageError> {
        self.wait_durable(self.last_lsn.get()).await
    }

    /// LSN of the last appended record (0 if none ever).
    pub fn last_lsn(&self) -> u64 {
        self.last_lsn.get()
    }

    /// Every record with an LSN up to this one is durable.
    pub fn durable_lsn(&self) -> u64 {
        self.durable_lsn.get()
    }

    /// Approximate bytes of log records after `lsn` (for the checkpoint policy).
    pub fn bytes_since(&self, lsn: u64) -> u64 {
        let st = self.st.borrow();
        let last = self.last_lsn.get();
        let mut total = 0u64;
        for (i, seg) in st.segments.iter().enumerate() {
            let seg_last = st.segments.get(i + 1).map_or(last, |n| n.first_lsn - 1);
            if seg_last <= lsn || seg_last < seg.first_lsn {
                continue;
            }
            let data = seg.data_end - SEGMENT_HEADER_SIZE_BYTES;
            if seg.first_lsn > lsn {
                total += data;
            } else {
                let records = seg_last - seg.first_lsn + 1;
                total += (data as u128 * (seg_last - lsn) as u128 / records as u128) as u64;
            }
        }
        total
    }

    /// Total size of the live segment files (each is preallocated to its full size). The
    /// spare segment being prepared is not included.
    pub fn disk_bytes(&self) -> u64 {
        let st = self.st.borrow();
        let mut total: u64 = st.segments.iter().map(|s| s.size_bytes).sum();
        if st.open.install {
            total -= st.open.segment_size; // not created yet
        }
        total
    }

    /// After a checkpoint covering every lsn ≤ `upto` is durable, deletes every segment
    /// whose records are all ≤ `upto` (and durable) and, with `keep_sealed_since`, that was
    /// sealed before that time (retention: the oldest segments go first, the rest are kept
    /// for readers of the log's history, see [`Log::read_records`]). Never deletes the newest
    /// segment, nor a segment that a running [`Log::read_records`] has yet to read (it is
    /// removed by a later call). Returns how many segment files were removed.
    pub async fn remove_segments_covered_by(
        &self,
        upto: u64,
        keep_sealed_since: Option<std::time::SystemTime>,
    ) -> Result<usize, StorageError> {
        let limit = upto.min(self.durable_lsn.get());
        let removed: Vec<PathBuf> = {
            let mut st = self.st.borrow_mut();
            let pinned = st.read_pins.keys().next().copied().unwrap_or(u64::MAX);
            let mut k = 0;
            while k + 1 < st.segments.len()
                && st.segments[k].first_lsn < pinned
                && st.segments[k + 1].first_lsn - 1 <= limit
                && keep_sealed_since.is_none_or(|t| st.segments[k].sealed_at.is_some_and(|s| s < t))
            {
                k += 1;
            }
            st.segments.drain(..k).map(|s| s.path).collect()
        };
        for path in &removed {
            glommio::io::remove(path)
                .await
                .map_err(|e| io_error(path, "removing covered segment", e))?;
        }
        Ok(removed.len())
    }

    /// LSN of the first record still on disk (the oldest retained segment's first).
    pub fn first_lsn(&self) -> u64 {
        self.st
            .borrow()
            .segments
            .first()
            .map_or(self.last_lsn.get() + 1, |s| s.first_lsn)
    }

    /// Flushes everything, stops the flusher and closes the files. Appends fail with
    /// [`StorageError::Closed`] from the moment this is called. Idempotent.
    pub async fn close(&self) -> Result<(), StorageError> {
        {
            let mut st = self.st.borrow_mut();
            st.closing = true;
            st.kick = true;
        }
        self.data_ready.notify_all();
        let task = self.flusher.borrow_mut().take();
        if let Some(task) = task {
            task.await;
        }
        let failed = {
            let mut st = self.st.borrow_mut();
            st.closed = true;
            st.failed.as_ref().map(failure_error)
        };
        self.progress.notify_all();
        match failed {
            Some(e) => Err(e),
            None => {
                assert_eq!(self.durable_lsn.get(), self.last_lsn.get());
                Ok(())
            }
        }
    }

    fn fail(&self, e: StorageError) {
        tracing::error!(error = %e, dir = %self.opts.dir.display(), "log flush failed; refusing further writes");
        let info = match e {
            StorageError::Io { path, source } => (path, source.kind(), source.to_string()),
            other => (
                self.opts.dir.clone(),
                io::ErrorKind::Other,
                other.to_string(),
            ),
        };
        self.st.borrow_mut().failed = Some(info);
        self.progress.notify_all();
    }
}

fn failure_error(f: &(PathBuf, io::ErrorKind, String)) -> StorageError {
    StorageError::Io {
        path: f.0.clone(),
        source: io::Error::new(
            f.1,
            format!("an earlier log write failed, the log is read-only: {}", f.2),
        ),
    }
}

fn validate_options(opts: &LogOptions) -> Result<(), StorageError> {
    let s = opts.segment_size_bytes;
    if !s.is_multiple_of(BLOCK_SIZE_BYTES)
        || !(MIN_SEGMENT_SIZE_BYTES..=MAX_SEGMENT_SIZE_BYTES).contains(&s)
    {
        return Err(StorageError::InvalidOptions(format!(
            "segment_size_bytes {s} must be a multiple of {BLOCK_SIZE_BYTES} between {MIN_SEGMENT_SIZE_BYTES} and {MAX_SEGMENT_SIZE_BYTES}"
        )));
    }
    Ok(())
}

async fn create_dir(dir: &Path) -> Result<(), StorageError> {
    match glommio::io::Directory::create(dir).await {
        Ok(d) => d
            .close()
            .await
            .map_err(|e| io_error(dir, "closing log directory", e)),
        Err(e) => {
            let e: io::Error = e.into();
            if e.kind() != io::ErrorKind::NotFound {
                return Err(io_error(dir, "creating log directory", e));
            }
            // Cold path (start-up): glommio's mkdir is not recursive.
            std::fs::create_dir_all(dir).map_err(|e| io_error(dir, "creating log directory", e))?;
            if let Some(parent) = dir.parent() {
                sync_dir(parent).await?;
            }
            Ok(())
        }
    }
}
