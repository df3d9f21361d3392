//! Who may act on a queue job: the listener it was added on, or an
//! operator (a connection on the operator socket in the state folder, or
//! on a listener marked `"admin": true`). Everyone else is told the job
//! does not exist.

use crate::daemon::operator::OPERATOR;
use crate::daemon::tokens;
use crate::daemon::Daemon;
use crate::net::conn::Conn;
use crate::net::stream::Stream;

impl Daemon {
    /// The name jobs added on listener `i` belong to.
    pub(super) fn owner_of(&self, listener: usize) -> String {
        match self.listeners.get(listener) {
            Some(l) => l.owner.clone(),
            None => "operator".into(),
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
