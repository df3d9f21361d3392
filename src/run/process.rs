//! A module process, cold job or warm worker alike: its pid (known once the
//! spawn thread reports it), its three non-blocking pipes, the bytes waiting
//! for its stdin, its stderr log and, once reaped, its exit.
//!
//! Pipes are closed by dropping them, without a `deregister` first: closing
//! the only descriptor of a pipe end removes it from the epoll set (ours are
//! close-on-exec and never duplicated), and it saves a system call per pipe
//! on the hot path. Stdin is only watched once a write would block.

use std::ffi::OsStr;
use std::io;
use std::os::fd::OwnedFd;
use std::path::Path;

use mio::unix::pipe::{Receiver, Sender};
use mio::{Interest, Registry, Token};

use crate::io::{drain, OutBuf, ReadEnd};
use crate::run::fds::drain_budget;
use crate::run::limits::ModuleLimits;
use crate::run::outcome::Usage;
use crate::run::progress::ProgressLines;
use crate::run::spawn::{Pipes, Spawner};
use crate::run::stderr::StderrLog;

/// The size a child's stdin pipe grows to once a request fills it.
const STDIN_PIPE_BYTES: libc::c_int = 1 << 20;

/// One of a process's pipes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdin = 0,
    Stdout = 1,
    Stderr = 2,
    /// Its progress lines (`BGJOB_PROGRESS_FD`), for cold jobs.
    Progress = 3,
}

/// A reaped process: its raw wait status and resource use.
pub type Exit = (i32, Usage);

/// What became of writing to a process's stdin.
#[derive(Debug, PartialEq, Eq)]
pub enum StdinWrite {
    /// Everything pending is written.
    Written,
    /// The pipe is full; it is watched, and writing goes on when it drains.
    Waiting,
    /// The process closed it (or never had it): what was pending is dropped.
    Closed,
}

/// A started process and its pipes.
#[derive(Debug)]
pub struct Process {
    /// Known once the spawn thread has started it.
    pub pid: Option<u32>,
    /// The spawn order's serial number, to match the spawn thread's report.
    pub serial: u64,
    stdin: Option<Sender>,
    /// Stdin is registered with the poll (only once a write would block).
    stdin_watched: bool,
    /// Bytes not yet written to stdin.
    pub input: OutBuf,
    stdout: Option<Receiver>,
    stderr: Option<Receiver>,
    stderr_log: StderrLog,
    /// The read end of its progress pipe, and the lines read from it.
    progress: Option<Receiver>,
    pub progress_lines: ProgressLines,
    /// Exit status and resource use, once reaped.
    pub exit: Option<Exit>,
    /// To be killed: done at once if the pid is known, else when it arrives.
    condemned: bool,
    /// The module uid it runs as, when each job gets its own.
    pub uid: Option<u32>,
}

impl Process {
    /// Orders `program` started by the spawn thread, as the leader of a new
    /// process group, and watches its stdout and stderr under `token(stream)`.
    /// With `stdout`, the process writes there (a client's socket) and
    /// only its stderr is watched. With `progress`, it gets a progress pipe.
    pub fn start(
        spawner: &mut Spawner,
        registry: &Registry,
        (program, args): (&Path, &[&OsStr]),
        env: &[String],
        limits: &ModuleLimits,
        outputs: (Option<OwnedFd>, bool),
        token: impl Fn(Stream) -> Token,
    ) -> io::Result<Process> {
        let (serial, pipes) = spawner.start(program, args, env, limits, outputs)?;
        let Pipes {
            stdin,
            mut stdout,
            mut stderr,
            mut progress,
        } = pipes;
        let mut process = Process {
            pid: None,
            serial,
            stdin: Some(stdin),
            stdin_watched: false,
            input: OutBuf::default(),
            stdout: None,
            stderr: None,
            stderr_log: StderrLog::default(),
            progress: None,
            progress_lines: ProgressLines::default(),
            exit: None,
            condemned: false,
            uid: limits.identity.map(|(uid, _)| uid),
        };
        let watched = stdout
            .as_mut()
            .map_or(Ok(()), |stdout| {
                registry.register(stdout, token(Stream::Stdout), Interest::READABLE)
            })
            .and_then(|()| {
                registry.register(&mut stderr, token(Stream::Stderr), Interest::READABLE)
            })
            .and_then(|()| {
                progress.as_mut().map_or(Ok(()), |progress| {
                    registry.register(progress, token(Stream::Progress), Interest::READABLE)
                })
            });
        if let Err(e) = watched {
            // Started but unwatchable: killed as soon as its pid is known.
            process.kill();
            process.stdin = None;
            return Err(e);
        }
        process.stdout = stdout;
        process.stderr = Some(stderr);
        process.progress = progress;
        Ok(process)
    }

