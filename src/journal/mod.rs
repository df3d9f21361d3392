//! The journal: an append-only file of queue and UDP jobs in the state
//! folder, so a restart loses nothing. It is the queue store of a daemon
//! with a state folder (see `queue/store.rs`).
//!
//! The loop encodes records into a buffer during a turn and hands the batch
//! to the writer thread (`writer.rs`) at the end of it; group commit makes
//! every `queue:add` of a turn, and of the turns that passed during the
//! previous sync, share one `fdatasync`. The journal keeps its own view of
//! what is live (`live.rs`) to compact itself and to recover at start: for
//! a job, only where its add frame is, never a decoded copy of it.

/// A store change as a record.
mod change;
/// Field encoding of records.
mod codec;
/// The id floor beside the id key: ids never go below one handed out.
mod floor;
/// Where each live id's frame is in the file, and the frames handed to the
/// writer that are not durably there yet, held encoded.
mod footprint;
/// Frames, salt and damage.
pub mod frame;
/// A damaged header read again: the salt found from the frames.
pub mod header;
/// Whether the journal can be written: failing, retries, backoff.
mod health;
/// The journal's own view of live jobs and results (32 bytes an id).
pub mod live;
/// The record format.
pub mod record;
/// What a start reads: the journal, its damage (or the file kept aside), the id floor.
mod recover;
/// Reading a journal at start, frame by frame.
pub mod replay;
/// Rewriting the file on the writer thread, from a plan.
mod rewrite;
/// The folder's lock (also tried before binding), id key and id floor file.
pub mod state;
/// The queue store over the journal: submit, completions, turns.
mod store;
/// When records reach the disk.
pub mod sync;
/// The writer thread.
mod writer;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use crate::error::Error;
use crate::queue::store::{Recovered, Ticket};
use footprint::Footprints;
use frame::Salt;
use health::Health;
use live::{Entry, Live};
use record::Record;
pub use sync::SyncPolicy;
pub use writer::Progress;
use writer::{Command, Shared, Writer};

/// A change a client waits for.
#[derive(Debug)]
struct Waiting {
    seq: u64,
    ticket: Ticket,
    undo: Undo,
}

/// What to undo in the live view if a change a client waits for is lost.
#[derive(Debug)]
enum Undo {
    Nothing,
    /// The job it adds.
    Add(u64),
    /// The result it removes (a fetch or a cancel), put back as it was.
    Remove(u64, Box<Entry>),
}

/// The loop's side of the journal.
pub struct Journal {
    path: PathBuf,
    policy: SyncPolicy,
    tx: Sender<Command>,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    /// Frames encoded this turn, not yet handed to the writer, and where
    /// each record ends in them with its sequence number.
    batch: Vec<u8>,
    marks: Vec<(usize, u64)>,
    /// Sequence number of the last record appended.
    seq: u64,
    /// Sizes and places of the live records in the file.
    footprints: Footprints,
    /// What a compaction writes and what recovery hands over.
    live: Live,
    /// Changes clients wait for, in sequence order.
    tickets: Vec<Waiting>,
    /// Records that never reached the disk, as (first, last) sequence numbers.
    lost: Vec<(u64, u64)>,
    /// Why the last records were lost.
    lost_why: String,
    /// The file's salt, for this run.
    salt: Salt,
    /// Which id counters are reserved outside the journal.
    floor: floor::IdFloor,
    /// Failing or not, and when to try a rewrite again.
    health: Health,
    /// Free bytes in the state folder, as the writer last saw them.
    free_bytes: Option<u64>,
    /// Held open: the folder's lock.
    _lock: File,
}

