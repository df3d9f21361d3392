//! A warm worker's output (see `node/`): its replies, read from its
//! stdout and applied to its job, and its stderr, logged per job.

use std::time::Instant;

use crate::daemon::tokens;
use crate::daemon::Daemon;
use crate::keys::{JobKey, WorkerKey};
use crate::node::framing::{next_reply, Reply};
use crate::node::pool::WorkerState;
use crate::run::outcome::Outcome;
use crate::run::process::Stream;
use crate::sanitize::quoted;

impl Daemon {
    pub(super) fn read_worker(&mut self, key: WorkerKey) {
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
                    "module {name}: worker wrote outside its framing: {}",
                    quoted(line.as_bytes(), 200)
                );
            }
            (reply, state) => {
                log::warn!("module {name}: unexpected {reply:?} from a worker in {state:?}")
            }
        }
    }

    pub(super) fn read_worker_stderr(&mut self, key: WorkerKey) {
        let watch = (
            self.poll.registry(),
            tokens::worker_pipe(key, Stream::Stderr),
        );
        if let Some(w) = self.workers.slab.get_mut(key) {
            w.process
                .read_stderr(&w.module.name, self.scratch.get(), watch);
        }
    }
}