    /// The spawn thread reported the pid; a kill ordered meanwhile happens now.
    pub fn started(&mut self, pid: u32) {
        self.pid = Some(pid);
        if self.condemned {
            signal_group(pid, libc::SIGKILL);
        }
    }

    /// Signals its process group while it has not been reaped; before its
    /// pid is known there is nothing to signal yet.
    pub fn signal(&self, signal: i32) {
        if let (Some(pid), None) = (self.pid, self.exit) {
            signal_group(pid, signal);
        }
    }

    /// Kills its process group now, or as soon as its pid is known.
    pub fn kill(&mut self) {
        self.condemned = true;
        self.signal(libc::SIGKILL);
    }

    /// Writes the pending input to stdin, watching the pipe under `token`
    /// the first time it is full. With `close_when_written`, stdin closes
    /// once everything is written. A process that does not read (EPIPE)
    /// loses the rest of its input, nothing else.
    pub fn feed(
        &mut self,
        registry: &Registry,
        token: Token,
        close_when_written: bool,
    ) -> StdinWrite {
        let Some(pipe) = &mut self.stdin else {
            self.input.discard();
            return StdinWrite::Closed;
        };
        match self.input.write_to(&*pipe) {
            Ok(true) => {
                if close_when_written {
                    self.stdin = None;
                }
                StdinWrite::Written
            }
            Ok(false) => self.stdin_full(registry, token),
            Err(_) => {
                self.close_stdin();
                StdinWrite::Closed
            }
        }
    }

    /// Stdin is full (written to, or spliced into): it is watched under
    /// `token`, to go on when it drains.
    pub fn stdin_full(&mut self, registry: &Registry, token: Token) -> StdinWrite {
        let Some(pipe) = &mut self.stdin else {
            return StdinWrite::Closed;
        };
        if !self.stdin_watched {
            // A request larger than the pipe: a larger pipe means
            // fewer turns per byte (best effort; the kernel caps it).
            // SAFETY: fcntl on a descriptor we own.
            unsafe {
                use std::os::fd::AsRawFd;
                libc::fcntl(pipe.as_raw_fd(), libc::F_SETPIPE_SZ, STDIN_PIPE_BYTES);
            }
            let _ = self.input.write_to(&*pipe);
            if let Err(e) = registry.register(pipe, token, Interest::WRITABLE) {
                log::error!("cannot watch a child's stdin: {e}");
                self.close_stdin();
                return StdinWrite::Closed;
            }
            self.stdin_watched = true;
        }
        StdinWrite::Waiting
    }

    /// Stdin's pipe, while it is open and nothing waits to be written to
    /// it: request bytes may be spliced into it (`net/splice.rs`).
    pub fn spliceable_stdin(&self) -> Option<std::os::fd::RawFd> {
        use std::os::fd::AsRawFd;
        let pipe = self.stdin.as_ref().filter(|_| self.input.is_empty())?;
        Some(pipe.as_raw_fd())
    }

    /// Closes stdin, dropping what was not written.
    pub fn close_stdin(&mut self) {
        self.input.discard();
        self.stdin = None;
    }

