//! Group commit (`storage/FORMAT.md` §1.3): the unflushed image of a segment ([`Group`]),
//! the single flusher task that writes each group with one O_DIRECT|O_DSYNC write and
//! advances `durable_lsn`, installing a new segment from the preallocated, zero-filled spare
//! on rotation, and the zero-filling of spares.

use super::segment::{encode_segment_header, segment_name, SPARE_NAME};
use super::{io_error, Durability, Log, LogOptions};
use crate::framed::sync_dir;
use crate::{align_down, align_up, StorageError};
use crate::{ASYNC_FLUSH_THRESHOLD_BYTES, BLOCK_SIZE_BYTES};
use crate::{SEGMENT_HEADER_SIZE_BYTES, ZERO_FILL_CHUNK_BYTES};
use glommio::io::{DmaFile, OpenOptions};
use glommio::Task;
use std::io;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Instant;

/// Unflushed bytes of one segment: the image of `[base, base + bytes.len())`.
pub(super) struct Group {
    pub(super) segment_first_lsn: u64,
    pub(super) segment_size: u64,
    /// The segment file does not exist yet: the flusher installs the spare before writing.
    pub(super) install: bool,
    /// Block-aligned file offset of `bytes[0]`.
    pub(super) base: u64,
    /// Already-durable head of the partial block at `base` + records not yet taken.
    pub(super) bytes: Vec<u8>,
    /// Bytes appended since the flusher last took this group.
    pub(super) new_bytes: u64,
    /// LSN of the last record in `bytes`.
    pub(super) last_lsn: u64,
}

impl Group {
    pub(super) fn end(&self) -> u64 {
        self.base + self.bytes.len() as u64
    }

    /// A group for a segment not yet on disk: its image starts with the header block.
    pub(super) fn new_segment(first_lsn: u64, segment_size: u64) -> Group {
        let mut bytes = Vec::with_capacity(2 * BLOCK_SIZE_BYTES as usize);
        bytes.extend_from_slice(&encode_segment_header(first_lsn, segment_size));
        bytes.resize(SEGMENT_HEADER_SIZE_BYTES as usize, 0);
        Group {
            segment_first_lsn: first_lsn,
            segment_size,
            install: true,
            base: 0,
            bytes,
            new_bytes: 0,
            last_lsn: first_lsn - 1,
        }
    }

    /// Copies the group into one aligned DMA buffer (padding zeroed). With `keep_tail`,
    /// the group keeps the partial last block, to be rewritten with more data next time.
    fn take_job(&mut self, keep_tail: bool) -> Job {
        assert!(self.new_bytes > 0);
        assert_eq!(self.base % BLOCK_SIZE_BYTES, 0);
        let len = self.bytes.len();
        let buf_len = align_up(len as u64, BLOCK_SIZE_BYTES);
        assert!(
            self.base + buf_len <= self.segment_size,
            "group overflows its segment"
        );
        let mut buf = glommio::allocate_dma_buffer(buf_len as usize);
        let dst = buf.as_bytes_mut();
        dst[..len].copy_from_slice(&self.bytes);
        dst[len..].fill(0);
        let job = Job {
            segment_first_lsn: self.segment_first_lsn,
            segment_size: self.segment_size,
            install: self.install,
            base: self.base,
            buf,
            last_lsn: self.last_lsn,
        };
        self.install = false;
        self.new_bytes = 0;
        if keep_tail {
            let keep_from = align_down(len as u64, BLOCK_SIZE_BYTES);
            self.bytes.drain(..keep_from as usize);
            self.base += keep_from;
            assert!((self.bytes.len() as u64) < BLOCK_SIZE_BYTES);
        }
        job
    }
}

/// One durable (O_DSYNC) write for the flusher.
struct Job {
    segment_first_lsn: u64,
    segment_size: u64,
    install: bool,
    base: u64,
    buf: glommio::io::DmaBuffer,
    last_lsn: u64,
}

// ---------------------------------------------------------------------------------------
// Flusher
// ---------------------------------------------------------------------------------------

struct ActiveFile {
    file: DmaFile,
    path: PathBuf,
}

