//! The operator socket in the state folder: where it is bound, with which
//! mode, and the listener index its connections carry. Apart from the
//! rights it grants (`rights.rs`) so the loop's start-up does not import
//! the files that implement the daemon.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use mio::net::UnixListener;
use mio::Interest;

use crate::daemon::tokens;
use crate::error::Error;

/// The listener index of connections on the operator socket.
pub const OPERATOR: usize = usize::MAX;

/// The operator socket's name in the state folder.
pub const SOCKET_NAME: &str = "admin.sock";

/// Binds `dir/admin.sock`, mode 0600 (the folder's lock is ours, so a
/// socket file already there is a dead daemon's).
pub fn bind_operator_socket(dir: &Path) -> Result<(UnixListener, PathBuf), Error> {
    let path = dir.join(SOCKET_NAME);
    let io = |what: &str, e| Error::Io(format!("cannot {what} {}", path.display()), e);
    match fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io("replace", e)),
        _ => {}
    }
    // Created 0600 from the start: no moment when others may connect.
    // SAFETY: umask only changes this process's file creation mask.
    let old = unsafe { libc::umask(0o177) };
    let bound = UnixListener::bind(&path);
    // SAFETY: as above, restoring it.
    unsafe { libc::umask(old) };
    let listener = bound.map_err(|e| io("listen on", e))?;
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600))
        .map_err(|e| io("set the mode of", e))?;
    Ok((listener, path))
}

/// Registers the operator socket with the poll.
pub fn watch(listener: &mut UnixListener, registry: &mio::Registry) -> std::io::Result<()> {
    registry.register(listener, tokens::OPERATOR, Interest::READABLE)
}
