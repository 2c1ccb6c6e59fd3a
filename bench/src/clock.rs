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

/// Microseconds since the Unix epoch on CLOCK_REALTIME (event times; the server compares
/// them with its own wall clock).
#[inline]
pub fn realtime_us() -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_REALTIME always exists on Linux.
    unsafe {
        libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts);
    }
    // time_t and c_long are i64 on the 64-bit Linux targets this tool runs on.
    ts.tv_sec * 1_000_000 + ts.tv_nsec / 1000
}
