//! The queue's book: ids handed out by `queue:add`, their results until
//! fetched (bounded in time and bytes), the receipts of recently fetched
//! jobs, and the connections waiting in `queue:get`. A job not finished
//! yet has no entry here: the engine holds it (`job.rs`), and
//! [`Entry::Active`] is what the engine answers for it.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::IpAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::keys::ConnKey;
use crate::queue::attempts::{Again, Attempt};
use crate::queue::ids::{IdKey, ID_SPACE};
use crate::run::receipt::Receipt;

/// How many receipts of fetched jobs `queue:info` can still show.
const FETCHED_RECEIPTS: usize = 1024;

/// A finished job's result, waiting to be fetched.
#[derive(Debug, Clone)]
pub struct Done {
    /// The listener the job was added on.
    pub owner: String,
    /// The client that added it: its results count against its share.
    pub client: Option<IpAddr>,
    pub module: String,
    /// Shared with the queue store's own copy of the result.
    pub answer: Rc<[u8]>,
    pub finished: Instant,
    pub receipt: Receipt,
    /// Every attempt it made, the last one included.
    pub tries: Vec<Attempt>,
    /// A failed job's data and options, for `queue:retry`.
    pub again: Option<Box<Again>>,
}

impl Done {
    /// Bytes it holds against the retention bounds: its answer, and a
    /// failed job's data kept for `queue:retry` (without it, jobs failing
    /// with large data and a short answer would pile up unbounded).
    pub fn held_len(&self) -> usize {
        self.answer.len() + self.again.as_ref().map_or(0, |a| a.data.len())
    }
}

/// A held result whose job failed for good: a row of `queue:failed`
/// (and of any other view of the failed jobs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedResult {
    pub id: u64,
    pub module: String,
    /// The listener it was added on.
    pub owner: String,
    pub attempts: u32,
    pub finished: Instant,
    pub outcome: crate::run::outcome::Outcome,
    /// The last attempt's first stderr line.
    pub stderr: String,
}

/// What is kept of a fetched job for `queue:info`.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub owner: String,
    pub module: String,
    pub receipt: Receipt,
}

/// What became of a finished job's result.
#[derive(Debug)]
pub enum Finished {
    /// Clients wait for it: deliver it to them.
    Watched(Box<Done>, Vec<ConnKey>),
    /// Kept until fetched; these older results of its client were dropped.
    Kept { evicted: Vec<u64> },
}

/// What a queue id is.
#[derive(Debug, Clone, Copy)]
pub enum Entry<'a> {
    /// Accepted and not finished: the engine knows whether it waits or runs.
    Active,
    /// Finished; the answer waits to be fetched.
    Done(&'a Done),
}

/// How many bytes of unfetched results are kept.
#[derive(Debug, Clone, Copy)]
pub struct ResultLimits {
    pub total: usize,
    pub per_client: usize,
}

#[derive(Debug)]
pub struct QueueBook {
    /// Ids are this key's permutation of a counter.
    key: IdKey,
    /// The next counter to make an id from.
    counter: u64,
    /// Results not fetched yet (boxed: the map moves them as it grows).
    entries: HashMap<u64, Box<Done>>,
    /// Connections blocked in `queue:get`, by id.
    watchers: HashMap<u64, Vec<ConnKey>>,
    /// Finished ids, oldest first (some may be gone already).
    done_order: VecDeque<u64>,
    /// Bytes of answers held.
    held_bytes: usize,
    /// ... by client.
    held_by_client: HashMap<IpAddr, usize>,
    /// Receipts of fetched jobs, newest kept.
    fetched: BTreeMap<u64, Fetched>,
}

impl QueueBook {
    pub fn new(key: IdKey) -> Self {
        QueueBook {
            key,
            counter: 1,
            entries: HashMap::new(),
            watchers: HashMap::new(),
            done_order: VecDeque::new(),
            held_bytes: 0,
            held_by_client: HashMap::new(),
            fetched: BTreeMap::new(),
        }
    }

    /// A new id and the counter it was made from; never handed out before
    /// (the counter continues across restarts), nor `taken` (a job held).
    /// `None` once the id space is used up.
    pub fn allocate_id(&mut self, taken: impl Fn(u64) -> bool) -> Option<(u64, u64)> {
        while self.counter < ID_SPACE {
            let counter = self.counter;
            self.counter += 1;
            let id = self.key.permute(counter);
            // 0 is no id; an id of an old journal's sequential ones may
            // still be held.
            let known = self.entries.contains_key(&id) || self.fetched.contains_key(&id);
            if id != 0 && !known && !taken(id) {
                return Some((id, counter));
            }
        }
        None
    }

