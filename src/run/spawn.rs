//! Starting a process the fast way: vfork and exec with three pipes, a new
//! process group and a prepared environment, on a thread of its own.
//!
//! A vfork parent is suspended until its child has exec'd, about half a
//! millisecond for a shell script on a busy machine: on the loop thread that
//! was the daemon's ceiling (the loop waited, and a core sat idle). So the
//! loop creates the pipes, keeps its ends, and hands the order to the spawn
//! thread, which does nothing else; the pid comes back through the waker.
//!
//! std's `Command` takes glibc's `posix_spawn` path, but on every spawn it
//! rebuilds the environment as a map of owned strings and queries the
//! open-file limit six times, and `posix_spawn` resets all 64 signal
//! dispositions in the child while the parent waits. Here the daemon's
//! environment is turned into C strings once, a spawn only adds the job's
//! `BGJOB_*` variables, and the child makes a dozen system calls before
//! exec. The spawn thread blocks every signal, so no handler ever runs on
//! its side of the memory the child borrows.

use std::ffi::{CString, OsStr};
use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::ptr;
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;

use mio::unix::pipe::{Receiver, Sender};
use mio::Waker;

use crate::run::vfork;

/// The environment variables a module gets from the daemon's own (`LC_*`:
/// every variable starting so), besides its `BGJOB_*` ones and the names
/// listed in the `module_env` setting.
pub const MODULE_ENV: [&str; 11] = [
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "SHELL",
    "LANG",
    "LANGUAGE",
    "LC_*",
    "TZ",
    "TMPDIR",
    "NODE_PATH",
];

/// Resource limits for module processes (the `module_limits` setting), and
/// the user and group they run as.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ModuleLimits {
    /// (uid, gid) to switch to before exec; `None`: stay as the daemon.
    pub identity: Option<(u32, u32)>,
    pub cpu_secs: Option<u64>,
    pub address_space_bytes: Option<u64>,
    pub open_files: Option<u64>,
    /// Processes of the module's user (root is not bound by this one).
    pub processes: Option<u64>,
}

impl ModuleLimits {
    fn as_rlimits(&self) -> Vec<(libc::__rlimit_resource_t, libc::rlim_t)> {
        [
            (libc::RLIMIT_CPU, self.cpu_secs),
            (libc::RLIMIT_AS, self.address_space_bytes),
            (libc::RLIMIT_NOFILE, self.open_files),
            (libc::RLIMIT_NPROC, self.processes),
        ]
        .into_iter()
        .filter_map(|(resource, value)| value.map(|v| (resource, v as libc::rlim_t)))
        .collect()
    }
}

/// Our ends of a new child's pipes (non-blocking).
pub struct Pipes {
    pub stdin: Sender,
    pub stdout: Receiver,
    pub stderr: Receiver,
}

/// What became of a spawn order.
#[derive(Debug)]
pub struct SpawnResult {
    /// The serial number [`Spawner::start`] returned.
    pub serial: u64,
    /// The process created, if one was: it is the loop's to reap, even
    /// when its exec failed (this thread never reaps, so that the loop
    /// alone decides what an exit belongs to).
    pub pid: Option<u32>,
    /// Why the program is not running, if it is not.
    pub error: Option<io::Error>,
}

struct Order {
    serial: u64,
    program: CString,
    args: Vec<CString>,
    extra_env: Vec<CString>,
    /// The child's ends: stdin, stdout, stderr.
    fds: [OwnedFd; 3],
    limits: Vec<(libc::__rlimit_resource_t, libc::rlim_t)>,
    identity: Option<(u32, u32)>,
}

/// The loop's side of the spawn thread.
pub struct Spawner {
    tx: Option<mpsc::Sender<Order>>,
    results: Arc<Mutex<Vec<SpawnResult>>>,
    thread: Option<JoinHandle<()>>,
    next_serial: u64,
}

