//! The queue store: where queue and UDP jobs and unfetched results are kept
//! so that a restart loses nothing. Today that is the journal in the state
//! folder (`journal/`), or memory alone with `--state none`; a store shared
//! by several hosts is meant to fit behind the same interface.
//!
//! Every request to a store completes later and on its own: the caller
//! passes a [`Ticket`] with a change it must wait for, and reads the
//! [`Completion`] of each ticket once the store reports progress. What the
//! store keeps to rewrite or replay itself (its view of live jobs) stays on
//! its side; the daemon never sees its records.

use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::time::SystemTime;

use crate::queue::attempts::{Again, Attempt};
use crate::queue::ids::IdKey;
use crate::queue::options::JobOptions;
use crate::run::receipt::Receipt;

/// The caller's name for a change it waits for.
pub type Ticket = u64;

/// How a journaled job arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// `queue:add` over TCP.
    Queue,
    /// A datagram from this sender.
    Udp(SocketAddr),
}

/// Why a job left the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    Fetched = 1,
    Expired = 2,
    Cancelled = 3,
    /// A UDP job finished: nobody fetches its result.
    Done = 4,
    /// Dropped (its module vanished, or it was refused after a restart).
    Dropped = 5,
}

/// A change to what the store keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A job was accepted under `id`.
    Added {
        id: u64,
        /// The counter `id` was made from.
        counter: u64,
        /// The listener it belongs to.
        owner: String,
        /// The client that added it.
        client: Option<IpAddr>,
        arrival: Arrival,
        module: String,
        data: Rc<[u8]>,
        added_at: SystemTime,
        /// What it asked for (its run time, retries, key, ...).
        options: JobOptions,
    },
    /// Run `attempt` of job `id` started.
    Started { id: u64, attempt: u32 },
    /// Job `id` finished; its result waits to be fetched.
    Finished {
        id: u64,
        owner: String,
        client: Option<IpAddr>,
        module: String,
        answer: Rc<[u8]>,
        receipt: Receipt,
        finished_at: SystemTime,
        /// Every attempt it made.
        tries: Vec<Attempt>,
        /// A failed job's data and options, for `queue:retry`.
        again: Option<Box<Again>>,
        /// Its `key` option.
        key: Option<Vec<u8>>,
    },
    /// An attempt of job `id` failed and another is scheduled (or the job
    /// failed for good, and `Finished` follows).
    Attempt { id: u64, attempt: Attempt },
    /// Job `id` and whatever is kept of it are gone.
    Removed { id: u64, why: Removal },
    /// The starting of `module`'s queued jobs stopped or restarted.
    Paused { module: String, paused: bool },
}

/// How a request ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Completion {
    /// Kept: it survives a crash from now on (as the sync policy promises).
    Done,
    /// Not kept; the request had no effect.
    Refused(String),
    /// It failed part-way: it may or may not survive a crash.
    Unknown(String),
}

/// A job that was waiting or running when the daemon last stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveredJob {
    pub id: u64,
    pub owner: String,
    pub client: Option<IpAddr>,
    pub arrival: Arrival,
    pub module: String,
    pub data: Rc<[u8]>,
    pub added_at: SystemTime,
    /// Runs started before (more than zero: it was interrupted or failed).
    pub attempts: u32,
    pub options: JobOptions,
    /// Its failed attempts, the last one saying when it runs again.
    pub tries: Vec<Attempt>,
}

/// A result nobody had fetched yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveredResult {
    pub id: u64,
    pub owner: String,
    pub client: Option<IpAddr>,
    pub module: String,
    pub answer: Rc<[u8]>,
    pub receipt: Receipt,
    pub finished_at: SystemTime,
    /// Every attempt it made.
    pub tries: Vec<Attempt>,
    /// A failed job's data and options, for `queue:retry`.
    pub again: Option<Box<Again>>,
    /// Its `key` option.
    pub key: Option<Vec<u8>>,
}

/// What a store held at start.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Recovered {
    /// Id counters below this were used before.
    pub next_counter: u64,
    /// The secret ids are made with (none: a new one for this run).
    pub id_key: Option<IdKey>,
    pub jobs: Vec<RecoveredJob>,
    pub results: Vec<RecoveredResult>,
    /// Modules whose queued jobs do not start (`queue:pause`).
    pub paused: Vec<String>,
}

/// What a store tells `queue:stats`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Kept in memory only.
    Memory,
    /// A journal file of this size, last synced this long ago.
    Journal {
        bytes: u64,
        last_sync_ms_ago: Option<u128>,
    },
}

/// A place to keep the queue.
pub trait QueueStore {
    /// Records a change; with a ticket, its completion is reported by
    /// [`QueueStore::completions`] once it is kept or has failed.
    fn submit(&mut self, change: Change, ticket: Option<Ticket>);
    /// Completions since the last call.
    fn completions(&mut self) -> Vec<(Ticket, Completion)>;
    /// The end of a loop turn: the turn's changes go to storage together.
    fn end_turn(&mut self);
    /// Why new jobs would fail now, if they would.
    fn failing(&self) -> Option<String>;
    /// When the store wants a turn even if nothing happens (a retry).
    fn deadline(&self) -> Option<std::time::Instant> {
        None
    }
    /// True if what it keeps survives a restart.
    fn durable(&self) -> bool;
    fn status(&self) -> Status;
    /// Stores what is pending and stops.
    fn close(&mut self);
}

/// The store of `--state none`: nothing survives a restart, and every
/// request completes at the end of its turn.
#[derive(Debug, Default)]
pub struct MemoryStore {
    submitted: Vec<Ticket>,
    completed: Vec<Ticket>,
}

impl QueueStore for MemoryStore {
    fn submit(&mut self, _change: Change, ticket: Option<Ticket>) {
        self.submitted.extend(ticket);
    }

    fn completions(&mut self) -> Vec<(Ticket, Completion)> {
        self.completed
            .drain(..)
            .map(|ticket| (ticket, Completion::Done))
            .collect()
    }

    fn end_turn(&mut self) {
        self.completed.append(&mut self.submitted);
    }

    fn failing(&self) -> Option<String> {
        None
    }

    fn durable(&self) -> bool {
        false
    }

    fn status(&self) -> Status {
        Status::Memory
    }

    fn close(&mut self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_requests_complete_at_the_end_of_their_turn() {
        let mut store = MemoryStore::default();
        store.submit(Change::Started { id: 1, attempt: 1 }, Some(7));
        store.submit(
            Change::Removed {
                id: 2,
                why: Removal::Done,
            },
            None,
        );
        assert!(store.completions().is_empty(), "not before the turn ends");
        store.end_turn();
        assert_eq!(store.completions(), vec![(7, Completion::Done)]);
        assert!(store.completions().is_empty());
    }
}
