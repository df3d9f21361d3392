//! What jobs did lately, for the dashboard: a fixed ring of 10-second
//! points over the last hour (jobs started, succeeded and failed per
//! second; wait and run time percentiles), and per module the jobs done
//! and failed in the last hour with their run times, in twelve 5-minute
//! slots. Fed where jobs start and end; times are Unix seconds, given by
//! the caller, so tests need no clock.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use crate::web::percentile::Durations;

/// Seconds per history point.
pub const INTERVAL_SECS: u64 = 10;
/// Points kept: 60 minutes.
pub const POINTS: usize = 360;
/// Seconds per slot of a module's hour.
const SLOT_SECS: u64 = 300;
/// Slots of a module's hour.
const SLOTS: usize = 12;

/// One closed interval of the history (as `/api/state` shows it).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Point {
    /// Its start, Unix seconds.
    pub t: u64,
    /// Per second over the interval.
    pub started: f64,
    pub succeeded: f64,
    pub failed: f64,
    /// Milliseconds; `None` when no job started (wait) or ended (run).
    pub wait_p50_ms: Option<f64>,
    pub wait_p95_ms: Option<f64>,
    pub run_p50_ms: Option<f64>,
    pub run_p95_ms: Option<f64>,
}

/// The interval being counted.
#[derive(Debug, Default)]
struct Open {
    t: u64,
    started: u32,
    succeeded: u32,
    failed: u32,
    wait: Durations,
    run: Durations,
}

impl Open {
    fn close(&self) -> Point {
        let per_sec = |n: u32| f64::from(n) / INTERVAL_SECS as f64;
        Point {
            t: self.t,
            started: per_sec(self.started),
            succeeded: per_sec(self.succeeded),
            failed: per_sec(self.failed),
            wait_p50_ms: self.wait.quantile_ms(0.5),
            wait_p95_ms: self.wait.quantile_ms(0.95),
            run_p50_ms: self.run.quantile_ms(0.5),
            run_p95_ms: self.run.quantile_ms(0.95),
        }
    }
}

/// One module's slot of five minutes.
#[derive(Debug, Default, Clone)]
struct Slot {
    /// Which five minutes (Unix seconds / 300).
    index: u64,
    done: u32,
    failed: u32,
    run: Durations,
}

/// A module's last hour.
#[derive(Debug, Default)]
struct Hour {
    slots: Vec<Slot>,
}

/// A module's last hour, summed.
#[derive(Debug, Clone, PartialEq)]
pub struct HourSummary {
    pub done: u32,
    pub failed: u32,
    pub run_p50_ms: Option<f64>,
    pub run_p95_ms: Option<f64>,
}

impl Hour {
    fn slot(&mut self, now: u64) -> &mut Slot {
        let index = now / SLOT_SECS;
        if self.slots.is_empty() {
            self.slots = vec![Slot::default(); SLOTS];
        }
        let slot = &mut self.slots[(index % SLOTS as u64) as usize];
        if slot.index != index {
            *slot = Slot {
                index,
                ..Slot::default()
            };
        }
        slot
    }

    /// The slots within the hour before `now`.
    fn within(&self, now: u64) -> impl Iterator<Item = &Slot> {
        let current = now / SLOT_SECS;
        (self.slots.iter())
            .filter(move |slot| slot.index + (SLOTS as u64) > current && slot.index <= current)
    }

    /// True if a job of the module ended within the hour.
    fn active(&self, now: u64) -> bool {
        self.within(now).any(|slot| slot.done + slot.failed > 0)
    }

    fn summary(&self, now: u64) -> HourSummary {
        let mut run = Durations::default();
        let (mut done, mut failed) = (0, 0);
        for slot in self.within(now) {
            done += slot.done;
            failed += slot.failed;
            run.merge(&slot.run);
        }
        HourSummary {
            done,
            failed,
            run_p50_ms: run.quantile_ms(0.5),
            run_p95_ms: run.quantile_ms(0.95),
        }
    }
}

/// The history ring and every module's hour.
#[derive(Debug, Default)]
pub struct Activity {
    points: VecDeque<Point>,
    open: Open,
    modules: HashMap<String, Hour>,
}

impl Activity {
    /// Closes the intervals that ended before `now`; an idle stretch
    /// leaves points of zero, so the ring always spans the last hour.
    pub fn roll(&mut self, now: u64) {
        let start = now - now % INTERVAL_SECS;
        if self.open.t == 0 {
            self.open.t = start;
            return;
        }
        if start <= self.open.t {
            return;
        }
        // Beyond an hour of silence only the last hour's zeros matter.
        let gap = (start - self.open.t) / INTERVAL_SECS;
        let first_empty = if gap > POINTS as u64 {
            start - POINTS as u64 * INTERVAL_SECS
        } else {
            self.open.t + INTERVAL_SECS
        };
        let closed = std::mem::take(&mut self.open).close();
        self.push(closed);
        let mut t = first_empty;
        while t < start {
            self.push(
                Open {
                    t,
                    ..Open::default()
                }
                .close(),
            );
            t += INTERVAL_SECS;
        }
        self.open.t = start;
    }