impl Spawner {
    /// Starts the spawn thread. Modules get the variables of the daemon's
    /// environment named in [`MODULE_ENV`] or `extra_names` (besides the
    /// `BGJOB_*` ones each job sets); `waker` is woken when results are ready.
    pub fn start_thread(waker: Arc<Waker>, extra_names: &[String]) -> io::Result<Spawner> {
        let passes = |name: &[u8]| {
            MODULE_ENV
                .iter()
                .any(|allowed| match allowed.strip_suffix('*') {
                    Some(prefix) => name.starts_with(prefix.as_bytes()),
                    None => name == allowed.as_bytes(),
                })
                || extra_names.iter().any(|n| n.as_bytes() == name)
        };
        let mut base_env: Vec<CString> = std::env::vars_os()
            .filter(|(k, _)| passes(k.as_bytes()))
            .filter_map(|(k, v)| {
                let mut kv = k.as_bytes().to_vec();
                kv.push(b'=');
                kv.extend_from_slice(v.as_bytes());
                CString::new(kv).ok()
            })
            .collect();
        if !base_env.iter().any(|v| v.as_bytes().starts_with(b"PATH=")) {
            base_env.push(c"PATH=/usr/local/bin:/usr/bin:/bin".to_owned());
        }
        let (tx, rx) = mpsc::channel::<Order>();
        let results = Arc::new(Mutex::new(Vec::new()));
        let thread_results = results.clone();
        let thread = std::thread::Builder::new()
            .name("spawn".into())
            .spawn(move || {
                // SAFETY: blocks every signal for this thread only.
                unsafe {
                    let mut all: libc::sigset_t = std::mem::zeroed();
                    libc::sigfillset(&mut all);
                    libc::pthread_sigmask(libc::SIG_SETMASK, &all, ptr::null_mut());
                }
                let mut stack = vec![0u128; vfork::CHILD_STACK / 16];
                for order in rx {
                    let (pid, error) = spawn_now(&mut stack, &base_env, &order);
                    drop(order.fds);
                    if let Ok(mut results) = thread_results.lock() {
                        results.push(SpawnResult {
                            serial: order.serial,
                            pid,
                            error,
                        });
                    }
                    let _ = waker.wake();
                }
            })?;
        Ok(Spawner {
            tx: Some(tx),
            results,
            thread: Some(thread),
            next_serial: 1,
        })
    }

    /// Orders `program` started with `args` (after the program name) and
    /// the extra `NAME=value` variables, as the leader of a new process
    /// group. Returns the order's serial number and our ends of its pipes;
    /// the pid comes later from [`Spawner::take_results`].
    pub fn start(
        &mut self,
        program: &Path,
        args: &[&OsStr],
        extra_env: &[String],
        limits: &ModuleLimits,
    ) -> io::Result<(u64, Pipes)> {
        let c = |bytes: &[u8]| {
            CString::new(bytes).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
        };
        let program = c(program.as_os_str().as_bytes())?;
        let args = args
            .iter()
            .map(|a| c(a.as_bytes()))
            .collect::<Result<_, _>>()?;
        let extra_env = extra_env
            .iter()
            .map(|v| c(v.as_bytes()))
            .collect::<Result<_, _>>()?;
        let (stdin_r, stdin_w) = pipe()?;
        let (stdout_r, stdout_w) = pipe()?;
        let (stderr_r, stderr_w) = pipe()?;
        let serial = self.next_serial;
        self.next_serial += 1;
        let order = Order {
            serial,
            program,
            args,
            extra_env,
            fds: [stdin_r, stdout_w, stderr_w],
            limits: limits.as_rlimits(),
            identity: limits.identity,
        };
        let tx = self
            .tx
            .as_ref()
            .ok_or_else(|| io::Error::other("spawn thread stopped"))?;
        tx.send(order)
            .map_err(|_| io::Error::other("spawn thread stopped"))?;
        let pipes = Pipes {
            stdin: nonblocking(Sender::from(stdin_w))?,
            stdout: nonblocking(Receiver::from(stdout_r))?,
            stderr: nonblocking(Receiver::from(stderr_r))?,
        };
        Ok((serial, pipes))
    }

    /// Results of orders since the last call.
    pub fn take_results(&self) -> Vec<SpawnResult> {
        self.results
            .lock()
            .map(|mut r| std::mem::take(&mut *r))
            .unwrap_or_default()
    }
}

