//! The journal's writer thread: it owns the file, writes each batch, calls
//! `fdatasync` once per batch (group commit) and wakes the loop with what
//! is now written and synced. `fdatasync` can take milliseconds; doing it
//! on the loop would stall every connection, hence the one helper thread.
//! It also rewrites the file (compaction, and the repair after a failure)
//! as the loop's plan says (`rewrite.rs`), copying the live frames from the
//! current file, so the loop never holds the live data twice.
//!
//! A write that fails (disk full, an immutable file) is undone to the last
//! whole record: the records before it are on disk, the rest of its batch
//! is reported lost record by record, so exactly the changes that are not
//! on disk are refused. Whether the journal is failing is the loop's to
//! decide (`health.rs`); the writer reports what happened, in order.

use std::fs::File;
use std::io::{ErrorKind, Write};
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use crate::journal::rewrite::{self, Plan};
use crate::journal::state::write_floor;
use crate::journal::sync::SyncPolicy;

pub(super) enum Command {
    /// Frames, and where each record ends in them with its sequence number.
    Append(Vec<u8>, Vec<(usize, u64)>),
    /// Replace the file as the plan says, as this sequence number.
    Rewrite(Plan, u64),
    /// Reserve id counters below this in the state folder's id floor, as
    /// record `seq` (`floor.rs`).
    Reserve(u64, u64),
    /// Only report the free space of the state folder.
    Stat,
    Stop,
    /// A fault, for the tests of a writer that dies.
    #[cfg(test)]
    Panic {
        holding_lock: bool,
    },
}

/// What the writer did, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The record of this sequence number starts at this offset.
    Placed { seq: u64, at: u64 },
    /// These records did not reach the disk and never will. `cut_off`:
    /// they had been placed, and a failed sync cut them off again.
    Lost {
        first: u64,
        last: u64,
        why: String,
        cut_off: bool,
    },
    /// The file was replaced by rewrite `seq`; it is this long.
    Rewritten { seq: u64, bytes: u64 },
    /// Rewrite `seq` was not done. `broken`: it failed after the new file
    /// took the journal's name, so there is no file to append to until a
    /// rewrite works.
    NotRewritten { seq: u64, why: String, broken: bool },
}

/// What the writer thread has done, read by the loop.
#[derive(Debug, Default, Clone)]
pub struct Progress {
    /// Records up to this sequence number are written (but for lost ones).
    pub written: u64,
    /// ... and on disk.
    pub synced: u64,
    pub file_bytes: u64,
    pub last_sync: Option<SystemTime>,
    /// Bytes free for the daemon in the state folder, when last looked.
    pub free_bytes: Option<u64>,
    /// Events since the loop last took them.
    pub events: Vec<Event>,
}

pub(super) struct Shared {
    pub(super) progress: Mutex<Progress>,
    pub(super) waker: Arc<mio::Waker>,
}

/// The writer thread: owns the file.
pub(super) struct Writer {
    pub(super) path: PathBuf,
    /// `None` while there is no file to append to (the first rewrite
    /// failed, or a rewrite failed after its rename); appends then fail
    /// with `broken` until a rewrite works.
    pub(super) file: Option<File>,
    pub(super) broken: String,
    pub(super) policy: SyncPolicy,
    pub(super) shared: Arc<Shared>,
    pub(super) last_sync: Instant,
    pub(super) unsynced: bool,
    /// The file's length after the last whole record, and after the last sync.
    pub(super) good_len: u64,
    pub(super) synced_len: u64,
    /// Sequence numbers written, and synced.
    pub(super) written: u64,
    pub(super) synced: u64,
    /// Records lost since the file was last rewritten: a rewrite may not
    /// copy them, and includes what waits on one of them being lost.
    pub(super) lost: Vec<(u64, u64)>,
}

/// A failed step: the records it lost, and why.
struct Failure {
    lost: (u64, u64),
    error: std::io::Error,
    cut_off: bool,
}

/// Wakes the loop when the thread ends, also by a panic, so that a dead
/// writer is noticed at once.
struct WakeOnExit(Arc<Shared>);

impl Drop for WakeOnExit {
    fn drop(&mut self) {
        let _ = self.0.waker.wake();
    }
}

