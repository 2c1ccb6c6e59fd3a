//! What a micro-benchmark report says about the machine and the moment it ran.

use std::time::{SystemTime, UNIX_EPOCH};

/// One `/proc/cpuinfo` field of the first CPU.
fn cpuinfo_field(name: &str) -> Option<String> {
    let text = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    text.lines()
        .find(|l| l.split(':').next().map(str::trim) == Some(name))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
}

/// The CPU's model name ("unknown" when /proc/cpuinfo has none).
pub fn cpu_model() -> String {
    cpuinfo_field("model name").unwrap_or_else(|| "unknown".into())
}

/// A one-line description: CPU model, family/model, CPUs, whether virtualized, memory,
/// kernel; e.g. "AMD EPYC (family 26, model 2), 2 CPUs, KVM guest, 23.4 GiB, Linux 6.18".
pub fn describe() -> String {
    let mut parts = vec![
        match (cpuinfo_field("cpu family"), cpuinfo_field("model")) {
            (Some(f), Some(m)) => format!("{} (family {f}, model {m})", cpu_model()),
            _ => cpu_model(),
        },
    ];
    // Online CPUs of the machine (not the affinity mask of a pinned thread).
    // SAFETY: plain sysconf query.
    let cpus = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    parts.push(format!("{cpus} CPUs"));
    let virt = cpuinfo_field("flags").is_some_and(|f| f.split(' ').any(|x| x == "hypervisor"));
    if virt {
        parts.push("virtual machine".into());
    }
    let mem_kib = std::fs::read_to_string("/proc/meminfo").ok().and_then(|t| {
        t.lines()
            .find(|l| l.starts_with("MemTotal:"))
            .and_then(|l| l.split_ascii_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
    });
    if let Some(kib) = mem_kib {
        parts.push(format!("{:.1} GiB", kib / (1024.0 * 1024.0)));
    }
    if let Ok(r) = std::fs::read_to_string("/proc/sys/kernel/osrelease") {
        parts.push(format!("Linux {}", r.trim()));
    }
    parts.join(", ")
}

/// UTC (date, time) from the system clock, without a date crate (Hinnant's civil_from_days).
pub fn utc_now() -> (String, String) {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        format!("{y:04}-{m:02}-{d:02}"),
        format!("{:02}:{:02}:{:02}", rem / 3600, rem / 60 % 60, rem % 60),
    )
}
