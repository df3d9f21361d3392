//! Integration tests: the real `bgjobd` binary, real sockets, real children.

mod access;
mod bench;
mod bgjob_cli;
mod cage;
mod checks;
mod classic;
mod durable;
mod failures;
mod framing;
mod layout;
mod lifecycle;
mod limits;
mod logs;
mod metrics;
mod node;
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
