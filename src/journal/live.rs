//! The journal's own view of what is live: every job and unfetched result
//! not yet removed, with what a compacted journal must hold for it.
//! Replaying a file builds it, every appended record keeps it current,
//! compaction writes it out, and recovery hands it to the daemon.
//!
//! A job is held compactly: its add frame is in the file (or, until it is
//! durably there, held encoded by `footprint.rs`), so all the view keeps of
//! it is where that frame is and its starts and failed attempts. Only while
//! the file is read at start are the add records themselves kept, for the
//! daemon to take over. Results keep their record (their answer is shared
//! with the queue's book).

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::journal::record::{Added, Finished, Record, Transport};
use crate::queue::attempts::Attempt;
use crate::queue::store::{Arrival, Recovered, RecoveredJob, RecoveredResult};

/// No offset: the frame is not (or no longer) in the current file.
pub(super) const NOWHERE: u64 = u64::MAX;

/// What one live id takes in the file, and where its defining frame is
/// (kept and changed by `footprint.rs`).
#[derive(Debug, Clone, Copy)]
pub struct Footprint {
    /// The defining frame's sequence number, offset ([`NOWHERE`] until the
    /// writer places it) and length (a frame is at most 2 GiB and a bit).
    pub(super) seq: u64,
    pub(super) at: u64,
    pub(super) len: u32,
    /// Bytes of all its records in the file (saturating).
    pub(super) bytes: u32,
}

impl Default for Footprint {
    fn default() -> Footprint {
        Footprint {
            bytes: 0,
            seq: 0,
            at: NOWHERE,
            len: 0,
        }
    }
}

impl Footprint {
    /// Its defining frame's offset in the current file, if it is there.
    pub(super) fn at(&self) -> Option<u64> {
        (self.at != NOWHERE).then_some(self.at)
    }

    pub(super) fn unplace(&mut self) {
        self.at = NOWHERE;
    }
}

/// A started job's last start and failed attempts: the records a rewrite
/// writes after its add.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Started {
    pub attempts: u32,
    pub tries: Vec<Attempt>,
}

/// What is kept of one id besides its footprint: nothing for a job not
/// started yet, else one box (a pointer either way).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct What(Option<Box<Kept>>);

/// What a started job or a result keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Kept {
    Started(Started),
    /// Boxed again, so that a started job's box stays small.
    Result(Box<Finished>),
}

impl What {
    fn result(finished: Finished) -> What {
        What(Some(Box::new(Kept::Result(Box::new(finished)))))
    }

    /// A result's record; none for a job.
    pub fn finished(&self) -> Option<&Finished> {
        match self.0.as_deref() {
            Some(Kept::Result(finished)) => Some(finished),
            _ => None,
        }
    }

    /// A job's starts, if it was started.
    pub fn started(&self) -> Option<&Started> {
        match self.0.as_deref() {
            Some(Kept::Started(started)) => Some(started),
            _ => None,
        }
    }

    /// A job's starts, boxed on first use; none for a result.
    fn started_mut(&mut self) -> Option<&mut Started> {
        let kept = self
            .0
            .get_or_insert_with(|| Box::new(Kept::Started(Started::default())));
        match &mut **kept {
            Kept::Started(started) => Some(started),
            Kept::Result(_) => None,
        }
    }
}

/// One live id: where its records are in the file, and what they say.
#[derive(Debug, Clone)]
pub struct Entry {
    pub(super) fp: Footprint,
    pub what: What,
}

impl Entry {
    /// The records of its failed attempts and its last start, if it was
    /// started.
    pub fn started(&self, id: u64) -> Vec<Record> {
        match self.what.started() {
            Some(started) if started.attempts > 0 => {
                let mut records: Vec<Record> = (started.tries.iter())
                    .map(|attempt| Record::Attempt {
                        id,
                        attempt: attempt.clone(),
                    })
                    .collect();
                records.push(Record::Started {
                    id,
                    attempt: started.attempts,
                });
                records
            }
            _ => Vec::new(),
        }
    }
}

#[derive(Debug, Default)]
pub struct Live {
    /// Id counters below this were used.
    next_counter: u64,
    entries: HashMap<u64, Entry>,
    /// Modules whose queued jobs do not start.
    paused: BTreeSet<String>,
    /// The add records of the live jobs, while the file is read at start
    /// (none once [`Live::loaded`]).
    adds: Option<HashMap<u64, Added>>,
}

impl Live {
    /// A view for reading a file at start: it keeps the jobs' add records
    /// until [`Live::loaded`].
    pub fn loading() -> Live {
        Live {
            adds: Some(HashMap::new()),
            ..Live::default()
        }
    }

    /// Start-up is over: the add records are dropped (their frames are in
    /// the file, or held encoded).
    pub fn loaded(&mut self) {
        self.adds = None;
        self.entries.shrink_to_fit();
    }

    /// The next id counter.
    pub fn next_counter(&self) -> u64 {
        self.next_counter.max(1)
    }

