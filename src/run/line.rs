//! The waiting line: jobs not started yet, in one line per module, kind
//! (direct calls, and queued jobs: `queue:add` and datagrams) and
//! priority. The next job is the one of highest priority, first come
//! first served within one priority, among the modules that may start one
//! now: a module at its own `max_jobs` is passed over, and so are the
//! queued jobs of a paused module, so neither holds up the line for the
//! others. Finding it looks at the head of each module's lines, so its
//! cost grows with the modules waiting, never with the jobs.

use std::collections::{HashMap, VecDeque};

use crate::keys::JobKey;
use crate::queue::options::Priority;

/// One line: (arrival number, job), oldest first.
type Line = VecDeque<(u64, JobKey)>;

/// The lines of one module: by kind (0: direct calls, 1: queued jobs),
/// then by priority (`Priority as usize`).
#[derive(Debug, Default)]
struct ModuleLine {
    lines: [[Line; 3]; 2],
}

impl ModuleLine {
    /// Its next job (without the queued ones unless `queued_too`): the
    /// oldest of its highest priority, as (priority, arrival), and its kind.
    fn head(&self, queued_too: bool) -> Option<((Priority, u64), usize)> {
        let kinds = if queued_too { 0..2 } else { 0..1 };
        kinds
            .filter_map(|kind| {
                let by_priority = &self.lines[kind];
                let (p, line) = by_priority
                    .iter()
                    .enumerate()
                    .find(|(_, line)| !line.is_empty())?;
                Some(((Priority::from_byte(p as u8), line.front()?.0), kind))
            })
            .min()
    }

    fn len(&self) -> usize {
        self.lines.iter().flatten().map(VecDeque::len).sum()
    }
}

/// Every job waiting to start.
#[derive(Debug, Default)]
pub struct WaitingLine {
    /// By module name; a module with nothing waiting has no entry.
    modules: HashMap<String, ModuleLine>,
    /// The arrival number of the next job: FIFO across modules as well.
    next: u64,
    len: usize,
}

impl WaitingLine {
    /// Puts a job at the end of its module's line for its kind (`queued`:
    /// a queue or datagram job) and priority.
    pub fn push(&mut self, module: &str, queued: bool, priority: Priority, key: JobKey) {
        let line = match self.modules.get_mut(module) {
            Some(line) => line,
            None => self.modules.entry(module.to_string()).or_default(),
        };
        line.lines[usize::from(queued)][priority as usize].push_back((self.next, key));
        self.next += 1;
        self.len += 1;
    }

    /// Takes out the next job of the modules `may_start` lets start one,
    /// passing over the queued jobs of the modules `held` names: the
    /// highest priority first, then the oldest.
    pub fn pop(
        &mut self,
        may_start: impl Fn(&str) -> bool,
        held: impl Fn(&str) -> bool,
    ) -> Option<JobKey> {
        let (name, ((priority, _), kind)) = self
            .modules
            .iter()
            .filter(|(name, _)| may_start(name))
            .filter_map(|(name, line)| Some((name, line.head(!held(name))?)))
            .min_by_key(|&(_, head)| head)?;
        let name = name.clone();
        let line = self.modules.get_mut(&name)?;
        let (_, key) = line.lines[kind][priority as usize].pop_front()?;
        if line.len() == 0 {
            self.modules.remove(&name);
        }
        self.len -= 1;
        Some(key)
    }

    /// Takes a job out wherever it waits; false if it was not waiting.
    pub fn remove(&mut self, module: &str, queued: bool, priority: Priority, key: JobKey) -> bool {
        let Some(line) = self.modules.get_mut(module) else {
            return false;
        };
        let queue = &mut line.lines[usize::from(queued)][priority as usize];
        let Some(at) = queue.iter().position(|&(_, k)| k == key) else {
            return false;
        };
        queue.remove(at);
        if line.len() == 0 {
            self.modules.remove(module);
        }
        self.len -= 1;
        true
    }

    /// Jobs waiting, in all.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing waits.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Jobs of `module` waiting, of both kinds.
    pub fn len_of(&self, module: &str) -> usize {
        self.modules.get(module).map_or(0, ModuleLine::len)
    }

    /// The modules with jobs waiting.
    pub fn modules(&self) -> impl Iterator<Item = &str> {
        self.modules.keys().map(String::as_str)
    }

