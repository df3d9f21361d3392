//! The local engine's requests: the queries a client makes (check, get,
//! cancel, info, list, stats), what the loop tells it of the jobs it ran
//! (started, finished), and housekeeping, shutdown and clients leaving.

use std::net::IpAddr;
use std::rc::Rc;
use std::time::Instant;

use crate::keys::ConnKey;
use crate::net::protocol::Refusal;
use crate::queue::engine::{
    Admission, Asker, Event, Finish, NewJob, QueueEngine, QueueStats, Retention, RetryTarget, Wait,
};
use crate::queue::local::{LocalEngine, Lookup, Phase};
use crate::queue::results::Entry;
use crate::queue::store::{Change, Removal, Status};
use crate::run::outcome::Outcome;
use crate::run::receipt::Receipt;

impl LocalEngine {
    /// The listener job `id` belongs to, if it is known at all (held, or
    /// fetched a while ago).
    fn owner_of(&self, id: u64) -> Option<&str> {
        match self.book.get(id) {
            Some(Entry::Active) => self.live.get(&id).map(|l| l.job.owner.as_str()),
            Some(Entry::Done(done)) => Some(done.owner.as_str()),
            None => self.book.fetched_receipt(id).map(|f| f.owner.as_str()),
        }
    }

    /// True if the asker may see and act on job `id`: it came through the
    /// job's listener, or has operator rights. Jobs of old journals (no
    /// owner) are any listener's. Otherwise its existence is not revealed.
    fn visible(&mut self, asker: &Asker, id: u64) -> bool {
        let seen = match self.owner_of(id) {
            None => false,
            Some(_) if asker.operator => true,
            Some(owner) => owner.is_empty() || owner == asker.owner,
        };
        if !seen {
            self.refuse(asker.conn, Refusal::UnknownJob);
        }
        seen
    }

    fn status_of(&self, id: u64) -> &'static str {
        match self.live.get(&id).map(|l| l.phase) {
            Some(Phase::Running) => "running",
            Some(Phase::Scheduled) => "scheduled",
            _ => "waiting",
        }
    }

    fn cancel_live(&mut self, conn: ConnKey, id: u64) {
        let Some(live) = self.live.get(&id) else {
            return self.refuse(conn, Refusal::UnknownJob);
        };
        let module = live.job.module.name.clone();
        if live.phase == Phase::Running {
            // Its end comes back through `finished`, which journals it and
            // answers the clients waiting for it.
            self.events.push_back(Event::Kill { id });
            return self.answer(conn, &b"cancelled: running job killed"[..]);
        }
        let scheduled = live.phase == Phase::Scheduled;
        self.take_live(id);
        if !scheduled {
            // A scheduled job is not in the daemon's waiting line.
            self.events.push_back(Event::Withdraw {
                id,
                module: module.clone(),
            });
        }
        let answer: Rc<[u8]> = format!("410: Module {module} cancelled")
            .into_bytes()
            .into();
        for waiting in self.book.remove(id) {
            self.answer(waiting, answer.clone());
        }
        let what = "cancelled: waiting job removed";
        log::info!("queue job {id}: {what}");
        self.store.submit(
            Change::Removed {
                id,
                why: Removal::Cancelled,
            },
            None,
        );
        self.answer(conn, what.as_bytes());
    }

    pub(super) fn tell_watchers_stopping(&mut self, id: u64) {
        for conn in self.book.watchers(id) {
            self.refuse(conn, Refusal::ShuttingDown);
        }
    }
}

/// `attempt_N: exit 3, 0.12 s, <stderr line>`, one line per attempt.
fn attempt_lines(tries: &[crate::queue::attempts::Attempt]) -> String {
    (tries.iter())
        .map(|t| format!("attempt_{}: {}\n", t.number, t.describe()))
        .collect()
}

impl QueueEngine for LocalEngine {
    fn add(&mut self, job: NewJob, room: Admission, keep: Retention) -> Result<u64, Refusal> {
        self.admit(job, room, keep)
    }

