//! The journal: an append-only file of queue and UDP jobs in the state
//! folder, so a restart loses nothing. It is the queue store of a daemon
//! with a state folder (see `queue/store.rs`).
//!
//! The loop encodes records into a buffer during a turn and hands the batch
//! to the writer thread (`writer.rs`) at the end of it; group commit makes
//! every `queue:add` of a turn, and of the turns that passed during the
//! previous sync, share one `fdatasync`. The journal keeps its own view of
//! what is live (`live.rs`) to compact itself and to recover at start.

/// A store change as a record.
mod change;
/// Field encoding of records.
mod codec;
/// The id floor beside the id key: ids never go below one handed out.
mod floor;
/// Frames, salt and damage.
pub mod frame;
/// A damaged header read again: the salt found from the frames.
pub mod header;
/// The journal's own view of live jobs and results.
pub mod live;
/// The record format.
pub mod record;
/// What a start reads: the journal, its damage (or the file kept aside), the id floor.
mod recover;
/// Reading a journal at start, frame by frame.
pub mod replay;
/// The folder's lock (also tried before binding), id key and id floor file.
pub mod state;
/// When records reach the disk.
pub mod sync;
/// The writer thread.
mod writer;

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use crate::error::Error;
use crate::queue::store::{Change, Completion, QueueStore, Recovered, Removal, Status, Ticket};
use change::record_of;
use frame::Salt;
use live::Live;
use record::Record;
pub use sync::SyncPolicy;
pub use writer::Progress;
use writer::{write_file, Command, Shared, Writer};

/// A journal smaller than this is never compacted.
const COMPACT_MIN_BYTES: u64 = 64 * 1024;
/// While writes fail, a probe record is written at most this often at
/// first, then twice as rarely each time, up to [`PROBE_MAX`].
const PROBE_FIRST: Duration = Duration::from_millis(100);
const PROBE_MAX: Duration = Duration::from_secs(5);

/// A change a client waits for.
#[derive(Debug)]
struct Waiting {
    seq: u64,
    ticket: Ticket,
    /// The job it adds, undone from the live view if it is lost.
    added: Option<u64>,
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
    /// Bytes in the file once everything handed over is written.
    file_bytes: u64,
    /// Bytes of records still live, by job id: the size a compaction leaves.
    live_bytes_by_id: HashMap<u64, u64>,
    live_bytes: u64,
    /// What a compaction writes and what recovery hands over.
    live: Live,
    /// Changes clients wait for, in sequence order.
    tickets: Vec<Waiting>,
    /// Records that never reached the disk, as (first, last) sequence numbers.
    lost: Vec<(u64, u64)>,
    /// The file's salt, for this run.
    salt: Salt,
    /// While writes fail: when to probe again, and the wait after that.
    probe: Option<(Instant, Duration)>,
    /// Which id counters are reserved outside the journal.
    floor: floor::IdFloor,
    /// Held open: the folder's lock.
    _lock: File,
}