impl Writer {
    pub(super) fn run(mut self, rx: Receiver<Command>) {
        let _wake = WakeOnExit(self.shared.clone());
        loop {
            let first = match self.policy {
                SyncPolicy::Every(period) if self.unsynced => {
                    match rx.recv_timeout(period.saturating_sub(self.last_sync.elapsed())) {
                        Ok(cmd) => Some(cmd),
                        Err(RecvTimeoutError::Timeout) => None,
                        Err(RecvTimeoutError::Disconnected) => Some(Command::Stop),
                    }
                }
                _ => Some(rx.recv().unwrap_or(Command::Stop)),
            };
            let mut batch: Vec<Command> = first.into_iter().collect();
            batch.extend(rx.try_iter());
            let mut stop = false;
            let mut wrote = false;
            // Why a record of this batch failed, if one did.
            let mut failed: Option<String> = None;
            let mut events = Vec::new();
            for cmd in batch {
                match cmd {
                    Command::Stop => stop = true,
                    Command::Stat => {}
                    #[cfg(test)]
                    Command::Panic { holding_lock } => {
                        let _held = holding_lock.then(|| self.shared.progress.lock());
                        panic!("journal writer: a fault for a test");
                    }
                    // After a failure, the rest of the batch is lost too:
                    // records must reach the disk in order.
                    Command::Append(_, marks) if failed.is_some() => {
                        if let Some(lost) = span(&marks) {
                            let error = std::io::Error::other(failed.clone().unwrap_or_default());
                            let cut_off = false;
                            self.failed(
                                Failure {
                                    lost,
                                    error,
                                    cut_off,
                                },
                                &mut events,
                            );
                        }
                    }
                    Command::Append(bytes, marks) => {
                        wrote = true;
                        if let Err(f) = self.append(&bytes, &marks, &mut events) {
                            failed = Some(f.error.to_string());
                            self.failed(f, &mut events);
                        }
                    }
                    // Unsynced records are copied into the new file, which
                    // is synced whole.
                    Command::Rewrite(plan, seq) => events.push(self.rewrite(&plan, seq)),
                    // The floor is a file of its own: a failure to write it
                    // loses only this record, not the appends after it.
                    Command::Reserve(floor, seq) => {
                        wrote = true;
                        if let Err(f) = self.reserve(floor, seq) {
                            self.failed(f, &mut events);
                        }
                    }
                }
            }
            let due = match self.policy {
                SyncPolicy::Always => wrote,
                SyncPolicy::EachRecord => false, // synced per record in append
                SyncPolicy::Every(period) => {
                    self.unsynced && (stop || self.last_sync.elapsed() >= period)
                }
                SyncPolicy::Never => false,
            };
            if failed.is_none()
                && (due || (stop && self.unsynced && self.policy != SyncPolicy::Never))
            {
                if let Err(f) = self.sync() {
                    self.failed(f, &mut events);
                }
            }
            self.report(events);
            if stop {
                return;
            }
        }
    }

    /// Notes and reports records lost.
    fn failed(&mut self, f: Failure, events: &mut Vec<Event>) {
        let (first, last) = f.lost;
        match self.lost.last_mut() {
            Some((_, end)) if *end + 1 >= first => *end = (*end).max(last),
            _ => self.lost.push((first, last)),
        }
        events.push(Event::Lost {
            first,
            last,
            why: f.error.to_string(),
            cut_off: f.cut_off,
        });
    }

