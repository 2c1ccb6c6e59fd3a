//! Start-up checks that turn an obscure failure deep inside an executor into one clear line
//! telling the operator what to change.

/// io_uring memory glommio registers per executor (its default), used to size the memlock need.
pub const IO_MEMORY_PER_SHARD_BYTES: u64 = 10 << 20;
/// Extra locked memory beyond the rings' buffers (ring structures themselves, the probe).
const MEMLOCK_MARGIN_BYTES: u64 = 16 << 20;

/// Fails unless the kernel lets this process create an io_uring.
pub fn check_io_uring() -> Result<(), String> {
    // io_uring_setup(2) with a tiny ring: the cheapest probe that answers "is io_uring usable".
    let mut params = [0u8; 120];
    // SAFETY: io_uring_setup reads and writes a struct io_uring_params (120 bytes) we own.
    let fd = unsafe { libc::syscall(libc::SYS_io_uring_setup, 2u32, params.as_mut_ptr()) };
    if fd < 0 {
        let err = std::io::Error::last_os_error();
        let hint = match err.raw_os_error() {
            Some(libc::ENOSYS) => "the kernel has no io_uring (need Linux 5.10+ built with CONFIG_IO_URING)",
            Some(libc::EPERM) => "io_uring is disabled: set sysctl kernel.io_uring_disabled=0 (or run tarnd in a group allowed by kernel.io_uring_group), and allow io_uring in any seccomp/container profile",
            Some(libc::ENOMEM) => "not enough locked memory for io_uring: raise the memlock limit (ulimit -l unlimited, or LimitMEMLOCK=infinity in the systemd unit)",
            _ => "io_uring is unusable here",
        };
        return Err(format!("io_uring check failed: {err}: {hint}"));
    }
    // SAFETY: fd is a file descriptor we just created and own.
    unsafe { libc::close(fd as i32) };
    Ok(())
}

/// Makes sure RLIMIT_MEMLOCK allows `shards` executors' io_uring buffers, raising the soft
/// limit (and the hard one when privileged) if needed.
pub fn ensure_memlock(shards: u32) -> Result<(), String> {
    let need = u64::from(shards) * IO_MEMORY_PER_SHARD_BYTES + MEMLOCK_MARGIN_BYTES;
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut lim) } != 0 {
        return Err(format!(
            "getrlimit(RLIMIT_MEMLOCK): {}",
            std::io::Error::last_os_error()
        ));
    }
    if lim.rlim_cur == libc::RLIM_INFINITY || lim.rlim_cur >= need || has_cap_ipc_lock() {
        return Ok(());
    }
    let want = libc::rlimit {
        rlim_cur: need,
        rlim_max: if lim.rlim_max == libc::RLIM_INFINITY {
            lim.rlim_max
        } else {
            lim.rlim_max.max(need)
        },
    };
    // SAFETY: setrlimit reads the struct we pass.
    if unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &want) } == 0 {
        return Ok(());
    }
    Err(format!(
        "locked-memory limit too low: {} KiB, tarnd needs {} KiB for {shards} shard(s) of io_uring buffers; \
         raise it with `ulimit -l unlimited` (shell), LimitMEMLOCK=infinity (systemd), or a memlock line in /etc/security/limits.conf",
        lim.rlim_cur / 1024,
        need / 1024
    ))
}

/// CAP_IPC_LOCK exempts a process from RLIMIT_MEMLOCK (root usually has it).
fn has_cap_ipc_lock() -> bool {
    const CAP_IPC_LOCK: u32 = 14;
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        })
        .is_some_and(|caps| caps & (1 << CAP_IPC_LOCK) != 0)
}

/// The CPUs this process may run on.
pub fn online_cpus() -> Vec<usize> {
    // SAFETY: cpu_set_t is plain data; sched_getaffinity fills it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return (0..std::thread::available_parallelism().map_or(1, |n| n.get())).collect();
        }
        (0..libc::CPU_SETSIZE as usize)
            .filter(|&c| libc::CPU_ISSET(c, &set))
            .collect()
    }
}

/// The one CPU the calling thread is pinned to, or `None` if it may run on several.
pub fn pinned_cpu() -> Option<usize> {
    // SAFETY: as in online_cpus, for the calling thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return None;
        }
        let cpus: Vec<usize> = (0..libc::CPU_SETSIZE as usize)
            .filter(|&c| libc::CPU_ISSET(c, &set))
            .collect();
        (cpus.len() == 1).then(|| cpus[0])
    }
}
