//! The queue's book: ids handed out by `queue:add`, their results until
//! fetched (bounded in time and bytes), the receipts of recently fetched
//! jobs, and the connections waiting in `queue:get`.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::keys::{ConnKey, JobKey};
use crate::run::receipt::Receipt;

/// How many receipts of fetched jobs `queue:info` can still show.
const FETCHED_RECEIPTS: usize = 1024;

/// A finished job's result, waiting to be fetched.
#[derive(Debug, Clone)]
pub struct Done {
    pub module: String,
    /// Shared with the queue store's own copy of the result.
    pub answer: Rc<[u8]>,
    pub finished: Instant,
    pub receipt: Receipt,
}

/// A queue id's entry.
#[derive(Debug)]
pub enum Entry {
    /// Pending, waiting or running as this job.
    Active(JobKey),
    /// Finished; the answer waits to be fetched. Boxed, so that the many
    /// active entries stay small.
    Done(Box<Done>),
}

#[derive(Debug)]
pub struct QueueBook {
    next_id: u64,
    entries: HashMap<u64, Entry>,
    /// Connections blocked in `queue:get`, by id.
    watchers: HashMap<u64, Vec<ConnKey>>,
    /// Finished ids, oldest first (some may be gone already).
    done_order: VecDeque<u64>,
    /// Bytes of answers held.
    held_bytes: usize,
    /// Receipts of fetched jobs, newest kept.
    fetched: BTreeMap<u64, (String, Receipt)>,
}

impl Default for QueueBook {
    fn default() -> Self {
        QueueBook {
            next_id: 1,
            entries: HashMap::new(),
            watchers: HashMap::new(),
            done_order: VecDeque::new(),
            held_bytes: 0,
            fetched: BTreeMap::new(),
        }
    }
}

impl QueueBook {
    /// A new id, never handed out before (ids continue across restarts).
    pub fn allocate_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    pub fn next_id(&self) -> u64 {
        self.next_id
    }

    /// After a restart: ids continue from here.
    pub fn continue_from(&mut self, next_id: u64) {
        self.next_id = self.next_id.max(next_id);
    }

    /// Gives the job a new id.
    pub fn add(&mut self, job: JobKey) -> u64 {
        let id = self.allocate_id();
        self.entries.insert(id, Entry::Active(job));
        id
    }

    /// Puts a recovered job or result back under its old id.
    pub fn restore(&mut self, id: u64, entry: Entry) {
        self.continue_from(id + 1);
        if let Entry::Done(done) = &entry {
            self.held_bytes += done.answer.len();
            self.done_order.push_back(id);
        }
        self.entries.insert(id, entry);
    }

    pub fn get(&self, id: u64) -> Option<&Entry> {
        self.entries.get(&id)
    }

    pub fn entries(&self) -> impl Iterator<Item = (&u64, &Entry)> {
        self.entries.iter()
    }

    pub fn held_bytes(&self) -> usize {
        self.held_bytes
    }

    /// The receipt of a job fetched a while ago.
    pub fn fetched_receipt(&self, id: u64) -> Option<&(String, Receipt)> {
        self.fetched.get(&id)
    }

    /// Takes a finished answer: it is fetched, gone afterwards but for its receipt.
    pub fn take_done(&mut self, id: u64) -> Option<Vec<u8>> {
        match self.entries.remove(&id) {
            Some(Entry::Done(done)) => {
                let done = *done;
                self.held_bytes -= done.answer.len();
                self.keep_receipt(id, done.module, done.receipt);
                Some(done.answer.to_vec())
            }
            Some(active) => {
                self.entries.insert(id, active);
                None
            }
            None => None,
        }
    }

