//! What a round of the spawn mode measured, and how it is printed: one line
//! per round and way, then a table of the medians over the rounds with the
//! ratio vfork/Command.

use std::time::Duration;

use crate::bench::percentile;

/// The two ways to start a child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Way {
    /// `bgjob::run::spawn::Spawner`: clone(CLONE_VM|CLONE_VFORK) on a thread.
    Vfork,
    /// `std::process::Command` with `process_group(0)` on the loop thread.
    Command,
}

impl Way {
    pub fn name(self) -> &'static str {
        match self {
            Way::Vfork => "vfork",
            Way::Command => "Command",
        }
    }
}

/// User plus system CPU time of `who` (`RUSAGE_THREAD`, `_SELF`, `_CHILDREN`).
fn cpu(who: libc::c_int) -> Duration {
    // SAFETY: getrusage fills the zeroed struct we own.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(who, &mut usage);
        usage
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// CPU times of the driving thread, the process and its reaped children.
#[derive(Debug, Clone, Copy)]
pub struct Cpu {
    pub loop_thread: Duration,
    pub process: Duration,
    pub children: Duration,
}

impl Cpu {
    pub fn now() -> Cpu {
        Cpu {
            loop_thread: cpu(libc::RUSAGE_THREAD),
            process: cpu(libc::RUSAGE_SELF),
            children: cpu(libc::RUSAGE_CHILDREN),
        }
    }
}

/// What one round of one way measured.
pub struct Round {
    pub spawns: usize,
    pub failed: usize,
    pub elapsed: Duration,
    /// Sorted.
    pub latencies: Vec<Duration>,
    /// CPU used during the round (a difference of two [`Cpu::now`]).
    pub cpu: Cpu,
}

impl Round {
    fn per_sec(&self) -> f64 {
        self.spawns as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
    fn per_spawn_us(&self, total: Duration) -> f64 {
        total.as_secs_f64() * 1e6 / self.spawns.max(1) as f64
    }
    fn ms(&self, p: f64) -> f64 {
        percentile(&self.latencies, p).as_secs_f64() * 1e3
    }

    /// The round's `key=value` line.
    pub fn line(&self, round: usize, way: Way, concurrency: usize) -> String {
        format!(
            "round={round} way={} in_flight={concurrency} spawns={} failed={} spawns_per_sec={:.0} p50_ms={:.3} p99_ms={:.3} loop_cpu_us={:.1} process_cpu_us={:.1} child_cpu_us={:.1}",
            way.name(),
            self.spawns,
            self.failed,
            self.per_sec(),
            self.ms(50.0),
            self.ms(99.0),
            self.per_spawn_us(self.cpu.loop_thread),
            self.per_spawn_us(self.cpu.process),
            self.per_spawn_us(self.cpu.children),
        )
    }
}

/// The median of some figures (the lower middle one for an even count).
fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    values[(values.len() - 1) / 2]
}

/// One figure of a round, for the table of medians.
type Figure = fn(&Round) -> f64;

/// The table of medians of each figure, per way, and their ratio.
pub fn medians(results: &[(Way, Round)]) -> String {
    let figure = |way: Way, f: Figure| {
        median(
            results
                .iter()
                .filter(|(w, _)| *w == way)
                .map(|(_, r)| f(r))
                .collect(),
        )
    };
    let rows: [(&str, Figure); 6] = [
        ("spawns/s", |r| r.per_sec()),
        ("p50 ms", |r| r.ms(50.0)),
        ("p99 ms", |r| r.ms(99.0)),
        ("loop-thread CPU us/spawn", |r| {
            r.per_spawn_us(r.cpu.loop_thread)
        }),
        ("process CPU us/spawn", |r| r.per_spawn_us(r.cpu.process)),
        ("child CPU us/spawn", |r| r.per_spawn_us(r.cpu.children)),
    ];
    let mut table =
        String::from("| figure | vfork (Spawner) | Command | vfork/Command |\n|---|---|---|---|\n");
    for (name, f) in rows {
        let (a, b) = (figure(Way::Vfork, f), figure(Way::Command, f));
        table += &format!("| {name} | {a:.3} | {b:.3} | {:.3} |\n", a / b.max(1e-12));
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_take_the_lower_middle() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), 2.0);
        assert_eq!(median(Vec::new()), 0.0);
    }
}
