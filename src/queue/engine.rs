//! The queue engine: the one owner of everything about queued jobs, behind
//! one interface, in the shape of a sans-I/O protocol state machine. The
//! loop feeds it requests (each naming the connection to answer, if any)
//! and what became of the jobs it said to run, then drains it:
//! [`QueueEngine::poll_event`] for answers, jobs to run and jobs to kill,
//! and [`QueueEngine::poll_timeout`] for its next deadline, which the loop
//! puts in its poll timeout. Nothing in it blocks: a request whose answer
//! needs storage is answered by an event in a later turn.
//!
//! The local engine (`local.rs`) keeps the queue in this daemon's journal
//! (or in memory); an engine shared by several hosts fits the same shape.

use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime};

use crate::keys::ConnKey;
use crate::net::protocol::Refusal;
use crate::queue::options::{JobOptions, Priority};
use crate::queue::store::{Removal, Status};
use crate::run::modules::Module;
use crate::run::receipt::Receipt;

/// Who asks: the connection to answer, and the rights it has.
#[derive(Debug, Clone)]
pub struct Asker {
    pub conn: ConnKey,
    /// The listener's name: jobs added on it are this asker's.
    pub owner: String,
    /// An operator sees every job.
    pub operator: bool,
}

/// A job offered to the queue: `queue:add` (with the connection waiting
/// for its id) or a datagram (with its sender).
#[derive(Debug, Clone)]
pub struct NewJob {
    pub module: Rc<Module>,
    pub data: Vec<u8>,
    /// The listener it belongs to (empty for a datagram).
    pub owner: String,
    pub client: Option<IpAddr>,
    /// The client waiting for `id:<n>`; none for a datagram.
    pub conn: Option<ConnKey>,
    /// The datagram's sender; none for `queue:add`.
    pub udp_peer: Option<SocketAddr>,
    /// Its place in the waiting line: its own, else its module policy's.
    pub priority: Priority,
    /// What it asked for on `queue:add`, its retries resolved (its own,
    /// else its module policy's).
    pub options: JobOptions,
}

/// How full the daemon's own waiting line is, and the bounds: the engine
/// adds what it holds itself and decides whether a new job fits.
#[derive(Debug, Clone, Copy, Default)]
pub struct Admission {
    /// Jobs in the daemon's waiting line, in all and of this client.
    pub waiting: usize,
    pub client_waiting: usize,
    /// Bytes of queue and datagram jobs' data the daemon holds, in all and
    /// of this client.
    pub data_bytes: usize,
    pub client_data_bytes: usize,
    pub max_waiting: usize,
    pub max_waiting_per_client: usize,
    pub max_waiting_bytes: usize,
    pub max_waiting_bytes_per_client: usize,
    /// Jobs of the new job's module in the daemon's waiting line, and its
    /// module's own bound (`module_policy`'s `max_waiting`), if it has one.
    pub module_waiting: usize,
    pub module_max_waiting: Option<usize>,
}

/// How many bytes of unfetched results are kept, and for how long.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    pub total: usize,
    pub per_client: usize,
    pub time: Duration,
}

/// A job the engine says to run now. Given back to the engine by its id
/// when it starts ([`QueueEngine::started`]) and ends ([`QueueEngine::finished`]).
#[derive(Debug, Clone)]
pub struct RunJob {
    pub id: u64,
    pub module: Rc<Module>,
    pub data: Rc<[u8]>,
    /// The datagram's sender; none for a queue job.
    pub udp_peer: Option<SocketAddr>,
    pub owner: String,
    pub client: Option<IpAddr>,
    /// Runs started before (more than zero: it was interrupted).
    pub attempts: u32,
    /// Its place in the waiting line.
    pub priority: Priority,
    /// Its own time limit, within its module's.
    pub timeout: Option<Duration>,
    pub added_at: SystemTime,
    /// When it was accepted, on this daemon's clock.
    pub created: Instant,
}

/// How a job the engine said to run ended.
#[derive(Debug, Clone)]
pub struct Finish {
    /// The answer a direct call would have had.
    pub answer: Rc<[u8]>,
    pub receipt: Receipt,
    /// Killed at the end of the shutdown grace period: with a journal it
    /// runs again after the restart.
    pub interrupted: bool,
    /// The first line it wrote to stderr.
    pub stderr: String,
    /// How long to wait before another attempt, if it failed and has
    /// retries left (its module policy's backoff, with jitter).
    pub retry_wait: Duration,
}

/// Finds a job's module by name (at start-up, and for `queue:retry`).
pub type Lookup<'a> = &'a mut dyn FnMut(&str) -> Option<Rc<Module>>;

/// What `queue:retry` queues again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetryTarget {
    /// One failed job (operators, or its own listener).
    Id(u64),
    /// Every failed job of a module (operators).
    Module(String),
}

/// What a connection waits for after a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// The store to keep a change (`id:<n>`, a fetch, a cancel).
    Store,
    /// The job to finish (`queue:get`).
    Result(u64),
}

/// The engine's part of `queue:stats`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueStats {
    /// Jobs accepted whose record is not kept yet (they count as waiting).
    pub unkept: usize,
    pub done_unfetched: usize,
    pub results_bytes: usize,
    pub next_id: u64,
    pub store: Status,
    /// Modules whose queued jobs do not start, by name.
    pub paused: Vec<String>,
}

