//! A connection's deadlines: what it means when one comes, by phase (idle,
//! too slow, the end of a quiet gap, an answer not read, the linger).

use std::time::{Duration, Instant};

use super::Conn;
use crate::net::pace::Due;
use crate::net::phase::{Limits, Phase, Verdict};
use crate::net::protocol::Refusal;

impl Conn {
    /// Its deadline came (`now`); what that means depends on the phase.
    pub fn expire(&mut self, now: Instant, limits: &Limits) -> Verdict {
        if self.deadline.is_none_or(|at| at > now) {
            return Verdict::Wait; // a stale timer
        }
        match &self.phase {
            Phase::Head(_) | Phase::Job(_) if self.reading_request() => {
                self.request_due(now, limits)
            }
            Phase::Answer(_) => {
                log::info!("tcp {}: not reading its answer, closed", self.peer);
                Verdict::Close
            }
            Phase::Linger => Verdict::Close,
            Phase::Head(_) | Phase::Job(_) | Phase::QueueWait(_) => Verdict::Wait,
            Phase::Durable | Phase::Closed => Verdict::Wait,
        }
    }

    /// A deadline of a request still arriving came.
    fn request_due(&mut self, now: Instant, limits: &Limits) -> Verdict {
        let link = self.link(&limits.pacing);
        match self.pace.due(now, link.as_ref(), &limits.pacing) {
            Due::Idle => {
                log::info!("tcp {}: idle, closed", self.peer);
                Verdict::Refuse(Refusal::Idle)
            }
            Due::TooSlow => {
                log::warn!(
                    "tcp {}: request too slow ({} bytes in {:?}), closed",
                    self.peer,
                    self.pace.bytes(),
                    self.pace.age(now)
                );
                Verdict::Refuse(Refusal::TooSlow)
            }
            Due::Ended if limits.pacing.request_gap == Some(Duration::ZERO) => {
                if matches!(self.phase, Phase::Head(_)) {
                    log::info!("tcp {}: idle, closed", self.peer);
                    return Verdict::Refuse(Refusal::Idle);
                }
                self.request_ended()
            }
            Due::Ended => self.request_ended(),
            Due::Later(at) => {
                self.set_deadline(Some(at));
                Verdict::Wait
            }
        }
    }
}
