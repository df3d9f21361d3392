//! The clock of one request while it arrives: when its quiet gap ends it,
//! and when it has taken too long (an absolute deadline from accept, and a
//! minimum average rate after its first seconds, like Apache's
//! `mod_reqtimeout`), so a dripping client cannot hold its slot.

use std::time::{Duration, Instant};

use crate::net::quiet::{quiet_gap, Arrival, Link, LOSS};

/// How a request must arrive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pacing {
    /// Fixed quiet that ends a request; `None`: derived from the connection
    /// (see `net/quiet.rs`); zero: only a half-close ends it.
    pub request_gap: Option<Duration>,
    /// Time a client may stay silent before its first byte.
    pub idle_timeout: Duration,
    /// The whole request must arrive within this, from accept.
    pub request_timeout: Duration,
    /// Least average rate (bytes/s since accept) once `min_rate_after`
    /// has passed; 0: no minimum.
    pub min_rate: u64,
    pub min_rate_after: Duration,
}

/// What the clock says when a deadline comes.
#[derive(Debug, PartialEq, Eq)]
pub enum Due {
    /// Nothing arrived since accept, for the idle timeout.
    Idle,
    /// Past the absolute deadline, or below the minimum rate.
    TooSlow,
    /// The quiet gap has passed: the request has ended.
    Ended,
    /// Not yet: the next deadline.
    Later(Instant),
}

#[derive(Debug)]
pub struct Pace {
    accepted: Instant,
    arrival: Arrival,
    /// When the last read that found bytes happened.
    last_read: Option<Instant>,
    /// Bytes read since the socket was last found empty.
    unread_batch: bool,
    /// When the quiet gap ends the request.
    quiet_until: Option<Instant>,
    /// Out-of-order segments the kernel had counted at the last read.
    ooo_at_read: u32,
}

impl Pace {
    pub fn new(now: Instant) -> Pace {
        Pace {
            accepted: now,
            arrival: Arrival::default(),
            last_read: None,
            unread_batch: false,
            quiet_until: None,
            ooo_at_read: 0,
        }
    }

    /// Bytes of the request so far.
    pub fn bytes(&self) -> usize {
        self.arrival.bytes
    }

    /// `bytes` were read; `first`: the request's first bytes.
    pub fn took(&mut self, bytes: &[u8], first: bool) {
        self.arrived(bytes.len());
        // Only `module:` so far: the data is to follow in another write.
        self.arrival.prefix_only =
            first && bytes.iter().position(|&b| b == b':') == Some(bytes.len() - 1);
    }

    /// `n` bytes of the request arrived without being read by the daemon
    /// (spliced into a module's stdin), past its first read.
    pub fn arrived(&mut self, n: usize) {
        self.arrival.bytes += n;
        self.arrival.prefix_only = false;
        self.unread_batch = true;
    }

    /// The socket was found empty at `now`: the quiet gap starts. Returns
    /// the next deadline.
    pub fn drained(&mut self, now: Instant, link: Option<&Link>, p: &Pacing) -> Instant {
        if std::mem::take(&mut self.unread_batch) {
            if let Some(last) = self.last_read {
                let spacing = now.saturating_duration_since(last);
                self.arrival.widest_spacing = self.arrival.widest_spacing.max(spacing);
            }
            self.arrival.reads += 1;
            self.last_read = Some(now);
            self.ooo_at_read = link.map_or(0, |l| l.ooo_packets);
            let gap = match p.request_gap {
                Some(gap) if gap.is_zero() => p.idle_timeout,
                Some(gap) => gap,
                None => quiet_gap(&self.arrival, link),
            };
            log::trace!(
                "request of {} bytes in {} reads (widest spacing {:?}, rtt {:?}): quiet for {gap:?}",
                self.arrival.bytes,
                self.arrival.reads,
                self.arrival.widest_spacing,
                link.map(|l| l.rtt)
            );
            self.quiet_until = Some(now + gap);
        }
        self.next(p)
    }

    /// The nearest of the quiet gap's end and the absolute deadline; now,
    /// if the request is already too slow.
    fn next(&self, p: &Pacing) -> Instant {
        if let Some(last) = self.last_read.filter(|&at| self.too_slow_at(at, p)) {
            return last;
        }
        let quiet = self.quiet_until.unwrap_or(self.accepted + p.idle_timeout);
        quiet.min(self.accepted + p.request_timeout)
    }

