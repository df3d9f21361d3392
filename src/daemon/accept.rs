//! Accepting TCP clients: the connection limits, room made by closing the
//! slowest when the table is nearly full, and a spare descriptor so that a
//! client is refused rather than left hanging when descriptors run out.

use std::io::Write;
use std::net::Shutdown;
use std::time::{Duration, Instant};

use crate::daemon::tokens;
use crate::daemon::warnings::warn_limited;
use crate::daemon::{spare_descriptor, Daemon};
use crate::net::conn::Conn;
use crate::net::protocol::Refusal;
use crate::net::stream::Stream;

/// A connection younger than this is never closed to make room: its rate
/// says little yet.
const MIN_AGE_TO_EVICT: Duration = Duration::from_secs(1);

impl Daemon {
    pub(super) fn accept(&mut self, listener: usize) {
        loop {
            let Some(l) = self.listeners.get(listener) else {
                return;
            };
            let Some(tcp) = &l.tcp else { return };
            let (stream, peer) = match tcp.accept() {
                // An IPv4 client on an IPv6 socket is the same client as
                // over IPv4: one address for every per-client count.
                Ok((stream, peer)) => (stream, canonical(peer)),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) => {
                    let addr = l.addr;
                    warn_limited(
                        &mut self.warnings,
                        "accept: out of descriptors",
                        format_args!("accept on {addr}: {e}: waiting clients get 503 until connections close"),
                    );
                    if !self.refuse_with_spare(listener) {
                        return;
                    }
                    continue;
                }
                Err(e) => {
                    let addr = l.addr;
                    warn_limited(
                        &mut self.warnings,
                        "accept failed",
                        format_args!("accept on {addr} failed: {e}"),
                    );
                    return;
                }
            };
            self.stats.connections += 1;
            let forbidden = !l.access.permits(peer.ip());
            let (admin, framing) = (l.admin, l.framing);
            let room = self.conn_room();
            if self.open_conns() >= room - room / 8 {
                self.make_room(None);
            }
            if self.open_conns() >= room {
                // Best effort: the answer fits the socket buffer of a new connection.
                let _ = (&stream).write(Refusal::TooManyConnections.answer().as_bytes());
                let _ = stream.shutdown(Shutdown::Both);
                self.stats.refusal(Refusal::TooManyConnections);
                let open = self.conns.len();
                self.warn_limited(
                    Refusal::TooManyConnections.answer(),
                    format_args!(
                        "tcp {peer}: refused with 503: Too many connections ({open} open)"
                    ),
                );
                continue;
            }
            let key = self.conns.next_key();
            let registry = self.poll.registry();
            let rights = (listener, admin);
            let stream = Stream::Tcp(stream);
            let conn = match Conn::new(stream, peer, rights, registry, tokens::conn(key)) {
                Ok(conn) => conn.framed(framing),
                Err(e) => {
                    log::warn!("tcp {peer}: cannot watch the connection: {e}");
                    continue;
                }
            };
            self.conns.insert(conn);
            let held = self.per_client.entry(peer.ip()).or_default();
            *held += 1;
            let over = *held > self.settings.max_connections_per_client;
            // Refused through the connection's own answer path, so the
            // answer arrives whole before the close. A client at its own
            // bound first loses its slowest idle connection, as the table
            // does when it is full: otherwise one program holding idle
            // connections would lock out every other client of its address
            // (on one host, every client is 127.0.0.1).
            let refusal = if forbidden {
                Some(Refusal::Forbidden)
            } else if over && !self.make_room(Some(peer.ip())) {
                Some(Refusal::TooManyConnections)
            } else {
                None
            };
            if let Some(refusal) = refusal {
                self.refuse(key, refusal);
                continue;
            }
            let limits = self.conn_limits();
            if let Some(conn) = self.conns.get_mut(key) {
                conn.await_request(&limits);
            }
            self.schedule_conn(key);
        }
    }

    /// How many connections may be open: `max_connections`, or fewer when
    /// the descriptors left would run out first. The daemon keeps for
    /// itself 24 descriptors (metrics scrapes, the journal's files, files
    /// read on the loop), three per warm worker, and six per running slot
    /// (a job's three pipes, and the child's ends while it starts), at most
    /// half of what is left. Making room starts at 7/8 of this, so a table
    /// full of idle clients closes the slowest for a new one, rather than
    /// refusing everyone until the idle timeout once `accept` fails.
    fn conn_room(&self) -> usize {
        let workers = 3 * self.workers.slab.len();
        let left = self.descriptors.saturating_sub(24 + workers);
        let jobs = (6 * self.settings.max_jobs).min(left / 2);
        self.settings.max_connections.min(left - jobs).max(1)
    }

    /// Connections open, not counting those closed this turn.
    fn open_conns(&self) -> usize {
        self.conns.len() - self.closed.len()
    }

    /// The table is nearly full (or, with `of`, that client is at its own
    /// bound): closes the connection (of that client) still sending its
    /// request (or silent) at the lowest average rate since accept, the
    /// oldest first among equals, if it has been open for at least a
    /// second. Connections whose request is complete are never closed here.
    /// True if one was closed.
    fn make_room(&mut self, of: Option<std::net::IpAddr>) -> bool {
        let now = Instant::now();
        let slowest = self
            .conns
            .iter()
            .filter(|(_, c)| of.is_none_or(|ip| c.peer.ip() == ip))
            .filter(|(_, c)| c.reading_request() && c.pace().age(now) >= MIN_AGE_TO_EVICT)
            .map(|(key, c)| (key, c.pace().rate(now), c.pace().age(now)))
            .min_by(|a, b| a.1.total_cmp(&b.1).then(b.2.cmp(&a.2)));
        let Some((key, rate, age)) = slowest else {
            return false;
        };
        // As with any refusal, a job fed part of the request must not act on it.
        if let Some(job) = self.conns.get(key).and_then(Conn::job) {
            self.abandon_job(job);
        }
        let Some(conn) = self.conns.get_mut(key) else {
            return false;
        };
        log::warn!(
            "tcp {}: closed to make room, {rate:.0} bytes/s for {age:?}",
            conn.peer
        );
        let Some(left) = conn.evict(Refusal::TooSlow) else {
            return false;
        };
        self.stats.refusal(Refusal::TooSlow);
        self.left_phase(key, left);
        self.closed.push(key);
        true
    }

    /// Out of descriptors: closes the spare one so that a waiting client
    /// can be accepted and told `503: Too many connections` instead of
    /// hanging in the backlog, then opens the spare again. False when
    /// there was no spare or no client.
    fn refuse_with_spare(&mut self, listener: usize) -> bool {
        if self.spare_fd.take().is_none() {
            return false;
        }
        let accepted = self
            .listeners
            .get(listener)
            .and_then(|l| l.tcp.as_ref())
            .map(|tcp| tcp.accept());
        let refused = match accepted {
            Some(Ok((stream, _))) => {
                let _ = (&stream).write(Refusal::TooManyConnections.answer().as_bytes());
                let _ = stream.shutdown(Shutdown::Both);
                self.stats.refusal(Refusal::TooManyConnections);
                true
            }
            _ => false,
        };
        self.spare_fd = spare_descriptor();
        refused
    }
}

/// `::ffff:a.b.c.d` as `a.b.c.d`.
pub(super) fn canonical(peer: std::net::SocketAddr) -> std::net::SocketAddr {
    std::net::SocketAddr::new(peer.ip().to_canonical(), peer.port())
}
