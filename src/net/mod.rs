//! The network edge: listeners (bound or inherited from systemd), the TCP
//! connection state machine and the wire protocol. Calls nothing of the
//! daemon's: the loop drives it.

/// A TCP connection: one request, one answer.
pub mod conn;
/// The Prometheus text format for `/metrics`.
pub mod exposition;
/// A minimal HTTP/1.1 GET reader for the metrics listener.
pub mod http;
/// Binding the configured listeners.
pub mod listeners;
/// The wire protocol: request heads, queue requests, answers, refusals.
pub mod protocol;
/// Socket activation and readiness notification for systemd.
pub mod systemd;
