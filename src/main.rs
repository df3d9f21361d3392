//! `bgjobd`: parses the command line, loads the configuration, binds the
//! listeners (or takes those systemd hands over) and runs the daemon. Exit codes: 0 stopped by a signal,
//! 1 configuration or start-up error, 2 bad command line (clap).

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

use bgjob::config::access::Access;
use bgjob::config::check::{Finding, Severity};
use bgjob::config::cli::{Cli, LogFormat, PanicPolicy};
use bgjob::config::source::SettingsSource;
use bgjob::config::{check, reach};
use bgjob::config::{ListenerSpec, Settings};
use bgjob::daemon::Daemon;
use bgjob::error::Error;
use bgjob::net::listeners::{self, Listener};
use bgjob::net::systemd;

fn main() -> ExitCode {
    bgjob::run::fds::ensure_standard_fds();
    let cli = Cli::parse();
    init_logging(cli.verbose, cli.log_format);
    if cli.check_config {
        // Its output is the findings alone (the unit's log shows them).
        return check_config(&cli);
    }
    match bgjob::run::limits::raise_open_files_limit() {
        Ok((old, new)) => {
            log::info!("open files: {new} for the daemon, {old} for modules")
        }
        Err(e) => log::warn!("cannot raise the open-files limit: {e}"),
    }
    install_panic_hook(cli.panic_policy());
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Once: through the log when it is on (so the journal gets its
            // priority), else plainly on stderr.
            if log::log_enabled!(target: "bgjobd", log::Level::Error) {
                log::error!(target: "bgjobd", "{e}");
            } else {
                eprintln!("bgjobd: {e}");
            }
            ExitCode::from(1)
        }
    }
}

fn run(cli: Cli) -> Result<(), Error> {
    let activated = systemd::activated();
    let source = settings_source(&cli, activated);
    let config = source.load()?;
    if cli.listen.is_empty() && !activated {
        check::some_listener(&config.listeners)?;
    }
    let findings = check::run(&check::Subject {
        config: &config,
        modules_dir: &cli.modules,
    });
    for finding in &findings {
        log::log!(target: "bgjobd", finding.severity.log_level(), "{finding}");
    }
    let default_access = Access {
        allow: config.settings.allow.clone(),
        modules: None,
    };
    if activated {
        if let Some(inherited) = systemd::inherited_listeners(&default_access)? {
            return serve(cli, source, config.settings, inherited);
        }
    }
    let mut specs = if cli.listen.is_empty() {
        config.listeners
    } else {
        cli.listen
            .iter()
            .map(|l| ListenerSpec {
                label: "--listen".into(),
                addr: l.addr,
                access: default_access.clone(),
                udp: l.udp,
                admin: false,
                framing: Default::default(),
                twin: 0,
            })
            .collect()
    };
    bgjob::config::listener::tell_apart(&mut specs);
    state_folder_free(&config.settings)?;
    let bound = specs
        .iter()
        .map(listeners::bind)
        .collect::<Result<Vec<_>, _>>()?;
    serve(cli, source, config.settings, bound)
}

/// A second daemon started in the same folder would fail to bind the
/// first one's ports and say so; the state folder's lock is the truer
/// reason, so it is tried first (and let go: the journal takes it again).
fn state_folder_free(settings: &Settings) -> Result<(), Error> {
    match &settings.state_dir {
        Some(dir) if dir.is_dir() => bgjob::journal::state::lock(dir).map(drop),
        _ => Ok(()),
    }
}

/// Where the settings come from: the config file, the command line over it.
/// Sockets handed over by systemd (`activated`) replace the config's
/// listeners, as --listen does; then a missing config file is fine too.
fn settings_source(cli: &Cli, activated: bool) -> SettingsSource {
    SettingsSource {
        config_path: cli.config.clone(),
        config_optional: !cli.listen.is_empty() || activated,
        listeners_from_config: cli.listen.is_empty() && !activated,
        timeout: cli.timeout,
        max_jobs: cli.max_jobs,
        state: cli.state.clone(),
        web: cli.web,
    }
}

fn serve(
    cli: Cli,
    source: SettingsSource,
    settings: Settings,
    bound: Vec<Listener>,
) -> Result<(), Error> {
    let addrs: Vec<_> = bound.iter().map(|l| l.addr).collect();
    let policy = cli.panic_policy();
    // A journal write past a file size limit fails with EFBIG, refused and
    // retried like a full disk, instead of killing the daemon.
    // SAFETY: sets this process's disposition of one signal; modules get
    // the default back (see run/vfork.rs).
    unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
    let mut daemon = Daemon::new(settings, source, bound, cli.modules, policy)?;
    // Printed once everything is set up, so whoever reads it can start at once.
    if cli.print_addr {
        let mut out = std::io::stdout().lock();
        for addr in addrs {
            let _ = writeln!(out, "{addr}");
        }
        let _ = out.flush();
    }
    systemd::notify("READY=1");
    daemon.run()
}

