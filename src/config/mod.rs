//! Everything read before the loop starts and again on SIGHUP: the command
//! line, the configuration file, access lists, module identities and the
//! `--check-config` report. Calls nothing of the daemon's.

/// Access lists: allowed client networks and served modules.
pub mod access;
/// Whether the config's listeners can be bound.
pub mod bindable;
/// The start-up check, for `--check-config` and every start and reload.
pub mod check;
/// The command line.
pub mod cli;
/// The configuration file, its defaults and ceilings.
pub mod file;
/// A finding of the start-up check, and what the checks look at.
pub mod finding;
/// Who modules run as: user and group lookups.
pub mod identity;
/// The start-up checks of `.js` modules: npm packages, working folder.
pub mod js_check;
/// One listener of the configuration file.
pub mod listener;
/// The start-up checks of the modules folder.
pub mod module_check;
/// Per-module policies (`module_policy`): how each module's calls are served.
pub mod policy;
/// Whether the module user can reach the modules.
pub mod reach;
/// Limits and timings after defaults and clamping.
pub mod settings;
/// Where settings come from, to read them again on SIGHUP.
pub mod source;
/// Addresses, networks, the sync policy, and numbers clamped with a note.
pub mod values;
/// The dashboard's setting (`web`).
pub mod web;
/// Whether others than their owner and root can change the modules.
pub mod writable;

pub use file::{Config, ListenerSpec};
pub use settings::Settings;