    /// The next id counter (how many ids were handed out, plus one).
    pub fn next_counter(&self) -> u64 {
        self.counter
    }

    /// After a restart: counters continue from here.
    pub fn continue_from(&mut self, counter: u64) {
        self.counter = self.counter.max(counter).min(ID_SPACE);
    }

    /// Puts a new, recovered or restored result under `id`.
    pub fn restore(&mut self, id: u64, done: Box<Done>) {
        self.hold(&done);
        self.done_order.push_back(id);
        self.entries.insert(id, done);
    }

    fn hold(&mut self, done: &Done) {
        self.held_bytes += done.held_len();
        if let Some(client) = done.client {
            *self.held_by_client.entry(client).or_default() += done.held_len();
        }
    }

    fn release(&mut self, done: &Done) {
        self.held_bytes -= done.held_len();
        if let Some(client) = done.client {
            if let Some(n) = self.held_by_client.get_mut(&client) {
                *n -= done.held_len();
                if *n == 0 {
                    self.held_by_client.remove(&client);
                }
            }
        }
    }

    /// True if a new job of `client` may be added: neither the total nor
    /// the client's share of unfetched results is full.
    pub fn has_room(&self, client: Option<IpAddr>, limits: ResultLimits) -> bool {
        let mine = client.and_then(|c| self.held_by_client.get(&c)).copied();
        self.held_bytes < limits.total.max(1) && mine.unwrap_or(0) < limits.per_client.max(1)
    }

    /// The result of job `id`, if it is held.
    pub fn get(&self, id: u64) -> Option<&Done> {
        self.entries.get(&id).map(|done| &**done)
    }

    /// The results held, by id.
    pub fn results(&self) -> impl Iterator<Item = (u64, &Done)> {
        self.entries.iter().map(|(&id, done)| (id, &**done))
    }

    pub fn held_bytes(&self) -> usize {
        self.held_bytes
    }

    /// The held results whose job failed for good, newest first.
    pub fn failed(&self) -> Vec<FailedResult> {
        let mut failed: Vec<FailedResult> = (self.entries.iter())
            .filter_map(|(&id, done)| failed_row(id, done))
            .collect();
        failed.sort_by(|a, b| b.finished.cmp(&a.finished).then(b.id.cmp(&a.id)));
        failed
    }

    /// How many held results failed for good, and the `limit` that failed
    /// last, newest first: the others are counted, not copied. (Ids are a
    /// keyed permutation, so the highest ids would be any of them.)
    pub fn failed_newest(&self, limit: usize) -> (usize, Vec<FailedResult>) {
        let mut found: Vec<(u64, &Done)> = (self.entries.iter())
            .filter(|(_, done)| {
                done.receipt
                    .outcome
                    .as_ref()
                    .is_some_and(|o| o.is_failure())
            })
            .map(|(&id, done)| (id, &**done))
            .collect();
        let total = found.len();
        let newest_first = |&(id, done): &(u64, &Done)| std::cmp::Reverse((done.finished, id));
        if total > limit {
            found.select_nth_unstable_by_key(limit, newest_first);
            found.truncate(limit);
        }
        found.sort_unstable_by_key(newest_first);
        let rows = found
            .into_iter()
            .filter_map(|(id, done)| failed_row(id, done));
        (total, rows.collect())
    }

    /// The receipt of a job fetched a while ago.
    pub fn fetched_receipt(&self, id: u64) -> Option<&Fetched> {
        self.fetched.get(&id)
    }

    /// Takes a finished result out to be fetched; once its fetch is kept,
    /// [`QueueBook::fetched`] keeps its receipt (or [`QueueBook::restore`]
    /// puts it back).
    pub fn take_done(&mut self, id: u64) -> Option<Box<Done>> {
        let done = self.entries.remove(&id)?;
        self.release(&done);
        Some(done)
    }

    /// A result was delivered: only its receipt stays, for `queue:info`.
    pub fn fetched(&mut self, id: u64, done: Done) {
        self.keep_receipt(id, done);
    }

    fn keep_receipt(&mut self, id: u64, done: Done) {
        let fetched = Fetched {
            owner: done.owner,
            module: done.module,
            receipt: done.receipt,
        };
        self.fetched.insert(id, fetched);
        while self.fetched.len() > FETCHED_RECEIPTS {
            self.fetched.pop_first();
        }
    }

