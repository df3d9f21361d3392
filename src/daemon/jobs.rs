//! Jobs from start to answer: starting waiting jobs, the one place a job
//! ends ([`Daemon::finish_job`]), and jobs whose client left or whose
//! daemon stops.

use std::time::{Duration, Instant};

use crate::daemon::timers::Timer;
use crate::daemon::Daemon;
use crate::keys::JobKey;
use crate::net::protocol::{render_answer, Refusal};
use crate::queue::engine::RunJob;
use crate::run::command::{JobEnv, Mode};
use crate::run::job::{ColdRun, Job, JobState, Origin};
use crate::run::outcome::Outcome;
use crate::run::receipt::Receipt;
use crate::run::spawns::Owner;
use crate::sanitize::quoted;

impl Daemon {
    /// Starts waiting jobs, highest priority first and oldest first within
    /// one, while running slots are free, in all and for their module.
    pub(super) fn start_waiting_jobs(&mut self) {
        if self.stopping.is_some() {
            return;
        }
        // With module uids, a job starts only when a uid is free for it.
        while self.uid_available() {
            let policies = &self.settings.module_policy;
            let module_limit = |module: &str| {
                let policy = crate::config::policy::policy(policies, module);
                policy.max_jobs.unwrap_or(usize::MAX)
            };
            let Some(key) = self.jobs.pop_waiting(self.settings.max_jobs, module_limit) else {
                break;
            };
            let Some(job) = self.jobs.get(key) else {
                continue;
            };
            let (warm, waited) = (self.runs_warm(&job.module), job.created.elapsed());
            self.note_started(waited);
            if warm {
                self.start_warm(key);
            } else {
                self.start_cold(key);
            }
        }
    }

    /// A job's time limit: its module's (the policy's, else the global
    /// one), or the job's own if that is shorter.
    pub(super) fn time_limit(&self, key: JobKey) -> std::time::Duration {
        let Some(job) = self.jobs.get(key) else {
            return self.settings.job_timeout;
        };
        let module = crate::config::policy::job_timeout(
            &self.settings.module_policy,
            &job.module.name,
            self.settings.job_timeout,
        );
        job.timeout.map_or(module, |own| own.min(module))
    }

    /// Starts a job in a process of its own.
    pub(super) fn start_cold(&mut self, key: JobKey) {
        let Some(job) = self.jobs.get_mut(key) else {
            return;
        };
        job.attempts += 1;
        let env = JobEnv {
            module: &job.module.name,
            transport: job.origin.transport(),
            remote: job.origin.remote(),
            job_id: match job.origin {
                Origin::Queue { id } => Some(id),
                _ => None,
            },
            attempt: job.attempts,
        };
        let (vars, module) = (env.vars(), job.module.clone());
        let stdout = self.stream_socket(key);
        let streamed = stdout.is_some();
        let started = self.start_process(&module, Mode::Cold, &vars, Owner::Job(key), stdout);
        let Some(job) = self.jobs.get_mut(key) else {
            return;
        };
        let mut process = match started {
            Ok(process) => process,
            Err(e) => {
                let why = super::children::why_not_started(&self.settings, &job.module, &e);
                log::error!("module {} cannot start: {why}", job.module.name);
                let outcome = Outcome::SpawnFailed(why);
                return self.finish_job(key, Some((outcome, Vec::new())));
            }
        };
        process.input = match &job.data {
            Some(data) => crate::io::OutBuf::new(data.to_vec()),
            None => std::mem::take(&mut job.input),
        };
        let (id, attempt) = (job.id, job.attempts);
        let limit = self.time_limit(key);
        let deadline = Instant::now() + limit;
        let mut run = ColdRun::new(process, deadline);
        run.streamed = streamed;
        self.jobs.cold_started(key, run);
        if let Some(id) = id {
            self.queue_started(id, attempt);
        }
        self.timers.schedule(deadline, Timer::Job(key));
        self.feed_stdin(key);
    }

    /// Finishes a job that ran on a warm worker, or never ran.
    pub(super) fn finish_job_with(&mut self, key: JobKey, outcome: Outcome, output: Vec<u8>) {
        self.finish_job(key, Some((outcome, output)));
    }

