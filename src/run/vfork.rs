//! The vfork child: `clone(CLONE_VM | CLONE_VFORK)` with a plan prepared
//! by the spawn thread, so the child only makes system calls before exec.

use std::io;
use std::os::fd::RawFd;
use std::ptr;

/// Signals a module starts with at their default disposition (it inherits
/// the rest, as from any other parent).
const RESET_SIGNALS: [libc::c_int; 6] = [
    libc::SIGXFSZ,
    libc::SIGPIPE,
    libc::SIGCHLD,
    libc::SIGHUP,
    libc::SIGINT,
    libc::SIGTERM,
];

/// Everything the vfork child needs, prepared by the parent: the child may
/// only make system calls (it shares the parent's memory and must not
/// allocate), and reports an exec failure in `error`.
#[repr(C)]
pub(super) struct ChildPlan {
    pub(super) program: *const libc::c_char,
    pub(super) argv: *const *mut libc::c_char,
    pub(super) envp: *const *mut libc::c_char,
    /// Its stdin, stdout and stderr, and the write end of its progress
    /// pipe (put on [`PROGRESS_FD`]; -1 for none).
    pub(super) fds: [RawFd; 4],
    /// Resource limits to set: (resource, value) pairs.
    pub(super) limits: *const (libc::__rlimit_resource_t, libc::rlim_t),
    pub(super) limit_count: usize,
    /// Switch to uid/gid before exec (the daemon runs as root).
    pub(super) drop_to: bool,
    pub(super) uid: u32,
    pub(super) gid: u32,
    /// The working folder to enter, or null.
    pub(super) workdir: *const libc::c_char,
    /// Not a module: become `uid` and kill every process of it, then exit.
    pub(super) kill_uid: bool,
    /// Where the kernel writes the child's pid before it runs.
    pub(super) pid_slot: *mut libc::pid_t,
    pub(super) error: libc::c_int,
}

/// Where a module finds its progress pipe (`BGJOB_PROGRESS_FD`).
pub(super) const PROGRESS_FD: RawFd = 3;

/// The stack of the vfork child: it only runs `child_main`.
pub(super) const CHILD_STACK: usize = 64 * 1024;

/// The vfork child's stack, mapped apart from the heap: only the pages
/// the child touches (a few KiB at its top) are ever resident, where a
/// zeroed allocation on the heap held all 64 KiB for each spawn thread.
pub(super) struct ChildStack {
    base: *mut u128,
}

impl ChildStack {
    /// A new mapping, or None where the kernel refuses one.
    pub(super) fn map() -> Option<ChildStack> {
        // SAFETY: a new private anonymous mapping, owned by the value
        // returned and unmapped when it is dropped.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                CHILD_STACK,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
                -1,
                0,
            )
        };
        (base != libc::MAP_FAILED).then(|| ChildStack { base: base.cast() })
    }

    pub(super) fn as_mut_slice(&mut self) -> &mut [u128] {
        // SAFETY: the mapping is CHILD_STACK bytes, page-aligned, filled
        // with zeros by the kernel, and borrowed mutably from its owner.
        unsafe { std::slice::from_raw_parts_mut(self.base, CHILD_STACK / 16) }
    }
}

impl Drop for ChildStack {
    fn drop(&mut self) {
        // SAFETY: unmaps the mapping this value owns, once.
        unsafe { libc::munmap(self.base.cast(), CHILD_STACK) };
    }
}

/// `clone(CLONE_VM | CLONE_VFORK)`: the child borrows our memory and a
/// stack of its own, sets itself up with a dozen system calls and execs;
/// this thread resumes once it has. glibc's `posix_spawn` works the same
/// way but resets all 64 signal dispositions one by one first, which
/// the daemon would wait for on every request.
pub(super) fn vfork_exec(
    stack: &mut [u128],
    plan: &mut ChildPlan,
) -> (Option<u32>, Option<io::Error>) {
    let top = stack.as_mut_ptr_range().end as *mut libc::c_void;
    // SAFETY: all signals are blocked on this thread, so no handler of
    // ours runs on the child's side of the shared memory; the child
    // only calls async-signal-safe functions on data that stays alive
    // and untouched until it has exec'd or exited (CLONE_VFORK suspends
    // us until then); the stack is ours and 16-byte aligned.
    unsafe {
        let pid = libc::clone(
            child_main,
            top,
            libc::CLONE_VM | libc::CLONE_VFORK | libc::CLONE_PARENT_SETTID | libc::SIGCHLD,
            (plan as *mut ChildPlan).cast(),
            plan.pid_slot,
        );
        let clone_error = io::Error::last_os_error();
        if pid < 0 {
            return (None, Some(clone_error));
        }
        // It never became the module if it reported an error; it has
        // exited, and the loop reaps it like any other child.
        let error = (plan.error != 0).then(|| io::Error::from_raw_os_error(plan.error));
        (Some(pid as u32), error)
    }
}

