//! The daemon's own errors: what stops it from starting or reloading. What
//! happens to a job is not an error here but an [`Outcome`](crate::run::outcome::Outcome).

use std::fmt;
use std::io;

#[derive(Debug)]
pub enum Error {
    /// The configuration is not valid; the text says where and why.
    Config(String),
    /// An operating-system call failed; the text says what was being done.
    Io(String, io::Error),
    /// The state folder is another daemon's; the text names it and its pid.
    StateInUse(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Config(why) => write!(f, "invalid configuration: {why}"),
            Error::Io(what, e) => write!(f, "{what}: {e}"),
            Error::StateInUse(what) => f.write_str(what),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Config(_) | Error::StateInUse(_) => None,
            Error::Io(_, e) => Some(e),
        }
    }
}
