//! Rewriting the journal on the writer thread: the loop hands over a plan
//! (which frames of the current file to copy, and the few records it must
//! encode itself because they are not in the file), and the writer streams
//! it into `journal.tmp`, syncs it and renames it over the journal. The
//! loop holds offsets, not data: memory follows the number of live jobs,
//! and no live data is encoded on the loop.
//!
//! Every copied frame is checked (salt marker, length, checksum) as it is
//! copied; a rewrite that would copy a frame that was lost, or that does
//! not check out, is not done, and the old file stays.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

use crate::journal::frame::Salt;

/// Room left beyond a rewrite's size before one is started: a block for
/// the new file's own metadata. No more, since a journal that filled its
/// disk by itself can only shrink through a rewrite, and one of its live
/// records alone (every result fetched) needs next to nothing.
pub(super) const MARGIN: u64 = 4 * 1024;
/// Bytes copied at a time.
const CHUNK: usize = 64 * 1024;

/// Where a piece of the new file comes from.
#[derive(Debug)]
pub(super) enum Source {
    /// The frame of record `seq` at `at` in the current file, `len` bytes.
    Copy { seq: u64, at: u64, len: u64 },
    /// Frames the loop encoded (the header, the next id, records that are
    /// not in the file).
    Fresh(Vec<u8>),
}

/// One piece of a rewrite.
#[derive(Debug)]
pub(super) struct Piece {
    pub(super) source: Source,
    /// Written only if this record was lost: the result of a fetch or a
    /// cancel not yet kept stays in the new file unless its removal is on
    /// disk.
    pub(super) unless_kept: Option<u64>,
}

impl Piece {
    fn len(&self) -> u64 {
        match &self.source {
            Source::Copy { len, .. } => *len,
            Source::Fresh(bytes) => bytes.len() as u64,
        }
    }
}

/// A whole new file, in order.
#[derive(Debug)]
pub(super) struct Plan {
    pub(super) salt: Salt,
    pub(super) pieces: Vec<Piece>,
}

impl Plan {
    /// Bytes to copy from the file, and bytes the loop encoded.
    pub(super) fn sizes(&self) -> (u64, u64) {
        let mut sizes = (0, 0);
        for piece in &self.pieces {
            match piece.source {
                Source::Copy { len, .. } => sizes.0 += len,
                Source::Fresh(_) => sizes.1 += piece.len(),
            }
        }
        sizes
    }
}

/// Why a rewrite was not done.
pub(super) struct Failed {
    pub(super) error: io::Error,
    /// The new file took the journal's name, but could not be made durable
    /// or opened: the old handle must not be appended to.
    pub(super) after_rename: bool,
}

fn before(error: io::Error) -> Failed {
    Failed {
        error,
        after_rename: false,
    }
}

/// Bytes free for an unprivileged user in `dir`.
pub(super) fn free_bytes(dir: &Path) -> Option<u64> {
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs fills the struct it is given; the path is a C string.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(path.as_ptr(), &mut st) } != 0 {
        return None;
    }
    Some(st.f_bavail as u64 * st.f_frsize as u64)
}

/// Writes `plan` to `path.tmp` (copying frames from `current`), and puts
/// it in place as [`write_file`] does. `lost` tells the records that never
/// reached `current`.
pub(super) fn replace(
    path: &Path,
    current: Option<&File>,
    plan: &Plan,
    lost: impl Fn(u64) -> bool,
) -> Result<(File, u64), Failed> {
    let wanted = |p: &&Piece| p.unless_kept.is_none_or(&lost);
    let needed: u64 = plan.pieces.iter().filter(wanted).map(Piece::len).sum();
    let mut chunk = Vec::new();
    write_file(path, Some(needed), |out| {
        for piece in plan.pieces.iter().filter(wanted) {
            match &piece.source {
                Source::Fresh(bytes) => out.write_all(bytes)?,
                Source::Copy { seq, at, len } => {
                    if lost(*seq) {
                        return Err(io::Error::other(format!(
                            "record {seq} to copy did not reach the disk"
                        )));
                    }
                    let from =
                        current.ok_or_else(|| io::Error::other("no journal to copy from"))?;
                    copy_frame(from, *at, *len, &plan.salt, &mut chunk, out)?;
                }
            }
        }
        Ok(())
    })
}

