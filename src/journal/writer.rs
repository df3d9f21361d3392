//! The journal's writer thread: it owns the file, writes each batch, calls
//! `fdatasync` once per batch (group commit) and wakes the loop with what
//! is now written and synced. `fdatasync` can take milliseconds; doing it
//! on the loop would stall every connection, hence the one helper thread.
//!
//! A write that fails (disk full, an immutable file) is undone to the last
//! whole record: the records before it are on disk, the rest of its batch
//! is reported lost record by record, so exactly the changes that are not
//! on disk are refused. The error stays reported until a later write
//! succeeds.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use crate::journal::state::write_floor;
use crate::journal::sync::SyncPolicy;

pub(super) enum Command {
    /// Frames, and where each record ends in them with its sequence number.
    Append(Vec<u8>, Vec<(usize, u64)>),
    /// Replace the file with this snapshot (header included), atomically.
    Replace(Vec<u8>, u64),
    /// Reserve id counters below this in the state folder's id floor, as
    /// record `seq` (`floor.rs`).
    Reserve(u64, u64),
    Stop,
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
    /// Set while writes fail; cleared by the next one that succeeds.
    pub error: Option<String>,
    /// Sequence numbers (first, last) of records that did not reach the
    /// disk and never will; taken by the loop.
    pub lost: Vec<(u64, u64)>,
}

pub(super) struct Shared {
    pub(super) progress: Mutex<Progress>,
    pub(super) waker: Arc<mio::Waker>,
}

/// The writer thread: owns the file.
pub(super) struct Writer {
    pub(super) path: PathBuf,
    pub(super) file: File,
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
    /// Failed writes in a row.
    pub(super) failures: u64,
}

/// A failed step: the records it lost, and why.
struct Failure {
    lost: (u64, u64),
    error: std::io::Error,
}

