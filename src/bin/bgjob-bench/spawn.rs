//! Spawn mode: the daemon's hand-written vfork path (`Spawner`, a spawn
//! thread, the pid through a waker) against std's `Command` (glibc's
//! `posix_spawn`) on the loop thread, driven the same way on one thread.
//!
//! Each spawn starts `#!/bin/sh\nprintf Test` with piped stdin, stdout and
//! stderr, in its own process group, with the modules' environment (the
//! daemon's `MODULE_ENV` set plus three `BGJOB_*` variables; `env_clear`
//! for `Command`, no `pre_exec`, so std keeps its `posix_spawn` path). The
//! driver writes `hello` to stdin and closes it, reads stdout and stderr to
//! EOF through mio and reaps with `waitpid`, keeping `--concurrency` children
//! in flight. The two ways alternate (ABBA) for `--rounds` rounds; figures
//! are medians over the rounds, with the ratio vfork/Command.
//!
//! CPU per spawn: the driving thread (the daemon's loop), the whole process
//! (loop plus spawn thread) and the children (which pay for their own setup
//! before exec, and for the shell).

use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bgjob::run::spawn::{ModuleLimits, Pipes, Spawner, MODULE_ENV};
use mio::unix::pipe::Receiver;
use mio::{Events, Interest, Poll, Token, Waker};
use slab::Slab;

use crate::bench::percentile;

const WAKER: Token = Token(usize::MAX);
const SCRIPT: &[u8] = b"#!/bin/sh\nprintf Test\n";
/// The variables a job adds (`JobEnv::vars` for a TCP request).
const JOB_VARS: [&str; 3] = [
    "BGJOB_MODULE=test",
    "BGJOB_TRANSPORT=tcp",
    "BGJOB_ATTEMPT=1",
];

/// The two ways to start a child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Way {
    /// `bgjob::run::spawn::Spawner`: clone(CLONE_VM|CLONE_VFORK) on a thread.
    Vfork,
    /// `std::process::Command` with `process_group(0)` on the loop thread.
    Command,
}

impl Way {
    fn name(self) -> &'static str {
        match self {
            Way::Vfork => "vfork",
            Way::Command => "Command",
        }
    }
}

/// Whether the daemon passes the variable `name` to modules (the rule of
/// `Spawner::start_thread` with no `module_env` names).
fn passes(name: &[u8]) -> bool {
    MODULE_ENV
        .iter()
        .any(|allowed| match allowed.strip_suffix('*') {
            Some(prefix) => name.starts_with(prefix.as_bytes()),
            None => name == allowed.as_bytes(),
        })
}