impl Journal {
    /// Takes the state folder's lock, opens (creating) `dir/journal`,
    /// replays what it holds, rewrites it with just the live records under
    /// a new salt, and starts the writer thread. A damaged file never stops
    /// the start: what does not check out is skipped and reported; nor
    /// does a rewrite that fails (a full disk): the journal then starts
    /// failing, with the old file left as it was, and is rewritten once it
    /// can be.
    pub fn open(
        dir: &Path,
        policy: SyncPolicy,
        waker: Arc<mio::Waker>,
    ) -> Result<(Journal, Recovered), Error> {
        state::private_folder(dir)?;
        let lock = state::lock(dir)?;
        let id_key = state::id_key(dir)?;
        let path = dir.join("journal");
        let started = Instant::now();
        let (live, floor) = recover::read(dir, &path)?;
        let salt = Salt::random().map_err(|e| Error::Io("cannot make a journal salt".into(), e))?;
        let shared = Arc::new(Shared {
            progress: Mutex::new(Progress::default()),
            waker,
        });
        let (tx, rx) = mpsc::channel();
        let mut journal = Journal {
            path: path.clone(),
            policy,
            tx,
            shared: shared.clone(),
            thread: None,
            batch: Vec::new(),
            marks: Vec::new(),
            seq: 0,
            footprints: Footprints::default(),
            live,
            tickets: Vec::new(),
            lost: Vec::new(),
            lost_why: String::new(),
            salt,
            floor,
            health: Health::new(path.display().to_string()),
            free_bytes: rewrite::free_bytes(dir),
            _lock: lock,
        };
        let (file, broken) = journal.first_rewrite();
        let len = journal.footprints.file_bytes;
        if file.is_some() {
            log::info!(
                "journal read and rewritten in {} ms: {len} bytes",
                started.elapsed().as_millis()
            );
        }
        journal.start_writer(rx, file, broken)?;
        let mut recovered = journal.live.recovered();
        journal.live.loaded();
        recovered.id_key = Some(id_key);
        Ok((journal, recovered))
    }

    /// The first rewrite happens here, not on the writer: the file must
    /// carry this run's salt before anything is appended to it. If it
    /// fails, the old file stays as it was, nothing can be appended, and
    /// the journal is failing until a rewrite works; the file to append
    /// to, or why there is none.
    fn first_rewrite(&mut self) -> (Option<File>, String) {
        let path = self.path.clone();
        match rewrite::write_file(&path, None, |out| self.write_live(out, true)) {
            Ok((file, _)) => (Some(file), String::new()),
            Err(failed) => {
                let why = format!("cannot rewrite {}: {}", path.display(), failed.error);
                // The sizes, for the room a later rewrite needs.
                let _ = self.write_live(&mut std::io::sink(), false);
                self.footprints.file_bytes = std::fs::metadata(&path).map_or(0, |m| m.len());
                self.health.fail(&why, Instant::now());
                (None, why)
            }
        }
    }

