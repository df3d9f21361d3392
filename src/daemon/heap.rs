//! The allocator's side of memory after load: when a load has subsided,
//! when the daemon is at rest, one arena for every thread, and the heap's
//! free pages given back (`malloc_trim`). Pure but for the two libc
//! calls; `memory.rs` uses it.

use std::time::{Duration, Instant};

/// At most one release per this long: `malloc_trim` walks the heap (about
/// a millisecond per 10 MiB here), and a load that comes and goes should
/// not pay it at every dip.
const MIN_INTERVAL: Duration = Duration::from_secs(10);

/// Below this many live entries at the peak, there is nothing worth giving
/// back (a few KiB).
const WORTH_IT: usize = 256;

/// When to give memory back: the peak of live entries (connections, jobs,
/// deadlines) since the last release, and when that was.
#[derive(Debug)]
pub struct Release {
    peak: usize,
    last: Instant,
}

impl Release {
    pub fn new(now: Instant) -> Release {
        Release { peak: 0, last: now }
    }

    /// True if, with `live` entries now, the load has subsided: at most a
    /// quarter of its peak, a peak worth releasing, and not too soon.
    pub fn due(&mut self, live: usize, now: Instant) -> bool {
        self.peak = self.peak.max(live);
        if self.peak < WORTH_IT
            || live > self.peak / 4
            || now.saturating_duration_since(self.last) < MIN_INTERVAL
        {
            return false;
        }
        self.peak = live;
        self.last = now;
        true
    }
}

/// Quiet for this long, with no connection and no job, the daemon is at
/// rest: what the last activity mapped and allocated is given back once.
/// Long enough that a client's next request a moment later finds its
/// pages still there; a shed takes about a millisecond (`memory.rs`).
pub const QUIET: Duration = Duration::from_secs(5);

/// When the daemon is at rest: whether a turn had events since the last
/// look, since when nothing has happened, and whether that quiet spell
/// has been used already.
#[derive(Debug)]
pub struct Rest {
    stirred: bool,
    since: Instant,
    rested: bool,
}

impl Rest {
    pub fn new(now: Instant) -> Rest {
        Rest {
            stirred: false,
            since: now,
            rested: false,
        }
    }

    /// Each turn of the loop: whether it had events (a timer alone does
    /// not stir it).
    pub fn turn(&mut self, events: bool) {
        self.stirred |= events;
    }

    /// True once per quiet spell: nothing stirred for `QUIET`, and
    /// `idle` (no connection, no job) all along.
    pub fn due(&mut self, idle: bool, now: Instant) -> bool {
        if self.stirred || !idle {
            self.stirred = false;
            self.since = now;
            self.rested = false;
            return false;
        }
        if self.rested || now.saturating_duration_since(self.since) < QUIET {
            return false;
        }
        self.rested = true;
        true
    }
}

/// One malloc arena for every thread: the helper threads (spawning,
/// hashing, the journal writer) allocate little, and each arena of their
/// own costs about 70 KiB at rest.
pub fn bound_arenas() {
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only sets an allocator parameter; called before
    // the helper threads start.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

/// Gives the heap's free pages back to the kernel.
pub fn trim_heap() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only releases free memory of the allocator.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_goes_back_once_a_load_has_subsided() {
        let t0 = Instant::now();
        let mut r = Release::new(t0);
        let later = t0 + MIN_INTERVAL;
        // A small daemon never bothers.
        assert!(!r.due(100, later));
        assert!(!r.due(0, later));
        // A load: nothing while it lasts, once when it has subsided.
        assert!(!r.due(4000, later));
        assert!(!r.due(2000, later));
        assert!(r.due(900, later));
        assert!(!r.due(10, later), "not twice in a row");
        // The next load, once the interval has passed.
        let next = later + MIN_INTERVAL;
        assert!(!r.due(5000, next));
        assert!(r.due(0, next));
    }

    #[test]
    fn a_dip_soon_after_a_release_waits_for_the_interval() {
        let t0 = Instant::now();
        let mut r = Release::new(t0);
        assert!(!r.due(4000, t0 + Duration::from_secs(1)));
        assert!(!r.due(0, t0 + Duration::from_secs(2)), "too soon");
        assert!(r.due(0, t0 + MIN_INTERVAL));
    }

    #[test]
    fn at_rest_once_per_quiet_spell() {
        let t0 = Instant::now();
        let mut r = Rest::new(t0);
        let s = Duration::from_secs(1);
        assert!(!r.due(true, t0 + s), "not quiet for long enough yet");
        assert!(r.due(true, t0 + QUIET));
        assert!(!r.due(true, t0 + QUIET + s), "once per spell");
        // A turn with events starts a new spell, from when it is seen.
        r.turn(true);
        r.turn(false);
        let t1 = t0 + QUIET * 3;
        assert!(!r.due(true, t1));
        assert!(!r.due(true, t1 + QUIET - s));
        assert!(r.due(true, t1 + QUIET));
    }

    #[test]
    fn a_connection_or_a_job_keeps_the_daemon_from_rest() {
        let t0 = Instant::now();
        let mut r = Rest::new(t0);
        // A client holding a connection open without a word: no events,
        // and still not at rest.
        assert!(!r.due(false, t0 + QUIET * 2));
        assert!(!r.due(true, t0 + QUIET * 2 + QUIET / 2));
        assert!(r.due(true, t0 + QUIET * 3));
    }
}
