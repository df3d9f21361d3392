//! A client connection (TCP, or Unix on the operator socket): one request,
//! one answer. The connection owns its
//! reading, its framing (where a request ends), its writing and its
//! lingering; each event returns a [`Verdict`] that the loop carries out.
//!
//! A request ends when the client shuts down its write side, or after the
//! quiet gap without new bytes for clients that keep the socket open. A
//! module call is routed as soon as its first `:` arrives, so the module
//! starts while the rest of its data streams to its stdin.

use std::net::{Shutdown, SocketAddr};
use std::time::{Duration, Instant};

use mio::{Interest, Registry, Token};

use crate::io::{read_once, OutBuf, ReadResult};
use crate::keys::JobKey;
use crate::net::protocol::{classify, Head, Refusal};
use crate::net::stream::Stream;

/// How long a connection may linger after its answer, for the client to close.
const LINGER: Duration = Duration::from_secs(2);

/// The limits a connection applies to its request.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// A request beyond this many bytes is refused.
    pub max_request: usize,
    /// Quiet time that ends a request; zero: only a half-close ends it.
    pub request_gap: Duration,
    /// Time a client may stay silent, or not read its answer.
    pub idle_timeout: Duration,
}

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
    /// Waiting for the queue store to keep a change before answering:
    /// `queue:add` (then `id:<n>`) or `queue:get` (then the result).
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

/// What a connection asks the loop to do after an event.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing until the next event.
    Wait,
    /// The request's head can be routed; `complete`: the request ended.
    Route {
        head: Head,
        request: Vec<u8>,
        complete: bool,
    },
    /// More request bytes for the job, in the read buffer's first `len`.
    Input { job: JobKey, len: usize },
    /// The request ended: the job's stdin closes once its input is written.
    InputEnded(JobKey),
    /// Answer with this refusal.
    Refuse(Refusal),
    /// Tear the connection down.
    Close,
}

#[derive(Debug)]
pub struct Conn {
    stream: Stream,
    pub peer: SocketAddr,
    /// Index of the listener it came through (its access rules); none
    /// (`usize::MAX`) for the operator socket.
    pub listener: usize,
    /// Operator rights: `queue:list`, and every listener's jobs.
    pub admin: bool,
    phase: Phase,
    /// The request has ended (half-close or quiet gap); later bytes are ignored.
    request_done: bool,
    /// The client shut down its write side (read returned 0).
    peer_eof: bool,
    /// Request bytes received.
    bytes_in: usize,
    /// The current deadline; what it means follows from the phase.
    deadline: Option<Instant>,
    /// A deadline set since the loop last scheduled one.
    new_deadline: Option<Instant>,
}

