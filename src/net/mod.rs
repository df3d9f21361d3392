//! The network edge: listeners (bound or inherited from systemd), the TCP
//! connection state machine and the wire protocol. Calls nothing of the
//! daemon's: the loop drives it.

/// A TCP connection: one request, one answer.
pub mod conn;
/// Binding the configured listeners.
pub mod listeners;
/// The wire protocol: request heads, queue requests, answers, refusals.
pub mod protocol;
/// A client's stream: TCP, or Unix from the operator socket.
pub mod stream;
/// Socket activation and readiness notification for systemd.
pub mod systemd;
