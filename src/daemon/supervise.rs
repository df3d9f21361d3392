//! Children: starting jobs, feeding their stdin, collecting stdout and
//! stderr, reaping, time limits, and routing the answer when a job is done.
//!
//! A job is done only when its process has been reaped *and* its stdout and
//! stderr have reached end of file: the two arrive in either order.
//!
//! Pipes are closed by dropping them, without a `deregister` first: closing
//! the only descriptor of a pipe end removes it from the epoll set (ours are
//! close-on-exec and never duplicated), and it saves a system call per pipe
//! on the hot path. Stdin is only watched once a write would block.

use std::time::Instant;

use libc::{SIGKILL, SIGTERM};
use mio::{Interest, Registry};

use crate::daemon::timers::Timer;
use crate::daemon::{pipe_token, Daemon, Stream};
use crate::io::{drain, OutBuf, ReadEnd};
use crate::journal::record::Record;
use crate::net::conn::Phase;
use crate::net::protocol::{render_answer, Refusal};
use crate::run::job::{Job, JobKey, JobState, Origin};
use crate::run::outcome::Outcome;
use crate::run::process::{self, Child, JobEnv, Phase as ChildPhase};
use crate::run::receipt::Receipt;
use crate::sanitize::loggable;

impl Daemon {
    /// Starts waiting jobs, oldest first, while running slots are free.
    pub(crate) fn start_waiting_jobs(&mut self) {
        if self.stopping.is_some() {
            return;
        }
        while let Some(key) = self.jobs.pop_waiting(self.settings.max_jobs) {
            let warm = self
                .jobs
                .get(key)
                .is_some_and(|job| self.runs_warm(&job.module));
            if warm {
                self.start_warm(key);
            } else {
                self.start_cold(key);
            }
        }
    }

    /// Starts a job in a process of its own.
    pub(crate) fn start_cold(&mut self, key: JobKey) {
        let Some(job) = self.jobs.get_mut(key) else {
            return;
        };
        job.attempts += 1;
        if let Some(data) = &job.data {
            job.input = OutBuf::new(data.clone());
        }
        let env = JobEnv {
            module: &job.module.name,
            transport: job.origin.transport(),
            remote: job.origin.peer().map(|p| p.to_string()),
            job_id: match job.origin {
                Origin::Queue { id } => Some(id),
                _ => None,
            },
            attempt: job.attempts,
        };
        let deadline = Instant::now() + self.settings.job_timeout;
        let node = self.node.as_deref();
        let limits = &self.settings.module_limits;
        let mut child =
            match process::spawn(&mut self.spawner, &job.module, &env, node, limits, deadline) {
                Ok(child) => child,
                Err(e) => {
                    let program = match job.module.kind {
                        crate::run::modules::Kind::Node => self.settings.node.display().to_string(),
                        crate::run::modules::Kind::Executable => {
                            job.module.path.display().to_string()
                        }
                    };
                    log::error!("module {} cannot start: {program}: {e}", job.module.name);
                    let outcome = Outcome::SpawnFailed(format!("{program}: {e}"));
                    return self.finish_job(key, Some((outcome, Vec::new())));
                }
            };
        if let Err(e) = register_pipes(self.poll.registry(), key, &mut child) {
            log::error!("module {}: cannot watch its pipes: {e}", job.module.name);
            child.kill();
            child.verdict = Some(Outcome::SpawnFailed(format!("cannot watch pipes: {e}")));
            child.stdin = None;
            child.stdout = None;
            child.stderr = None;
        }
        self.jobs.starting(key, child.serial);
        let job = job_entry(&mut self.jobs, key);
        job.state = JobState::Running(Box::new(child));
        if let Some(id) = job.id {
            let attempt = job.attempts;
            self.journal(Record::Started { id, attempt });
        }
        self.timers.schedule(deadline, Timer::Job(key));
        self.feed_stdin(key);
    }

