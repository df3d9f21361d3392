//! Processes being started and running, by spawn serial and by pid, for
//! cold jobs and warm workers alike: who owns the pid that SIGCHLD names.
//!
//! A child can exit, and be reaped by the loop, before the spawn thread's
//! report of its pid has been read; its exit is kept until that report.
//! The spawn thread reports every process it created, started or not, and
//! never reaps one itself: so a kept exit is always claimed by the report
//! of the very process it belongs to (a pid is not reused before the loop
//! has reaped it, and reports arrive in the order the processes were made).

use std::collections::HashMap;

use crate::keys::{JobKey, WorkerKey};
use crate::run::process::Exit;

/// Whose a process is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    Job(JobKey),
    Worker(WorkerKey),
    /// Nobody's: an exec that failed, or an owner that was forgotten. Its
    /// exit is reaped and dropped.
    Nobody,
}

/// What the spawn thread's report means for the loop.
#[derive(Debug, PartialEq, Eq)]
pub struct Report {
    pub owner: Owner,
    /// The process had already exited and been reaped.
    pub exit: Option<Exit>,
}

#[derive(Debug, Default)]
pub struct Spawns {
    /// Ordered, pid not reported yet, by serial.
    ordered: HashMap<u64, Owner>,
    /// Started and not reaped yet.
    by_pid: HashMap<u32, Owner>,
    /// Reaped before their report arrived.
    early: HashMap<u32, Exit>,
}

impl Spawns {
    /// A spawn order was given for `owner`.
    pub fn ordered(&mut self, serial: u64, owner: Owner) {
        self.ordered.insert(serial, owner);
    }

    /// The spawn thread reported order `serial`: the process `pid` (if one
    /// was created) started, or its exec failed (`started` false).
    pub fn reported(&mut self, serial: u64, pid: Option<u32>, started: bool) -> Report {
        let owner = self.ordered.remove(&serial).unwrap_or(Owner::Nobody);
        let Some(pid) = pid else {
            return Report { owner, exit: None };
        };
        if let Some(exit) = self.early.remove(&pid) {
            return Report {
                owner,
                exit: Some(exit),
            };
        }
        self.by_pid
            .insert(pid, if started { owner } else { Owner::Nobody });
        Report { owner, exit: None }
    }

    /// The loop reaped `pid`: its owner, or `None` while its report is
    /// still on the way (the exit is kept for it).
    pub fn reaped(&mut self, pid: u32, exit: Exit) -> Option<Owner> {
        let owner = self.by_pid.remove(&pid);
        if owner.is_none() {
            self.early.insert(pid, exit);
        }
        owner
    }

    /// Running processes, started or being started.
    pub fn len(&self) -> usize {
        self.ordered.len() + self.by_pid.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Exits kept for reports still on the way.
    pub fn early_exits(&self) -> usize {
        self.early.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::Key;

    const EXITED_3: Exit = (
        3 << 8,
        crate::run::outcome::Usage {
            user: std::time::Duration::ZERO,
            system: std::time::Duration::ZERO,
            max_rss_kib: 0,
        },
    );

    #[test]
    fn an_exit_reaped_before_the_report_goes_to_its_process() {
        let mut spawns = Spawns::default();
        let job = Owner::Job(JobKey::new(1));
        spawns.ordered(1, job);
        assert_eq!(spawns.reaped(100, EXITED_3), None, "report not read yet");
        assert_eq!(
            spawns.reported(1, Some(100), true),
            Report {
                owner: job,
                exit: Some(EXITED_3)
            }
        );
        assert_eq!(spawns.early_exits(), 0);
        assert!(spawns.is_empty());
    }

    #[test]
    fn a_failed_exec_leaves_no_exit_for_a_later_process_with_its_pid() {
        // The exec of job 1's process 100 fails; the loop reaps 100 before
        // the report. Later job 2's process gets pid 100 again: it must not
        // inherit the first one's exit.
        let mut spawns = Spawns::default();
        let (first, second) = (Owner::Job(JobKey::new(1)), Owner::Job(JobKey::new(2)));
        spawns.ordered(1, first);
        assert_eq!(spawns.reaped(100, EXITED_3), None);
        let failed = spawns.reported(1, Some(100), false);
        assert_eq!(failed.owner, first);
        spawns.ordered(2, second);
        assert_eq!(
            spawns.reported(2, Some(100), true),
            Report {
                owner: second,
                exit: None
            },
            "the reused pid starts clean"
        );
        assert_eq!(spawns.reaped(100, EXITED_3), Some(second));
        assert_eq!(spawns.early_exits(), 0);
    }

    #[test]
    fn a_failed_exec_reaped_after_its_report_is_nobodys() {
        let mut spawns = Spawns::default();
        spawns.ordered(1, Owner::Worker(WorkerKey::new(0)));
        spawns.reported(1, Some(200), false);
        assert_eq!(spawns.reaped(200, EXITED_3), Some(Owner::Nobody));
        assert_eq!(spawns.early_exits(), 0);
        assert!(spawns.is_empty());
    }
}
