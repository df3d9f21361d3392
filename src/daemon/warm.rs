//! Running `.js` jobs on warm workers (see `node/`): dispatch from each
//! module's waiting line, the workers' pipes, their replies, their ends.
//!
//! A worker serves one job at a time; each job keeps the job time limit (a
//! worker past it is killed, only its job fails, and a new worker starts
//! for the next job). A worker that dies fails its job alone. When a
//! module's file changes, new jobs go to new workers and the old ones are
//! told to unload once idle. Idle workers stop after `node_worker_idle`.

use std::rc::Rc;
use std::time::Instant;

use crate::daemon::timers::Timer;
use crate::daemon::tokens;
use crate::daemon::Daemon;
use crate::keys::{JobKey, WorkerKey};
use crate::node::framing::{job_frame, next_reply, Reply};
use crate::node::pool::{Worker, WorkerState};
use crate::run::command::{JobEnv, Mode};
use crate::run::job::{JobState, Origin, WarmRun};
use crate::run::modules::{Kind, Module};
use crate::run::outcome::{decode_status, Outcome, Usage};
use crate::run::process::Stream;
use crate::run::spawns::Owner;
use crate::sanitize::loggable;

impl Daemon {
    /// How many warm workers this module may have: its policy's
    /// `node_workers`, else the global one.
    fn pool_size(&self, module: &str) -> usize {
        self.settings
            .module_policy
            .get(module)
            .and_then(|policy| policy.node_workers)
            .unwrap_or(self.settings.node_workers)
    }

    /// True if this module's jobs go to warm workers.
    pub(super) fn runs_warm(&self, module: &Module) -> bool {
        module.kind == Kind::Node
            && self.pool_size(&module.name) > 0
            && self.node.is_some()
            && self.workers.cold.get(&module.name) != Some(&module.modified)
    }

    /// Starts a job on its module's pool: it holds a running slot and waits
    /// in the pool's line for a worker.
    pub(super) fn start_warm(&mut self, key: JobKey) {
        let Some(job) = self.jobs.get_mut(key) else {
            return;
        };
        job.attempts += 1;
        let (id, attempt, name) = (job.id, job.attempts, job.module.name.clone());
        let now = Instant::now();
        let limit = self.time_limit(key);
        let deadline = now + limit;
        self.jobs.warm_started(
            key,
            WarmRun {
                worker: None,
                started: now,
                deadline,
                killed_at_stop: false,
                usage: Default::default(),
            },
        );
        if let Some(id) = id {
            self.queue_started(id, attempt);
        }
        self.timers.schedule(deadline, Timer::Job(key));
        self.workers
            .queues
            .entry(name.clone())
            .or_default()
            .push_back(key);
        self.dispatch_warm(&name);
    }

    /// Hands the module's waiting jobs to idle workers of the right version,
    /// starting workers up to the pool size.
    pub(super) fn dispatch_warm(&mut self, name: &str) {
        self.retire_stale(name);
        loop {
            let Some(&key) = self.workers.queues.get(name).and_then(|q| q.front()) else {
                return;
            };
            let Some(module) = self.jobs.get(key).map(|j| j.module.clone()) else {
                self.workers.queues.get_mut(name).map(|q| q.pop_front());
                continue;
            };
            let idle = self
                .workers
                .slab
                .iter()
                .find(|(_, w)| matches!(w.state, WorkerState::Idle(_)) && w.serves(&module))
                .map(|(k, _)| k);
            if let Some(worker) = idle {
                self.workers.queues.get_mut(name).map(|q| q.pop_front());
                self.assign(worker, key);
                continue;
            }
            let starting = self
                .workers
                .slab
                .iter()
                .any(|(_, w)| w.state == WorkerState::Starting && w.serves(&module));
            if starting
                || self.workers.live_count(name) >= self.pool_size(name)
                || !self.uid_available()
            {
                return;
            }
            if !self.start_worker(&module) {
                return;
            }
        }
    }

    /// Idle workers whose module file changed since they loaded it are told
    /// to unload (calling `Unload()` if exported) and exit; new ones load
    /// the new file.
    pub(super) fn retire_stale(&mut self, name: &str) {
        let Some(current) = self.modules.lookup(name) else {
            return;
        };
        let stale = self.workers.slab.keys_where(|w| {
            w.module.name == name && !w.serves(&current) && matches!(w.state, WorkerState::Idle(_))
        });
        for key in stale {
            let Some(w) = self.workers.slab.get_mut(key) else {
                continue;
            };
            log::info!("module {name} changed: its idle worker unloads");
            w.process.input.push(b"unload\n");
            w.state = WorkerState::Retiring;
            self.feed_worker(key);
        }
    }

