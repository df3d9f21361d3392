//! Signals, reload, housekeeping and stopping.

use std::time::{Duration, Instant};

use signal_hook::consts::{SIGCHLD, SIGHUP};

use crate::daemon::timers::{Timer, HOUSEKEEPING};
use crate::daemon::Daemon;
use crate::net::conn::Conn;
use crate::net::protocol::Refusal;

/// How often the module index is refreshed from modification times.
const MODULE_REFRESH: Duration = Duration::from_secs(10);

impl Daemon {
    pub(super) fn handle_signals(&mut self) {
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
    /// broken config, or one that would leave nothing served, is reported
    /// and the old settings stay.
    pub(super) fn reload(&mut self) {
        let applied = self.source.load().and_then(|mut config| {
            let from_config = self.source.listeners_from_config;
            let exposed = super::exposed(&self.listeners)
                || (from_config && config.listeners.iter().any(|l| !l.addr.ip().is_loopback()));
            crate::config::reach::settle(&mut config.settings, self.modules.dir(), exposed)?;
            if from_config {
                self.apply_listeners(&config.listeners)?;
            }
            Ok(config)
        });
        match applied {
            Ok(mut config) => {
                let read = config.settings.clone();
                let waiting = super::relisten::restart_keys(&self.settings, &config.settings);
                // Named once, when the file changes them, not at every reload.
                let new = super::relisten::restart_keys(&self.last_read, &config.settings);
                let told: Vec<&str> = waiting
                    .iter()
                    .filter(|k| new.contains(k))
                    .copied()
                    .collect();
                if !told.is_empty() {
                    log::warn!(
                        "reload: {} changed, and take effect at the next restart",
                        told.join(", ")
                    );
                }
                if !waiting.is_empty() {
                    config.settings.state_dir = self.settings.state_dir.clone();
                    config.settings.journal_sync = self.settings.journal_sync;
                    config.settings.metrics = self.settings.metrics;
                    config.settings.module_env = self.settings.module_env.clone();
                    config.settings.module_uids = self.settings.module_uids;
                }
                let subject = crate::config::check::Subject {
                    config: &config,
                    modules_dir: self.modules.dir(),
                };
                for finding in crate::config::check::run(&subject) {
                    log::log!(target: "bgjobd", finding.severity.log_level(), "{finding}");
                }
                self.settings = config.settings;
                self.last_read = read;
                self.apply_web();
                self.find_node();
                self.modules.rescan();
                log::info!(target: "bgjobd", "reloaded {}: {}", self.source.config_path.display(), self.describe());
            }
            Err(e) => {
                log::error!("reload refused, old settings kept: {e}");
                self.modules.rescan();
            }
        }
        self.last_refresh = Instant::now();
    }

    /// What the daemon serves, for the start and reload lines: listeners
    /// with their rules, modules, who runs them, where the queue is kept.
    pub(super) fn describe(&self) -> String {
        let listeners: Vec<String> = self
            .listeners
            .iter()
            .filter(|l| l.tcp.is_some() || l.udp.is_some())
            .map(|l| {
                let kinds = match (&l.tcp, &l.udp) {
                    (Some(_), Some(_)) => "tcp+udp",
                    (Some(_), None) => "tcp",
                    _ => "udp",
                };
                format!("{} {kinds} ({}; {})", l.addr, l.label, l.access)
            })
            .collect();
        let runs_as = match self.settings.module_limits.identity {
            Some((uid, gid)) => format!("uid {uid} gid {gid}"),
            None => crate::config::reach::daemon_user().into(),
        };
        let state = match &self.settings.state_dir {
            Some(dir) => format!(
                "state {} (journal sync: {})",
                dir.display(),
                self.settings.journal_sync
            ),
            None => "queue in memory only".into(),
        };
        let node = match &self.node {
            Some(node) => node.display().to_string(),
            None => format!("{} not found", self.settings.node.display()),
        };
        let metrics = match &self.metrics {
            Some(m) => format!("; metrics on http://{}/metrics", m.addr),
            None => String::new(),
        } + &match &self.web {
            Some(w) => format!("; dashboard on http://{}/", w.addr),
            None => String::new(),
        };
        format!(
            "listening on {}{metrics}; {} modules in {} run as {runs_as}; node {node}; {state}",
            listeners.join(", "),
            self.modules.len(),
            self.modules.dir().display(),
        )
    }

    /// Looks up the Node.js binary once, rather than on every spawn.
    pub(super) fn find_node(&mut self) {
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
    pub(super) fn begin_stop(&mut self, signal: i32) {
        if self.stopping.is_some() {
            return;
        }
        let until = Instant::now() + self.settings.shutdown_grace;
        // What stop_waiting_job does with each: journaled ones stay.
        let durable = self.queue_durable();
        let kept = self
            .jobs
            .waiting_keys()
            .into_iter()
            .filter(|&k| durable && self.jobs.get(k).is_some_and(|j| j.id.is_some()))
            .count();
        log::info!(
            target: "bgjobd",
            "signal {signal}: stopping; {} running jobs get {} s; of {} waiting, {kept} kept in the journal for the next start, {} dropped",
            self.jobs.running(),
            self.settings.shutdown_grace.as_secs_f64(),
            self.jobs.waiting(),
            self.jobs.waiting().saturating_sub(kept)
        );
        self.stopping = Some(until);
        self.timers.schedule(until, Timer::Stop);
        crate::net::systemd::notify("STOPPING=1");
        for i in 0..self.listeners.len() {
            self.close_listener(i);
        }
        for key in self.jobs.waiting_keys() {
            self.stop_waiting_job(key);
        }
        for key in self.conns.keys_where(Conn::is_unrouted) {
            self.refuse(key, Refusal::ShuttingDown);
        }
    }

    /// Done stopping once no job runs and every answer is written, or a
    /// moment after the grace period whatever is left.
    pub(super) fn stop_complete(&self) -> bool {
        let Some(until) = self.stopping else {
            return false;
        };
        let writing = self.conns.iter().any(|(_, c)| c.is_answering());
        let idle = self.jobs.running() == 0 && !writing && self.queue_settled();
        idle || Instant::now() > until + Duration::from_secs(2)
    }

    pub(super) fn expire_timers(&mut self) {
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

    pub(super) fn housekeeping(&mut self, now: Instant) {
        self.queue_tick(now);
        self.stop_idle_workers(now);
        self.report_held_warnings(now);
        self.expire_scrapes(now);
        self.expire_web(now);
        self.release_memory(now);
        self.rest(now);
        if now.duration_since(self.last_refresh) >= MODULE_REFRESH {
            self.modules.rescan();
            self.last_refresh = now;
        }
        self.timers
            .schedule(now + HOUSEKEEPING, Timer::Housekeeping);
    }
}
