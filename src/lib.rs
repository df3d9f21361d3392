//! bgjob: a small, single-threaded background-job daemon. Clients send
//! `module:data` over TCP or UDP; the daemon runs `modules/<module>` as a
//! child process with the data on stdin and, over TCP, answers with its
//! stdout. See the README for the protocol, the settings and the design.
//!
//! The folders are the architecture; each `mod.rs` says what it owns.

/// Command line, configuration file, access lists, identities, `--check-config`.
pub mod config;
/// The poll loop: tokens, signals, timers, stats; it applies what the parts decide.
pub mod daemon;
/// The start-up error type (a leaf).
pub mod error;
/// Replays of fuzzing inputs, shared by the fuzz targets and a unit test.
pub mod fuzz_checks;
/// Non-blocking read and write rules shared by sockets and pipes (a leaf).
pub mod io;
/// The queue's journal: records, the writer thread, recovery.
pub mod journal;
/// Slab keys as types, so one kind of key cannot stand for another (a leaf).
pub mod keys;
/// Listeners, systemd sockets, the connection state machine, the wire protocol.
pub mod net;
/// Warm Node.js workers: pools and their framing.
pub mod node;
/// Queue results kept for `queue:get`, and the queue store interface.
pub mod queue;
/// One warn line per kind per second, with a count of those held back (a leaf).
pub mod ratelimit;
/// Jobs and module processes: outcome, job table, spawn, module index.
pub mod run;
/// Untrusted bytes made safe to log (a leaf).
pub mod sanitize;
/// The dashboard's pure parts: requests, routes, checks, the state document.
pub mod web;