    /// Writes pending request data to the job's stdin; closes stdin when the
    /// request is complete and written. A child that does not read (EPIPE)
    /// loses the rest of its input, nothing else.
    pub(crate) fn feed_stdin(&mut self, key: JobKey) {
        let Some(job) = self.jobs.get_mut(key) else {
            return;
        };
        let Job {
            input,
            input_complete,
            state,
            module,
            ..
        } = job;
        let JobState::Running(child) = state else {
            return;
        };
        let token = pipe_token(key, Stream::Stdin);
        let registry = self.poll.registry();
        match write_stdin(
            registry,
            &mut child.stdin,
            &mut child.stdin_watched,
            input,
            token,
        ) {
            StdinWrite::Written if *input_complete => child.stdin = None,
            StdinWrite::Written | StdinWrite::Waiting => {}
            StdinWrite::Closed => log::debug!("module {} does not read its input", module.name),
        }
    }

    pub(crate) fn pipe_ready(&mut self, key: JobKey, stream: Stream) {
        match stream {
            Stream::Stdin => self.feed_stdin(key),
            Stream::Stdout => self.read_stdout(key),
            Stream::Stderr => self.read_stderr(key),
        }
    }

    fn read_stdout(&mut self, key: JobKey) {
        let max_output = self.settings.max_output;
        let Some(child) = self.jobs.get_mut(key).and_then(Job::child_mut) else {
            return;
        };
        let Some(stdout) = &child.stdout else { return };
        let mut over = false;
        let output = &mut child.output;
        let end = drain(stdout, &mut self.scratch, |chunk| {
            let room = max_output - output.len();
            over = chunk.len() > room;
            output.extend_from_slice(&chunk[..chunk.len().min(room)]);
            !over
        });
        if over {
            child.kill();
            child
                .verdict
                .get_or_insert(Outcome::OutputTooLarge(max_output));
        }
        if over || !matches!(end, Ok(ReadEnd::Open)) {
            child.stdout = None;
            // Output ends as a process exits: reap it now rather than a turn
            // later, when its SIGCHLD is read.
            if let (Some(pid), None) = (child.pid, child.status) {
                if process::has_exited(pid) {
                    self.child_exited(pid);
                }
            }
            self.finish_if_done(key);
        }
    }

    fn read_stderr(&mut self, key: JobKey) {
        let Some(job) = self.jobs.get_mut(key) else {
            return;
        };
        let name = &job.module.name;
        let JobState::Running(child) = &mut job.state else {
            return;
        };
        let Some(stderr) = &child.stderr else { return };
        let (pid, log) = (child.pid, &mut child.stderr_log);
        let end = drain(stderr, &mut self.scratch, |chunk| {
            log.feed(name, pid, chunk);
            true
        });
        if !matches!(end, Ok(ReadEnd::Open)) {
            log.finish(name, pid);
            child.stderr = None;
            self.finish_if_done(key);
        }
    }

    /// SIGCHLD: reaps every exited child (signals coalesce, so loop). Each
    /// is first left unreaped so its process group can be killed safely:
    /// whatever the module left running in its group ends with it.
    pub(crate) fn reap_children(&mut self) {
        while let Some(pid) = process::next_exited() {
            if !self.child_exited(pid) {
                break; // cannot happen, but never spin
            }
        }
    }

    /// Kills what is left of an exited child's process group, reaps it, and
    /// finishes its job if its output is complete. False if it could not be
    /// reaped.
    fn child_exited(&mut self, pid: u32) -> bool {
        process::signal_group(pid, SIGKILL);
        let reaped = process::reap(pid);
        let was_reaped = reaped.is_some();
        self.apply_exit(pid, reaped);
        was_reaped
    }

    /// Records a child's exit in its job. A child can exit before the spawn
    /// thread's report of its pid has been read: its exit is kept until then.
    fn apply_exit(&mut self, pid: u32, reaped: Option<(i32, crate::run::outcome::Usage)>) {
        let Some(key) = self.jobs.by_pid(pid) else {
            if let Some(worker) = self.workers.by_pid(pid) {
                return self.worker_exited(worker, reaped.map(|(status, _)| status));
            }
            if let Some(reaped) = reaped {
                self.early_exits.insert(pid, reaped);
            }
            return;
        };
        let grace = self.settings.kill_grace;
        if let Some(child) = self.jobs.get_mut(key).and_then(Job::child_mut) {
            let (status, usage) = reaped.unwrap_or((-1, Default::default()));
            child.status = Some(status);
            child.usage = usage;
            child.phase = ChildPhase::Exited;
            child.deadline = Instant::now() + grace;
            // A pipe still open after the group is gone is held by a process
            // that left the group; it gets the grace period, then is closed.
            child.stdin = None;
            self.timers.schedule(child.deadline, Timer::Job(key));
        }
        // Read what is left now: the exit may be seen before the last output.
        self.read_stdout(key);
        self.read_stderr(key);
        self.finish_if_done(key);
    }