    /// Reads stdout until it would block, handing each chunk to `take`
    /// (which returns false to stop reading: the pipe is then closed).
    /// True while stdout is still open.
    pub fn read_stdout(&mut self, scratch: &mut [u8], take: impl FnMut(&[u8]) -> bool) -> bool {
        let Some(stdout) = &self.stdout else {
            return false;
        };
        let mut stopped = false;
        let mut take = take;
        let end = drain(stdout, scratch, |chunk| {
            let more = take(chunk);
            stopped = !more;
            more
        });
        if stopped || !matches!(end, Ok(ReadEnd::Open)) {
            self.stdout = None;
        }
        self.stdout.is_some()
    }

    /// Logs what stderr has, line by line under `name`, up to the pipe
    /// budget (`registry` watches it again under `token` for the rest);
    /// true while it is open.
    pub fn read_stderr(
        &mut self,
        name: &str,
        scratch: &mut [u8],
        (registry, token): (&Registry, Token),
    ) -> bool {
        let Some(stderr) = &mut self.stderr else {
            return false;
        };
        let (pid, log) = (self.pid, &mut self.stderr_log);
        let end = drain_budget(stderr, scratch, (registry, token), |chunk| {
            log.feed(name, pid, chunk)
        });
        if !matches!(end, Ok(ReadEnd::Open)) {
            log.finish(name, pid);
            self.stderr = None;
        }
        self.stderr.is_some()
    }

    /// The first line the process wrote to stderr that was not empty.
    pub fn first_stderr_line(&self) -> &[u8] {
        self.stderr_log.first_line()
    }

    /// Reads the progress pipe up to the pipe budget, as stderr; true if
    /// what the job says of its progress changed. The pipe closes at end
    /// of file (a module that closes it early just says nothing more).
    pub fn read_progress(
        &mut self,
        scratch: &mut [u8],
        (registry, token): (&Registry, Token),
    ) -> bool {
        let Some(progress) = &mut self.progress else {
            return false;
        };
        let lines = &mut self.progress_lines;
        let mut changed = false;
        let end = drain_budget(progress, scratch, (registry, token), |chunk| {
            changed |= lines.feed(chunk);
        });
        if !matches!(end, Ok(ReadEnd::Open)) {
            changed |= lines.finish();
            self.progress = None;
        }
        changed
    }

    /// Ends the stderr log's share of one job (a warm worker serves many).
    pub fn finish_stderr_log(&mut self, name: &str) {
        self.stderr_log.finish(name, self.pid);
    }

    /// Closes every pipe.
    pub fn close_pipes(&mut self) {
        self.close_stdin();
        self.stdout = None;
        self.stderr = None;
        self.progress = None;
    }

    /// Closes stdout and stderr: after a grace period, a pipe held open by
    /// a process that left the group is given up.
    pub fn close_output(&mut self) {
        self.stdout = None;
        self.stderr = None;
    }

    /// Stdout and stderr have both reached end of file (or were closed).
    pub fn output_closed(&self) -> bool {
        self.stdout.is_none() && self.stderr.is_none()
    }

    /// True if it has exited, checked now rather than at the next SIGCHLD
    /// (it is left unreaped).
    pub fn has_exited(&self) -> bool {
        self.exit.is_none() && self.pid.is_some_and(has_exited)
    }
}

/// Makes this process the reaper of its orphaned descendants: what a module
/// leaves running after its job (with `setsid`, say) is reparented here
/// rather than to init, and its exit is reaped by the loop.
pub fn become_subreaper() -> io::Result<()> {
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
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
fn has_exited(pid: u32) -> bool {
    // SAFETY: as in next_exited.
    unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        let flags = libc::WEXITED | libc::WNOHANG | libc::WNOWAIT;
        libc::waitid(libc::P_PID, pid as libc::id_t, &mut info, flags) == 0
            && info.si_pid() as u32 == pid
    }
}

/// Kills what is left of an exited child's process group (the leader is
/// still a zombie, so the group id is still its own), then reaps it.
pub fn kill_group_and_reap(pid: u32) -> Option<Exit> {
    signal_group(pid, libc::SIGKILL);
    reap(pid)
}

/// Reaps an exited child, returning its raw wait status and resource use.
fn reap(pid: u32) -> Option<Exit> {
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
