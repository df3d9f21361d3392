//! bgjob: a small, single-threaded background-job daemon. Clients send
//! `module:data` over TCP or UDP; the daemon runs `modules/<module>` as a
//! child process with the data on stdin and, over TCP, answers with its
//! stdout. See the README for the protocol, the settings and the design.

pub mod child;
pub mod cli;
pub mod config;
pub mod conn;
pub mod daemon;
pub mod error;
pub mod io;
pub mod job;
pub mod jobs;
pub mod listeners;
pub mod modules;
pub mod protocol;
pub mod queue;
pub mod stats;
mod supervise;
mod tcp;
pub mod timers;
mod udp;
