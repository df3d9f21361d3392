//! The local engine: the queue's book (`results.rs`), the answers held for
//! the store (`held.rs`) and the store itself (the journal, or memory),
//! owned together. It tracks every job it accepted until the job ends, so
//! it tells waiting from running itself; what it emits is in `engine.rs`.
//! The queries (check, get, cancel, info, list, stats) are in `queries.rs`.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use crate::error::Error;
use crate::journal::{Journal, SyncPolicy};

use crate::keys::ConnKey;
use crate::net::protocol::Refusal;
use crate::queue::engine::{Event, Wait};
use crate::queue::held::{Held, HeldAnswers};
use crate::queue::ids::IdKey;
use crate::queue::job::{Class, Classes};
use crate::queue::keys::Keys;
use crate::queue::results::{Done, Entry, QueueBook};
use crate::queue::store::{
    Arrival, Change, Completion, MemoryStore, QueueStore, Recovered, Removal,
};
use crate::queue::tally::Tally;

pub(super) use crate::queue::job::{Live, Phase};

/// The queue kept by this daemon alone.
pub struct LocalEngine {
    pub(super) book: QueueBook,
    pub(super) held: HeldAnswers,
    pub(super) store: Box<dyn QueueStore>,
    pub(super) live: HashMap<u64, Live>,
    pub(super) events: VecDeque<Event>,
    /// Jobs held for later: (run time in Unix ms, id), earliest on top.
    /// An entry whose job was cancelled or rescheduled is skipped when due.
    pub(super) due: BinaryHeap<Reverse<(u64, u64)>>,
    /// Counts of the jobs in a held phase.
    pub(super) tally: Tally,
    /// The keys of held jobs.
    pub(super) keys: Keys,
    /// Modules whose queued jobs do not start (`pause.rs`).
    pub(super) paused: std::collections::BTreeSet<String>,
    /// What the held jobs share (`job.rs`).
    pub(super) classes: Classes,
    /// When the engine started: the jobs taken over then wait from then.
    pub(super) start: Instant,
}

/// Now, in Unix milliseconds, the clock run times are kept in.
pub(super) fn unix_ms_now() -> u64 {
    crate::journal::live::unix_ms(SystemTime::now())
}