    /// The clients waiting in `queue:get` for this id.
    pub fn watchers(&self, id: u64) -> Vec<ConnKey> {
        self.watchers.get(&id).cloned().unwrap_or_default()
    }

    pub fn watch(&mut self, id: u64, conn: ConnKey) {
        self.watchers.entry(id).or_default().push(conn);
    }

    /// A connection left: it waits for no result any more.
    pub fn forget(&mut self, conn: ConnKey) {
        self.watchers.retain(|_, list| {
            list.retain(|&c| c != conn);
            !list.is_empty()
        });
    }

    pub fn unwatch(&mut self, id: u64, conn: ConnKey) {
        if let Some(list) = self.watchers.get_mut(&id) {
            list.retain(|&c| c != conn);
            if list.is_empty() {
                self.watchers.remove(&id);
            }
        }
    }

    /// Records a job's result. With connections waiting for it, it is
    /// handed back with them, to be delivered (and counted as fetched);
    /// with none, it is kept, and the ids of the same client's older
    /// results dropped to stay within its share and the total are
    /// returned: one client's results never evict another's.
    pub fn finish(&mut self, id: u64, done: Done, limits: ResultLimits) -> Finished {
        let watchers = self.watchers.remove(&id).unwrap_or_default();
        if !watchers.is_empty() {
            return Finished::Watched(Box::new(done), watchers);
        }
        let client = done.client;
        self.restore(id, Box::new(done));
        let mut evicted = Vec::new();
        loop {
            let mine = client.and_then(|c| self.held_by_client.get(&c)).copied();
            let over = self.held_bytes > limits.total || mine.unwrap_or(0) > limits.per_client;
            if !over {
                break;
            }
            let oldest = self
                .done_order
                .iter()
                .copied()
                .find(|old| matches!(self.entries.get(old), Some(d) if d.client == client));
            match oldest {
                Some(old) => {
                    self.drop_done(old);
                    evicted.push(old);
                }
                None => break,
            }
        }
        Finished::Kept { evicted }
    }

    /// Forgets an id (cancelled, or dropped at shutdown). Returns its
    /// waiting connections.
    pub fn remove(&mut self, id: u64) -> Vec<ConnKey> {
        if let Some(done) = self.entries.remove(&id) {
            self.release(&done);
        }
        self.watchers.remove(&id).unwrap_or_default()
    }

    fn drop_done(&mut self, id: u64) -> bool {
        if self.entries.contains_key(&id) {
            self.remove(id);
            return true;
        }
        false
    }

    /// Copies the receipts kept after their fetch into fresh allocations:
    /// made during a load, amid its short-lived data, they would keep its
    /// pages from going back to the kernel (see `daemon/memory.rs`).
    pub fn compact(&mut self) {
        self.fetched = self
            .fetched
            .iter()
            .map(|(&id, f)| (id, f.clone()))
            .collect();
    }

    /// Gives back the capacity a load left (see `daemon/memory.rs`).
    pub fn shrink(&mut self) {
        self.entries.shrink_to_fit();
        self.watchers.shrink_to_fit();
        self.done_order.shrink_to_fit();
        self.held_by_client.shrink_to_fit();
    }

    /// Drops results older than `retention`; returns their ids.
    pub fn expire(&mut self, now: Instant, retention: Duration) -> Vec<u64> {
        let mut expired = Vec::new();
        while let Some(&id) = self.done_order.front() {
            match self.entries.get(&id) {
                Some(done) if now.duration_since(done.finished) < retention => break,
                Some(_) => {
                    self.drop_done(id);
                    expired.push(id);
                }
                None => {}
            }
            self.done_order.pop_front();
        }
        expired
    }
}

/// A held result as a failed job's row, if it failed for good.
fn failed_row(id: u64, done: &Done) -> Option<FailedResult> {
    let outcome = done.receipt.outcome.clone()?;
    outcome.is_failure().then(|| FailedResult {
        id,
        module: done.module.clone(),
        owner: done.owner.clone(),
        attempts: done.receipt.attempts,
        finished: done.finished,
        outcome,
        stderr: done
            .tries
            .last()
            .map(|t| t.stderr.clone())
            .unwrap_or_default(),
    })
}

#[cfg(test)]
#[path = "results_tests.rs"]
mod tests;
