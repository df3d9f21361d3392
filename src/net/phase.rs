//! What a connection is doing and what it asks of the loop: the states of
//! the connection machine (`net/conn.rs`) and its verdicts.

use crate::io::SharedOut;
use crate::keys::JobKey;
use crate::net::pace::Pacing;
use crate::net::protocol::{Head, Refusal};

/// The limits a connection applies to its request.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// A request beyond this many bytes is refused.
    pub max_request: usize,
    /// How the request must arrive; its idle timeout is also the time a
    /// client may take to read its answer.
    pub pacing: Pacing,
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
    Answer(SharedOut),
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
    /// `len` more request bytes went from the socket straight into the
    /// job's stdin pipe (`net/splice.rs`).
    Spliced { job: JobKey, len: usize },
    /// The job's stdin pipe is full: the socket is not read until it
    /// drains, and the client waits in TCP's flow control.
    StdinFull(JobKey),
    /// The request ended: the job's stdin closes once its input is written.
    InputEnded(JobKey),
    /// Bytes arrived after the request had ended by its quiet gap (or,
    /// under first-read framing, its first read): they are not part of it.
    /// Said once per connection, for the log and the count.
    Late(usize),
    /// Answer with this refusal.
    Refuse(Refusal),
    /// Tear the connection down.
    Close,
}
