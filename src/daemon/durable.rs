//! The daemon's use of the queue store (`queue/store.rs`): what is told to
//! it when, answers and jobs held until their change is kept, and taking
//! over what the store recovered at start.

use std::rc::Rc;
use std::time::{Instant, SystemTime};

use crate::daemon::Daemon;
use crate::keys::{ConnKey, JobKey};
use crate::net::protocol::Refusal;
use crate::queue::held::Held;
use crate::queue::results::{Done, Entry, Finished, ResultLimits};
use crate::queue::store::{Arrival, Change, Completion, Recovered, Removal};
use crate::run::job::{Job, Origin};
use crate::run::modules::Module;
use crate::run::outcome::Outcome;
use crate::run::receipt::Receipt;

impl Daemon {
    /// Journals that a job's run `attempt` started.
    pub(super) fn journal_started(&mut self, id: u64, attempt: u32) {
        self.store.submit(Change::Started { id, attempt }, None);
    }

    pub(super) fn journal_removed(&mut self, id: u64, why: Removal) {
        self.store.submit(Change::Removed { id, why }, None);
    }

    /// Admits a queue job (or, with `udp_peer`, a UDP job) under a new id:
    /// it is handed to the store, and acknowledged and started only once
    /// the store has kept it.
    pub(super) fn admit_journaled(
        &mut self,
        module: Rc<Module>,
        data: Vec<u8>,
        udp_peer: Option<std::net::SocketAddr>,
        conn: Option<ConnKey>,
    ) -> Result<u64, Refusal> {
        if self.store.failing().is_some() {
            return Err(Refusal::JournalFailed);
        }
        if self.jobs.waiting() >= self.settings.max_waiting {
            return Err(Refusal::Busy);
        }
        let client = match (udp_peer, conn) {
            (Some(peer), _) => Some(peer.ip()),
            (None, Some(conn)) => self.conns.get(conn).map(|c| c.peer.ip()),
            (None, None) => None,
        };
        if client
            .is_some_and(|ip| self.jobs.waiting_for(ip) >= self.settings.max_waiting_per_client)
        {
            return Err(Refusal::Busy);
        }
        let (held, mine) = self.jobs.data_bytes(client);
        if held + data.len() > self.settings.max_waiting_bytes
            || mine + data.len() > self.settings.max_waiting_bytes_per_client
        {
            log::warn!(
                "job of {} bytes refused: jobs' data held {held} bytes, this client's {mine}",
                data.len()
            );
            return Err(Refusal::Busy);
        }
        if udp_peer.is_none() && !self.queue.has_room(client, self.result_limits()) {
            log::warn!(
                "queue:add refused: unfetched results fill this client's share or the total"
            );
            return Err(Refusal::Busy);
        }
        let owner = conn
            .and_then(|c| self.conns.get(c))
            .map(|c| self.owner_of(c.listener))
            .unwrap_or_default();
        let Some((id, counter)) = self.queue.allocate_id() else {
            log::error!("queue ids used up");
            return Err(Refusal::Busy);
        };
        let (origin, arrival) = match udp_peer {
            Some(peer) => (Origin::Udp { peer }, Arrival::Udp(peer)),
            None => (Origin::Queue { id }, Arrival::Queue),
        };
        let data: Rc<[u8]> = data.into();
        let mut job = Job::journaled(module, origin, id, data.clone());
        job.client = client;
        job.owner = owner.clone();
        let change = Change::Added {
            id,
            counter,
            owner,
            client,
            arrival,
            module: job.module.name.clone(),
            data,
            added_at: job.added_at,
        };
        let key = self
            .jobs
            .add_pending(job, self.settings.max_waiting)
            .map_err(|_| Refusal::Busy)?;
        if arrival == Arrival::Queue {
            self.queue.restore(id, Entry::Active(key));
        }
        let ticket = self.held.hold(Held::Added { job: key, id, conn });
        self.store.submit(change, Some(ticket));
        if let Some(conn) = conn.and_then(|c| self.conns.get_mut(c)) {
            conn.await_store();
        }
        Ok(id)
    }

