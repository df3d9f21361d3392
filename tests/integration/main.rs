//! Integration tests: the real `bgjobd` binary, real sockets, real children.

mod access;
mod bench;
mod client;
mod clients;
mod durable;
mod failures;
mod framing;
mod lifecycle;
mod limits;
mod node;
mod protocol;
mod queue;
mod service;
mod soak;
mod udp;
mod util;
