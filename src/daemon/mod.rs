//! The daemon: one `mio::Poll` loop that owns every socket, every child's
//! pipes, the signal source, the job table and the queue. The parts it
//! drives live in `net/`, `run/`, `node/`, `queue/` and `journal/`; only
//! this folder holds `impl Daemon`.

/// `queue:` requests answered by the daemon.
mod admin;
/// The journal's use: held answers, recovery, compaction.
mod durable;
/// Counters for `queue:stats` and the log.
pub mod stats;
/// Module processes: start, feed, collect, reap, time limits.
mod supervise;
/// TCP: accept, read, route, answer.
mod tcp;
/// Deadlines, nearest first.
pub mod timers;
/// Datagrams.
mod udp;
/// `.js` jobs on warm Node.js workers.
mod warm;

use std::collections::{HashMap, VecDeque};
use std::panic::{self, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Token, Waker};
use signal_hook::consts::{SIGCHLD, SIGHUP, SIGINT, SIGTERM};
use signal_hook_mio::v1_0::Signals;
use slab::Slab;

use crate::config::cli::PanicPolicy;
use crate::config::Settings;
use crate::daemon::durable::Ack;
use crate::daemon::stats::Stats;
use crate::daemon::timers::{Timer, Timers};
use crate::error::Error;
use crate::journal::record::{Decoded, Record, Removal};
use crate::journal::Journal;
use crate::net::conn::{Conn, Phase};
use crate::net::listeners::Listener;
use crate::net::protocol::Refusal;
use crate::node::pool::Workers;
use crate::queue::results::QueueBook;
use crate::run::modules::ModuleIndex;
use crate::run::outcome::Usage;
use crate::run::spawn::Spawner;
use crate::run::table::JobTable;

/// The signal source's token.
const SIGNALS: Token = Token(usize::MAX);
/// The journal writer wakes the loop with this token.
const WAKER: Token = Token(usize::MAX - 1);
/// Listener `i` has tokens `LISTENERS + 2i` (TCP) and `LISTENERS + 2i + 1` (UDP).
const LISTENERS: usize = 1 << 40;
/// A job's pipe has token `PIPES + 4 * job + stream`.
const PIPES: usize = 1 << 41;
/// A warm worker's pipe has token `WORKER_PIPES + 4 * worker + stream`.
const WORKER_PIPES: usize = 1 << 42;
/// How often queue results are expired.
const HOUSEKEEPING: Duration = Duration::from_secs(1);
/// How often the module index is refreshed from modification times.
const MODULE_REFRESH: Duration = Duration::from_secs(10);

/// One of a child's three pipes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdin = 0,
    Stdout = 1,
    Stderr = 2,
}

/// What a token stands for; connection tokens are their slab keys.
enum Source {
    Signals,
    Waker,
    TcpListener(usize),
    Udp(usize),
    Pipe(usize, Stream),
    WorkerPipe(usize, Stream),
    Conn(usize),
}

fn source(token: Token) -> Source {
    match token.0 {
        _ if token == SIGNALS => Source::Signals,
        _ if token == WAKER => Source::Waker,
        t if t >= WORKER_PIPES => {
            Source::WorkerPipe((t - WORKER_PIPES) / 4, stream_of(t - WORKER_PIPES))
        }
        t if t >= PIPES => Source::Pipe((t - PIPES) / 4, stream_of(t - PIPES)),
        t if t >= LISTENERS && (t - LISTENERS).is_multiple_of(2) => {
            Source::TcpListener((t - LISTENERS) / 2)
        }
        t if t >= LISTENERS => Source::Udp((t - LISTENERS) / 2),
        t => Source::Conn(t),
    }
}

fn stream_of(offset: usize) -> Stream {
    match offset % 4 {
        0 => Stream::Stdin,
        1 => Stream::Stdout,
        _ => Stream::Stderr,
    }
}

pub fn pipe_token(job: usize, stream: Stream) -> Token {
    Token(PIPES + 4 * job + stream as usize)
}

pub fn worker_token(worker: usize, stream: Stream) -> Token {
    Token(WORKER_PIPES + 4 * worker + stream as usize)
}

use crate::config::source::SettingsSource;