/// Opens the active segment for record writes with O_DSYNC on top of O_DIRECT: every write
/// is durable when it completes, so a group costs one io_uring round trip (write) instead of
/// two (write, then fdatasync). Measured on the development VM through glommio: 131 µs for
/// an 8 KiB O_DSYNC overwrite vs 214 µs for write + fdatasync. The segment's extents are
/// already written (zero-filled) and its size durable, so O_DSYNC flushes data only.
async fn open_active(file: DmaFile, path: PathBuf) -> Result<ActiveFile, StorageError> {
    file.close()
        .await
        .map_err(|e| io_error(&path, "closing segment before reopening it O_DSYNC", e))?;
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_DSYNC)
        .dma_open(&path)
        .await
        .map_err(|e| io_error(&path, "opening log segment O_DSYNC", e))?;
    Ok(ActiveFile { file, path })
}

pub(super) async fn run_flusher(log: Rc<Log>, active: Option<(DmaFile, PathBuf)>) {
    let mut cur = match active {
        Some((file, path)) => match open_active(file, path).await {
            Ok(a) => Some(a),
            Err(e) => {
                log.fail(e);
                None
            }
        },
        None => None,
    };
    let mut spare = Some(spawn_spare(&log.opts));
    let mut jobs: Vec<Job> = Vec::new();
    'run: loop {
        // 1. Wait for work.
        loop {
            let ready = {
                let st = log.st.borrow();
                if st.failed.is_some() {
                    break 'run;
                }
                if st.pending_bytes > 0 {
                    None
                } else if st.closing {
                    break 'run;
                } else {
                    Some(log.data_ready.notified())
                }
            };
            match ready {
                None => break,
                Some(ready) => ready.await,
            }
        }
        // 2. Async mode: let the group grow until the deadline, a kick, or the threshold.
        if log.opts.durability == Durability::Async {
            loop {
                let deadline = {
                    let st = log.st.borrow();
                    if st.kick || st.closing || st.pending_bytes >= ASYNC_FLUSH_THRESHOLD_BYTES {
                        break;
                    }
                    st.first_pending_at
                        .map(|t| t + log.opts.async_flush_interval)
                };
                let now = Instant::now();
                let Some(deadline) = deadline.filter(|d| *d > now) else {
                    break;
                };
                let ready = log.data_ready.notified();
                futures_lite::future::or(ready, glommio::timer::sleep(deadline - now)).await;
            }
        }
        // 3. Take every pending group (sync, under one borrow).
        {
            let mut guard = log.st.borrow_mut();
            let st = &mut *guard;
            while let Some(mut g) = st.sealed.pop_front() {
                jobs.push(g.take_job(false));
            }
            if st.open.new_bytes > 0 {
                jobs.push(st.open.take_job(true));
            }
            st.pending_bytes = 0;
            st.first_pending_at = None;
            st.kick = false;
        }
        log.progress.notify_all(); // backpressured appenders may go on
                                   // 4. Write each group durably, in order (a segment is complete and durable
                                   //    before the next segment receives any record).
        for job in jobs.drain(..) {
            let last = job.last_lsn;
            if let Err(e) = flush_job(&log.opts, &mut cur, &mut spare, job).await {
                log.fail(e);
                break 'run;
            }
            assert!(last >= log.durable_lsn.get());
            log.durable_lsn.set(last);
            log.progress.notify_all();
        }
    }
    jobs.clear();
    if let Some(a) = cur.take() {
        if let Err(e) = a.file.close().await {
            tracing::warn!(path = %a.path.display(), error = %e, "closing log segment failed");
        }
    }
    if let Some(task) = spare.take() {
        if let Some(Ok(file)) = task.cancel().await {
            let _ = file.close().await;
        }
        // Best effort: a leftover spare is removed at the next open anyway.
        let _ = glommio::io::remove(log.opts.dir.join(SPARE_NAME)).await;
    }
}

fn spawn_spare(opts: &LogOptions) -> Task<Result<DmaFile, StorageError>> {
    glommio::spawn_local(make_spare(
        opts.dir.join(SPARE_NAME),
        opts.segment_size_bytes,
    ))
}