    /// A job's deadline came: time limit, kill grace, or pipe drain.
    pub(crate) fn job_deadline(&mut self, key: JobKey, now: Instant) {
        let grace = self.settings.kill_grace;
        let Some(job) = self.jobs.get_mut(key) else {
            return;
        };
        let name = job.module.name.clone();
        if let JobState::Warm(run) = &job.state {
            if run.deadline <= now {
                log::warn!("module {name} timed out on a warm worker, killing the worker");
                self.end_warm(key, Outcome::TimedOut);
            }
            return;
        }
        let Some(child) = job.child_mut() else { return };
        if child.deadline > now {
            return; // stale entry
        }
        match child.phase {
            ChildPhase::Running => {
                log::warn!(
                    "module {name}[{:?}] timed out, terminating its process group",
                    child.pid
                );
                child.verdict = Some(Outcome::TimedOut);
                child.signal(SIGTERM);
                child.phase = ChildPhase::Terminating;
                child.deadline = now + grace;
                self.timers.schedule(child.deadline, Timer::Job(key));
            }
            ChildPhase::Terminating => {
                log::warn!(
                    "module {name}[{:?}] ignored SIGTERM, killing its process group",
                    child.pid
                );
                child.kill();
                child.phase = ChildPhase::Killed;
            }
            ChildPhase::Killed => {}
            ChildPhase::Exited => {
                log::warn!(
                    "module {name}[{:?}]: a process outside its group keeps its output open",
                    child.pid
                );
                child.stdout = None;
                child.stderr = None;
                self.finish_if_done(key);
            }
        }
    }

    fn finish_if_done(&mut self, key: JobKey) {
        let done = self
            .jobs
            .get(key)
            .is_some_and(|job| matches!(&job.state, JobState::Running(child) if child.is_done()));
        if done {
            self.finish_job(key, None);
        }
    }

    /// Takes a job out and routes its answer. `outcome` is given for a job
    /// that never ran; a running job's comes from its child.
    /// Finishes a job that ran on a warm worker, or never ran.
    pub(crate) fn finish_job_with(&mut self, key: JobKey, outcome: Outcome, output: Vec<u8>) {
        self.finish_job(key, Some((outcome, output)));
    }

