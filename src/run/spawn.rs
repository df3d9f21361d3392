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

use std::collections::HashMap;
use std::ffi::{CString, OsStr};
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::ptr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;

use mio::unix::pipe::{Receiver, Sender};
use mio::Waker;

use crate::run::fds::{fd, nonblocking, pipe};
use crate::run::limits::{ModuleLimits, MODULE_ENV};
use crate::run::vfork;

/// Our ends of a new child's pipes (non-blocking).
pub struct Pipes {
    pub stdin: Sender,
    /// None when the child's stdout is a descriptor given to it.
    pub stdout: Option<Receiver>,
    pub stderr: Receiver,
    /// The read end of its progress pipe, if it was given one.
    pub progress: Option<Receiver>,
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
    /// The child's ends: stdin, stdout, stderr; none for a uid's clearing.
    fds: Option<[OwnedFd; 3]>,
    /// The write end of its progress pipe, if it gets one.
    progress: Option<OwnedFd>,
    limits: Vec<(libc::__rlimit_resource_t, libc::rlim_t)>,
    identity: Option<(u32, u32)>,
    /// Where the kernel writes the child's pid as it is created.
    pid_slot: Arc<AtomicU32>,
}

/// The spawn thread's reports, and whether the loop waits for one.
#[derive(Default)]
struct Reports {
    list: Vec<SpawnResult>,
    /// The loop reaped a process whose report it has not read: the next
    /// report wakes it. Otherwise a report waits for the loop's next turn,
    /// which every started process brings anyway (its output, its exit):
    /// waking the loop for each spawn was one more hand-off per request.
    wanted: bool,
}

/// The loop's side of the spawn thread.
pub struct Spawner {
    tx: Option<mpsc::Sender<Order>>,
    results: Arc<Mutex<Reports>>,
    /// To wake the loop itself when it asks for reports already there.
    waker: Arc<Waker>,
    threads: Vec<JoinHandle<()>>,
    next_serial: u64,
    /// The pid of each order not reported yet, as soon as the kernel made
    /// it: an exit reaped before the report is matched to its order here.
    pid_slots: HashMap<u64, Arc<AtomicU32>>,
}

impl Spawner {
    /// Starts the spawn thread. Modules get the variables of the daemon's
    /// environment named in [`MODULE_ENV`] or `extra_names` (besides the
    /// `BGJOB_*` ones each job sets); `waker` is woken when results are
    /// ready. Processes start in `workdir`, if given.
    pub fn start_thread(
        waker: Arc<Waker>,
        extra_names: &[String],
        workdir: Option<&Path>,
    ) -> io::Result<Spawner> {
        let workdir = workdir
            .map(|dir| CString::new(dir.as_os_str().as_bytes()))
            .transpose()
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
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
        let rx = Arc::new(Mutex::new(rx));
        let (base_env, workdir) = (Arc::new(base_env), Arc::new(workdir));
        let results = Arc::new(Mutex::new(Reports::default()));
        let mut threads = Vec::new();
        for _ in 0..spawn_threads() {
            let (rx, results, waker) = (rx.clone(), results.clone(), waker.clone());
            let (base_env, workdir) = (base_env.clone(), workdir.clone());
            let thread = std::thread::Builder::new()
                .name("spawn".into())
                .spawn(move || {
                    // SAFETY: blocks every signal for this thread only.
                    unsafe {
                        let mut all: libc::sigset_t = std::mem::zeroed();
                        libc::sigfillset(&mut all);
                        libc::pthread_sigmask(libc::SIG_SETMASK, &all, ptr::null_mut());
                    }
                    let mut mapped = vfork::ChildStack::map();
                    let mut heap;
                    let stack = match &mut mapped {
                        Some(mapped) => mapped.as_mut_slice(),
                        None => {
                            heap = vec![0u128; vfork::CHILD_STACK / 16];
                            &mut heap[..]
                        }
                    };
                    // One thread waits for the next order while the
                    // other is suspended in a vfork.
                    while let Ok(order) = rx.lock().map_or(Err(mpsc::RecvError), |rx| rx.recv()) {
                        let workdir = workdir.as_ref().as_ref();
                        let (pid, error) = spawn_now(stack, &base_env, workdir, &order);
                        drop((order.fds, order.progress));
                        let wanted = results.lock().map_or(true, |mut reports| {
                            reports.list.push(SpawnResult {
                                serial: order.serial,
                                pid,
                                error,
                            });
                            std::mem::take(&mut reports.wanted)
                        });
                        if wanted {
                            let _ = waker.wake();
                        }
                    }
                })?;
            threads.push(thread);
        }
        Ok(Spawner {
            tx: Some(tx),
            results,
            waker,
            threads,
            next_serial: 1,
            pid_slots: HashMap::new(),
        })
    }