    fn keep_receipt(&mut self, id: u64, module: String, receipt: Receipt) {
        self.fetched.insert(id, (module, receipt));
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

    pub fn unwatch(&mut self, id: u64, conn: ConnKey) {
        if let Some(list) = self.watchers.get_mut(&id) {
            list.retain(|&c| c != conn);
            if list.is_empty() {
                self.watchers.remove(&id);
            }
        }
    }

    /// Records a job's result. Returns the connections waiting for it (they
    /// get it now and it counts as fetched; with none, it is kept), and the
    /// ids of older results dropped to stay within `max_bytes`.
    pub fn finish(&mut self, id: u64, done: Done, max_bytes: usize) -> (Vec<ConnKey>, Vec<u64>) {
        let watchers = self.watchers.remove(&id).unwrap_or_default();
        if !watchers.is_empty() {
            self.entries.remove(&id);
            self.keep_receipt(id, done.module, done.receipt);
            return (watchers, Vec::new());
        }
        self.held_bytes += done.answer.len();
        self.entries.insert(id, Entry::Done(Box::new(done)));
        self.done_order.push_back(id);
        let mut evicted = Vec::new();
        while self.held_bytes > max_bytes {
            let Some(old) = self.done_order.pop_front() else {
                break;
            };
            if self.drop_done(old) {
                evicted.push(old);
            }
        }
        (Vec::new(), evicted)
    }

    /// Forgets an id (cancelled, or dropped at shutdown). Returns its
    /// waiting connections.
    pub fn remove(&mut self, id: u64) -> Vec<ConnKey> {
        if let Some(Entry::Done(done)) = self.entries.remove(&id) {
            self.held_bytes -= done.answer.len();
        }
        self.watchers.remove(&id).unwrap_or_default()
    }

    fn drop_done(&mut self, id: u64) -> bool {
        if matches!(self.entries.get(&id), Some(Entry::Done(_))) {
            self.remove(id);
            return true;
        }
        false
    }

    /// Drops results older than `retention`; returns their ids.
    pub fn expire(&mut self, now: Instant, retention: Duration) -> Vec<u64> {
        let mut expired = Vec::new();
        while let Some(&id) = self.done_order.front() {
            match self.entries.get(&id) {
                Some(Entry::Done(done)) if now.duration_since(done.finished) < retention => break,
                Some(Entry::Done(_)) => {
                    self.drop_done(id);
                    expired.push(id);
                }
                _ => {}
            }
            self.done_order.pop_front();
        }
        expired
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::Key;

    fn job(n: usize) -> JobKey {
        JobKey::new(n)
    }

    fn conn(n: usize) -> ConnKey {
        ConnKey::new(n)
    }

    fn done(answer: &[u8], finished: Instant) -> Done {
        Done {
            module: "m".into(),
            answer: Rc::from(answer),
            finished,
            receipt: Receipt::default(),
        }
    }

    #[test]
    fn results_are_kept_until_fetched_or_expired() {
        let now = Instant::now();
        let mut book = QueueBook::default();
        let (a, b) = (book.add(job(10)), book.add(job(11)));
        assert_eq!((a, b), (1, 2));
        assert!(matches!(book.get(a), Some(Entry::Active(k)) if *k == job(10)));
        assert!(book.take_done(a).is_none());
        assert!(book.finish(a, done(b"A", now), 100).0.is_empty());
        assert_eq!(book.take_done(a).unwrap(), b"A");
        assert!(book.get(a).is_none());
        assert!(book.fetched_receipt(a).is_some(), "the receipt stays");
        book.finish(b, done(b"B", now), 100);
        assert!(book
            .expire(now + Duration::from_secs(5), Duration::from_secs(10))
            .is_empty());
        assert_eq!(
            book.expire(now + Duration::from_secs(11), Duration::from_secs(10)),
            vec![b]
        );
        assert!(book.get(b).is_none());
        assert_eq!(book.held_bytes(), 0);
    }

    #[test]
    fn held_bytes_are_bounded_by_dropping_the_oldest() {
        let now = Instant::now();
        let mut book = QueueBook::default();
        let ids: Vec<u64> = (0..3).map(|k| book.add(job(k))).collect();
        assert!(book.finish(ids[0], done(&[0; 40], now), 100).1.is_empty());
        assert!(book.finish(ids[1], done(&[0; 40], now), 100).1.is_empty());
        assert_eq!(
            book.finish(ids[2], done(&[0; 40], now), 100).1,
            vec![ids[0]]
        );
        assert_eq!(book.held_bytes(), 80);
    }

    #[test]
    fn waiting_getters_take_the_answer() {
        let now = Instant::now();
        let mut book = QueueBook::default();
        let id = book.add(job(3));
        book.watch(id, conn(7));
        book.watch(id, conn(8));
        book.unwatch(id, conn(7));
        assert_eq!(book.finish(id, done(b"x", now), 100).0, vec![conn(8)]);
        assert!(book.get(id).is_none());
    }

    #[test]
    fn restored_ids_are_never_handed_out_again() {
        let mut book = QueueBook::default();
        book.restore(41, Entry::Active(job(0)));
        assert_eq!(book.add(job(1)), 42);
        book.continue_from(10);
        assert_eq!(book.allocate_id(), 43);
    }
}
