//! The local engine: the queue's book (`results.rs`), the answers held for
//! the store (`held.rs`) and the store itself (the journal, or memory),
//! owned together. It tracks every job it accepted until the job ends, so
//! it tells waiting from running itself; what it emits is in `engine.rs`.
//! The queries (check, get, cancel, info, list, stats) are in `queries.rs`.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use crate::error::Error;
use crate::journal::{Journal, SyncPolicy};

use crate::keys::ConnKey;
use crate::net::protocol::Refusal;
use crate::queue::engine::{Admission, Event, NewJob, Retention, RunJob, Wait};
use crate::queue::held::{Held, HeldAnswers};
use crate::queue::ids::IdKey;
use crate::queue::options::Priority;
use crate::queue::results::{Done, Entry, QueueBook, ResultLimits};
use crate::queue::store::{
    Arrival, Change, Completion, MemoryStore, QueueStore, Recovered, Removal,
};
use crate::run::modules::Module;

/// Where an accepted job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// Handed to the store; not acknowledged, not run yet.
    Unkept,
    /// Kept, and handed to the loop to run.
    Waiting,
    /// Started (cold, or on a warm worker).
    Running,
}

/// A job accepted and not ended.
#[derive(Debug)]
pub(super) struct Live {
    pub job: RunJob,
    pub phase: Phase,
    /// How far it is, as its module last said.
    pub progress: crate::run::progress::Progress,
}

/// The queue kept by this daemon alone.
pub struct LocalEngine {
    pub(super) book: QueueBook,
    pub(super) held: HeldAnswers,
    pub(super) store: Box<dyn QueueStore>,
    pub(super) live: HashMap<u64, Live>,
    pub(super) events: VecDeque<Event>,
    /// Modules whose queued jobs do not start (`pause.rs`).
    pub(super) paused: std::collections::BTreeSet<String>,
}

/// Finds a job's module by name, at start-up.
pub type Lookup<'a> = &'a mut dyn FnMut(&str) -> Option<Rc<Module>>;

impl LocalEngine {
    /// Opens the queue: the journal in `state_dir` (its writer wakes the
    /// loop through `waker`), or memory alone without one; then starts on
    /// what it recovered (see [`LocalEngine::start`]).
    pub fn open(
        state_dir: Option<&Path>,
        sync: SyncPolicy,
        waker: Arc<mio::Waker>,
        lookup: Lookup,
    ) -> Result<LocalEngine, Error> {
        let (store, recovered): (Box<dyn QueueStore>, Recovered) = match state_dir {
            Some(dir) => {
                let (journal, recovered) = Journal::open(dir, sync, waker)?;
                (Box::new(journal), recovered)
            }
            None => (Box::<MemoryStore>::default(), Recovered::default()),
        };
        let id_key = match recovered.id_key.clone() {
            Some(key) => key,
            None => {
                let mut key = [0u8; 32];
                crate::journal::frame::fill_random(&mut key)
                    .map_err(|e| Error::Io("cannot make an id key".into(), e))?;
                IdKey(key)
            }
        };
        Ok(LocalEngine::start(store, recovered, id_key, lookup))
    }

