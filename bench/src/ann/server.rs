//! One `tarnd` started by the benchmark itself: `taskset -c <cpu> tarnd --shards 1` on a
//! loopback port below 32768 with a fresh data directory under the temp dir, as bench/run.sh
//! starts its servers; stopped (SIGTERM, then SIGKILL) and its data removed when dropped.
//!
//! It also reads what the report says about the process: its VmRSS, the CPU time of all its
//! threads (`/proc/<pid>/task/*/schedstat`, ns) and the CPUs its shard threads may run on.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// First port tried; ports are probed upwards from here (offset by our pid so two runs do
/// not race for the same one). Below 32768 so it is never in the kernel's ephemeral range,
/// where an outgoing connection could take it between our probe and tarnd's bind.
pub const PORT_BASE: u16 = 21_000;
/// Ports probed before giving up.
pub const PORT_TRIES: u16 = 2_000;
/// How long tarnd may take to listen (it replays nothing: the data dir is fresh).
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a SIGTERM'd tarnd may take to flush and exit before it is SIGKILLed.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// How the server is started.
#[derive(Clone, Debug)]
pub struct TarndOpts {
    pub binary: PathBuf,
    pub cpu: usize,
    /// `sync` or `async` (tarnd's `--durability`).
    pub durability: String,
    /// `--shards`: more than the one CPU of `cpu` runs the executors unpinned on that CPU.
    pub shards: u32,
    /// Extra flags, passed as is.
    pub extra: Vec<String>,
}

/// A running tarnd, stopped on drop.
pub struct Tarnd {
    child: Child,
    pub addr: String,
    dir: PathBuf,
}

