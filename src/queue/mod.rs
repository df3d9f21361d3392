//! The queue: one owner of everything about queued jobs, behind the engine
//! interface (`engine.rs`): requests in, events and a deadline out. The
//! local engine keeps the book of ids and results, the answers held for the
//! store, and the store (the journal implements it). Calls nothing of the
//! daemon's.

/// Admission of new jobs: the waiting bounds, and the hand-off to the store.
mod admit;
/// What became of each attempt of a job, and which failures are retried.
pub mod attempts;
/// The engine interface: requests, events, deadline.
pub mod engine;
/// How an attempt ends: retried later, or its result kept; failed and retry.
mod finish;
/// What waits for the store to complete a change.
pub mod held;
/// Unguessable ids: a keyed permutation of a counter.
pub mod ids;
/// A job the local engine holds, compactly, and what jobs share.
mod job;
/// At most one held job per (listener, key).
mod keys;
/// The local engine: the book, the held answers and the store, owned together.
pub mod local;
/// Options of `queue:add?<options>:...`, parsed without I/O.
pub mod options;
/// Paused modules: their queued jobs do not start.
mod pause;
/// How far the engine's running jobs are.
mod progress;
/// The local engine's requests, and its `QueueEngine` implementation.
mod requests;
/// Results of queue jobs and the clients waiting for them.
pub mod results;
/// Jobs held for later, in a heap by run time.
mod schedule;
/// The queue store interface, and the in-memory store.
pub mod store;
/// Counts of the jobs held outside the daemon's waiting line.
mod tally;
/// What the dashboard reads of the queue.
mod view;
