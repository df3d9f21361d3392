//! A job's receipt: what `queue:info` tells an operator about one run.

use std::time::Duration;

use crate::run::outcome::{outcome_word, Outcome, Usage};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Receipt {
    /// Runs started so far (more than one after a restart mid-run).
    pub attempts: u32,
    /// Set once finished.
    pub outcome: Option<Outcome>,
    pub wall: Duration,
    pub usage: Usage,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// The output passed the cap and was cut there.
    pub output_cut: bool,
    /// SHA-256 of the module file that ran.
    pub module_sha256: String,
}

impl Receipt {
    /// `key: value` lines, for `queue:info`.
    pub fn render(&self, id: u64, module: &str, status: &str) -> String {
        let mut lines = vec![
            format!("id: {id}"),
            format!("module: {module}"),
            format!("status: {status}"),
            format!("attempts: {}", self.attempts),
        ];
        match &self.outcome {
            Some(Outcome::Exited(code)) => lines.push(format!("exit_code: {code}")),
            Some(Outcome::Signaled(sig)) => lines.push(format!("signal: {sig}")),
            Some(other) => lines.push(format!("outcome: {}", outcome_word(other))),
            None => {}
        }
        if self.outcome.is_some() {
            lines.push(format!("wall_ms: {:.1}", self.wall.as_secs_f64() * 1e3));
            lines.push(format!(
                "cpu_user_ms: {:.1}",
                self.usage.user.as_secs_f64() * 1e3
            ));
            lines.push(format!(
                "cpu_system_ms: {:.1}",
                self.usage.system.as_secs_f64() * 1e3
            ));
            lines.push(format!("max_rss_kib: {}", self.usage.max_rss_kib));
        }
        lines.push(format!("bytes_in: {}", self.bytes_in));
        lines.push(format!("bytes_out: {}", self.bytes_out));
        lines.push(format!(
            "output_cut: {}",
            if self.output_cut { "yes" } else { "no" }
        ));
        lines.push(format!("module_sha256: {}", self.module_sha256));
        lines.join("\n") + "\n"
    }
}
