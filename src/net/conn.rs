//! A client connection (TCP, or Unix on the operator socket): one request,
//! one answer. The connection owns its reading, its framing (where a
//! request ends), its writing and its lingering; each event returns a [`Verdict`] that the loop carries out.
//!
//! A request ends when the client shuts down its write side; for clients
//! that keep the socket open, a control request (`helo`, `queue:check:...`)
//! ends as soon as it parses whole with the socket empty, and any other
//! after a quiet gap derived from the connection (`net/quiet.rs`). A module
//! call is routed as soon as its first `:` arrives, so the module starts
//! while the rest of its data streams to its stdin. A request that arrives
//! too slowly is refused (`net/pace.rs`). A listener with first-read
//! framing ends a request as the old service did: with the first read that
//! holds a `:`, once the socket is empty, unless it ends on a full segment
//! (`net/framing.rs`).

use std::io::Write;
use std::net::{Shutdown, SocketAddr};
use std::os::fd::RawFd;
use std::rc::Rc;
use std::time::{Duration, Instant};

use mio::{Interest, Registry, Token};

use crate::io::{read_once, ReadResult, SharedOut};
use crate::keys::JobKey;
use crate::net::framing::Framing;
use crate::net::pace::{Pace, Pacing};
pub use crate::net::phase::{Limits, Phase, Verdict};
use crate::net::protocol::{classify, head_overlong, is_whole_control, Head, Refusal};
use crate::net::quiet::Link;
use crate::net::stream::Stream;

