//! The journal: an append-only file of queue and UDP jobs in the state
//! folder, so a restart loses nothing.
//!
//! The loop encodes records into a buffer during a turn and hands the batch
//! to one writer thread at the end of it. That thread owns the file: it
//! writes, calls `fdatasync` once per batch (group commit: every `queue:add`
//! of a turn, and of the turns that passed during the previous sync, shares
//! one), and wakes the loop through a `mio::Waker` with the sequence number
//! now durable. `fdatasync` can take milliseconds; doing it on the loop
//! would stall every connection, hence the one helper thread.

pub mod record;

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::error::Error;
use record::{decode_all, Decoded, Record, MAGIC};

/// When records reach the disk, like beanstalkd's `-f`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncPolicy {
    /// `fdatasync` after each batch; `id:<n>` waits for it (the default).
    Always,
    /// `fdatasync` after every single record: the slow baseline, for benchmarks.
    EachRecord,
    /// `fdatasync` at most this often; answers do not wait for it.
    Every(Duration),
    /// Never `fdatasync` (the OS writes back when it likes); answers do not wait.
    Never,
}

impl SyncPolicy {
    /// Whether answers wait for `fdatasync` or only for `write`.
    fn acks_wait_for_sync(self) -> bool {
        matches!(self, SyncPolicy::Always | SyncPolicy::EachRecord)
    }
}

/// A journal smaller than this is never compacted.
const COMPACT_MIN_BYTES: u64 = 64 * 1024;

enum Command {
    Append(Vec<u8>, u64),
    /// Replace the file with this snapshot (header included), atomically.
    Replace(Vec<u8>, u64),
    Stop,
}

/// What the writer thread has done, read by the loop.
#[derive(Debug, Default, Clone)]
pub struct Progress {
    /// Records up to this sequence number are written.
    pub written: u64,
    /// ... and on disk.
    pub synced: u64,
    pub file_bytes: u64,
    pub last_sync: Option<SystemTime>,
    pub error: Option<String>,
}

struct Shared {
    progress: Mutex<Progress>,
    waker: Arc<mio::Waker>,
}

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
    live: HashMap<u64, u64>,
    live_bytes: u64,
}