    /// Writes the frames; on failure undoes the partial record, so the
    /// records before it stay and the rest are lost.
    fn append(
        &mut self,
        bytes: &[u8],
        marks: &[(usize, u64)],
        events: &mut Vec<Event>,
    ) -> Result<(), Failure> {
        let lost_all = |why: &str| Failure {
            lost: span(marks).unwrap_or((0, 0)),
            error: std::io::Error::other(why.to_string()),
            cut_off: false,
        };
        let Some(file) = self.file.as_mut() else {
            return Err(lost_all(&self.broken));
        };
        // Where the frames start: the file's real end (a torn frame that
        // could not be cut off stays before it).
        let start = file.metadata().map_or(self.good_len, |m| m.len());
        let mut done = 0;
        let result = loop {
            if done == bytes.len() {
                break Ok(());
            }
            match file.write(&bytes[done..]) {
                Ok(0) => break Err(std::io::Error::from(ErrorKind::WriteZero)),
                Ok(n) => done += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        let whole = marks.iter().take_while(|(end, _)| *end <= done).count();
        let mut begin = 0;
        for &(end, seq) in &marks[..whole] {
            events.push(Event::Placed {
                seq,
                at: start + begin as u64,
            });
            begin = end;
        }
        let kept = if whole == 0 { 0 } else { marks[whole - 1].0 };
        if let Some(&(_, seq)) = marks[..whole].last() {
            self.written = seq;
        }
        self.good_len = start + kept as u64;
        self.unsynced |= kept > 0;
        if let Err(error) = result {
            // Best effort: a torn frame left behind is skipped when read.
            let _ = file.set_len(self.good_len);
            let lost = span(&marks[whole..]).unwrap_or((self.written, self.written));
            let cut_off = false;
            return Err(Failure {
                lost,
                error,
                cut_off,
            });
        }
        if self.policy == SyncPolicy::EachRecord {
            self.sync()?;
        }
        Ok(())
    }

    /// Writes the plan beside the journal, syncs it, and renames it over.
    /// Before the rename, a failure leaves the old file whole and in use.
    fn rewrite(&mut self, plan: &Plan, seq: u64) -> Event {
        let lost = self.lost.clone();
        let is_lost = |seq: u64| lost.iter().any(|&(a, b)| a <= seq && seq <= b);
        // Without a file to append to (a rewrite failed after its rename),
        // the frames to copy are in the file that took the journal's name:
        // it is read, never appended to. The copy checks each frame.
        let reopened = match self.file {
            Some(_) => None,
            None => File::open(&self.path).ok(),
        };
        let current = self.file.as_ref().or(reopened.as_ref());
        match rewrite::replace(&self.path, current, plan, is_lost) {
            Ok((file, bytes)) => {
                self.file = Some(file);
                self.good_len = bytes;
                self.synced_len = bytes;
                self.written = seq;
                self.synced = seq;
                self.unsynced = false;
                self.lost.clear();
                Event::Rewritten { seq, bytes }
            }
            Err(failed) => {
                if failed.after_rename {
                    self.file = None;
                    self.broken = format!("the journal could not be reopened: {}", failed.error);
                }
                Event::NotRewritten {
                    seq,
                    why: failed.error.to_string(),
                    broken: failed.after_rename,
                }
            }
        }
    }

    /// Writes the id floor (synced) beside the journal.
    fn reserve(&mut self, floor: u64, seq: u64) -> Result<(), Failure> {
        let dir = self.path.parent().unwrap_or(std::path::Path::new("."));
        write_floor(dir, floor).map_err(|e| Failure {
            lost: (seq, seq),
            error: std::io::Error::new(e.kind(), format!("cannot write the id floor: {e}")),
            cut_off: false,
        })?;
        self.written = seq;
        Ok(())
    }

    /// `fdatasync`; on failure what was written since the last sync is
    /// cut off and lost (the kernel may have dropped it anyway).
    fn sync(&mut self) -> Result<(), Failure> {
        let Some(file) = self.file.as_ref() else {
            self.unsynced = false;
            return Ok(());
        };
        if let Err(error) = file.sync_data() {
            let lost = (self.synced + 1, self.written.max(self.synced + 1));
            let _ = file.set_len(self.synced_len);
            self.good_len = self.synced_len;
            self.written = self.synced;
            self.unsynced = false;
            let cut_off = true;
            return Err(Failure {
                lost,
                error,
                cut_off,
            });
        }
        self.unsynced = false;
        self.synced = self.written;
        self.synced_len = self.good_len;
        self.last_sync = Instant::now();
        if let Ok(mut p) = self.shared.progress.lock() {
            p.last_sync = Some(SystemTime::now());
        }
        Ok(())
    }

    fn report(&mut self, events: Vec<Event>) {
        // Without a file of its own, the old journal is still the one on disk.
        let file_bytes = match &self.file {
            Some(file) => file.metadata(),
            None => std::fs::metadata(&self.path),
        }
        .map_or(0, |m| m.len());
        let free_bytes = self.path.parent().and_then(rewrite::free_bytes);
        if let Ok(mut p) = self.shared.progress.lock() {
            p.events.extend(events);
            p.written = self.written;
            p.synced = self.synced;
            p.file_bytes = file_bytes;
            p.free_bytes = free_bytes;
        }
        let _ = self.shared.waker.wake();
    }
}

/// The sequence numbers of these records, first and last.
fn span(marks: &[(usize, u64)]) -> Option<(u64, u64)> {
    Some((marks.first()?.1, marks.last()?.1))
}
