//! Durations counted in log-scaled buckets, four to an octave from 10 µs
//! to about 12 hours, so that a percentile is known within 9% at a fixed
//! size (512 bytes) whatever the number of jobs. A leaf: it imports
//! nothing from the crate.

use std::time::Duration;

/// Buckets per histogram.
const BUCKETS: usize = 128;
/// Buckets per doubling.
const PER_OCTAVE: f64 = 4.0;
/// The lower bound of the first bucket's top, in milliseconds.
const FLOOR_MS: f64 = 0.01;

/// A fixed-size histogram of durations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Durations {
    counts: [u32; BUCKETS],
    total: u32,
}

impl Default for Durations {
    fn default() -> Self {
        Durations {
            counts: [0; BUCKETS],
            total: 0,
        }
    }
}

fn bucket(ms: f64) -> usize {
    if ms.is_nan() || ms <= FLOOR_MS {
        return 0;
    }
    let i = ((ms / FLOOR_MS).log2() * PER_OCTAVE).floor();
    (i.max(0.0) as usize).min(BUCKETS - 1)
}

/// The middle (geometric) of bucket `i`, in milliseconds.
fn middle(i: usize) -> f64 {
    FLOOR_MS * ((i as f64 + 0.5) / PER_OCTAVE).exp2()
}

impl Durations {
    pub fn observe(&mut self, d: Duration) {
        let i = bucket(d.as_secs_f64() * 1e3);
        self.counts[i] = self.counts[i].saturating_add(1);
        self.total = self.total.saturating_add(1);
    }

    pub fn count(&self) -> u32 {
        self.total
    }

    /// Adds another histogram's counts.
    pub fn merge(&mut self, other: &Durations) {
        for (a, b) in self.counts.iter_mut().zip(other.counts.iter()) {
            *a = a.saturating_add(*b);
        }
        self.total = self.total.saturating_add(other.total);
    }

    /// The `q` quantile (0 to 1) in milliseconds, rounded to 3 significant
    /// digits; `None` when empty.
    pub fn quantile_ms(&self, q: f64) -> Option<f64> {
        if self.total == 0 {
            return None;
        }
        let rank = ((q * f64::from(self.total)).ceil() as u64).max(1);
        let mut seen = 0u64;
        for (i, &n) in self.counts.iter().enumerate() {
            seen += u64::from(n);
            if seen >= rank {
                return Some(round3(middle(i)));
            }
        }
        Some(round3(middle(BUCKETS - 1)))
    }
}

/// Three significant digits: the buckets know no more.
fn round3(ms: f64) -> f64 {
    if ms <= 0.0 {
        return 0.0;
    }
    let scale = 10f64.powi(2 - ms.log10().floor() as i32);
    (ms * scale).round() / scale
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: f64) -> Duration {
        Duration::from_secs_f64(n / 1e3)
    }

    #[test]
    fn quantiles_are_within_a_bucket() {
        let mut h = Durations::default();
        assert_eq!(h.quantile_ms(0.5), None);
        for i in 1..=100 {
            h.observe(ms(f64::from(i)));
        }
        assert_eq!(h.count(), 100);
        let p50 = h.quantile_ms(0.5).unwrap();
        let p95 = h.quantile_ms(0.95).unwrap();
        assert!((p50 - 50.0).abs() / 50.0 < 0.1, "{p50}");
        assert!((p95 - 95.0).abs() / 95.0 < 0.1, "{p95}");
        assert!(h.quantile_ms(1.0).unwrap() >= p95);
    }

    #[test]
    fn extremes_land_in_the_end_buckets_and_merge_adds() {
        let mut a = Durations::default();
        a.observe(Duration::ZERO);
        a.observe(Duration::from_secs(10 * 86_400));
        assert_eq!(bucket(0.0), 0);
        assert_eq!(bucket(f64::INFINITY), BUCKETS - 1);
        let mut b = Durations::default();
        b.observe(ms(5.0));
        b.merge(&a);
        assert_eq!(b.count(), 3);
        let mid = b.quantile_ms(0.5).unwrap();
        assert!((mid - 5.0).abs() < 0.5, "{mid}");
        assert_eq!(round3(12.3456), 12.3);
        assert_eq!(round3(0.012345), 0.0123);
    }
}