    fn finish_job(&mut self, key: JobKey, given: Option<(Outcome, Vec<u8>)>) {
        let Some(mut job) = self.jobs.remove(key) else {
            return;
        };
        let mut receipt = Receipt {
            attempts: job.attempts,
            bytes_in: job.bytes_in as u64,
            module_sha256: job.module.sha256.clone(),
            ..Receipt::default()
        };
        let mut killed_at_stop = false;
        let (outcome, output) = match std::mem::replace(&mut job.state, JobState::Waiting) {
            JobState::Running(mut child) => {
                child.stdin = None;
                child.stdout = None;
                child.stderr = None;
                receipt.wall = child.started.elapsed();
                receipt.usage = child.usage;
                receipt.bytes_out = child.output.len() as u64;
                killed_at_stop = child.killed_at_stop;
                (child.outcome(), std::mem::take(&mut child.output))
            }
            JobState::Warm(run) => {
                receipt.wall = run.started.elapsed();
                killed_at_stop = run.killed_at_stop;
                let (outcome, output) = given.unwrap_or((Outcome::Exited(-1), Vec::new()));
                receipt.bytes_out = output.len() as u64;
                (outcome, output)
            }
            JobState::Pending | JobState::Waiting => {
                given.unwrap_or((Outcome::SpawnFailed("never started".into()), Vec::new()))
            }
        };
        receipt.output_cut = matches!(outcome, Outcome::OutputTooLarge(_));
        receipt.outcome = Some(outcome.clone());
        self.stats.job_done(&job.module.name, &outcome);
        let name = &job.module.name;
        let answer = render_answer(name, &outcome, output);
        let peer = job
            .origin
            .peer()
            .map_or_else(|| "-".to_string(), |p| p.to_string());
        let waited = job.created.elapsed().saturating_sub(receipt.wall);
        log::info!(
            "{} {peer} {name}{}: in {} bytes, out {} bytes, {outcome:?}, ran {:.1} ms, waited {:.1} ms",
            job.origin.transport(),
            job.id.map_or(String::new(), |id| format!(" #{id}")),
            job.bytes_in,
            answer.len(),
            receipt.wall.as_secs_f64() * 1e3,
            waited.as_secs_f64() * 1e3,
        );
        match job.origin {
            Origin::Tcp {
                conn: Some(conn), ..
            } => {
                if matches!(self.conns.get(conn).map(|c| &c.phase), Some(Phase::Job(k)) if *k == key)
                {
                    self.answer(conn, answer);
                }
                return;
            }
            Origin::Tcp { conn: None, .. } | Origin::Udp { .. } => {
                log::debug!("{name} answered {:?}", loggable(&answer, 200));
            }
            Origin::Queue { .. } => {}
        }
        if killed_at_stop && self.journal.is_some() {
            // Left in the journal as started: it runs again after the restart.
            if let Origin::Queue { id } = job.origin {
                self.tell_watchers_stopping(id);
            }
            return;
        }
        self.record_finished(&job, &answer, receipt);
    }

    /// The client of a direct job is gone: the job goes on, its answer is only logged.
    pub(crate) fn detach_job(&mut self, key: JobKey) {
        if let Some(Job {
            origin: Origin::Tcp { conn, .. },
            ..
        }) = self.jobs.get_mut(key)
        {
            *conn = None;
        }
    }

    /// The request of a direct job was refused mid-way (too large): the
    /// job must not act on part of it, so it is dropped or killed.
    pub(crate) fn abandon_job(&mut self, key: JobKey) {
        self.detach_job(key);
        let Some(job) = self.jobs.get_mut(key) else {
            return;
        };
        match &mut job.state {
            JobState::Pending | JobState::Waiting => {
                self.jobs.remove(key);
            }
            JobState::Running(child) => {
                child.kill();
                job.input.discard();
                child.stdin = None;
            }
            JobState::Warm(_) => self.end_warm(key, Outcome::Cancelled),
        }
    }

    /// At shutdown, a job that has not started: a journaled one stays in
    /// the journal and runs after the restart; any other is dropped. Clients
    /// waiting for it are told.
    pub(crate) fn stop_waiting_job(&mut self, key: JobKey) {
        let Some(job) = self.jobs.get(key) else {
            return;
        };
        let kept = self.journal.is_some() && job.id.is_some();
        let job = if kept {
            job_entry(&mut self.jobs, key)
        } else {
            &self.jobs.remove(key).expect("job exists")
        };
        let (origin, name) = (job.origin, job.module.name.clone());
        match origin {
            Origin::Tcp { conn, .. } => {
                if let Some(conn) = conn {
                    self.refuse(conn, Refusal::ShuttingDown);
                }
            }
            Origin::Queue { id } if kept => self.tell_watchers_stopping(id),
            Origin::Queue { id } => {
                log::warn!("queue job {id} ({name}) dropped at shutdown: no journal");
                for conn in self.queue.remove(id) {
                    self.refuse(conn, Refusal::ShuttingDown);
                }
            }
            Origin::Udp { peer } if !kept => {
                log::warn!("udp job {name} from {peer} dropped at shutdown: no journal")
            }
            Origin::Udp { .. } => {}
        }
    }

    fn tell_watchers_stopping(&mut self, id: u64) {
        let watchers: Vec<usize> = self
            .conns
            .iter()
            .filter(|(_, c)| matches!(c.phase, Phase::QueueWait(w) if w == id))
            .map(|(k, _)| k)
            .collect();
        for conn in watchers {
            self.refuse(conn, Refusal::ShuttingDown);
        }
    }

