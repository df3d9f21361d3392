//! Starting a process the fast way: vfork and exec with three pipes, a new
//! process group and a prepared environment.
//!
//! std's `Command` takes glibc's `posix_spawn` path, but on every spawn it
//! rebuilds the environment as a map of owned strings and queries the
//! open-file limit six times, and `posix_spawn` resets all 64 signal
//! dispositions in the child while the parent waits. Here the daemon's
//! environment is turned into C strings once, a spawn only adds the job's
//! `BGJOB_*` variables, and the child makes a dozen system calls before
//! exec. The daemon is single-threaded: while the child borrows its memory
//! it is suspended, so nothing else can touch it.

use std::ffi::{CString, OsStr};
use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::ptr;

use mio::unix::pipe::{Receiver, Sender};

/// Signals a module starts with at their default disposition (it inherits
/// the rest, as from any other parent).
const RESET_SIGNALS: [libc::c_int; 5] = [
    libc::SIGPIPE,
    libc::SIGCHLD,
    libc::SIGHUP,
    libc::SIGINT,
    libc::SIGTERM,
];

/// A started process and our ends of its pipes (non-blocking).
pub struct Spawned {
    pub pid: u32,
    pub stdin: Sender,
    pub stdout: Receiver,
    pub stderr: Receiver,
}

/// The environment every module gets, prepared once, and the stack the
/// short-lived vfork child runs on.
pub struct Spawner {
    base_env: Vec<CString>,
    stack: Vec<u128>,
}

/// Everything the vfork child needs, prepared by the parent: the child may
/// only make system calls (it shares the parent's memory and must not
/// allocate), and reports an exec failure in `error`.
#[repr(C)]
struct ChildPlan {
    program: *const libc::c_char,
    argv: *const *mut libc::c_char,
    envp: *const *mut libc::c_char,
    fds: [RawFd; 3],
    error: libc::c_int,
}

/// The stack of the vfork child: it only runs `child_main`.
const CHILD_STACK: usize = 64 * 1024;

impl Spawner {
    /// Takes the daemon's environment, less the variables each job sets.
    pub fn from_current_env() -> Spawner {
        let base_env = std::env::vars_os()
            .filter(|(k, _)| !k.as_bytes().starts_with(b"BGJOB_"))
            .filter_map(|(k, v)| {
                let mut kv = k.as_bytes().to_vec();
                kv.push(b'=');
                kv.extend_from_slice(v.as_bytes());
                CString::new(kv).ok()
            })
            .collect();
        Spawner {
            base_env,
            stack: vec![0; CHILD_STACK / 16],
        }
    }

    /// `clone(CLONE_VM | CLONE_VFORK)`: the child borrows our memory and a
    /// stack of its own, sets itself up with a dozen system calls and
    /// execs; we resume once it has. glibc's `posix_spawn` works the same
    /// way but resets all 64 signal dispositions one by one first, which
    /// the daemon would wait for on every request.
    fn vfork_exec(&mut self, plan: &mut ChildPlan) -> io::Result<u32> {
        let top = self.stack.as_mut_ptr_range().end as *mut libc::c_void;
        // SAFETY: all signals are blocked around clone, so no handler of
        // ours runs on the child's side of the shared memory; the child
        // only calls async-signal-safe functions on data that stays alive
        // and untouched until it has exec'd or exited (CLONE_VFORK suspends
        // us until then); the stack is ours and 16-byte aligned.
        unsafe {
            let mut all: libc::sigset_t = std::mem::zeroed();
            let mut old: libc::sigset_t = std::mem::zeroed();
            libc::sigfillset(&mut all);
            libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
            let pid = libc::clone(
                child_main,
                top,
                libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
                (plan as *mut ChildPlan).cast(),
            );
            let clone_error = io::Error::last_os_error();
            libc::pthread_sigmask(libc::SIG_SETMASK, &old, ptr::null_mut());
            if pid < 0 {
                return Err(clone_error);
            }
            if plan.error != 0 {
                // It never became the module: reap it here, it is no job's.
                libc::waitpid(pid, ptr::null_mut(), 0);
                return Err(io::Error::from_raw_os_error(plan.error));
            }
            Ok(pid as u32)
        }
    }

