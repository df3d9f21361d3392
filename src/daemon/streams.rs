//! Streamed answers (`"answer": "stream"` in a module's policy): the cold
//! process of a direct TCP call gets its client's socket as its stdout, so
//! its output reaches the client as it is written, at the speed of the
//! socket, and the daemon holds none of it.
//!
//! What it gives up: once output has started, a failure cannot become a
//! `5xx` answer. The daemon tells from the socket's own counters whether
//! the module wrote anything: if not, a failed module still gets its
//! `NNN:` answer; if it did, the connection is reset (the client reads an
//! error, not a complete answer), and the outcome is logged and counted
//! (`streams_cut`). A successful one ends as any answer does: our FIN,
//! then lingering until the client closes. `max_output_bytes` does not
//! apply (nothing is held); the time limit does.
//!
//! The request of a streamed job goes the other way without crossing the
//! daemon either: once the head's bytes are written to the module's stdin,
//! the rest is spliced from the socket into the stdin pipe
//! (`net/splice.rs`); a full pipe holds the socket unread, as a full
//! backlog does for a buffered job.

use std::os::fd::{OwnedFd, RawFd};

use crate::config::policy::Answer;
use crate::daemon::Daemon;
use crate::keys::{ConnKey, JobKey};
use crate::net::lent;
use crate::run::job::{JobState, Origin};
use crate::run::outcome::Outcome;
use crate::run::process::Stream;

impl Daemon {
    /// The module's copy of its client's socket, if the job is a direct
    /// call of a module whose answer streams and its client still waits
    /// for it; `None`: the answer is buffered.
    pub(super) fn stream_socket(&self, key: JobKey) -> Option<OwnedFd> {
        let job = self.jobs.get(key)?;
        let Origin::Tcp {
            conn: Some(conn), ..
        } = job.origin
        else {
            return None;
        };
        let policy = self.settings.module_policy.get(&job.module.name)?;
        if policy.answer != Answer::Stream {
            return None;
        }
        let socket = self
            .conns
            .get(conn)
            .filter(|c| c.job() == Some(key))?
            .tcp_fd()?;
        match lent::lend(socket) {
            Ok(copy) => Some(copy),
            Err(e) => {
                log::warn!(
                    "module {}: answer buffered, the socket cannot be lent: {e}",
                    job.module.name
                );
                None
            }
        }
    }

    /// The stdin pipe that `conn`'s request may be spliced into: its job
    /// streams its answer, runs, and has no request bytes waiting.
    pub(super) fn splice_target(&self, conn: ConnKey) -> Option<RawFd> {
        let job = self.jobs.get(self.conns.get(conn)?.job()?)?;
        match &job.state {
            JobState::Running(run) if run.streamed && !job.input_held && job.input.is_empty() => {
                run.process.spliceable_stdin()
            }
            _ => None,
        }
    }

    /// Splicing found `job`'s stdin full: its client's socket is held
    /// unread until the pipe drains (`feed_stdin` then reads it again).
    /// False if it is not held: the pipe took more, or it is closed (and
    /// no event would ever end the hold), so the socket is read on.
    pub(super) fn stdin_full(&mut self, key: JobKey) -> bool {
        let token = crate::daemon::tokens::job_pipe(key, Stream::Stdin);
        let registry = self.poll.registry();
        let Some(job) = self.jobs.get_mut(key) else {
            return false;
        };
        let JobState::Running(run) = &mut job.state else {
            return false;
        };
        let waiting = matches!(
            run.process.stdin_full(registry, token),
            crate::run::process::StdinWrite::Waiting
        );
        job.input_held = waiting;
        waiting
    }

    /// True if `job` streams into `conn`'s socket and output has started.
    pub(super) fn stream_started(&self, conn: ConnKey, job: JobKey) -> bool {
        let streamed = self
            .jobs
            .get(job)
            .is_some_and(|j| matches!(&j.state, JobState::Running(run) if run.streamed));
        streamed && self.written(conn).is_none_or(|n| n > 0)
    }

    /// Bytes the module wrote into `conn`'s socket.
    fn written(&self, conn: ConnKey) -> Option<u64> {
        lent::bytes_written(self.conns.get(conn)?.tcp_fd()?)
    }

    /// A streamed job of `conn` ended with `outcome`; `answer` is what a
    /// buffered job would have answered (empty for a success).
    pub(super) fn end_stream(&mut self, conn: ConnKey, outcome: &Outcome, answer: Vec<u8>) {
        if *outcome == Outcome::Exited(0) {
            return self.answer(conn, answer);
        }
        match self.written(conn) {
            Some(0) => self.answer(conn, answer),
            written => {
                let peer = self.conns.get(conn).map(|c| c.peer);
                let bytes = written.map_or_else(|| "some".into(), |n| n.to_string());
                self.warn_limited(
                    "streamed answer cut",
                    format_args!(
                        "tcp {}: streamed answer cut after {bytes} bytes ({outcome}), connection reset",
                        peer.map_or_else(|| "-".into(), |p| p.to_string())
                    ),
                );
                self.cut_stream(conn);
            }
        }
    }

    /// Resets `conn`: the client must not take a cut answer for a whole one.
    pub(super) fn cut_stream(&mut self, conn: ConnKey) {
        self.stats.streams_cut += 1;
        if let Some(socket) = self.conns.get(conn).and_then(|c| c.tcp_fd()) {
            lent::reset_on_close(socket);
        }
        self.close(conn);
    }
}
