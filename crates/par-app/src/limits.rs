//! What the machine can hold, for the size checks every command makes before it allocates or
//! computes anything a flag sized: the memory this process may still take and the free space of
//! an output's disk.
//!
//! Memory is the smallest of: the kernel's `MemAvailable` (`/proc/meminfo`), the headroom of the
//! process's cgroup (its limit less its usage without the reclaimable page cache: cgroup v2
//! `memory.max − (memory.current − inactive_file)`, v1 `memory.limit_in_bytes −
//! (memory.usage_in_bytes − total_inactive_file)`), and the headroom under the address-space and
//! data-segment limits (`ulimit -v`, `ulimit -d`) minus what the process already maps (`VmSize`,
//! `VmData`). Where none of them can be read (not Linux) there is no memory bound and only the
//! documented maxima apply. A size is refused when its estimate exceeds 90 % of that (the
//! estimates are upper bounds calibrated against measured peaks; the margin is for the rest of
//! the process).

use std::path::Path;

use crate::InvalidInput;

fn read_kib(text: &str, key: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with(key))?;
    let kib: u64 = line[key.len()..].trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kib.saturating_mul(1024))
}

fn read_u64(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok() // "max" (v2): no limit
}

/// The value of `key` in a cgroup's `memory.stat` (0 when absent).
fn stat_value(dir: &Path, key: &str) -> u64 {
    std::fs::read_to_string(dir.join("memory.stat"))
        .ok()
        .and_then(|t| {
            t.lines().find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')?.trim().parse().ok())
        })
        .unwrap_or(0)
}

fn cgroup_headroom() -> Option<u64> {
    let cgroup = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    // cgroup v2: one line "0::/path".
    if let Some(rel) = cgroup.lines().find_map(|l| l.strip_prefix("0::")) {
        let dir = Path::new("/sys/fs/cgroup").join(rel.trim_start_matches('/'));
        if let (Some(max), Some(current)) =
            (read_u64(&dir.join("memory.max")), read_u64(&dir.join("memory.current")))
        {
            let used = current.saturating_sub(stat_value(&dir, "inactive_file"));
            return Some(max.saturating_sub(used));
        }
    }
    // cgroup v1: the memory controller's line "N:memory:/path"; inside a container the folder is
    // the controller's root. A limit near 2⁶³ means none.
    let rel = cgroup.lines().find_map(|l| {
        let mut parts = l.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        controllers.split(',').any(|c| c == "memory").then_some(path)
    })?;
    let root = Path::new("/sys/fs/cgroup/memory");
    for dir in [root.join(rel.trim_start_matches('/')), root.to_path_buf()] {
        if let (Some(limit), Some(usage)) = (
            read_u64(&dir.join("memory.limit_in_bytes")),
            read_u64(&dir.join("memory.usage_in_bytes")),
        ) {
            if limit >= 1 << 62 {
                return None;
            }
            let used = usage.saturating_sub(stat_value(&dir, "total_inactive_file"));
            return Some(limit.saturating_sub(used));
        }
    }
    None
}

#[cfg(unix)]
fn rlimit_headroom() -> Option<u64> {
    use rustix::process::{Resource, getrlimit};
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let mapped = read_kib(&status, "VmSize:").unwrap_or(0);
    let data = read_kib(&status, "VmData:").unwrap_or(0);
    let limit = |r: Resource, used: u64| getrlimit(r).current.map(|l| l.saturating_sub(used));
    match (limit(Resource::As, mapped), limit(Resource::Data, data)) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(not(unix))]
fn rlimit_headroom() -> Option<u64> {
    None
}

/// The bytes this process can still allocate, as the module docs define it; `None` where the
/// machine does not say.
pub fn memory_available() -> Option<u64> {
    let meminfo =
        std::fs::read_to_string("/proc/meminfo").ok().and_then(|t| read_kib(&t, "MemAvailable:"));
    [meminfo, cgroup_headroom(), rlimit_headroom()].into_iter().flatten().min()
}

