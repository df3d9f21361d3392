//! Spawn mode: the daemon's hand-written vfork path (`Spawner`, a spawn
//! thread, the pid through a waker) against std's `Command` on the loop
//! thread, driven the same way on one thread.
//!
//! Each spawn starts `#!/bin/sh\nprintf Test` with piped stdin, stdout and
//! stderr, in its own process group, with the modules' environment (the
//! daemon's `MODULE_ENV` set plus three `BGJOB_*` variables; `env_clear`
//! for `Command`). The driver writes `hello` to stdin and closes it, reads
//! stdout and stderr to EOF through mio and reaps with `waitpid`, keeping
//! `--concurrency` children in flight. The two ways alternate (ABBA) for
//! `--rounds` rounds; figures are medians over the rounds, with the ratio
//! vfork/Command (see `spawn/report.rs`).
//!
//! By default neither way switches user or sets limits, so std keeps its
//! `posix_spawn` path. `--as-user NAME` (root only) and `--rlimit-cpu SECS`
//! give the configuration a root daemon really uses: the vfork path gets
//! them in its `ModuleLimits` (setrlimit, then setgroups/setresgid/setresuid
//! in the vfork child), `Command` gets `.uid().gid()` (std adds
//! `setgroups(0)` as root) and a `pre_exec` closure calling `setrlimit`,
//! either of which makes std fork and exec instead of `posix_spawn`.
//!
//! CPU per spawn: the driving thread (the daemon's loop), the whole process
//! (loop plus spawn thread) and the children (which pay for their own setup
//! before exec, and for the shell).

use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bgjob::run::limits::ModuleLimits;
use bgjob::run::spawn::Spawner;
use mio::unix::pipe::Receiver;
use mio::{Events, Interest, Poll, Token, Waker};
use slab::Slab;

/// The `Command` way: std's process builder, given what `Spawner` gives a module.
mod command;
/// What a round measured, and how it is printed.
mod report;

use command::{module_env, JOB_VARS};
use report::{Cpu, Round, Way};

const WAKER: Token = Token(usize::MAX);
const SCRIPT: &[u8] = b"#!/bin/sh\nprintf Test\n";
/// The user and the limits children get (`--as-user`, `--rlimit-cpu`).
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// A user name or number to run children as; needs root.
    pub as_user: Option<String>,
    /// `RLIMIT_CPU` of children, in seconds.
    pub rlimit_cpu: Option<u64>,
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

struct Driver {
    poll: Poll,
    spawner: Spawner,
    script: PathBuf,
    env: Vec<(OsString, OsString)>,
    job_vars: Vec<String>,
    /// Identity and `cpu_secs` for both ways (the rest stays unset).
    limits: ModuleLimits,
}

impl Driver {
    /// Starts one child the given way, writes its request and closes stdin.
    fn start(&mut self, way: Way) -> io::Result<Flight> {
        let began = Instant::now();
        let (serial, pid, pipes) = match way {
            Way::Vfork => {
                let (serial, pipes) = self.spawner.start(
                    &self.script,
                    &[],
                    &self.job_vars,
                    &self.limits,
                    (None, false),
                )?;
                (Some(serial), None, pipes)
            }
            Way::Command => {
                let (pid, pipes) = command::start(&self.script, &self.env, &self.limits)?;
                (None, Some(Ok(pid)), pipes)
            }
        };
        // Into an empty pipe; EPIPE if the child is gone already.
        let _ = (&pipes.stdin).write(b"hello");
        drop(pipes.stdin);
        Ok(Flight {
            began,
            serial,
            pid,
            stdout: pipes.stdout,
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
            cpu: Cpu::now(),
        };
        let cpu0 = round.cpu;
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
            // Reports are read every turn; the spawn thread wakes the loop
            // only when asked (as the daemon's loop does).
            for result in self.spawner.take_results() {
                let flight = flights
                    .iter_mut()
                    .find(|(_, f)| f.serial == Some(result.serial));
                if let Some((_, flight)) = flight {
                    flight.pid = Some(match (result.pid, result.error) {
                        (Some(pid), None) => Ok(pid),
                        // A failed exec still made a child: reap it.
                        (Some(pid), Some(_)) => {
                            reap(pid);
                            Err(())
                        }
                        (None, _) => Err(()),
                    });
                }
            }
            for event in events.iter() {
                if event.token() == WAKER {
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
            let unreported = flights
                .iter()
                .any(|(_, f)| f.stdout.is_none() && f.stderr.is_none() && f.pid.is_none());
            if unreported {
                self.spawner.want_results();
            }
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
        let cpu1 = Cpu::now();
        round.cpu = Cpu {
            loop_thread: cpu1.loop_thread - cpu0.loop_thread,
            process: cpu1.process - cpu0.process,
            children: cpu1.children - cpu0.children,
        };
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
pub fn run(count: usize, rounds: usize, concurrency: usize, options: &Options) -> ExitCode {
    match compare(count, rounds, concurrency, options) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("bgjob-bench: spawn: {e}");
            ExitCode::from(1)
        }
    }
}

/// The limits both ways give children: `--as-user` looked up as the daemon
/// does (`module_user`), `--rlimit-cpu` as `cpu_secs`.
fn limits(options: &Options) -> io::Result<ModuleLimits> {
    let identity = match &options.as_user {
        None => None,
        Some(user) => {
            let identity = bgjob::config::identity::module_identity(Some(user), None, true)
                .map_err(|e| io::Error::other(e.to_string()))?;
            if identity.is_none() {
                return Err(io::Error::other("--as-user needs root"));
            }
            identity
        }
    };
    Ok(ModuleLimits {
        identity,
        cpu_secs: options.rlimit_cpu,
        ..Default::default()
    })
}

fn compare(count: usize, rounds: usize, concurrency: usize, options: &Options) -> io::Result<bool> {
    let limits = limits(options)?;
    let dir = std::env::temp_dir().join(format!("bgjob-bench-spawn-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let script = dir.join("test.sh");
    // Open to the user the children run as.
    let open = || -> io::Result<()> {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))?;
        std::fs::write(&script, SCRIPT)?;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))
    };
    let result = open().and_then(|()| compare_with(&script, count, rounds, concurrency, limits));
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn compare_with(
    script: &Path,
    count: usize,
    rounds: usize,
    concurrency: usize,
    limits: ModuleLimits,
) -> io::Result<bool> {
    let poll = Poll::new()?;
    let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
    let spawner = Spawner::start_thread(waker, &[], None)?;
    let mut driver = Driver {
        poll,
        spawner,
        script: script.to_owned(),
        env: module_env(std::env::vars_os()),
        job_vars: JOB_VARS.iter().map(|v| v.to_string()).collect(),
        limits,
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
            println!("{}", round.line(r + 1, way, concurrency));
            all_ok &= round.failed == 0;
            results.push((way, round));
        }
    }
    let who = match limits.identity {
        Some((uid, gid)) => format!("as uid {uid} gid {gid}"),
        None => "as this user".to_string(),
    };
    let rlimit = match limits.cpu_secs {
        Some(secs) => format!("RLIMIT_CPU {secs} s"),
        None => "no rlimit".to_string(),
    };
    println!(
        "medians of {} rounds x {count} spawns, {concurrency} in flight, children {who}, {rlimit}:",
        rounds.max(1)
    );
    print!("{}", report::medians(&results));
    Ok(all_ok)
}
