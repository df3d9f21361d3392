//! The journal as the queue store: changes in, each ticket's completion
//! out once its record is on disk (or lost), the turn's records handed to
//! the writer together, and the rewrites that compact or repair the file.

use std::time::{Instant, SystemTime};

use crate::journal::change::record_of;
use crate::journal::record::Record;
use crate::journal::sync::SyncPolicy;
use crate::journal::writer::Event;
use crate::journal::{Journal, Undo, Waiting};
use crate::queue::store::{Change, Completion, QueueStore, Removal, Status, Ticket};

impl Journal {
    /// Takes what the writer reported, in order.
    fn take_events(&mut self, now: Instant) -> u64 {
        let (events, durable, settled, free) = {
            let mut p = match self.shared.progress.lock() {
                Ok(p) => p,
                Err(poisoned) => poisoned.into_inner(),
            };
            let durable = self.durable_seq(&p);
            // Without syncs no sync can fail and cut a written frame off.
            let settled = match self.policy {
                SyncPolicy::Never => p.written,
                _ => p.synced,
            };
            (
                std::mem::take(&mut p.events),
                durable,
                settled,
                p.free_bytes,
            )
        };
        self.free_bytes = free;
        for event in &events {
            self.footprints.apply(&mut self.live, event);
            match event {
                Event::Placed { .. } => {}
                Event::Lost {
                    first, last, why, ..
                } => {
                    self.lost.push((*first, *last));
                    self.lost_why = why.clone();
                    self.health.fail(why, now);
                }
                Event::Rewritten { bytes, .. } => self.health.rewritten(*bytes, now),
                Event::NotRewritten { why, broken, .. } => {
                    if *broken {
                        self.health.fail(why, now);
                    }
                    self.health.rewrite_failed(why, now);
                }
            }
        }
        self.footprints.release(&self.live, settled);
        durable
    }

    fn is_lost(&self, seq: u64) -> bool {
        self.lost.iter().any(|&(a, b)| a <= seq && seq <= b)
    }

    /// A change a client waited for was lost: the live view forgets the
    /// job it added, or takes back the result it removed.
    fn undo(&mut self, undo: Undo) {
        match undo {
            Undo::Nothing => {}
            Undo::Add(id) => {
                let removed = Record::Removed {
                    id,
                    why: Removal::Dropped,
                };
                if let Some(entry) = self.live.apply(&removed) {
                    self.footprints.forget(&entry.fp);
                }
            }
            Undo::Remove(id, entry) => self.footprints.put_back(&mut self.live, id, *entry),
        }
    }
}

impl QueueStore for Journal {
    fn submit(&mut self, change: Change, ticket: Option<Ticket>) {
        if !self.floor.admit(&change, ticket) {
            return; // refused: its id could be handed out again
        }
        let undo = match (&change, ticket) {
            (_, None) => Undo::Nothing,
            (Change::Added { id, .. }, _) => Undo::Add(*id),
            // Only a result's removal is waited for (a fetch, a cancel);
            // a job's add frame could not be put back once it is gone.
            (Change::Removed { id, .. }, _) => match self.live.get(*id) {
                Some(entry) if entry.what.finished().is_some() => {
                    Undo::Remove(*id, Box::new(entry.clone()))
                }
                _ => Undo::Nothing,
            },
            _ => Undo::Nothing,
        };
        let seq = self.append(&record_of(change));
        if let Some(ticket) = ticket {
            self.tickets.push(Waiting { seq, ticket, undo });
        }
    }

    /// Each ticket completes on its own record: done once it is durable,
    /// refused if it was lost, whatever happened to the records beside it.
    /// With the writer gone, every ticket is refused.
    fn completions(&mut self) -> Vec<(Ticket, Completion)> {
        self.check_writer();
        let durable = self.take_events(Instant::now());
        let broken = self.health.is_broken();
        let mut done = self.floor.settle(durable, &self.lost);
        for w in std::mem::take(&mut self.tickets) {
            if broken || self.is_lost(w.seq) {
                let why = self
                    .health
                    .failing()
                    .unwrap_or_else(|| self.lost_why.clone());
                done.push((w.ticket, Completion::Refused(why)));
                self.undo(w.undo);
            } else if w.seq <= durable {
                done.push((w.ticket, Completion::Done));
            } else {
                self.tickets.push(w);
            }
        }
        let oldest = self.tickets.first().map_or(self.seq + 1, |w| w.seq);
        self.lost.retain(|&(_, last)| last >= oldest);
        done
    }

    fn end_turn(&mut self) {
        let now = Instant::now();
        self.check_writer();
        if !self.footprints.is_moving() {
            if self.health.repair_due(now) {
                self.repair(now);
            } else if self.health.may_compact(now) && self.footprints.wants_compaction() {
                self.rewrite();
            }
        }
        self.flush();
        self.seq = self.floor.ask(self.seq, &self.tx);
    }

    fn failing(&self) -> Option<String> {
        self.health.failing()
    }

    /// A retry's time; none while a rewrite is under way (its report
    /// wakes the loop).
    fn deadline(&self) -> Option<Instant> {
        match self.footprints.is_moving() {
            true => None,
            false => self.health.deadline(),
        }
    }

    fn durable(&self) -> bool {
        true
    }

    fn status(&self) -> Status {
        let p = self.progress();
        Status::Journal {
            bytes: p.file_bytes,
            last_sync_ms_ago: p
                .last_sync
                .and_then(|t| SystemTime::now().duration_since(t).ok())
                .map(|ago| ago.as_millis()),
        }
    }

    /// Writes what is pending, syncs, and stops the writer; a failing
    /// journal tries one last rewrite first, so that what it kept in
    /// memory is not lost with the process if there is room now.
    fn close(&mut self) {
        let failing = self.health.failing().is_some() && !self.health.is_broken();
        if failing && self.thread.is_some() && !self.footprints.is_moving() {
            self.rewrite();
        }
        self.flush();
        let _ = self.tx.send(crate::journal::writer::Command::Stop);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
