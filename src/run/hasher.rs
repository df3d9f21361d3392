//! Hashing module files for receipts, on a thread of its own: a large
//! module never stalls the loop, and each file is read as a stream. Results
//! are cached by (device, inode, size, modification time), so a file is
//! read again only when it changed.

use std::collections::HashMap;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use mio::Waker;

/// What makes two looks at a file the same file, unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FileKey {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    pub modified: SystemTime,
}

type Done = Arc<Mutex<Vec<(FileKey, io::Result<String>)>>>;

/// The loop's side of the hashing thread.
pub struct Hasher {
    tx: mpsc::Sender<(FileKey, PathBuf)>,
    done: Done,
    cache: HashMap<FileKey, String>,
}

impl Hasher {
    /// Starts the thread; `waker` is woken when a hash is ready.
    pub fn start(waker: Arc<Waker>) -> io::Result<Hasher> {
        let (tx, rx) = mpsc::channel::<(FileKey, PathBuf)>();
        let done: Done = Arc::default();
        let results = done.clone();
        std::thread::Builder::new()
            .name("hash".into())
            .spawn(move || {
                for (key, path) in rx {
                    let hash = sha256_file(&path);
                    if let Ok(mut results) = results.lock() {
                        results.push((key, hash));
                    }
                    let _ = waker.wake();
                }
            })?;
        Ok(Hasher {
            tx,
            done,
            cache: HashMap::new(),
        })
    }

    /// The hash of this file as it is, if known; else it is asked for.
    pub fn hash(&mut self, key: &FileKey, path: &Path) -> Option<String> {
        if let Some(hash) = self.cache.get(key) {
            return Some(hash.clone());
        }
        let _ = self.tx.send((key.clone(), path.to_path_buf()));
        None
    }

    /// Hashes finished since the last call (now cached).
    pub fn finished(&mut self) -> Vec<(FileKey, String)> {
        let done = self
            .done
            .lock()
            .map(|mut d| std::mem::take(&mut *d))
            .unwrap_or_default();
        let mut hashes = Vec::new();
        for (key, hash) in done {
            match hash {
                Ok(hash) => {
                    self.cache.insert(key.clone(), hash.clone());
                    hashes.push((key, hash));
                }
                Err(e) => log::warn!("cannot hash a module file: {e}"),
            }
        }
        hashes
    }
}

/// The SHA-256 of a file as lower-case hex, read as a stream so a large
/// module is never held in memory.
pub fn sha256_file(path: &Path) -> io::Result<String> {
    use sha2::{Digest, Sha256};
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0; 64 * 1024];
    loop {
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => hasher.update(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_files_hash_as_sha256() {
        let dir = std::env::temp_dir().join(format!("bgjob-sha-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("abc");
        std::fs::write(&file, b"abc").unwrap();
        assert_eq!(
            sha256_file(&file).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
