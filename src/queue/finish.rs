//! How a queue job's attempt ends: another attempt later (a failure with
//! retries left), or its result kept for `queue:get` (success, or a
//! failure for good); and `queue:failed` and `queue:retry`, which list and
//! queue again the jobs that failed for good.

use std::fmt::Write as _;
use std::time::{Instant, SystemTime};

use crate::net::protocol::Refusal;
use crate::queue::attempts::{retryable, Again, Attempt, MAX_STDERR_LINE};
use crate::queue::engine::{Asker, Finish, Retention, RetryTarget, RunJob};
use crate::queue::local::{unix_ms_now, Live, LocalEngine, Lookup, Phase};
use crate::queue::options::JobOptions;
use crate::queue::results::{Done, Entry, Finished, ResultLimits};
use crate::queue::store::{Arrival, Change, Removal};
use crate::run::outcome::Outcome;

impl LocalEngine {
    /// An attempt of `live` ended (not interrupted by a stop): true if it
    /// was scheduled again, else the caller delivers its result.
    pub(super) fn end_attempt(&mut self, mut live: Live, f: &Finish) -> Result<(), Box<Live>> {
        let Some(outcome) = f.receipt.outcome.clone() else {
            return Err(Box::new(live));
        };
        if outcome == Outcome::Cancelled {
            return Err(Box::new(live));
        }
        let number = live.job.attempts.max(1);
        let mut attempt = Attempt {
            number,
            outcome,
            wall: f.receipt.wall,
            stderr: crate::queue::attempts::kept_line(&f.stderr),
            retry_at_ms: None,
        };
        let again = retryable(&attempt.outcome) && number <= live.retries;
        if !again {
            live.tries.push(attempt);
            return Err(Box::new(live));
        }
        let at = unix_ms_now() + f.retry_wait.as_millis() as u64;
        attempt.retry_at_ms = Some(at);
        let id = live.job.id;
        log::info!(
            "queue job {id} ({}): attempt {number} failed ({}), attempt {} in {:.2} s",
            live.job.module.name,
            attempt.describe(),
            number + 1,
            f.retry_wait.as_secs_f64()
        );
        let change = Change::Attempt {
            id,
            attempt: attempt.clone(),
        };
        self.store.submit(change, None);
        live.tries.push(attempt);
        self.schedule(id, live, at);
        Ok(())
    }

    /// Keeps a queue job's result (or hands it to the clients waiting).
    pub(super) fn finish_queued(&mut self, id: u64, live: Live, f: Finish, keep: Retention) {
        if f.receipt.outcome == Some(Outcome::Cancelled) {
            let why = Removal::Cancelled;
            self.store.submit(Change::Removed { id, why }, None);
            for conn in self.book.remove(id) {
                self.answer(conn, f.answer.clone());
            }
            return;
        }
        let failed = f.receipt.outcome.as_ref().is_some_and(Outcome::is_failure);
        let (retries, key) = (live.retries, live.key.map(Vec::from));
        let job = live.job;
        let again = failed.then(|| {
            let options = JobOptions {
                retries: Some(retries),
                timeout_ms: job.timeout.map(|t| t.as_millis() as u64),
                priority: Some(job.priority),
                key: key.clone(),
                ..JobOptions::default()
            };
            Box::new(Again {
                data: job.data.clone(),
                options,
            })
        });
        let mut receipt = f.receipt.clone();
        receipt.attempts = receipt.attempts.max(job.attempts);
        let done = Done {
            owner: job.owner.clone(),
            client: job.client,
            module: job.module.name.clone(),
            answer: f.answer.clone(),
            finished: Instant::now(),
            receipt: receipt.clone(),
            tries: live.tries.clone(),
            again: again.clone(),
        };
        let limits = ResultLimits {
            total: keep.total,
            per_client: keep.per_client,
        };
        let evicted = match self.book.finish(id, done, limits) {
            Finished::Watched(done, watchers) => {
                return self.remove_when_kept(id, done, watchers, Removal::Fetched);
            }
            Finished::Kept { evicted } => evicted,
        };
        let change = Change::Finished {
            id,
            owner: job.owner,
            client: job.client,
            module: job.module.name.clone(),
            answer: f.answer,
            receipt,
            finished_at: SystemTime::now(),
            tries: live.tries,
            again,
            key,
        };
        self.store.submit(change, None);
        for old in evicted {
            log::info!(
                "queue result {old} dropped: its client's results over its share ({} bytes) or the total ({} bytes)",
                keep.per_client,
                keep.total
            );
            let why = Removal::Expired;
            self.store.submit(Change::Removed { id: old, why }, None);
        }
    }

