//! The `queue:` requests: add, check, get, cancel, stats, list, info.
//! Each returns the answer, or `None` when the connection waits for it.

use std::fmt::Write as _;
use std::time::Instant;

use crate::daemon::Daemon;
use crate::keys::ConnKey;
use crate::net::protocol::{JobRef, Refusal};
use crate::queue::results::Entry;
use crate::queue::store::{Removal, Status};
use crate::run::job::JobState;
use crate::run::outcome::Outcome;
use crate::run::receipt::Receipt;

/// An answer, or a refusal to answer with.
pub type Reply = Result<Option<Vec<u8>>, Refusal>;

impl Daemon {
    pub(super) fn queue_add(&mut self, key: ConnKey, module: &str, data: &[u8]) -> Reply {
        let Some((peer, listener)) = self.conns.get(key).map(|c| (c.peer, c.listener)) else {
            return Ok(None);
        };
        if !self.serves(listener, module) {
            log::debug!("tcp {peer}: queue:add of {module:?}, not served on this listener");
            return Err(Refusal::Forbidden);
        }
        let Some(found) = self.modules.lookup(module) else {
            log::debug!("tcp {peer}: queue:add of unknown module {module:?}");
            return Err(Refusal::UnknownModule);
        };
        match self.admit_journaled(found, data.to_vec(), None, Some(key)) {
            Ok(id) => {
                log::info!(
                    "tcp {peer}: queue:add {module} ({} bytes) as id {id}",
                    data.len()
                );
                Ok(None)
            }
            Err(refusal) => {
                log::debug!(
                    "tcp {peer}: queue:add {module} refused: {}",
                    refusal.answer()
                );
                Err(refusal)
            }
        }
    }

    /// The id of a job this connection may see, or `404: Unknown job`
    /// (also for another listener's job: its existence is not revealed).
    fn visible(&self, key: ConnKey, id: JobRef) -> Result<u64, Refusal> {
        match id {
            JobRef::Id(id) if self.may_act_on(key, id) => Ok(id),
            _ => Err(Refusal::UnknownJob),
        }
    }

    pub(super) fn queue_check(&self, key: ConnKey, id: JobRef) -> Reply {
        let id = self.visible(key, id)?;
        let status = match self.queue.get(id) {
            Some(Entry::Active(job)) => match self.jobs.get(*job).map(|j| &j.state) {
                Some(JobState::Running(_) | JobState::Warm(_)) => "1",
                _ => "0",
            },
            Some(Entry::Done(_)) => "2",
            None => return Err(Refusal::UnknownJob),
        };
        Ok(Some(status.into()))
    }

    pub(super) fn queue_get(&mut self, key: ConnKey, id: JobRef) -> Reply {
        let id = self.visible(key, id)?;
        match self.queue.get(id) {
            Some(Entry::Active(_)) => {
                self.queue.watch(id, key);
                if let Some(conn) = self.conns.get_mut(key) {
                    conn.await_result(id);
                }
                Ok(None)
            }
            Some(Entry::Done(_)) => {
                let done = self.queue.take_done(id).expect("entry is done");
                self.remove_when_kept(id, done, vec![key], Removal::Fetched);
                Ok(None)
            }
            None => Err(Refusal::UnknownJob),
        }
    }

    /// Removes a waiting job, kills a running one's process group, or drops
    /// an unfetched result; answers which.
    pub(super) fn queue_cancel(&mut self, key: ConnKey, id: JobRef) -> Reply {
        let id = self.visible(key, id)?;
        let what = match self.queue.get(id) {
            None => return Err(Refusal::UnknownJob),
            Some(Entry::Done(_)) => {
                // Answered once the removal is kept, as a fetch is.
                let done = self.queue.take_done(id).expect("entry is done");
                self.remove_when_kept(id, done, vec![key], Removal::Cancelled);
                return Ok(None);
            }
            Some(Entry::Active(key)) => {
                let key = *key;
                let job = self
                    .jobs
                    .get_mut(key)
                    .expect("active jobs are in the table");
                let module = job.module.name.clone();
                if let JobState::Running(run) = &mut job.state {
                    run.end(Outcome::Cancelled);
                    log::info!("queue job {id} ({module}) cancelled: killing its process group");
                    // Its end is journaled and answered when it is reaped.
                    return Ok(Some(b"cancelled: running job killed".to_vec()));
                }
                if let JobState::Warm(_) = job.state {
                    log::info!("queue job {id} ({module}) cancelled: killing its warm worker");
                    self.end_warm(key, Outcome::Cancelled);
                    return Ok(Some(b"cancelled: running job killed".to_vec()));
                }
                self.jobs.remove(key);
                self.stats.job_done(&module, &Outcome::Cancelled);
                let answer = format!("410: Module {module} cancelled").into_bytes();
                for conn in self.queue.remove(id) {
                    self.answer(conn, answer.clone());
                }
                "cancelled: waiting job removed"
            }
        };
        log::info!("queue job {id}: {what}");
        self.journal_removed(id, Removal::Cancelled);
        Ok(Some(what.into()))
    }