impl Writer {
    pub(super) fn run(mut self, rx: Receiver<Command>) {
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
            let mut lost = Vec::new();
            let mut error = None;
            for cmd in batch {
                let step = match cmd {
                    Command::Stop => {
                        stop = true;
                        continue;
                    }
                    // After a failure, the rest of the batch is lost too:
                    // records must reach the disk in order.
                    Command::Append(_, marks) if error.is_some() => {
                        lost.extend(span(&marks));
                        continue;
                    }
                    Command::Replace(_, seq) | Command::Reserve(_, seq) if error.is_some() => {
                        lost.push((seq, seq));
                        continue;
                    }
                    Command::Append(bytes, marks) => self.append(&bytes, &marks),
                    Command::Replace(snapshot, seq) => self.replace(&snapshot, seq),
                    Command::Reserve(floor, seq) => self.reserve(floor, seq),
                };
                wrote = true;
                if let Err(failure) = step {
                    lost.push(failure.lost);
                    error = Some(failure.error);
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
            if error.is_none()
                && (due || (stop && self.unsynced && self.policy != SyncPolicy::Never))
            {
                if let Err(failure) = self.sync() {
                    lost.push(failure.lost);
                    error = Some(failure.error);
                }
            }
            self.report(wrote, lost, error);
            if stop {
                return;
            }
        }
    }

    /// Writes the frames; on failure undoes the partial record, so the
    /// records before it stay and the rest are lost.
    fn append(&mut self, bytes: &[u8], marks: &[(usize, u64)]) -> Result<(), Failure> {
        let mut done = 0;
        let result = loop {
            if done == bytes.len() {
                break Ok(());
            }
            match self.file.write(&bytes[done..]) {
                Ok(0) => break Err(std::io::Error::from(ErrorKind::WriteZero)),
                Ok(n) => done += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        let whole = marks.iter().take_while(|(end, _)| *end <= done).count();
        let kept = if whole == 0 { 0 } else { marks[whole - 1].0 };
        if let Some(&(_, seq)) = marks[..whole].last() {
            self.written = seq;
        }
        self.good_len += kept as u64;
        self.unsynced |= kept > 0;
        if let Err(error) = result {
            // Best effort: a torn frame left behind is skipped when read.
            let _ = self.file.set_len(self.good_len);
            let lost = span(&marks[whole..]).unwrap_or((self.written, self.written));
            return Err(Failure { lost, error });
        }
        if self.policy == SyncPolicy::EachRecord {
            self.sync()?;
        }
        Ok(())
    }

    /// Writes the snapshot beside the journal, syncs it, and renames it
    /// over. On failure the old file stays, whole.
    fn replace(&mut self, snapshot: &[u8], seq: u64) -> Result<(), Failure> {
        let file = write_snapshot(&self.path, snapshot).map_err(|error| Failure {
            lost: (seq, seq),
            error,
        })?;
        self.file = file;
        self.good_len = snapshot.len() as u64;
        self.synced_len = self.good_len;
        self.written = seq;
        self.synced = seq;
        self.unsynced = false;
        Ok(())
    }

    /// Writes the id floor (synced) beside the journal.
    fn reserve(&mut self, floor: u64, seq: u64) -> Result<(), Failure> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        write_floor(dir, floor).map_err(|e| Failure {
            lost: (seq, seq),
            error: std::io::Error::new(e.kind(), format!("cannot write the id floor: {e}")),
        })?;
        self.written = seq;
        Ok(())
    }

    /// `fdatasync`; on failure what was written since the last sync is
    /// cut off and lost (the kernel may have dropped it anyway).
    fn sync(&mut self) -> Result<(), Failure> {
        if let Err(error) = self.file.sync_data() {
            let lost = (self.synced + 1, self.written.max(self.synced + 1));
            let _ = self.file.set_len(self.synced_len);
            self.good_len = self.synced_len;
            self.written = self.synced;
            self.unsynced = false;
            return Err(Failure { lost, error });
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

    fn report(&mut self, wrote: bool, lost: Vec<(u64, u64)>, error: Option<std::io::Error>) {
        let file_bytes = self.file.metadata().map(|m| m.len()).unwrap_or(0);
        if let Ok(mut p) = self.shared.progress.lock() {
            match error {
                Some(e) => {
                    self.failures += 1;
                    log::error!(
                        "journal {}: {e} (failure {} in a row); the changes not written are refused",
                        self.path.display(),
                        self.failures
                    );
                    p.error = Some(e.to_string());
                }
                None if wrote && p.error.is_some() => {
                    log::warn!(
                        "journal {}: writes succeed again after {} failures",
                        self.path.display(),
                        self.failures
                    );
                    self.failures = 0;
                    p.error = None;
                }
                None => {}
            }
            p.lost.extend(lost);
            p.written = self.written;
            p.synced = self.synced;
            p.file_bytes = file_bytes;
        }
        let _ = self.shared.waker.wake();
    }
}

/// The sequence numbers of these records, first and last.
fn span(marks: &[(usize, u64)]) -> Option<(u64, u64)> {
    Some((marks.first()?.1, marks.last()?.1))
}

/// Writes `snapshot` to `path.tmp`, syncs it, renames it over `path`,
/// syncs the folder, and opens the result for appending.
pub(super) fn write_snapshot(path: &Path, snapshot: &[u8]) -> std::io::Result<File> {
    write_file(path, |out| out.write_all(snapshot))
}

/// As [`write_snapshot`], with the content written by `fill` piece by
/// piece (through a buffer), so it need not be held whole.
pub(super) fn write_file(
    path: &Path,
    fill: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> std::io::Result<File> {
    let tmp = path.with_extension("tmp");
    let file = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    let mut out = std::io::BufWriter::with_capacity(256 * 1024, file);
    let written = fill(&mut out)
        .and_then(|_| out.flush())
        .and_then(|_| out.get_ref().sync_data());
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        File::open(dir)?.sync_all()?;
    }
    OpenOptions::new().append(true).open(path)
}
