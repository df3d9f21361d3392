//! At most one log line per kind per period, with a count of the lines held
//! back, so a flood of refusals or failing jobs cannot fill the disk. Plain
//! data: the caller passes the time and writes the lines.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// One line per kind per `period`; kinds are fixed texts such as a
/// refusal's answer.
#[derive(Debug)]
pub struct RateLimit {
    period: Duration,
    windows: HashMap<&'static str, Window>,
}

#[derive(Debug)]
struct Window {
    /// Lines of this kind before this instant are held back.
    until: Instant,
    /// Lines held back in the current window.
    suppressed: u64,
}

impl RateLimit {
    pub fn new(period: Duration) -> RateLimit {
        RateLimit {
            period,
            windows: HashMap::new(),
        }
    }

    /// Whether a line of `kind` may be written now: `Some(n)` with the
    /// number of lines of that kind held back since the last one written,
    /// or `None` (the line is counted and held back).
    pub fn admit(&mut self, kind: &'static str, now: Instant) -> Option<u64> {
        match self.windows.get_mut(kind) {
            Some(w) if now < w.until => {
                w.suppressed += 1;
                None
            }
            Some(w) => {
                w.until = now + self.period;
                Some(std::mem::take(&mut w.suppressed))
            }
            None => {
                self.windows.insert(
                    kind,
                    Window {
                        until: now + self.period,
                        suppressed: 0,
                    },
                );
                Some(0)
            }
        }
    }

    /// Kinds whose window has ended with lines held back, and how many: so
    /// the count is reported even when no further line of that kind comes.
    /// Quiet kinds are forgotten.
    pub fn ended(&mut self, now: Instant) -> Vec<(&'static str, u64)> {
        let mut out = Vec::new();
        self.windows.retain(|&kind, w| {
            if now < w.until {
                return true;
            }
            if w.suppressed > 0 {
                out.push((kind, w.suppressed));
            }
            false
        });
        out.sort();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_kind_per_period_with_a_count() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut limit = RateLimit::new(Duration::from_secs(1));
        assert_eq!(limit.admit("a", t0), Some(0));
        assert_eq!(limit.admit("a", t0 + ms(10)), None);
        assert_eq!(limit.admit("a", t0 + ms(20)), None);
        assert_eq!(limit.admit("b", t0 + ms(30)), Some(0), "kinds are apart");
        assert_eq!(limit.admit("a", t0 + ms(1000)), Some(2));
        assert_eq!(limit.admit("a", t0 + ms(1500)), None);
        assert!(limit.ended(t0 + ms(1900)).is_empty());
        assert_eq!(limit.ended(t0 + ms(2000)), vec![("a", 1)]);
        assert_eq!(limit.admit("a", t0 + ms(2001)), Some(0), "counted once");
        assert!(limit.ended(t0 + ms(9000)).is_empty());
    }
}
