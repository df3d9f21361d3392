//! How a job ended and what it used: values every part passes around, so
//! this file imports nothing from the crate.

use std::fmt;
use std::time::Duration;

/// What happened to a job's process: data for the requester, not a daemon error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The process exited with this status.
    Exited(i32),
    /// The process was killed by this signal (not by us).
    Signaled(i32),
    /// It ran past the job time limit and its process group was killed.
    TimedOut,
    /// It wrote more than the output cap (the cap is kept) and was killed.
    OutputTooLarge(usize),
    /// It could not be started.
    SpawnFailed(String),
    /// Cancelled by `queue:cancel` while running; its process group was killed.
    Cancelled,
}

/// As an operator reads it in the log: `exit status 3`, `killed by signal 9`.
impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Exited(code) => write!(f, "exit status {code}"),
            Outcome::Signaled(sig) => write!(f, "killed by signal {sig}"),
            Outcome::TimedOut => f.write_str("timed out"),
            Outcome::OutputTooLarge(cap) => write!(f, "output over {cap} bytes"),
            Outcome::SpawnFailed(why) => write!(f, "cannot start: {why}"),
            Outcome::Cancelled => f.write_str("cancelled"),
        }
    }
}

impl Outcome {
    /// A failure the operator should hear of: not a success, not a cancel.
    pub fn is_failure(&self) -> bool {
        !matches!(self, Outcome::Exited(0) | Outcome::Cancelled)
    }
}

/// A short name for an outcome, for receipts and counters.
pub fn outcome_word(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Exited(0) => "ok".into(),
        Outcome::Exited(code) => format!("exit {code}"),
        Outcome::Signaled(sig) => format!("signal {sig}"),
        Outcome::TimedOut => "timed out".into(),
        Outcome::OutputTooLarge(_) => "output too large".into(),
        Outcome::SpawnFailed(why) => format!("cannot start: {why}"),
        Outcome::Cancelled => "cancelled".into(),
    }
}

/// Resource use of a finished child, from `wait4`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub user: Duration,
    pub system: Duration,
    /// Peak resident memory in KiB.
    pub max_rss_kib: u64,
}

/// Turns a raw wait status into an outcome.
pub fn decode_status(raw: i32) -> Outcome {
    if libc::WIFEXITED(raw) {
        Outcome::Exited(libc::WEXITSTATUS(raw))
    } else if libc::WIFSIGNALED(raw) {
        Outcome::Signaled(libc::WTERMSIG(raw))
    } else {
        Outcome::Exited(-1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_statuses_decode() {
        assert_eq!(decode_status(0), Outcome::Exited(0));
        assert_eq!(decode_status(3 << 8), Outcome::Exited(3));
        assert_eq!(decode_status(9), Outcome::Signaled(9));
    }

    #[test]
    fn outcomes_read_as_users_write_them() {
        assert_eq!(Outcome::Exited(3).to_string(), "exit status 3");
        assert_eq!(Outcome::Signaled(9).to_string(), "killed by signal 9");
        assert_eq!(
            Outcome::SpawnFailed("No such file".into()).to_string(),
            "cannot start: No such file"
        );
        assert_eq!(
            Outcome::OutputTooLarge(10).to_string(),
            "output over 10 bytes"
        );
        assert!(Outcome::TimedOut.is_failure() && !Outcome::Cancelled.is_failure());
    }
}