impl Conn {
    /// A new connection, watched under `token`, with `idle` to say something.
    pub fn new(
        mut stream: Stream,
        peer: SocketAddr,
        (listener, admin): (usize, bool),
        registry: &Registry,
        token: Token,
    ) -> std::io::Result<Self> {
        registry.register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)?;
        Ok(Conn {
            stream,
            peer,
            listener,
            admin,
            phase: Phase::Head(Vec::new()),
            request_done: false,
            peer_eof: false,
            bytes_in: 0,
            deadline: None,
            new_deadline: None,
        })
    }

    pub fn phase(&self) -> &Phase {
        &self.phase
    }

    /// The job this connection feeds and waits for, if any.
    pub fn job(&self) -> Option<JobKey> {
        match self.phase {
            Phase::Job(job) => Some(job),
            _ => None,
        }
    }

    /// True while the answer is still being written.
    pub fn is_answering(&self) -> bool {
        matches!(self.phase, Phase::Answer(_))
    }

    /// True while it has not been routed yet.
    pub fn is_unrouted(&self) -> bool {
        matches!(self.phase, Phase::Head(_))
    }

    /// True while the request may still bring bytes that matter.
    fn reading_request(&self) -> bool {
        !self.request_done && matches!(self.phase, Phase::Head(_) | Phase::Job(_))
    }

    fn set_deadline(&mut self, at: Option<Instant>) {
        self.deadline = at;
        self.new_deadline = at;
    }

    /// A deadline set since the last call, for the loop's timers.
    pub fn take_new_deadline(&mut self) -> Option<Instant> {
        self.new_deadline.take()
    }

    /// Waits for the client to say something.
    pub fn await_request(&mut self, limits: &Limits) {
        self.set_deadline(Some(Instant::now() + limits.idle_timeout));
    }

    /// Routed to a job: the rest of the request goes to its stdin.
    pub fn feed_job(&mut self, job: JobKey) {
        self.phase = Phase::Job(job);
    }

    /// Routed to `queue:get` of an unfinished job.
    pub fn await_result(&mut self, id: u64) {
        self.phase = Phase::QueueWait(id);
    }

    /// Routed to `queue:add`, or `queue:get` of a result: waits for the
    /// queue store.
    pub fn await_store(&mut self) {
        self.phase = Phase::Durable;
    }

    /// A routed request that must arrive whole (a warm worker takes it in
    /// one frame): reading goes on.
    pub fn keep_reading(&mut self, request: Vec<u8>) {
        self.phase = Phase::Head(request);
    }

    /// Starts writing `answer`; the request is over, whatever still comes.
    /// Returns the phase left (the loop undoes what it stood for), or
    /// `None` if the connection is closed.
    pub fn answer(&mut self, answer: Vec<u8>, limits: &Limits) -> Option<Phase> {
        if matches!(self.phase, Phase::Closed) {
            return None;
        }
        let left = std::mem::replace(&mut self.phase, Phase::Answer(OutBuf::new(answer)));
        self.request_done = true;
        self.set_deadline(Some(Instant::now() + limits.idle_timeout));
        Some(left)
    }

    /// Marks it closed; returns the phase left, or `None` if it already was.
    pub fn close(&mut self) -> Option<Phase> {
        self.deadline = None;
        match std::mem::replace(&mut self.phase, Phase::Closed) {
            Phase::Closed => None,
            left => Some(left),
        }
    }

    /// One step after a readiness event: writes what is pending, then reads
    /// one chunk (into `scratch`) and says what it means. The loop calls it
    /// again until it answers [`Verdict::Wait`] or [`Verdict::Close`], so
    /// the socket is read until it would block and no edge is missed.
    pub fn step(&mut self, scratch: &mut [u8], limits: &Limits) -> Verdict {
        if let Phase::Answer(_) = self.phase {
            if let Some(verdict) = self.write() {
                return verdict;
            }
        }
        loop {
            if self.peer_eof || matches!(self.phase, Phase::Closed) {
                return Verdict::Wait;
            }
            match read_once(&self.stream, scratch) {
                ReadResult::Data(n) => {
                    if let Some(verdict) = self.took(n, scratch, limits) {
                        return verdict;
                    }
                }
                ReadResult::Eof => {
                    self.peer_eof = true;
                    if matches!(self.phase, Phase::Linger) {
                        return Verdict::Close;
                    }
                    return self.request_ended();
                }
                ReadResult::Blocked => return Verdict::Wait,
                ReadResult::Failed(e) => {
                    log::debug!("tcp {}: {e}", self.peer);
                    return Verdict::Close;
                }
            }
        }
    }

    /// Writes what it can of the answer now.
    pub fn flush(&mut self) -> Option<Verdict> {
        self.write()
    }

    /// Writes the answer; once it is all out, shuts down our side and
    /// lingers (or closes, if the client already sent its FIN).
    fn write(&mut self) -> Option<Verdict> {
        let Phase::Answer(out) = &mut self.phase else {
            return None;
        };
        match out.write_to(&self.stream) {
            Ok(false) => None,
            Ok(true) if self.peer_eof => Some(Verdict::Close),
            Ok(true) => {
                // Our FIN tells the client the answer is complete.
                let _ = self.stream.shutdown(Shutdown::Write);
                self.phase = Phase::Linger;
                self.set_deadline(Some(Instant::now() + LINGER));
                None
            }
            Err(e) => {
                log::debug!("tcp {}: answer not delivered: {e}", self.peer);
                Some(Verdict::Close)
            }
        }
    }

    /// `n` bytes arrived in `scratch`.
    fn took(&mut self, n: usize, scratch: &[u8], limits: &Limits) -> Option<Verdict> {
        if !self.reading_request() {
            return None; // after the request: ignored (a classic client's trailing bytes)
        }
        self.bytes_in += n;
        if self.bytes_in > limits.max_request {
            log::warn!(
                "tcp {}: request over {} bytes",
                self.peer,
                limits.max_request
            );
            return Some(Verdict::Refuse(Refusal::TooLarge));
        }
        let quiet = if limits.request_gap.is_zero() {
            limits.idle_timeout
        } else {
            limits.request_gap
        };
        self.set_deadline(Some(Instant::now() + quiet));
        match &mut self.phase {
            Phase::Head(buf) => {
                buf.extend_from_slice(&scratch[..n]);
                self.route(false)
            }
            Phase::Job(job) => Some(Verdict::Input { job: *job, len: n }),
            _ => None,
        }
    }

    /// The request is complete: the client half-closed or went quiet.
    fn request_ended(&mut self) -> Verdict {
        if !self.reading_request() {
            return Verdict::Wait;
        }
        self.request_done = true;
        self.deadline = None;
        match self.phase {
            Phase::Head(_) => self.route(true).unwrap_or(Verdict::Wait),
            Phase::Job(job) => Verdict::InputEnded(job),
            _ => Verdict::Wait,
        }
    }

    /// The head, once it says where the request goes.
    fn route(&mut self, complete: bool) -> Option<Verdict> {
        let Phase::Head(buf) = &mut self.phase else {
            return None;
        };
        let head = classify(buf, complete);
        if head == Head::Incomplete {
            return None;
        }
        Some(Verdict::Route {
            head,
            request: std::mem::take(buf),
            complete,
        })
    }

    /// Its deadline came (`now`); what that means depends on the phase.
    pub fn expire(&mut self, now: Instant, limits: &Limits) -> Verdict {
        if self.deadline.is_none_or(|at| at > now) {
            return Verdict::Wait; // a stale timer
        }
        match &self.phase {
            Phase::Head(buf) if buf.is_empty() || limits.request_gap.is_zero() => {
                log::info!("tcp {}: idle, closed", self.peer);
                Verdict::Refuse(Refusal::Idle)
            }
            Phase::Head(_) | Phase::Job(_) => self.request_ended(),
            Phase::Answer(_) => {
                log::info!("tcp {}: not reading its answer, closed", self.peer);
                Verdict::Close
            }
            Phase::Linger => Verdict::Close,
            Phase::QueueWait(_) | Phase::Durable | Phase::Closed => Verdict::Wait,
        }
    }
}
