//! The daemon: one `mio::Poll` loop that owns every socket, every child's
//! pipes, the signal source, the job table and the queue. The parts it
//! drives decide from their own state and return verdicts (`net/conn.rs`)
//! or data (`run/`, `node/`, `queue/`, `journal/`); the loop applies them.
//! Only this folder holds `impl Daemon`, one file per kind of event.

/// Accepting TCP clients, within the connection and descriptor limits.
mod accept;
/// Module processes: pipes, spawn reports, reaping, time limits.
mod children;
/// TCP clients: accept, verdicts, routing, and the answer and close paths.
mod clients;
/// When memory goes back after load, and the allocator calls for it.
mod heap;
/// Jobs from start to answer.
mod jobs;
/// Signals, reload, housekeeping and stopping.
mod lifecycle;
/// Memory given back after load: the tables' slack, the heap.
mod memory;
/// `/metrics` and `/healthz` over HTTP.
mod metrics;
/// The operator socket: its file, mode and listener index.
mod operator;
/// The queue engine's router: requests in, events applied.
mod queue;
/// `queue:list` and `queue:stats` as the loop writes them.
mod queue_rows;
/// Listener changes on SIGHUP.
mod relisten;
/// Code at rest: only the code pages the loop runs stay mapped.
mod resident;
/// Who may act on a job; accepting on the operator socket.
mod rights;
/// The metrics listener and its connections.
mod scrapes;
/// Counters for `queue:stats`, `/metrics` and the log.
pub mod stats;
/// Streamed answers: a module's stdout is its client's socket.
mod streams;
/// Deadlines, nearest first.
pub mod timers;
/// What a poll token stands for.
pub mod tokens;
/// Datagrams.
mod udp;
/// Starting processes, and module uids.
mod uids;
/// `.js` jobs on warm Node.js workers.
mod warm;
/// What warm workers say: their replies and their stderr.
mod warm_replies;
/// Rate-limited warn lines.
mod warnings;
/// The dashboard: its listener, requests and actions.
mod web;
/// The dashboard's listener and connections.
mod web_server;
/// The dashboard's `/api/state`, gathered from the loop's tables.
mod web_state;

