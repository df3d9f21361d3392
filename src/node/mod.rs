//! Warm Node.js workers: resident `node` processes per `.js` module and the
//! framing spoken with them. Pure state, but for `usage.rs`'s procfs reads:
//! the daemon drives them.

/// The framing of jobs and replies on a worker's stdin and stdout.
pub mod framing;
/// The workers and the jobs waiting for them.
pub mod pool;
/// A worker's CPU and memory over one job, from `/proc`.
pub mod usage;
