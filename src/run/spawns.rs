//! Processes being started and running, by spawn serial and by pid, for
//! cold jobs and warm workers alike: who owns the pid that SIGCHLD names.
//!
//! A child can exit, and be reaped by the loop, before the spawn thread's
//! report of its pid has been read. The kernel writes each new child's pid
//! into its order before the child runs (`CLONE_PARENT_SETTID`), so such an
//! exit is matched to its order, and kept by the order's serial, never by a
//! pid that a later process could reuse. The spawn thread reports every
//! process it created, started or not, and never reaps one itself. An exit
//! that matches no process and no order is an orphan's: the daemon is a
//! child subreaper, and what a module left behind ends up here.

use std::collections::HashMap;

use crate::keys::{JobKey, WorkerKey};
use crate::run::process::Exit;

/// Whose a process is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    Job(JobKey),
    Worker(WorkerKey),
    /// The short-lived process that clears a module uid of every process
    /// (see `uids.rs`); the uid is free again once it has exited.
    Clearing(u32),
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
    /// Reaped before their report arrived, by order serial.
    early: HashMap<u64, Exit>,
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
        if let Some(exit) = self.early.remove(&serial) {
            return Report {
                owner,
                exit: Some(exit),
            };
        }
        let Some(pid) = pid else {
            return Report { owner, exit: None };
        };
        let kept = started || matches!(owner, Owner::Clearing(_));
        self.by_pid
            .insert(pid, if kept { owner } else { Owner::Nobody });
        Report { owner, exit: None }
    }

    /// The loop reaped `pid`: its owner, if its report was read.
    pub fn reaped(&mut self, pid: u32) -> Option<Owner> {
        self.by_pid.remove(&pid)
    }

    /// The loop reaped the process of order `serial` before its report:
    /// the exit waits for the report.
    pub fn reaped_early(&mut self, serial: u64, exit: Exit) {
        self.early.insert(serial, exit);
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
    fn an_exit_reaped_before_the_report_goes_to_its_order() {
        let mut spawns = Spawns::default();
        let job = Owner::Job(JobKey::new(1));
        spawns.ordered(1, job);
        spawns.reaped_early(1, EXITED_3);
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
        // The exec of job 1's process 100 fails and the loop reaps it before
        // the report; job 2's process later gets pid 100 again. Kept by
        // serial, the first exit can never be taken for the second's.
        let mut spawns = Spawns::default();
        let (first, second) = (Owner::Job(JobKey::new(1)), Owner::Job(JobKey::new(2)));
        spawns.ordered(1, first);
        spawns.reaped_early(1, EXITED_3);
        assert_eq!(spawns.reported(1, Some(100), false).owner, first);
        spawns.ordered(2, second);
        assert_eq!(
            spawns.reported(2, Some(100), true),
            Report {
                owner: second,
                exit: None
            },
            "the reused pid starts clean"
        );
        assert_eq!(spawns.reaped(100), Some(second));
        assert_eq!(spawns.early_exits(), 0);
    }

    #[test]
    fn a_failed_exec_reaped_after_its_report_is_nobodys() {
        let mut spawns = Spawns::default();
        spawns.ordered(1, Owner::Worker(WorkerKey::new(0)));
        spawns.reported(1, Some(200), false);
        assert_eq!(spawns.reaped(200), Some(Owner::Nobody));
        assert!(spawns.is_empty());
    }

    #[test]
    fn an_unknown_pid_is_an_orphan() {
        let mut spawns = Spawns::default();
        assert_eq!(spawns.reaped(300), None);
        assert_eq!(spawns.early_exits(), 0, "nothing kept for it");
    }
}