    pub(super) fn result_limits(&self) -> ResultLimits {
        ResultLimits {
            total: self.settings.result_retention_bytes,
            per_client: self.settings.result_retention_bytes_per_client,
        }
    }

    /// End of a turn: the store takes the turn's changes (the in-memory
    /// store completes them at once).
    pub(super) fn commit(&mut self) {
        self.store.end_turn();
        self.release_held();
    }

    /// The store reported progress: what waited for a kept change goes
    /// ahead; what waited for a failed one is refused.
    pub(super) fn release_held(&mut self) {
        for (ticket, completion) in self.store.completions() {
            let Some(held) = self.held.take(ticket) else {
                continue;
            };
            match held {
                Held::Added { job, id, conn } => self.added_completed(job, id, conn, completion),
                Held::Removed {
                    id,
                    done,
                    conns,
                    why,
                } => self.removal_completed((id, done, conns, why), completion),
            }
        }
    }

    fn added_completed(&mut self, job: JobKey, id: u64, conn: Option<ConnKey>, done: Completion) {
        let ours = self.jobs.get(job).is_some_and(|j| j.id == Some(id));
        if let Completion::Refused(why) | Completion::Unknown(why) = &done {
            log::warn!("job {id} not kept by the queue store: {why}");
            if ours {
                self.jobs.remove(job);
                self.queue.remove(id);
            }
            if let Some(conn) = conn {
                self.refuse(conn, Refusal::JournalFailed);
            }
            return;
        }
        if ours {
            self.jobs.release(job);
        }
        if let Some(conn) = conn {
            self.answer(conn, format!("id:{id}").into_bytes());
        }
    }

    /// Takes a result out once its removal is kept: a fetched one goes to
    /// its clients once the "fetched" record is on disk, a cancelled one is
    /// answered `cancelled: result dropped` once the "cancelled" record is;
    /// until then they wait, as `queue:add` waits for its record, so a
    /// crash never brings back a result that was delivered or dropped.
    pub(super) fn remove_when_kept(
        &mut self,
        id: u64,
        done: Box<Done>,
        conns: Vec<ConnKey>,
        why: Removal,
    ) {
        let held = Held::Removed {
            id,
            done,
            conns: conns.clone(),
            why,
        };
        let ticket = self.held.hold(held);
        self.store.submit(Change::Removed { id, why }, Some(ticket));
        for conn in conns {
            if let Some(conn) = self.conns.get_mut(conn) {
                conn.await_store();
            }
        }
    }

    fn removal_completed(&mut self, held: (u64, Box<Done>, Vec<ConnKey>, Removal), c: Completion) {
        let (id, done, conns, why) = held;
        if let Completion::Refused(failed) | Completion::Unknown(failed) = &c {
            // Not done: the result stays, to be fetched or cancelled again.
            let what = if why == Removal::Fetched {
                "fetched"
            } else {
                "cancelled"
            };
            log::warn!("queue result {id} not {what}: the queue store failed: {failed}");
            self.queue.restore(id, Entry::Done(done));
            for conn in conns {
                self.refuse(conn, Refusal::JournalFailed);
            }
            return;
        }
        // Shared by every waiting client, not copied for each.
        let answer: Rc<[u8]> = match why {
            Removal::Fetched => {
                let answer = done.answer.clone();
                self.queue.fetched(id, *done);
                answer
            }
            _ => {
                log::info!("queue job {id}: cancelled: result dropped");
                Rc::from(&b"cancelled: result dropped"[..])
            }
        };
        for conn in conns {
            self.answer(conn, answer.clone());
        }
    }

    /// A connection waiting for its `id:<n>` closed: nobody to answer.
    pub(super) fn forget_ack(&mut self, conn: ConnKey) {
        self.held.forget_conn(conn);
    }

