//! The dashboard's `/api/state`, gathered from the loop's own tables (the
//! job table, the module index, the settings, the activity ring) and the
//! queue's view, then written by `web/state.rs`; and the activity ring fed
//! where jobs start and end.

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::daemon::Daemon;
use crate::queue::store::Status as StoreStatus;
use crate::run::job::{Job, JobState, Origin};
use crate::run::outcome::{outcome_word, Outcome};
use crate::run::progress::Step;
use crate::web::history::INTERVAL_SECS;
use crate::web::state::{
    cut, tenths, Counts, Failed, History, Journal, ModuleRow, Progress, Running, State, MAX_LISTED,
    MAX_STDERR,
};

/// Now, in Unix seconds.
fn unix_now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

impl Daemon {
    /// A job started after waiting `wait` (for the charts).
    pub(super) fn note_started(&mut self, wait: Duration) {
        self.activity.started(unix_now().as_secs(), wait);
    }

    /// A job of `module` ended after running `ran` (for the charts and the
    /// module's hour); a cancel is neither a success nor a failure.
    pub(super) fn note_finished(&mut self, module: &str, ran: Duration, outcome: &Outcome) {
        if *outcome != Outcome::Cancelled {
            let ok = !outcome.is_failure();
            (self.activity).finished(unix_now().as_secs(), module, ran, ok);
        }
    }

    /// The `/api/state` document.
    pub(super) fn web_state(&mut self) -> String {
        let now = unix_now();
        let secs = now.as_secs();
        self.activity.roll(secs);
        let view = self.queue_view(MAX_LISTED);
        let journal = match (self.queue_status().0, self.queue_failing()) {
            (StoreStatus::Memory, _) => Journal {
                state: "memory",
                error: None,
            },
            (_, Some(why)) => Journal {
                state: "failing",
                error: Some(why),
            },
            (_, None) => Journal {
                state: "syncing",
                error: None,
            },
        };
        let paused: BTreeSet<&str> = view.paused.iter().map(String::as_str).collect();
        let mut names: BTreeSet<String> = self.modules.names().map(str::to_string).collect();
        names.extend(self.activity.active_modules(secs));
        names.extend(self.jobs.busy_modules().map(str::to_string));
        names.extend(view.paused.iter().cloned());
        let modules = names
            .into_iter()
            .map(|name| {
                let hour = self.activity.hour(&name, secs);
                let policy = crate::config::policy::policy(&self.settings.module_policy, &name);
                ModuleRow {
                    waiting: self.jobs.waiting_of(&name),
                    running: self.jobs.running_of(&name),
                    done_hour: hour.done,
                    failed_hour: hour.failed,
                    run_p50_ms: hour.run_p50_ms,
                    run_p95_ms: hour.run_p95_ms,
                    paused: paused.contains(name.as_str()),
                    policy: policy.as_json(),
                    name,
                }
            })
            .collect();
        let mut running: Vec<Running> = (self.jobs.iter())
            .filter_map(|(_, job)| self.running_row(job))
            .collect();
        running.sort_by_key(|r| (r.id.is_none(), r.id));
        let running_total = running.len();
        running.truncate(MAX_LISTED);
        let failed: Vec<Failed> = (view.failed.iter())
            .map(|f| Failed {
                id: f.id,
                module: f.module.clone(),
                attempts: f.attempts,
                age_secs: tenths(f.finished.elapsed().as_secs_f64()),
                exit: outcome_word(&f.outcome),
                stderr: cut(&f.stderr, MAX_STDERR),
            })
            .collect();
        let failed_total = view.failed_total;
        let state = State {
            version: env!("CARGO_PKG_VERSION"),
            uptime_secs: self.started.elapsed().as_secs(),
            now: (now.as_millis() as f64) / 1e3,
            actions: self.web.as_ref().is_some_and(|w| w.settings.actions),
            journal,
            counts: Counts {
                running: self.jobs.running(),
                waiting: self.jobs.waiting() + view.unkept,
                scheduled: view.scheduled,
                failed: failed_total,
            },
            cluster: None,
            modules,
            history: History {
                interval_secs: INTERVAL_SECS,
                points: self.activity.points().cloned().collect(),
            },
            running,
            running_total,
            failed,
            failed_total,
        };
        state.to_json()
    }

    /// A running job's row; `None` for one still waiting.
    fn running_row(&self, job: &Job) -> Option<Running> {
        let started = match &job.state {
            JobState::Running(run) => run.started,
            JobState::Warm(run) => run.started,
            JobState::Waiting => return None,
        };
        let listener = match job.origin {
            Origin::Udp { .. } => "udp".to_string(),
            Origin::Tcp {
                conn: Some(conn), ..
            } => match self.conns.get(conn) {
                Some(c) => self.owner_of(c.listener),
                None => String::new(),
            },
            Origin::Tcp { conn: None, .. } | Origin::Queue { .. } => job.owner.clone(),
        };
        let progress = job.progress.last.map(|step| match step {
            Step::Of { done, total } => Progress { done, total },
            Step::Percent(p) => Progress {
                done: u64::from(p),
                total: 100,
            },
        });
        Some(Running {
            id: job.id,
            module: job.module.name.clone(),
            listener,
            attempt: job.attempts,
            age_secs: tenths(started.elapsed().as_secs_f64()),
            progress,
        })
    }
}
