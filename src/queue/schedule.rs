//! Jobs held for later (a `delay` or `at`, or the wait before a retry): a
//! heap by run time, so the jobs due are found in time proportional to
//! them, not to all the jobs held. Due jobs go to the daemon's waiting line
//! a bounded number per turn, so that a crowd due in the same second never
//! makes one long loop turn.

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
        live.set_run_at_ms(Some(at_ms));
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
            let Some(Reverse((at, id))) = self.due.pop() else {
                return;
            };
            let current = self
                .live
                .get(&id)
                .is_some_and(|l| l.phase == Phase::Scheduled && l.run_at_ms() == Some(at));
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

    /// `run_at: <Unix seconds>` of a held job, for `queue:info`.
    pub(super) fn run_at_line(&self, id: u64) -> Option<String> {
        let live = self.live.get(&id)?;
        let at = live
            .run_at_ms()
            .filter(|_| live.phase == Phase::Scheduled)?;
        Some(format!("run_at: {:.3}\n", at as f64 / 1000.0))
    }

    /// After a load: the heap drops what it no longer needs.
    pub(super) fn shrink_schedule(&mut self) {
        let live = &self.live;
        self.due.retain(|&Reverse((at, id))| {
            live.get(&id)
                .is_some_and(|l| l.phase == Phase::Scheduled && l.run_at_ms() == Some(at))
        });
        self.due.shrink_to_fit();
        self.tally.shrink();
    }
}

#[cfg(test)]
#[path = "schedule_tests.rs"]
mod tests;
