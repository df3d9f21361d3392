//! Jobs held for later (a `delay` or `at`, or the wait before a retry): a
//! heap by run time, so the jobs due are found in time proportional to
//! them, not to all the jobs held. Due jobs go to the daemon's waiting line
//! a bounded number per turn, so that a crowd due in the same second never
//! makes one long loop turn.
//!
//! A job's run time is kept in the heap alone, not beside the job: a job
//! is scheduled only once at a time (a retry is scheduled after its
//! attempt ran, which took its entry out), and an entry whose job is gone
//! or no longer scheduled is skipped when it comes due.

use std::cmp::Reverse;
use std::time::{Duration, Instant};

use crate::queue::local::{unix_ms_now, Live, LocalEngine, Phase};

/// The most due jobs handed to the loop in one turn; the rest follow in
/// the next turns, at once.
const DUE_PER_TURN: usize = 2048;

impl LocalEngine {
    /// Holds `live` until `at_ms` (Unix ms).
    pub(super) fn schedule(&mut self, id: u64, mut live: Live, at_ms: u64) {
        live.phase = Phase::Scheduled;
        self.put_live(id, live);
        self.due.push(Reverse((at_ms, id)));
    }

    /// Hands the jobs that are due to the loop, at most [`DUE_PER_TURN`].
    pub(super) fn release_due(&mut self) {
        let now = unix_ms_now();
        for _ in 0..DUE_PER_TURN {
            match self.due.peek() {
                Some(&Reverse((at, _))) if at <= now => {}
                _ => return,
            }
            let Some(Reverse((_, id))) = self.due.pop() else {
                return;
            };
            let current = self
                .live
                .get(&id)
                .is_some_and(|l| l.phase == Phase::Scheduled);
            if current {
                if let Some(live) = self.take_live(id) {
                    self.run(id, live);
                }
            }
        }
    }

    /// When the earliest held job is due, on this daemon's clock.
    pub(super) fn next_due(&self) -> Option<Instant> {
        let &Reverse((at, _)) = self.due.peek()?;
        let wait = at.saturating_sub(unix_ms_now());
        Some(Instant::now() + Duration::from_millis(wait))
    }

    /// `run_at: <Unix seconds>` of a held job, for `queue:info`: its entry
    /// in the heap, found by a walk (about 0.1 ms for 100,000 held jobs),
    /// since that is the one place it is kept.
    pub(super) fn run_at_line(&self, id: u64) -> Option<String> {
        if self.live.get(&id)?.phase != Phase::Scheduled {
            return None;
        }
        let entries = self.due.iter().filter(|Reverse((_, of))| *of == id);
        let at = entries.map(|&Reverse((at, _))| at).max()?;
        Some(format!("run_at: {:.3}\n", at as f64 / 1000.0))
    }

    /// After a load: the heap drops what it no longer needs.
    pub(super) fn shrink_schedule(&mut self) {
        let live = &self.live;
        (self.due)
            .retain(|&Reverse((_, id))| live.get(&id).is_some_and(|l| l.phase == Phase::Scheduled));
        self.due.shrink_to_fit();
        self.tally.shrink();
    }
}

#[cfg(test)]
#[path = "schedule_tests.rs"]
mod tests;
