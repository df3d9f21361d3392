//! `bgjobd`: parses the command line, loads the configuration, binds the
//! listeners (or takes those systemd hands over) and runs the daemon. Exit codes: 0 stopped by a signal,
//! 1 configuration or start-up error, 2 bad command line (clap).

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

use bgjob::config::access::Access;
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
    // Sockets handed over by systemd replace the config's listeners, as
    // --listen does; then a missing config file is not an error either.
    let activated = !cli.check_config && systemd::activated();
    let source = SettingsSource {
        config_path: cli.config.clone(),
        config_optional: !cli.listen.is_empty() || activated,
        listeners_from_config: cli.listen.is_empty() && !activated,
        timeout: cli.timeout,
        max_jobs: cli.max_jobs,
        state: cli.state.clone(),
    };
    let config = source.load()?;
    if cli.listen.is_empty() && !activated {
        check::some_listener(&config.listeners)?;
    }
    let findings = check::run(&check::Subject {
        config: &config,
        modules_dir: &cli.modules,
    });
    if cli.check_config {
        let mut findings = findings;
        // Checked here too; at start, who modules run as is settled with
        // the listeners known (see config/reach.rs).
        if let Some(who) = reach::module_user(&config.settings) {
            if let Err(blocked) = reach::modules(&cli.modules, &who) {
                let mut fix = reach::FIXES.to_string();
                let loopback = cli.listen.iter().all(|l| l.addr.ip().is_loopback())
                    && (!cli.listen.is_empty()
                        || config.listeners.iter().all(|l| l.addr.ip().is_loopback()));
                if config.settings.module_user.is_none() && loopback {
                    fix.push_str(
                        "; started as it is, bgjobd would run the modules as root instead, with a warning, as it listens on loopback only",
                    );
                }
                findings.push(check::Finding {
                    what: blocked.to_string(),
                    fix,
                    level: check::Level::Problem,
                });
            }
        }
        // Notices are said, and do not fail the check.
        let (notices, findings): (Vec<_>, Vec<_>) = findings
            .into_iter()
            .partition(|f| f.level == check::Level::Notice);
        for notice in &notices {
            eprintln!("bgjobd: {notice}");
        }
        if findings.is_empty() {
            let listen: Vec<_> = cli.listen.iter().map(|l| l.addr).collect();
            println!("{}", check::summary(&config, &listen, &cli.modules));
            return Ok(());
        }
        for finding in &findings {
            eprintln!("bgjobd: {finding}");
        }
        let n = findings.len();
        let problems = if n == 1 { "problem" } else { "problems" };
        return Err(Error::Config(format!("{n} {problems} found")));
    }
    for finding in &findings {
        log::log!(target: "bgjobd", finding.log_level(), "{finding}");
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
    let specs = if cli.listen.is_empty() {
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
            })
            .collect()
    };
    let bound = specs
        .iter()
        .map(listeners::bind)
        .collect::<Result<Vec<_>, _>>()?;
    serve(cli, source, config.settings, bound)
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
