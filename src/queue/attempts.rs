//! What became of each attempt of a queue job: its outcome, run time and
//! the first line of its stderr, journaled so `queue:info`, `queue:failed`
//! and the retry count survive a restart. Which outcomes are worth
//! another attempt is decided here too.

use std::rc::Rc;
use std::time::Duration;

use crate::queue::options::JobOptions;

use crate::run::outcome::Outcome;

/// The longest stderr line kept for an attempt, in bytes.
pub const MAX_STDERR_LINE: usize = 200;

/// A stderr line as an attempt keeps it: at most [`MAX_STDERR_LINE`]
/// bytes, cut at a character.
pub fn kept_line(text: &str) -> String {
    let mut end = text.len().min(MAX_STDERR_LINE);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

/// One finished attempt of a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// 1-based, as `BGJOB_ATTEMPT` said.
    pub number: u32,
    pub outcome: Outcome,
    /// How long it ran.
    pub wall: Duration,
    /// The first line the module wrote to stderr, as it wrote it (cut at
    /// [`MAX_STDERR_LINE`] bytes); escaped where it is shown as a line.
    pub stderr: String,
    /// When the next attempt may start (Unix ms), if one was scheduled.
    pub retry_at_ms: Option<u64>,
}

impl Attempt {
    /// `exit 3, 0.12 s, <stderr line>`: the line `queue:info` shows.
    pub fn describe(&self) -> String {
        let outcome = match &self.outcome {
            Outcome::Exited(code) => format!("exit {code}"),
            Outcome::Signaled(sig) => format!("signal {sig}"),
            other => crate::run::outcome::outcome_word(other),
        };
        let mut line = format!("{outcome}, {:.2} s", self.wall.as_secs_f64());
        if !self.stderr.is_empty() {
            line.push_str(", ");
            line.push_str(&crate::sanitize::loggable(
                self.stderr.as_bytes(),
                MAX_STDERR_LINE,
            ));
        }
        line
    }
}

/// What a failed job keeps so that `queue:retry` can run it once more:
/// its data and its options (priority, time limit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Again {
    pub data: Rc<[u8]>,
    pub options: JobOptions,
}

/// True if an attempt that ended so failed and may be tried again: a
/// status other than 0, a signal, the time limit, too much output. A
/// cancel is the client's wish, and a module that cannot start is the
/// operator's to fix, so neither is retried.
pub fn retryable(outcome: &Outcome) -> bool {
    matches!(
        outcome,
        Outcome::Exited(1..) | Outcome::Exited(..=-1) | Outcome::Signaled(_)
    ) || matches!(outcome, Outcome::TimedOut | Outcome::OutputTooLarge(_))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_retried_cancels_and_successes_are_not() {
        for outcome in [
            Outcome::Exited(3),
            Outcome::Exited(-1),
            Outcome::Signaled(9),
            Outcome::TimedOut,
            Outcome::OutputTooLarge(10),
        ] {
            assert!(retryable(&outcome), "{outcome}");
        }
        for outcome in [
            Outcome::Exited(0),
            Outcome::Cancelled,
            Outcome::SpawnFailed("x".into()),
        ] {
            assert!(!retryable(&outcome), "{outcome}");
        }
    }

    #[test]
    fn an_attempt_reads_as_outcome_time_and_stderr() {
        let attempt = Attempt {
            number: 1,
            outcome: Outcome::Exited(3),
            wall: Duration::from_millis(120),
            stderr: "no such invoice".into(),
            retry_at_ms: None,
        };
        assert_eq!(attempt.describe(), "exit 3, 0.12 s, no such invoice");
    }
}