/// Creates the spare segment: preallocated and zero-filled (so its extents are written
/// and later overwrites + fdatasync need no metadata journal commit), then fdatasync'd.
async fn make_spare(path: PathBuf, size: u64) -> Result<DmaFile, StorageError> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .dma_open(&path)
        .await
        .map_err(|e| io_error(&path, "creating spare segment", e))?;
    if file.alignment() > BLOCK_SIZE_BYTES || !BLOCK_SIZE_BYTES.is_multiple_of(file.alignment()) {
        return Err(StorageError::InvalidOptions(format!(
            "device needs {}-byte O_DIRECT alignment, tarn writes {BLOCK_SIZE_BYTES}-byte blocks",
            file.alignment()
        )));
    }
    file.pre_allocate(size, false)
        .await
        .map_err(|e| io_error(&path, "preallocating spare segment", e))?;
    zero_range(&file, &path, 0, size).await?;
    file.fdatasync()
        .await
        .map_err(|e| io_error(&path, "fdatasync of spare segment", e))?;
    Ok(file)
}

/// Writes zeros over `[start, end)` (both block-aligned).
pub(super) async fn zero_range(
    file: &DmaFile,
    path: &Path,
    start: u64,
    end: u64,
) -> Result<(), StorageError> {
    assert_eq!(start % BLOCK_SIZE_BYTES, 0);
    assert_eq!(end % BLOCK_SIZE_BYTES, 0);
    let mut zeros: Option<Rc<glommio::io::DmaBuffer>> = None;
    let mut off = start;
    while off < end {
        let len = ZERO_FILL_CHUNK_BYTES.min(end - off);
        let written = if len == ZERO_FILL_CHUNK_BYTES {
            let buf = zeros
                .get_or_insert_with(|| {
                    let mut b = glommio::allocate_dma_buffer(ZERO_FILL_CHUNK_BYTES as usize);
                    b.as_bytes_mut().fill(0);
                    Rc::new(b)
                })
                .clone();
            file.write_rc_at(buf, off).await
        } else {
            let mut b = glommio::allocate_dma_buffer(len as usize);
            b.as_bytes_mut().fill(0);
            file.write_at(b, off).await
        }
        .map_err(|e| io_error(path, "zero-filling segment", e))?;
        if written as u64 != len {
            return Err(short_write(path, written, len, off));
        }
        off += len;
    }
    Ok(())
}

pub(super) fn short_write(path: &Path, written: usize, len: u64, off: u64) -> StorageError {
    StorageError::io(
        path,
        io::Error::new(
            io::ErrorKind::WriteZero,
            format!("short write: {written} of {len} bytes at offset {off}"),
        ),
    )
}

async fn flush_job(
    opts: &LogOptions,
    cur: &mut Option<ActiveFile>,
    spare: &mut Option<Task<Result<DmaFile, StorageError>>>,
    job: Job,
) -> Result<(), StorageError> {
    if job.install {
        assert_eq!(job.base, 0);
        assert_eq!(job.segment_size, opts.segment_size_bytes);
        let task = spare.take().unwrap_or_else(|| spawn_spare(opts));
        let file = task.await?;
        let path = opts.dir.join(segment_name(job.segment_first_lsn));
        file.rename(&path)
            .await
            .map_err(|e| io_error(&path, "installing spare segment", e))?;
        if let Some(old) = cur.take() {
            old.file
                .close()
                .await
                .map_err(|e| io_error(&old.path, "closing sealed segment", e))?;
        }
        *cur = Some(open_active(file, path).await?);
        *spare = Some(spawn_spare(opts));
    }
    let a = cur.as_ref().expect("an active segment file");
    let len = job.buf.len() as u64;
    assert_eq!(job.base % BLOCK_SIZE_BYTES, 0);
    assert_eq!(len % BLOCK_SIZE_BYTES, 0);
    assert!(len > 0 && job.base + len <= job.segment_size);
    let written = a
        .file
        .write_at(job.buf, job.base)
        .await
        .map_err(|e| io_error(&a.path, "writing log group", e))?;
    if written as u64 != len {
        return Err(short_write(&a.path, written, len, job.base));
    }
    // The active file is O_DSYNC (see `open_active`): the completed write is durable.
    if job.install {
        // The new name must be durable before any record in it is reported durable.
        sync_dir(&opts.dir).await?;
    }
    Ok(())
}
