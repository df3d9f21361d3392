//! The queue: results kept under their ids until fetched.

/// Results of queue jobs and the clients waiting for them.
pub mod results;