    fn check(&mut self, asker: Asker, id: u64) {
        if !self.visible(&asker, id) {
            return;
        }
        let status = match self.book.get(id) {
            Some(Entry::Active) if self.status_of(id) == "running" => "1",
            Some(Entry::Active) => "0",
            Some(Entry::Done(_)) => "2",
            None => return self.refuse(asker.conn, Refusal::UnknownJob),
        };
        self.answer(asker.conn, status.as_bytes());
    }

    fn get(&mut self, asker: Asker, id: u64) {
        if !self.visible(&asker, id) {
            return;
        }
        let conn = asker.conn;
        match self.book.get(id) {
            Some(Entry::Active) => {
                self.book.watch(id, conn);
                let on = Wait::Result(id);
                self.events.push_back(Event::Wait { conn, on });
            }
            Some(Entry::Done(_)) => {
                let done = self.book.take_done(id).expect("entry is done");
                self.remove_when_kept(id, done, vec![conn], Removal::Fetched);
            }
            None => self.refuse(conn, Refusal::UnknownJob),
        }
    }

    fn cancel(&mut self, asker: Asker, id: u64) {
        if !self.visible(&asker, id) {
            return;
        }
        match self.book.get(id) {
            None => self.refuse(asker.conn, Refusal::UnknownJob),
            Some(Entry::Done(_)) => {
                // Answered once the removal is kept, as a fetch is.
                let done = self.book.take_done(id).expect("entry is done");
                self.remove_when_kept(id, done, vec![asker.conn], Removal::Cancelled);
            }
            Some(Entry::Active) => self.cancel_live(asker.conn, id),
        }
    }

    fn info(&mut self, asker: Asker, id: u64) {
        if !self.visible(&asker, id) {
            return;
        }
        let text = match (self.book.get(id), self.live.get(&id)) {
            (Some(Entry::Active), Some(live)) => {
                let job = &live.job;
                let receipt = Receipt {
                    attempts: job.attempts,
                    bytes_in: job.data.len() as u64,
                    module_sha256: job.module.hash_for_receipt(),
                    ..Receipt::default()
                };
                let mut text = receipt.render(id, &job.module.name, self.status_of(id));
                text.push_str(&self.run_at_line(id).unwrap_or_default());
                text.push_str(&live.progress.info_lines());
                text + &attempt_lines(&live.tries)
            }
            (Some(Entry::Done(done)), _) => {
                let failed = done
                    .receipt
                    .outcome
                    .as_ref()
                    .is_some_and(Outcome::is_failure);
                let status = if failed { "failed" } else { "done" };
                done.receipt.render(id, &done.module, status) + &attempt_lines(&done.tries)
            }
            _ => match self.book.fetched_receipt(id) {
                Some(f) => f.receipt.render(id, &f.module, "fetched"),
                None => return self.refuse(asker.conn, Refusal::UnknownJob),
            },
        };
        let text = text + &format!("duplicates: {}\n", self.keys.duplicates_of(id));
        self.answer(asker.conn, text.into_bytes());
    }

    fn list(&mut self, asker: Asker) {
        if !asker.operator {
            return self.refuse(asker.conn, Refusal::Forbidden);
        }
        let now = Instant::now();
        let mut rows: Vec<(u64, String)> = Vec::new();
        for (&id, live) in &self.live {
            let job = &live.job;
            let transport = if job.udp_peer.is_some() {
                "udp"
            } else {
                "queue"
            };
            let age = now.duration_since(job.created).as_secs_f64();
            let (name, status) = (&job.module.name, self.status_of(id));
            rows.push((id, format!("{id} {name} {transport} {status} {age:.1}")));
        }
        for (&id, entry) in self.book.entries() {
            if let Entry::Done(done) = entry {
                let age = now.duration_since(done.finished).as_secs_f64();
                rows.push((id, format!("{id} {} queue done {age:.1}", done.module)));
            }
        }
        let conn = asker.conn;
        self.events.push_back(Event::List { conn, rows });
    }

    fn failed(&mut self, asker: Asker) {
        self.failed_list(asker);
    }

    fn retry(&mut self, asker: Asker, target: RetryTarget, lookup: Lookup) {
        self.retry_failed(asker, target, lookup);
    }

