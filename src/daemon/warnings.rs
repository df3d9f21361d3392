//! Warn lines a flood could repeat (refusals, failed jobs), through the
//! rate limiter: one per kind per second, the rest counted.

use crate::daemon::Daemon;
use crate::ratelimit::RateLimit;

impl Daemon {
    /// A warn line that a flood could repeat (refusals, failed jobs): at
    /// most one per kind per second, the rest counted and reported with the
    /// next one written. Held-back lines still show at debug level.
    pub(super) fn warn_limited(&mut self, kind: &'static str, line: std::fmt::Arguments) {
        warn_limited(&mut self.warnings, kind, line);
    }

    /// Reports the lines held back of kinds that have gone quiet.
    pub(super) fn report_held_warnings(&mut self, now: std::time::Instant) {
        for (kind, held) in self.warnings.ended(now) {
            log::warn!("{held} more lines like the last \"{kind}\" not logged");
        }
    }
}

/// [`Daemon::warn_limited`] for callers that hold
/// another part of the daemon borrowed.
pub(super) fn warn_limited(
    warnings: &mut RateLimit,
    kind: &'static str,
    line: std::fmt::Arguments,
) {
    match warnings.admit(kind, std::time::Instant::now()) {
        Some(0) => log::warn!("{line}"),
        Some(held) => log::warn!("{line} (and {held} more like it not logged)"),
        None => log::debug!("{line}"),
    }
}
