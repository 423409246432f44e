//! Process CPU time and memory from Linux `/proc`: `utime + stime` from `/proc/PID/stat` (in
//! clock ticks), `VmRSS` / `VmHWM` from `/proc/PID/status` (in kB).

use std::path::Path;

/// CPU seconds and resident memory of one process at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ProcSample {
    pub cpu_s: f64,
    pub rss_kb: u64,
    /// Peak resident set since the process started.
    pub hwm_kb: u64,
}

/// Clock ticks per second for `/proc/PID/stat` (`getconf CLK_TCK`; 100 on every Linux we
/// target if `getconf` is missing).
pub fn clock_ticks_per_s() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|t| *t > 0.0)
        .unwrap_or(100.0)
}

/// `utime + stime` in ticks from the text of `/proc/PID/stat`. The command name (field 2) may
/// contain spaces and parentheses, so fields are counted after its last `)`.
pub fn parse_stat_ticks(stat: &str) -> Option<u64> {
    let after = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = after.split_whitespace().collect();
    // After the name: state is field 3, so utime (14) and stime (15) are at 11 and 12.
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// A `kB` field such as `VmRSS` from the text of `/proc/PID/status`.
pub fn parse_status_kb(status: &str, field: &str) -> Option<u64> {
    status.lines().find_map(|l| {
        let rest = l.strip_prefix(field)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// Sample process `pid` (`"self"` for this process).
pub fn sample(pid: &str, ticks_per_s: f64) -> Option<ProcSample> {
    let dir = Path::new("/proc").join(pid);
    let stat = std::fs::read_to_string(dir.join("stat")).ok()?;
    let status = std::fs::read_to_string(dir.join("status")).ok()?;
    Some(ProcSample {
        cpu_s: parse_stat_ticks(&stat)? as f64 / ticks_per_s,
        rss_kb: parse_status_kb(&status, "VmRSS").unwrap_or(0),
        hwm_kb: parse_status_kb(&status, "VmHWM").unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_after_a_name_with_spaces() {
        let stat = "4242 (dpx (node) x) S 1 4242 4242 0 -1 4194560 9000 0 0 0 1234 567 0 0 20 0 12 0 100 1000000 2000 18446744073709551615";
        assert_eq!(parse_stat_ticks(stat), Some(1234 + 567));
        assert_eq!(parse_stat_ticks("garbage"), None);
        assert_eq!(parse_stat_ticks("1 (x) S 1 2"), None);
    }

    #[test]
    fn status_kb_fields() {
        let status = "Name:\tdpx\nVmHWM:\t  204800 kB\nVmRSS:\t  102400 kB\nThreads:\t12\n";
        assert_eq!(parse_status_kb(status, "VmRSS"), Some(102_400));
        assert_eq!(parse_status_kb(status, "VmHWM"), Some(204_800));
        assert_eq!(parse_status_kb(status, "VmSwap"), None);
    }

    #[test]
    fn this_process_can_be_sampled() {
        let s = sample("self", clock_ticks_per_s()).expect("/proc/self");
        assert!(s.rss_kb > 0 && s.hwm_kb >= s.rss_kb / 2);
    }
}