    /// Starts `program` with `args` (after the program name itself) and the
    /// extra `NAME=value` variables, as the leader of a new process group,
    /// with signal handling reset to the defaults.
    pub fn spawn(
        &mut self,
        program: &Path,
        args: &[&OsStr],
        extra_env: &[String],
    ) -> io::Result<Spawned> {
        let c = |bytes: &[u8]| {
            CString::new(bytes).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
        };
        let program = c(program.as_os_str().as_bytes())?;
        let args: Vec<CString> = args
            .iter()
            .map(|a| c(a.as_bytes()))
            .collect::<Result<_, _>>()?;
        let extra: Vec<CString> = extra_env
            .iter()
            .map(|v| c(v.as_bytes()))
            .collect::<Result<_, _>>()?;
        let mut argv: Vec<*mut libc::c_char> = Vec::with_capacity(args.len() + 2);
        argv.push(program.as_ptr() as *mut _);
        argv.extend(args.iter().map(|a| a.as_ptr() as *mut _));
        argv.push(ptr::null_mut());
        let mut envp: Vec<*mut libc::c_char> =
            Vec::with_capacity(self.base_env.len() + extra.len() + 1);
        envp.extend(
            self.base_env
                .iter()
                .chain(&extra)
                .map(|v| v.as_ptr() as *mut _),
        );
        envp.push(ptr::null_mut());

        let (stdin_r, stdin_w) = pipe()?;
        let (stdout_r, stdout_w) = pipe()?;
        let (stderr_r, stderr_w) = pipe()?;
        let mut plan = ChildPlan {
            program: program.as_ptr(),
            argv: argv.as_ptr(),
            envp: envp.as_ptr(),
            fds: [fd(&stdin_r), fd(&stdout_w), fd(&stderr_w)],
            error: 0,
        };
        let pid = self.vfork_exec(&mut plan)?;
        drop((stdin_r, stdout_w, stderr_w));
        Ok(Spawned {
            pid,
            stdin: nonblocking(Sender::from(stdin_w))?,
            stdout: nonblocking(Receiver::from(stdout_r))?,
            stderr: nonblocking(Receiver::from(stderr_r))?,
        })
    }
}

/// The vfork child: resets the signals the daemon handles or ignores, leads
/// a new process group, puts the pipes on 0, 1 and 2, unblocks signals and
/// execs. On failure it leaves errno in the plan and exits.
extern "C" fn child_main(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: the parent passes a live ChildPlan and waits for us; only
    // system calls are made here.
    unsafe {
        let plan = &mut *(arg as *mut ChildPlan);
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = libc::SIG_DFL;
        for signal in RESET_SIGNALS {
            libc::sigaction(signal, &action, ptr::null_mut());
        }
        libc::setpgid(0, 0);
        for (target, &fd) in plan.fds.iter().enumerate() {
            let target = target as RawFd;
            if fd == target {
                libc::fcntl(fd, libc::F_SETFD, 0);
            } else if libc::dup2(fd, target) < 0 {
                plan.error = *libc::__errno_location();
                libc::_exit(127);
            }
        }
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::pthread_sigmask(libc::SIG_SETMASK, &empty, ptr::null_mut());
        libc::execve(plan.program, plan.argv.cast(), plan.envp.cast());
        plan.error = *libc::__errno_location();
        libc::_exit(127)
    }
}

fn fd(owned: &OwnedFd) -> RawFd {
    use std::os::fd::AsRawFd;
    owned.as_raw_fd()
}

/// A close-on-exec pipe: (read end, write end). The child's ends lose the
/// flag when `posix_spawn` duplicates them onto 0, 1 and 2.
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

    #[test]
    fn a_process_gets_its_pipes_group_and_environment() {
        std::env::set_var("BGJOB_MODULE", "from the daemon's own environment");
        let mut spawner = Spawner::from_current_env();
        let script = "read line; echo \"$line|$BGJOB_MODULE|$(cut -d' ' -f5 /proc/$$/stat)|$$\"; echo err >&2";
        let args = [OsStr::new("-c"), OsStr::new(script)];
        let p = spawner
            .spawn(Path::new("/bin/sh"), &args, &["BGJOB_MODULE=m".to_string()])
            .unwrap();
        p.stdin.set_nonblocking(false).unwrap();
        p.stdout.set_nonblocking(false).unwrap();
        p.stderr.set_nonblocking(false).unwrap();
        (&p.stdin).write_all(b"hello\n").unwrap();
        drop(p.stdin);
        let mut out = String::new();
        (&p.stdout).read_to_string(&mut out).unwrap();
        let mut err = String::new();
        (&p.stderr).read_to_string(&mut err).unwrap();
        assert_eq!(
            out,
            format!("hello|m|{0}|{0}\n", p.pid),
            "own process group"
        );
        assert_eq!(err, "err\n");
        let mut status = 0;
        // SAFETY: waiting for our own child.
        unsafe { libc::waitpid(p.pid as i32, &mut status, 0) };
        assert_eq!(status, 0);
    }

    #[test]
    fn a_missing_program_is_an_error() {
        let err = Spawner::from_current_env()
            .spawn(Path::new("/nonexistent/x"), &[], &[])
            .err();
        assert_eq!(err.map(|e| e.kind()), Some(io::ErrorKind::NotFound));
    }
}