    /// Takes a job out and delivers its answer. `given` is the outcome of a
    /// job that never ran or ran on a warm worker; a cold job's comes from
    /// its process.
    pub(super) fn finish_job(&mut self, key: JobKey, given: Option<(Outcome, Vec<u8>)>) {
        let Some(mut job) = self.jobs.remove(key) else {
            return;
        };
        let mut receipt = Receipt {
            attempts: job.attempts,
            bytes_in: job.bytes_in as u64,
            module_sha256: job.module.hash_for_receipt(),
            ..Receipt::default()
        };
        let mut killed_at_stop = false;
        let mut stderr = String::new();
        let streamed = matches!(&job.state, JobState::Running(run) if run.streamed);
        let (outcome, output) = match std::mem::replace(&mut job.state, JobState::Waiting) {
            JobState::Running(mut run) => {
                run.process.close_pipes();
                self.release_uid(run.process.uid);
                receipt.wall = run.started.elapsed();
                receipt.usage = run.process.exit.map(|(_, usage)| usage).unwrap_or_default();
                receipt.bytes_out = run.output.len() as u64;
                killed_at_stop = run.killed_at_stop;
                // Raw text: escaped where it is shown as a line (`queue:info`,
                // `queue:failed`), as it is in the dashboard's JSON.
                stderr = String::from_utf8_lossy(run.process.first_stderr_line()).into_owned();
                (run.outcome(), std::mem::take(&mut run.output))
            }
            JobState::Warm(run) => {
                receipt.wall = run.started.elapsed();
                receipt.usage = run.usage;
                killed_at_stop = run.killed_at_stop;
                let (outcome, output) = given.unwrap_or((Outcome::Exited(-1), Vec::new()));
                receipt.bytes_out = output.len() as u64;
                (outcome, output)
            }
            JobState::Waiting => {
                given.unwrap_or((Outcome::SpawnFailed("never started".into()), Vec::new()))
            }
        };
        receipt.output_cut = matches!(outcome, Outcome::OutputTooLarge(_));
        receipt.outcome = Some(outcome.clone());
        self.stats.job_done(&job.module.name, &outcome);
        let name = &job.module.name;
        let answer = render_answer(name, &outcome, output);
        let waited = job.created.elapsed().saturating_sub(receipt.wall);
        self.stats.run_time.observe(receipt.wall.as_secs_f64());
        self.stats.wait_time.observe(waited.as_secs_f64());
        self.note_finished(&job.module.name, receipt.wall, &outcome);
        // Formatted only if logged: a direct call's line is at info, below
        // the default level, and building it cost a sixth of the loop's
        // instructions per warm request.
        let line = FinishLine {
            job: &job,
            outcome: &outcome,
            out: (!streamed).then_some(answer.len()),
            ran: receipt.wall,
            waited,
        };
        match outcome {
            Outcome::TimedOut => self.warn_limited("job timed out", format_args!("{line}")),
            ref failed if failed.is_failure() => {
                self.warn_limited("job failed", format_args!("{line}"))
            }
            _ => log::info!("{line}"),
        }
        let name = &job.module.name;
        match job.origin {
            Origin::Tcp {
                conn: Some(conn), ..
            } => {
                let waits = self.conns.get(conn).and_then(|c| c.job()) == Some(key);
                if waits && streamed {
                    self.end_stream(conn, &outcome, answer);
                } else if waits {
                    self.answer(conn, answer);
                }
                return;
            }
            Origin::Tcp { conn: None, .. } | Origin::Udp { .. } => {
                log::debug!("{name} answered {}", quoted(&answer, 200));
            }
            Origin::Queue { .. } => {}
        }
        if let Some(id) = job.id {
            let module = job.module.name.clone();
            self.queue_finished(id, &module, &answer, (receipt, stderr), killed_at_stop);
        }
    }

