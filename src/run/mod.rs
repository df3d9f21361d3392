//! Running modules: what a job is and how it ended, the job table and its
//! waiting line, module processes and their spawning, the module index.
//! Calls nothing of the daemon's or the network's.

/// What runs a module, and the variables it gets.
pub mod command;
/// Pipes for children, and standard descriptors kept open.
pub mod fds;
/// Module files hashed off the loop, for receipts.
pub mod hasher;
/// A job: one run of a module, from request to answer.
pub mod job;
/// What a module may use and see: limits, user, environment.
pub mod limits;
/// The waiting line: by priority, FIFO within one, per module.
pub mod line;
/// The modules folder: which modules exist and how each runs.
pub mod modules;
/// The module-name rule (a leaf).
pub mod name;
/// How a job ended and what it used (a leaf).
pub mod outcome;
/// A module process: pid, pipes, signalling its group, reaping.
pub mod process;
/// Progress lines a job writes, parsed (a leaf).
pub mod progress;
/// What a finished job's receipt says (`queue:info`).
pub mod receipt;
/// Starting processes from a thread of their own.
pub mod spawn;
/// Processes being started and running, by serial and pid.
pub mod spawns;
/// Module stderr, logged line by line.
pub mod stderr;
/// Every job held and the waiting line.
pub mod table;
/// Module uids: one per running job, cleared before reuse.
pub mod uids;
/// The vfork child that becomes a module.
mod vfork;