    fn stats(&mut self, conn: ConnKey) {
        let done_unfetched = self
            .book
            .entries()
            .filter(|(_, e)| matches!(e, Entry::Done(_)))
            .count();
        let stats = QueueStats {
            unkept: self.unkept_counts(None)[0],
            done_unfetched,
            results_bytes: self.book.held_bytes(),
            next_id: self.book.next_counter(),
            store: self.store.status(),
            paused: self.paused.iter().cloned().collect(),
        };
        self.events.push_back(Event::Stats { conn, stats });
    }

    fn view(&self, listed: usize) -> crate::queue::engine::QueueView {
        self.dashboard_view(listed)
    }

    fn pause(&mut self, asker: Asker, module: String, paused: bool) {
        self.pause_module(asker, module, paused);
    }

    fn progress(&mut self, id: u64, progress: crate::run::progress::Progress) {
        self.set_progress(id, progress);
    }

    fn started(&mut self, id: u64, attempt: u32) {
        self.set_phase(id, Phase::Running);
        if let Some(live) = self.live.get_mut(&id) {
            live.job.attempts = attempt;
            // An attempt says its own progress.
            live.progress = Default::default();
        }
        self.store.submit(Change::Started { id, attempt }, None);
    }

    fn finished(&mut self, id: u64, finish: Finish, keep: Retention) {
        let Some(live) = self.take_live(id) else {
            return;
        };
        if finish.interrupted && self.store.durable() {
            // Left in the journal as started: it runs again after the restart.
            if live.job.udp_peer.is_none() {
                self.tell_watchers_stopping(id);
            }
            self.put_live(live);
            return;
        }
        let live = match self.end_attempt(live, &finish) {
            Ok(()) => return,
            Err(live) => *live,
        };
        if live.job.udp_peer.is_some() {
            return self.removed_now(id, Removal::Done);
        }
        self.finish_queued(id, live, finish, keep);
    }

    fn removed(&mut self, id: u64, why: Removal) {
        self.book.remove(id);
        self.removed_now(id, why);
    }

    fn forget(&mut self, conn: ConnKey) {
        self.keys.forget(conn);
        self.held.forget_conn(conn);
        self.book.forget(conn);
    }

    fn stop_waiting(&mut self, id: u64) -> bool {
        let kept = self.store.durable();
        let Some(live) = self.live.get(&id) else {
            return kept;
        };
        let (name, peer) = (live.job.module.name.clone(), live.job.udp_peer);
        match peer {
            None if kept => self.tell_watchers_stopping(id),
            None => {
                log::warn!("queue job {id} ({name}) dropped at shutdown: no journal");
                for conn in self.book.remove(id) {
                    self.refuse(conn, Refusal::ShuttingDown);
                }
            }
            Some(peer) if !kept => {
                log::warn!("udp job {name} from {peer} dropped at shutdown: no journal")
            }
            Some(_) => {}
        }
        if !kept {
            self.take_live(id);
        }
        kept
    }

    fn tick(&mut self, now: Instant, keep: Retention) {
        let expired = self.book.expire(now, keep.time);
        if !expired.is_empty() {
            log::info!("{} unfetched queue results expired", expired.len());
        }
        for id in expired {
            self.removed_now(id, Removal::Expired);
        }
    }

    fn wake(&mut self) {
        self.release_held();
    }

    fn end_turn(&mut self) {
        self.store.end_turn();
        self.release_held();
        self.release_due();
    }

    fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        match (self.store.deadline(), self.next_due()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn unkept(&self, client: Option<IpAddr>) -> (usize, usize, usize) {
        let n = self.unkept_counts(client);
        (n[0], n[1], n[2])
    }

    fn failing(&self) -> Option<String> {
        self.store.failing()
    }

    fn durable(&self) -> bool {
        self.store.durable()
    }

    fn status(&self) -> Status {
        self.store.status()
    }

    fn results_bytes(&self) -> usize {
        self.book.held_bytes()
    }

    fn settled(&self) -> bool {
        self.held.is_empty()
    }

    fn close(&mut self) {
        self.store.close();
    }

    fn shrink(&mut self) {
        self.book.shrink();
        self.shrink_schedule();
        let book = &self.book;
        self.keys.shrink(|id| book.get(id).is_some());
    }

    fn compact(&mut self) {
        self.book.compact();
    }
}
