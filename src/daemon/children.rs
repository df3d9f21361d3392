//! Module processes seen from the loop: their pipes, the spawn thread's
//! reports, reaping on SIGCHLD, and the time limits of cold jobs.
//!
//! A cold job is done only when its process has been reaped *and* its
//! stdout and stderr have reached end of file: the two arrive in either
//! order.

use std::time::Instant;

use libc::SIGTERM;

use crate::daemon::timers::Timer;
use crate::daemon::tokens;
use crate::daemon::Daemon;
use crate::keys::JobKey;
use crate::run::job::{Job, JobState, Origin, Stopping};
use crate::run::outcome::Outcome;
use crate::run::process::{self, Exit, StdinWrite, Stream};
use crate::run::progress::Progress;
use crate::run::spawns::Owner;

/// Request bytes a job may have waiting for its stdin before its client's
/// socket is no longer read (the client then waits in TCP's own flow control).
const HOLD_INPUT_AT: usize = 1 << 20;
/// ... and read again once stdin has taken it down to this.
const RESUME_INPUT_AT: usize = 256 * 1024;

impl Daemon {
    /// The backlog at which `key`'s client's socket is no longer read, and
    /// the one at which it is read again. A streamed job's request is
    /// spliced (`net/splice.rs`) once nothing waits for its stdin, so its
    /// socket is not read while anything does, nor before it starts.
    fn input_bounds(&self, key: JobKey) -> (usize, usize) {
        let Some(job) = self.jobs.get(key) else {
            return (HOLD_INPUT_AT, RESUME_INPUT_AT);
        };
        let streams = match &job.state {
            JobState::Running(run) => run.streamed,
            JobState::Waiting => {
                matches!(job.origin, Origin::Tcp { conn: Some(_), .. })
                    && (self.settings.module_policy.get(&job.module.name))
                        .is_some_and(|p| p.answer == crate::config::policy::Answer::Stream)
            }
            JobState::Warm(_) => false,
        };
        if streams {
            (0, 0)
        } else {
            (HOLD_INPUT_AT, RESUME_INPUT_AT)
        }
    }

    pub(super) fn job_pipe_ready(&mut self, key: JobKey, stream: Stream) {
        match stream {
            Stream::Stdin => self.feed_stdin(key),
            Stream::Stdout => self.read_stdout(key),
            Stream::Stderr => self.read_stderr(key),
            Stream::Progress => self.read_progress(key),
        }
    }

    /// Reads a cold job's progress lines; the last one is the job's, and
    /// a queued job's goes to the queue (`queue:info`).
    fn read_progress(&mut self, key: JobKey) {
        let watch = (
            self.poll.registry(),
            tokens::job_pipe(key, Stream::Progress),
        );
        let Some(job) = self.jobs.get_mut(key) else {
            return;
        };
        let JobState::Running(run) = &mut job.state else {
            return;
        };
        if run.process.read_progress(self.scratch.get(), watch) {
            let progress = run.process.progress_lines.progress;
            self.job_progressed(key, progress);
        }
    }

    /// A job, cold or warm, said how far it is.
    pub(super) fn job_progressed(&mut self, key: JobKey, progress: Progress) {
        let Some(job) = self.jobs.get_mut(key) else {
            return;
        };
        job.progress = progress;
        if let Some(id) = job.id {
            self.queue_progress(id, progress);
        }
    }

    /// Writes pending request data to the job's stdin; closes stdin when the
    /// request is complete and written.
    pub(super) fn feed_stdin(&mut self, key: JobKey) {
        let (_, resume_at) = self.input_bounds(key);
        let registry = self.poll.registry();
        let Some(job) = self.jobs.get_mut(key) else {
            return;
        };
        let complete = job.input_complete;
        let JobState::Running(run) = &mut job.state else {
            return;
        };
        let token = tokens::job_pipe(key, Stream::Stdin);
        if run.process.feed(registry, token, complete) == StdinWrite::Closed {
            log::debug!("module {} does not read its input", job.module.name);
        }
        if job.input_held && job.input_backlog() <= resume_at {
            job.input_held = false;
            if let Origin::Tcp {
                conn: Some(conn), ..
            } = job.origin
            {
                self.resumed.push(conn);
            }
        }
    }

    /// After request bytes went to `job`: true if its client's socket is
    /// no longer read until stdin has taken most of them.
    pub(super) fn hold_input(&mut self, job: JobKey) -> bool {
        let (hold_at, _) = self.input_bounds(job);
        let Some(job) = self.jobs.get_mut(job) else {
            return false;
        };
        if !matches!(job.state, JobState::Warm(_)) && job.input_backlog() > hold_at {
            job.input_held = true;
        }
        job.input_held
    }

