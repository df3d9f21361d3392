//! bgjob: a small, single-threaded background-job daemon. Clients send
//! `module:data` over TCP or UDP; the daemon runs `modules/<module>` as a
//! child process with the data on stdin and, over TCP, answers with its
//! stdout. See the README for the protocol, the settings and the design.

pub mod access;
mod admin;
pub mod bench;
pub mod check;
pub mod checksum;
pub mod child;
pub mod cli;
pub mod client;
pub mod config;
pub mod conn;
pub mod daemon;
mod durable;
pub mod error;
pub mod fuzz_checks;
pub mod identity;
pub mod io;
pub mod job;
pub mod jobs;
pub mod journal;
pub mod listeners;
pub mod modules;
pub mod protocol;
pub mod queue;
pub mod receipt;
pub mod spawn;
pub mod stats;
mod stderr;
mod supervise;
pub mod systemd;
mod tcp;
pub mod timers;
mod udp;
mod warm;
pub mod workers;
