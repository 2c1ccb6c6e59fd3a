//! Monotonic nanosecond clock (CLOCK_MONOTONIC, the same clock timerfd uses).

/// Nanoseconds on CLOCK_MONOTONIC.
#[inline]
pub fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux.
    unsafe {
        libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts);
    }
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Seconds (f64) to nanoseconds.
pub fn secs_to_ns(s: f64) -> u64 {
    (s * 1e9).round().max(0.0) as u64
}
