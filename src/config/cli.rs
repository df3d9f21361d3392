//! The command line. Scripts outside this repository rely on these flags.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{ArgAction, Parser};

/// Exit statuses and signals, shown at the end of `--help` and in the man page.
const AFTER_HELP: &str = "\
Exit status: 0 stopped by SIGTERM or SIGINT, 1 configuration or start-up
error (the message says which), 2 bad command line. With --check-config: 0
clean, 1 errors, 3 warnings only (0 with --warnings-ok).

Signals: SIGHUP reads the config again and rescans the modules; SIGTERM and
SIGINT stop accepting, keep waiting jobs that are in the journal for the
next start, drop the other waiting ones, let running jobs finish within
shutdown_grace_secs, then exit.";

/// bgjobd runs modules as child processes on request over TCP and UDP.
///
/// A request is `module` or `module:data`; the data goes to the module's
/// stdin and, over TCP, its stdout is the answer.
#[derive(Debug, Parser)]
#[command(name = "bgjobd", version, after_help = AFTER_HELP)]
pub struct Cli {
    /// Configuration file (the seed's JSON listener array, or an object with limits).
    #[arg(
        short = 'c',
        long,
        value_name = "FILE",
        default_value = "./service.config"
    )]
    pub config: PathBuf,

    /// Folder holding the modules.
    #[arg(short = 'm', long, value_name = "DIR", default_value = "./modules")]
    pub modules: PathBuf,

    /// Serve TCP and UDP on ADDR:PORT, instead of the config's listeners
    /// (repeatable). ADDR is an IP address or `localhost`; ADDR:PORT/tcp
    /// serves TCP only. Port 0 picks a free port, the same for TCP and UDP.
    #[arg(short = 'l', long = "listen", value_name = "ADDR:PORT[/tcp]")]
    pub listen: Vec<ListenArg>,

    /// Serve the dashboard on ADDR:PORT (overrides the config's
    /// `web.listen`; its allow list and actions still apply).
    #[arg(long, value_name = "ADDR:PORT", value_parser = parse_web)]
    pub web: Option<std::net::SocketAddr>,

    /// Job time limit in seconds (overrides the config).
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<f64>,

    /// Children running at once (overrides the config).
    #[arg(long, value_name = "N")]
    pub max_jobs: Option<u64>,

    /// State folder holding the queue's journal (overrides the config;
    /// default ./state). `none`: keep the queue in memory only.
    #[arg(long, value_name = "DIR")]
    pub state: Option<String>,

    /// Check the config file and the modules folder, print every finding
    /// (each marked `error:`, would stop the daemon, or `warning:`, it
    /// starts and says so) and exit: 0 clean, 1 errors, 3 warnings only.
    #[arg(long)]
    pub check_config: bool,

    /// With --check-config: exit 0 when only warnings are found, as the
    /// systemd unit's check before a start or reload does.
    #[arg(long, requires = "check_config")]
    pub warnings_ok: bool,

    /// Print each bound ADDR:PORT on stdout, one per line, once listening.
    #[arg(short = '1', long)]
    pub print_addr: bool,

    /// More logging: -v requests (info), -vv debug, -vvv trace. RUST_LOG also works.
    /// Without it: start, reload and stop lines, warnings and errors.
    #[arg(short = 'v', action = ArgAction::Count)]
    pub verbose: u8,

    /// How log lines look: `journal` puts a `<N>` syslog priority first and
    /// no timestamp (for systemd's journal); `plain` has a timestamp;
    /// `auto` is `journal` when JOURNAL_STREAM is set, else `plain`.
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = LogFormat::Auto)]
    pub log_format: LogFormat,

    /// Catch a panic in one request's handling so the daemon keeps serving
    /// (the connection gets `500: Internal error`; logged at error level).
    /// -EE also writes the panic and its location to stderr.
    #[arg(short = 'E', action = ArgAction::Count)]
    pub catch_errors: u8,

    /// Do not catch panics: a bug stops the daemon so its supervisor
    /// restarts it (the default).
    #[arg(short = 'e', conflicts_with = "catch_errors")]
    pub no_catch: bool,
}

/// One `--listen` address, and whether it serves UDP too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenArg {
    pub addr: SocketAddr,
    pub udp: bool,
}

impl std::str::FromStr for ListenArg {
    type Err = String;

    /// Read as the config file reads addresses, with `/tcp` for TCP only.
    fn from_str(text: &str) -> Result<Self, String> {
        let (addr, udp) = match text.strip_suffix("/tcp") {
            Some(addr) => (addr, false),
            None => (text, true),
        };
        let addr = crate::config::values::parse_addr(addr).ok_or_else(|| {
            format!(
                "{text:?} is not ADDR:PORT or ADDR:PORT/tcp (an IP address or localhost, and a port)"
            )
        })?;
        Ok(ListenArg { addr, udp })
    }
}

/// How log lines look (`--log-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// `journal` under systemd (JOURNAL_STREAM set), else `plain`.
    Auto,
    /// Timestamp, level, where, message.
    Plain,
    /// `<N>` syslog priority, then the message: `journalctl -p` filters on it.
    Journal,
}

/// What to do with a panic while handling one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PanicPolicy {
    /// Let it stop the daemon (`-e`, the default).
    Stop,
    /// Catch it and log it (`-E`).
    Catch,
    /// Catch it, log it and also print it on stderr (`-EE`).
    CatchAndPrint,
}

impl Cli {
    pub fn panic_policy(&self) -> PanicPolicy {
        match self.catch_errors {
            _ if self.no_catch => PanicPolicy::Stop,
            0 => PanicPolicy::Stop,
            1 => PanicPolicy::Catch,
            _ => PanicPolicy::CatchAndPrint,
        }
    }
}

/// `--web`'s address, read as the config's addresses are.
fn parse_web(text: &str) -> Result<std::net::SocketAddr, String> {
    crate::config::values::parse_addr(text)
        .ok_or_else(|| format!("{text:?} is not ADDR:PORT (for example 127.0.0.1:9465)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_switches_parse() {
        let parse = |args: &[&str]| {
            Cli::try_parse_from(std::iter::once("bgjobd").chain(args.iter().copied()))
        };
        assert_eq!(parse(&[]).unwrap().panic_policy(), PanicPolicy::Stop);
        assert_eq!(parse(&["-E"]).unwrap().panic_policy(), PanicPolicy::Catch);
        assert_eq!(
            parse(&["-EE"]).unwrap().panic_policy(),
            PanicPolicy::CatchAndPrint
        );
        assert_eq!(parse(&["-e"]).unwrap().panic_policy(), PanicPolicy::Stop);
        assert!(parse(&["-E", "-e"]).is_err());
        let cli = parse(&[
            "-vv",
            "-l",
            "127.0.0.1:0",
            "--listen",
            "[::1]:5/tcp",
            "-l",
            "localhost:12350",
            "--timeout",
            "2",
            "--max-jobs",
            "3",
        ])
        .unwrap();
        assert_eq!(
            (cli.verbose, cli.listen.len(), cli.timeout, cli.max_jobs),
            (2, 3, Some(2.0), Some(3))
        );
        assert_eq!(cli.listen[2].addr, "127.0.0.1:12350".parse().unwrap());
        assert!(parse(&["--listen", "example.com:1"]).is_err());
        assert_eq!(cli.config, PathBuf::from("./service.config"));
        assert!(cli.listen[0].udp && !cli.listen[1].udp);
        assert_eq!(cli.listen[1].addr, "[::1]:5".parse().unwrap());
        assert!(parse(&["-l", "127.0.0.1:5/udp"]).is_err());
    }
}
