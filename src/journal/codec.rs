//! The journal's field encoding: little-endian integers, byte strings and
//! text as a u32 length and the bytes, receipts field by field.

use std::time::Duration;

use crate::queue::attempts::Attempt;
use crate::queue::options::{JobOptions, Priority};
use crate::run::outcome::{Outcome, Usage};
use crate::run::receipt::Receipt;

/// Appends little-endian integers and length-prefixed bytes.
pub(super) struct Writer<'a>(pub(super) &'a mut Vec<u8>);

impl Writer<'_> {
    pub(super) fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    pub(super) fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub(super) fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub(super) fn bytes(&mut self, v: &[u8]) {
        self.u32(v.len() as u32);
        self.0.extend_from_slice(v);
    }
    pub(super) fn outcome(&mut self, outcome: &Option<Outcome>) {
        let (kind, value, text): (u8, i64, &str) = match outcome {
            None => (0, 0, ""),
            Some(Outcome::Exited(c)) => (1, *c as i64, ""),
            Some(Outcome::Signaled(s)) => (2, *s as i64, ""),
            Some(Outcome::TimedOut) => (3, 0, ""),
            Some(Outcome::OutputTooLarge(cap)) => (4, *cap as i64, ""),
            Some(Outcome::SpawnFailed(why)) => (5, 0, why),
            Some(Outcome::Cancelled) => (6, 0, ""),
        };
        self.u8(kind);
        self.u64(value as u64);
        self.bytes(text.as_bytes());
    }
    /// A job's options: absent ones as 0 (no time, no limit), 255 or
    /// `u32::MAX`, and a key behind a presence byte.
    pub(super) fn options(&mut self, o: &JobOptions) {
        self.u64(o.run_at_ms.unwrap_or(0));
        self.u8(o.priority.map_or(255, |p| p as u8));
        self.u32(o.retries.unwrap_or(u32::MAX));
        self.u8(o.key.is_some() as u8);
        self.bytes(o.key.as_deref().unwrap_or_default());
        self.u64(o.timeout_ms.unwrap_or(0));
    }
    pub(super) fn attempt(&mut self, a: &Attempt) {
        self.u32(a.number);
        self.outcome(&Some(a.outcome.clone()));
        self.u64(a.wall.as_micros() as u64);
        self.bytes(a.stderr.as_bytes());
        self.u64(a.retry_at_ms.unwrap_or(0));
    }
    pub(super) fn receipt(&mut self, r: &Receipt) {
        self.u32(r.attempts);
        self.outcome(&r.outcome);
        self.u64(r.wall.as_micros() as u64);
        self.u64(r.usage.user.as_micros() as u64);
        self.u64(r.usage.system.as_micros() as u64);
        self.u64(r.usage.max_rss_kib);
        self.u64(r.bytes_in);
        self.u64(r.bytes_out);
        self.u8(r.output_cut as u8);
        self.bytes(r.module_sha256.as_bytes());
    }
}

/// Takes what [`Writer`] wrote off the front of a body.
pub(super) struct Reader<'a>(pub(super) &'a [u8]);

impl Reader<'_> {
    pub(super) fn take(&mut self, n: usize) -> Option<&[u8]> {
        let (head, rest) = (self.0.get(..n)?, self.0.get(n..)?);
        self.0 = rest;
        Some(head)
    }
    pub(super) fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }
    pub(super) fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    pub(super) fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    pub(super) fn bytes(&mut self) -> Option<&[u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    pub(super) fn text(&mut self) -> Option<String> {
        String::from_utf8(self.bytes()?.to_vec()).ok()
    }
    pub(super) fn micros(&mut self) -> Option<Duration> {
        Some(Duration::from_micros(self.u64()?))
    }
    pub(super) fn outcome(&mut self) -> Option<Option<Outcome>> {
        let (kind, value, text) = (self.u8()?, self.u64()? as i64, self.text()?);
        Some(match kind {
            0 => None,
            1 => Some(Outcome::Exited(value as i32)),
            2 => Some(Outcome::Signaled(value as i32)),
            3 => Some(Outcome::TimedOut),
            4 => Some(Outcome::OutputTooLarge(value as usize)),
            5 => Some(Outcome::SpawnFailed(text)),
            6 => Some(Outcome::Cancelled),
            _ => return None,
        })
    }
    pub(super) fn options(&mut self) -> Option<JobOptions> {
        let run_at_ms = Some(self.u64()?).filter(|&t| t != 0);
        let priority = Some(self.u8()?)
            .filter(|&p| p != 255)
            .map(Priority::from_byte);
        let retries = Some(self.u32()?).filter(|&n| n != u32::MAX);
        let has_key = self.u8()? != 0;
        let key = self.bytes()?.to_vec();
        Some(JobOptions {
            run_at_ms,
            priority,
            retries,
            key: has_key.then_some(key),
            timeout_ms: Some(self.u64()?).filter(|&t| t != 0),
        })
    }
    pub(super) fn attempt(&mut self) -> Option<Attempt> {
        Some(Attempt {
            number: self.u32()?,
            outcome: self.outcome()??,
            wall: self.micros()?,
            stderr: self.text()?,
            retry_at_ms: Some(self.u64()?).filter(|&t| t != 0),
        })
    }
    pub(super) fn receipt(&mut self) -> Option<Receipt> {
        Some(Receipt {
            attempts: self.u32()?,
            outcome: self.outcome()?,
            wall: self.micros()?,
            usage: Usage {
                user: self.micros()?,
                system: self.micros()?,
                max_rss_kib: self.u64()?,
            },
            bytes_in: self.u64()?,
            bytes_out: self.u64()?,
            output_cut: self.u8()? != 0,
            module_sha256: self.text()?,
        })
    }
}
