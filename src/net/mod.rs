//! The network edge: listeners (bound or inherited from systemd), the TCP
//! connection state machine and the wire protocol. Calls nothing of the
//! daemon's: the loop drives it.

/// A client connection (TCP or Unix): one request, one answer.
pub mod conn;
/// The Prometheus text format for `/metrics`.
pub mod exposition;
/// Where a classic client's request ends, as a listener chooses.
pub mod framing;
/// A minimal HTTP/1.1 GET reader for the metrics listener.
pub mod http;
/// A client's socket lent to a module as its stdout (streamed answers).
pub mod lent;
/// Binding the configured listeners.
pub mod listeners;
/// A request's clock: its quiet gap, deadline and least rate.
pub mod pace;
/// The states of a connection and the verdicts it returns.
pub mod phase;
/// The wire protocol: request heads, queue requests, answers, refusals.
pub mod protocol;
/// The quiet gap derived from the connection (`TCP_INFO`, read spacing).
pub mod quiet;
/// Request bytes spliced from a client's socket into a module's stdin.
pub mod splice;
/// A client's stream: TCP, or Unix from the operator socket.
pub mod stream;
/// Socket activation and readiness notification for systemd.
pub mod systemd;
