//! Integration tests: the real `bgjobd` binary, real sockets, real children.

mod access;
/// The load generator is built with `--features bench` (bin/test does).
#[cfg(feature = "bench")]
mod bench;
mod bgjob_cli;
mod cage;
mod checks;
mod classic;
mod docs;
mod durable;
mod edges;
mod failures;
mod first_read;
mod framing;
mod journal_attacks;
mod layout;
mod lifecycle;
mod limits;
mod logs;
mod memory;
mod metrics;
mod node;
mod ownership;
mod package;
mod protocol;
mod queue;
mod seed_clients;
mod service;
mod slow_clients;
mod slow_link;
mod soak;
mod udp;
mod util;
mod write_errors;