pub use crate::queue::engine::Lookup;

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
            due: BinaryHeap::new(),
            tally: Tally::default(),
            keys: Keys::default(),
            paused: Default::default(),
            classes: Classes::default(),
            start: Instant::now(),
        };
        engine.recover_paused(recovered.paused);
        engine.book.continue_from(recovered.next_counter);
        let (now, wall) = (Instant::now(), SystemTime::now());
        let results = recovered.results.len();
        for result in recovered.results {
            if let Some(key) = &result.key {
                engine.hold_key(&result.owner, key, result.id);
            }
            let age = wall.duration_since(result.finished_at).unwrap_or_default();
            let done = Done {
                owner: result.owner,
                client: result.client,
                module: result.module,
                answer: result.answer,
                finished: now.checked_sub(age).unwrap_or(now),
                receipt: result.receipt,
                tries: result.tries,
                again: result.again,
            };
            engine.book.restore(result.id, Box::new(done));
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
            let class = engine.classes.get(Class {
                module,
                owner: found.owner,
                client: found.client,
                priority: found.options.priority.unwrap_or_default(),
                timeout_ms: found.options.timeout_ms,
                retries: found.options.retries.unwrap_or(0),
            });
            let mut live = Live::new(class, found.data, found.added_at, Phase::Waiting);
            live = live.recovered();
            live.attempts = found.attempts;
            live.set_udp_peer(match found.arrival {
                Arrival::Queue => None,
                Arrival::Udp(peer) => Some(peer),
            });
            // An attempt cut off by the stop runs again at once; a job
            // waiting for a retry or for its time keeps its time (a past
            // one is due at once).
            let cut_off = found.attempts as usize > found.tries.len();
            let run_at = match found.tries.last() {
                _ if cut_off => None,
                Some(last) => last.retry_at_ms,
                None => found.options.run_at_ms,
            };
            live.set_tries(found.tries);
            if let Some(key) = found.options.key {
                engine.hold_key(live.owner(), &key, id);
                live.set_key(Some(key.into()));
            }
            match run_at {
                Some(at) if at > unix_ms_now() => engine.schedule(id, live, at),
                _ => engine.run(id, live),
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
                engine.book.next_counter()
            );
        }
        engine
    }

    /// Hands a kept job to the loop to run.
    pub(super) fn run(&mut self, id: u64, mut live: Live) {
        self.events
            .push_back(Event::Run(live.run_job(id, self.start)));
        live.phase = Phase::Waiting;
        self.put_live(id, live);
    }

    /// Keeps `live` under `id`, counted if the engine holds it.
    pub(super) fn put_live(&mut self, id: u64, live: Live) {
        if live.phase.held() {
            self.tally.add(&live);
        }
        if let Some(old) = self.live.insert(id, live) {
            if old.phase.held() {
                self.tally.remove(&old);
            }
        }
    }

    /// Takes job `id` out of the live jobs (and out of the tally).
    pub(super) fn take_live(&mut self, id: u64) -> Option<Live> {
        let live = self.live.remove(&id)?;
        if live.phase.held() {
            self.tally.remove(&live);
        }
        Some(live)
    }

    /// Moves job `id` to `phase`, keeping the tally.
    pub(super) fn set_phase(&mut self, id: u64, phase: Phase) {
        if let Some(mut live) = self.take_live(id) {
            live.phase = phase;
            self.put_live(id, live);
        }
    }

    /// What queue id `id` is: a job not finished (held here; a datagram's
    /// job has no queue id), or a result.
    pub(super) fn entry(&self, id: u64) -> Option<Entry<'_>> {
        if let Some(done) = self.book.get(id) {
            return Some(Entry::Done(done));
        }
        let queued = self.live.get(&id)?.udp_peer().is_none();
        queued.then_some(Entry::Active)
    }

    pub(super) fn removed_now(&mut self, id: u64, why: Removal) {
        self.take_live(id);
        self.store.submit(Change::Removed { id, why }, None);
    }

    pub(super) fn answer(&mut self, conn: ConnKey, answer: impl Into<Rc<[u8]>>) {
        let answer = answer.into();
        self.events.push_back(Event::Answer { conn, answer });
    }

    pub(super) fn refuse(&mut self, conn: ConnKey, refusal: Refusal) {
        self.events.push_back(Event::Refuse { conn, refusal });
    }

    /// The store reported progress: what waited for a kept change goes
    /// ahead; what waited for a failed one is refused.
    pub(super) fn release_held(&mut self) {
        for (ticket, completion) in self.store.completions() {
            let Some(held) = self.held.take(ticket) else {
                continue;
            };
            match held {
                Held::Added {
                    id,
                    conn,
                    run_at_ms,
                } => self.added_completed(id, conn, run_at_ms, completion),
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

    fn added_completed(
        &mut self,
        id: u64,
        conn: Option<ConnKey>,
        run_at_ms: Option<u64>,
        done: Completion,
    ) {
        let ours = self.live.get(&id).is_some_and(|l| l.phase == Phase::Unkept);
        let kept = !matches!(done, Completion::Refused(_) | Completion::Unknown(_));
        self.duplicates_kept(id, kept);
        if let Completion::Refused(why) | Completion::Unknown(why) = &done {
            log::warn!("job {id} not kept by the queue store: {why}");
            if ours {
                self.take_live(id);
                self.book.remove(id);
            }
            if let Some(conn) = conn {
                self.refuse(conn, Refusal::JournalFailed);
            }
            return;
        }
        if let Some(live) = self.take_live(id).filter(|_| ours) {
            match run_at_ms {
                Some(at) if at > unix_ms_now() => self.schedule(id, live, at),
                _ => self.run(id, live),
            }
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
            self.book.restore(id, done);
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
pub(in crate::queue) mod tests;