    /// Takes over what the store recovered: waiting jobs wait again, jobs
    /// that were running run again (at-least-once), unfetched results are
    /// back under their ids, and ids continue after the highest ever
    /// handed out.
    pub(super) fn recover(&mut self, recovered: Recovered) {
        self.queue.continue_from(recovered.next_counter);
        let (now, wall) = (Instant::now(), SystemTime::now());
        let results = recovered.results.len();
        for result in recovered.results {
            let age = wall.duration_since(result.finished_at).unwrap_or_default();
            let done = Done {
                owner: result.owner,
                client: result.client,
                module: result.module,
                answer: result.answer,
                finished: now.checked_sub(age).unwrap_or(now),
                receipt: result.receipt,
            };
            self.queue.restore(result.id, Entry::Done(Box::new(done)));
        }
        let (mut waiting, mut rerun) = (0, 0);
        for found in recovered.jobs {
            let id = found.id;
            let Some(module) = self.modules.lookup(&found.module) else {
                log::warn!(
                    "journal: job {id} of module {} dropped: the module is gone",
                    found.module
                );
                self.journal_removed(id, Removal::Dropped);
                continue;
            };
            let origin = match found.arrival {
                Arrival::Queue => Origin::Queue { id },
                Arrival::Udp(peer) => Origin::Udp { peer },
            };
            let mut job = Job::journaled(module, origin, id, found.data);
            job.owner = found.owner;
            job.client = found.client;
            job.attempts = found.attempts;
            job.added_at = found.added_at;
            let key = self.jobs.add_recovered(job);
            if found.arrival == Arrival::Queue {
                self.queue.restore(id, Entry::Active(key));
            }
            if found.attempts > 0 {
                rerun += 1;
            } else {
                waiting += 1;
            }
        }
        if waiting + rerun + results > 0 {
            log::info!(
                "journal: recovered {waiting} waiting jobs, {rerun} interrupted jobs to run again, {results} unfetched results; id counter {}",
                self.queue.next_counter()
            );
        }
    }

    /// Tells the store how a queue or UDP job ended, and delivers a queue
    /// result to the clients waiting in `queue:get`.
    pub(super) fn record_finished(&mut self, job: &Job, answer: &[u8], receipt: Receipt) {
        let Some(id) = job.id else { return };
        match job.origin {
            Origin::Udp { .. } => self.journal_removed(id, Removal::Done),
            Origin::Queue { .. } if receipt.outcome == Some(Outcome::Cancelled) => {
                self.journal_removed(id, Removal::Cancelled);
                let answer: Rc<[u8]> = answer.into();
                for conn in self.queue.remove(id) {
                    self.answer(conn, answer.clone());
                }
            }
            Origin::Queue { .. } => {
                let answer: Rc<[u8]> = answer.into();
                let done = Done {
                    owner: job.owner.clone(),
                    client: job.client,
                    module: job.module.name.clone(),
                    answer: answer.clone(),
                    finished: Instant::now(),
                    receipt: receipt.clone(),
                };
                let evicted = match self.queue.finish(id, done, self.result_limits()) {
                    Finished::Watched(done, watchers) => {
                        return self.remove_when_kept(id, done, watchers, Removal::Fetched);
                    }
                    Finished::Kept { evicted } => evicted,
                };
                let change = Change::Finished {
                    id,
                    owner: job.owner.clone(),
                    client: job.client,
                    module: job.module.name.clone(),
                    answer: answer.clone(),
                    receipt,
                    finished_at: SystemTime::now(),
                };
                self.store.submit(change, None);
                for old in evicted {
                    log::info!(
                        "queue result {old} dropped: its client's results over its share ({} bytes) or the total ({} bytes)",
                        self.settings.result_retention_bytes_per_client,
                        self.settings.result_retention_bytes
                    );
                    self.journal_removed(old, Removal::Expired);
                }
            }
            Origin::Tcp { .. } => {}
        }
    }
}
