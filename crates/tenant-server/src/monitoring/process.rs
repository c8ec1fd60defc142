//! Process figures read from Linux's `/proc/self` at scrape time: resident memory, CPU time,
//! open and allowed file descriptors, threads. Elsewhere (or if `/proc` is not mounted) they are
//! not set.

use metrics::{counter, gauge};

/// Clock ticks per second of `/proc/self/stat`'s times (`USER_HZ`, 100 on every Linux ABI).
const TICKS_PER_SECOND: u64 = 100;

/// Process figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProcessFigures {
    /// Resident set size, in bytes.
    pub rss_bytes: u64,
    /// User plus system CPU time, in clock ticks.
    pub cpu_ticks: u64,
    /// Threads.
    pub threads: u64,
    /// Open file descriptors.
    pub open_fds: u64,
    /// The soft limit of open file descriptors (`None`: unlimited or unknown).
    pub max_fds: Option<u64>,
}

/// Reads this process's figures; `None` without `/proc`.
pub fn read() -> Option<ProcessFigures> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
    };
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) may hold spaces and parentheses: fields are counted after its
    // closing parenthesis; utime and stime are fields 14 and 15.
    let after = stat.rsplit_once(')')?.1;
    let mut fields = after.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    let open_fds = std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count() as u64)
        .unwrap_or(0);
    let max_fds = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|limits| {
            limits
                .lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3))
                .and_then(|v| v.parse().ok())
        });
    Some(ProcessFigures {
        rss_bytes: field("VmRSS:").unwrap_or(0) * 1024,
        cpu_ticks: utime + stime,
        threads: field("Threads:").unwrap_or(0),
        open_fds,
        max_fds,
    })
}

/// Sets the process gauges from [`read`].
pub fn record() {
    let Some(p) = read() else { return };
    gauge!("process_resident_memory_bytes").set(p.rss_bytes as f64);
    counter!("process_cpu_seconds_total").absolute(p.cpu_ticks / TICKS_PER_SECOND);
    gauge!("process_open_fds").set(p.open_fds as f64);
    if let Some(max) = p.max_fds {
        gauge!("process_max_fds").set(max as f64);
    }
    gauge!("process_threads").set(p.threads as f64);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let p = read().expect("/proc is mounted on Linux");
        assert!(p.rss_bytes > 1 << 20, "{p:?}");
        assert!(p.threads >= 1, "{p:?}");
        // stdin/stdout/stderr at least, and the directory handle being read.
        assert!(p.open_fds >= 3, "{p:?}");
        // CPU time shows once this thread has burnt some (bounded, in case it is starved).
        let before = p.cpu_ticks;
        let start = std::time::Instant::now();
        let mut x = 0u64;
        while read().expect("proc").cpu_ticks <= before {
            for _ in 0..1_000_000 {
                x = x.wrapping_add(std::hint::black_box(1));
            }
            assert!(start.elapsed().as_secs() < 30, "no CPU time counted");
        }
        // Kept alive; zero when the tick came before the first spin (not a failure).
        std::hint::black_box(x);
    }
}
