//! The queue: results kept under their ids until fetched, and the store
//! interface that makes jobs and results survive restarts. Calls nothing of
//! the daemon's; the journal implements its store.

/// What waits for the store to complete a change.
pub mod held;
/// Unguessable ids: a keyed permutation of a counter.
pub mod ids;
/// Results of queue jobs and the clients waiting for them.
pub mod results;
/// The queue store interface, and the in-memory store.
pub mod store;