    /// Every waiting job, in arrival order.
    pub fn keys(&self) -> Vec<JobKey> {
        let mut all: Vec<(u64, JobKey)> = self
            .modules
            .values()
            .flat_map(|line| line.lines.iter().flatten().flatten().copied())
            .collect();
        all.sort_unstable_by_key(|&(seq, _)| seq);
        all.into_iter().map(|(_, key)| key).collect()
    }

    /// Gives back the capacity a load left.
    pub fn shrink(&mut self) {
        for line in self.modules.values_mut() {
            line.lines
                .iter_mut()
                .flatten()
                .for_each(VecDeque::shrink_to_fit);
        }
        self.modules.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::Key;
    use Priority::{High, Low, Normal};

    fn key(n: usize) -> JobKey {
        JobKey::new(n)
    }

    fn drain(line: &mut WaitingLine, may_start: impl Fn(&str) -> bool + Copy) -> Vec<usize> {
        std::iter::from_fn(|| line.pop(may_start, |_| false))
            .map(|k| k.index())
            .collect()
    }

    #[test]
    fn highest_priority_first_and_fifo_within_one() {
        let mut line = WaitingLine::default();
        for (n, priority) in [
            (1, Low),
            (2, Normal),
            (3, High),
            (4, Low),
            (5, High),
            (6, Normal),
        ] {
            line.push("m", n % 2 == 0, priority, key(n));
        }
        assert_eq!(line.len(), 6);
        assert_eq!(
            line.keys().iter().map(|k| k.index()).collect::<Vec<_>>(),
            [1, 2, 3, 4, 5, 6]
        );
        assert_eq!(drain(&mut line, |_| true), [3, 5, 2, 6, 1, 4]);
        assert!(line.is_empty());
    }

    #[test]
    fn priority_holds_across_modules_and_arrival_breaks_ties() {
        let mut line = WaitingLine::default();
        line.push("a", true, Normal, key(1));
        line.push("b", true, Normal, key(2));
        line.push("a", true, Low, key(3));
        line.push("b", true, High, key(4));
        line.push("a", false, Normal, key(5));
        assert_eq!(drain(&mut line, |_| true), [4, 1, 2, 5, 3]);
    }

    #[test]
    fn a_module_that_may_not_start_does_not_hold_up_the_others() {
        let mut line = WaitingLine::default();
        for n in 0..1000 {
            line.push("busy", true, High, key(n));
        }
        line.push("free", true, Low, key(5000));
        line.push("free", false, Normal, key(5001));
        assert_eq!(drain(&mut line, |m| m != "busy"), [5001, 5000]);
        assert_eq!(line.len_of("busy"), 1000);
        assert_eq!(line.len_of("free"), 0);
        assert_eq!(line.pop(|m| m != "busy", |_| false), None);
        assert_eq!(line.pop(|_| true, |_| false).map(|k| k.index()), Some(0));
    }

    #[test]
    fn a_held_module_starts_its_direct_calls_but_not_its_queued_jobs() {
        let mut line = WaitingLine::default();
        line.push("m", true, High, key(1));
        line.push("m", false, Low, key(2));
        line.push("m", true, Normal, key(3));
        let held = |m: &str| m == "m";
        assert_eq!(line.pop(|_| true, held).map(|k| k.index()), Some(2));
        assert_eq!(line.pop(|_| true, held), None);
        assert_eq!(line.len_of("m"), 2);
        assert_eq!(drain(&mut line, |_| true), [1, 3]);
    }

    #[test]
    fn a_removed_job_is_gone_from_its_line() {
        let mut line = WaitingLine::default();
        line.push("a", true, Normal, key(1));
        line.push("a", true, High, key(2));
        line.push("b", false, Normal, key(3));
        assert!(!line.remove("a", true, Normal, key(2)), "wrong priority");
        assert!(!line.remove("a", false, High, key(2)), "wrong kind");
        assert!(line.remove("a", true, High, key(2)));
        assert!(!line.remove("a", true, High, key(2)), "already gone");
        assert!(line.remove("b", false, Normal, key(3)));
        assert_eq!((line.len(), line.len_of("a"), line.len_of("b")), (1, 1, 0));
        assert_eq!(drain(&mut line, |_| true), [1]);
    }
}