/// The vfork child: resets the signals the daemon handles or ignores, leads
/// a new process group, sets its limits, drops to its user, puts the pipes
/// on 0, 1 and 2 (and its progress pipe on 3), closes every other descriptor (whatever the daemon
/// inherited), enters its working folder, forbids gaining privileges
/// (setuid binaries run as their caller), unblocks signals and execs. On
/// failure it leaves errno in the plan and exits.
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
        for i in 0..plan.limit_count {
            let (resource, value) = *plan.limits.add(i);
            let limit = libc::rlimit {
                rlim_cur: value,
                rlim_max: value,
            };
            if libc::setrlimit(resource, &limit) != 0 {
                plan.error = *libc::__errno_location();
                libc::_exit(127);
            }
        }
        // After the limits, which only root may raise. Raw system calls:
        // glibc's setuid() would signal every thread of the process whose
        // memory this child borrows.
        if plan.drop_to
            && (libc::syscall(libc::SYS_setgroups, 0usize, ptr::null::<libc::gid_t>()) != 0
                || libc::syscall(libc::SYS_setresgid, plan.gid, plan.gid, plan.gid) != 0
                || libc::syscall(libc::SYS_setresuid, plan.uid, plan.uid, plan.uid) != 0)
        {
            plan.error = *libc::__errno_location();
            libc::_exit(127);
        }
        if plan.kill_uid {
            kill_every_process_of_this_user();
        }
        // After the user switch, which clears it: the module dies with the
        // spawn thread, so a daemon killed with SIGKILL leaves no module
        // running on without its time limit (and running twice once the
        // restarted daemon runs its job again).
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
        // In this order: a source below 3 is always its own target (0 to 2
        // are open in the daemon), and one that is 3 was moved before 3
        // is replaced.
        for (target, &fd) in plan.fds.iter().enumerate() {
            let target = target as RawFd;
            if fd < 0 {
                continue;
            }
            if fd == target {
                libc::fcntl(fd, libc::F_SETFD, 0);
            } else if libc::dup2(fd, target) < 0 {
                plan.error = *libc::__errno_location();
                libc::_exit(127);
            }
        }
        close_from(if plan.fds[3] < 0 { 3 } else { 4 });
        if !plan.workdir.is_null() && libc::chdir(plan.workdir) != 0 {
            plan.error = *libc::__errno_location();
            libc::_exit(127);
        }
        libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::pthread_sigmask(libc::SIG_SETMASK, &empty, ptr::null_mut());
        libc::execve(plan.program, plan.argv.cast(), plan.envp.cast());
        plan.error = *libc::__errno_location();
        libc::_exit(127)
    }
}

/// Closes every descriptor from `first` on: `close_range` where the kernel
/// has it (5.9 and later), else one by one up to the open-files limit.
///
/// # Safety
/// Only for the vfork child, after its own descriptors are in place.
unsafe fn close_from(first: libc::c_uint) {
    if libc::syscall(libc::SYS_close_range, first, libc::c_uint::MAX, 0) == 0 {
        return;
    }
    let mut limit: libc::rlimit = std::mem::zeroed();
    let top = if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
        limit.rlim_cur.min(1 << 20) as libc::c_int
    } else {
        1024
    };
    for fd in first as libc::c_int..top {
        libc::close(fd);
    }
}

/// Sends SIGKILL to every process the caller may signal (on Linux not the
/// caller itself), then exits: run as a module uid, that is every process a
/// job left behind, whatever `setsid` or double forks it did. `kill(-1)`
/// answers success whenever any other process exists, signalled or not, so
/// it cannot say when none is left: a few passes catch a child forked while
/// the first went by (a process with SIGKILL pending cannot fork any more).
///
/// # Safety
/// Only for the vfork child, after it became the uid to clear.
unsafe fn kill_every_process_of_this_user() -> ! {
    for _ in 0..4 {
        libc::kill(-1, libc::SIGKILL);
    }
    libc::_exit(0)
}