pub struct Daemon {
    pub(crate) poll: Poll,
    pub(crate) settings: Settings,
    source: SettingsSource,
    pub(crate) listeners: Vec<Listener>,
    signals: Signals,
    pub(crate) conns: Slab<Conn>,
    pub(crate) jobs: JobTable,
    pub(crate) queue: QueueBook,
    pub(crate) modules: ModuleIndex,
    pub(crate) timers: Timers,
    pub(crate) stats: Stats,
    /// One read buffer for every socket and pipe.
    pub(crate) scratch: Vec<u8>,
    /// Connections closed this turn, removed at its end.
    closed: Vec<usize>,
    /// Set once SIGTERM/SIGINT arrived: when the grace period ends.
    pub(crate) stopping: Option<Instant>,
    panic_policy: PanicPolicy,
    last_refresh: Instant,
    pub(crate) started: Instant,
    /// The queue's journal, unless the state folder is `none`.
    pub(crate) journal: Option<Journal>,
    /// Answers held until their job's record is on disk, in journal order.
    pub(crate) acks: VecDeque<Ack>,
    pub(crate) spawner: Spawner,
    /// Open TCP connections by client address.
    pub(crate) per_client: HashMap<std::net::IpAddr, usize>,
    /// Warm Node.js workers and the jobs waiting for them.
    pub(crate) workers: Workers,
    /// Exits of children whose pid the spawn thread has not reported yet.
    pub(crate) early_exits: HashMap<u32, (i32, Usage)>,
    /// The Node.js binary, found on `PATH` at start and on SIGHUP.
    pub(crate) node: Option<PathBuf>,
}

impl Daemon {
    pub fn new(
        settings: Settings,
        source: SettingsSource,
        listeners: Vec<Listener>,
        modules_dir: PathBuf,
        panic_policy: PanicPolicy,
    ) -> Result<Daemon, Error> {
        let io_err = |what: &str| {
            let what = what.to_string();
            move |e| Error::Io(what, e)
        };
        let poll = Poll::new().map_err(io_err("cannot create the poll"))?;
        let mut signals = Signals::new([SIGTERM, SIGINT, SIGHUP, SIGCHLD])
            .map_err(io_err("cannot install signal handlers"))?;
        poll.registry()
            .register(&mut signals, SIGNALS, Interest::READABLE)
            .map_err(io_err("cannot watch signals"))?;
        let mut listeners = listeners;
        for (i, l) in listeners.iter_mut().enumerate() {
            let registry = poll.registry();
            if let Some(tcp) = &mut l.tcp {
                registry
                    .register(tcp, Token(LISTENERS + 2 * i), Interest::READABLE)
                    .map_err(io_err("cannot watch a listener"))?;
            }
            if let Some(udp) = &mut l.udp {
                registry
                    .register(udp, Token(LISTENERS + 2 * i + 1), Interest::READABLE)
                    .map_err(io_err("cannot watch a listener"))?;
            }
            let kinds = match (&l.tcp, &l.udp) {
                (Some(_), Some(_)) => "tcp and udp",
                (Some(_), None) => "tcp",
                _ => "udp",
            };
            log::info!("listening on {} ({kinds}, {})", l.addr, l.label);
            if !l.addr.ip().is_loopback() && l.access.allow.is_none() {
                log::warn!(
                    "{} is reachable from other hosts and has no allow list: any of them can run modules",
                    l.addr
                );
            }
        }
        if let Some((uid, gid)) = settings.module_limits.identity {
            log::info!("modules run as uid {uid}, gid {gid}: the modules folder and what they use must be open to them");
        }
        let modules = ModuleIndex::new(modules_dir);
        log::info!("{} modules in {}", modules.len(), modules.dir().display());
        let waker = Arc::new(
            Waker::new(poll.registry(), WAKER).map_err(io_err("cannot create the waker"))?,
        );
        let spawner = Spawner::start_thread(waker.clone(), &settings.module_env)
            .map_err(io_err("cannot start the spawn thread"))?;
        let (journal, decoded) = match &settings.state_dir {
            Some(dir) => {
                let (journal, decoded) = Journal::open(dir, settings.journal_sync, waker)?;
                log::info!(
                    "journal {} ({:?})",
                    journal.path().display(),
                    settings.journal_sync
                );
                (Some(journal), decoded)
            }
            None => {
                log::info!("no state folder: the queue is kept in memory only");
                (None, Decoded::default())
            }
        };
        let mut timers = Timers::default();
        timers.schedule(Instant::now() + HOUSEKEEPING, Timer::Housekeeping);
        let mut daemon = Daemon {
            poll,
            settings,
            source,
            listeners,
            signals,
            conns: Slab::new(),
            jobs: JobTable::default(),
            queue: QueueBook::default(),
            modules,
            timers,
            stats: Stats::default(),
            scratch: vec![0; 64 * 1024],
            closed: Vec::new(),
            stopping: None,
            panic_policy,
            last_refresh: Instant::now(),
            started: Instant::now(),
            journal,
            acks: VecDeque::new(),
            spawner,
            early_exits: HashMap::new(),
            workers: Workers::default(),
            per_client: HashMap::new(),
            node: None,
        };
        daemon.find_node();
        daemon.recover(decoded);
        Ok(daemon)
    }

