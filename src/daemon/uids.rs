//! Starting module processes, and the module uids they run as when each
//! job gets its own (`module_uids`, see `run/uids.rs`).

use std::io;
use std::path::PathBuf;

use crate::daemon::tokens;
use crate::daemon::Daemon;
use crate::node::workdir::js_working_dir;
use crate::run::command::{command, Mode};
use crate::run::modules::{Kind, Module};
use crate::run::process::Process;
use crate::run::spawns::Owner;

impl Daemon {
    /// Orders a process for `module` started with the variables `vars`,
    /// watched under its owner's tokens; the pid comes later, in a spawn
    /// report. With module uids it runs as a uid of its own. With `stdout`,
    /// it writes there instead of to a pipe.
    pub(super) fn start_process(
        &mut self,
        module: &Module,
        mode: Mode,
        vars: &[String],
        owner: Owner,
        stdout: Option<std::os::fd::OwnedFd>,
    ) -> io::Result<Process> {
        // Only `.js` modules need it (a Node.js start dwarfs its cost).
        let js_dir = match module.kind {
            Kind::Node => {
                js_working_dir(self.settings.js_working_dir.as_deref(), self.modules.dir())
            }
            Kind::Executable => PathBuf::new(),
        };
        let (program, args) = command(module, self.node.as_deref(), &js_dir, mode)?;
        let mut limits = self.settings.module_limits;
        if let Some(pool) = &mut self.uids {
            let uid = pool
                .take()
                .ok_or_else(|| io::Error::other("no module uid is free"))?;
            limits.identity = Some((uid, pool.gid()));
        }
        let started = Process::start(
            &mut self.spawner,
            self.poll.registry(),
            (program, &args),
            vars,
            &limits,
            // A cold job gets a progress pipe; a warm worker sends frames.
            (stdout, mode == Mode::Cold),
            |stream| tokens::pipe(owner, stream),
        );
        match started {
            Ok(process) => {
                self.spawns.ordered(process.serial, owner);
                Ok(process)
            }
            Err(e) => {
                // It may have been started all the same: clear the uid.
                self.release_uid(
                    limits
                        .identity
                        .filter(|_| self.uids.is_some())
                        .map(|(uid, _)| uid),
                );
                Err(e)
            }
        }
    }

    /// True if a new process can get a uid now.
    pub(super) fn uid_available(&self) -> bool {
        self.uids.as_ref().is_none_or(|pool| pool.free() > 0)
    }

    /// A job or worker that ran as a module uid is over: every process
    /// still running as that uid is killed before the uid serves again.
    pub(super) fn release_uid(&mut self, uid: Option<u32>) {
        let (Some(uid), Some(pool)) = (uid, &self.uids) else {
            return;
        };
        match self.spawner.kill_uid(uid, pool.gid()) {
            Ok(serial) => self.spawns.ordered(serial, Owner::Clearing(uid)),
            Err(e) => log::error!("module uid {uid} could not be cleared, it stays unused: {e}"),
        }
    }

    /// A uid was cleared of every process: it serves again, and what waited
    /// for one can start.
    pub(super) fn uid_cleared(&mut self, uid: u32) {
        if let Some(pool) = &mut self.uids {
            pool.give_back(uid);
        }
        let names: Vec<String> = self.workers.queues.keys().cloned().collect();
        for name in names {
            self.dispatch_warm(&name);
        }
    }
}
