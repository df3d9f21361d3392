//! Counters of what the daemon did, so that no refusal goes unnoticed; shown
//! by `queue:stats` and logged at shutdown.

use std::collections::BTreeMap;

use crate::net::exposition::Histogram;
use crate::net::protocol::Refusal;
use crate::run::outcome::Outcome;

#[derive(Debug, Default)]
pub struct Stats {
    pub connections: u64,
    pub datagrams: u64,
    pub jobs_ok: u64,
    pub jobs_failed: u64,
    pub jobs_timed_out: u64,
    pub jobs_cancelled: u64,
    pub refused: u64,
    pub refused_busy: u64,
    /// Datagrams dropped: not an allowed client, or a module not served.
    pub udp_forbidden: u64,
    /// Datagrams dropped: `max_waiting_udp` UDP jobs were already waiting.
    pub udp_over_budget: u64,
    /// Streamed answers cut: the module failed after its output had
    /// started, so the connection was reset instead of answered `5xx`.
    pub streams_cut: u64,
    /// Request bytes spliced from clients' sockets into streamed jobs'
    /// stdin, without being read by the daemon.
    pub bytes_spliced: u64,
    /// Requests followed by more bytes after their quiet gap had ended
    /// them: written in pieces, and run without the later ones.
    pub requests_cut: u64,
    /// Jobs finished, by module.
    pub by_module: BTreeMap<String, u64>,
    /// How long finished jobs ran, in seconds.
    pub run_time: Histogram,
    /// How long finished jobs waited for a running slot.
    pub wait_time: Histogram,
    /// From a TCP connection's accept to the start of its answer.
    pub latency: Histogram,
}

impl Stats {
    pub fn job_done(&mut self, module: &str, outcome: &Outcome) {
        match outcome {
            Outcome::Exited(0) => self.jobs_ok += 1,
            Outcome::TimedOut => self.jobs_timed_out += 1,
            Outcome::Cancelled => self.jobs_cancelled += 1,
            _ => self.jobs_failed += 1,
        }
        match self.by_module.get_mut(module) {
            Some(n) => *n += 1,
            None => {
                self.by_module.insert(module.to_string(), 1);
            }
        }
    }

    /// Counts a refusal; the caller logs it with its context.
    pub fn refusal(&mut self, refusal: Refusal) {
        self.refused += 1;
        if matches!(refusal, Refusal::Busy | Refusal::TooManyConnections) {
            self.refused_busy += 1;
        }
    }

    pub fn summary(&self) -> String {
        format!(
            "{} connections, {} datagrams, jobs: {} ok, {} failed, {} timed out, {} cancelled; {} refused ({} busy)",
            self.connections,
            self.datagrams,
            self.jobs_ok,
            self.jobs_failed,
            self.jobs_timed_out,
            self.jobs_cancelled,
            self.refused,
            self.refused_busy
        )
    }
}