impl Drop for Spawner {
    fn drop(&mut self) {
        self.tx = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Starts one order (on the spawn thread).
fn spawn_now(
    stack: &mut [u128],
    base_env: &[CString],
    order: &Order,
) -> (Option<u32>, Option<io::Error>) {
    let mut argv: Vec<*mut libc::c_char> = Vec::with_capacity(order.args.len() + 2);
    argv.push(order.program.as_ptr() as *mut _);
    argv.extend(order.args.iter().map(|a| a.as_ptr() as *mut _));
    argv.push(ptr::null_mut());
    let mut envp: Vec<*mut libc::c_char> =
        Vec::with_capacity(base_env.len() + order.extra_env.len() + 1);
    envp.extend(
        base_env
            .iter()
            .chain(&order.extra_env)
            .map(|v| v.as_ptr() as *mut _),
    );
    envp.push(ptr::null_mut());
    let mut plan = vfork::ChildPlan {
        program: order.program.as_ptr(),
        argv: argv.as_ptr(),
        envp: envp.as_ptr(),
        fds: [fd(&order.fds[0]), fd(&order.fds[1]), fd(&order.fds[2])],
        limits: order.limits.as_ptr(),
        limit_count: order.limits.len(),
        drop_to: order.identity.is_some(),
        uid: order.identity.map_or(0, |(uid, _)| uid),
        gid: order.identity.map_or(0, |(_, gid)| gid),
        error: 0,
    };
    vfork::vfork_exec(stack, &mut plan)
}

fn fd(owned: &OwnedFd) -> RawFd {
    use std::os::fd::AsRawFd;
    owned.as_raw_fd()
}

/// A close-on-exec pipe: (read end, write end). The child's ends lose the
/// flag when the vfork child duplicates them onto 0, 1 and 2.
fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills the two-element array on success.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both descriptors were just created and are owned by no one else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

trait Nonblocking: Sized {
    fn set(&self) -> io::Result<()>;
}

impl Nonblocking for Sender {
    fn set(&self) -> io::Result<()> {
        self.set_nonblocking(true)
    }
}

impl Nonblocking for Receiver {
    fn set(&self) -> io::Result<()> {
        self.set_nonblocking(true)
    }
}

fn nonblocking<P: Nonblocking>(pipe: P) -> io::Result<P> {
    pipe.set()?;
    Ok(pipe)
}

/// Makes sure descriptors 0, 1 and 2 are open (on `/dev/null` if not), so
/// that no pipe or socket the daemon opens later lands on them.
pub fn ensure_standard_fds() {
    for fd in 0..3 {
        // SAFETY: fcntl probes the descriptor; open returns a new one, kept
        // open for the life of the process on purpose.
        unsafe {
            if libc::fcntl(fd, libc::F_GETFD) == -1 {
                libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    fn spawner() -> (mio::Poll, Spawner) {
        let poll = mio::Poll::new().unwrap();
        let waker = Arc::new(Waker::new(poll.registry(), mio::Token(0)).unwrap());
        (poll, Spawner::start_thread(waker, &[]).unwrap())
    }

    fn result(poll: &mut mio::Poll, spawner: &Spawner) -> SpawnResult {
        let mut events = mio::Events::with_capacity(4);
        loop {
            if let Some(r) = spawner.take_results().pop() {
                return r;
            }
            poll.poll(&mut events, Some(std::time::Duration::from_secs(5)))
                .unwrap();
        }
    }

    #[test]
    fn a_process_gets_its_pipes_group_and_environment() {
        let (mut poll, mut spawner) = spawner();
        let script = "read line; echo \"$line|$BGJOB_MODULE|$(cut -d' ' -f5 /proc/$$/stat)|$$\"; echo err >&2";
        let args = [OsStr::new("-c"), OsStr::new(script)];
        let (serial, pipes) = spawner
            .start(
                Path::new("/bin/sh"),
                &args,
                &["BGJOB_MODULE=m".to_string()],
                &ModuleLimits::default(),
            )
            .unwrap();
        let done = result(&mut poll, &spawner);
        assert_eq!(done.serial, serial);
        let pid = done.pid.unwrap();
        pipes.stdin.set_nonblocking(false).unwrap();
        pipes.stdout.set_nonblocking(false).unwrap();
        pipes.stderr.set_nonblocking(false).unwrap();
        (&pipes.stdin).write_all(b"hello\n").unwrap();
        drop(pipes.stdin);
        let mut out = String::new();
        (&pipes.stdout).read_to_string(&mut out).unwrap();
        let mut err = String::new();
        (&pipes.stderr).read_to_string(&mut err).unwrap();
        assert_eq!(out, format!("hello|m|{0}|{0}\n", pid), "own process group");
        assert_eq!(err, "err\n");
        let mut status = 0;
        // SAFETY: waiting for our own child.
        unsafe { libc::waitpid(pid as i32, &mut status, 0) };
        assert_eq!(status, 0);
    }

    #[test]
    fn a_missing_program_is_an_error() {
        let (mut poll, mut spawner) = spawner();
        let (_, pipes) = spawner
            .start(
                Path::new("/nonexistent/x"),
                &[],
                &[],
                &ModuleLimits::default(),
            )
            .unwrap();
        let done = result(&mut poll, &spawner);
        assert_eq!(done.error.map(|e| e.kind()), Some(io::ErrorKind::NotFound));
        // The failed child is left for the caller to reap, as the loop does.
        let pid = done.pid.expect("a child was created");
        let mut status = 0;
        // SAFETY: waiting for our own child.
        assert_eq!(
            unsafe { libc::waitpid(pid as i32, &mut status, 0) },
            pid as i32
        );
        let mut rest = Vec::new();
        pipes.stdout.set_nonblocking(false).unwrap();
        assert_eq!(
            (&pipes.stdout).read_to_end(&mut rest).unwrap(),
            0,
            "the child's ends are closed"
        );
    }
}
