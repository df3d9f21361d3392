//! Everything read before the loop starts and again on SIGHUP: the command
//! line, the configuration file, access lists, module identities and the
//! `--check-config` report. Calls nothing of the daemon's.

/// Access lists: allowed client networks and served modules.
pub mod access;
/// `--check-config`: the modules folder and a summary of the settings.
pub mod check;
/// The command line.
pub mod cli;
/// The configuration file, its defaults and ceilings.
pub mod file;
/// Who modules run as: user and group lookups.
pub mod identity;
/// Whether the module user can reach the modules.
pub mod reach;
/// Limits and timings after defaults and clamping.
pub mod settings;
/// Where settings come from, to read them again on SIGHUP.
pub mod source;

pub use file::{Config, ListenerSpec};
pub use settings::Settings;