/// Free bytes (for an unprivileged user) on the file system that holds `path` or, if it does not
/// exist yet, its nearest existing ancestor; `None` where the machine does not say.
pub fn disk_available(path: &Path) -> Option<u64> {
    #[cfg(unix)]
    {
        let mut at = if path.as_os_str().is_empty() { Path::new(".") } else { path };
        while std::fs::symlink_metadata(at).is_err() {
            at = match at.parent() {
                Some(p) if !p.as_os_str().is_empty() => p,
                _ => Path::new("."),
            };
        }
        let s = rustix::fs::statvfs(at).ok()?;
        Some(s.f_bavail.saturating_mul(s.f_frsize))
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

/// `bytes` in the largest binary unit that keeps it ≥ 1 (`12.0 TiB`, `75.0 MiB`, `512 B`).
pub fn human_bytes(bytes: f64) -> String {
    const UNITS: [&str; 7] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB"];
    if !bytes.is_finite() {
        return "an unbounded number of bytes".into();
    }
    if bytes < 1024.0 {
        return format!("{bytes:.0} B");
    }
    let mut value = bytes / 1024.0;
    for unit in UNITS {
        if value < 1024.0 {
            return format!("{value:.1} {unit}");
        }
        value /= 1024.0;
    }
    format!("{:.1e} B", bytes)
}

/// Checks that `bytes` (an estimate; `f64` so that products of huge flags cannot overflow) fit in
/// the memory this process can still take.
///
/// # Errors
///
/// [`InvalidInput`] naming `flag` (the flag, or the flags, that sized it), `what` and the bytes.
pub fn check_memory(flag: &str, what: &str, bytes: f64) -> Result<(), InvalidInput> {
    if let Some(available) = memory_available()
        && (bytes.is_nan() || bytes > 0.9 * available as f64)
    {
        return Err(InvalidInput(format!(
            "{flag}: {what} needs about {} of memory, more than 90 % of the {} this process can take (free memory, cgroup and ulimit); lower it",
            human_bytes(bytes),
            human_bytes(available as f64)
        )));
    }
    Ok(())
}

/// [`check_memory`] for tensors on `backend`'s device: they live in host memory on the CPU
/// backends; on a GPU the check is left to the device (Burn 0.22 does not report a GPU's free
/// memory), and buffers the job builds on the host are checked with [`check_memory`] instead.
///
/// # Errors
///
/// As [`check_memory`].
pub fn check_device_memory(
    backend: par_device::Backend,
    flag: &str,
    what: &str,
    bytes: f64,
) -> Result<(), InvalidInput> {
    if backend.uses_host_memory() { check_memory(flag, what, bytes) } else { Ok(()) }
}

/// Checks that `bytes` of output fit on the disk that will hold `path`.
///
/// # Errors
///
/// [`InvalidInput`] naming `flag`, `what` and the bytes.
pub fn check_disk(flag: &str, what: &str, bytes: f64, path: &Path) -> Result<(), InvalidInput> {
    if let Some(free) = disk_available(path)
        && (bytes.is_nan() || bytes > free as f64)
    {
        return Err(InvalidInput(format!(
            "{flag}: {what} is about {}, more than the {} free on the disk of {}",
            human_bytes(bytes),
            human_bytes(free as f64),
            path.display()
        )));
    }
    Ok(())
}

/// The most images one job generates (`par sample`, the demos' and the ablation's
/// `--per-class` × classes); the paper's FID-50K is 50,000: larger sets are split over jobs.
pub const MAX_IMAGES: usize = 10_000_000;

/// Checks a benchmark's repetition count: at least 1, and its timings (one `f64` each) fit in
/// memory.
///
/// # Errors
///
/// [`InvalidInput`] naming the flag.
pub fn check_repeats(flag: &str, repeats: usize) -> Result<(), InvalidInput> {
    if repeats == 0 {
        return Err(InvalidInput(format!("--{flag} must be at least 1, got 0")));
    }
    check_memory(
        &format!("--{flag}"),
        &format!("the timings of {repeats} repetitions"),
        repeats as f64 * 8.0,
    )
}

/// Checks a count flag against a documented maximum.
///
/// # Errors
///
/// [`InvalidInput`] naming the flag, its value and the maximum.
pub fn check_at_most(flag: &str, value: usize, max: usize, why: &str) -> Result<(), InvalidInput> {
    if value > max {
        return Err(InvalidInput(format!("--{flag} {value} is above the maximum {max} ({why})")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_bounds() {
        assert_eq!(human_bytes(512.0), "512 B");
        assert_eq!(human_bytes(75.0 * 1024.0 * 1024.0), "75.0 MiB");
        assert_eq!(human_bytes(12e12), "10.9 TiB");
        assert_eq!(human_bytes(f64::INFINITY), "an unbounded number of bytes");
        assert_eq!(
            read_kib("MemTotal: 10 kB\nMemAvailable:  2048 kB\n", "MemAvailable:"),
            Some(2 << 20)
        );
        // This test process runs on Linux in CI: it can take some memory, not an exabyte.
        if cfg!(target_os = "linux") {
            let m = memory_available().expect("Linux says");
            assert!(m > 0);
            assert!(
                check_memory("--x", "the job", 1e18)
                    .unwrap_err()
                    .0
                    .starts_with("--x: the job needs about 888.2 PiB")
            );
            check_memory("--x", "the job", 1.0).unwrap();
            assert!(disk_available(Path::new("/definitely/missing/dir")).is_some());
            assert!(check_disk("--out", "the .npz", f64::NAN, Path::new(".")).is_err());
        }
        assert!(check_at_most("per-class", 11, 10, "x").is_err());
    }
}
