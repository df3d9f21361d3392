//! Warm Node.js workers: resident `node` processes, a small pool per `.js`
//! module, each loading its module once and serving one job at a time over
//! its stdin and stdout.
//!
//! What they say to each other is in `framing.rs`.

use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use std::time::Instant;

use crate::keys::{JobKey, Table, WorkerKey};
use crate::run::modules::Module;
use crate::run::process::Process;

/// What a worker is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerState {
    /// Loading its module; not yet `ready`.
    Starting,
    /// Waiting for a job since then.
    Idle(Instant),
    /// Running this job.
    Busy(JobKey),
    /// Its module changed: told to unload and exit.
    Retiring,
    /// Killed or gone; removed once reaped.
    Dead,
}

/// A resident worker process.
#[derive(Debug)]
pub struct Worker {
    /// The module version it loaded.
    pub module: Rc<Module>,
    /// Its process; frames not yet written wait in its input.
    pub process: Process,
    /// Bytes read from its stdout, not yet a whole reply.
    pub inbuf: Vec<u8>,
    pub state: WorkerState,
    /// Its CPU times when its current job was sent, for the job's receipt.
    pub job_start: Option<crate::node::usage::Sample>,
}

impl Worker {
    /// Marks the start of a job: its CPU times now and a fresh peak.
    pub fn job_started(&mut self) {
        if let Some(pid) = self.process.pid {
            crate::node::usage::reset_peak(pid);
            self.job_start = crate::node::usage::sample(pid);
        }
    }

    /// What it used since [`Worker::job_started`], if that was read.
    pub fn job_usage(&mut self) -> Option<crate::run::outcome::Usage> {
        let before = self.job_start.take()?;
        Some(crate::node::usage::since(before, self.process.pid?))
    }

    pub fn signal_kill(&mut self) {
        if self.state != WorkerState::Dead {
            self.process.kill();
        }
        self.state = WorkerState::Dead;
    }

    /// True if it loaded this version of the module.
    pub fn serves(&self, module: &Module) -> bool {
        self.module.path == module.path && self.module.modified == module.modified
    }
}

/// All workers, and the jobs waiting for one, by module name.
#[derive(Debug, Default)]
pub struct Workers {
    pub slab: Table<WorkerKey, Worker>,
    pub queues: HashMap<String, VecDeque<JobKey>>,
    /// Modules that cannot run warm, by the version found so.
    pub cold: HashMap<String, std::time::SystemTime>,
}

impl Workers {
    /// Workers of this module that can still take jobs.
    pub fn live_count(&self, name: &str) -> usize {
        self.slab
            .iter()
            .filter(|(_, w)| {
                w.module.name == name
                    && !matches!(w.state, WorkerState::Dead | WorkerState::Retiring)
            })
            .count()
    }
}