    /// True if, by a read at `at`, the request has averaged less than the
    /// minimum rate since accept, past the first seconds. Measured at reads
    /// only: a client that went quiet is ended by its gap, not refused.
    fn too_slow_at(&self, at: Instant, p: &Pacing) -> bool {
        let age = at.saturating_duration_since(self.accepted);
        p.min_rate > 0
            && age >= p.min_rate_after
            && (self.arrival.bytes as f64) < p.min_rate as f64 * age.as_secs_f64()
    }

    /// A deadline came at `now`; `link` is read then, to see whether the
    /// kernel holds segments out of order (a hole a retransmission will fill).
    pub fn due(&mut self, now: Instant, link: Option<&Link>, p: &Pacing) -> Due {
        if self.arrival.bytes == 0 && now >= self.accepted + p.idle_timeout {
            return Due::Idle;
        }
        if now >= self.accepted + p.request_timeout {
            return Due::TooSlow;
        }
        if self.last_read.is_some_and(|at| self.too_slow_at(at, p)) {
            return Due::TooSlow;
        }
        match self.quiet_until {
            Some(at) if now >= at => {
                let hole = link.is_some_and(|l| l.ooo_packets > self.ooo_at_read);
                if hole && p.request_gap.is_none() {
                    log::debug!("a segment is missing, later ones are held: waiting {LOSS:?} more");
                    self.ooo_at_read = link.map_or(0, |l| l.ooo_packets);
                    self.quiet_until = Some(now + LOSS);
                    return Due::Later(self.next(p));
                }
                Due::Ended
            }
            _ => Due::Later(self.next(p)),
        }
    }

    /// How long the request has been arriving, for the log.
    pub fn age(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.accepted)
    }

    /// Average bytes per second since accept, for choosing whom to close
    /// when the connection table is nearly full.
    pub fn rate(&self, now: Instant) -> f64 {
        self.arrival.bytes as f64 / self.age(now).as_secs_f64().max(0.001)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pacing() -> Pacing {
        Pacing {
            request_gap: None,
            idle_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            min_rate: 500,
            min_rate_after: Duration::from_secs(5),
        }
    }

    #[test]
    fn a_dripping_request_is_too_slow_after_the_first_seconds() {
        let t0 = Instant::now();
        // A gap long enough that only the rate can end it.
        let p = Pacing {
            request_gap: Some(Duration::from_secs(60)),
            ..pacing()
        };
        let mut pace = Pace::new(t0);
        let mut t = t0;
        for _ in 0..1000 {
            t += Duration::from_millis(5);
            pace.took(b"x", false);
            let next = pace.drained(t, None, &p);
            if next <= t {
                assert_eq!(pace.due(next, None, &p), Due::TooSlow);
                assert!(next - t0 >= Duration::from_secs(5), "{:?}", next - t0);
                assert!(next - t0 < Duration::from_secs(6), "{:?}", next - t0);
                return;
            }
        }
        panic!("never too slow");
    }

    #[test]
    fn quiet_ends_the_request_and_a_hole_extends_it() {
        let t0 = Instant::now();
        let p = pacing();
        let mut pace = Pace::new(t0);
        pace.took(b"upper:abc", true);
        let next = pace.drained(t0, None, &p);
        assert_eq!(next, t0 + Duration::from_millis(1));
        assert_eq!(pace.due(next, None, &p), Due::Ended);

        let mut pace = Pace::new(t0);
        pace.took(b"upper:abc", true);
        let link = Link::default();
        let next = pace.drained(t0, Some(&link), &p);
        let holed = Link {
            ooo_packets: 3,
            ..link
        };
        assert_eq!(pace.due(next, Some(&holed), &p), Due::Later(next + LOSS));
        assert_eq!(pace.due(next + LOSS, Some(&holed), &p), Due::Ended);
    }

    #[test]
    fn the_absolute_deadline_holds_whatever_the_rate() {
        let t0 = Instant::now();
        let p = Pacing {
            min_rate: 0,
            request_gap: Some(Duration::from_secs(60)),
            ..pacing()
        };
        let mut pace = Pace::new(t0);
        pace.took(b"x", false);
        let next = pace.drained(t0, None, &p);
        assert_eq!(next, t0 + Duration::from_secs(30));
        assert_eq!(pace.due(next, None, &p), Due::TooSlow);
    }
}