/// The environment `Spawner` gives a module, for `Command` to give the same.
fn module_env(vars: impl Iterator<Item = (OsString, OsString)>) -> Vec<(OsString, OsString)> {
    let mut env: Vec<_> = vars.filter(|(k, _)| passes(k.as_bytes())).collect();
    if !env.iter().any(|(k, _)| k == "PATH") {
        env.push(("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into()));
    }
    for var in JOB_VARS {
        let (k, v) = var.split_once('=').expect("NAME=value");
        env.push((k.into(), v.into()));
    }
    env
}

/// The median of some figures (the lower middle one for an even count).
fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    values[(values.len() - 1) / 2]
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

/// A child in flight.
struct Flight {
    began: Instant,
    /// The spawn order's serial, while its pid is not known (vfork).
    serial: Option<u64>,
    /// `Some(Err)`: the spawn thread could not start it.
    pid: Option<Result<u32, ()>>,
    stdout: Option<Receiver>,
    stderr: Option<Receiver>,
    output: Vec<u8>,
}

/// What one round of one way measured.
struct Round {
    spawns: usize,
    failed: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
    loop_cpu: Duration,
    process_cpu: Duration,
    child_cpu: Duration,
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
}

/// One figure of a round, for the table of medians.
type Figure = fn(&Round) -> f64;

struct Driver {
    poll: Poll,
    spawner: Spawner,
    script: PathBuf,
    env: Vec<(OsString, OsString)>,
    job_vars: Vec<String>,
}

impl Driver {
    /// Starts one child the given way, writes its request and closes stdin.
    fn start(&mut self, way: Way) -> io::Result<Flight> {
        let began = Instant::now();
        let (serial, pid, pipes) = match way {
            Way::Vfork => {
                let limits = ModuleLimits::default();
                let (serial, pipes) =
                    self.spawner
                        .start(&self.script, &[], &self.job_vars, &limits)?;
                (Some(serial), None, pipes)
            }
            Way::Command => {
                let mut child = Command::new(&self.script)
                    .env_clear()
                    .envs(self.env.iter().map(|(k, v)| (k, v)))
                    .process_group(0)
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()?;
                let no_pipe = || io::Error::other("no pipe");
                let pipes = Pipes {
                    stdin: child.stdin.take().ok_or_else(no_pipe)?.into(),
                    stdout: child.stdout.take().ok_or_else(no_pipe)?.into(),
                    stderr: child.stderr.take().ok_or_else(no_pipe)?.into(),
                };
                pipes.stdin.set_nonblocking(true)?;
                pipes.stdout.set_nonblocking(true)?;
                pipes.stderr.set_nonblocking(true)?;
                (None, Some(Ok(child.id())), pipes)
            }
        };
        // Into an empty pipe; EPIPE if the child is gone already.
        let _ = (&pipes.stdin).write(b"hello");
        drop(pipes.stdin);
        Ok(Flight {
            began,
            serial,
            pid,
            stdout: Some(pipes.stdout),
            stderr: Some(pipes.stderr),
            output: Vec::new(),
        })
    }

    /// `count` spawns of one way with `concurrency` in flight.
    fn round(&mut self, way: Way, count: usize, concurrency: usize) -> io::Result<Round> {
        let mut flights: Slab<Flight> = Slab::new();
        let mut events = Events::with_capacity(64);
        let mut round = Round {
            spawns: count,
            failed: 0,
            elapsed: Duration::ZERO,
            latencies: Vec::with_capacity(count),
            loop_cpu: Duration::ZERO,
            process_cpu: Duration::ZERO,
            child_cpu: Duration::ZERO,
        };
        let (loop0, process0, child0) = (
            cpu(libc::RUSAGE_THREAD),
            cpu(libc::RUSAGE_SELF),
            cpu(libc::RUSAGE_CHILDREN),
        );
        let start = Instant::now();
        let mut started = 0;
        while started < count || !flights.is_empty() {
            while started < count && flights.len() < concurrency.max(1) {
                let mut flight = self.start(way)?;
                let key = flights.vacant_key();
                let registry = self.poll.registry();
                for (i, pipe) in [&mut flight.stdout, &mut flight.stderr]
                    .into_iter()
                    .enumerate()
                {
                    if let Some(pipe) = pipe {
                        registry.register(pipe, Token(key * 2 + i), Interest::READABLE)?;
                    }
                }
                flights.insert(flight);
                started += 1;
            }
            match self.poll.poll(&mut events, Some(Duration::from_secs(10))) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => other?,
            }
            if events.is_empty() {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "no event in 10 s"));
            }
            for event in events.iter() {
                if event.token() == WAKER {
                    for result in self.spawner.take_results() {
                        let flight = flights
                            .iter_mut()
                            .find(|(_, f)| f.serial == Some(result.serial));
                        if let Some((_, flight)) = flight {
                            flight.pid = Some(result.pid.map_err(|_| ()));
                        }
                    }
                    continue;
                }
                let key = event.token().0 / 2;
                let Some(flight) = flights.get_mut(key) else {
                    continue;
                };
                let pipe = if event.token().0 % 2 == 0 {
                    &mut flight.stdout
                } else {
                    &mut flight.stderr
                };
                if drain(pipe.as_mut(), &mut flight.output)? {
                    if let Some(mut closed) = pipe.take() {
                        self.poll.registry().deregister(&mut closed)?;
                    }
                }
            }
            // Reap the children whose pipes are closed and whose pid is known.
            let finished: Vec<usize> = flights
                .iter()
                .filter(|(_, f)| f.stdout.is_none() && f.stderr.is_none() && f.pid.is_some())
                .map(|(key, _)| key)
                .collect();
            for key in finished {
                let flight = flights.remove(key);
                let ok = match flight.pid {
                    Some(Ok(pid)) => reap(pid) == Some(0) && flight.output == b"Test",
                    _ => false,
                };
                if !ok {
                    round.failed += 1;
                }
                round.latencies.push(flight.began.elapsed());
            }
        }
        round.elapsed = start.elapsed();
        round.loop_cpu = cpu(libc::RUSAGE_THREAD) - loop0;
        round.process_cpu = cpu(libc::RUSAGE_SELF) - process0;
        round.child_cpu = cpu(libc::RUSAGE_CHILDREN) - child0;
        round.latencies.sort_unstable();
        Ok(round)
    }
}

