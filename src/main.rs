//! `bgjobd`: parses the command line, loads the configuration, binds the
//! listeners (or takes those systemd hands over) and runs the daemon. Exit codes: 0 stopped by a signal,
//! 1 configuration or start-up error, 2 bad command line (clap).

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

use bgjob::config::access::Access;
use bgjob::config::check;
use bgjob::config::cli::{Cli, PanicPolicy};
use bgjob::config::source::SettingsSource;
use bgjob::config::{ListenerSpec, Settings};
use bgjob::daemon::Daemon;
use bgjob::error::Error;
use bgjob::net::listeners::{self, Listener};
use bgjob::net::systemd;

fn main() -> ExitCode {
    bgjob::run::spawn::ensure_standard_fds();
    let cli = Cli::parse();
    init_logging(cli.verbose);
    install_panic_hook(cli.panic_policy());
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("{e}");
            eprintln!("bgjobd: {e}");
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
        timeout: cli.timeout,
        max_jobs: cli.max_jobs,
        state: cli.state.clone(),
    };
    let config = source.load()?;
    if cli.check_config {
        let modules = check::check_modules(&cli.modules, &config.settings.node)?;
        println!("{}", check::summary(&config, modules, &cli.modules));
        return Ok(());
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
            .map(|&addr| ListenerSpec {
                label: "--listen".into(),
                addr,
                access: default_access.clone(),
                admin: false,
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

/// -v info, -vv debug, -vvv trace; warnings by default. RUST_LOG wins.
fn init_logging(verbose: u8) {
    let level = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(level))
        .format_timestamp_millis()
        .init();
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
