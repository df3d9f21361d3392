//! Integration tests: the real `bgjobd` binary, real sockets, real children.

mod access;
mod bench;
mod bgjob_cli;
mod durable;
mod edges;
mod failures;
mod framing;
mod journal_attacks;
mod layout;
mod lifecycle;
mod limits;
mod node;
mod ownership;
mod protocol;
mod queue;
mod seed_clients;
mod service;
mod soak;
mod udp;
mod util;
mod write_errors;