/// What the dashboard shows of the queue, read at once.
#[derive(Debug, Clone, Default)]
pub struct QueueView {
    /// Jobs held until a later run time (a delay, or a retry's wait).
    pub scheduled: usize,
    /// Jobs accepted whose record is not kept yet (they count as waiting).
    pub unkept: usize,
    /// Held results of jobs that failed for good, in all.
    pub failed_total: usize,
    /// Those of them that failed last, at most the number asked, newest first.
    pub failed: Vec<crate::queue::results::FailedResult>,
    /// Modules whose queued jobs do not start.
    pub paused: Vec<String>,
}

/// What the engine tells the loop to do.
#[derive(Debug, Clone)]
pub enum Event {
    /// Answer this connection.
    Answer { conn: ConnKey, answer: Rc<[u8]> },
    /// Refuse this connection's request.
    Refuse { conn: ConnKey, refusal: Refusal },
    /// This connection waits: its answer comes in a later event.
    Wait { conn: ConnKey, on: Wait },
    /// Put this job in the waiting line: it may start now.
    Run(RunJob),
    /// Job `id` was cancelled while running: kill it (its end comes back
    /// through [`QueueEngine::finished`]).
    Kill { id: u64 },
    /// Job `id` (of `module`) was cancelled before it started: take it
    /// out of the waiting line, unstarted.
    Withdraw { id: u64, module: String },
    /// The engine's counters, for `queue:stats` on this connection.
    Stats { conn: ConnKey, stats: QueueStats },
    /// The starting of `module`'s queued jobs stops (`paused`) or restarts:
    /// the waiting line holds them, or lets them start again.
    Pause { module: String, paused: bool },
    /// `queue:list` rows of the engine's jobs (`id module transport status
    /// age_secs`), by id.
    List {
        conn: ConnKey,
        rows: Vec<(u64, String)>,
    },
}

/// The queue, whichever engine keeps it.
pub trait QueueEngine {
    /// Offers a job: refused at once (busy, storage failing), or accepted
    /// under the id returned; `id:<n>` and the job's `Run` follow once it
    /// is kept.
    fn add(&mut self, job: NewJob, room: Admission, keep: Retention) -> Result<u64, Refusal>;
    /// `queue:check`: `0` waiting, `1` running, `2` done.
    fn check(&mut self, asker: Asker, id: u64);
    /// `queue:get`: the result, once the job is done and its fetch kept.
    fn get(&mut self, asker: Asker, id: u64);
    /// `queue:cancel`: withdraws a waiting job, kills a running one, drops
    /// a result.
    fn cancel(&mut self, asker: Asker, id: u64);
    /// `queue:info`: the job's receipt.
    fn info(&mut self, asker: Asker, id: u64);
    /// `queue:list`: every job and result (operators only).
    fn list(&mut self, asker: Asker);
    /// `queue:stats`: the engine's counters.
    fn stats(&mut self, conn: ConnKey);
    /// `queue:failed`: the failed jobs whose results are held (operators).
    fn failed(&mut self, asker: Asker);
    /// `queue:retry`: failed jobs run once more, as their next attempt.
    fn retry(&mut self, asker: Asker, target: RetryTarget, lookup: Lookup);
    /// `queue:pause:<module>` (`paused`) or `queue:resume:<module>`
    /// (operators only): stops or restarts the starting of its queued jobs.
    fn pause(&mut self, asker: Asker, module: String, paused: bool);
    /// Run `attempt` of job `id` started.
    fn started(&mut self, id: u64, attempt: u32);
    /// Job `id` said how far it is (shown by `queue:info` while it runs).
    fn progress(&mut self, id: u64, progress: crate::run::progress::Progress);
    /// Job `id` ended.
    fn finished(&mut self, id: u64, finish: Finish, keep: Retention);
    /// Job `id` is gone without a result (dropped at start-up or shutdown).
    fn removed(&mut self, id: u64, why: Removal);
    /// The connection left: nothing of it is answered any more.
    fn forget(&mut self, conn: ConnKey);
    /// At shutdown, a job of the waiting line that never started: kept for
    /// the next start (true) or dropped; its waiting clients are told.
    fn stop_waiting(&mut self, id: u64) -> bool;
    /// Housekeeping: results past their retention time expire.
    fn tick(&mut self, now: Instant, keep: Retention);
    /// Storage reported progress (the loop's waker).
    fn wake(&mut self);
    /// The end of a loop turn: the turn's changes go to storage together.
    fn end_turn(&mut self);
    /// The next event, if any.
    fn poll_event(&mut self) -> Option<Event>;
    /// When the engine wants a turn even if nothing happens.
    fn poll_timeout(&self) -> Option<Instant>;
    /// Jobs accepted but not kept yet, in all, of this client, and datagrams:
    /// they count as waiting.
    fn unkept(&self, client: Option<IpAddr>) -> (usize, usize, usize);
    /// What the dashboard shows of the queue, with at most `listed` failed
    /// jobs (those that failed last).
    fn view(&self, listed: usize) -> QueueView;
    /// Why new jobs would fail now, if they would.
    fn failing(&self) -> Option<String>;
    /// True if what it keeps survives a restart.
    fn durable(&self) -> bool;
    /// Where the queue is kept, for `queue:stats` and `/metrics`.
    fn status(&self) -> Status;
    /// Bytes of unfetched results held.
    fn results_bytes(&self) -> usize;
    /// True once no answer waits for storage.
    fn settled(&self) -> bool;
    /// Stores what is pending and stops.
    fn close(&mut self);
    /// After a load: its tables drop the capacity the load left.
    fn shrink(&mut self);
    /// After a load: what outlives it is copied into fresh allocations, so
    /// the load's pages can go back to the kernel (`daemon/memory.rs`).
    fn compact(&mut self);
}
