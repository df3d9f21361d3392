//! The queue's book: ids handed out by `queue:add`, their results until
//! fetched, and the connections waiting in `queue:get`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::job::JobKey;

/// A queue id's entry.
#[derive(Debug)]
pub enum Entry {
    /// Waiting or running as this job.
    Active(JobKey),
    /// Finished; the answer waits to be fetched.
    Done { answer: Vec<u8>, finished: Instant },
}

#[derive(Debug)]
pub struct QueueBook {
    next_id: u64,
    entries: HashMap<u64, Entry>,
    /// Connections blocked in `queue:get`, by id.
    watchers: HashMap<u64, Vec<usize>>,
}

impl Default for QueueBook {
    fn default() -> Self {
        QueueBook {
            next_id: 1,
            entries: HashMap::new(),
            watchers: HashMap::new(),
        }
    }
}

impl QueueBook {
    /// Gives the job a new id.
    pub fn add(&mut self, job: JobKey) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.entries.insert(id, Entry::Active(job));
        id
    }

    pub fn get(&self, id: u64) -> Option<&Entry> {
        self.entries.get(&id)
    }

    /// Takes a finished answer (it is fetched: gone afterwards).
    pub fn take_done(&mut self, id: u64) -> Option<Vec<u8>> {
        match self.entries.remove(&id) {
            Some(Entry::Done { answer, .. }) => Some(answer),
            Some(active) => {
                self.entries.insert(id, active);
                None
            }
            None => None,
        }
    }

    pub fn watch(&mut self, id: u64, conn: usize) {
        self.watchers.entry(id).or_default().push(conn);
    }

    pub fn unwatch(&mut self, id: u64, conn: usize) {
        if let Some(list) = self.watchers.get_mut(&id) {
            list.retain(|&c| c != conn);
            if list.is_empty() {
                self.watchers.remove(&id);
            }
        }
    }

    /// Records a job's answer. Returns the connections waiting for it: they
    /// get it now and it counts as fetched; with none, it is kept.
    pub fn finish(&mut self, id: u64, answer: &[u8], now: Instant) -> Vec<usize> {
        let watchers = self.watchers.remove(&id).unwrap_or_default();
        if watchers.is_empty() {
            let answer = answer.to_vec();
            self.entries.insert(
                id,
                Entry::Done {
                    answer,
                    finished: now,
                },
            );
        } else {
            self.entries.remove(&id);
        }
        watchers
    }

    /// Forgets an id whose job will never run (dropped at shutdown).
    /// Returns its waiting connections.
    pub fn drop_job(&mut self, id: u64) -> Vec<usize> {
        self.entries.remove(&id);
        self.watchers.remove(&id).unwrap_or_default()
    }

    /// Drops results older than `retention`; returns how many.
    pub fn expire(&mut self, now: Instant, retention: Duration) -> usize {
        let before = self.entries.len();
        self.entries.retain(|_, e| match e {
            Entry::Done { finished, .. } => now.duration_since(*finished) < retention,
            Entry::Active(_) => true,
        });
        before - self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_are_kept_until_fetched_or_expired() {
        let now = Instant::now();
        let mut book = QueueBook::default();
        let (a, b) = (book.add(10), book.add(11));
        assert_eq!((a, b), (1, 2));
        assert!(matches!(book.get(a), Some(Entry::Active(10))));
        assert!(book.take_done(a).is_none());
        assert!(book.finish(a, b"A", now).is_empty());
        assert_eq!(book.take_done(a).unwrap(), b"A");
        assert!(book.get(a).is_none());
        book.finish(b, b"B", now);
        assert_eq!(
            book.expire(now + Duration::from_secs(5), Duration::from_secs(10)),
            0
        );
        assert_eq!(
            book.expire(now + Duration::from_secs(11), Duration::from_secs(10)),
            1
        );
        assert!(book.get(b).is_none());
    }

    #[test]
    fn waiting_getters_take_the_answer() {
        let now = Instant::now();
        let mut book = QueueBook::default();
        let id = book.add(3);
        book.watch(id, 7);
        book.watch(id, 8);
        book.unwatch(id, 7);
        assert_eq!(book.finish(id, b"x", now), vec![8]);
        assert!(book.get(id).is_none());
    }
}