/// Reads until the pipe would block; true at end of file.
fn drain(pipe: Option<&mut Receiver>, into: &mut Vec<u8>) -> io::Result<bool> {
    let Some(pipe) = pipe else {
        return Ok(false);
    };
    let mut buf = [0u8; 4096];
    loop {
        match pipe.read(&mut buf) {
            Ok(0) => return Ok(true),
            Ok(n) => into.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Waits for `pid` (its pipes are closed, so it is exiting); its exit code.
fn reap(pid: u32) -> Option<i32> {
    let mut status = 0;
    // SAFETY: waits for our own child; fills the status we own.
    let done = unsafe { libc::waitpid(pid as libc::pid_t, &mut status, 0) };
    (done == pid as libc::pid_t && libc::WIFEXITED(status)).then(|| libc::WEXITSTATUS(status))
}

/// The spawn mode: prints one line per round and way, then the medians.
pub fn run(count: usize, rounds: usize, concurrency: usize) -> ExitCode {
    match compare(count, rounds, concurrency) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("bgjob-bench: spawn: {e}");
            ExitCode::from(1)
        }
    }
}

fn compare(count: usize, rounds: usize, concurrency: usize) -> io::Result<bool> {
    let dir = std::env::temp_dir().join(format!("bgjob-bench-spawn-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let script = dir.join("test.sh");
    std::fs::write(&script, SCRIPT)?;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))?;
    let result = compare_with(&script, count, rounds, concurrency);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn compare_with(
    script: &Path,
    count: usize,
    rounds: usize,
    concurrency: usize,
) -> io::Result<bool> {
    let poll = Poll::new()?;
    let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
    let spawner = Spawner::start_thread(waker, &[])?;
    let mut driver = Driver {
        poll,
        spawner,
        script: script.to_owned(),
        env: module_env(std::env::vars_os()),
        job_vars: JOB_VARS.iter().map(|v| v.to_string()).collect(),
    };
    // Warm up both ways (page cache, allocator, the spawn thread's stack).
    for way in [Way::Vfork, Way::Command] {
        driver.round(way, 200.min(count), concurrency)?;
    }
    let mut all_ok = true;
    let mut results: Vec<(Way, Round)> = Vec::new();
    for r in 0..rounds.max(1) {
        // ABBA order, so that a drift in the machine's load favours neither.
        let order = if r % 2 == 0 {
            [Way::Vfork, Way::Command]
        } else {
            [Way::Command, Way::Vfork]
        };
        for way in order {
            let round = driver.round(way, count, concurrency)?;
            println!(
                "round={} way={} in_flight={concurrency} spawns={} failed={} spawns_per_sec={:.0} p50_ms={:.3} p99_ms={:.3} loop_cpu_us={:.1} process_cpu_us={:.1} child_cpu_us={:.1}",
                r + 1,
                way.name(),
                round.spawns,
                round.failed,
                round.per_sec(),
                round.ms(50.0),
                round.ms(99.0),
                round.per_spawn_us(round.loop_cpu),
                round.per_spawn_us(round.process_cpu),
                round.per_spawn_us(round.child_cpu),
            );
            all_ok &= round.failed == 0;
            results.push((way, round));
        }
    }
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
        ("loop-thread CPU us/spawn", |r| r.per_spawn_us(r.loop_cpu)),
        ("process CPU us/spawn", |r| r.per_spawn_us(r.process_cpu)),
        ("child CPU us/spawn", |r| r.per_spawn_us(r.child_cpu)),
    ];
    println!(
        "medians of {} rounds x {count} spawns, {concurrency} in flight:",
        rounds.max(1)
    );
    println!("| figure | vfork (Spawner) | Command | vfork/Command |");
    println!("|---|---|---|---|");
    for (name, f) in rows {
        let (a, b) = (figure(Way::Vfork, f), figure(Way::Command, f));
        println!("| {name} | {a:.3} | {b:.3} | {:.3} |", a / b.max(1e-12));
    }
    Ok(all_ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_gets_the_variables_the_spawner_passes() {
        let vars = [
            ("PATH", "/bin"),
            ("LC_ALL", "C"),
            ("LD_PRELOAD", "x"),
            ("PATHX", "y"),
        ];
        let env = module_env(vars.iter().map(|(k, v)| (k.into(), v.into())));
        let names: Vec<_> = env.iter().map(|(k, _)| k.to_str().unwrap()).collect();
        assert_eq!(
            names,
            [
                "PATH",
                "LC_ALL",
                "BGJOB_MODULE",
                "BGJOB_TRANSPORT",
                "BGJOB_ATTEMPT"
            ]
        );
        let env = module_env(std::iter::empty());
        assert_eq!(
            env[0],
            ("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into())
        );
    }

    #[test]
    fn medians_take_the_lower_middle() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), 2.0);
        assert_eq!(median(Vec::new()), 0.0);
    }
}
