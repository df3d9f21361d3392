//! The settings every part reads: limits and timings after defaults and
//! clamping, as the configuration file and the command line set them.

use std::path::PathBuf;
use std::time::Duration;

use crate::config::access::Cidr;
use crate::journal::sync::SyncPolicy;
use crate::run::limits::ModuleLimits;

/// Limits and timings, after defaults and clamping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Children running at once; further jobs wait in FIFO order.
    pub max_jobs: usize,
    /// Jobs waiting for a running slot; beyond it, `503: Busy`.
    pub max_waiting: usize,
    /// UDP jobs waiting (their own budget within `max_waiting`, so a
    /// datagram flood never refuses TCP clients); beyond it, datagrams are
    /// dropped and counted.
    pub max_waiting_udp: usize,
    /// Wall-clock limit of one job from its start.
    pub job_timeout: Duration,
    /// Between SIGTERM and SIGKILL of a job's process group.
    pub kill_grace: Duration,
    /// A module's stdout beyond this is a failure.
    pub max_output: usize,
    /// A request beyond this is answered `413: Request too large`.
    pub max_request: usize,
    /// TCP connections open at once.
    pub max_connections: usize,
    /// A client that sends nothing for this long gets `408: Request timeout`.
    pub idle_timeout: Duration,
    /// A request from a client that keeps its write side open ends after
    /// this long without new bytes. `None`: a gap derived from each
    /// connection; zero: only a half-close ends it.
    pub request_gap: Option<Duration>,
    /// A request must arrive whole within this, from accept.
    pub request_timeout: Duration,
    /// Least average rate of a request (bytes/s since accept) once
    /// `request_min_rate_after` has passed; 0: none.
    pub request_min_rate: u64,
    pub request_min_rate_after: Duration,
    /// How long an unfetched queue result is kept.
    pub result_retention: Duration,
    /// How long running jobs get to finish on SIGTERM.
    pub shutdown_grace: Duration,
    /// The Node.js binary for `.js` modules (looked up on `PATH`).
    pub node: PathBuf,
    /// Where `.js` modules run; `None`: the folder holding the modules.
    pub js_working_dir: Option<PathBuf>,
    /// Allowed client networks of listeners that have no list of their own
    /// (`--listen` and systemd's included); `None`: anyone.
    pub allow: Option<Vec<Cidr>>,
    /// TCP connections one client address may hold open.
    pub max_connections_per_client: usize,
    /// Jobs one client address may keep waiting (not started yet).
    pub max_waiting_per_client: usize,
    /// Variables of the daemon's environment passed to modules besides the
    /// built-in list (read at start).
    pub module_env: Vec<String>,
    /// Resource limits of module processes, and (filled in by the daemon)
    /// the identity they run as.
    pub module_limits: ModuleLimits,
    /// The user and group modules run as when the daemon is root.
    pub module_user: Option<String>,
    pub module_group: Option<String>,
    /// Let modules run as root.
    pub allow_root_modules: bool,
    /// Serve other hosts from modules others than their owner and root can
    /// change (see `writable.rs`).
    pub allow_writable_modules: bool,
    /// A range of uids, one for each running job or worker (needs root).
    pub module_uids: Option<(u32, u32)>,
    /// Bytes of queue and UDP job data held (accepted, not yet finished).
    pub max_waiting_bytes: usize,
    /// ... by one client address.
    pub max_waiting_bytes_per_client: usize,
    /// Bytes of unfetched queue results kept; when full, new adds are refused.
    pub result_retention_bytes: usize,
    /// Bytes of unfetched results one client address may keep; beyond it
    /// its own oldest results go first.
    pub result_retention_bytes_per_client: usize,
    /// Warm Node.js workers per `.js` module; 0 runs one process per request.
    pub node_workers: usize,
    /// A warm worker idle this long stops.
    pub node_worker_idle: Duration,
    /// Where the journal lives; `None` keeps the queue in memory only.
    pub state_dir: Option<PathBuf>,
    /// When journal records reach the disk.
    pub journal_sync: SyncPolicy,
    /// Where `/metrics` and `/healthz` are served over HTTP; `None`: nowhere.
    pub metrics: Option<std::net::SocketAddr>,
    /// The dashboard (`web`); `None`: off.
    pub web: Option<crate::config::web::WebSettings>,
    /// Per-module policies (`module_policy`), by module name.
    pub module_policy: crate::config::policy::Policies,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            max_jobs: 16,
            max_waiting: 1024,
            max_waiting_udp: 64,
            job_timeout: Duration::from_secs(30),
            kill_grace: Duration::from_secs(1),
            max_output: 4 << 20,
            max_request: 4 << 20,
            max_connections: 1024,
            idle_timeout: Duration::from_secs(10),
            request_gap: None,
            request_timeout: Duration::from_secs(30),
            request_min_rate: 500,
            request_min_rate_after: Duration::from_secs(5),
            result_retention: Duration::from_secs(3600),
            shutdown_grace: Duration::from_secs(10),
            node: PathBuf::from("node"),
            js_working_dir: None,
            allow: None,
            max_connections_per_client: 256,
            max_waiting_per_client: 256,
            module_env: Vec::new(),
            module_limits: ModuleLimits::default(),
            module_user: None,
            module_group: None,
            allow_root_modules: false,
            allow_writable_modules: false,
            module_uids: None,
            max_waiting_bytes: 256 << 20,
            max_waiting_bytes_per_client: 64 << 20,
            result_retention_bytes: 64 << 20,
            result_retention_bytes_per_client: 16 << 20,
            node_workers: 2,
            node_worker_idle: Duration::from_secs(60),
            state_dir: Some(PathBuf::from("./state")),
            journal_sync: SyncPolicy::Always,
            metrics: None,
            web: None,
            module_policy: Default::default(),
        }
    }
}
