//! A finding of the start-up check (`check.rs`): what is wrong, the fix,
//! and whether it would stop the daemon; and what the checks look at.
//! Shared by the check files.

use std::fmt;
use std::path::Path;

use crate::config::Config;

/// How much a finding matters: whether the daemon would start with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// A deliberate setting with a cost the operator should know: said,
    /// logged at info level, and `--check-config` still passes.
    Notice,
    /// The daemon starts (or reloads) and serves what it can, saying so in
    /// a warning: a clamped value, a module that cannot run.
    Warning,
    /// The daemon would not start: a config it cannot read, no listener, a
    /// state folder it cannot use, modules it may not run as anybody.
    Error,
}

impl Severity {
    /// The word `--check-config` puts before the finding.
    pub fn word(self) -> &'static str {
        match self {
            Severity::Notice => "note",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }

    /// The level it is logged at, at start and on reload.
    pub fn log_level(self) -> log::Level {
        match self {
            Severity::Notice => log::Level::Info,
            Severity::Warning => log::Level::Warn,
            Severity::Error => log::Level::Error,
        }
    }
}

/// Something start-up needs that is missing or wrong, and the fix; or,
/// as a notice, a choice whose cost the operator should know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub what: String,
    pub fix: String,
    pub severity: Severity,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.what, self.fix)
    }
}

/// A finding the daemon starts with, warning of it.
pub fn finding(what: impl Into<String>, fix: impl Into<String>) -> Finding {
    Finding {
        what: what.into(),
        fix: fix.into(),
        severity: Severity::Warning,
    }
}

/// A finding that would stop the daemon from starting.
pub fn error(what: impl Into<String>, fix: impl Into<String>) -> Finding {
    Finding {
        severity: Severity::Error,
        ..finding(what, fix)
    }
}

/// A finding of [`Severity::Notice`].
pub fn notice(what: impl Into<String>, fix: impl Into<String>) -> Finding {
    Finding {
        severity: Severity::Notice,
        ..finding(what, fix)
    }
}

/// What is checked: the configuration as loaded, and the modules folder.
pub struct Subject<'a> {
    pub config: &'a Config,
    pub modules_dir: &'a Path,
}