    fn start_worker(&mut self, module: &Rc<Module>) -> bool {
        let env = JobEnv {
            module: &module.name,
            transport: "worker",
            remote: None,
            job_id: None,
            attempt: 1,
        };
        let key = self.workers.slab.next_key();
        let started =
            self.start_process(module, Mode::Worker, &env.vars(), Owner::Worker(key), None);
        let process = match started {
            Ok(process) => process,
            Err(e) => {
                log::error!("module {}: cannot start a worker: {e}", module.name);
                return false;
            }
        };
        self.workers.slab.insert(Worker {
            module: module.clone(),
            process,
            inbuf: Vec::new(),
            state: WorkerState::Starting,
            job_start: None,
        });
        log::info!("module {}: starting a warm worker", module.name);
        true
    }

    /// Sends a job to an idle worker.
    fn assign(&mut self, worker: WorkerKey, key: JobKey) {
        let Some(job) = self.jobs.get_mut(key) else {
            return;
        };
        let data: Vec<u8> = match &job.data {
            Some(data) => data.to_vec(),
            None => job.input.pending().to_vec(),
        };
        let remote = job.origin.remote().unwrap_or_default();
        let queued = match job.origin {
            Origin::Queue { id } => Some(id),
            _ => None,
        };
        let frame = job_frame(
            job.origin.transport(),
            &remote,
            &data,
            (queued, job.attempts),
        );
        if let JobState::Warm(run) = &mut job.state {
            run.worker = Some(worker);
        }
        if let Some(w) = self.workers.slab.get_mut(worker) {
            w.state = WorkerState::Busy(key);
            w.job_started();
            w.process.input.push(&frame);
        }
        self.feed_worker(worker);
    }

    fn feed_worker(&mut self, key: WorkerKey) {
        let registry = self.poll.registry();
        if let Some(w) = self.workers.slab.get_mut(key) {
            let token = tokens::worker_pipe(key, Stream::Stdin);
            w.process.feed(registry, token, false);
        }
    }

    pub(super) fn worker_pipe_ready(&mut self, key: WorkerKey, stream: Stream) {
        match stream {
            Stream::Stdin => self.feed_worker(key),
            Stream::Stdout => self.read_worker(key),
            Stream::Stderr => self.read_worker_stderr(key),
            // A worker has no progress pipe: its jobs send frames.
            Stream::Progress => {}
        }
    }

    fn read_worker(&mut self, key: WorkerKey) {
        let Some(w) = self.workers.slab.get_mut(key) else {
            return;
        };
        let inbuf = &mut w.inbuf;
        w.process.read_stdout(self.scratch.get(), |chunk| {
            inbuf.extend_from_slice(chunk);
            true
        });
        while let Some(reply) = self
            .workers
            .slab
            .get_mut(key)
            .and_then(|w| next_reply(&mut w.inbuf))
        {
            self.worker_replied(key, reply);
        }
        // Left: a frame not complete yet (progress frames are not answer
        // bytes). One past the output cap fails its job and its worker.
        let Some(w) = self.workers.slab.get_mut(key) else {
            return;
        };
        let cap = self.settings.max_output + 64;
        if w.inbuf.len() > cap {
            let job = match w.state {
                WorkerState::Busy(job) => Some(job),
                _ => None,
            };
            log::warn!(
                "module {}: a worker's answer passed {} bytes, killing it",
                w.module.name,
                self.settings.max_output
            );
            w.inbuf = Vec::new();
            w.signal_kill();
            if let Some(job) = job {
                self.finish_job_with(
                    job,
                    Outcome::OutputTooLarge(self.settings.max_output),
                    Vec::new(),
                );
            }
        }
    }