    /// True if the connection feeds a job whose input is held.
    pub(super) fn input_held(&self, conn: crate::keys::ConnKey) -> bool {
        let job = self.conns.get(conn).and_then(|c| c.job());
        job.and_then(|job| self.jobs.get(job))
            .is_some_and(|job| job.input_held)
    }

    /// Reads again the clients whose jobs took their held input.
    pub(super) fn resume_input(&mut self) {
        for conn in std::mem::take(&mut self.resumed) {
            self.conn_ready(conn);
        }
    }

    fn read_stdout(&mut self, key: JobKey) {
        let max_output = self.settings.max_output;
        let Some(run) = self.jobs.get_mut(key).and_then(Job::cold_mut) else {
            return;
        };
        let mut over = false;
        let output = &mut run.output;
        let open = run.process.read_stdout(self.scratch.get(), |chunk| {
            let room = max_output - output.len();
            over = chunk.len() > room;
            output.extend_from_slice(&chunk[..chunk.len().min(room)]);
            !over
        });
        if over {
            run.end(Outcome::OutputTooLarge(max_output));
        }
        if !open {
            // Output ends as a process exits: reap it now rather than a turn
            // later, when its SIGCHLD is read.
            if let Some(pid) = run.process.pid.filter(|_| run.process.has_exited()) {
                self.child_exited(pid);
            }
            self.finish_if_done(key);
        }
    }

    fn read_stderr(&mut self, key: JobKey) {
        let Some(job) = self.jobs.get_mut(key) else {
            return;
        };
        let JobState::Running(run) = &mut job.state else {
            return;
        };
        let watch = (self.poll.registry(), tokens::job_pipe(key, Stream::Stderr));
        if !run
            .process
            .read_stderr(&job.module.name, self.scratch.get(), watch)
        {
            // A streamed job has no stdout pipe: its stderr ends as it
            // exits, and it is reaped now rather than at its SIGCHLD.
            let exited = run.process.output_closed() && run.process.has_exited();
            if let Some(pid) = run.process.pid.filter(|_| exited) {
                self.child_exited(pid);
            }
            self.finish_if_done(key);
        }
    }

    /// SIGCHLD: reaps every exited child (signals coalesce, so loop).
    pub(super) fn reap_children(&mut self) {
        while let Some(pid) = process::next_exited() {
            if !self.child_exited(pid) {
                break; // cannot happen, but never spin
            }
        }
    }

    /// Kills what is left of an exited child's process group (the module's
    /// leftovers end with it), reaps it, and hands the exit to its owner.
    /// False if it could not be reaped.
    fn child_exited(&mut self, pid: u32) -> bool {
        let Some(exit) = process::kill_group_and_reap(pid) else {
            return false;
        };
        if let Some(owner) = self.spawns.reaped(pid) {
            self.owner_exited(owner, exit);
        } else if let Some(serial) = self.spawner.claim_pid(pid) {
            self.spawns.reaped_early(serial, exit);
            // Its report finishes it: the spawn thread wakes the loop for it.
            self.spawner.want_results();
        } else {
            // An orphan a module left behind, reparented to the daemon.
            log::debug!("reaped orphan {pid}");
        }
        true
    }

    fn owner_exited(&mut self, owner: Owner, exit: Exit) {
        match owner {
            Owner::Job(key) => self.job_exited(key, exit),
            Owner::Worker(worker) => self.worker_exited(worker, Some(exit.0)),
            Owner::Clearing(uid) => self.uid_cleared(uid),
            Owner::Nobody => {}
        }
    }

    /// Records a cold job's exit; its pipes get the kill grace to close.
    fn job_exited(&mut self, key: JobKey, exit: Exit) {
        let grace = self.settings.kill_grace;
        if let Some(run) = self.jobs.get_mut(key).and_then(Job::cold_mut) {
            run.process.exit = Some(exit);
            run.stopping = Stopping::Exited;
            run.deadline = Instant::now() + grace;
            // A pipe still open after the group is gone is held by a process
            // that left the group; it gets the grace period, then is closed.
            run.process.close_stdin();
            self.timers.schedule(run.deadline, Timer::Job(key));
        }
        // Read what is left now: the exit may be seen before the last output.
        self.read_progress(key);
        self.read_stdout(key);
        self.read_stderr(key);
        self.finish_if_done(key);
    }

