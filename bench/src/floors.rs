//! Physical floors measured on the same machine in the same run: loopback TCP ping-pong
//! between two pinned threads, and 4 KiB fdatasync write latency.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

use hdrhistogram::Histogram;

use crate::clock::now_ns;
use crate::stats::new_hist;
use crate::sys::pin_current_thread;

/// Where the two ping-pong threads run and how they wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PingMode {
    /// Both threads on one CPU, blocking reads (every exchange is two context switches).
    SameCore,
    /// One thread per CPU, blocking reads (wake-up latency included).
    CrossCoreParked,
    /// One thread per CPU, non-blocking reads spinning until data arrives.
    CrossCoreSpin,
}

impl PingMode {
    pub fn label(&self) -> &'static str {
        match self {
            PingMode::SameCore => "same-core parked",
            PingMode::CrossCoreParked => "cross-core parked",
            PingMode::CrossCoreSpin => "cross-core busy-poll",
        }
    }
}

fn read_exact_spin(s: &mut TcpStream, buf: &mut [u8], spin: bool) -> io::Result<bool> {
    let mut got = 0;
    while got < buf.len() {
        match s.read(&mut buf[got..]) {
            Ok(0) => return Ok(false),
            Ok(n) => got += n,
            Err(e) if spin && e.kind() == io::ErrorKind::WouldBlock => std::hint::spin_loop(),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

fn write_all_spin(s: &mut TcpStream, buf: &[u8]) -> io::Result<()> {
    let mut put = 0;
    while put < buf.len() {
        match s.write(&buf[put..]) {
            Ok(n) => put += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::hint::spin_loop(),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Round trips of a 16-byte header + `payload` byte frame over loopback TCP. The client
/// runs on `cpu_a`, the echo thread on `cpu_b` (or `cpu_a` for [`PingMode::SameCore`]).
/// Returns round-trip times in ns measured after `warmup_ns`, for `measure_ns`.
pub fn pingpong(
    mode: PingMode,
    cpu_a: usize,
    cpu_b: usize,
    payload: usize,
    warmup_ns: u64,
    measure_ns: u64,
) -> io::Result<Histogram<u64>> {
    let frame_len = 16 + payload;
    let spin = mode == PingMode::CrossCoreSpin;
    let server_cpu = if mode == PingMode::SameCore {
        cpu_a
    } else {
        cpu_b
    };
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let server = std::thread::spawn(move || -> io::Result<()> {
        pin_current_thread(server_cpu)?;
        let (mut s, _) = listener.accept()?;
        s.set_nodelay(true)?;
        s.set_nonblocking(spin)?;
        let mut buf = vec![0u8; frame_len];
        while read_exact_spin(&mut s, &mut buf, spin)? {
            write_all_spin(&mut s, &buf)?;
        }
        Ok(())
    });
    let client = std::thread::spawn(move || -> io::Result<Histogram<u64>> {
        pin_current_thread(cpu_a)?;
        let mut s = TcpStream::connect(addr)?;
        s.set_nodelay(true)?;
        s.set_nonblocking(spin)?;
        let mut frame = vec![0u8; frame_len];
        frame[..4].copy_from_slice(&(payload as u32).to_le_bytes());
        frame[4..6].copy_from_slice(&1u16.to_le_bytes());
        let mut back = vec![0u8; frame_len];
        let mut h = new_hist();
        let start = now_ns();
        let warm_end = start + warmup_ns;
        let end = warm_end + measure_ns;
        let mut id = 0u64;
        loop {
            let t = now_ns();
            if t >= end {
                break;
            }
            id += 1;
            frame[8..16].copy_from_slice(&id.to_le_bytes());
            write_all_spin(&mut s, &frame)?;
            if !read_exact_spin(&mut s, &mut back, spin)? {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "echo closed"));
            }
            let done = now_ns();
            if t >= warm_end {
                let _ = h.record((done - t).max(1));
            }
        }
        Ok(h)
    });
    let h = client
        .join()
        .map_err(|_| io::Error::other("client thread panicked"))??;
    server
        .join()
        .map_err(|_| io::Error::other("echo thread panicked"))??;
    Ok(h)
}

/// The fdatasync floor variants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FsyncMode {
    /// Buffered 4 KiB append (file grows) + fdatasync.
    AppendFdatasync,
    /// 4 KiB O_DIRECT overwrite of a preallocated, zero-written file + fdatasync.
    DirectOverwriteFdatasync,
    /// 4 KiB O_DIRECT|O_DSYNC overwrite of a preallocated, zero-written file.
    DirectOverwriteDsync,
}

impl FsyncMode {
    pub fn label(&self) -> &'static str {
        match self {
            FsyncMode::AppendFdatasync => "4KiB append + fdatasync",
            FsyncMode::DirectOverwriteFdatasync => "4KiB O_DIRECT overwrite + fdatasync",
            FsyncMode::DirectOverwriteDsync => "4KiB O_DIRECT|O_DSYNC overwrite",
        }
    }
}

/// A 4 KiB block aligned to 4 KiB inside an owned Vec (for O_DIRECT), without unsafe.
struct AlignedBlock {
    buf: Vec<u8>,
    off: usize,
}

impl AlignedBlock {
    fn new(fill: u8) -> Self {
        let mut buf = vec![fill; 8192];
        let off = (4096 - (buf.as_ptr() as usize % 4096)) % 4096;
        buf[off..off + 4096].fill(fill);
        Self { buf, off }
    }
    fn get(&self) -> &[u8] {
        &self.buf[self.off..self.off + 4096]
    }
}

const PREALLOC_BYTES: u64 = 64 * 1024 * 1024;

fn prealloc_zero_file(path: &Path) -> io::Result<()> {
    let mut f = File::create(path)?;
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..(PREALLOC_BYTES >> 20) {
        f.write_all(&zeros)?;
    }
    f.sync_all()?;
    Ok(())
}

/// Measure one fdatasync variant in `dir` for `warmup_ns + measure_ns` (at most
/// `max_ops` operations). Files are removed afterwards.
pub fn fsync_floor(
    mode: FsyncMode,
    dir: &Path,
    warmup_ns: u64,
    measure_ns: u64,
    max_ops: u64,
) -> io::Result<Histogram<u64>> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(format!("tarn-bench-fsync-{}.dat", std::process::id()));
    let result = (|| {
        let block = AlignedBlock::new(0x5a);
        let f = match mode {
            FsyncMode::AppendFdatasync => OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(&path)?,
            FsyncMode::DirectOverwriteFdatasync | FsyncMode::DirectOverwriteDsync => {
                prealloc_zero_file(&path)?;
                let mut flags = libc::O_DIRECT;
                if mode == FsyncMode::DirectOverwriteDsync {
                    flags |= libc::O_DSYNC;
                }
                OpenOptions::new()
                    .write(true)
                    .custom_flags(flags)
                    .open(&path)
                    .map_err(|e| io::Error::new(e.kind(), format!("O_DIRECT open: {e}")))?
            }
        };
        let blocks = PREALLOC_BYTES / 4096;
        let mut h = new_hist();
        let start = now_ns();
        let warm_end = start + warmup_ns;
        let end = warm_end + measure_ns;
        let mut i = 0u64;
        let mut af = &f;
        while i < max_ops {
            let t = now_ns();
            if t >= end {
                break;
            }
            match mode {
                FsyncMode::AppendFdatasync => {
                    af.write_all(block.get())?;
                    f.sync_data()?;
                }
                FsyncMode::DirectOverwriteFdatasync => {
                    f.write_all_at(block.get(), (i % blocks) * 4096)?;
                    f.sync_data()?;
                }
                FsyncMode::DirectOverwriteDsync => {
                    f.write_all_at(block.get(), (i % blocks) * 4096)?;
                }
            }
            let done = now_ns();
            if t >= warm_end {
                let _ = h.record((done - t).max(1));
            }
            i += 1;
        }
        Ok(h)
    })();
    let _ = std::fs::remove_file(&path);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligned_block_is_aligned() {
        for _ in 0..8 {
            let b = AlignedBlock::new(1);
            assert_eq!(b.get().as_ptr() as usize % 4096, 0);
            assert_eq!(b.get().len(), 4096);
            assert!(b.get().iter().all(|&x| x == 1));
        }
    }

    #[test]
    fn pingpong_completes_round_trips() {
        // Behaviour only: a short run yields samples; no assertion on their values.
        let h = pingpong(PingMode::SameCore, 0, 0, 8, 0, 20_000_000).unwrap();
        assert!(!h.is_empty());
    }
}