    fn push(&mut self, point: Point) {
        if self.points.len() == POINTS {
            self.points.pop_front();
        }
        self.points.push_back(point);
    }

    /// A job started after waiting `wait`.
    pub fn started(&mut self, now: u64, wait: Duration) {
        self.roll(now);
        self.open.started += 1;
        self.open.wait.observe(wait);
    }

    /// A job of `module` ended after running `run`: well, or not.
    pub fn finished(&mut self, now: u64, module: &str, run: Duration, ok: bool) {
        self.roll(now);
        if ok {
            self.open.succeeded += 1;
        } else {
            self.open.failed += 1;
        }
        self.open.run.observe(run);
        let hour = match self.modules.get_mut(module) {
            Some(hour) => hour,
            None => self.modules.entry(module.to_string()).or_default(),
        };
        let slot = hour.slot(now);
        if ok {
            slot.done += 1;
        } else {
            slot.failed += 1;
        }
        slot.run.observe(run);
    }

    /// The closed points, oldest first.
    pub fn points(&self) -> impl Iterator<Item = &Point> {
        self.points.iter()
    }

    /// `module`'s last hour.
    pub fn hour(&self, module: &str, now: u64) -> HourSummary {
        match self.modules.get(module) {
            Some(hour) => hour.summary(now),
            None => Hour::default().summary(now),
        }
    }

    /// The modules that ended a job in the last hour; older ones are
    /// forgotten, so a module gone for good costs nothing.
    pub fn active_modules(&mut self, now: u64) -> Vec<String> {
        self.modules.retain(|_, hour| hour.active(now));
        self.modules.keys().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_765_140_000;

    #[test]
    fn intervals_close_into_points_per_second() {
        let mut a = Activity::default();
        a.roll(T0);
        for _ in 0..20 {
            a.started(T0 + 1, Duration::from_millis(2));
        }
        a.finished(T0 + 2, "m", Duration::from_millis(10), true);
        a.finished(T0 + 3, "m", Duration::from_millis(10), false);
        assert_eq!(
            a.points().count(),
            0,
            "the open interval is not a point yet"
        );
        a.roll(T0 + 10);
        let p: Vec<_> = a.points().cloned().collect();
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].t, T0);
        assert_eq!(p[0].started, 2.0);
        assert_eq!(p[0].succeeded, 0.1);
        assert_eq!(p[0].failed, 0.1);
        assert!((p[0].run_p50_ms.unwrap() - 10.0).abs() < 1.0);
        assert!((p[0].wait_p95_ms.unwrap() - 2.0).abs() < 0.2);
    }

    #[test]
    fn idle_time_leaves_zeros_and_the_ring_is_bounded() {
        let mut a = Activity::default();
        a.started(T0, Duration::ZERO);
        a.roll(T0 + 35);
        let p: Vec<_> = a.points().cloned().collect();
        assert_eq!(
            p.iter().map(|p| p.t).collect::<Vec<_>>(),
            [T0, T0 + 10, T0 + 20]
        );
        assert_eq!(p[1].started, 0.0);
        assert_eq!(p[1].run_p50_ms, None);
        a.roll(T0 + 100 * 3600);
        assert_eq!(a.points().count(), POINTS);
        let last = a.points().last().unwrap().t;
        assert_eq!(last, T0 + 100 * 3600 - INTERVAL_SECS);
        let first = a.points().next().unwrap().t;
        assert_eq!(first, last - (POINTS as u64 - 1) * INTERVAL_SECS);
    }

    #[test]
    fn a_modules_hour_forgets_what_is_older() {
        let mut a = Activity::default();
        for i in 0..10 {
            a.finished(T0, "m", Duration::from_millis(i * 10 + 1), i != 0);
        }
        let h = a.hour("m", T0 + 60);
        assert_eq!((h.done, h.failed), (9, 1));
        assert!(h.run_p95_ms.unwrap() > h.run_p50_ms.unwrap());
        assert_eq!(a.hour("other", T0).done, 0);
        assert_eq!(a.active_modules(T0 + 60), ["m"]);
        let later = a.hour("m", T0 + 3600 + 300);
        assert_eq!((later.done, later.failed, later.run_p50_ms), (0, 0, None));
        assert!(a.active_modules(T0 + 3600 + 300).is_empty());
    }
}
