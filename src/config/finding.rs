//! A finding of the start-up check (`check.rs`): what is wrong and the fix,
//! and what the checks look at. Shared by the check files.

use std::fmt;
use std::path::Path;

use crate::config::Config;

/// Something start-up needs that is missing or wrong, and the fix; or,
/// as a notice, a choice whose cost the operator should know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub what: String,
    pub fix: String,
    pub level: Level,
}

/// How much a finding matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Wrong: `--check-config` fails, start-up warns.
    Problem,
    /// A deliberate setting with a cost: said, but `--check-config` passes
    /// and start-up logs it at info level.
    Notice,
}

impl Finding {
    /// The level it is logged at, at start and on reload.
    pub fn log_level(&self) -> log::Level {
        match self.level {
            Level::Problem => log::Level::Warn,
            Level::Notice => log::Level::Info,
        }
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.what, self.fix)
    }
}

pub fn finding(what: impl Into<String>, fix: impl Into<String>) -> Finding {
    Finding {
        what: what.into(),
        fix: fix.into(),
        level: Level::Problem,
    }
}

/// A finding of [`Level::Notice`].
pub fn notice(what: impl Into<String>, fix: impl Into<String>) -> Finding {
    Finding {
        level: Level::Notice,
        ..finding(what, fix)
    }
}

/// What is checked: the configuration as loaded, and the modules folder.
pub struct Subject<'a> {
    pub config: &'a Config,
    pub modules_dir: &'a Path,
}
