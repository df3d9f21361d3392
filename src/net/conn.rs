//! A TCP connection: one request, one answer.

use std::net::SocketAddr;
use std::time::Instant;

use mio::net::TcpStream;

use crate::io::OutBuf;
use crate::run::job::JobKey;

/// What a connection is doing.
#[derive(Debug)]
pub enum Phase {
    /// Reading the head of the request until it can be routed.
    Head(Vec<u8>),
    /// Routed to a module's job; the rest of the request streams to its stdin
    /// and the connection waits for the job's answer.
    Job(JobKey),
    /// Waiting in `queue:get` for a queue job's answer.
    QueueWait(u64),
    /// `queue:add` accepted: waiting for the job's record to reach the disk
    /// before answering `id:<n>`.
    Durable,
    /// Writing the answer.
    Answer(OutBuf),
    /// Answer sent and the write side shut down: reading until the client
    /// closes, so request bytes it is still sending do not turn our close
    /// into a reset that destroys the answer before it is read.
    Linger,
    /// Closed; removed from the slab at the end of the turn.
    Closed,
}

#[derive(Debug)]
pub struct Conn {
    pub stream: TcpStream,
    pub peer: SocketAddr,
    /// Index of the listener it came through (its access rules).
    pub listener: usize,
    pub phase: Phase,
    /// The request has ended (half-close or quiet gap); later bytes are ignored.
    pub request_done: bool,
    /// The client shut down its write side (read returned 0).
    pub peer_eof: bool,
    /// Request bytes received.
    pub bytes_in: usize,
    /// The current deadline; what it means follows from the phase.
    pub deadline: Option<Instant>,
}

impl Conn {
    pub fn new(stream: TcpStream, peer: SocketAddr, listener: usize) -> Self {
        Conn {
            stream,
            peer,
            listener,
            phase: Phase::Head(Vec::new()),
            request_done: false,
            peer_eof: false,
            bytes_in: 0,
            deadline: None,
        }
    }

    /// True while the request may still bring bytes that matter.
    pub fn reading_request(&self) -> bool {
        !self.request_done && matches!(self.phase, Phase::Head(_) | Phase::Job(_))
    }
}
