//! Reading a process's CPU time and memory from `/proc`, and the host's load average.

use std::path::Path;

/// Clock ticks per second of `/proc/*/stat` times (`USER_HZ`, 100 on Linux for x86 and ARM).
const TICKS_PER_SEC: f64 = 100.0;

/// A process's resource figures at one moment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProcSample {
    /// User plus system CPU seconds, all threads.
    pub cpu_s: f64,
    /// Resident set size now, MB.
    pub rss_mb: f64,
    /// Peak resident set size (`VmHWM`), MB.
    pub peak_rss_mb: f64,
}

/// Reads `/proc/<pid>/stat` and `/proc/<pid>/status`; `None` when the process is gone.
pub fn sample(pid: u32) -> Option<ProcSample> {
    sample_at(&Path::new("/proc").join(pid.to_string()))
}

/// The current process's CPU seconds.
pub fn self_cpu_s() -> Option<f64> {
    sample_at(Path::new("/proc/self")).map(|s| s.cpu_s)
}

fn sample_at(dir: &Path) -> Option<ProcSample> {
    let stat = std::fs::read_to_string(dir.join("stat")).ok()?;
    let status = std::fs::read_to_string(dir.join("status")).ok()?;
    Some(ProcSample {
        cpu_s: cpu_seconds(&stat)?,
        rss_mb: status_kb(&status, "VmRSS").map_or(0.0, |kb| kb as f64 / 1024.0),
        peak_rss_mb: status_kb(&status, "VmHWM").map_or(0.0, |kb| kb as f64 / 1024.0),
    })
}

/// `utime + stime` in seconds from a `/proc/<pid>/stat` line. The command name (field 2) may
/// hold spaces and parentheses, so fields are counted after its last `)`.
pub fn cpu_seconds(stat: &str) -> Option<f64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    // After the name: state is field 3, utime field 14, stime field 15.
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) as f64 / TICKS_PER_SEC)
}

/// A `kB` value such as `VmHWM:   12345 kB` from `/proc/<pid>/status`.
pub fn status_kb(status: &str, key: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let (k, v) = line.split_once(':')?;
        (k == key).then(|| v.trim().trim_end_matches("kB").trim().parse().ok())?
    })
}

/// The 1-minute load average, from `/proc/loadavg`.
pub fn load_average() -> Option<f64> {
    parse_loadavg(&std::fs::read_to_string("/proc/loadavg").ok()?)
}

/// The first field of a `/proc/loadavg` line.
pub fn parse_loadavg(line: &str) -> Option<f64> {
    line.split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_from_stat_with_awkward_name() {
        let stat = "4242 (moltbot (x) saas) S 1 4242 4242 0 -1 4194560 900 0 0 0 \
                    250 75 0 0 20 0 3 0 12345 100000 2000 18446744073709551615";
        assert_eq!(cpu_seconds(stat), Some(3.25));
        assert_eq!(cpu_seconds("garbage"), None);
        assert_eq!(cpu_seconds("1 (x) S 1 2"), None);
    }

    #[test]
    fn status_fields_in_kb() {
        let status =
            "Name:\tmoltbot-saas\nVmPeak:\t  999 kB\nVmHWM:\t   20480 kB\nVmRSS:\t 10240 kB\n";
        assert_eq!(status_kb(status, "VmHWM"), Some(20480));
        assert_eq!(status_kb(status, "VmRSS"), Some(10240));
        assert_eq!(status_kb(status, "VmSwap"), None);
        assert_eq!(status_kb("VmHWM: lots", "VmHWM"), None);
    }

    #[test]
    fn loadavg_first_field() {
        assert_eq!(parse_loadavg("1.52 0.98 0.50 3/412 9999\n"), Some(1.52));
        assert_eq!(parse_loadavg(""), None);
    }

    #[test]
    fn reads_this_process() {
        let me = sample(std::process::id()).unwrap();
        assert!(me.cpu_s >= 0.0);
        assert!(me.peak_rss_mb > 0.0 && me.peak_rss_mb >= me.rss_mb * 0.5);
        assert!(self_cpu_s().is_some());
    }
}