    /// Runs until stopped by SIGTERM or SIGINT. Each turn:
    /// 1. wait for events, at most until the nearest deadline;
    /// 2. signals first (reap children, reload, stop);
    /// 3. sockets and pipes: accept, read requests, feed stdin, collect
    ///    stdout, write answers (a finished job routes its answer at once);
    /// 4. expire deadlines (idle clients, quiet gaps, job time limits);
    /// 5. start waiting jobs while running slots are free;
    /// 6. hand the turn's journal records to the writer (one fsync for all);
    /// 7. remove the connections closed during the turn.
    pub fn run(&mut self) -> Result<(), Error> {
        let mut events = Events::with_capacity(1024);
        loop {
            let timeout = self
                .timers
                .next_deadline()
                .map(|at| at.saturating_duration_since(Instant::now()));
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(Error::Io("poll failed".into(), e));
            }
            if events.iter().any(|e| e.token() == SIGNALS) {
                self.guarded(SIGNALS, Self::handle_signals);
            }
            for event in events.iter() {
                if event.token() != SIGNALS {
                    self.guarded(event.token(), |d| d.dispatch(event.token()));
                }
            }
            self.expire_timers();
            self.start_waiting_jobs();
            self.commit();
            self.remove_closed();
            if self.stop_complete() {
                if let Some(journal) = &mut self.journal {
                    journal.close();
                }
                log::info!("stopped: {}", self.stats.summary());
                return Ok(());
            }
        }
    }

    fn dispatch(&mut self, token: Token) {
        match source(token) {
            Source::Signals => self.handle_signals(),
            Source::Waker => {
                self.spawn_results();
                self.release_acks();
            }
            Source::TcpListener(i) => self.accept(i),
            Source::Udp(i) => self.receive_datagrams(i),
            Source::Pipe(job, stream) => self.pipe_ready(job, stream),
            Source::WorkerPipe(worker, stream) => self.worker_ready(worker, stream),
            Source::Conn(key) => self.conn_ready(key),
        }
    }

    /// Runs one handler, catching a panic when `-E` asked for it: the
    /// connection involved, if any, gets `500: Internal error` and closes.
    fn guarded(&mut self, token: Token, handler: impl FnOnce(&mut Self)) {
        if self.panic_policy == PanicPolicy::Stop {
            return handler(self);
        }
        if panic::catch_unwind(AssertUnwindSafe(|| handler(self))).is_err() {
            if let Source::Conn(key) = source(token) {
                self.refuse(key, Refusal::Internal);
            }
        }
    }

    fn handle_signals(&mut self) {
        let pending: Vec<i32> = self.signals.pending().collect();
        for signal in pending {
            match signal {
                SIGCHLD => self.reap_children(),
                SIGHUP => self.reload(),
                _ => self.begin_stop(signal),
            }
        }
    }

    /// SIGHUP: reads the config's limits again and rescans the modules. A
    /// broken config is reported and the old settings stay.
    fn reload(&mut self) {
        match self.source.load() {
            Ok(config) => {
                if config.settings != self.settings {
                    log::info!("reloaded {}", self.source.config_path.display());
                }
                self.settings = config.settings;
                self.find_node();
            }
            Err(e) => log::error!("reload refused, old settings kept: {e}"),
        }
        self.modules.rescan();
        self.last_refresh = Instant::now();
    }

    /// Looks up the Node.js binary once, rather than on every spawn.
    fn find_node(&mut self) {
        self.node = crate::config::check::find_program(&self.settings.node);
        if self.node.is_none() {
            log::info!(
                "{} not found: .js modules cannot run",
                self.settings.node.display()
            );
        }
    }

    /// SIGTERM/SIGINT: stop accepting, refuse what has not started, let
    /// running jobs finish within the grace period.
    fn begin_stop(&mut self, signal: i32) {
        if self.stopping.is_some() {
            return;
        }
        let until = Instant::now() + self.settings.shutdown_grace;
        log::info!(
            "signal {signal}: stopping; {} running jobs get {:?}, {} waiting are dropped",
            self.jobs.running(),
            self.settings.shutdown_grace,
            self.jobs.waiting()
        );
        self.stopping = Some(until);
        self.timers.schedule(until, Timer::Stop);
        crate::net::systemd::notify("STOPPING=1");
        for listener in std::mem::take(&mut self.listeners) {
            if let Some(mut tcp) = listener.tcp {
                let _ = self.poll.registry().deregister(&mut tcp);
            }
            if let Some(mut udp) = listener.udp {
                let _ = self.poll.registry().deregister(&mut udp);
            }
        }
        for key in self.jobs.waiting_keys() {
            self.stop_waiting_job(key);
        }
        let heads: Vec<usize> = self
            .conns
            .iter()
            .filter(|(_, c)| matches!(c.phase, Phase::Head(_)))
            .map(|(k, _)| k)
            .collect();
        for key in heads {
            self.refuse(key, Refusal::ShuttingDown);
        }
    }

    /// Done stopping once no job runs and every answer is written, or a
    /// moment after the grace period whatever is left.
    fn stop_complete(&self) -> bool {
        let Some(until) = self.stopping else {
            return false;
        };
        let writing = self
            .conns
            .iter()
            .any(|(_, c)| matches!(c.phase, Phase::Answer(_)));
        let idle = self.jobs.running() == 0 && !writing && self.acks.is_empty();
        idle || Instant::now() > until + Duration::from_secs(2)
    }

    fn expire_timers(&mut self) {
        let now = Instant::now();
        while let Some(timer) = self.timers.pop_due(now) {
            match timer {
                Timer::Conn(key) => self.conn_deadline(key, now),
                Timer::Job(key) => self.job_deadline(key, now),
                Timer::Housekeeping => self.housekeeping(now),
                Timer::Stop => self.kill_all_running(),
            }
        }
    }

    fn housekeeping(&mut self, now: Instant) {
        let expired = self.queue.expire(now, self.settings.result_retention);
        if !expired.is_empty() {
            log::info!("{} unfetched queue results expired", expired.len());
        }
        for id in expired {
            self.journal(Record::Removed {
                id,
                why: Removal::Expired,
            });
        }
        self.stop_idle_workers(now);
        if now.duration_since(self.last_refresh) >= MODULE_REFRESH {
            self.modules.rescan();
            self.last_refresh = now;
        }
        self.timers
            .schedule(now + HOUSEKEEPING, Timer::Housekeeping);
    }

    /// Marks a connection closed; it leaves the slab at the end of the turn,
    /// so a late event for its token in this turn finds it closed.
    pub(crate) fn close(&mut self, key: usize) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        conn.deadline = None;
        match std::mem::replace(&mut conn.phase, Phase::Closed) {
            Phase::Closed => return,
            Phase::Job(job) => self.detach_job(job),
            Phase::QueueWait(id) => self.queue.unwatch(id, key),
            Phase::Durable => self.forget_ack(key),
            _ => {}
        }
        self.closed.push(key);
    }

    /// Closing a socket removes it from the epoll set: no `deregister` needed.
    fn remove_closed(&mut self) {
        for key in std::mem::take(&mut self.closed) {
            let Some(conn) = self.conns.try_remove(key) else {
                continue;
            };
            let ip = conn.peer.ip();
            if let Some(n) = self.per_client.get_mut(&ip) {
                *n -= 1;
                if *n == 0 {
                    self.per_client.remove(&ip);
                }
            }
        }
    }

    /// Sets a connection's deadline and schedules it.
    pub(crate) fn set_conn_deadline(&mut self, key: usize, at: Option<Instant>) {
        if let Some(conn) = self.conns.get_mut(key) {
            conn.deadline = at;
            if let Some(at) = at {
                self.timers.schedule(at, Timer::Conn(key));
            }
        }
    }
}
