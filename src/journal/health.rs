//! Whether the journal can be written, as the loop sees it. Records that
//! did not reach the disk make it failing: queue requests are refused
//! until a rewrite of the whole file (from the journal's live view, which
//! still holds every change) works. Rewrites are tried after 0.1 s, then
//! twice as rarely, up to every 5 s, each only once the folder has the room
//! for it; a failure soon after writes came back continues the backoff
//! rather than starting it again, so a flapping disk cannot make it spin.
//! The log says when it starts failing and when it works again (with the
//! number of tries), not every try. A dead writer thread is for good.

use std::time::{Duration, Instant};

/// The first retry, and the longest wait between two.
pub(super) const RETRY_FIRST: Duration = Duration::from_millis(100);
pub(super) const RETRY_MAX: Duration = Duration::from_secs(5);

#[derive(Debug)]
enum State {
    /// Every change handed over is written, or refused on its own.
    Healthy,
    /// Changes were lost; the file must be rewritten before new ones are
    /// taken.
    Failing {
        why: String,
        since: Instant,
        tries: u32,
        wait: Duration,
        next: Instant,
    },
    /// The writer thread is gone: nothing is written until a restart.
    Broken(String),
}

#[derive(Debug)]
pub(super) struct Health {
    state: State,
    /// The journal's path, for the log.
    path: String,
    /// When writes last came back, and the wait reached before: a failure
    /// soon after continues from there.
    recovered: Option<(Instant, Duration)>,
    /// A compaction that could not be done (no room): not before this,
    /// and the wait after that.
    postponed: Option<(Instant, Duration)>,
}

impl Health {
    pub(super) fn new(path: String) -> Self {
        Health {
            state: State::Healthy,
            path,
            recovered: None,
            postponed: None,
        }
    }

    /// Why queue requests are refused now, if they are.
    pub(super) fn failing(&self) -> Option<String> {
        match &self.state {
            State::Healthy => None,
            State::Failing { why, .. } | State::Broken(why) => Some(why.clone()),
        }
    }

    pub(super) fn is_broken(&self) -> bool {
        matches!(self.state, State::Broken(_))
    }

    /// Changes did not reach the disk.
    pub(super) fn fail(&mut self, why: &str, now: Instant) {
        match &mut self.state {
            State::Healthy => {
                let wait = match self.recovered {
                    Some((at, wait)) if now.duration_since(at) < RETRY_MAX => wait,
                    _ => RETRY_FIRST,
                };
                log::error!(
                    "journal {}: {why}: the changes not written are refused, and so are queue requests (503) until the journal can be rewritten (tried after {} ms, then twice as rarely, up to every {} s)",
                    self.path,
                    wait.as_millis(),
                    RETRY_MAX.as_secs()
                );
                self.state = State::Failing {
                    why: why.to_string(),
                    since: now,
                    tries: 0,
                    wait,
                    next: now + wait,
                };
            }
            State::Failing { why: was, .. } => *was = why.to_string(),
            State::Broken(_) => {}
        }
    }

    /// A rewrite was not done (or not started, for want of room).
    pub(super) fn rewrite_failed(&mut self, why: &str, now: Instant) {
        match &mut self.state {
            State::Failing {
                tries, wait, next, ..
            } => {
                *tries += 1;
                *wait = (*wait * 2).min(RETRY_MAX);
                *next = now + *wait;
                log::debug!(
                    "journal {}: rewrite try {tries} not done: {why}; next in {} ms",
                    self.path,
                    wait.as_millis()
                );
            }
            State::Healthy => {
                let wait = self
                    .postponed
                    .map_or(RETRY_FIRST, |(_, w)| (w * 2).min(RETRY_MAX));
                if self.postponed.is_none() {
                    log::warn!(
                        "journal {}: compaction postponed: {why}; the file keeps growing until it can be done",
                        self.path
                    );
                }
                self.postponed = Some((now + wait, wait));
            }
            State::Broken(_) => {}
        }
    }

    /// The file was rewritten: what was lost is on disk now.
    pub(super) fn rewritten(&mut self, bytes: u64, now: Instant) {
        match &self.state {
            State::Failing {
                since, tries, wait, ..
            } => {
                log::warn!(
                    "journal {}: writes succeed again after {tries} failed tries in {:.1} s: the journal was rewritten ({bytes} bytes)",
                    self.path,
                    now.duration_since(*since).as_secs_f64()
                );
                self.recovered = Some((now, *wait));
                self.state = State::Healthy;
            }
            State::Healthy => {
                if self.postponed.take().is_some() {
                    log::info!("journal {}: compaction done after all", self.path);
                }
                log::info!("journal compacted to {bytes} bytes");
            }
            State::Broken(_) => {}
        }
    }

    /// The writer thread is gone.
    pub(super) fn broken(&mut self, why: &str) {
        if !self.is_broken() {
            log::error!(
                "journal {}: {why}: nothing more is written; queue requests get 503 until bgjobd is restarted",
                self.path
            );
            self.state = State::Broken(why.to_string());
        }
    }

    /// True when a rewrite should be tried to end a failure.
    pub(super) fn repair_due(&self, now: Instant) -> bool {
        matches!(self.state, State::Failing { next, .. } if now >= next)
    }

    /// True when a compaction may start.
    pub(super) fn may_compact(&self, now: Instant) -> bool {
        matches!(self.state, State::Healthy) && self.postponed.is_none_or(|(at, _)| now >= at)
    }

    /// When the loop must look again, if it must.
    pub(super) fn deadline(&self) -> Option<Instant> {
        match self.state {
            State::Failing { next, .. } => Some(next),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_to_five_seconds_and_a_relapse_continues_the_backoff() {
        let t0 = Instant::now();
        let mut h = Health::new("j".into());
        h.fail("disk full", t0);
        assert_eq!(h.deadline(), Some(t0 + RETRY_FIRST));
        assert!(!h.repair_due(t0));
        let mut now = t0;
        let mut waits = Vec::new();
        for _ in 0..8 {
            now = h.deadline().unwrap();
            assert!(h.repair_due(now));
            h.rewrite_failed("no room", now);
            waits.push(h.deadline().unwrap() - now);
        }
        let ms: Vec<u128> = waits.iter().map(|w| w.as_millis()).collect();
        assert_eq!(ms, [200, 400, 800, 1600, 3200, 5000, 5000, 5000]);
        h.fail("still full", now);
        assert_eq!(h.failing().as_deref(), Some("still full"));
        h.rewritten(100, now);
        assert_eq!(h.failing(), None);
        // Failing again at once: the wait goes on from 5 s, not 0.1 s.
        h.fail("full again", now + Duration::from_millis(10));
        assert_eq!(
            h.deadline(),
            Some(now + Duration::from_millis(10) + RETRY_MAX)
        );
        h.broken("writer gone");
        assert!(h.is_broken());
        h.rewritten(1, now);
        assert!(h.failing().is_some(), "a dead writer is for good");
    }

    #[test]
    fn a_compaction_without_room_is_postponed_not_a_failure() {
        let t0 = Instant::now();
        let mut h = Health::new("j".into());
        assert!(h.may_compact(t0));
        h.rewrite_failed("no room", t0);
        assert_eq!(h.failing(), None);
        assert!(!h.may_compact(t0));
        assert!(h.may_compact(t0 + RETRY_FIRST));
        h.rewrite_failed("no room", t0 + RETRY_FIRST);
        assert!(!h.may_compact(t0 + RETRY_FIRST * 2));
        h.rewritten(10, t0 + RETRY_MAX);
        assert!(h.may_compact(t0 + RETRY_MAX));
    }
}
