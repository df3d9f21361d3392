//! The journal: an append-only file of queue and UDP jobs in the state
//! folder, so a restart loses nothing. It is the queue store of a daemon
//! with a state folder (see `queue/store.rs`).
//!
//! The loop encodes records into a buffer during a turn and hands the batch
//! to the writer thread (`writer.rs`) at the end of it; group commit makes
//! every `queue:add` of a turn, and of the turns that passed during the
//! previous sync, share one `fdatasync`. The journal keeps its own view of
//! what is live (`live.rs`) to compact itself and to recover at start.

/// Field encoding of records.
mod codec;
/// The journal's own view of live jobs and results.
pub mod live;
/// The record format.
pub mod record;
/// When records reach the disk.
pub mod sync;
/// The writer thread.
mod writer;

use std::collections::{HashMap, VecDeque};
use std::fs::{self, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Instant, SystemTime};

use crate::error::Error;
use crate::queue::store::{Arrival, Change, Completion, QueueStore, Recovered, Status, Ticket};
use live::{unix_ms, Live};
use record::{decode_all, Record, Transport, MAGIC};
pub use sync::SyncPolicy;
pub use writer::Progress;
use writer::{Command, Shared, Writer};

/// A journal smaller than this is never compacted.
const COMPACT_MIN_BYTES: u64 = 64 * 1024;

/// The loop's side of the journal.
pub struct Journal {
    path: PathBuf,
    policy: SyncPolicy,
    tx: Sender<Command>,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    /// Frames encoded this turn, not yet handed to the writer.
    batch: Vec<u8>,
    /// Sequence number of the last record appended.
    seq: u64,
    /// Bytes in the file once everything handed over is written.
    file_bytes: u64,
    /// Bytes of records still live, by job id: the size a compaction leaves.
    live_bytes_by_id: HashMap<u64, u64>,
    live_bytes: u64,
    /// What a compaction writes and what recovery hands over.
    live: Live,
    /// Tickets waiting for their record to be durable, in sequence order.
    tickets: VecDeque<(u64, Ticket)>,
}

impl Journal {
    /// Opens (creating) `dir/journal`, replays what it holds, rewrites it
    /// with just the live records, and starts the writer thread. A damaged
    /// file never stops the start: what does not check out is skipped and
    /// reported.
    pub fn open(
        dir: &Path,
        policy: SyncPolicy,
        waker: Arc<mio::Waker>,
    ) -> Result<(Journal, Recovered), Error> {
        private_folder(dir)?;
        let path = dir.join("journal");
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(Error::Io(format!("cannot read {}", path.display()), e)),
        };
        let decoded = decode_all(&bytes);
        if decoded.bad_spots > 0 {
            log::warn!(
                "journal: {} damaged places, {} bytes skipped; the records around them were kept",
                decoded.bad_spots,
                decoded.skipped_bytes
            );
        }
        let mut live = Live::default();
        for record in &decoded.records {
            live.apply(record);
        }
        drop(decoded);
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&path)
            .and_then(|file| {
                // Whatever the umask or an older version made it: queued
                // data is nobody else's to read.
                file.set_permissions(fs::Permissions::from_mode(0o600))?;
                Ok(file)
            })
            .map_err(|e| Error::Io(format!("cannot open {}", path.display()), e))?;
        let shared = Arc::new(Shared {
            progress: Mutex::new(Progress {
                file_bytes: bytes.len() as u64,
                ..Progress::default()
            }),
            waker,
        });
        let (tx, rx) = mpsc::channel();
        let writer = Writer {
            path: path.clone(),
            file,
            policy,
            shared: shared.clone(),
            last_sync: Instant::now(),
            unsynced: false,
        };
        let thread = std::thread::Builder::new()
            .name("journal".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| Error::Io("cannot start the journal writer".into(), e))?;
        let recovered = live.recovered();
        let mut journal = Journal {
            path,
            policy,
            tx,
            shared,
            thread: Some(thread),
            batch: Vec::new(),
            seq: 0,
            file_bytes: bytes.len() as u64,
            live_bytes_by_id: HashMap::new(),
            live_bytes: 0,
            live,
            tickets: VecDeque::new(),
        };
        journal.compact();
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
        record.encode_into(&mut self.batch);
        let len = (self.batch.len() - before) as u64;
        self.track(record, len);
        self.live.apply(record);
        self.seq += 1;
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
            let _ = self.tx.send(Command::Append(batch, self.seq));
        }
    }

    /// The sequence number up to which answers may be given.
    fn durable_seq(&self) -> u64 {
        let p = self.progress();
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

    /// Replaces the file with the live records. Records appended before
    /// are in the snapshot; records appended after go to the new file.
    fn compact(&mut self) {
        self.flush();
        let mut snapshot = MAGIC.to_vec();
        self.live_bytes_by_id.clear();
        self.live_bytes = 0;
        self.file_bytes = MAGIC.len() as u64;
        for record in self.live.records() {
            let before = snapshot.len();
            record.encode_into(&mut snapshot);
            self.track(&record, (snapshot.len() - before) as u64);
        }
        self.seq += 1;
        log::info!("journal compacted to {} bytes", snapshot.len());
        let _ = self.tx.send(Command::Replace(snapshot, self.seq));
    }
}

impl QueueStore for Journal {
    fn submit(&mut self, change: Change, ticket: Option<Ticket>) {
        let seq = self.append(&record_of(change));
        if let Some(ticket) = ticket {
            self.tickets.push_back((seq, ticket));
        }
    }

    fn completions(&mut self) -> Vec<(Ticket, Completion)> {
        let progress = self.progress();
        if let Some(error) = progress.error {
            return self
                .tickets
                .drain(..)
                .map(|(_, ticket)| (ticket, Completion::Refused(error.clone())))
                .collect();
        }
        let durable = self.durable_seq();
        let mut done = Vec::new();
        while let Some(&(seq, ticket)) = self.tickets.front() {
            if seq > durable {
                break;
            }
            self.tickets.pop_front();
            done.push((ticket, Completion::Done));
        }
        done
    }

    fn end_turn(&mut self) {
        if self.wants_compaction() {
            self.compact();
        } else {
            self.flush();
        }
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

/// Creates the state folder readable by the daemon's user alone (modules
/// must not read the queue); an existing one that others can read is
/// reported, not changed (it may be shared on purpose).
fn private_folder(dir: &Path) -> Result<(), Error> {
    let fail = |e| Error::Io(format!("cannot create state folder {}", dir.display()), e);
    if !dir.is_dir() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(fail)?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(fail)?;
        return Ok(());
    }
    let mode = fs::metadata(dir).map_err(fail)?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        log::warn!(
            "state folder {} is open to other users (mode {mode:o}): chmod 700 {0}",
            dir.display()
        );
    }
    Ok(())
}

/// A store change as a journal record.
fn record_of(change: Change) -> Record {
    match change {
        Change::Added {
            id,
            arrival,
            module,
            data,
            added_at,
        } => {
            let (transport, peer) = match arrival {
                Arrival::Queue => (Transport::Queue, String::new()),
                Arrival::Udp(peer) => (Transport::Udp, peer.to_string()),
            };
            Record::Added {
                id,
                transport,
                peer,
                module,
                data,
                at_ms: unix_ms(added_at),
            }
        }
        Change::Started { id, attempt } => Record::Started { id, attempt },
        Change::Finished {
            id,
            module,
            answer,
            receipt,
            finished_at,
        } => Record::Finished {
            id,
            module,
            answer,
            receipt,
            at_ms: unix_ms(finished_at),
        },
        Change::Removed { id, why } => Record::Removed { id, why },
    }
}