impl Tarnd {
    /// Starts tarnd and waits until it accepts connections.
    pub fn start(opts: &TarndOpts) -> Result<Tarnd, String> {
        if !opts.binary.is_file() {
            return Err(format!(
                "{} not found: build it with `cargo build --release --bin tarnd`",
                opts.binary.display()
            ));
        }
        let dir = std::env::temp_dir().join(format!("tarn-ann-server-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let spawned = Tarnd::spawn(opts, &dir);
        if spawned.is_err() {
            let _ = std::fs::remove_dir_all(&dir); // best effort: the spawn error is the news
        }
        let mut t = spawned?;
        t.wait_listening()?; // on error, `t`'s drop stops tarnd and removes `dir`
        Ok(t)
    }

    fn spawn(opts: &TarndOpts, dir: &Path) -> Result<Tarnd, String> {
        let port = free_port(PORT_BASE + (std::process::id() % 1000) as u16)?;
        let log = std::fs::File::create(dir.join("tarnd.log")).map_err(|e| e.to_string())?;
        let log_err = log.try_clone().map_err(|e| e.to_string())?;
        let addr = format!("127.0.0.1:{port}");
        let child = Command::new("taskset")
            .arg("-c")
            .arg(opts.cpu.to_string())
            .arg(&opts.binary)
            .args([
                "--listen",
                &addr,
                "--shards",
                &opts.shards.to_string(),
                "--durability",
                &opts.durability,
            ])
            .arg("--data-dir")
            .arg(dir.join("data"))
            .args(&opts.extra)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .map_err(|e| format!("cannot run taskset {}: {e}", opts.binary.display()))?;
        Ok(Tarnd {
            child,
            addr,
            dir: dir.to_path_buf(),
        })
    }

    fn wait_listening(&mut self) -> Result<(), String> {
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!(
                    "tarnd exited during startup ({status}): {}",
                    self.log_tail()
                ));
            }
            if TcpStream::connect(&self.addr).is_ok() {
                return Ok(());
            }
            if started.elapsed() > STARTUP_TIMEOUT {
                return Err(format!(
                    "tarnd did not listen on {}: {}",
                    self.addr,
                    self.log_tail()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The last lines of tarnd's log (for error messages).
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.dir.join("tarnd.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(5)..].join(" | ")
    }

    /// tarnd's pid (taskset execs it, so the child's pid is tarnd's).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// tarnd's resident memory, bytes: (VmRSS, RssAnon). VmRSS also counts file pages
    /// mapped in (which come and go with the log and the page cache); RssAnon is the heap.
    pub fn rss_bytes(&self) -> Result<(u64, u64), String> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .map_err(|e| format!("/proc/{}/status of tarnd: {e}", self.pid()))?;
        let field = |name: &str| {
            status_kib(&status, name)
                .map(|kib| kib * 1024)
                .ok_or_else(|| format!("tarnd's /proc status has no {name}"))
        };
        Ok((field("VmRSS")?, field("RssAnon")?))
    }

    /// CPU time run so far by all of tarnd's threads, ns.
    pub fn cpu_ns(&self) -> u64 {
        process_cpu_ns(self.pid())
    }

    /// [`process_sched`] of tarnd.
    pub fn sched(&self) -> Sched {
        process_sched(self.pid())
    }

    /// `name: cpus` of every shard thread (the executors, named `tarn-shard…`).
    pub fn shard_affinity(&self) -> Vec<String> {
        tasks(self.pid())
            .iter()
            .filter_map(|t| {
                let comm = std::fs::read_to_string(t.join("comm")).ok()?;
                let status = std::fs::read_to_string(t.join("status")).ok()?;
                let comm = comm.trim();
                comm.starts_with("tarn-shard")
                    .then(|| format!("{comm}: CPU {}", parse_cpus_allowed(&status).unwrap_or("?")))
            })
            .collect()
    }

    /// Stops tarnd (SIGTERM, then SIGKILL after [`STOP_TIMEOUT`]) and removes its data.
    pub fn stop(mut self) -> Result<(), String> {
        self.terminate()
    }

    fn terminate(&mut self) -> Result<(), String> {
        if self.child.try_wait().map_err(|e| e.to_string())?.is_none() {
            // SAFETY: plain kill(2) of our own child, which has not been reaped yet.
            unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
            let started = Instant::now();
            while self.child.try_wait().map_err(|e| e.to_string())?.is_none() {
                if started.elapsed() > STOP_TIMEOUT {
                    self.child.kill().map_err(|e| e.to_string())?;
                    self.child.wait().map_err(|e| e.to_string())?;
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        match std::fs::remove_dir_all(&self.dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(format!("cannot remove {}: {e}", self.dir.display()))
            }
            _ => Ok(()),
        }
    }
}

impl Drop for Tarnd {
    fn drop(&mut self) {
        if let Err(e) = self.terminate() {
            eprintln!("ann_server: stopping tarnd: {e}");
        }
    }
}

/// The first port from `start` nobody listens on (a bind succeeds), below 32768.
pub fn free_port(start: u16) -> Result<u16, String> {
    (start..start.saturating_add(PORT_TRIES))
        .filter(|&p| p < 32_768)
        .find(|&p| TcpListener::bind(("127.0.0.1", p)).is_ok())
        .ok_or_else(|| format!("no free loopback port in {start}..{}", start + PORT_TRIES))
}

/// CPU time run so far by all threads of process `pid`, ns (0 if it is gone).
pub fn process_cpu_ns(pid: u32) -> u64 {
    process_sched(pid).run_ns
}

/// What the scheduler counted for a process, summed over its threads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sched {
    /// CPU time run, ns.
    pub run_ns: u64,
    /// Times a thread was put on a CPU (each wake-up from a park, each return after a
    /// preemption): a count that does not drift with the machine's speed, unlike `run_ns`.
    pub timeslices: u64,
}

impl std::ops::Sub for Sched {
    type Output = Sched;
    fn sub(self, earlier: Sched) -> Sched {
        Sched {
            run_ns: self.run_ns.saturating_sub(earlier.run_ns),
            timeslices: self.timeslices.saturating_sub(earlier.timeslices),
        }
    }
}

/// [`Sched`] of every thread of process `pid` summed (zero if it is gone).
pub fn process_sched(pid: u32) -> Sched {
    tasks(pid)
        .iter()
        .filter_map(|t| std::fs::read_to_string(t.join("schedstat")).ok())
        .filter_map(|s| parse_schedstat(&s))
        .fold(Sched::default(), |a, b| Sched {
            run_ns: a.run_ns + b.run_ns,
            timeslices: a.timeslices + b.timeslices,
        })
}

fn tasks(pid: u32) -> Vec<PathBuf> {
    let dir = Path::new("/proc").join(pid.to_string()).join("task");
    std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default()
}

/// `/proc/<pid>/task/<tid>/schedstat` is "run_ns wait_ns timeslices": the first field.
pub fn parse_schedstat_run_ns(text: &str) -> Option<u64> {
    parse_schedstat(text).map(|s| s.run_ns)
}

/// The first and third fields of a schedstat text.
pub fn parse_schedstat(text: &str) -> Option<Sched> {
    let mut f = text.split_ascii_whitespace();
    let run_ns = f.next()?.parse().ok()?;
    let timeslices = f.nth(1)?.parse().ok()?;
    Some(Sched { run_ns, timeslices })
}

/// A `Name:   1234 kB` field of a `/proc/…/status` text, in KiB.
pub fn status_kib(status: &str, name: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// `Cpus_allowed_list:\t0-1` of a `/proc/…/status` text.
pub fn parse_cpus_allowed(status: &str) -> Option<&str> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .map(str::trim)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_schedstat_and_cpus_allowed() {
        assert_eq!(parse_schedstat_run_ns("123456 789 10\n"), Some(123_456));
        assert_eq!(parse_schedstat_run_ns(""), None);
        let both = Sched {
            run_ns: 123_456,
            timeslices: 10,
        };
        assert_eq!(parse_schedstat("123456 789 10\n"), Some(both));
        assert_eq!(parse_schedstat("123456 789\n"), None);
        assert_eq!(
            both - Sched {
                run_ns: 6,
                timeslices: 4
            },
            Sched {
                run_ns: 123_450,
                timeslices: 6
            }
        );
        let status = "Name:\ttarn-shard-0\nCpus_allowed:\t1\nCpus_allowed_list:\t0\n";
        assert_eq!(parse_cpus_allowed(status), Some("0"));
        assert_eq!(parse_cpus_allowed("Name: x\n"), None);
        let mem = "VmRSS:\t  2048 kB\nRssAnon:\t  1024 kB\nRssAnonX:\t 1 kB\n";
        assert_eq!(status_kib(mem, "VmRSS"), Some(2048));
        assert_eq!(status_kib(mem, "RssAnon"), Some(1024));
        assert_eq!(status_kib(mem, "RssFile"), None);
        // Our own threads have run for some time.
        let ours = tasks(std::process::id());
        assert!(!ours.is_empty());
    }

    #[test]
    fn a_free_port_is_below_32768_and_not_one_that_is_listened_on() {
        let taken = TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let p = free_port(PORT_BASE).unwrap();
        assert!((PORT_BASE..32_768).contains(&p));
        assert_ne!(p, taken.local_addr().unwrap().port());
        let held = TcpListener::bind(("127.0.0.1", p)).unwrap();
        assert_ne!(free_port(p).unwrap(), p);
        drop(held);
    }

    #[test]
    fn a_missing_binary_is_refused_by_name() {
        let opts = TarndOpts {
            binary: "/nonexistent/tarnd".into(),
            cpu: 0,
            durability: "async".into(),
            shards: 1,
            extra: Vec::new(),
        };
        let e = Tarnd::start(&opts).err().unwrap();
        assert!(e.contains("/nonexistent/tarnd"), "{e}");
    }
}