    fn worker_replied(&mut self, key: WorkerKey, reply: Reply) {
        let Some(w) = self.workers.slab.get_mut(key) else {
            return;
        };
        let name = w.module.name.clone();
        match (reply, w.state) {
            (Reply::Ready, WorkerState::Starting) => {
                w.state = WorkerState::Idle(Instant::now());
                self.dispatch_warm(&name);
            }
            (Reply::Cold, _) | (Reply::Garbled(_), WorkerState::Starting) => {
                log::info!(
                    "module {name} cannot be served warm: it runs as one process per request"
                );
                self.workers.cold.insert(name.clone(), w.module.modified);
                w.signal_kill();
                // Its waiting jobs run cold, each in a process of its own.
                let waiting: Vec<JobKey> =
                    self.workers.queues.remove(&name).unwrap_or_default().into();
                for job in waiting {
                    self.jobs.warm_to_cold(job);
                    self.start_cold(job);
                }
            }
            (Reply::Done { ok, answer }, WorkerState::Busy(job)) => {
                w.state = WorkerState::Idle(Instant::now());
                let usage = w.job_usage();
                // Each job gets its own share of the log.
                w.process.finish_stderr_log(&name);
                // A whole answer over the cap can arrive in one read.
                let max = self.settings.max_output;
                let (outcome, answer) = match ok {
                    _ if answer.len() > max => (Outcome::OutputTooLarge(max), Vec::new()),
                    true => (Outcome::Exited(0), answer),
                    false => (Outcome::Exited(1), answer),
                };
                self.warm_usage(job, usage);
                self.finish_job_with(job, outcome, answer);
                self.dispatch_warm(&name);
            }
            (Reply::Progress(line), WorkerState::Busy(job)) => {
                let mut progress = self.jobs.get(job).map(|j| j.progress).unwrap_or_default();
                progress.say(&line);
                self.job_progressed(job, progress);
            }
            (Reply::Garbled(line), _) => {
                log::warn!(
                    "module {name}: worker wrote outside its framing: {:?}",
                    loggable(line.as_bytes(), 200)
                );
            }
            (reply, state) => {
                log::warn!("module {name}: unexpected {reply:?} from a worker in {state:?}")
            }
        }
    }

    fn read_worker_stderr(&mut self, key: WorkerKey) {
        let watch = (
            self.poll.registry(),
            tokens::worker_pipe(key, Stream::Stderr),
        );
        if let Some(w) = self.workers.slab.get_mut(key) {
            w.process
                .read_stderr(&w.module.name, self.scratch.get(), watch);
        }
    }

    /// A worker process exited: its job, if any, fails; it is forgotten.
    pub(super) fn worker_exited(&mut self, key: WorkerKey, status: Option<i32>) {
        let Some(mut w) = self.workers.slab.remove(key) else {
            return;
        };
        w.process.close_pipes();
        self.release_uid(w.process.uid);
        let name = w.module.name.clone();
        if let WorkerState::Busy(job) = w.state {
            // Its real status, 0 included: a module that exits its worker
            // without answering answers nothing, as it does when it runs
            // cold; -1 only when the status is not known.
            let outcome = status.map_or(Outcome::Exited(-1), decode_status);
            log::warn!("module {name}: a worker died during a job ({outcome})");
            self.finish_job_with(job, outcome, Vec::new());
        }
        self.dispatch_warm(&name);
    }

    /// A warm job's time limit passed, or it was cancelled: its worker is
    /// killed (a new one serves the next job) and the job ends now.
    pub(super) fn end_warm(&mut self, key: JobKey, outcome: Outcome) {
        let worker = match self.jobs.get(key).map(|j| &j.state) {
            Some(JobState::Warm(run)) => run.worker,
            _ => return,
        };
        match worker {
            Some(worker) => {
                let usage = self.workers.slab.get_mut(worker).and_then(|w| {
                    // Read before the kill, while the worker is there to read.
                    let usage = w.job_usage();
                    w.signal_kill();
                    usage
                });
                self.warm_usage(key, usage);
            }
            None => {
                let name = self
                    .jobs
                    .get(key)
                    .map(|j| j.module.name.clone())
                    .unwrap_or_default();
                if let Some(q) = self.workers.queues.get_mut(&name) {
                    q.retain(|&k| k != key);
                }
            }
        }
        self.finish_job_with(key, outcome, Vec::new());
    }

    /// Puts a worker's use over a job into the job, for its receipt.
    fn warm_usage(&mut self, key: JobKey, usage: Option<Usage>) {
        let run = self.jobs.get_mut(key).map(|j| &mut j.state);
        if let (Some(JobState::Warm(run)), Some(usage)) = (run, usage) {
            run.usage = usage;
        }
    }

    /// Stops workers idle for longer than the setting (closing their
    /// stdin), and retires those whose module changed.
    pub(super) fn stop_idle_workers(&mut self, now: Instant) {
        let mut names: Vec<String> = self
            .workers
            .slab
            .iter()
            .map(|(_, w)| w.module.name.clone())
            .collect();
        names.sort();
        names.dedup();
        for name in names {
            self.retire_stale(&name);
        }
        let limit = self.settings.node_worker_idle;
        for (_, w) in self.workers.slab.iter_mut() {
            if let WorkerState::Idle(since) = w.state {
                if now.duration_since(since) >= limit || self.stopping.is_some() {
                    w.process.close_stdin();
                    w.state = WorkerState::Retiring;
                }
            }
        }
    }

    /// The spawn thread reported a worker's pid.
    pub(super) fn worker_started(&mut self, key: WorkerKey, pid: u32) {
        if let Some(w) = self.workers.slab.get_mut(key) {
            w.process.started(pid);
        }
    }
}