/// Writes `path.tmp` with what `fill` writes (through a buffer, so it need
/// not be held whole), syncs it, renames it over `path`, syncs the folder,
/// and opens the result for appending; its length. With `needed`, the
/// folder must have that much room (and a margin) first.
pub(super) fn write_file(
    path: &Path,
    needed: Option<u64>,
    fill: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> Result<(File, u64), Failed> {
    let dir = path.parent().unwrap_or(Path::new("."));
    if let (Some(needed), Some(free)) = (needed, free_bytes(dir)) {
        if free < needed + MARGIN {
            return Err(before(io::Error::new(
                io::ErrorKind::StorageFull,
                format!("no room to rewrite the journal: {needed} bytes needed, {free} free"),
            )));
        }
    }
    let tmp = path.with_extension("tmp");
    let file = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(before)?;
    let mut out = BufWriter::with_capacity(256 * 1024, file);
    let written = fill(&mut out)
        .and_then(|_| out.flush())
        .and_then(|_| out.get_ref().sync_data());
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(before(e));
    }
    if let Err(e) = fs::rename(&tmp, path) {
        let _ = fs::remove_file(&tmp);
        return Err(before(e));
    }
    let after = |error| Failed {
        error,
        after_rename: true,
    };
    #[cfg(test)]
    if tests::fails_after_rename(path) {
        return Err(after(io::Error::other("a fault for a test")));
    }
    File::open(dir).and_then(|d| d.sync_all()).map_err(after)?;
    let file = open_for_append(path).map_err(after)?;
    let bytes = file.metadata().map_err(after)?.len();
    Ok((file, bytes))
}

/// The journal, opened to append to and to copy frames from.
pub(super) fn open_for_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().read(true).append(true).open(path)
}

/// Copies the frame at `at` to `out`, checking it on the way.
fn copy_frame(
    from: &File,
    at: u64,
    len: u64,
    salt: &Salt,
    chunk: &mut Vec<u8>,
    out: &mut dyn Write,
) -> io::Result<()> {
    let bad = || {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("the journal frame at {at} does not check out"),
        )
    };
    let mut head = [0u8; 16];
    from.read_exact_at(&mut head, at)?;
    let body = u32::from_le_bytes(head[8..12].try_into().expect("4 bytes"));
    let crc = u32::from_le_bytes(head[12..16].try_into().expect("4 bytes"));
    if &head[..8] != salt.marker() || 16 + body as u64 != len {
        return Err(bad());
    }
    out.write_all(&head)?;
    let mut hasher = salt.hasher(body);
    let mut done = 0u64;
    chunk.resize(CHUNK, 0);
    while done < body as u64 {
        let n = (body as u64 - done).min(CHUNK as u64) as usize;
        from.read_exact_at(&mut chunk[..n], at + 16 + done)?;
        hasher.update(&chunk[..n]);
        out.write_all(&chunk[..n])?;
        done += n as u64;
    }
    if hasher.finalize() != crc {
        return Err(bad());
    }
    Ok(())
}

/// Faults for the tests of a rewrite that fails after its rename.
#[cfg(test)]
pub(super) mod tests {
    use std::path::{Path, PathBuf};
    use std::sync::Mutex;

    /// The journals whose rewrites fail after the rename.
    static FAIL_AFTER_RENAME: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

    /// Makes the rewrites of the journal at `path` fail after their rename,
    /// or work again.
    pub(in crate::journal) fn fail_after_rename(path: &Path, fail: bool) {
        let mut paths = FAIL_AFTER_RENAME.lock().unwrap();
        paths.retain(|p| p != path);
        if fail {
            paths.push(path.to_path_buf());
        }
    }

    pub(super) fn fails_after_rename(path: &Path) -> bool {
        FAIL_AFTER_RENAME
            .lock()
            .is_ok_and(|paths| paths.iter().any(|p| p == path))
    }
}