    /// Takes over what the store recovered: waiting jobs wait again, jobs
    /// that were running run again (at-least-once), each as a `Run` event;
    /// unfetched results are back under their ids, and ids continue after
    /// the highest ever handed out. `lookup` finds a job's module (a job
    /// whose module is gone is dropped).
    pub fn start(
        store: Box<dyn QueueStore>,
        recovered: Recovered,
        id_key: IdKey,
        lookup: Lookup,
    ) -> LocalEngine {
        let mut engine = LocalEngine {
            book: QueueBook::new(id_key),
            held: HeldAnswers::default(),
            store,
            live: HashMap::new(),
            events: VecDeque::new(),
            paused: Default::default(),
        };
        engine.recover_paused(recovered.paused);
        engine.book.continue_from(recovered.next_counter);
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
            engine.book.restore(result.id, Entry::Done(Box::new(done)));
        }
        let (mut waiting, mut rerun) = (0, 0);
        for found in recovered.jobs {
            let id = found.id;
            let Some(module) = lookup(&found.module) else {
                log::warn!(
                    "journal: job {id} of module {} dropped: the module is gone",
                    found.module
                );
                engine.removed_now(id, Removal::Dropped);
                continue;
            };
            let job = RunJob {
                id,
                module,
                data: found.data,
                udp_peer: match found.arrival {
                    Arrival::Queue => None,
                    Arrival::Udp(peer) => Some(peer),
                },
                owner: found.owner,
                client: found.client,
                attempts: found.attempts,
                priority: Priority::Normal,
                timeout: None,
                added_at: found.added_at,
                created: now,
            };
            if found.arrival == Arrival::Queue {
                engine.book.restore(id, Entry::Active);
            }
            engine.run(job);
            if found.attempts > 0 {
                rerun += 1;
            } else {
                waiting += 1;
            }
        }
        if waiting + rerun + results > 0 {
            log::info!(
                "journal: recovered {waiting} waiting jobs, {rerun} interrupted jobs to run again, {results} unfetched results; id counter {}",
                engine.book.next_counter()
            );
        }
        engine
    }

    /// Hands a kept job to the loop to run.
    fn run(&mut self, job: RunJob) {
        self.events.push_back(Event::Run(job.clone()));
        self.live.insert(job.id, Live::new(job, Phase::Waiting));
    }

    pub(super) fn removed_now(&mut self, id: u64, why: Removal) {
        self.live.remove(&id);
        self.store.submit(Change::Removed { id, why }, None);
    }

    pub(super) fn answer(&mut self, conn: ConnKey, answer: impl Into<Rc<[u8]>>) {
        let answer = answer.into();
        self.events.push_back(Event::Answer { conn, answer });
    }

    pub(super) fn refuse(&mut self, conn: ConnKey, refusal: Refusal) {
        self.events.push_back(Event::Refuse { conn, refusal });
    }

    /// Jobs accepted and not kept yet: in all, of `client`, datagrams, and
    /// their data's bytes in all and of `client`.
    pub(super) fn unkept_counts(&self, client: Option<IpAddr>) -> [usize; 5] {
        let mut n = [0; 5];
        for live in self.live.values().filter(|l| l.phase == Phase::Unkept) {
            let mine = client.is_some() && live.job.client == client;
            n[0] += 1;
            n[1] += usize::from(mine);
            n[2] += usize::from(live.job.udp_peer.is_some());
            n[3] += live.job.data.len();
            n[4] += if mine { live.job.data.len() } else { 0 };
        }
        n
    }

    /// Admits a queue job (or, with `udp_peer`, a datagram's job) under a
    /// new id: it is handed to the store, and acknowledged and run only
    /// once the store has kept it.
    pub(super) fn admit(
        &mut self,
        job: NewJob,
        room: Admission,
        keep: Retention,
    ) -> Result<u64, Refusal> {
        if self.store.failing().is_some() {
            return Err(Refusal::JournalFailed);
        }
        let [unkept, mine_unkept, _, unkept_bytes, mine_unkept_bytes] =
            self.unkept_counts(job.client);
        if room.waiting + unkept >= room.max_waiting {
            return Err(Refusal::Busy);
        }
        if job.client.is_some() && room.client_waiting + mine_unkept >= room.max_waiting_per_client
        {
            return Err(Refusal::Busy);
        }
        let mine = |l: &&Live| l.phase == Phase::Unkept && l.job.module.name == job.module.name;
        if room.module_full(|| self.live.values().filter(mine).count()) {
            return Err(Refusal::Busy);
        }
        let (held, mine) = (
            room.data_bytes + unkept_bytes,
            room.client_data_bytes + mine_unkept_bytes,
        );
        let len = job.data.len();
        if held + len > room.max_waiting_bytes || mine + len > room.max_waiting_bytes_per_client {
            log::warn!(
                "job of {len} bytes refused: jobs' data held {held} bytes, this client's {mine}"
            );
            return Err(Refusal::Busy);
        }
        let limits = ResultLimits {
            total: keep.total,
            per_client: keep.per_client,
        };
        if job.udp_peer.is_none() && !self.book.has_room(job.client, limits) {
            log::warn!(
                "queue:add refused: unfetched results fill this client's share or the total"
            );
            return Err(Refusal::Busy);
        }
        let Some((id, counter)) = self.book.allocate_id() else {
            log::error!("queue ids used up");
            return Err(Refusal::Busy);
        };
        let arrival = job.udp_peer.map_or(Arrival::Queue, Arrival::Udp);
        let data: Rc<[u8]> = job.data.into();
        let added_at = SystemTime::now();
        let change = Change::Added {
            id,
            counter,
            owner: job.owner.clone(),
            client: job.client,
            arrival,
            module: job.module.name.clone(),
            data: data.clone(),
            added_at,
        };
        if arrival == Arrival::Queue {
            self.book.restore(id, Entry::Active);
        }
        let ticket = self.held.hold(Held::Added { id, conn: job.conn });
        self.store.submit(change, Some(ticket));
        if let Some(conn) = job.conn {
            self.events.push_back(Event::Wait {
                conn,
                on: Wait::Store,
            });
        }
        let run = RunJob {
            id,
            module: job.module,
            data,
            udp_peer: job.udp_peer,
            owner: job.owner,
            client: job.client,
            attempts: 0,
            priority: job.priority,
            timeout: None,
            added_at,
            created: Instant::now(),
        };
        self.live.insert(id, Live::new(run, Phase::Unkept));
        Ok(id)
    }

    /// The store reported progress: what waited for a kept change goes
    /// ahead; what waited for a failed one is refused.
    pub(super) fn release_held(&mut self) {
        for (ticket, completion) in self.store.completions() {
            let Some(held) = self.held.take(ticket) else {
                continue;
            };
            match held {
                Held::Added { id, conn } => self.added_completed(id, conn, completion),
                Held::Removed {
                    id,
                    done,
                    conns,
                    why,
                } => self.removal_completed((id, done, conns, why), completion),
                Held::Paused(pause) => self.pause_completed(pause, completion),
            }
        }
    }

    fn added_completed(&mut self, id: u64, conn: Option<ConnKey>, done: Completion) {
        let ours = self.live.get(&id).is_some_and(|l| l.phase == Phase::Unkept);
        if let Completion::Refused(why) | Completion::Unknown(why) = &done {
            log::warn!("job {id} not kept by the queue store: {why}");
            if ours {
                self.live.remove(&id);
                self.book.remove(id);
            }
            if let Some(conn) = conn {
                self.refuse(conn, Refusal::JournalFailed);
            }
            return;
        }
        if let Some(live) = self.live.get_mut(&id).filter(|_| ours) {
            live.phase = Phase::Waiting;
            let job = live.job.clone();
            self.events.push_back(Event::Run(job));
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
            let on = Wait::Store;
            self.events.push_back(Event::Wait { conn, on });
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
            self.book.restore(id, Entry::Done(done));
            for conn in conns {
                self.refuse(conn, Refusal::JournalFailed);
            }
            return;
        }
        // Shared by every waiting client, not copied for each.
        let answer: Rc<[u8]> = match why {
            Removal::Fetched => {
                let answer = done.answer.clone();
                self.book.fetched(id, *done);
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
}

#[cfg(test)]
#[path = "local_tests.rs"]
mod tests;
