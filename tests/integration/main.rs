//! Integration tests: the real `bgjobd` binary, real sockets, real children.

mod bench;
mod clients;
mod durable;
mod failures;
mod framing;
mod lifecycle;
mod limits;
mod protocol;
mod queue;
mod udp;
mod util;
