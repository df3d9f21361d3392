//! A finding of the start-up check (`check.rs`): what is wrong, the fix,
//! and whether it would stop the daemon; and what the checks look at.
//! Shared by the check files.

use std::fmt;
use std::path::Path;

use crate::config::Config;

/// How bad a finding is: whether the daemon would start with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
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
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// Something start-up needs that is missing or wrong, and the fix.
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

/// What is checked: the configuration as loaded, and the modules folder.
pub struct Subject<'a> {
    pub config: &'a Config,
    pub modules_dir: &'a Path,
}