    /// Starts the writer thread on `file` (none: appends fail with `broken`).
    fn start_writer(
        &mut self,
        rx: mpsc::Receiver<Command>,
        file: Option<File>,
        broken: String,
    ) -> Result<(), Error> {
        let len = if file.is_some() {
            self.footprints.file_bytes
        } else {
            0
        };
        if let Ok(mut p) = self.shared.progress.lock() {
            p.file_bytes = self.footprints.file_bytes;
        }
        let writer = Writer {
            path: self.path.clone(),
            file,
            broken,
            policy: self.policy,
            shared: self.shared.clone(),
            last_sync: Instant::now(),
            unsynced: false,
            good_len: len,
            synced_len: len,
            written: 0,
            synced: 0,
            lost: Vec::new(),
        };
        self.thread = Some(
            std::thread::Builder::new()
                .name("journal".into())
                .spawn(move || writer.run(rx))
                .map_err(|e| Error::Io("cannot start the journal writer".into(), e))?,
        );
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn policy(&self) -> SyncPolicy {
        self.policy
    }

    /// Adds a record to this turn's batch; returns its sequence number.
    fn append(&mut self, record: &Record) -> u64 {
        let before = self.batch.len();
        self.salt.encode(record, &mut self.batch);
        self.seq += 1;
        let removed = self.live.apply(record);
        let frame = &self.batch[before..];
        let (live, seq) = (&mut self.live, self.seq);
        (self.footprints).track(live, record, frame, seq, None, removed.as_ref());
        self.marks.push((self.batch.len(), self.seq));
        if self.policy == SyncPolicy::EachRecord {
            self.flush();
        }
        self.seq
    }

    /// Hands this turn's records to the writer.
    fn flush(&mut self) {
        if !self.batch.is_empty() {
            let batch = std::mem::take(&mut self.batch);
            let marks = std::mem::take(&mut self.marks);
            self.send(Command::Append(batch, marks));
        }
    }

    /// Hands a command to the writer; a writer that is gone makes the
    /// journal broken, never silently dropping what it was handed.
    fn send(&mut self, command: Command) {
        if self.tx.send(command).is_err() {
            self.health.broken("the journal writer thread is gone");
        }
    }

    /// The sequence number up to which answers may be given.
    fn durable_seq(&self, p: &Progress) -> u64 {
        if self.policy.acks_wait_for_sync() {
            p.synced
        } else {
            p.written
        }
    }

    /// What the writer reported last; a poisoned lock still holds it.
    pub fn progress(&self) -> Progress {
        match self.shared.progress.lock() {
            Ok(p) => p.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Writes the live records as a whole file, one at a time, and resets
    /// the size accounting to it (`placed`: the file is the journal now).
    fn write_live(&mut self, out: &mut dyn std::io::Write, placed: bool) -> std::io::Result<()> {
        let header = self.salt.header();
        out.write_all(&header)?;
        self.footprints.clear(&mut self.live);
        self.footprints.file_bytes = header.len() as u64;
        let mut frame = Vec::new();
        for record in self.live.records() {
            frame.clear();
            self.salt.encode(&record, &mut frame);
            out.write_all(&frame)?;
            // Not placed: the frame is held, under a sequence number of
            // its own, for a rewrite that works.
            let at = placed.then_some(self.footprints.file_bytes);
            self.seq += 1;
            let seq = self.seq;
            (self.footprints).track(&mut self.live, &record, &frame, seq, at, None);
        }
        Ok(())
    }

    /// Hands the writer a plan of the file as the live view has it: frames
    /// the file holds are copied by the writer, the loop encodes only those
    /// it lacks. Records appended after it go to the new file.
    fn rewrite(&mut self) {
        let started = Instant::now();
        self.flush();
        self.seq += 1;
        let pending: Vec<footprint::Pending> = self
            .tickets
            .iter()
            .filter_map(|w| match &w.undo {
                Undo::Remove(_, entry) => Some(footprint::Pending {
                    removal: w.seq,
                    entry,
                }),
                _ => None,
            })
            .collect();
        let next = self.live.next_counter();
        let plan = self
            .footprints
            .plan(self.seq, self.salt, next, &self.live, &pending);
        let (copied, encoded) = plan.sizes();
        log::debug!(
            "journal: rewrite {} planned in {} us: {copied} bytes for the writer to copy, {encoded} encoded here",
            self.seq,
            started.elapsed().as_micros()
        );
        self.send(Command::Rewrite(plan, self.seq));
    }

    /// While failing: a rewrite once it is due, if the folder has room for
    /// what the loop would have to encode; else only a look at the room.
    fn repair(&mut self, now: Instant) {
        let encode = self.footprints.unplaced_bytes(&self.live);
        match self.free_bytes {
            Some(free) if free < encode + rewrite::MARGIN => {
                let why = format!("no room: {encode} bytes to write, {free} free");
                self.health.rewrite_failed(&why, now);
                self.send(Command::Stat);
            }
            _ => self.rewrite(),
        }
    }

    /// Notices a writer thread that died (its lock poisoned, or ended).
    fn check_writer(&mut self) {
        if self.shared.progress.is_poisoned() {
            self.health
                .broken("the journal writer failed while reporting (its lock is poisoned)");
        } else if self.thread.as_ref().is_some_and(|t| t.is_finished()) {
            self.health.broken("the journal writer thread stopped");
        }
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        use crate::queue::store::QueueStore;
        self.close();
    }
}

#[cfg(test)]
#[path = "journal_tests.rs"]
mod tests;
