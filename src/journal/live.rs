//! The journal's own view of what is live: every job and unfetched result
//! not yet removed, with what a compacted journal must hold for it.
//! Replaying a file builds it, every appended record keeps it current,
//! compaction writes it out, and recovery hands it to the daemon.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::journal::record::{Added, Finished, Record, Transport};
use crate::queue::attempts::Attempt;
use crate::queue::store::{Arrival, Recovered, RecoveredJob, RecoveredResult};

/// What is kept of one id: the record that added it (and its last start),
/// or its result.
#[derive(Debug, Clone)]
pub enum Entry {
    Job {
        added: Added,
        attempts: u32,
        /// Its failed attempts so far.
        tries: Vec<Attempt>,
    },
    Result(Finished),
}

impl Entry {
    /// The record that defines it: the add of a job, or its result.
    pub fn defining(&self) -> Record {
        match self {
            Entry::Job { added, .. } => Record::Added(added.clone()),
            Entry::Result(finished) => Record::Finished(finished.clone()),
        }
    }

    /// The records of its failed attempts and its last start, if it was
    /// started.
    pub fn started(&self, id: u64) -> Vec<Record> {
        match self {
            Entry::Job {
                attempts, tries, ..
            } if *attempts > 0 => {
                let mut records: Vec<Record> = (tries.iter())
                    .map(|attempt| Record::Attempt {
                        id,
                        attempt: attempt.clone(),
                    })
                    .collect();
                records.push(Record::Started {
                    id,
                    attempt: *attempts,
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
    entries: BTreeMap<u64, Entry>,
    /// Modules whose queued jobs do not start.
    paused: BTreeSet<String>,
}

impl Live {
    /// The next id counter.
    pub fn next_counter(&self) -> u64 {
        self.next_counter.max(1)
    }

    /// Applies one record, as replay and appending both do.
    pub fn apply(&mut self, record: &Record) {
        match record {
            Record::NextId(n) => self.next_counter = self.next_counter.max(*n),
            Record::Added(added) => {
                self.next_counter = self.next_counter.max(added.counter.saturating_add(1));
                let entry = Entry::Job {
                    added: added.clone(),
                    attempts: 0,
                    tries: Vec::new(),
                };
                self.entries.insert(added.id, entry);
            }
            Record::Started { id, attempt } => {
                if let Some(Entry::Job { attempts, .. }) = self.entries.get_mut(id) {
                    *attempts = (*attempts).max(*attempt);
                }
            }
            Record::Attempt { id, attempt } => {
                if let Some(Entry::Job {
                    attempts, tries, ..
                }) = self.entries.get_mut(id)
                {
                    *attempts = (*attempts).max(attempt.number);
                    tries.push(attempt.clone());
                }
            }
            Record::Finished(finished) => {
                self.entries
                    .insert(finished.id, Entry::Result(finished.clone()));
            }
            Record::Removed { id, .. } => {
                self.entries.remove(id);
            }
            Record::Paused { module, paused } => {
                if *paused {
                    self.paused.insert(module.clone());
                } else {
                    self.paused.remove(module);
                }
            }
        }
    }

    /// A record for each paused module, for a compacted journal.
    pub fn pauses(&self) -> impl Iterator<Item = Record> + '_ {
        self.paused.iter().map(|module| Record::Paused {
            module: module.clone(),
            paused: true,
        })
    }

    /// The records a compacted journal holds: the next id, the paused
    /// modules, then each live job (with its last start) or result.
    pub fn records(&self) -> Vec<Record> {
        let mut records = vec![Record::NextId(self.next_counter.max(1))];
        records.extend(self.pauses());
        for (&id, entry) in &self.entries {
            records.push(entry.defining());
            records.extend(entry.started(id));
        }
        records
    }

    /// Each live id and what is kept of it, in id order.
    pub fn iter(&self) -> impl Iterator<Item = (u64, &Entry)> {
        self.entries.iter().map(|(&id, entry)| (id, entry))
    }

    pub fn get(&self, id: u64) -> Option<&Entry> {
        self.entries.get(&id)
    }

    /// Puts back what a removal that was not kept took away.
    pub fn put_back(&mut self, id: u64, entry: Entry) {
        self.entries.insert(id, entry);
    }

    /// What the daemon takes over at start.
    pub fn recovered(&self) -> Recovered {
        let mut recovered = Recovered {
            next_counter: self.next_counter.max(1),
            paused: self.paused.iter().cloned().collect(),
            ..Recovered::default()
        };
        // Jobs in the order they arrived (ids are a permutation of the
        // counter, so their order is not), for the waiting line's FIFO.
        let mut jobs = Vec::new();
        for (&id, entry) in &self.entries {
            match entry {
                Entry::Job {
                    added,
                    attempts,
                    tries,
                } => jobs.push((
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
                        attempts: *attempts,
                        options: added.options.clone(),
                        tries: tries.clone(),
                    },
                )),
                Entry::Result(finished) => recovered.results.push(RecoveredResult {
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
mod tests {
    use super::*;
    use crate::queue::store::Removal;
    use crate::run::receipt::Receipt;
    use std::rc::Rc;

    fn added(id: u64) -> Record {
        Record::Added(Added {
            id: id * 1000,
            counter: id,
            owner: "main".into(),
            transport: Transport::Queue,
            peer: String::new(),
            module: "m".into(),
            data: Rc::from(&b"data"[..]),
            at_ms: 1000,
            options: Default::default(),
        })
    }

    #[test]
    fn recovered_jobs_come_in_the_order_they_arrived_not_by_id() {
        let mut live = Live::default();
        for (id, counter) in [(9, 1), (3, 2), (7, 3)] {
            let Record::Added(mut add) = added(id) else {
                unreachable!()
            };
            add.counter = counter;
            live.apply(&Record::Added(add));
        }
        let ids: Vec<u64> = live.recovered().jobs.iter().map(|j| j.id).collect();
        assert_eq!(ids, [9000, 3000, 7000]);
    }

    #[test]
    fn replay_keeps_waiting_interrupted_and_finished_jobs() {
        let mut live = Live::default();
        for record in [
            added(1),
            added(2),
            Record::Started {
                id: 2000,
                attempt: 1,
            },
            added(3),
            Record::Finished(Finished {
                id: 3000,
                owner: "main".into(),
                peer: "127.0.0.1".into(),
                module: "m".into(),
                answer: Rc::from(&b"out"[..]),
                receipt: Receipt::default(),
                at_ms: 2000,
                tries: Vec::new(),
                again: None,
                key: None,
            }),
            added(4),
            Record::Removed {
                id: 4000,
                why: Removal::Cancelled,
            },
        ] {
            live.apply(&record);
        }
        let recovered = live.recovered();
        assert_eq!(recovered.next_counter, 5, "counters, not ids, continue");
        let jobs: Vec<(u64, u32)> = recovered.jobs.iter().map(|j| (j.id, j.attempts)).collect();
        assert_eq!(jobs, vec![(1000, 0), (2000, 1)]);
        assert_eq!(recovered.jobs[0].owner, "main");
        assert_eq!(recovered.results.len(), 1);
        assert_eq!(recovered.results[0].client, Some([127, 0, 0, 1].into()));
        assert_eq!(&*recovered.results[0].answer, b"out");
        // A compacted journal replays to the same state.
        let mut again = Live::default();
        for record in live.records() {
            again.apply(&record);
        }
        assert_eq!(again.recovered(), recovered);
    }

    #[test]
    fn the_last_pause_of_a_module_counts_and_survives_compaction() {
        let mut live = Live::default();
        let pause = |module: &str, paused| Record::Paused {
            module: module.into(),
            paused,
        };
        for record in [
            pause("a", true),
            pause("b", true),
            added(1),
            pause("a", false),
            pause("c", true),
            pause("c", true),
        ] {
            live.apply(&record);
        }
        assert_eq!(live.recovered().paused, ["b", "c"]);
        let mut again = Live::default();
        for record in live.records() {
            again.apply(&record);
        }
        assert_eq!(again.recovered(), live.recovered());
    }

    #[test]
    fn ids_continue_after_a_compacted_journal_with_nothing_live() {
        let mut live = Live::default();
        live.apply(&Record::NextId(40));
        assert_eq!(live.recovered().next_counter, 40);
        assert_eq!(live.records(), vec![Record::NextId(40)]);
    }
}
