//! The queue: one owner of everything about queued jobs, behind the engine
//! interface (`engine.rs`): requests in, events and a deadline out. The
//! local engine keeps the book of ids and results, the answers held for the
//! store, and the store (the journal implements it). Calls nothing of the
//! daemon's.

/// The engine interface: requests, events, deadline.
pub mod engine;
/// What waits for the store to complete a change.
pub mod held;
/// Unguessable ids: a keyed permutation of a counter.
pub mod ids;
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
/// The queue store interface, and the in-memory store.
pub mod store;
