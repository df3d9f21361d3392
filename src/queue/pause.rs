//! Paused modules (`queue:pause:<module>`, `queue:resume:<module>`): the
//! starting of a module's queued jobs stops until it is resumed, while its
//! adds are still accepted, so an operator can hold a module's work during
//! a deploy or an outage of what it calls. The engine owns the set: a
//! change is journaled, answered once kept, survives restarts, and is told
//! to the loop as an [`Event::Pause`], which its waiting line enforces.

use std::collections::BTreeSet;

use crate::net::protocol::Refusal;
use crate::queue::engine::{Asker, Event, Wait};
use crate::queue::held::{Held, Pausing};
use crate::queue::local::LocalEngine;
use crate::queue::store::{Change, Completion};

/// Pauses or resumes `module` in the set of paused modules; true if that
/// changed anything.
fn set(modules: &mut BTreeSet<String>, module: &str, paused: bool) -> bool {
    if paused {
        modules.insert(module.to_string())
    } else {
        modules.remove(module)
    }
}

/// The answer to a pause or resume that took effect.
fn done_answer(module: &str, paused: bool) -> Vec<u8> {
    let what = if paused { "paused" } else { "resumed" };
    format!("{what}: {module}").into_bytes()
}

impl LocalEngine {
    /// Takes over the modules paused before the restart.
    pub(super) fn recover_paused(&mut self, modules: Vec<String>) {
        for module in modules {
            log::info!("journal: module {module} is paused: its queued jobs wait for queue:resume");
            set(&mut self.paused, &module, true);
            self.events.push_back(Event::Pause {
                module,
                paused: true,
            });
        }
    }

    /// `queue:pause` (`paused`) or `queue:resume` of `module`, operators
    /// only. It takes effect at once, and is answered once it is kept.
    pub(super) fn pause_module(&mut self, asker: Asker, module: String, paused: bool) {
        let conn = asker.conn;
        if !asker.operator {
            return self.refuse(conn, Refusal::Forbidden);
        }
        if !set(&mut self.paused, &module, paused) {
            return self.answer(conn, done_answer(&module, paused));
        }
        log::info!(
            "module {module} {}",
            if paused {
                "paused: its queued jobs do not start"
            } else {
                "resumed"
            }
        );
        self.events.push_back(Event::Pause {
            module: module.clone(),
            paused,
        });
        let change = Change::Paused {
            module: module.clone(),
            paused,
        };
        let held = Held::Paused(Pausing {
            conn: Some(conn),
            module,
            paused,
        });
        let ticket = self.held.hold(held);
        self.store.submit(change, Some(ticket));
        let on = Wait::Store;
        self.events.push_back(Event::Wait { conn, on });
    }

    /// A pause's record was kept (answered) or not (taken back, refused):
    /// what the daemon does after a restart is what it was told.
    pub(super) fn pause_completed(&mut self, pausing: Pausing, done: Completion) {
        let Pausing {
            conn,
            module,
            paused,
        } = pausing;
        if let Completion::Refused(why) | Completion::Unknown(why) = &done {
            log::warn!("the pause of module {module} was not kept by the queue store: {why}");
            if set(&mut self.paused, &module, !paused) {
                let paused = !paused;
                self.events.push_back(Event::Pause { module, paused });
            }
            if let Some(conn) = conn {
                self.refuse(conn, Refusal::JournalFailed);
            }
            return;
        }
        if let Some(conn) = conn {
            self.answer(conn, done_answer(&module, paused));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_module_is_paused_once_and_resumed_once() {
        let mut paused = BTreeSet::new();
        assert!(set(&mut paused, "b", true));
        assert!(set(&mut paused, "a", true));
        assert!(!set(&mut paused, "a", true), "already paused");
        assert_eq!(paused.iter().collect::<Vec<_>>(), ["a", "b"]);
        assert!(set(&mut paused, "a", false));
        assert!(!set(&mut paused, "a", false), "not paused");
        assert_eq!(paused.iter().collect::<Vec<_>>(), ["b"]);
    }
}
