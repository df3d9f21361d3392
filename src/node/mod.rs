//! Warm Node.js workers: resident `node` processes per `.js` module and the
//! framing spoken with them, and where `.js` modules run. Pure state, but
//! for `usage.rs`'s procfs reads: the daemon drives them.

/// The framing of jobs and replies on a worker's stdin and stdout.
pub mod framing;
/// The workers and the jobs waiting for them.
pub mod pool;
/// A worker's CPU and memory over one job, from `/proc`.
pub mod usage;
/// Where `.js` modules run: the folder holding the modules, or a setting.
pub mod workdir;
