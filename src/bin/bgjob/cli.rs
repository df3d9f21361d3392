//! The client's command line, apart so that the man page and shell
//! completions are generated from it (`bgjob-assets`).

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// The dashboard's address when neither `--web` nor `BGJOB_WEB` says
/// (the example `web.listen` of the docs).
pub const DEFAULT_WEB: &str = "127.0.0.1:9465";

/// The exit statuses, shown at the end of `--help`.
pub const EXIT_CODES: &str = "\
Exit status:
  0  ok
  2  bad command line
  3  cannot connect, or the connection broke
  4  unknown module (400)
  5  unknown job (404)
  6  the module or the request failed (other 4xx and 5xx)
  7  timed out (504, 408, or --timeout passed)
  8  busy (503)
  9  request too large (413)
An NNN: answer goes to stderr, anything else to stdout.";

/// Client for bgjobd: run modules, queue jobs, watch the daemon.
#[derive(Debug, Parser)]
#[command(name = "bgjob", version, after_help = EXIT_CODES)]
pub struct Cli {
    /// The daemon's address, HOST:PORT (default 127.0.0.1:12341, when the
    /// operator socket cannot be opened).
    #[arg(long, env = "BGJOB_SERVER", global = true)]
    pub server: Option<String>,
    /// The daemon's operator socket (in its state folder), which may list
    /// and act on every job; used when it can be opened and --server is
    /// not given. Without it, state/admin.sock, then the package's
    /// /var/lib/bgjob/admin.sock.
    #[arg(
        long,
        env = "BGJOB_SOCKET",
        default_value = "state/admin.sock",
        global = true
    )]
    pub socket: PathBuf,
    /// Seconds to wait for an answer (0: no limit).
    #[arg(long, default_value_t = 60.0, global = true)]
    pub timeout: f64,
    #[command(subcommand)]
    pub command: Command,
}

/// The options of `add`, sent as `queue:add?<options>:...`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct AddOptions {
    /// Not started before this long from now: seconds, or with a unit
    /// (`30s`, `5m`, `2h`, `1d`).
    #[arg(long, conflicts_with = "at")]
    pub delay: Option<String>,
    /// Not started before this Unix time, in seconds.
    #[arg(long)]
    pub at: Option<String>,
    /// high, normal or low.
    #[arg(long)]
    pub priority: Option<String>,
    /// Attempts after the first when an attempt fails (0-25).
    #[arg(long)]
    pub retries: Option<u32>,
    /// At most one held job per key on the listener.
    #[arg(long)]
    pub key: Option<String>,
    /// This job's time limit (as --delay), at most its module's.
    #[arg(long = "job-timeout")]
    pub job_timeout: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run MODULE over TCP and print its answer. DATA comes from the
    /// argument, or from stdin when absent or `-` (binary-safe).
    #[command(after_help = EXIT_CODES)]
    Run {
        /// The module's name (a file in the daemon's modules folder).
        module: String,
        /// The module's input; from stdin when absent or `-`.
        data: Option<String>,
    },
    /// Fire MODULE in a UDP datagram: no answer, no waiting.
    #[command(after_help = EXIT_CODES)]
    Send {
        /// The module's name.
        module: String,
        /// The module's input; from stdin when absent or `-`.
        data: Option<String>,
    },
    /// Queue a background job; prints its id.
    #[command(after_help = EXIT_CODES)]
    Add {
        /// The module's name.
        module: String,
        /// The module's input; from stdin when absent or `-`.
        data: Option<String>,
        #[command(flatten)]
        options: AddOptions,
    },
    /// Print a queued job's status: waiting, running or done.
    #[command(after_help = EXIT_CODES)]
    Check {
        /// The job's id, as `add` printed it.
        id: u64,
    },
    /// Wait for a queued job and print its answer (it is then gone).
    #[command(after_help = EXIT_CODES)]
    Get {
        /// The job's id, as `add` printed it.
        id: u64,
    },
    /// Cancel a queued job: remove it if waiting, kill it if running.
    #[command(after_help = EXIT_CODES)]
    Cancel {
        /// The job's id, as `add` printed it.
        id: u64,
    },
    /// Print a queued job's receipt.
    #[command(after_help = EXIT_CODES)]
    Info {
        /// The job's id, as `add` printed it.
        id: u64,
    },
    /// Print the daemon's counters; --watch redraws them every second.
    #[command(after_help = EXIT_CODES)]
    Stats {
        /// Redraw every second, with rates since the last screen.
        #[arg(long)]
        watch: bool,
        /// With --watch: stop after this many screens.
        #[arg(long)]
        count: Option<u64>,
    },
    /// List the jobs the daemon holds.
    #[command(after_help = EXIT_CODES)]
    List,
    /// List the failed jobs whose results are held: id, module, attempts,
    /// age in seconds, the last attempt's first stderr line (operators).
    #[command(after_help = EXIT_CODES)]
    Failed,
    /// Queue failed jobs once more, as their next attempt: one by its id,
    /// or every failed job of a module (operators).
    #[command(after_help = EXIT_CODES)]
    Retry {
        /// The failed job's id.
        #[arg(required_unless_present = "module", conflicts_with = "module")]
        id: Option<u64>,
        /// Every failed job of this module.
        #[arg(long)]
        module: Option<String>,
    },
    /// Stop starting MODULE's queued jobs (operators): adds are still
    /// accepted, and the pause survives restarts.
    #[command(after_help = EXIT_CODES)]
    Pause {
        /// The module's name.
        module: String,
    },
    /// Start MODULE's queued jobs again after a pause (operators).
    #[command(after_help = EXIT_CODES)]
    Resume {
        /// The module's name.
        module: String,
    },
    /// Print the dashboard's state (`/api/state` of the daemon's `web`
    /// listener): counts, modules, running and failed jobs.
    #[command(after_help = EXIT_CODES)]
    Status {
        /// The dashboard's address, ADDR:PORT (its `web.listen`).
        #[arg(long, env = "BGJOB_WEB", default_value = DEFAULT_WEB)]
        web: String,
        /// Print the JSON document as it came.
        #[arg(long)]
        json: bool,
    },
    /// Check that the daemon answers (helo/oleh).
    #[command(after_help = EXIT_CODES)]
    Ping,
}
