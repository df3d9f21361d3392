//! Starting a module's process and ending it: spawn with non-blocking pipes in
//! its own process group, signal the group, reap.
//!
//! Children are spawned directly (never through a shell) with
//! `posix_spawn`, see `spawn.rs`.

use std::ffi::OsStr;
use std::io;
use std::path::Path;
use std::time::Instant;

use mio::unix::pipe::{Receiver, Sender};

use crate::run::modules::{Kind, Module};
use crate::run::outcome::Outcome;
use crate::run::outcome::{decode_status, Usage};
use crate::run::spawn::{ModuleLimits, Pipes, Spawner};
use crate::run::stderr::StderrLog;

/// How far the stopping of a child has gone; each phase has its deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Running within its time limit.
    Running,
    /// Past its limit: SIGTERM sent to the group, SIGKILL at the deadline.
    Terminating,
    /// SIGKILL sent; waiting to reap.
    Killed,
    /// Reaped; its pipes get until the deadline to reach end of file (a
    /// process that left the group may still hold them open).
    Exited,
}

/// A running module process and what it has said so far.
#[derive(Debug)]
pub struct Child {
    /// Known once the spawn thread has started it.
    pub pid: Option<u32>,
    /// The spawn order's serial number, to match the spawn thread's result.
    pub serial: u64,
    pub stdin: Option<Sender>,
    /// Stdin is registered with the poll (only once a write would block).
    pub stdin_watched: bool,
    pub stdout: Option<Receiver>,
    pub stderr: Option<Receiver>,
    /// Stdout so far, the answer once the job is done.
    pub output: Vec<u8>,
    /// A stderr line not yet complete, and how much stderr was logged.
    pub stderr_log: StderrLog,
    /// Exit status from `wait`, once reaped.
    pub status: Option<i32>,
    /// Resource use, once reaped.
    pub usage: Usage,
    /// To be killed: done at once if the pid is known, else when it arrives.
    pub condemned: bool,
    /// Killed because the daemon stopped: a journaled job runs again after
    /// the restart instead of being recorded as failed.
    pub killed_at_stop: bool,
    /// An outcome decided by the daemon (timed out, output too large), which
    /// wins over the exit status it caused.
    pub verdict: Option<Outcome>,
    pub started: Instant,
    pub phase: Phase,
    pub deadline: Instant,
}

impl Child {
    /// Signals its process group while it has not been reaped; before its
    /// pid is known there is nothing to signal yet.
    pub fn signal(&self, signal: i32) {
        if let (Some(pid), None) = (self.pid, self.status) {
            signal_group(pid, signal);
        }
    }

    /// Kills its process group now, or as soon as its pid is known.
    pub fn kill(&mut self) {
        self.condemned = true;
        self.signal(libc::SIGKILL);
    }

    /// Done when reaped and both output pipes are closed.
    pub fn is_done(&self) -> bool {
        self.status.is_some() && self.stdout.is_none() && self.stderr.is_none()
    }

    pub fn outcome(&self) -> Outcome {
        if let Some(verdict) = &self.verdict {
            return verdict.clone();
        }
        match self.status {
            Some(raw) => decode_status(raw),
            None => Outcome::SpawnFailed("not reaped".into()),
        }
    }
}

/// The Node.js host that runs `.js` modules written against the seed's API
/// (`bin/bgjob-node-host.js`), built into the binary so that an installed
/// bgjobd never looks for it on disk.
pub(crate) const NODE_HOST: &str = include_str!("../../bin/bgjob-node-host.js");

/// The environment a job adds for its module.
pub struct JobEnv<'a> {
    pub module: &'a str,
    pub transport: &'a str,
    pub remote: Option<String>,
    pub job_id: Option<u64>,
    pub attempt: u32,
}