    /// The spawn thread reported: a started process gets its pid (and a
    /// kill decided meanwhile is carried out), a failed one ends its job.
    pub(super) fn spawn_reports(&mut self) {
        for result in self.spawner.take_results() {
            let started = result.error.is_none();
            let report = self.spawns.reported(result.serial, result.pid, started);
            if let Some(error) = result.error {
                match report.owner {
                    Owner::Job(key) => self.job_never_started(key, &error),
                    Owner::Worker(worker) => {
                        log::error!("cannot start a worker: {error}");
                        self.worker_exited(worker, None);
                    }
                    Owner::Clearing(uid) => {
                        log::error!(
                            "module uid {uid} could not be cleared, it stays unused: {error}"
                        )
                    }
                    Owner::Nobody => {}
                }
                continue;
            }
            let Some(pid) = result.pid else { continue };
            match report.owner {
                Owner::Job(key) => {
                    if let Some(run) = self.jobs.get_mut(key).and_then(Job::cold_mut) {
                        run.process.started(pid);
                    }
                }
                Owner::Worker(worker) => self.worker_started(worker, pid),
                Owner::Clearing(_) => {}
                // Its owner is gone (it could not be watched): nobody wants it.
                Owner::Nobody => process::signal_group(pid, libc::SIGKILL),
            }
            if let Some(exit) = report.exit {
                self.owner_exited(report.owner, exit);
            }
        }
    }

    fn job_never_started(&mut self, key: JobKey, error: &std::io::Error) {
        let Some(job) = self.jobs.get_mut(key) else {
            return;
        };
        let why = why_not_started(&self.settings, &job.module, error);
        log::debug!("module {} cannot start: {why}", job.module.name);
        if let Some(run) = job.cold_mut() {
            run.verdict = Some(Outcome::SpawnFailed(why));
            run.process.close_pipes();
            run.process.exit = Some((-1, Default::default()));
        }
        self.finish_if_done(key);
    }

    /// A job's deadline came: time limit, kill grace, or pipe drain.
    pub(super) fn job_deadline(&mut self, key: JobKey, now: Instant) {
        let grace = self.settings.kill_grace;
        let Some(job) = self.jobs.get_mut(key) else {
            return;
        };
        let name = job.module.name.clone();
        if let JobState::Warm(run) = &job.state {
            if run.deadline <= now {
                log::info!("module {name} timed out on a warm worker, killing the worker");
                self.end_warm(key, Outcome::TimedOut);
            }
            return;
        }
        let Some(run) = job.cold_mut() else { return };
        if run.deadline > now {
            return; // stale entry
        }
        let pid = run.process.pid;
        match run.stopping {
            Stopping::Running => {
                log::info!(
                    "module {name}{}: timed out, terminating its process group",
                    pid_tag(pid)
                );
                run.verdict = Some(Outcome::TimedOut);
                run.process.signal(SIGTERM);
                run.stopping = Stopping::Terminating;
                run.deadline = now + grace;
                self.timers.schedule(run.deadline, Timer::Job(key));
            }
            Stopping::Terminating => {
                let line = format!(
                    "module {name}{}: ignored SIGTERM, killing its process group",
                    pid_tag(pid)
                );
                let warnings = &mut self.warnings;
                crate::daemon::warnings::warn_limited(
                    warnings,
                    "ignored SIGTERM",
                    format_args!("{line}"),
                );
                run.process.kill();
                run.stopping = Stopping::Killed;
            }
            Stopping::Killed => {}
            Stopping::Exited => {
                log::warn!(
                    "module {name}{}: a process outside its group keeps its output open",
                    pid_tag(pid)
                );
                run.process.close_output();
                self.finish_if_done(key);
            }
        }
    }

    fn finish_if_done(&mut self, key: JobKey) {
        let done = self
            .jobs
            .get(key)
            .is_some_and(|job| matches!(&job.state, JobState::Running(run) if run.is_done()));
        if done {
            self.finish_job(key, None);
        }
    }
}

/// Why a module did not start, for its answer and the log: a permission
/// problem names the module user and the path that stops it.
pub(super) fn why_not_started(
    settings: &crate::config::Settings,
    module: &crate::run::modules::Module,
    error: &std::io::Error,
) -> String {
    use crate::config::reach;
    use crate::run::modules::Kind;
    let path = match module.kind {
        Kind::Node => settings.node.as_path(),
        Kind::Executable => module.path.as_path(),
    };
    let blocked = (error.kind() == std::io::ErrorKind::PermissionDenied)
        .then(|| reach::module_user(settings))
        .flatten()
        .and_then(|who| {
            let folder = path.parent().unwrap_or(path);
            reach::folder(folder, &who)
                .and_then(|()| reach::module(path, &who))
                .err()
        });
    match blocked {
        Some(blocked) => format!("{}: {error}: {blocked}", path.display()),
        None => format!("{}: {error}", path.display()),
    }
}

/// ` [pid]` when the process has one yet, else nothing: never `[0]`.
fn pid_tag(pid: Option<u32>) -> String {
    pid.map_or_else(String::new, |pid| format!(" [{pid}]"))
}
