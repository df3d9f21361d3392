//! The queue's answers the loop writes itself: `queue:list` (the engine's
//! rows and the daemon's own jobs) and `queue:stats` (the engine's
//! counters and the daemon's).

use std::fmt::Write as _;
use std::time::Instant;

use crate::daemon::Daemon;
use crate::keys::ConnKey;
use crate::queue::engine::QueueStats;
use crate::queue::store::Status;
use crate::run::job::JobState;

impl Daemon {
    /// One line per job held: `id module transport status age_secs`; it
    /// reveals ids, so only operators may ask (the engine checks).
    pub(super) fn answer_list(&mut self, conn: ConnKey, mut rows: Vec<(u64, String)>) {
        let now = Instant::now();
        for (_, job) in self.jobs.iter().filter(|(_, j)| j.id.is_none()) {
            let status = match job.state {
                JobState::Running(_) | JobState::Warm(_) => "running",
                JobState::Waiting => "waiting",
            };
            let age = now.duration_since(job.created).as_secs_f64();
            let (name, transport) = (&job.module.name, job.origin.transport());
            rows.push((0, format!("- {name} {transport} {status} {age:.1}")));
        }
        rows.sort();
        let text: String = rows.into_iter().map(|(_, row)| row + "\n").collect();
        self.answer(conn, text.into_bytes());
    }

    /// Counters as `key: value` lines.
    pub(super) fn render_stats(&self, queue: &QueueStats) -> String {
        let s = &self.stats;
        let mut out = String::new();
        let mut line = |key: &str, value: &dyn std::fmt::Display| {
            let _ = writeln!(out, "{key}: {value}");
        };
        line("uptime_secs", &self.started.elapsed().as_secs());
        line("jobs_waiting", &(self.jobs.waiting() + queue.unkept));
        line("jobs_running", &self.jobs.running());
        line("jobs_done_unfetched", &queue.done_unfetched);
        line("results_bytes", &queue.results_bytes);
        line("total_ok", &s.jobs_ok);
        line("total_failed", &s.jobs_failed);
        line("total_timed_out", &s.jobs_timed_out);
        line("total_cancelled", &s.jobs_cancelled);
        line("total_streams_cut", &s.streams_cut);
        line("total_bytes_spliced", &s.bytes_spliced);
        line("total_requests_cut", &s.requests_cut);
        line("total_refused", &s.refused);
        line("total_refused_busy", &s.refused_busy);
        line("connections_open", &self.conns.len());
        line("connections_total", &s.connections);
        line("datagrams_total", &s.datagrams);
        line("datagrams_forbidden", &s.udp_forbidden);
        line("datagrams_over_budget", &s.udp_over_budget);
        line("next_id", &queue.next_id);
        if !queue.paused.is_empty() {
            line("paused_modules", &queue.paused.join(" "));
        }
        match &queue.store {
            Status::Journal {
                bytes,
                last_sync_ms_ago,
            } => {
                line("journal_bytes", bytes);
                match last_sync_ms_ago {
                    Some(ago) => line("journal_last_fsync_ms_ago", ago),
                    None => line("journal_last_fsync_ms_ago", &"never"),
                }
            }
            Status::Memory => line("journal", &"off"),
        }
        for (module, n) in &s.by_module {
            line(&format!("module.{module}"), n);
        }
        out
    }
}
