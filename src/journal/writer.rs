//! The journal's writer thread: it owns the file, writes each batch, calls
//! `fdatasync` once per batch (group commit) and wakes the loop with what
//! is now written and synced. `fdatasync` can take milliseconds; doing it
//! on the loop would stall every connection, hence the one helper thread.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use crate::journal::sync::SyncPolicy;

pub(super) enum Command {
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
            .mode(0o600)
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