    /// End of the shutdown grace period: kill what still runs.
    pub(crate) fn kill_all_running(&mut self) {
        let running: Vec<JobKey> = self
            .jobs
            .iter()
            .filter(|(_, job)| matches!(job.state, JobState::Running(_) | JobState::Warm(_)))
            .map(|(key, _)| key)
            .collect();
        for key in running {
            if let Some(JobState::Warm(run)) = self.jobs.get_mut(key).map(|j| &mut j.state) {
                log::warn!("shutdown grace over, killing a warm worker");
                run.killed_at_stop = true;
                self.end_warm(key, Outcome::Signaled(libc::SIGKILL));
                continue;
            }
            if let Some(child) = self.jobs.get_mut(key).and_then(Job::child_mut) {
                log::warn!(
                    "shutdown grace over, killing job process group {:?}",
                    child.pid
                );
                child.killed_at_stop = true;
                child.kill();
            }
        }
    }

    /// The spawn thread reported: a started child gets its pid (and what was
    /// decided while it started is carried out), a failed one ends its job.
    pub(crate) fn spawn_results(&mut self) {
        for result in self.spawner.take_results() {
            let Some(key) = self.jobs.spawned(result.serial) else {
                self.worker_spawned(result.serial, result.pid);
                continue;
            };
            let Some(job) = self.jobs.get_mut(key) else {
                continue;
            };
            let name = job.module.name.clone();
            let Some(child) = job.child_mut() else {
                continue;
            };
            match result.pid {
                Ok(pid) => {
                    child.pid = Some(pid);
                    if child.condemned {
                        process::signal_group(pid, SIGKILL);
                    }
                    self.jobs.started(key, pid);
                    if let Some(reaped) = self.early_exits.remove(&pid) {
                        self.apply_exit(pid, Some(reaped));
                    }
                }
                Err(e) => {
                    log::error!("module {name} cannot start: {e}");
                    child.verdict = Some(Outcome::SpawnFailed(e.to_string()));
                    child.status = Some(-1);
                    child.stdin = None;
                    child.stdout = None;
                    child.stderr = None;
                    self.finish_if_done(key);
                }
            }
        }
    }
}

fn job_entry(jobs: &mut crate::run::table::JobTable, key: JobKey) -> &mut Job {
    jobs.get_mut(key).expect("job exists")
}

/// What became of writing to a child's stdin.
pub(crate) enum StdinWrite {
    /// Everything pending is written.
    Written,
    /// The pipe is full; it is watched, and writing goes on when it drains.
    Waiting,
    /// The child closed it (or never had it): what was pending is dropped.
    Closed,
}

/// Writes `out` to a child's stdin, and registers the pipe for writable
/// events the first time it is full. Shared by jobs and warm workers.
pub(crate) fn write_stdin(
    registry: &Registry,
    stdin: &mut Option<mio::unix::pipe::Sender>,
    watched: &mut bool,
    out: &mut OutBuf,
    token: mio::Token,
) -> StdinWrite {
    let Some(pipe) = stdin else {
        out.discard();
        return StdinWrite::Closed;
    };
    match out.write_to(&*pipe) {
        Ok(true) => StdinWrite::Written,
        Ok(false) => {
            if !*watched {
                match registry.register(pipe, token, Interest::WRITABLE) {
                    Ok(()) => *watched = true,
                    Err(e) => {
                        log::error!("cannot watch a child's stdin: {e}");
                        out.discard();
                        *stdin = None;
                        return StdinWrite::Closed;
                    }
                }
            }
            StdinWrite::Waiting
        }
        Err(_) => {
            out.discard();
            *stdin = None;
            StdinWrite::Closed
        }
    }
}

fn register_pipes(registry: &Registry, key: JobKey, child: &mut Child) -> std::io::Result<()> {
    if let Some(stdout) = &mut child.stdout {
        registry.register(stdout, pipe_token(key, Stream::Stdout), Interest::READABLE)?;
    }
    if let Some(stderr) = &mut child.stderr {
        registry.register(stderr, pipe_token(key, Stream::Stderr), Interest::READABLE)?;
    }
    Ok(())
}
