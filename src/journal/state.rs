//! The state folder's small files: the lock that keeps a second daemon
//! off the folder, the key that makes queue ids unguessable, and the id
//! floor (`id-floor`: id counters below it may have been handed out; see
//! `floor.rs`). The floor is held twice in its file, each copy with its
//! CRC-32, and replaced by a rename, so a damaged byte loses nothing and a
//! damaged or missing file lowers nothing.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read, Seek, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use crate::error::Error;
use crate::journal::frame::fill_random;
use crate::journal::record::MAX_COUNTER;
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
    write_private(dir, "id.key", &key).map_err(|e| io("write", e))?;
    Ok(IdKey(key))
}

const FLOOR_FILE: &str = "id-floor";
const FLOOR_MAGIC: &[u8; 8] = b"BGJOBF1\n";
const FLOOR_LEN: usize = 8 + 2 * 12;

/// The id floor file's bytes for `floor`: magic, then twice the floor and
/// its checksum.
pub fn encode_floor(floor: u64) -> Vec<u8> {
    let mut out = FLOOR_MAGIC.to_vec();
    for _ in 0..2 {
        out.extend_from_slice(&floor.to_le_bytes());
        out.extend_from_slice(&floor_checksum(floor).to_le_bytes());
    }
    out
}

fn floor_checksum(floor: u64) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(FLOOR_MAGIC);
    h.update(&floor.to_le_bytes());
    h.finalize()
}

/// The floor an id floor file says: the highest copy that checks out.
pub fn decode_floor(bytes: &[u8]) -> Option<u64> {
    if bytes.len() != FLOOR_LEN {
        return None;
    }
    bytes[8..]
        .chunks_exact(12)
        .filter_map(|copy| {
            let floor = u64::from_le_bytes(copy[..8].try_into().ok()?);
            let crc = u32::from_le_bytes(copy[8..].try_into().ok()?);
            (crc == floor_checksum(floor) && floor <= MAX_COUNTER).then_some(floor)
        })
        .max()
}

/// The folder's id floor: 0 when there is none; a damaged or unreadable
/// file is reported and counts as none.
pub fn read_floor(dir: &Path) -> u64 {
    let path = dir.join(FLOOR_FILE);
    let why = match fs::read(&path) {
        Ok(bytes) => match decode_floor(&bytes) {
            Some(floor) => return floor,
            None => "it is damaged".to_string(),
        },
        Err(e) if e.kind() == ErrorKind::NotFound => return 0,
        Err(e) => e.to_string(),
    };
    log::warn!(
        "id floor {}: {why}; ids continue from the journal's counter",
        path.display()
    );
    0
}

/// Writes `floor` to `dir/id-floor` durably.
pub fn write_floor(dir: &Path, floor: u64) -> std::io::Result<()> {
    write_private(dir, FLOOR_FILE, &encode_floor(floor))
}

/// Replaces `dir/name` with `bytes` (mode 0600) durably: a synced
/// `name.tmp` renamed over it, then the folder synced.
fn write_private(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = dir.join(format!("{name}.tmp"));
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    fs::rename(&tmp, dir.join(name))?;
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_floor_survives_any_one_damaged_byte() {
        let good = encode_floor(123_456);
        assert_eq!(decode_floor(&good), Some(123_456));
        for at in 0..good.len() {
            let mut bad = good.clone();
            bad[at] ^= 0x40;
            let got = decode_floor(&bad);
            assert!(got.is_none() || got == Some(123_456), "byte {at}: {got:?}");
            if at >= 8 {
                assert_eq!(got, Some(123_456), "byte {at}: the other copy");
            }
        }
        assert_eq!(decode_floor(&good[..20]), None);
        assert_eq!(
            decode_floor(&encode_floor(MAX_COUNTER + 1)),
            None,
            "past the id space"
        );
    }
}
