//! The load generator's pure parts: latency summaries and answer checks,
//! unit-tested here; the sockets live in `src/bin/bgjob-bench.rs`.

use std::time::Duration;

/// What the answer must be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    Exactly(Vec<u8>),
    Prefix(Vec<u8>),
    /// Only the length is checked (large payloads).
    Length(usize),
    Anything,
}

impl Expect {
    pub fn accepts(&self, answer: &[u8]) -> bool {
        match self {
            Expect::Exactly(want) => answer == want.as_slice(),
            Expect::Prefix(want) => answer.starts_with(want),
            Expect::Length(n) => answer.len() == *n,
            Expect::Anything => true,
        }
    }
}

/// Latencies of one run, and what went wrong.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    pub latencies: Vec<Duration>,
    /// Connect, send or read failed, or a time limit passed.
    pub errors: u64,
    /// The answer was not the expected one.
    pub wrong: u64,
}

impl Tally {
    pub fn merge(&mut self, other: Tally) {
        self.latencies.extend(other.latencies);
        self.errors += other.errors;
        self.wrong += other.wrong;
    }

    /// Sorts the latencies and summarizes them over `elapsed`.
    pub fn summary(mut self, elapsed: Duration) -> Summary {
        self.latencies.sort_unstable();
        let done = self.latencies.len() as u64;
        Summary {
            requests: done + self.errors,
            ok: done - self.wrong.min(done),
            errors: self.errors,
            wrong: self.wrong,
            per_sec: done as f64 / elapsed.as_secs_f64().max(1e-9),
            p50: percentile(&self.latencies, 50.0),
            p90: percentile(&self.latencies, 90.0),
            p99: percentile(&self.latencies, 99.0),
            max: self.latencies.last().copied().unwrap_or_default(),
        }
    }
}

/// The nearest-rank percentile of sorted latencies.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub requests: u64,
    pub ok: u64,
    pub errors: u64,
    pub wrong: u64,
    pub per_sec: f64,
    pub p50: Duration,
    pub p90: Duration,
    pub p99: Duration,
    pub max: Duration,
}

impl Summary {
    /// One line for people and for scripts (`key=value` pairs).
    pub fn line(&self) -> String {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        format!(
            "requests={} ok={} errors={} wrong={} req_per_sec={:.0} p50_ms={:.2} p90_ms={:.2} p99_ms={:.2} max_ms={:.2}",
            self.requests,
            self.ok,
            self.errors,
            self.wrong,
            self.per_sec,
            ms(self.p50),
            ms(self.p90),
            ms(self.p99),
            ms(self.max)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let sorted: Vec<Duration> = (1..=100).map(ms).collect();
        assert_eq!(percentile(&sorted, 50.0), ms(50));
        assert_eq!(percentile(&sorted, 99.0), ms(99));
        assert_eq!(percentile(&sorted, 100.0), ms(100));
        assert_eq!(percentile(&[ms(7)], 50.0), ms(7));
        assert_eq!(percentile(&[], 50.0), Duration::ZERO);
    }

    #[test]
    fn summaries_count_errors_and_wrong_answers() {
        let mut a = Tally {
            latencies: vec![ms(3), ms(1)],
            errors: 1,
            wrong: 1,
        };
        a.merge(Tally {
            latencies: vec![ms(2)],
            ..Tally::default()
        });
        let s = a.summary(Duration::from_secs(1));
        assert_eq!((s.requests, s.ok, s.errors, s.wrong), (4, 2, 1, 1));
        assert_eq!((s.p50, s.max), (ms(2), ms(3)));
        assert!((s.per_sec - 3.0).abs() < 1e-9);
        assert!(s
            .line()
            .starts_with("requests=4 ok=2 errors=1 wrong=1 req_per_sec=3 p50_ms=2.00"));
    }

    #[test]
    fn answers_are_checked() {
        assert!(Expect::Exactly(b"Test".to_vec()).accepts(b"Test"));
        assert!(!Expect::Exactly(b"Test".to_vec()).accepts(b"Test\n"));
        assert!(Expect::Prefix(b"id:".to_vec()).accepts(b"id:42"));
        assert!(!Expect::Prefix(b"id:".to_vec()).accepts(b"503: Busy"));
        assert!(Expect::Anything.accepts(b""));
        assert!(Expect::Length(3).accepts(b"abc"));
        assert!(!Expect::Length(3).accepts(b"ab"));
    }
}
