//! What a poll token stands for. Connection tokens are their slab keys;
//! everything else lives far above any slab's reach.

use mio::Token;

use crate::keys::{ConnKey, JobKey, Key, ScrapeKey, WebKey, WorkerKey};
use crate::run::process::Stream;
use crate::run::spawns::Owner;

/// The signal source's token.
pub const SIGNALS: Token = Token(usize::MAX);
/// The journal writer and the spawn thread wake the loop with this token.
pub const WAKER: Token = Token(usize::MAX - 1);
/// The operator socket in the state folder.
pub const OPERATOR: Token = Token(usize::MAX - 2);
/// Listener `i` has tokens `LISTENERS + 2i` (TCP) and `LISTENERS + 2i + 1` (UDP).
const LISTENERS: usize = 1 << 40;
/// A job's pipe has token `JOB_PIPES + 4 * job + stream`.
const JOB_PIPES: usize = 1 << 41;
/// A warm worker's pipe has token `WORKER_PIPES + 4 * worker + stream`.
const WORKER_PIPES: usize = 1 << 42;
/// The metrics listener's token.
pub const METRICS: Token = Token(usize::MAX - 3);
/// An HTTP connection to the metrics listener has `SCRAPES + key`.
const SCRAPES: usize = 1 << 43;

/// The dashboard's listener.
pub const WEB: Token = Token(usize::MAX - 4);
/// An HTTP connection to the dashboard has `WEB_CONNS + key`.
const WEB_CONNS: usize = 1 << 44;
/// A dashboard connection asks the queue as connection `WEB_ASKERS + key`:
/// far above any TCP connection's key, and below the listeners' tokens, so
/// the queue's answer for it is routed back to the dashboard
/// ([`web_asker`], [`asked_by_web`]) and never reaches a TCP client.
const WEB_ASKERS: usize = 1 << 39;

/// What a token stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Signals,
    Waker,
    Operator,
    TcpListener(usize),
    Udp(usize),
    JobPipe(JobKey, Stream),
    WorkerPipe(WorkerKey, Stream),
    Conn(ConnKey),
    Metrics,
    Scrape(ScrapeKey),
    Web,
    WebConn(WebKey),
}

pub fn source(token: Token) -> Source {
    match token.0 {
        _ if token == SIGNALS => Source::Signals,
        _ if token == WAKER => Source::Waker,
        _ if token == OPERATOR => Source::Operator,
        _ if token == METRICS => Source::Metrics,
        _ if token == WEB => Source::Web,
        t if t >= WEB_CONNS => Source::WebConn(WebKey::new(t - WEB_CONNS)),
        t if t >= SCRAPES => Source::Scrape(ScrapeKey::new(t - SCRAPES)),
        t if t >= WORKER_PIPES => {
            let t = t - WORKER_PIPES;
            Source::WorkerPipe(WorkerKey::new(t / 4), stream_of(t))
        }
        t if t >= JOB_PIPES => {
            let t = t - JOB_PIPES;
            Source::JobPipe(JobKey::new(t / 4), stream_of(t))
        }
        t if t >= LISTENERS && (t - LISTENERS).is_multiple_of(2) => {
            Source::TcpListener((t - LISTENERS) / 2)
        }
        t if t >= LISTENERS => Source::Udp((t - LISTENERS) / 2),
        t => Source::Conn(ConnKey::new(t)),
    }
}

fn stream_of(offset: usize) -> Stream {
    match offset % 4 {
        0 => Stream::Stdin,
        1 => Stream::Stdout,
        2 => Stream::Stderr,
        _ => Stream::Progress,
    }
}

pub fn tcp_listener(i: usize) -> Token {
    Token(LISTENERS + 2 * i)
}

pub fn udp(i: usize) -> Token {
    Token(LISTENERS + 2 * i + 1)
}

pub fn scrape(key: ScrapeKey) -> Token {
    Token(SCRAPES + key.index())
}

pub fn web_conn(key: WebKey) -> Token {
    Token(WEB_CONNS + key.index())
}

/// The connection key a dashboard connection asks the queue as.
pub fn web_asker(key: WebKey) -> ConnKey {
    ConnKey::new(WEB_ASKERS + key.index())
}

/// The dashboard connection a queue answer is for, if it is for one.
pub fn asked_by_web(key: ConnKey) -> Option<WebKey> {
    let i = key.index();
    (WEB_ASKERS..LISTENERS)
        .contains(&i)
        .then(|| WebKey::new(i - WEB_ASKERS))
}

pub fn conn(key: ConnKey) -> Token {
    Token(key.index())
}

/// The token of a process's pipe, by whose process it is. A process of
/// nobody's is never watched: it gets the waker's token, which reads no pipe.
pub fn pipe(owner: Owner, stream: Stream) -> Token {
    match owner {
        Owner::Job(job) => job_pipe(job, stream),
        Owner::Worker(worker) => worker_pipe(worker, stream),
        Owner::Clearing(_) | Owner::Nobody => WAKER,
    }
}

pub fn job_pipe(job: JobKey, stream: Stream) -> Token {
    Token(JOB_PIPES + 4 * job.index() + stream as usize)
}

pub fn worker_pipe(worker: WorkerKey, stream: Stream) -> Token {
    Token(WORKER_PIPES + 4 * worker.index() + stream as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_decode_to_what_they_encode() {
        let job = JobKey::new(7);
        let worker = WorkerKey::new(3);
        let conn_key = ConnKey::new(12);
        assert_eq!(
            source(job_pipe(job, Stream::Stderr)),
            Source::JobPipe(job, Stream::Stderr)
        );
        assert_eq!(
            source(worker_pipe(worker, Stream::Stdin)),
            Source::WorkerPipe(worker, Stream::Stdin)
        );
        assert_eq!(
            source(job_pipe(job, Stream::Progress)),
            Source::JobPipe(job, Stream::Progress)
        );
        assert_eq!(source(conn(conn_key)), Source::Conn(conn_key));
        assert_eq!(source(tcp_listener(2)), Source::TcpListener(2));
        assert_eq!(source(udp(2)), Source::Udp(2));
        assert_eq!(source(SIGNALS), Source::Signals);
        assert_eq!(source(WAKER), Source::Waker);
        assert_eq!(source(METRICS), Source::Metrics);
        let scrape_key = ScrapeKey::new(5);
        assert_eq!(source(scrape(scrape_key)), Source::Scrape(scrape_key));
        assert_eq!(source(OPERATOR), Source::Operator);
        let web = WebKey::new(9);
        assert_eq!(source(WEB), Source::Web);
        assert_eq!(source(web_conn(web)), Source::WebConn(web));
        assert_eq!(asked_by_web(web_asker(web)), Some(web));
        assert_eq!(asked_by_web(conn_key), None);
    }
}