    /// The client of a direct job is gone: the job goes on, its answer is only logged.
    pub(super) fn detach_job(&mut self, key: JobKey) {
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
    pub(super) fn abandon_job(&mut self, key: JobKey) {
        self.detach_job(key);
        let Some(job) = self.jobs.get_mut(key) else {
            return;
        };
        match &mut job.state {
            JobState::Waiting => {
                self.jobs.remove(key);
            }
            JobState::Running(run) => {
                run.process.kill();
                if run.process.pid.is_some() {
                    run.process.close_stdin();
                } else {
                    // Its kill waits for its pid: the end of its input now
                    // could let it answer (into a lent socket) first.
                    run.process.input.discard();
                }
            }
            JobState::Warm(_) => self.end_warm(key, Outcome::Cancelled),
        }
    }

    /// At shutdown, a job that has not started: a journaled one stays in
    /// the journal and runs after the restart; any other is dropped. Clients
    /// waiting for it are told.
    pub(super) fn stop_waiting_job(&mut self, key: JobKey) {
        let Some(job) = self.jobs.get(key) else {
            return;
        };
        let (id, origin) = (job.id, job.origin);
        let kept = match id {
            Some(id) => self.queue_stop_waiting(id),
            None => false,
        };
        if !kept {
            self.jobs.remove(key);
        }
        if let Origin::Tcp {
            conn: Some(conn), ..
        } = origin
        {
            self.refuse(conn, Refusal::ShuttingDown);
        }
    }

    /// End of the shutdown grace period: kill what still runs.
    pub(super) fn kill_all_running(&mut self) {
        for key in self.jobs.keys_where(Job::is_running) {
            let Some(job) = self.jobs.get_mut(key) else {
                continue;
            };
            match &mut job.state {
                JobState::Warm(run) => {
                    log::warn!("shutdown grace over, killing a warm worker");
                    run.killed_at_stop = true;
                    self.end_warm(key, Outcome::Signaled(libc::SIGKILL));
                }
                JobState::Running(run) => {
                    log::warn!(
                        "shutdown grace over, killing module {}'s process group",
                        job.module.name
                    );
                    run.killed_at_stop = true;
                    run.process.kill();
                }
                JobState::Waiting => {}
            }
        }
    }

    pub(super) fn job_of(&self, id: u64) -> Option<JobKey> {
        self.jobs.keys_where(|j| j.id == Some(id)).first().copied()
    }

    /// A job the queue says may run now joins the waiting line.
    pub(super) fn run_queued(&mut self, run: RunJob) {
        let origin = match run.udp_peer {
            Some(peer) => Origin::Udp { peer },
            None => Origin::Queue { id: run.id },
        };
        let mut job = Job::journaled(run.module, origin, run.id, run.data);
        job.owner = run.owner;
        job.client = run.client;
        job.attempts = run.attempts;
        job.priority = run.priority;
        job.timeout = run.timeout;
        job.added_at = run.added_at;
        job.created = run.created;
        self.jobs.add_kept(job);
    }

    /// A queue job cancelled while it runs is killed.
    pub(super) fn kill_queued(&mut self, id: u64) {
        let Some(key) = self.job_of(id) else { return };
        let Some(job) = self.jobs.get_mut(key) else {
            return;
        };
        let module = job.module.name.clone();
        match &mut job.state {
            JobState::Running(run) => {
                run.end(Outcome::Cancelled);
                log::info!("queue job {id} ({module}) cancelled: killing its process group");
            }
            JobState::Warm(_) => {
                log::info!("queue job {id} ({module}) cancelled: killing its warm worker");
                self.end_warm(key, Outcome::Cancelled);
            }
            JobState::Waiting => {}
        }
    }
}

/// The log line of a finished job, formatted where it is written.
struct FinishLine<'a> {
    job: &'a Job,
    outcome: &'a Outcome,
    /// Answer bytes; none when the answer streamed.
    out: Option<usize>,
    ran: Duration,
    waited: Duration,
}

impl std::fmt::Display for FinishLine<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        let job = self.job;
        write!(f, "{} ", job.origin.transport())?;
        match job.origin.peer() {
            Some(peer) => write!(f, "{peer}")?,
            None => f.write_str("-")?,
        }
        write!(f, " {}", job.module.name)?;
        if let Some(id) = job.id {
            write!(f, " #{id}")?;
        }
        write!(f, ": in {} bytes, out ", job.bytes_in)?;
        match self.out {
            Some(bytes) => write!(f, "{bytes} bytes")?,
            None => f.write_str("streamed")?,
        }
        write!(
            f,
            ", {}, ran {:.1} ms, waited {:.1} ms",
            self.outcome,
            self.ran.as_secs_f64() * 1e3,
            self.waited.as_secs_f64() * 1e3
        )
    }
}
