//! Who may act on a queue job: the listener it was added on, or an
//! operator (a connection on the operator socket in the state folder, or
//! on a listener marked `"admin": true`). Everyone else is told the job
//! does not exist.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use mio::net::UnixListener;
use mio::Interest;

use crate::daemon::tokens;
use crate::daemon::Daemon;
use crate::error::Error;
use crate::keys::ConnKey;
use crate::net::conn::Conn;
use crate::net::stream::Stream;
use crate::queue::results::Entry;

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

impl Daemon {
    /// The name jobs added on listener `i` belong to.
    pub(super) fn owner_of(&self, listener: usize) -> String {
        match self.listeners.get(listener) {
            Some(l) => l.owner.clone(),
            None => "operator".into(),
        }
    }

    /// True if the connection has operator rights.
    pub(super) fn is_operator(&self, key: ConnKey) -> bool {
        self.conns.get(key).is_some_and(|c| c.admin)
    }

    /// The listener job `id` belongs to, if it is known at all (held, or
    /// fetched a while ago).
    fn owner_of_job(&self, id: u64) -> Option<&str> {
        match self.queue.get(id) {
            Some(Entry::Active(job)) => self.jobs.get(*job).map(|j| j.owner.as_str()),
            Some(Entry::Done(done)) => Some(done.owner.as_str()),
            None => self.queue.fetched_receipt(id).map(|f| f.owner.as_str()),
        }
    }

    /// True if the connection may see and act on job `id`: it came
    /// through the job's listener, or has operator rights. Jobs of old
    /// journals (no owner) are any listener's.
    pub(super) fn may_act_on(&self, key: ConnKey, id: u64) -> bool {
        let Some(conn) = self.conns.get(key) else {
            return false;
        };
        match self.owner_of_job(id) {
            None => false,
            Some(_) if conn.admin => true,
            Some(owner) => owner.is_empty() || owner == self.owner_of(conn.listener),
        }
    }

    /// Accepts connections on the operator socket; they go through the
    /// same connection machine as TCP clients, with operator rights.
    pub(super) fn accept_operator(&mut self) {
        loop {
            let Some((socket, _)) = &self.operator else {
                return;
            };
            let stream = match socket.accept() {
                Ok((stream, _)) => stream,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    log::warn!("accept on the operator socket failed: {e}");
                    return;
                }
            };
            self.stats.connections += 1;
            if self.conns.len() >= self.settings.max_connections {
                log::warn!(
                    "operator socket: refused, {} connections open",
                    self.conns.len()
                );
                continue;
            }
            let key = self.conns.next_key();
            let peer = crate::run::job::OPERATOR_PEER;
            let registry = self.poll.registry();
            let stream = Stream::Unix(stream);
            let conn = match Conn::new(stream, peer, (OPERATOR, true), registry, tokens::conn(key))
            {
                Ok(conn) => conn,
                Err(e) => {
                    log::warn!("operator socket: cannot watch the connection: {e}");
                    continue;
                }
            };
            self.conns.insert(conn);
            *self.per_client.entry(peer.ip()).or_default() += 1;
            let limits = self.conn_limits();
            if let Some(conn) = self.conns.get_mut(key) {
                conn.await_request(&limits);
            }
            self.schedule_conn(key);
        }
    }
}

/// Registers the operator socket with the poll.
pub fn watch(listener: &mut UnixListener, registry: &mio::Registry) -> std::io::Result<()> {
    registry.register(listener, tokens::OPERATOR, Interest::READABLE)
}
