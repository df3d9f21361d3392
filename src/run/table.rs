//! The job table: every job the daemon holds, the waiting line
//! (`line.rs`: highest priority first, FIFO within one), and what bounds
//! the starting of jobs: running slots in all and per module, and the
//! modules whose starting is paused.

use std::collections::{HashMap, HashSet};

use crate::keys::{JobKey, Table};
use crate::run::job::{ColdRun, Job, JobState, Origin, WarmRun};
use crate::run::line::WaitingLine;

/// The waiting line is full.
#[derive(Debug)]
pub struct Busy;

#[derive(Debug, Default)]
pub struct JobTable {
    jobs: Table<JobKey, Job>,
    waiting: WaitingLine,
    /// Jobs started (cold, or on a warm worker or waiting for one): each
    /// holds a running slot.
    running: usize,
    /// The same by module, for the modules' own `max_jobs`.
    running_by_module: HashMap<String, usize>,
    /// Modules whose queued jobs do not start (`queue:pause`).
    paused: HashSet<String>,
    /// Jobs not started yet, by client address.
    by_client: HashMap<std::net::IpAddr, usize>,
    /// UDP jobs not started yet.
    udp_waiting: usize,
    /// Bytes of journaled jobs' data held (queue and UDP jobs, from
    /// acceptance to their end), in all and by client address.
    data_bytes: usize,
    data_by_client: HashMap<std::net::IpAddr, usize>,
}

/// True for a job of the queue (`queue:add` or a datagram), which a pause
/// of its module holds; direct calls are answered live and still start.
fn queued(job: &Job) -> bool {
    !matches!(job.origin, Origin::Tcp { .. })
}

/// Who a waiting job counts against: its client address, and whether it
/// came by UDP.
fn counted(job: &Job) -> (Option<std::net::IpAddr>, bool) {
    (job.client, matches!(job.origin, Origin::Udp { .. }))
}

impl JobTable {
    /// Puts a job at the end of the waiting line, unless `max_waiting` are
    /// already waiting.
    pub fn add(&mut self, job: Job, max_waiting: usize) -> Result<JobKey, Busy> {
        if self.waiting.len() >= max_waiting {
            return Err(Busy);
        }
        Ok(self.insert_waiting(job))
    }

    /// Bytes of journaled jobs' data held: in all, and for `client`.
    pub fn data_bytes(&self, client: Option<std::net::IpAddr>) -> (usize, usize) {
        let mine = client.and_then(|c| self.data_by_client.get(&c)).copied();
        (self.data_bytes, mine.unwrap_or(0))
    }

    fn count_data(&mut self, job: &Job, add: bool) {
        let len = job.data.as_ref().map_or(0, |d| d.len());
        if len == 0 {
            return;
        }
        if add {
            self.data_bytes += len;
        } else {
            self.data_bytes -= len;
        }
        let Some(ip) = job.client else { return };
        if add {
            *self.data_by_client.entry(ip).or_default() += len;
        } else if let Some(n) = self.data_by_client.get_mut(&ip) {
            *n -= len;
            if *n == 0 {
                self.data_by_client.remove(&ip);
            }
        }
    }

    /// Jobs of this client not started yet.
    pub fn waiting_for(&self, client: std::net::IpAddr) -> usize {
        self.by_client.get(&client).copied().unwrap_or(0)
    }

    /// UDP jobs not started yet.
    pub fn udp_waiting(&self) -> usize {
        self.udp_waiting
    }