impl JobEnv<'_> {
    /// The `BGJOB_*` variables as `NAME=value`.
    pub fn vars(&self) -> Vec<String> {
        let mut vars = vec![
            format!("BGJOB_MODULE={}", self.module),
            format!("BGJOB_TRANSPORT={}", self.transport),
            format!("BGJOB_ATTEMPT={}", self.attempt),
        ];
        if let Some(remote) = &self.remote {
            vars.push(format!("BGJOB_REMOTE={remote}"));
        }
        if let Some(id) = self.job_id {
            vars.push(format!("BGJOB_JOB_ID={id}"));
        }
        vars
    }
}

/// Orders the module started with piped, non-blocking stdin/stdout/stderr,
/// as the leader of a new process group. `node` is the Node.js binary,
/// resolved. The pid comes later, from the spawn thread.
pub fn spawn(
    spawner: &mut Spawner,
    module: &Module,
    env: &JobEnv,
    node: Option<&Path>,
    limits: &ModuleLimits,
    deadline: Instant,
) -> io::Result<Child> {
    let vars = env.vars();
    let (serial, pipes) = match module.kind {
        Kind::Executable => spawner.start(&module.path, &[], &vars, limits)?,
        Kind::Node => {
            let node = node
                .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "node is not installed"))?;
            let args = [
                OsStr::new("-e"),
                OsStr::new(NODE_HOST),
                module.path.as_os_str(),
            ];
            spawner.start(node, &args, &vars, limits)?
        }
    };
    let Pipes {
        stdin,
        stdout,
        stderr,
    } = pipes;
    Ok(Child {
        pid: None,
        serial,
        stdin: Some(stdin),
        stdin_watched: false,
        stdout: Some(stdout),
        stderr: Some(stderr),
        output: Vec::new(),
        stderr_log: StderrLog::default(),
        status: None,
        usage: Usage::default(),
        condemned: false,
        killed_at_stop: false,
        verdict: None,
        started: Instant::now(),
        phase: Phase::Running,
        deadline,
    })
}

/// Sends `signal` to the whole process group led by `pid`. Only called while
/// the leader is unreaped (running or a zombie), so the group id cannot have
/// been reused by an unrelated process.
pub fn signal_group(pid: u32, signal: i32) {
    // SAFETY: kill(2) with a negative pid signals a process group; no memory is shared.
    unsafe {
        libc::kill(-(pid as libc::pid_t), signal);
    }
}

/// A child that has exited, left unreaped (`WNOWAIT`) so that the caller can
/// still signal its group before reaping it with [`reap`].
pub fn next_exited() -> Option<u32> {
    // SAFETY: waitid fills the zeroed siginfo_t we own; si_pid reads a field of it.
    unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        let flags = libc::WEXITED | libc::WNOHANG | libc::WNOWAIT;
        if libc::waitid(libc::P_ALL, 0, &mut info, flags) != 0 {
            return None;
        }
        match info.si_pid() {
            0 => None,
            pid => Some(pid as u32),
        }
    }
}

/// True if this child has exited (it is left unreaped).
pub fn has_exited(pid: u32) -> bool {
    // SAFETY: as in next_exited.
    unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        let flags = libc::WEXITED | libc::WNOHANG | libc::WNOWAIT;
        libc::waitid(libc::P_PID, pid as libc::id_t, &mut info, flags) == 0
            && info.si_pid() as u32 == pid
    }
}

/// Reaps an exited child, returning its raw wait status and resource use.
pub fn reap(pid: u32) -> Option<(i32, Usage)> {
    let mut status = 0;
    // SAFETY: wait4 writes the status and the zeroed rusage we own.
    let (got, usage) = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        let got = libc::wait4(pid as libc::pid_t, &mut status, libc::WNOHANG, &mut usage);
        (got, usage)
    };
    let time =
        |t: libc::timeval| std::time::Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    (got == pid as libc::pid_t).then(|| {
        let usage = Usage {
            user: time(usage.ru_utime),
            system: time(usage.ru_stime),
            max_rss_kib: usage.ru_maxrss as u64,
        };
        (status, usage)
    })
}
