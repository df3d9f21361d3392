//! The state folder's small files: the lock that keeps a second daemon
//! off the folder, and the key that makes queue ids unguessable.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read, Seek, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use crate::error::Error;
use crate::journal::frame::fill_random;
use crate::queue::ids::IdKey;

/// Creates the state folder readable by the daemon's user alone (modules
/// must not read the queue); an existing one that others can read is
/// reported, not changed (it may be shared on purpose).
pub fn private_folder(dir: &Path) -> Result<(), Error> {
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

/// Takes the folder's lock (`flock` on `dir/lock`, held while the returned
/// file is open) and writes our pid into it. A second daemon is refused
/// with the holder's pid.
pub fn lock(dir: &Path) -> Result<File, Error> {
    let path = dir.join("lock");
    let io = |what: &str, e| Error::Io(format!("cannot {what} {}", path.display()), e);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .map_err(|e| io("open", e))?;
    if let Err(e) = file.try_lock() {
        let mut holder = String::new();
        let _ = file.read_to_string(&mut holder);
        let holder = holder.trim();
        let holder = if holder.is_empty() { "unknown" } else { holder };
        return Err(match e {
            fs::TryLockError::WouldBlock => Error::StateInUse(format!(
                "the state folder {} is in use by another bgjobd (pid {holder})",
                dir.display()
            )),
            fs::TryLockError::Error(e) => io("lock", e),
        });
    }
    file.set_len(0).map_err(|e| io("write", e))?;
    file.rewind().map_err(|e| io("write", e))?;
    writeln!(file, "{}", std::process::id()).map_err(|e| io("write", e))?;
    Ok(file)
}

/// The folder's id key (`dir/id.key`, 32 random bytes, mode 0600),
/// created on first use.
pub fn id_key(dir: &Path) -> Result<IdKey, Error> {
    let path = dir.join("id.key");
    let io = |what: &str, e| Error::Io(format!("cannot {what} {}", path.display()), e);
    match fs::read(&path) {
        Ok(bytes) => {
            let key: [u8; 32] = bytes
                .try_into()
                .map_err(|_| Error::Config(format!("{} is not 32 bytes long", path.display())))?;
            return Ok(IdKey(key));
        }
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(io("read", e)),
    }
    let mut key = [0u8; 32];
    fill_random(&mut key).map_err(|e| io("make", e))?;
    let tmp = dir.join("id.key.tmp");
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| io("write", e))?;
    file.write_all(&key).map_err(|e| io("write", e))?;
    file.sync_all().map_err(|e| io("write", e))?;
    fs::rename(&tmp, &path).map_err(|e| io("write", e))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io("write", e))?;
    Ok(IdKey(key))
}