    /// Orders `program` started with `args` (after the program name) and
    /// the extra `NAME=value` variables, as the leader of a new process
    /// group. Returns the order's serial number and our ends of its pipes;
    /// the pid comes later from [`Spawner::take_results`]. With `stdout`,
    /// the child writes there (a client's socket) instead of to a pipe.
    /// With `progress`, it gets a fourth pipe for its progress lines, on the
    /// descriptor `BGJOB_PROGRESS_FD` names.
    pub fn start(
        &mut self,
        program: &Path,
        args: &[&OsStr],
        extra_env: &[String],
        limits: &ModuleLimits,
        (stdout, progress): (Option<OwnedFd>, bool),
    ) -> io::Result<(u64, Pipes)> {
        let c = |bytes: &[u8]| {
            CString::new(bytes).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
        };
        let program = c(program.as_os_str().as_bytes())?;
        let args = args
            .iter()
            .map(|a| c(a.as_bytes()))
            .collect::<Result<_, _>>()?;
        let mut extra_env: Vec<CString> = extra_env
            .iter()
            .map(|v| c(v.as_bytes()))
            .collect::<Result<_, _>>()?;
        let (progress_r, progress_w) = match progress {
            true => {
                let fd = vfork::PROGRESS_FD;
                extra_env.push(c(format!("BGJOB_PROGRESS_FD={fd}").as_bytes())?);
                pipe().map(|(r, w)| (Some(r), Some(w)))?
            }
            false => (None, None),
        };
        let (stdin_r, stdin_w) = pipe()?;
        let (stdout_r, stdout_w) = match stdout {
            Some(given) => (None, given),
            None => pipe().map(|(r, w)| (Some(r), w))?,
        };
        let (stderr_r, stderr_w) = pipe()?;
        let serial = self.order(Order {
            serial: 0,
            program,
            args,
            extra_env,
            fds: Some([stdin_r, stdout_w, stderr_w]),
            progress: progress_w,
            limits: limits.as_rlimits(),
            identity: limits.identity,
            pid_slot: Arc::default(),
        })?;
        let pipes = Pipes {
            stdin: nonblocking(Sender::from(stdin_w))?,
            stdout: stdout_r
                .map(|r| nonblocking(Receiver::from(r)))
                .transpose()?,
            stderr: nonblocking(Receiver::from(stderr_r))?,
            progress: progress_r
                .map(|r| nonblocking(Receiver::from(r)))
                .transpose()?,
        };
        Ok((serial, pipes))
    }

    /// Orders every process of `uid` killed: a short-lived child becomes
    /// that user and signals all it may. Returns the order's serial; the
    /// uid is clear once that child has exited.
    pub fn kill_uid(&mut self, uid: u32, gid: u32) -> io::Result<u64> {
        self.order(Order {
            serial: 0,
            program: CString::default(),
            args: Vec::new(),
            extra_env: Vec::new(),
            fds: None,
            progress: None,
            limits: Vec::new(),
            identity: Some((uid, gid)),
            pid_slot: Arc::default(),
        })
    }

    fn order(&mut self, mut order: Order) -> io::Result<u64> {
        let serial = self.next_serial;
        self.next_serial += 1;
        order.serial = serial;
        let slot = order.pid_slot.clone();
        let tx = self
            .tx
            .as_ref()
            .ok_or_else(|| io::Error::other("spawn thread stopped"))?;
        tx.send(order)
            .map_err(|_| io::Error::other("spawn thread stopped"))?;
        self.pid_slots.insert(serial, slot);
        Ok(serial)
    }

    /// The unreported order whose process has this pid, if any; the match
    /// is made once (the pid may be reused after it is reaped).
    pub fn claim_pid(&mut self, pid: u32) -> Option<u64> {
        let serial = self
            .pid_slots
            .iter()
            .find(|(_, slot)| slot.load(Ordering::Acquire) == pid)
            .map(|(&serial, _)| serial)?;
        if let Some(slot) = self.pid_slots.get(&serial) {
            slot.store(0, Ordering::Release);
        }
        Some(serial)
    }

    /// The loop waits for a report (it reaped a process before reading
    /// it): the loop is woken at once if reports are there, else by the
    /// next one.
    pub fn want_results(&self) {
        if let Ok(mut reports) = self.results.lock() {
            if reports.list.is_empty() {
                reports.wanted = true;
            } else {
                let _ = self.waker.wake();
            }
        }
    }

    /// Results of orders since the last call (the loop reads them every
    /// turn; the thread wakes it only when asked, see [`Reports`]).
    pub fn take_results(&mut self) -> Vec<SpawnResult> {
        let results = self
            .results
            .lock()
            .map(|mut r| std::mem::take(&mut r.list))
            .unwrap_or_default();
        for result in &results {
            self.pid_slots.remove(&result.serial);
        }
        results
    }
}

impl Drop for Spawner {
    fn drop(&mut self) {
        self.tx = None;
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// Spawn threads: two where two cores can exec at once. A vfork parent
/// waits for its child's exec (the loading of a shell, about half a
/// millisecond on a busy machine); with one thread every spawn waited for
/// the one before, and a second core sat idle while clients waited.
fn spawn_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(2))
}

/// Starts one order (on a spawn thread).
fn spawn_now(
    stack: &mut [u128],
    base_env: &[CString],
    workdir: Option<&CString>,
    order: &Order,
) -> (Option<u32>, Option<io::Error>) {
    let no_fd = -1;
    let progress = order.progress.as_ref().map_or(no_fd, fd);
    let fds = order
        .fds
        .as_ref()
        .map_or([no_fd; 4], |f| [fd(&f[0]), fd(&f[1]), fd(&f[2]), progress]);
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
        fds,
        limits: order.limits.as_ptr(),
        limit_count: order.limits.len(),
        drop_to: order.identity.is_some(),
        uid: order.identity.map_or(0, |(uid, _)| uid),
        gid: order.identity.map_or(0, |(_, gid)| gid),
        workdir: workdir.map_or(ptr::null(), |dir| dir.as_ptr()),
        kill_uid: order.fds.is_none(),
        pid_slot: order.pid_slot.as_ptr() as *mut libc::pid_t,
        error: 0,
    };
    vfork::vfork_exec(stack, &mut plan)
}

#[cfg(test)]
#[path = "spawn_tests.rs"]
mod tests;
