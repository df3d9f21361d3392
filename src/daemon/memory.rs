//! Memory at rest and after load. glibc keeps what a load freed (the heap
//! is only given back from its top, and every thread that allocates gets an
//! arena of its own), and tables keep the capacity of their peak. So the
//! helper threads share one arena, and once a load has subsided the tables
//! drop their slack, what outlives the load is copied apart from it, and
//! the heap's free pages go back to the kernel (`malloc_trim`; when, in
//! `heap.rs`), and so do the code pages the load ran (`resident.rs`).
//! Measured with `bench/memory.sh`.

use std::time::Instant;

use crate::daemon::heap::trim_heap;
use crate::daemon::timers::Timer;
use crate::daemon::Daemon;

/// Stale deadlines are swept out once they are this many times the owners
/// (and at least [`SWEEP_FLOOR`]): a sweep walks the whole heap.
const SWEEP_RATIO: usize = 4;
const SWEEP_FLOOR: usize = 4096;

impl Daemon {
    /// From housekeeping: drops the deadlines that are no longer anyone's,
    /// those of connections closed or moved on to another deadline (their
    /// key may serve another connection by now), and of jobs gone.
    pub(super) fn sweep_timers(&mut self) {
        let owners = self.conns.len() + self.jobs.held();
        if self.timers.count() < SWEEP_FLOOR.max(SWEEP_RATIO * owners) {
            return;
        }
        let (conns, jobs) = (&self.conns, &self.jobs);
        self.timers.retain(|at, timer| match timer {
            Timer::Conn(key) => conns.get(key).is_some_and(|c| c.deadline() == Some(at)),
            Timer::Job(key) => jobs.get(key).is_some(),
            Timer::Housekeeping | Timer::Stop => true,
        });
    }

    /// From housekeeping: once a load has subsided, drops the tables'
    /// slack and trims the heap.
    pub(super) fn release_memory(&mut self, now: Instant) {
        let live = self.conns.len() + self.jobs.held() + self.timers.count();
        if !self.release.due(live, now) {
            return;
        }
        self.timers.shrink();
        self.conns.shrink();
        self.jobs.shrink();
        self.queue.shrink();
        self.per_client.shrink_to_fit();
        self.closed.shrink_to_fit();
        // The first trim merges the free chunks, so the copies of what
        // outlives the load are made side by side, and the second gives
        // back the pages the originals held.
        trim_heap();
        self.queue.compact();
        trim_heap();
        crate::daemon::resident::shed_code();
        log::debug!("load subsided ({live} live entries): memory given back");
    }
}