    /// `queue:failed`: one line per failed job whose result is held,
    /// newest first: `id module attempts age_secs first-stderr-line`.
    pub(super) fn failed_list(&mut self, asker: Asker) {
        if !asker.operator {
            return self.refuse(asker.conn, Refusal::Forbidden);
        }
        let now = Instant::now();
        let mut text = String::new();
        for failed in self.book.failed() {
            let age = now.duration_since(failed.finished).as_secs_f64();
            let (id, module, attempts) = (failed.id, &failed.module, failed.attempts);
            let _ = write!(text, "{id} {module} {attempts} {age:.1}");
            if !failed.stderr.is_empty() {
                let line = crate::sanitize::loggable(failed.stderr.as_bytes(), MAX_STDERR_LINE);
                let _ = write!(text, " {line}");
            }
            text.push('\n');
        }
        self.answer(asker.conn, text.into_bytes());
    }

    /// `queue:retry`: failed jobs run once more, as their next attempt,
    /// under the same id; a `queue:get` that comes now waits for it.
    pub(super) fn retry_failed(&mut self, asker: Asker, target: RetryTarget, lookup: Lookup) {
        let ids: Vec<u64> = match &target {
            RetryTarget::Id(id) => vec![*id],
            RetryTarget::Module(_) if !asker.operator => {
                return self.refuse(asker.conn, Refusal::Forbidden);
            }
            RetryTarget::Module(module) => (self.book.entries())
                .filter_map(|(&id, e)| match e {
                    Entry::Done(d) if d.again.is_some() && &d.module == module => Some(id),
                    _ => None,
                })
                .collect(),
        };
        let mut queued = 0;
        for &id in &ids {
            let mine = match self.book.get(id) {
                Some(Entry::Done(d)) if d.again.is_some() => {
                    asker.operator || d.owner.is_empty() || d.owner == asker.owner
                }
                _ => false,
            };
            if !mine {
                continue;
            }
            if self.requeue(id, &mut *lookup) {
                queued += 1;
            }
        }
        if let RetryTarget::Id(_) = target {
            if queued == 0 {
                return self.refuse(asker.conn, Refusal::UnknownJob);
            }
        }
        self.answer(asker.conn, format!("queued: {queued}").into_bytes());
    }

    /// Puts failed job `id` back as waiting, its attempts kept.
    fn requeue(&mut self, id: u64, lookup: Lookup) -> bool {
        let module = match self.book.get(id) {
            Some(Entry::Done(done)) => done.module.clone(),
            _ => return false,
        };
        let Some(module) = lookup(&module) else {
            return false;
        };
        let Some(done) = self.book.take_done(id) else {
            return false;
        };
        let Some(again) = done.again else {
            return false;
        };
        let attempts = done.tries.iter().map(|t| t.number).max().unwrap_or(0);
        let mut options = again.options.clone();
        options.run_at_ms = None;
        options.retries = Some(attempts);
        let added_at = SystemTime::now();
        self.store.submit(
            Change::Added {
                id,
                counter: 0,
                owner: done.owner.clone(),
                client: done.client,
                arrival: Arrival::Queue,
                module: module.name.clone(),
                data: again.data.clone(),
                added_at,
                options: options.clone(),
            },
            None,
        );
        for attempt in &done.tries {
            let attempt = attempt.clone();
            self.store.submit(Change::Attempt { id, attempt }, None);
        }
        log::info!(
            "queue job {id} ({}): queued again as attempt {}",
            module.name,
            attempts + 1
        );
        let job = RunJob {
            id,
            module,
            data: again.data,
            udp_peer: None,
            owner: done.owner,
            client: done.client,
            attempts,
            priority: options.priority.unwrap_or_default(),
            timeout: options.timeout_ms.map(std::time::Duration::from_millis),
            added_at,
            created: Instant::now(),
        };
        self.book.restore(id, Entry::Active);
        let mut live = Live::new(job, Phase::Waiting);
        live.retries = attempts;
        live.tries = done.tries;
        live.key = options.key.map(Vec::into_boxed_slice);
        self.run(live);
        true
    }
}
