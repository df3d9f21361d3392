//! TCP connections: accept, read the request, route it, write the answer.
//!
//! A request ends when the client shuts down its write side, or after
//! `request_gap` without new bytes for clients that keep the socket open.
//! A module call is routed as soon as its first `:` arrives, so the module
//! starts while the rest of its data streams to its stdin.

use std::io::Write;
use std::net::Shutdown;
use std::time::Instant;

use mio::{Interest, Token};

use crate::daemon::Daemon;
use crate::io::{read_once, OutBuf, ReadResult};
use crate::net::conn::{Conn, Phase};
use crate::net::protocol::{classify, Control, Head, Refusal};
use crate::run::job::{Job, Origin};
use crate::sanitize::loggable;

/// How long a connection may linger after its answer, for the client to close.
const LINGER: std::time::Duration = std::time::Duration::from_secs(2);

impl Daemon {
    pub(crate) fn accept(&mut self, listener: usize) {
        loop {
            let Some(l) = self.listeners.get(listener) else {
                return;
            };
            let Some(tcp) = &l.tcp else { return };
            let (mut stream, peer) = match tcp.accept() {
                Ok(accepted) => accepted,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    log::warn!("accept on {} failed: {e}", l.addr);
                    return;
                }
            };
            self.stats.connections += 1;
            let forbidden = !l.access.permits(peer.ip());
            if self.conns.len() >= self.settings.max_connections {
                // Best effort: the answer fits the socket buffer of a new connection.
                let _ = (&stream).write(Refusal::TooManyConnections.answer().as_bytes());
                let _ = stream.shutdown(Shutdown::Both);
                self.stats.refusal(Refusal::TooManyConnections);
                log::warn!("tcp {peer}: refused, {} connections open", self.conns.len());
                continue;
            }
            let entry = self.conns.vacant_entry();
            let key = entry.key();
            let interest = Interest::READABLE | Interest::WRITABLE;
            if let Err(e) = self
                .poll
                .registry()
                .register(&mut stream, Token(key), interest)
            {
                log::warn!("tcp {peer}: cannot watch the connection: {e}");
                continue;
            }
            entry.insert(Conn::new(stream, peer, listener));
            let held = self.per_client.entry(peer.ip()).or_default();
            *held += 1;
            // Refused through the connection's own answer path, so the
            // answer arrives whole before the close.
            let refusal = if forbidden {
                Some(Refusal::Forbidden)
            } else if *held > self.settings.max_connections_per_client {
                Some(Refusal::TooManyConnections)
            } else {
                None
            };
            if let Some(refusal) = refusal {
                log::warn!("tcp {peer}: refused: {}", refusal.answer());
                self.refuse(key, refusal);
                continue;
            }
            self.set_conn_deadline(key, Some(Instant::now() + self.settings.idle_timeout));
        }
    }

    /// Readiness of a connection: write what is pending, then read what came.
    pub(crate) fn conn_ready(&mut self, key: usize) {
        self.conn_write(key);
        self.conn_read(key);
    }

    /// Reads until the socket would block, so an edge is never missed.
    fn conn_read(&mut self, key: usize) {
        let mut scratch = std::mem::take(&mut self.scratch);
        while let Some(conn) = self.conns.get_mut(key) {
            if conn.peer_eof || matches!(conn.phase, Phase::Closed) {
                break;
            }
            match read_once(&conn.stream, &mut scratch) {
                ReadResult::Data(n) => self.conn_bytes(key, &scratch[..n]),
                ReadResult::Eof => {
                    conn.peer_eof = true;
                    if matches!(conn.phase, Phase::Linger) {
                        self.close(key);
                    } else {
                        self.request_ended(key);
                    }
                    break;
                }
                ReadResult::Blocked => break,
                ReadResult::Failed(e) => {
                    log::debug!("tcp {}: {e}", conn.peer);
                    self.close(key);
                    break;
                }
            }
        }
        self.scratch = scratch;
    }

    fn conn_bytes(&mut self, key: usize, bytes: &[u8]) {
        let max_request = self.settings.max_request;
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if !conn.reading_request() {
            return; // after the request: ignored (a classic client's trailing bytes)
        }
        conn.bytes_in += bytes.len();
        if conn.bytes_in > max_request {
            log::warn!("tcp {}: request over {max_request} bytes", conn.peer);
            return self.refuse(key, Refusal::TooLarge);
        }
        match &mut conn.phase {
            Phase::Head(buf) => {
                buf.extend_from_slice(bytes);
                self.route_head(key, false);
            }
            Phase::Job(job) => {
                let job = *job;
                if let Some(job) = self.jobs.get_mut(job) {
                    job.input.push(bytes);
                    job.bytes_in += bytes.len();
                }
                self.feed_stdin(job);
            }
            _ => return,
        }
        if self.conns.get(key).is_some_and(Conn::reading_request) {
            let settings = &self.settings;
            let quiet = if settings.request_gap.is_zero() {
                settings.idle_timeout
            } else {
                settings.request_gap
            };
            self.set_conn_deadline(key, Some(Instant::now() + quiet));
        }
    }

    /// The request is complete: the client half-closed or went quiet.
    fn request_ended(&mut self, key: usize) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if !conn.reading_request() {
            return;
        }
        conn.request_done = true;
        conn.deadline = None;
        match &conn.phase {
            Phase::Head(_) => self.route_head(key, true),
            Phase::Job(job) => {
                let job = *job;
                if let Some(job) = self.jobs.get_mut(job) {
                    job.input_complete = true;
                }
                self.feed_stdin(job);
            }
            _ => {}
        }
    }

    /// Routes the request once its head says where it goes.
    fn route_head(&mut self, key: usize, complete: bool) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let Phase::Head(buf) = &mut conn.phase else {
            return;
        };
        let head = classify(buf, complete);
        if head == Head::Incomplete {
            return;
        }
        if let Head::Module { name, .. } = &head {
            // A warm worker takes the whole request in one frame.
            let warm = self
                .modules
                .lookup(name)
                .is_some_and(|m| self.runs_warm(&m));
            if warm && !complete {
                return;
            }
        }
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let Phase::Head(buf) = &mut conn.phase else {
            return;
        };
        let buf = std::mem::take(buf);
        let peer = conn.peer;
        let listener = conn.listener;
        match head {
            Head::Incomplete => {}
            Head::Module { name, .. } if !self.serves(listener, &name) => {
                log::info!("tcp {peer}: module {name:?} is not served on this listener");
                self.refuse(key, Refusal::Forbidden);
            }
            Head::Module { name, body_start } => {
                let Some(module) = self.modules.lookup(&name) else {
                    log::info!("tcp {peer}: unknown module {:?}", loggable(&buf, 64));
                    return self.refuse(key, Refusal::UnknownModule);
                };
                let origin = Origin::Tcp {
                    conn: Some(key),
                    peer,
                };
                let job = Job::new(module, origin, &buf[body_start..], complete);
                if self.jobs.waiting_for(peer.ip()) >= self.settings.max_waiting_per_client {
                    log::warn!(
                        "tcp {peer}: {name}: this client has {} jobs waiting",
                        self.jobs.waiting_for(peer.ip())
                    );
                    return self.refuse(key, Refusal::Busy);
                }
                match self.jobs.add(job, self.settings.max_waiting) {
                    Ok(job) => self.conns[key].phase = Phase::Job(job),
                    Err(_) => {
                        log::warn!("tcp {peer}: {name}: waiting line full");
                        self.refuse(key, Refusal::Busy);
                    }
                }
            }
            Head::Control(control) => self.control(key, control, &buf),
        }
    }

    /// Requests the daemon answers itself.
    fn control(&mut self, key: usize, control: Control, request: &[u8]) {
        let reply = match control {
            Control::Helo => Ok(Some(b"oleh".to_vec())),
            Control::Hello => Ok(Some(b"olleh".to_vec())),
            Control::UnknownQueue => Err(Refusal::UnknownQueueRequest),
            Control::QueueAdd { module, data_start } => {
                self.queue_add(key, &module, &request[data_start..])
            }
            Control::QueueCheck(id) => self.queue_check(id),
            Control::QueueGet(id) => self.queue_get(key, id),
            Control::QueueCancel(id) => self.queue_cancel(id),
            Control::QueueStats => self.queue_stats(),
            Control::QueueList => self.queue_list(),
            Control::QueueInfo(id) => self.queue_info(id),
        };
        let peer = self.conns[key].peer;
        match reply {
            Ok(Some(answer)) => {
                log::info!(
                    "tcp {peer}: {:?} answered ({} bytes)",
                    loggable(request, 64),
                    answer.len()
                );
                self.answer(key, answer);
            }
            Ok(None) => {}
            Err(refusal) => {
                log::info!(
                    "tcp {peer}: {:?}: {}",
                    loggable(request, 64),
                    refusal.answer()
                );
                self.refuse(key, refusal);
            }
        }
    }

    /// True if the listener serves that module.
    pub(crate) fn serves(&self, listener: usize, module: &str) -> bool {
        self.listeners
            .get(listener)
            .is_none_or(|l| l.access.serves(module))
    }

    /// Answers with a seed-style `NNN: text` refusal, counting it.
    pub(crate) fn refuse(&mut self, key: usize, refusal: Refusal) {
        self.stats.refusal(refusal);
        if let Some(Phase::Job(job)) = self.conns.get(key).map(|c| &c.phase) {
            let job = *job;
            self.abandon_job(job);
        }
        self.answer(key, refusal.answer().as_bytes().to_vec());
    }

    /// Starts writing the answer; the request is over, whatever still comes.
    pub(crate) fn answer(&mut self, key: usize, answer: Vec<u8>) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if let Phase::QueueWait(id) = conn.phase {
            self.queue.unwatch(id, key);
        }
        if matches!(conn.phase, Phase::Closed) {
            return;
        }
        conn.phase = Phase::Answer(OutBuf::new(answer));
        conn.request_done = true;
        let deadline = Instant::now() + self.settings.idle_timeout;
        self.set_conn_deadline(key, Some(deadline));
        self.conn_write(key);
    }

    fn conn_write(&mut self, key: usize) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let Phase::Answer(out) = &mut conn.phase else {
            return;
        };
        match out.write_to(&conn.stream) {
            Ok(false) => {}
            Ok(true) => {
                // Our FIN tells the client the answer is complete; when the
                // client has sent its own, closing sends it.
                if conn.peer_eof {
                    self.close(key);
                } else {
                    let _ = conn.stream.shutdown(Shutdown::Write);
                    conn.phase = Phase::Linger;
                    self.set_conn_deadline(key, Some(Instant::now() + LINGER));
                }
            }
            Err(e) => {
                log::debug!("tcp {}: answer not delivered: {e}", conn.peer);
                self.close(key);
            }
        }
    }

    /// A connection's deadline came; what it means depends on its phase.
    pub(crate) fn conn_deadline(&mut self, key: usize, now: Instant) {
        let Some(conn) = self.conns.get(key) else {
            return;
        };
        if conn.deadline.is_none_or(|at| at > now) {
            return; // stale entry
        }
        match &conn.phase {
            Phase::Head(buf) if buf.is_empty() || self.settings.request_gap.is_zero() => {
                log::info!("tcp {}: idle, closed", conn.peer);
                self.refuse(key, Refusal::Idle);
            }
            Phase::Head(_) | Phase::Job(_) => self.request_ended(key),
            Phase::Answer(_) => {
                log::info!("tcp {}: not reading its answer, closed", conn.peer);
                self.close(key);
            }
            Phase::Linger => self.close(key),
            Phase::QueueWait(_) | Phase::Durable | Phase::Closed => {}
        }
    }
}
