//! The daemon's use of the journal: what is written when, answers held
//! until their record is on disk, recovery at start, and compaction.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::daemon::Daemon;
use crate::journal::record::{Decoded, Record, Removal, Transport};
use crate::journal::unix_ms;
use crate::keys::{ConnKey, JobKey};
use crate::net::protocol::Refusal;
use crate::queue::results::{Done, Entry};
use crate::run::job::{Job, Origin};
use crate::run::modules::Module;
use crate::run::receipt::Receipt;

/// An answer (and a job) held until the job's record is on disk.
#[derive(Debug)]
pub struct Ack {
    pub seq: u64,
    pub job: JobKey,
    pub id: u64,
    /// The client waiting for `id:<n>`; none for UDP jobs.
    pub conn: Option<ConnKey>,
    pub answer: Vec<u8>,
}

impl Daemon {
    /// Appends a record; returns its sequence number (0 without a journal).
    pub(super) fn journal(&mut self, record: Record) -> u64 {
        self.journal.as_mut().map_or(0, |j| j.append(&record))
    }

    /// Journals that a job's run `attempt` started.
    pub(super) fn journal_started(&mut self, id: u64, attempt: u32) {
        self.journal(Record::Started { id, attempt });
    }

    /// Admits a queue job (or, with `udp_peer`, a UDP job) under a new id:
    /// it is journaled, and acknowledged and started only once the record
    /// is on disk.
    pub(super) fn admit_journaled(
        &mut self,
        module: Rc<Module>,
        data: Vec<u8>,
        udp_peer: Option<SocketAddr>,
        conn: Option<ConnKey>,
    ) -> Result<u64, Refusal> {
        let failed = self
            .journal
            .as_ref()
            .is_some_and(|j| j.progress().error.is_some());
        if failed {
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
        let id = self.queue.allocate_id();
        let origin = match udp_peer {
            Some(peer) => Origin::Udp { peer },
            None => Origin::Queue { id },
        };
        let mut job = Job::journaled(module, origin, id, data);
        job.client = client;
        let transport = journal_transport(&job.origin).expect("queue or udp");
        let record = Record::Added {
            id,
            transport,
            peer: match job.origin {
                Origin::Udp { peer } => peer.to_string(),
                _ => String::new(),
            },
            module: job.module.name.clone(),
            data: job.data.clone().unwrap_or_default(),
            at_ms: unix_ms(job.added_at),
        };
        let key = self
            .jobs
            .add_pending(job, self.settings.max_waiting)
            .map_err(|_| Refusal::Busy)?;
        if transport == Transport::Queue {
            self.queue.restore(id, Entry::Active(key));
        }
        let seq = self.journal(record);
        let answer = format!("id:{id}").into_bytes();
        self.acks.push_back(Ack {
            seq,
            job: key,
            id,
            conn,
            answer,
        });
        if let Some(conn) = conn.and_then(|c| self.conns.get_mut(c)) {
            conn.await_store();
        }
        Ok(id)
    }

    /// End of a turn: hands the records to the writer (or, without a
    /// journal, releases the held answers at once); compacts when dead
    /// records dominate.
    pub(super) fn commit(&mut self) {
        match &mut self.journal {
            None => self.release_acks(),
            Some(journal) if journal.wants_compaction() => {
                let snapshot = self.journal_snapshot();
                if let Some(journal) = &mut self.journal {
                    journal.compact(&snapshot);
                }
            }
            Some(journal) => journal.flush(),
        }
    }

    /// The writer reported progress: answers and jobs whose records are on
    /// disk go ahead. If the journal failed, they are refused instead.
    pub(super) fn release_acks(&mut self) {
        let (durable, failed) = match &self.journal {
            Some(j) => (j.durable(), j.progress().error.is_some()),
            None => (u64::MAX, false),
        };
        while self
            .acks
            .front()
            .is_some_and(|a| failed || a.seq <= durable)
        {
            let ack = self.acks.pop_front().expect("front exists");
            let ours = self.jobs.get(ack.job).is_some_and(|j| j.id == Some(ack.id));
            if failed {
                if ours {
                    self.jobs.remove(ack.job);
                    self.queue.remove(ack.id);
                }
                if let Some(conn) = ack.conn {
                    self.refuse(conn, Refusal::JournalFailed);
                }
                continue;
            }
            if ours {
                self.jobs.release(ack.job);
            }
            if let Some(conn) = ack.conn {
                self.answer(conn, ack.answer);
            }
        }
    }

    /// A connection waiting for its `id:<n>` closed: nobody to answer.
    pub(super) fn forget_ack(&mut self, conn: ConnKey) {
        for ack in self.acks.iter_mut().filter(|a| a.conn == Some(conn)) {
            ack.conn = None;
        }
    }

    /// The live state as records: what a compacted journal holds.
    fn journal_snapshot(&self) -> Vec<Record> {
        let mut records = vec![Record::NextId(self.queue.next_id())];
        for (_, job) in self.jobs.iter() {
            let (Some(id), Some(data), Some(transport)) =
                (job.id, &job.data, journal_transport(&job.origin))
            else {
                continue;
            };
            records.push(Record::Added {
                id,
                transport,
                peer: job.origin.peer().map(|p| p.to_string()).unwrap_or_default(),
                module: job.module.name.clone(),
                data: data.clone(),
                at_ms: unix_ms(job.added_at),
            });
            if job.attempts > 0 {
                records.push(Record::Started {
                    id,
                    attempt: job.attempts,
                });
            }
        }
        let now = SystemTime::now();
        for (&id, entry) in self.queue.entries() {
            if let Entry::Done(done) = entry {
                records.push(Record::Finished {
                    id,
                    module: done.module.clone(),
                    answer: done.answer.clone(),
                    receipt: done.receipt.clone(),
                    at_ms: unix_ms(now - done.finished.elapsed()),
                });
            }
        }
        records
    }

    /// Replays the journal: waiting jobs wait again, jobs that were running
    /// run again (at-least-once), unfetched results are back under their
    /// ids, and ids continue after the highest ever handed out. Then the
    /// journal is rewritten with just that.
    pub(super) fn recover(&mut self, decoded: Decoded) {
        if decoded.bad_spots > 0 {
            log::warn!(
                "journal: {} damaged places, {} bytes skipped; the records around them were kept",
                decoded.bad_spots,
                decoded.skipped_bytes
            );
        }
        let mut held: BTreeMap<u64, Replayed> = BTreeMap::new();
        let mut next_id = 1;
        for record in decoded.records {
            next_id = next_id.max(match record {
                Record::NextId(n) => n,
                ref other => other.id() + 1,
            });
            match record {
                Record::NextId(_) => {}
                Record::Added {
                    id,
                    transport,
                    peer,
                    module,
                    data,
                    at_ms,
                } => {
                    held.entry(id).or_default().added = Some((transport, peer, module, data, at_ms))
                }
                Record::Started { id, attempt } => {
                    if let Some(h) = held.get_mut(&id) {
                        h.attempts = h.attempts.max(attempt);
                    }
                }
                Record::Finished {
                    id,
                    module,
                    answer,
                    receipt,
                    at_ms,
                } => held.entry(id).or_default().finished = Some((module, answer, receipt, at_ms)),
                Record::Removed { id, .. } => {
                    held.remove(&id);
                }
            }
        }
        self.queue.continue_from(next_id);
        let (now, wall) = (Instant::now(), SystemTime::now());
        let (mut waiting, mut rerun, mut results) = (0, 0, 0);
        for (id, h) in held {
            if let Some((module, answer, receipt, at_ms)) = h.finished {
                let age = wall
                    .duration_since(UNIX_EPOCH + Duration::from_millis(at_ms))
                    .unwrap_or_default();
                let finished = now.checked_sub(age).unwrap_or(now);
                let done = Done {
                    module,
                    answer,
                    finished,
                    receipt,
                };
                self.queue.restore(id, Entry::Done(Box::new(done)));
                results += 1;
                continue;
            }
            let Some((transport, peer, module, data, at_ms)) = h.added else {
                continue;
            };
            let Some(found) = self.modules.lookup(&module) else {
                log::warn!("journal: job {id} of module {module} dropped: the module is gone");
                continue;
            };
            let origin = match transport {
                Transport::Queue => Origin::Queue { id },
                Transport::Udp => Origin::Udp {
                    peer: peer.parse().unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0))),
                },
            };
            let mut job = Job::journaled(found, origin, id, data);
            job.attempts = h.attempts;
            job.added_at = UNIX_EPOCH + Duration::from_millis(at_ms);
            let key = self.jobs.add_recovered(job);
            if transport == Transport::Queue {
                self.queue.restore(id, Entry::Active(key));
            }
            if h.attempts > 0 {
                rerun += 1;
            } else {
                waiting += 1;
            }
        }
        if waiting + rerun + results > 0 {
            log::info!(
                "journal: recovered {waiting} waiting jobs, {rerun} interrupted jobs to run again, {results} unfetched results; next id {}",
                self.queue.next_id()
            );
        }
        let snapshot = self.journal_snapshot();
        if let Some(journal) = &mut self.journal {
            journal.compact(&snapshot);
        }
    }

    /// Journals the end of a queue or UDP job, and routes a queue result.
    pub(super) fn record_finished(&mut self, job: &Job, answer: &[u8], receipt: Receipt) {
        let Some(id) = job.id else { return };
        match job.origin {
            Origin::Udp { .. } => {
                self.journal(Record::Removed {
                    id,
                    why: Removal::Done,
                });
            }
            Origin::Queue { .. }
                if receipt.outcome == Some(crate::run::outcome::Outcome::Cancelled) =>
            {
                self.journal(Record::Removed {
                    id,
                    why: Removal::Cancelled,
                });
                for conn in self.queue.remove(id) {
                    self.answer(conn, answer.to_vec());
                }
            }
            Origin::Queue { .. } => {
                let done = Done {
                    module: job.module.name.clone(),
                    answer: answer.to_vec(),
                    finished: Instant::now(),
                    receipt: receipt.clone(),
                };
                let (watchers, evicted) =
                    self.queue
                        .finish(id, done, self.settings.result_retention_bytes);
                if watchers.is_empty() {
                    self.journal(Record::Finished {
                        id,
                        module: job.module.name.clone(),
                        answer: answer.to_vec(),
                        receipt,
                        at_ms: unix_ms(SystemTime::now()),
                    });
                } else {
                    self.journal(Record::Removed {
                        id,
                        why: Removal::Fetched,
                    });
                }
                for old in evicted {
                    log::info!(
                        "queue result {old} dropped: results over {} bytes",
                        self.settings.result_retention_bytes
                    );
                    self.journal(Record::Removed {
                        id: old,
                        why: Removal::Expired,
                    });
                }
                for conn in watchers {
                    self.answer(conn, answer.to_vec());
                }
            }
            Origin::Tcp { .. } => {}
        }
    }
}

/// How a job's origin is written in the journal; direct TCP calls are not
/// journaled.
fn journal_transport(origin: &Origin) -> Option<Transport> {
    match origin {
        Origin::Tcp { .. } => None,
        Origin::Udp { .. } => Some(Transport::Udp),
        Origin::Queue { .. } => Some(Transport::Queue),
    }
}

/// One id's story, as replayed from the journal.
#[derive(Default)]
struct Replayed {
    added: Option<(Transport, String, String, Vec<u8>, u64)>,
    attempts: u32,
    finished: Option<(String, Vec<u8>, Receipt, u64)>,
}
