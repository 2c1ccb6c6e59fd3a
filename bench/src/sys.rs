//! Thin wrappers over the few Linux calls the bench needs: CPU pinning, epoll, timerfd.

use std::io;
use std::os::fd::RawFd;

/// Pin the calling thread to one CPU.
pub fn pin_current_thread(cpu: usize) -> io::Result<()> {
    // SAFETY: cpu_set_t is plain data; zeroed is a valid empty set. CPU_SET bounds-checks
    // against the set size. sched_setaffinity(0, ..) acts on the calling thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// An owned epoll instance.
pub struct Epoll {
    fd: RawFd,
}

impl Epoll {
    pub fn new() -> io::Result<Self> {
        // SAFETY: plain syscall.
        let fd = cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
        Ok(Self { fd })
    }

    fn ctl(&self, op: libc::c_int, fd: RawFd, events: u32, token: u64) -> io::Result<()> {
        let mut ev = libc::epoll_event { events, u64: token };
        // SAFETY: ev is a valid epoll_event for the duration of the call.
        cvt(unsafe { libc::epoll_ctl(self.fd, op, fd, &mut ev) })?;
        Ok(())
    }

    pub fn add(&self, fd: RawFd, events: u32, token: u64) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_ADD, fd, events, token)
    }

    pub fn modify(&self, fd: RawFd, events: u32, token: u64) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_MOD, fd, events, token)
    }

    /// Wait for events; `timeout_ms` 0 polls, -1 blocks. EINTR is reported as 0 events.
    pub fn wait(&self, events: &mut [libc::epoll_event], timeout_ms: i32) -> io::Result<usize> {
        // SAFETY: the buffer is valid for `events.len()` entries.
        let n = unsafe {
            libc::epoll_wait(
                self.fd,
                events.as_mut_ptr(),
                events.len() as libc::c_int,
                timeout_ms,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                return Ok(0);
            }
            return Err(e);
        }
        Ok(n as usize)
    }
}

impl Drop for Epoll {
    fn drop(&mut self) {
        // SAFETY: we own the fd.
        unsafe {
            libc::close(self.fd);
        }
    }
}

/// A non-blocking CLOCK_MONOTONIC timerfd armed with absolute deadlines (ns precision,
/// unlike epoll_wait's milliseconds), used to wake the open-loop scheduler on time.
pub struct TimerFd {
    fd: RawFd,
    armed_at: u64,
}

impl TimerFd {
    pub fn new() -> io::Result<Self> {
        // SAFETY: plain syscall.
        let fd = cvt(unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            )
        })?;
        Ok(Self { fd, armed_at: 0 })
    }

    pub fn fd(&self) -> RawFd {
        self.fd
    }

    /// Arm for the absolute CLOCK_MONOTONIC time `at_ns` (no-op if already armed for it).
    pub fn arm_at(&mut self, at_ns: u64) -> io::Result<()> {
        if at_ns == self.armed_at {
            return Ok(());
        }
        let at_ns = at_ns.max(1);
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: (at_ns / 1_000_000_000) as libc::time_t,
                tv_nsec: (at_ns % 1_000_000_000) as libc::c_long,
            },
        };
        // SAFETY: spec is valid; old value pointer may be null.
        cvt(unsafe {
            libc::timerfd_settime(
                self.fd,
                libc::TFD_TIMER_ABSTIME,
                &spec,
                std::ptr::null_mut(),
            )
        })?;
        self.armed_at = at_ns;
        Ok(())
    }

    /// Consume an expiry (after epoll reported the fd readable).
    pub fn clear(&mut self) {
        let mut buf = [0u8; 8];
        // SAFETY: buf is 8 writable bytes; the fd is non-blocking.
        unsafe {
            libc::read(self.fd, buf.as_mut_ptr().cast(), 8);
        }
        self.armed_at = 0;
    }
}

impl Drop for TimerFd {
    fn drop(&mut self) {
        // SAFETY: we own the fd.
        unsafe {
            libc::close(self.fd);
        }
    }
}

/// Busy and total time of one CPU from /proc/stat, in clock ticks: (busy, total).
/// Busy counts user, nice, system, irq, softirq and steal; total adds idle and iowait.
pub fn cpu_ticks(cpu: usize) -> Option<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    parse_cpu_ticks(&text, cpu)
}

/// Parse a `/proc/stat` text for `cpu<N>` (see [`cpu_ticks`]).
pub fn parse_cpu_ticks(text: &str, cpu: usize) -> Option<(u64, u64)> {
    let tag = format!("cpu{cpu}");
    let line = text
        .lines()
        .find(|l| l.split_ascii_whitespace().next() == Some(tag.as_str()))?;
    let v: Vec<u64> = line
        .split_ascii_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    if v.len() < 8 {
        return None;
    }
    // user nice system idle iowait irq softirq steal
    let busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
    let total = busy + v[3] + v[4];
    Some((busy, total))
}

/// /proc/stat ticks of one CPU and the CPU time of what is expected to run on it (this
/// process, or a server pinned there), at one moment: the start of an interference check.
pub struct CpuMark {
    cpu: usize,
    busy: u64,
    total: u64,
    own_ns: u64,
}

impl CpuMark {
    /// Marks `cpu` now; `own_ns` is the expected process's CPU time so far.
    pub fn take(cpu: usize, own_ns: u64) -> Option<CpuMark> {
        let (busy, total) = cpu_ticks(cpu)?;
        Some(CpuMark {
            cpu,
            busy,
            total,
            own_ns,
        })
    }

    /// The % of the CPU's time since the mark that went to anything but the expected process
    /// (whose CPU time is now `own_ns_now`); `None` if no tick passed.
    pub fn other_pct(&self, own_ns_now: u64) -> Option<f64> {
        let (b1, t1) = cpu_ticks(self.cpu)?;
        let hz = clock_ticks_per_sec() as f64;
        let total_s = t1.saturating_sub(self.total) as f64 / hz;
        let own_s = own_ns_now.saturating_sub(self.own_ns) as f64 / 1e9;
        let other_s = b1.saturating_sub(self.busy) as f64 / hz - own_s;
        (total_s > 0.0).then(|| (other_s / total_s * 100.0).max(0.0))
    }
}

/// Clock ticks per second (for /proc/stat).
pub fn clock_ticks_per_sec() -> u64 {
    // SAFETY: plain sysconf query.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as u64
    } else {
        100
    }
}

/// CPU time (user + system) used so far by this process, in ns.
pub fn self_cpu_ns() -> u64 {
    let mut ru: libc::rusage = unsafe_zeroed_rusage();
    // SAFETY: ru is a valid, writable rusage.
    unsafe {
        libc::getrusage(libc::RUSAGE_SELF, &mut ru);
    }
    let tv = |t: libc::timeval| t.tv_sec as u64 * 1_000_000_000 + t.tv_usec as u64 * 1000;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

fn unsafe_zeroed_rusage() -> libc::rusage {
    // SAFETY: rusage is plain old data; all-zero is a valid value.
    unsafe { std::mem::zeroed() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_stat_cpu_lines() {
        let text = "cpu  10 0 10 100 0 0 0 0 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\ncpu1 10 0 20 300 1 0 0 5 0 0\n";
        assert_eq!(
            parse_cpu_ticks(text, 0),
            Some((1 + 2 + 3 + 6 + 7 + 8, 27 + 4 + 5))
        );
        assert_eq!(parse_cpu_ticks(text, 1), Some((35, 336)));
        assert_eq!(parse_cpu_ticks(text, 2), None);
        assert!(clock_ticks_per_sec() > 0);
        let _ = self_cpu_ns();
    }
}