    /// Applies one record, as replay and appending both do; the entry it
    /// removed, if any.
    pub fn apply(&mut self, record: &Record) -> Option<Entry> {
        match record {
            Record::NextId(n) => self.next_counter = self.next_counter.max(*n),
            Record::Added(added) => {
                self.next_counter = self.next_counter.max(added.counter.saturating_add(1));
                let entry = self.entries.entry(added.id).or_insert_with(|| Entry {
                    fp: Footprint::default(),
                    what: What::default(),
                });
                entry.what = What::default();
                if let Some(adds) = &mut self.adds {
                    adds.insert(added.id, added.clone());
                }
            }
            Record::Started { id, attempt } => {
                if let Some(started) = self.started_mut(*id) {
                    started.attempts = started.attempts.max(*attempt);
                }
            }
            Record::Attempt { id, attempt } => {
                if let Some(started) = self.started_mut(*id) {
                    started.attempts = started.attempts.max(attempt.number);
                    started.tries.push(attempt.clone());
                }
            }
            Record::Finished(finished) => {
                let entry = self.entries.entry(finished.id).or_insert_with(|| Entry {
                    fp: Footprint::default(),
                    what: What::default(),
                });
                entry.what = What::result(finished.clone());
                if let Some(adds) = &mut self.adds {
                    adds.remove(&finished.id);
                }
            }
            Record::Removed { id, .. } => {
                if let Some(adds) = &mut self.adds {
                    adds.remove(id);
                }
                return self.entries.remove(id);
            }
            Record::Paused { module, paused } => {
                if *paused {
                    self.paused.insert(module.clone());
                } else {
                    self.paused.remove(module);
                }
            }
        }
        None
    }

    /// The starts of live job `id`, boxed on first use.
    fn started_mut(&mut self, id: u64) -> Option<&mut Started> {
        self.entries.get_mut(&id)?.what.started_mut()
    }

    /// A record for each paused module, for a compacted journal.
    pub fn pauses(&self) -> impl Iterator<Item = Record> + '_ {
        self.paused.iter().map(|module| Record::Paused {
            module: module.clone(),
            paused: true,
        })
    }

    /// The records a compacted journal holds, while the file is read at
    /// start: the next id, the paused modules, then each live job (with
    /// its last start) or result, in id order.
    pub fn records(&self) -> Vec<Record> {
        let mut records = vec![Record::NextId(self.next_counter.max(1))];
        records.extend(self.pauses());
        let mut ids: Vec<u64> = self.entries.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            let entry = &self.entries[&id];
            let defining = match entry.what.finished() {
                Some(finished) => Record::Finished(finished.clone()),
                None => match self.adds.as_ref().and_then(|adds| adds.get(&id)) {
                    Some(added) => Record::Added(added.clone()),
                    None => continue,
                },
            };
            records.push(defining);
            records.extend(entry.started(id));
        }
        records
    }

    /// Each live id and what is kept of it.
    pub fn iter(&self) -> impl Iterator<Item = (u64, &Entry)> {
        self.entries.iter().map(|(&id, entry)| (id, entry))
    }

    /// Each live id's footprint, to change.
    pub(super) fn footprints_mut(&mut self) -> impl Iterator<Item = &mut Footprint> {
        self.entries.values_mut().map(|entry| &mut entry.fp)
    }

    pub fn get(&self, id: u64) -> Option<&Entry> {
        self.entries.get(&id)
    }

    pub(super) fn get_mut(&mut self, id: u64) -> Option<&mut Entry> {
        self.entries.get_mut(&id)
    }

    /// Puts back what a removal that was not kept took away.
    pub fn put_back(&mut self, id: u64, entry: Entry) {
        self.entries.insert(id, entry);
    }

    /// What the daemon takes over at start (while the file is read).
    pub fn recovered(&self) -> Recovered {
        let mut recovered = Recovered {
            next_counter: self.next_counter.max(1),
            paused: self.paused.iter().cloned().collect(),
            ..Recovered::default()
        };
        // Jobs in the order they arrived (ids are a permutation of the
        // counter, so their order is not), for the waiting line's FIFO.
        let mut jobs = Vec::new();
        let no_adds = HashMap::new();
        let adds = self.adds.as_ref().unwrap_or(&no_adds);
        for (&id, entry) in &self.entries {
            match entry.what.finished() {
                None => {
                    let Some(added) = adds.get(&id) else { continue };
                    let started = entry.what.started().cloned().unwrap_or_default();
                    jobs.push((
                        added.counter,
                        RecoveredJob {
                            id,
                            owner: added.owner.clone(),
                            client: client_of(&added.peer),
                            arrival: match added.transport {
                                Transport::Queue => Arrival::Queue,
                                Transport::Udp => Arrival::Udp(
                                    added
                                        .peer
                                        .parse()
                                        .unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0))),
                                ),
                            },
                            module: added.module.clone(),
                            data: added.data.clone(),
                            added_at: from_unix_ms(added.at_ms),
                            attempts: started.attempts,
                            options: added.options.clone(),
                            tries: started.tries,
                        },
                    ))
                }
                Some(finished) => recovered.results.push(RecoveredResult {
                    id,
                    owner: finished.owner.clone(),
                    client: client_of(&finished.peer),
                    module: finished.module.clone(),
                    answer: finished.answer.clone(),
                    receipt: finished.receipt.clone(),
                    finished_at: from_unix_ms(finished.at_ms),
                    tries: finished.tries.clone(),
                    again: finished.again.clone(),
                    key: finished.key.clone(),
                }),
            }
        }
        jobs.sort_by_key(|(counter, _)| *counter);
        recovered.jobs = jobs.into_iter().map(|(_, job)| job).collect();
        recovered.results.sort_by_key(|result| result.id);
        recovered
    }
}

/// Milliseconds since the Unix epoch, for records that outlive the process.
pub fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The client address of a journaled peer (an address, or a UDP sender).
fn client_of(peer: &str) -> Option<IpAddr> {
    peer.parse::<IpAddr>()
        .ok()
        .or_else(|| peer.parse::<SocketAddr>().ok().map(|p| p.ip()))
}

fn from_unix_ms(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

#[cfg(test)]
#[path = "live_tests.rs"]
mod tests;
