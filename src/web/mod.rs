//! The dashboard's pure parts: reading an HTTP request (`httparse`),
//! routing and the security checks, responses and embedded assets, the
//! history ring and hour windows with their percentiles, and the
//! `/api/state` document. No sockets and no daemon state: the loop's glue
//! is `daemon/web.rs`.

/// The page, its script and style sheet, embedded at build time.
pub mod assets;
/// Host, Origin and token checks.
pub mod guard;
/// Jobs started, succeeded and failed, and their times, over the last hour.
pub mod history;
/// Log-scaled histograms and their percentiles (a leaf).
pub mod percentile;
/// A request head read within bounds.
pub mod request;
/// Responses with the headers every answer carries.
pub mod response;
/// What a request asks for.
pub mod route;
/// The `/api/state` document.
pub mod state;