/// Exit statuses of `--check-config`: clean, errors (the daemon would not
/// start), warnings only (it would start and warn). 2 is clap's.
const CHECK_CLEAN: u8 = 0;
const CHECK_ERRORS: u8 = 1;
const CHECK_WARNINGS: u8 = 3;

/// `--check-config`: every finding, each marked with its severity, then
/// the summary, and an exit status that says the worst found.
fn check_config(cli: &Cli) -> ExitCode {
    let findings = check_findings(cli);
    for finding in &findings {
        eprintln!("bgjobd: {}: {finding}", finding.severity.word());
    }
    let count = |severity| findings.iter().filter(|f| f.severity == severity).count();
    let (errors, warnings) = (count(Severity::Error), count(Severity::Warning));
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    if errors > 0 {
        eprintln!(
            "bgjobd: {} and {} found: bgjobd would not start",
            plural(errors, "error"),
            plural(warnings, "warning")
        );
        return ExitCode::from(CHECK_ERRORS);
    }
    // Without errors the config loaded: the summary says what would run.
    let source = settings_source(cli, false);
    if let Ok(config) = source.load() {
        let listen: Vec<_> = cli.listen.iter().map(|l| l.addr).collect();
        let summary = check::summary(&config, &listen, &cli.modules);
        match warnings {
            0 => println!("{summary}"),
            _ => println!("{}", summary.replacen(" ok:", " usable:", 1)),
        }
    }
    if warnings == 0 {
        return ExitCode::from(CHECK_CLEAN);
    }
    eprintln!(
        "bgjobd: {} found: bgjobd would start and warn of {}",
        plural(warnings, "warning"),
        if warnings == 1 { "it" } else { "them" }
    );
    ExitCode::from(if cli.warnings_ok {
        CHECK_CLEAN
    } else {
        CHECK_WARNINGS
    })
}

/// Every finding of the check, as the daemon would meet them at start. A
/// config that cannot be read is an error, and the modules are checked
/// all the same (with the default settings) so that one run shows all.
fn check_findings(cli: &Cli) -> Vec<Finding> {
    let source = settings_source(cli, false);
    let (config, mut findings) = match source.load() {
        Ok(config) => (config, Vec::new()),
        Err(e) => {
            let mut fallback = bgjob::config::Config::default();
            fallback.listeners.clear();
            let fix = "the settings and their types are in man bgjobd";
            (fallback, vec![check::error(e.to_string(), fix)])
        }
    };
    if findings.is_empty() && cli.listen.is_empty() {
        findings.extend(check::no_listener(&config.listeners));
    }
    findings.extend(check::run(&check::Subject {
        config: &config,
        modules_dir: &cli.modules,
    }));
    // At start, who modules run as is settled with the listeners known
    // (see config/reach.rs): the same rule here.
    if let Some(who) = reach::module_user(&config.settings) {
        if let Err(blocked) = reach::modules(&cli.modules, &who) {
            let loopback = cli.listen.iter().all(|l| l.addr.ip().is_loopback())
                && (!cli.listen.is_empty()
                    || config.listeners.iter().all(|l| l.addr.ip().is_loopback()));
            let chosen =
                config.settings.module_user.is_some() || config.settings.module_uids.is_some();
            findings.push(if !chosen && loopback {
                check::finding(
                    blocked.to_string(),
                    format!("{}; started as it is, bgjobd runs the modules as root instead, as it listens on loopback only", reach::FIXES),
                )
            } else {
                check::error(blocked.to_string(), reach::FIXES)
            });
        }
    }
    findings
}

/// -v info, -vv debug, -vvv trace; by default warnings, and the start,
/// reload and stop lines (logged under the target `bgjobd`). RUST_LOG wins.
fn init_logging(verbose: u8, format: LogFormat) {
    let level = match verbose {
        0 => "warn,bgjobd=info",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let mut builder =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(level));
    let journal = match format {
        LogFormat::Journal => true,
        LogFormat::Plain => false,
        LogFormat::Auto => std::env::var_os("JOURNAL_STREAM").is_some(),
    };
    if journal {
        // sd-daemon(3) prefixes: the journal keeps its own timestamps.
        builder.format(|out, record| {
            let priority = match record.level() {
                log::Level::Error => 3,
                log::Level::Warn => 4,
                log::Level::Info => 6,
                log::Level::Debug | log::Level::Trace => 7,
            };
            writeln!(out, "<{priority}>{}", record.args())
        });
    } else {
        builder.format_timestamp_millis();
    }
    builder.init();
}

/// With -E a panic is caught per event and logged; -EE also prints it on
/// stderr as the default hook would. Without -E the default hook prints it
/// and the daemon stops.
fn install_panic_hook(policy: PanicPolicy) {
    if policy == PanicPolicy::Stop {
        return;
    }
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        log::error!("internal error, request abandoned: {info}");
        if policy == PanicPolicy::CatchAndPrint {
            default_hook(info);
        }
    }));
}
