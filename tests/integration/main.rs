//! Integration tests: the real `bgjobd` binary, real sockets, real children.

mod access;
/// The load generator is built with `--features bench` (bin/test does).
#[cfg(feature = "bench")]
mod bench;
mod bgjob_cli;
mod cage;
mod checks;
mod classic;
/// The PHP and Python libraries in clients/, by their own test suites.
mod client_libraries;
/// The dashboard: page, /api/state, actions and their checks.
mod dashboard;
/// The dashboard in a headless Chromium, driven over WebDriver.
mod dashboard_browser;
mod docs;
mod durable;
mod edges;
/// The queue engine under test, from `BGJOB_TEST_ENGINE`.
mod engine;
mod failures;
mod first_read;
mod framing;
mod full_disk;
mod journal_attacks;
mod journal_header;
mod layout;
mod lifecycle;
mod limits;
mod logs;
mod memory;
mod metrics;
/// Per-module limits of the module_policy map.
mod module_policy;
mod node;
mod node_host;
mod ownership;
mod package;
/// Pausing and resuming a module's queued jobs.
mod pause;
/// The waiting line: priorities and per-module bounds.
mod priority;
/// Progress lines of running jobs.
mod progress;
mod protocol;
mod queue;
/// Options on queue:add, and jobs held for later.
mod queue_later;
/// Retries, failed jobs, queue:failed and queue:retry.
mod queue_retries;
mod reload;
mod seed_clients;
mod seed_modules;
mod service;
mod slow_clients;
mod slow_link;
mod soak;
mod streaming;
/// Streamed jobs' requests spliced into their stdin.
mod streaming_splice;
mod udp;
mod util;
/// A minimal W3C WebDriver client (chromedriver) for the browser test.
mod webdriver;
mod writable;
mod write_errors;