    /// Counters as `key: value` lines.
    pub(super) fn queue_stats(&self) -> Reply {
        let s = &self.stats;
        let mut out = String::new();
        let mut line = |key: &str, value: &dyn std::fmt::Display| {
            let _ = writeln!(out, "{key}: {value}");
        };
        line("uptime_secs", &self.started.elapsed().as_secs());
        line("jobs_waiting", &self.jobs.waiting());
        line("jobs_running", &self.jobs.running());
        line("jobs_done_unfetched", &self.done_count());
        line("results_bytes", &self.queue.held_bytes());
        line("total_ok", &s.jobs_ok);
        line("total_failed", &s.jobs_failed);
        line("total_timed_out", &s.jobs_timed_out);
        line("total_cancelled", &s.jobs_cancelled);
        line("total_streams_cut", &s.streams_cut);
        line("total_refused", &s.refused);
        line("total_refused_busy", &s.refused_busy);
        line("connections_open", &self.conns.len());
        line("connections_total", &s.connections);
        line("datagrams_total", &s.datagrams);
        line("datagrams_forbidden", &s.udp_forbidden);
        line("datagrams_over_budget", &s.udp_over_budget);
        line("next_id", &self.queue.next_counter());
        match self.store.status() {
            Status::Journal {
                bytes,
                last_sync_ms_ago,
            } => {
                line("journal_bytes", &bytes);
                match last_sync_ms_ago {
                    Some(ago) => line("journal_last_fsync_ms_ago", &ago),
                    None => line("journal_last_fsync_ms_ago", &"never"),
                }
            }
            Status::Memory => line("journal", &"off"),
        }
        for (module, n) in &s.by_module {
            line(&format!("module.{module}"), n);
        }
        Ok(Some(out.into_bytes()))
    }

    fn done_count(&self) -> usize {
        self.queue
            .entries()
            .filter(|(_, e)| matches!(e, Entry::Done(_)))
            .count()
    }

    /// One line per job held: `id module transport status age_secs`; it
    /// reveals ids, so only operators may ask.
    pub(super) fn queue_list(&self, key: ConnKey) -> Reply {
        if !self.is_operator(key) {
            return Err(Refusal::Forbidden);
        }
        let now = Instant::now();
        let mut rows: Vec<(u64, String)> = Vec::new();
        for (_, job) in self.jobs.iter() {
            let status = match job.state {
                JobState::Running(_) | JobState::Warm(_) => "running",
                _ => "waiting",
            };
            let id = job.id.map_or("-".to_string(), |id| id.to_string());
            let age = now.duration_since(job.created).as_secs_f64();
            let row = format!(
                "{id} {} {} {status} {age:.1}",
                job.module.name,
                job.origin.transport()
            );
            rows.push((job.id.unwrap_or(0), row));
        }
        for (&id, entry) in self.queue.entries() {
            if let Entry::Done(done) = entry {
                let age = now.duration_since(done.finished).as_secs_f64();
                rows.push((id, format!("{id} {} queue done {age:.1}", done.module)));
            }
        }
        rows.sort();
        let text: String = rows.into_iter().map(|(_, row)| row + "\n").collect();
        Ok(Some(text.into_bytes()))
    }

    /// The job's receipt as `key: value` lines.
    pub(super) fn queue_info(&self, key: ConnKey, id: JobRef) -> Reply {
        let id = self.visible(key, id)?;
        let text = match self.queue.get(id) {
            Some(Entry::Active(key)) => {
                let job = self.jobs.get(*key).expect("active jobs are in the table");
                let status = match job.state {
                    JobState::Running(_) | JobState::Warm(_) => "running",
                    _ => "waiting",
                };
                let receipt = Receipt {
                    attempts: job.attempts,
                    bytes_in: job.bytes_in as u64,
                    module_sha256: job.module.hash_for_receipt(),
                    ..Receipt::default()
                };
                receipt.render(id, &job.module.name, status)
            }
            Some(Entry::Done(done)) => done.receipt.render(id, &done.module, "done"),
            None => match self.queue.fetched_receipt(id) {
                Some(f) => f.receipt.render(id, &f.module, "fetched"),
                None => return Err(Refusal::UnknownJob),
            },
        };
        Ok(Some(text.into_bytes()))
    }
}