use std::collections::HashMap;
use std::panic::{self, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use mio::{Events, Interest, Poll, Token, Waker};
use signal_hook::consts::{SIGCHLD, SIGHUP, SIGINT, SIGTERM};
use signal_hook_mio::v1_0::Signals;

use crate::config::cli::PanicPolicy;
use crate::config::source::SettingsSource;
use crate::config::Settings;
use crate::daemon::scrapes::MetricsServer;
use crate::daemon::stats::Stats;
use crate::daemon::timers::{Timer, Timers};
use crate::daemon::tokens::{source, Source, SIGNALS, WAKER};
use crate::error::Error;
use crate::keys::{ConnKey, Table};
use crate::net::conn::Conn;
use crate::net::listeners::Listener;
use crate::net::protocol::Refusal;
use crate::node::pool::Workers;
use crate::queue::engine::QueueEngine;
use crate::queue::local::LocalEngine;
use crate::ratelimit::RateLimit;
use crate::run::hasher::Hasher;
use crate::run::modules::ModuleIndex;
use crate::run::spawn::Spawner;
use crate::run::spawns::Spawns;
use crate::run::table::JobTable;
use crate::run::uids::UidPool;

pub struct Daemon {
    poll: Poll,
    settings: Settings,
    /// The settings as the config file gave them at the last start or
    /// reload, those read at start only included: a change waiting for a
    /// restart is named at the reload that reads it, not at every reload.
    last_read: Settings,
    source: SettingsSource,
    listeners: Vec<Listener>,
    signals: Signals,
    conns: Table<ConnKey, Conn>,
    jobs: JobTable,
    /// The queue: every queued job, its result and the store they are
    /// kept in. Only `queue.rs` speaks to it.
    queue: Box<dyn QueueEngine>,
    modules: ModuleIndex,
    timers: Timers,
    stats: Stats,
    /// One read buffer for every socket and pipe.
    scratch: crate::io::ReadBuffer,
    /// Connections closed this turn, removed at its end.
    closed: Vec<ConnKey>,
    /// Connections whose held input was taken, read again after the events.
    resumed: Vec<ConnKey>,
    /// Set once SIGTERM/SIGINT arrived: when the grace period ends.
    stopping: Option<Instant>,
    panic_policy: PanicPolicy,
    last_refresh: Instant,
    started: Instant,
    spawner: Spawner,
    /// Open TCP connections by client address.
    per_client: HashMap<std::net::IpAddr, usize>,
    /// Warm Node.js workers and the jobs waiting for them.
    workers: Workers,
    /// Processes being started and running, by serial and pid.
    spawns: Spawns,
    /// A descriptor kept in reserve: out of descriptors, closing it lets
    /// one waiting client be accepted and refused with `503`.
    spare_fd: Option<std::fs::File>,
    /// Descriptors left at start (the open-files limit less those open
    /// then), for connections, pipes and files (see `accept.rs`).
    descriptors: usize,
    /// Module uids free for new processes, when each job gets its own.
    uids: Option<UidPool>,
    /// The Node.js binary, found on `PATH` at start and on SIGHUP.
    node: Option<PathBuf>,
    /// Warn lines a flood could repeat, one per kind per second.
    warnings: RateLimit,
    /// The metrics listener, if the settings ask for one.
    metrics: Option<MetricsServer>,
    /// The dashboard, if the settings ask for one.
    web: Option<web_server::WebServer>,
    /// What jobs did lately, for the dashboard's charts and hour counts.
    activity: crate::web::history::Activity,
    /// The operator socket in the state folder, and its path.
    operator: Option<(mio::net::UnixListener, PathBuf)>,
    /// When memory a load left is given back.
    release: heap::Release,
    /// The read-only mappings whose pages are dropped at rest, and when.
    resident: resident::Resident,
    rest: heap::Rest,
}

impl Daemon {
    pub fn new(
        mut settings: Settings,
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
                    .register(tcp, tokens::tcp_listener(i), Interest::READABLE)
                    .map_err(io_err("cannot watch a listener"))?;
            }
            if let Some(udp) = &mut l.udp {
                registry
                    .register(udp, tokens::udp(i), Interest::READABLE)
                    .map_err(io_err("cannot watch a listener"))?;
            }
            if !l.addr.ip().is_loopback() && l.access.allow.is_none() {
                log::warn!(
                    "{} is reachable from other hosts and has no allow list: any of them can run modules",
                    l.addr
                );
            } else if !l.addr.ip().is_loopback() && l.udp.is_some() {
                log::warn!(
                    "{}: UDP source addresses can be forged, so its allow list does not hold for datagrams; \"udp\": false turns UDP off",
                    l.addr
                );
            }
        }
        crate::config::reach::settle(&mut settings, &modules_dir, exposed(&listeners))?;
        if let Some((uid, gid)) = settings.module_limits.identity {
            log::info!("modules run as uid {uid}, gid {gid}: the modules folder and what they use must be open to them");
        }
        let metrics = match settings.metrics {
            Some(addr) => Some(MetricsServer::bind(addr, poll.registry())?),
            None => None,
        };
        heap::bound_arenas();
        let waker = Arc::new(
            Waker::new(poll.registry(), WAKER).map_err(io_err("cannot create the waker"))?,
        );
        let hasher =
            Hasher::start(waker.clone()).map_err(io_err("cannot start the hashing thread"))?;
        let mut modules = ModuleIndex::new(modules_dir, hasher);
        log::info!("{} modules in {}", modules.len(), modules.dir().display());
        let spawner =
            Spawner::start_thread(waker.clone(), &settings.module_env, Some(modules.dir()))
                .map_err(io_err("cannot start the spawn thread"))?;
        // The queue's start-up: recovered jobs come out as `Run` events,
        // applied once the daemon exists.
        let (dir, sync) = (settings.state_dir.as_deref(), settings.journal_sync);
        let queue = LocalEngine::open(dir, sync, waker, &mut |name| modules.lookup(name))?;
        let uids = match settings.module_uids {
            Some((first, last)) => {
                let Some((_, gid)) = settings.module_limits.identity else {
                    return Err(Error::Config(
                        "module_uids needs bgjobd to run as root, with modules not run as root"
                            .into(),
                    ));
                };
                log::info!("each job runs as a uid of its own from {first}-{last}, group {gid}");
                Some(UidPool::new(first, last, gid))
            }
            None => None,
        };
        // A connection takes a descriptor, a running job three.
        let needed = settings.max_connections + 3 * settings.max_jobs + 64;
        if let Some(limit) = crate::run::limits::open_files_limit() {
            if (limit as usize) < needed {
                log::warn!(
                    "open-files limit {limit} is below the {needed} that max_connections and max_jobs may need: raise it (ulimit -n, LimitNOFILE=) or lower max_connections; clients beyond it get 503"
                );
            }
        }
        if let Err(e) = crate::run::process::become_subreaper() {
            log::warn!("cannot reap what modules leave behind: {e}");
        }
        let operator = match &settings.state_dir {
            Some(dir) => {
                let (mut socket, path) = operator::bind_operator_socket(dir)?;
                operator::watch(&mut socket, poll.registry())
                    .map_err(io_err("cannot watch the operator socket"))?;
                log::info!("operator socket {}", path.display());
                Some((socket, path))
            }
            None => None,
        };
        let mut timers = Timers::default();
        timers.schedule(Instant::now() + timers::HOUSEKEEPING, Timer::Housekeeping);
        let mut daemon = Daemon {
            poll,
            last_read: settings.clone(),
            settings,
            source,
            listeners,
            signals,
            conns: Table::default(),
            jobs: JobTable::default(),
            queue: Box::new(queue),
            modules,
            timers,
            stats: Stats::default(),
            scratch: Default::default(),
            closed: Vec::new(),
            resumed: Vec::new(),
            stopping: None,
            panic_policy,
            last_refresh: Instant::now(),
            started: Instant::now(),
            spawner,
            spawns: Spawns::default(),
            spare_fd: spare_descriptor(),
            descriptors: crate::run::limits::descriptors_left(),
            uids,
            workers: Workers::default(),
            per_client: HashMap::new(),
            node: None,
            warnings: RateLimit::new(std::time::Duration::from_secs(1)),
            metrics,
            web: None,
            activity: Default::default(),
            operator,
            release: heap::Release::new(Instant::now()),
            resident: resident::Resident::new(),
            rest: heap::Rest::new(Instant::now()),
        };
        daemon.find_node();
        if let Some(settings) = daemon.settings.web.clone() {
            // A dashboard that cannot bind at start is an error, as a listener is.
            daemon.web = Some(web_server::WebServer::bind(
                settings,
                None,
                daemon.poll.registry(),
            )?);
        }
        log::info!(target: "bgjobd", "bgjobd {} started: {}", env!("CARGO_PKG_VERSION"), daemon.describe());
        daemon.route_queue();
        Ok(daemon)
    }

    /// Runs until stopped by SIGTERM or SIGINT. Each turn:
    /// 1. wait for events, at most until the nearest deadline;
    /// 2. the spawn thread's reports, then signals (reap children, reload, stop);
    /// 3. sockets and pipes: accept, read requests, feed stdin, collect
    ///    stdout, write answers (a finished job routes its answer at once);
    /// 4. expire deadlines (idle clients, quiet gaps, job time limits);
    /// 5. start waiting jobs while running slots are free;
    /// 6. hand the turn's journal records to the writer (one fsync for all);
    /// 7. remove the connections closed during the turn.
    pub fn run(&mut self) -> Result<(), Error> {
        let mut events = Events::with_capacity(1024);
        self.shed_at_ready();
        loop {
            let deadline = match (self.timers.next_deadline(), self.queue_deadline()) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let timeout = deadline.map(|at| at.saturating_duration_since(Instant::now()));
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(Error::Io("poll failed".into(), e));
            }
            self.rest.turn(!events.is_empty());
            // The spawn thread's reports are read every turn (it wakes the
            // loop only when asked): pids are known before any event of theirs.
            self.spawn_reports();
            if events.iter().any(|e| e.token() == SIGNALS) {
                self.guarded(SIGNALS, Self::handle_signals);
            }
            for event in events.iter() {
                if event.token() != SIGNALS {
                    self.guarded(event.token(), |d| d.dispatch(event.token()));
                }
            }
            self.resume_input();
            // Before time limits are applied, so a process to signal has its pid.
            self.spawn_reports();
            self.expire_timers();
            self.start_waiting_jobs();
            self.commit();
            // Jobs the store released at the end of the turn (the in-memory
            // store releases at once) start now, not at the next event.
            if self.jobs.waiting() > 0 {
                self.start_waiting_jobs();
                self.commit();
            }
            // Jobs that started this turn may have taken held input.
            self.resume_input();
            self.remove_closed();
            if self.stop_complete() {
                self.queue_close();
                if let Some((_, path)) = &self.operator {
                    let _ = std::fs::remove_file(path);
                }
                log::info!(target: "bgjobd", "stopped: {}", self.stats.summary());
                return Ok(());
            }
        }
    }

    fn dispatch(&mut self, token: Token) {
        match source(token) {
            Source::Signals => self.handle_signals(),
            Source::Waker => {
                self.spawn_reports();
                self.queue_wake();
                self.modules.take_hashes();
            }
            Source::Operator => self.accept_operator(),
            Source::TcpListener(i) => self.accept(i),
            Source::Udp(i) => self.receive_datagrams(i),
            Source::JobPipe(job, stream) => self.job_pipe_ready(job, stream),
            Source::WorkerPipe(worker, stream) => self.worker_pipe_ready(worker, stream),
            Source::Conn(key) => self.conn_ready(key),
            Source::Metrics => self.accept_scrapes(),
            Source::Scrape(key) => self.scrape_ready(key),
            Source::Web => self.accept_web(),
            Source::WebConn(key) => self.web_ready(key),
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
}

/// True if a listener can be reached from other hosts.
fn exposed(listeners: &[Listener]) -> bool {
    listeners.iter().any(|l| !l.addr.ip().is_loopback())
}

/// A descriptor to hold in reserve (on `/dev/null`).
fn spare_descriptor() -> Option<std::fs::File> {
    std::fs::File::open("/dev/null").ok()
}
