//! Deadlines of connections and jobs, nearest first. The poll timeout is the
//! nearest one. Entries are never removed early: each owner keeps its own
//! current deadline, and an entry that no longer matches it is ignored when
//! it comes due (a stale entry costs one comparison).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use crate::keys::{ConnKey, JobKey};

/// How often housekeeping runs: expiring old queue results, stopping idle
/// workers, refreshing the module index.
pub const HOUSEKEEPING: Duration = Duration::from_secs(1);

/// Who a deadline belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Timer {
    /// A connection's idle, gap, write or linger deadline.
    Conn(ConnKey),
    /// A running job's time limit, kill grace or pipe drain.
    Job(JobKey),
    /// Once a second: expire old queue results, refresh the module index.
    Housekeeping,
    /// The end of the shutdown grace period.
    Stop,
}

#[derive(Debug, Default)]
pub struct Timers {
    heap: BinaryHeap<Reverse<(Instant, Timer)>>,
}

impl Timers {
    pub fn schedule(&mut self, at: Instant, timer: Timer) {
        self.heap.push(Reverse((at, timer)));
    }

    /// Deadlines held, stale ones included.
    pub fn count(&self) -> usize {
        self.heap.len()
    }

    /// Gives back the capacity a load left.
    pub fn shrink(&mut self) {
        self.heap.shrink_to_fit();
    }

    /// The nearest deadline, if any.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    /// Takes one timer that is due at `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<Timer> {
        match self.heap.peek() {
            Some(Reverse((at, _))) if *at <= now => self.heap.pop().map(|Reverse((_, t))| t),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::Key;

    #[test]
    fn timers_come_due_in_order() {
        let now = Instant::now();
        let mut timers = Timers::default();
        timers.schedule(now + Duration::from_secs(2), Timer::Conn(ConnKey::new(1)));
        timers.schedule(now, Timer::Job(JobKey::new(7)));
        timers.schedule(now + Duration::from_secs(1), Timer::Housekeeping);
        assert_eq!(timers.next_deadline(), Some(now));
        assert_eq!(timers.pop_due(now), Some(Timer::Job(JobKey::new(7))));
        assert_eq!(timers.pop_due(now), None);
        let later = now + Duration::from_secs(5);
        assert_eq!(timers.pop_due(later), Some(Timer::Housekeeping));
        assert_eq!(timers.pop_due(later), Some(Timer::Conn(ConnKey::new(1))));
        assert_eq!(timers.next_deadline(), None);
    }
}
