//! What a warm worker used over one job: its CPU time from
//! `/proc/<pid>/stat` before and after, and its peak memory from
//! `/proc/<pid>/status` (`VmHWM`, reset at the job's start through
//! `/proc/<pid>/clear_refs` where allowed). A cold job's figures come from
//! `wait4`; a warm worker is not reaped between jobs, so it is read here.
//!
//! These are procfs reads and one procfs write of a child of ours: the
//! kernel answers them from the process's own accounting without touching
//! a disk, so they do not block and are made on the loop (a few
//! microseconds each, twice per warm job).

use std::fs;
use std::time::Duration;

use crate::run::outcome::Usage;

/// A worker's CPU times at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    pub user: Duration,
    pub system: Duration,
}

/// The CPU times of `pid` now.
pub fn sample(pid: u32) -> Option<Sample> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    cpu_times(&stat, clock_ticks())
}

/// Resets the peak resident memory of `pid` to its current size, so the
/// peak read at the job's end is the job's. Without the right to (another
/// user's process), the peak stays the worker's since it started.
pub fn reset_peak(pid: u32) {
    let _ = fs::write(format!("/proc/{pid}/clear_refs"), "5");
}

/// What `pid` used since `before`, and its peak memory now.
pub fn since(before: Sample, pid: u32) -> Usage {
    let after = sample(pid).unwrap_or(before);
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    Usage {
        user: after.user.saturating_sub(before.user),
        system: after.system.saturating_sub(before.system),
        max_rss_kib: peak_kib(&status),
    }
}

/// Fields 14 and 15 of `/proc/<pid>/stat` (utime, stime), in clock ticks.
/// The command name (field 2) may hold spaces and parentheses, so the
/// fields are counted from the last `)`.
fn cpu_times(stat: &str, ticks_per_sec: u64) -> Option<Sample> {
    let rest = stat.rsplit_once(')')?.1;
    let mut fields = rest.split_whitespace().skip(11);
    let ticks = |t: u64| Duration::from_micros(t * 1_000_000 / ticks_per_sec.max(1));
    let user = fields.next()?.parse().ok()?;
    let system = fields.next()?.parse().ok()?;
    Some(Sample {
        user: ticks(user),
        system: ticks(system),
    })
}

/// `VmHWM` (peak resident memory), or `VmRSS` if there is none, in KiB.
fn peak_kib(status: &str) -> u64 {
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
    };
    field("VmHWM:").or_else(|| field("VmRSS:")).unwrap_or(0)
}

fn clock_ticks() -> u64 {
    // SAFETY: sysconf has no memory arguments.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as u64
    } else {
        100
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_times_are_read_after_the_command_name() {
        let stat =
            "4242 (node (x) y) S 1 4242 4242 0 -1 4194560 9 0 0 0 250 30 0 0 20 0 11 0 1 1 1";
        let sample = cpu_times(stat, 100).unwrap();
        assert_eq!(sample.user, Duration::from_millis(2500));
        assert_eq!(sample.system, Duration::from_millis(300));
        assert_eq!(cpu_times("garbage", 100), None);
    }

    #[test]
    fn the_peak_is_vmhwm_else_vmrss() {
        assert_eq!(
            peak_kib("Name:\tnode\nVmHWM:\t  51200 kB\nVmRSS:\t 40000 kB\n"),
            51200
        );
        assert_eq!(peak_kib("VmRSS:\t 40000 kB\n"), 40000);
        assert_eq!(peak_kib(""), 0);
    }

    #[test]
    fn our_own_process_can_be_sampled() {
        let me = std::process::id();
        let before = sample(me).unwrap();
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        let used = since(before, me);
        assert!(used.max_rss_kib > 0);
    }
}