impl Journal {
    /// Opens (creating) `dir/journal`, reads what it holds, and starts the
    /// writer thread. A damaged file never stops the start: what does not
    /// check out is skipped and reported in the returned [`Decoded`].
    pub fn open(
        dir: &Path,
        policy: SyncPolicy,
        waker: Arc<mio::Waker>,
    ) -> Result<(Journal, Decoded), Error> {
        fs::create_dir_all(dir)
            .map_err(|e| Error::Io(format!("cannot create state folder {}", dir.display()), e))?;
        let path = dir.join("journal");
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(Error::Io(format!("cannot read {}", path.display()), e)),
        };
        let decoded = decode_all(&bytes);
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
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
        let journal = Journal {
            path,
            policy,
            tx,
            shared,
            thread: Some(thread),
            batch: Vec::new(),
            seq: 0,
            file_bytes: bytes.len() as u64,
            live: HashMap::new(),
            live_bytes: 0,
        };
        Ok((journal, decoded))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Adds a record to this turn's batch; returns its sequence number.
    pub fn append(&mut self, record: &Record) -> u64 {
        let before = self.batch.len();
        record.encode_into(&mut self.batch);
        let len = (self.batch.len() - before) as u64;
        self.track(record, len);
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
            Record::Removed { id, .. } => self.live_bytes -= self.live.remove(id).unwrap_or(0),
            other => {
                *self.live.entry(other.id()).or_default() += len;
                self.live_bytes += len;
            }
        }
    }

    /// Hands this turn's records to the writer.
    pub fn flush(&mut self) {
        if !self.batch.is_empty() {
            let batch = std::mem::take(&mut self.batch);
            let _ = self.tx.send(Command::Append(batch, self.seq));
        }
    }

    /// The sequence number up to which answers may be given.
    pub fn durable(&self) -> u64 {
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
    pub fn wants_compaction(&self) -> bool {
        self.file_bytes > COMPACT_MIN_BYTES && self.file_bytes > 4 * self.live_bytes
    }

    /// Replaces the file with `records`, the live state. Records appended
    /// before are in the snapshot; records appended after go to the new file.
    pub fn compact(&mut self, records: &[Record]) {
        self.flush();
        let mut snapshot = MAGIC.to_vec();
        self.live.clear();
        self.live_bytes = 0;
        self.file_bytes = MAGIC.len() as u64;
        for record in records {
            let before = snapshot.len();
            record.encode_into(&mut snapshot);
            self.track(record, (snapshot.len() - before) as u64);
        }
        self.seq += 1;
        log::info!("journal compacted to {} bytes", snapshot.len());
        let _ = self.tx.send(Command::Replace(snapshot, self.seq));
    }

    /// Writes what is pending, syncs, and stops the writer.
    pub fn close(&mut self) {
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

/// Milliseconds since the Unix epoch, for records that outlive the process.
pub fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The writer thread: owns the file.
struct Writer {
    path: PathBuf,
    file: File,
    policy: SyncPolicy,
    shared: Arc<Shared>,
    last_sync: Instant,
    unsynced: bool,
}

impl Writer {
    fn run(mut self, rx: Receiver<Command>) {
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
            let mut last = None;
            let mut stop = false;
            let mut result = Ok(());
            for cmd in batch {
                let step = match cmd {
                    Command::Append(bytes, seq) => {
                        last = Some(seq);
                        self.append(&bytes)
                    }
                    Command::Replace(snapshot, seq) => {
                        last = Some(seq);
                        self.replace(&snapshot)
                    }
                    Command::Stop => {
                        stop = true;
                        Ok(())
                    }
                };
                result = result.and(step);
            }
            let due = match self.policy {
                SyncPolicy::Always => last.is_some(),
                SyncPolicy::EachRecord => false, // synced per record in append
                SyncPolicy::Every(period) => {
                    self.unsynced && (stop || self.last_sync.elapsed() >= period)
                }
                SyncPolicy::Never => false,
            };
            if due || (stop && self.unsynced && self.policy != SyncPolicy::Never) {
                result = result.and(self.sync());
            }
            self.report(last, result);
            if stop {
                return;
            }
        }
    }

    fn append(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.file.write_all(bytes)?;
        self.unsynced = true;
        if self.policy == SyncPolicy::EachRecord {
            self.sync()?;
        }
        Ok(())
    }

    /// Writes the snapshot beside the journal, syncs it, and renames it over.
    fn replace(&mut self, snapshot: &[u8]) -> std::io::Result<()> {
        let tmp = self.path.with_extension("tmp");
        let mut file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&tmp)?;
        file.write_all(snapshot)?;
        file.sync_data()?;
        fs::rename(&tmp, &self.path)?;
        if let Some(dir) = self.path.parent() {
            File::open(dir)?.sync_all()?;
        }
        self.file = OpenOptions::new().append(true).open(&self.path)?;
        self.unsynced = false;
        Ok(())
    }

    fn sync(&mut self) -> std::io::Result<()> {
        self.file.sync_data()?;
        self.unsynced = false;
        self.last_sync = Instant::now();
        if let Ok(mut p) = self.shared.progress.lock() {
            p.last_sync = Some(SystemTime::now());
        }
        Ok(())
    }

    fn report(&mut self, last: Option<u64>, result: std::io::Result<()>) {
        let file_bytes = self.file.metadata().map(|m| m.len()).unwrap_or(0);
        if let Ok(mut p) = self.shared.progress.lock() {
            if let Err(e) = result {
                log::error!("journal {}: {e}", self.path.display());
                p.error = Some(e.to_string());
            }
            if let Some(seq) = last {
                p.written = seq;
            }
            if !self.unsynced {
                p.synced = p.written;
            }
            p.file_bytes = file_bytes;
        }
        let _ = self.shared.waker.wake();
    }
}