impl Journal {
    /// Takes the state folder's lock, opens (creating) `dir/journal`,
    /// replays what it holds, rewrites it with just the live records under
    /// a new salt, and starts the writer thread. A damaged file never stops
    /// the start: what does not check out is skipped and reported.
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
            file_bytes: 0,
            live_bytes_by_id: HashMap::new(),
            live_bytes: 0,
            live,
            tickets: Vec::new(),
            lost: Vec::new(),
            salt,
            probe: None,
            floor,
            _lock: lock,
        };
        // The first rewrite happens here, not on the writer: the file must
        // carry this run's salt before anything is appended to it.
        let file = write_file(&path, |out| journal.write_live(out))
            .map_err(|e| Error::Io(format!("cannot rewrite {}", path.display()), e))?;
        let len = journal.file_bytes;
        log::info!(
            "journal read and rewritten in {} ms: {len} bytes",
            started.elapsed().as_millis()
        );
        let writer = Writer {
            path,
            file,
            policy,
            shared,
            last_sync: Instant::now(),
            unsynced: false,
            good_len: len,
            synced_len: len,
            written: 0,
            synced: 0,
            failures: 0,
        };
        journal.thread = Some(
            std::thread::Builder::new()
                .name("journal".into())
                .spawn(move || writer.run(rx))
                .map_err(|e| Error::Io("cannot start the journal writer".into(), e))?,
        );
        let mut recovered = journal.live.recovered();
        recovered.id_key = Some(id_key);
        Ok((journal, recovered))
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
        let len = (self.batch.len() - before) as u64;
        self.track(record, len);
        self.live.apply(record);
        self.seq += 1;
        self.marks.push((self.batch.len(), self.seq));
        if self.policy == SyncPolicy::EachRecord {
            self.flush();
        }
        self.seq
    }

    fn track(&mut self, record: &Record, len: u64) {
        self.file_bytes += len;
        match record {
            Record::NextId(_) => {}
            Record::Removed { id, .. } => {
                self.live_bytes -= self.live_bytes_by_id.remove(id).unwrap_or(0)
            }
            other => {
                *self.live_bytes_by_id.entry(other.id()).or_default() += len;
                self.live_bytes += len;
            }
        }
    }

    /// Hands this turn's records to the writer.
    fn flush(&mut self) {
        if !self.batch.is_empty() {
            let batch = std::mem::take(&mut self.batch);
            let marks = std::mem::take(&mut self.marks);
            let _ = self.tx.send(Command::Append(batch, marks));
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

    pub fn progress(&self) -> Progress {
        self.shared
            .progress
            .lock()
            .map(|p| p.clone())
            .unwrap_or_default()
    }

    /// True when dead records dominate the file.
    fn wants_compaction(&self) -> bool {
        self.file_bytes > COMPACT_MIN_BYTES && self.file_bytes > 4 * self.live_bytes
    }

    /// The live records as a whole file; resets the size accounting to it.
    fn snapshot(&mut self) -> Vec<u8> {
        let mut snapshot = self.salt.header();
        self.live_bytes_by_id.clear();
        self.live_bytes = 0;
        self.file_bytes = snapshot.len() as u64;
        for record in self.live.records() {
            let before = snapshot.len();
            self.salt.encode(&record, &mut snapshot);
            self.track(&record, (snapshot.len() - before) as u64);
        }
        snapshot
    }

    /// Writes the live records as a whole file, one at a time; resets the
    /// size accounting to it.
    fn write_live(&mut self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        let header = self.salt.header();
        out.write_all(&header)?;
        self.live_bytes_by_id.clear();
        self.live_bytes = 0;
        self.file_bytes = header.len() as u64;
        let mut frame = Vec::new();
        for record in self.live.records() {
            frame.clear();
            self.salt.encode(&record, &mut frame);
            out.write_all(&frame)?;
            self.track(&record, frame.len() as u64);
        }
        Ok(())
    }

    /// Replaces the file with the live records. Records appended before
    /// are in the snapshot; records appended after go to the new file.
    fn compact(&mut self) {
        self.flush();
        let snapshot = self.snapshot();
        self.seq += 1;
        log::info!("journal compacted to {} bytes", snapshot.len());
        let _ = self.tx.send(Command::Replace(snapshot, self.seq));
    }

    fn is_lost(&self, seq: u64) -> bool {
        self.lost.iter().any(|&(a, b)| a <= seq && seq <= b)
    }

    /// While writes fail: a harmless record now and then, to learn when
    /// they work again. Once they do, the file is rewritten from the live
    /// view, which holds every change, also those that were lost.
    fn probe(&mut self, failing: bool) {
        let now = Instant::now();
        match (failing, self.probe) {
            (true, None) => self.probe = Some((now + PROBE_FIRST, PROBE_FIRST)),
            (true, Some((at, wait))) if now >= at => {
                let next = (wait * 2).min(PROBE_MAX);
                log::info!(
                    "journal: trying a write again ({} ms until the next try)",
                    next.as_millis()
                );
                self.append(&Record::NextId(self.live.next_counter()));
                self.probe = Some((now + next, next));
            }
            (false, Some(_)) => {
                self.probe = None;
                self.compact();
            }
            _ => {}
        }
    }
}

impl QueueStore for Journal {
    fn submit(&mut self, change: Change, ticket: Option<Ticket>) {
        if !self.floor.admit(&change, ticket) {
            return; // refused: its id could be handed out again
        }
        let added = match &change {
            Change::Added { id, .. } => Some(*id),
            _ => None,
        };
        let seq = self.append(&record_of(change));
        if let Some(ticket) = ticket {
            self.tickets.push(Waiting { seq, ticket, added });
        }
    }

    /// Each ticket completes on its own record: done once it is durable,
    /// refused if it was lost, whatever happened to the records beside it.
    fn completions(&mut self) -> Vec<(Ticket, Completion)> {
        let progress = match self.shared.progress.lock() {
            Ok(mut p) => {
                let taken = p.clone();
                p.lost.clear();
                taken
            }
            Err(_) => return Vec::new(),
        };
        self.lost.extend(&progress.lost);
        let durable = self.durable_seq(&progress);
        let why = progress.error.unwrap_or_else(|| "write failed".into());
        let mut done = self.floor.settle(durable, &progress.lost);
        let mut undo = Vec::new();
        let lost_seqs: Vec<bool> = self.tickets.iter().map(|w| self.is_lost(w.seq)).collect();
        let mut lost_iter = lost_seqs.into_iter();
        self.tickets.retain(|w| {
            if lost_iter.next().unwrap_or(false) {
                done.push((w.ticket, Completion::Refused(why.clone())));
                undo.extend(w.added);
                false
            } else if w.seq <= durable {
                done.push((w.ticket, Completion::Done));
                false
            } else {
                true
            }
        });
        for id in undo {
            let removed = Record::Removed {
                id,
                why: Removal::Dropped,
            };
            self.live.apply(&removed);
            self.track(&removed, 0);
        }
        let oldest = self.tickets.first().map_or(self.seq + 1, |w| w.seq);
        self.lost.retain(|&(_, last)| last >= oldest);
        done
    }

    fn end_turn(&mut self) {
        let failing = self.progress().error.is_some();
        self.probe(failing);
        if self.wants_compaction() && !failing {
            self.compact();
        } else {
            self.flush();
        }
        self.seq = self.floor.ask(self.seq, &self.tx);
    }

    fn failing(&self) -> Option<String> {
        self.progress().error
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

    /// Writes what is pending, syncs, and stops the writer.
    fn close(&mut self) {
        self.flush();
        let _ = self.tx.send(Command::Stop);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        self.close();
    }
}