/// How long a connection may linger after its answer, for the client to close.
const LINGER: Duration = Duration::from_secs(2);

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
    /// Bytes came after the request had ended, and the daemon was told.
    late_told: bool,
    /// Where its request ends, as its listener said at accept.
    framing: Framing,
    /// A read of the request held a `:` (what ends it under first-read
    /// framing, once the socket is empty).
    colon_read: bool,
    /// The request's clock: its quiet gap and its deadlines.
    pace: Pace,
    /// The current deadline; what it means follows from the phase.
    deadline: Option<Instant>,
    /// A deadline set since the loop last scheduled one.
    new_deadline: Option<Instant>,
    /// When it was accepted: the start of the request's latency.
    pub opened: Instant,
    /// The socket was read until empty and what that meant is being
    /// carried out: the next step in the same drive need not read again
    /// (any byte that comes later brings an event of its own).
    read_dry: bool,
    /// Its request may be spliced into a job's stdin (cleared if the
    /// kernel refuses, for a plain read and write instead).
    splicing: bool,
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
            late_told: false,
            framing: Framing::default(),
            colon_read: false,
            pace: Pace::new(Instant::now()),
            deadline: None,
            new_deadline: None,
            opened: Instant::now(),
            read_dry: false,
            splicing: true,
        })
    }

    /// Frames its request as `framing` says (the listener's setting).
    pub fn framed(mut self, framing: Framing) -> Self {
        self.framing = framing;
        self
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

    /// The TCP socket's descriptor, lent to a module whose answer streams
    /// (`daemon/streams.rs`); none for the operator socket.
    pub fn tcp_fd(&self) -> Option<std::os::fd::RawFd> {
        self.stream.tcp_fd()
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
    pub fn reading_request(&self) -> bool {
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
        self.set_deadline(Some(Instant::now() + limits.pacing.idle_timeout));
    }

    /// The request's clock (its age and rate).
    pub fn pace(&self) -> &Pace {
        &self.pace
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
    pub fn answer(&mut self, answer: Rc<[u8]>, limits: &Limits) -> Option<Phase> {
        if matches!(self.phase, Phase::Closed) {
            return None;
        }
        let left = std::mem::replace(&mut self.phase, Phase::Answer(SharedOut::new(answer)));
        self.request_done = true;
        self.set_deadline(Some(Instant::now() + limits.pacing.idle_timeout));
        Some(left)
    }

    /// Closed at once to make room for a new client: the refusal is written
    /// best effort (it fits the socket buffer) instead of through the
    /// answer path, which lingers and would keep the slot.
    pub fn evict(&mut self, refusal: Refusal) -> Option<Phase> {
        let _ = (&self.stream).write(refusal.answer().as_bytes());
        let _ = self.stream.shutdown(Shutdown::Both);
        self.close()
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
    /// one chunk (into `scratch`, or spliced into `stdin`, the pipe of a
    /// streamed job that has nothing else waiting for it) and says what it
    /// means. The loop calls it again until it answers [`Verdict::Wait`]
    /// or [`Verdict::Close`], so the socket is read until it would block
    /// and no edge is missed.
    pub fn step(&mut self, scratch: &mut [u8], limits: &Limits, stdin: Option<RawFd>) -> Verdict {
        if let Phase::Answer(_) = self.phase {
            if let Some(verdict) = self.write() {
                return verdict;
            }
        }
        if std::mem::take(&mut self.read_dry) {
            return Verdict::Wait;
        }
        loop {
            if self.peer_eof || matches!(self.phase, Phase::Closed) {
                return Verdict::Wait;
            }
            if let Some(verdict) = stdin.and_then(|pipe| self.splice_into(pipe, limits)) {
                return verdict;
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
                ReadResult::Blocked => {
                    let verdict = self.drained(limits);
                    self.read_dry = verdict != Verdict::Wait;
                    return verdict;
                }
                ReadResult::Failed(e) => {
                    log::debug!("tcp {}: {e}", self.peer);
                    return Verdict::Close;
                }
            }
        }
    }

    /// Its timer came while its input was held and was not acted on: the
    /// next step sets a deadline again.
    pub fn forget_deadline(&mut self) {
        self.deadline = None;
    }

    /// A readiness event or a deadline starts a new drive: the socket is
    /// read again.
    pub fn new_drive(&mut self) {
        self.read_dry = false;
    }

    /// `n` bytes arrived in `scratch`.
    fn took(&mut self, n: usize, scratch: &[u8], limits: &Limits) -> Option<Verdict> {
        if !self.reading_request() {
            // After the request: not part of it, and told once.
            if self.request_done && !self.late_told {
                self.late_told = true;
                return Some(Verdict::Late(n));
            }
            return None;
        }
        let first = matches!(&self.phase, Phase::Head(b) if b.is_empty());
        self.pace.took(&scratch[..n], first);
        self.colon_read |= scratch[..n].contains(&b':');
        if self.pace.bytes() > limits.max_request {
            log::debug!(
                "tcp {}: request over {} bytes",
                self.peer,
                limits.max_request
            );
            return Some(Verdict::Refuse(Refusal::TooLarge));
        }
        match &mut self.phase {
            Phase::Head(buf) => {
                buf.extend_from_slice(&scratch[..n]);
                if head_overlong(buf) {
                    // Routed now (to its 400 or 500), not scanned again
                    // at every read of a dripping client.
                    self.request_done = true;
                    self.deadline = None;
                    return self.route(true);
                }
                if self.framing == Framing::FirstRead && self.colon_read {
                    // It ends once the socket is empty (`drained`): routed
                    // then, whole, rather than now and again then.
                    return None;
                }
                self.route(false)
            }
            Phase::Job(job) => Some(Verdict::Input { job: *job, len: n }),
            _ => None,
        }
    }

    /// The socket is empty: a control request that parses whole is
    /// complete (clients write these few bytes at once), and so is, under
    /// first-read framing, a request with a `:`; anything else waits for
    /// its quiet gap.
    fn drained(&mut self, limits: &Limits) -> Verdict {
        if !self.reading_request() {
            return Verdict::Wait;
        }
        if let Phase::Head(buf) = &self.phase {
            if is_whole_control(buf) {
                self.request_done = true;
                self.deadline = None;
                return self.route(true).unwrap_or(Verdict::Wait);
            }
        }
        if self.framing == Framing::FirstRead && self.colon_read {
            if !self.may_continue() {
                return self.request_ended();
            }
            // One large write may still be arriving, so the default rules end it instead, and nothing of
            // it is cut (or refused as too large only once it is).
            self.framing = Framing::Quiet;
            if let Some(verdict) = self.route(false) {
                return verdict;
            }
        }
        let link = self.link(&limits.pacing);
        let at = self
            .pace
            .drained(Instant::now(), link.as_ref(), &limits.pacing);
        if self.deadline != Some(at) {
            self.set_deadline(Some(at));
        }
        Verdict::Wait
    }

    /// True if what arrived may be the start of one larger write of the
    /// client's: more than one segment, or one full segment.
    fn may_continue(&self) -> bool {
        Link::of(&self.stream).is_some_and(|link| link.may_hold_more(self.pace.bytes()))
    }

    /// What the kernel knows of the connection, when the gap is derived.
    fn link(&self, pacing: &Pacing) -> Option<Link> {
        match pacing.request_gap {
            None => Link::of(&self.stream),
            Some(_) => None,
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
}

/// Writing its answer, then the linger.
mod answer;
/// What a connection's deadlines mean.
mod expire;
/// Its request spliced into a streamed job's stdin.
mod spliced;