    fn count(&mut self, (client, udp): (Option<std::net::IpAddr>, bool), add: bool) {
        if udp {
            self.udp_waiting = if add {
                self.udp_waiting + 1
            } else {
                self.udp_waiting.saturating_sub(1)
            };
        }
        let Some(ip) = client else { return };
        if add {
            *self.by_client.entry(ip).or_default() += 1;
        } else if let Some(n) = self.by_client.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                self.by_client.remove(&ip);
            }
        }
    }

    /// A queue or datagram job the queue says to run (kept, or recovered
    /// at start): it waits, whatever the limit (the queue admitted it).
    pub fn add_kept(&mut self, job: Job) -> JobKey {
        self.insert_waiting(job)
    }

    /// Counts a job as waiting and puts it in the line.
    fn insert_waiting(&mut self, job: Job) -> JobKey {
        self.count(counted(&job), true);
        self.count_data(&job, true);
        let (module, priority, queued) = (job.module.clone(), job.priority, queued(&job));
        let key = self.jobs.insert(job);
        self.waiting.push(&module.name, queued, priority, key);
        key
    }

    pub fn iter(&self) -> impl Iterator<Item = (JobKey, &Job)> {
        self.jobs.iter()
    }

    /// The next job to start, if fewer than `max_running` run: the first
    /// of the highest priority among the modules that run fewer than
    /// `module_limit` of their jobs, queued jobs of paused modules aside.
    pub fn pop_waiting(
        &mut self,
        max_running: usize,
        module_limit: impl Fn(&str) -> usize,
    ) -> Option<JobKey> {
        if self.running() >= max_running {
            return None;
        }
        let (running, paused) = (&self.running_by_module, &self.paused);
        let key = self.waiting.pop(
            |module| running.get(module).copied().unwrap_or(0) < module_limit(module),
            |module| paused.contains(module),
        )?;
        if let Some(who) = self.jobs.get(key).map(counted) {
            self.count(who, false);
        }
        Some(key)
    }

    /// Records that the job now runs in a process of its own.
    pub fn cold_started(&mut self, key: JobKey, run: ColdRun) {
        self.set_running(key, JobState::Running(Box::new(run)));
    }

    /// Records that the job now runs on (or waits for) a warm worker.
    pub fn warm_started(&mut self, key: JobKey, run: WarmRun) {
        self.set_running(key, JobState::Warm(run));
    }

    fn set_running(&mut self, key: JobKey, state: JobState) {
        if let Some(job) = self.jobs.get_mut(key) {
            if !job.is_running() {
                self.running += 1;
                *self
                    .running_by_module
                    .entry(job.module.name.clone())
                    .or_default() += 1;
            }
            job.state = state;
        }
    }

    /// A warm job goes back to a process of its own (its module runs cold).
    pub fn warm_to_cold(&mut self, key: JobKey) {
        if let Some(job) = self.jobs.get_mut(key) {
            if matches!(job.state, JobState::Warm(_)) {
                job.state = JobState::Waiting;
                self.running -= 1;
                Self::ran(&mut self.running_by_module, &job.module.name);
            }
        }
    }

    pub fn get(&self, key: JobKey) -> Option<&Job> {
        self.jobs.get(key)
    }

    pub fn get_mut(&mut self, key: JobKey) -> Option<&mut Job> {
        self.jobs.get_mut(key)
    }

    /// Takes a job out of the table, wherever it was.
    pub fn remove(&mut self, key: JobKey) -> Option<Job> {
        let job = self.jobs.remove(key)?;
        self.count_data(&job, false);
        match &job.state {
            JobState::Running(_) | JobState::Warm(_) => {
                self.running -= 1;
                Self::ran(&mut self.running_by_module, &job.module.name);
            }
            JobState::Waiting => {
                // Popped waiting jobs are no longer counted (they are starting).
                let (module, queued) = (&job.module.name, queued(&job));
                if self.waiting.remove(module, queued, job.priority, key) {
                    self.count(counted(&job), false);
                }
            }
        }
        Some(job)
    }

    /// One job of `module` no longer runs.
    fn ran(running: &mut HashMap<String, usize>, module: &str) {
        if let Some(n) = running.get_mut(module) {
            *n -= 1;
            if *n == 0 {
                running.remove(module);
            }
        }
    }

    /// Jobs of `module` started and not finished.
    pub fn running_of(&self, module: &str) -> usize {
        self.running_by_module.get(module).copied().unwrap_or(0)
    }

    /// The modules with jobs running or waiting.
    pub fn busy_modules(&self) -> impl Iterator<Item = &str> {
        let running = self.running_by_module.iter().filter(|(_, &n)| n > 0);
        (running.map(|(m, _)| m.as_str())).chain(self.waiting.modules())
    }

    /// Jobs of `module` waiting to start.
    pub fn waiting_of(&self, module: &str) -> usize {
        self.waiting.len_of(module)
    }

    /// Stops (true) or restarts (false) the starting of `module`'s queued
    /// jobs; those already running go on, and so do direct calls.
    pub fn set_paused(&mut self, module: &str, paused: bool) {
        if paused {
            self.paused.insert(module.to_string());
        } else {
            self.paused.remove(module);
        }
    }

    /// True while `module`'s queued jobs do not start.
    pub fn is_paused(&self, module: &str) -> bool {
        self.paused.contains(module)
    }

    /// Jobs started and not finished.
    pub fn running(&self) -> usize {
        self.running
    }

    /// Jobs waiting to start.
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }

    /// Jobs held, in any state.
    pub fn held(&self) -> usize {
        self.jobs.len()
    }

    /// Gives back the capacity a load left (see `daemon/memory.rs`).
    pub fn shrink(&mut self) {
        self.jobs.shrink();
        self.waiting.shrink();
        self.running_by_module.shrink_to_fit();
        self.by_client.shrink_to_fit();
        self.data_by_client.shrink_to_fit();
    }

    /// Keys of the jobs `keep` selects.
    pub fn keys_where(&self, keep: impl Fn(&Job) -> bool) -> Vec<JobKey> {
        self.jobs.keys_where(keep)
    }

    /// Keys of the jobs waiting, oldest first.
    pub fn waiting_keys(&self) -> Vec<JobKey> {
        self.waiting.keys()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn warm() -> WarmRun {
        let now = std::time::Instant::now();
        WarmRun {
            worker: None,
            started: now,
            deadline: now,
            killed_at_stop: false,
            usage: Default::default(),
        }
    }

    fn any(_: &str) -> usize {
        usize::MAX
    }

    fn job() -> Job {
        let module = crate::run::modules::test_module("m");
        Job::new(module.into(), Origin::Queue { id: 1 }, b"", true)
    }

    #[test]
    fn waiting_line_is_fifo_and_bounded() {
        let mut table = JobTable::default();
        let a = table.add(job(), 2).unwrap();
        let b = table.add(job(), 2).unwrap();
        assert!(table.add(job(), 2).is_err());
        assert_eq!(table.pop_waiting(1, any), Some(a));
        table.warm_started(a, warm());
        assert_eq!(table.pop_waiting(1, any), None, "running limit reached");
        assert_eq!(table.running(), 1);
        assert_eq!(table.pop_waiting(2, any), Some(b));
        assert!(table.remove(a).is_some());
        assert_eq!(table.running(), 0);
        assert_eq!(table.waiting(), 0);
        let kept = table.add_kept(job());
        assert_eq!(table.waiting(), 1);
        table.add_kept(job());
        assert_eq!(table.waiting(), 2, "a kept job waits whatever the limit");
        assert_eq!(table.pop_waiting(9, any), Some(kept));
    }

    #[test]
    fn journaled_data_is_counted_until_the_job_ends() {
        let mut table = JobTable::default();
        let client: std::net::IpAddr = [10, 0, 0, 1].into();
        let mut with_data = job();
        with_data.data = Some(vec![0; 100].into());
        with_data.client = Some(client);
        let k = table.add_kept(with_data);
        assert_eq!(table.data_bytes(Some(client)), (100, 100));
        assert_eq!(table.data_bytes(None), (100, 0));
        assert_eq!(table.pop_waiting(9, any), Some(k));
        assert_eq!(
            table.data_bytes(Some(client)),
            (100, 100),
            "running still holds it"
        );
        table.remove(k);
        assert_eq!(table.data_bytes(Some(client)), (0, 0));
    }

    fn job_of(module: &str, priority: crate::queue::options::Priority) -> Job {
        let module = crate::run::modules::test_module(module);
        let mut job = Job::new(module.into(), Origin::Queue { id: 1 }, b"", true);
        job.priority = priority;
        job
    }

    #[test]
    fn a_module_at_its_limit_or_paused_lets_the_others_start() {
        use crate::queue::options::Priority::{High, Low, Normal};
        let mut table = JobTable::default();
        let limit = |m: &str| if m == "one" { 1 } else { usize::MAX };
        let a = table.add_kept(job_of("one", Normal));
        let b = table.add_kept(job_of("one", High));
        let c = table.add_kept(job_of("other", Low));
        let d = table.add_kept(job_of("other", Normal));
        assert_eq!(table.pop_waiting(9, limit), Some(b), "high first");
        table.warm_started(b, warm());
        assert_eq!(table.running_of("one"), 1);
        assert_eq!(table.waiting_of("one"), 1);
        assert_eq!(table.pop_waiting(9, limit), Some(d), "one is at its limit");
        table.warm_started(d, warm());
        table.set_paused("other", true);
        assert!(table.is_paused("other") && !table.is_paused("one"));
        assert_eq!(table.pop_waiting(9, limit), None, "one full, other paused");
        table.remove(b);
        assert_eq!(table.running_of("one"), 0);
        assert_eq!(table.pop_waiting(9, limit), Some(a));
        table.warm_started(a, warm());
        table.set_paused("other", false);
        assert_eq!(table.pop_waiting(9, limit), Some(c));
        table.warm_started(c, warm());
        table.warm_to_cold(c);
        assert_eq!((table.running(), table.running_of("other")), (2, 1));
    }
}
