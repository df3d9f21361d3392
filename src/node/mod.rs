//! Warm Node.js workers: resident `node` processes per `.js` module and the
//! framing spoken with them.

/// The workers and the jobs waiting for them, and the framing.
pub mod pool;
