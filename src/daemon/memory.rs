//! Memory at rest and after load. glibc keeps what a load freed (the heap
//! is only given back from its top, and every thread that allocates gets an
//! arena of its own), and tables keep the capacity of their peak. So the
//! helper threads share one arena, and once a load has subsided the tables
//! drop their slack, what outlives the load is copied apart from it, and
//! the heap's free pages go back to the kernel (`malloc_trim`; when, in
//! `heap.rs`), and so do the code pages the load ran (`resident.rs`).
//! At rest (quiet for a few seconds, with no connection and no job) the
//! read buffer is freed, the heap trimmed and the code pages dropped
//! again, so the idle daemon holds what the idle loop runs and no more.
//! Measured with `bench/memory.sh`.

use std::time::Instant;

use crate::daemon::heap::trim_heap;
use crate::daemon::Daemon;

impl Daemon {
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
        self.resident.shed();
        log::debug!("load subsided ({live} live entries): memory given back");
    }

    /// From housekeeping: once per quiet spell, frees the read buffer,
    /// trims the heap and drops the code pages the last activity ran.
    pub(super) fn rest(&mut self, now: Instant) {
        let idle = self.conns.is_empty() && self.jobs.held() == 0 && self.spawns.is_empty();
        if !self.rest.due(idle, now) {
            return;
        }
        let started = Instant::now();
        self.scratch.release();
        trim_heap();
        let kib = self.resident.shed();
        log::debug!(
            "at rest: read buffer freed, heap trimmed, {kib} KiB of code dropped in {} us",
            started.elapsed().as_micros()
        );
    }

    /// Once ready: drops the code pages start-up ran.
    pub(super) fn shed_at_ready(&mut self) {
        let kib = self.resident.shed();
        let how = match self.resident.page_by_page() {
            true => "page by page",
            false => "with fault around",
        };
        log::debug!("ready: {kib} KiB of code dropped, mapped again {how}");
    }
}
