//! A finding of the start-up check (`check.rs`): what is wrong and the fix,
//! and what the checks look at. Shared by the check files.

use std::fmt;
use std::path::Path;

use crate::config::Config;

/// Something start-up needs that is missing or wrong, and the fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub what: String,
    pub fix: String,
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
    }
}

/// What is checked: the configuration as loaded, and the modules folder.
pub struct Subject<'a> {
    pub config: &'a Config,
    pub modules_dir: &'a Path,
}
