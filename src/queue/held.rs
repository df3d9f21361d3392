//! Answers and jobs held until the queue store completes their change:
//! `queue:add` answers `id:<n>`, and its job starts, only once it is kept.

use std::collections::HashMap;

use crate::keys::ConnKey;
use crate::queue::results::Done;
use crate::queue::store::{Removal, Ticket};

/// What waits for a store ticket to complete.
#[derive(Debug)]
pub enum Held {
    /// A new job: it starts, and its client gets `id:<n>`, once it is kept.
    Added {
        id: u64,
        /// The client waiting for `id:<n>`; none for UDP jobs.
        conn: Option<ConnKey>,
        /// Not started before this Unix time (ms): its delay.
        run_at_ms: Option<u64>,
    },
    /// A result fetched (its clients get it once the "fetched" record is
    /// kept) or cancelled (its client is told once the "cancelled" record
    /// is), so a crash never brings back a result delivered or dropped.
    Removed {
        id: u64,
        done: Box<Done>,
        /// The clients waiting for it (some may have left).
        conns: Vec<ConnKey>,
        why: Removal,
    },
    /// A module paused or resumed: its operator is answered once kept.
    Paused(Pausing),
}

/// A pause or resume waiting for its record.
#[derive(Debug)]
pub struct Pausing {
    /// The operator waiting for the answer, while connected.
    pub conn: Option<ConnKey>,
    pub module: String,
    pub paused: bool,
}

/// Tickets handed to the store and what waits for each.
#[derive(Debug, Default)]
pub struct HeldAnswers {
    next_ticket: Ticket,
    held: HashMap<Ticket, Held>,
}

impl HeldAnswers {
    /// Holds `held` until the completion of the ticket returned.
    pub fn hold(&mut self, held: Held) -> Ticket {
        self.next_ticket += 1;
        self.held.insert(self.next_ticket, held);
        self.next_ticket
    }

    /// What waited for this ticket.
    pub fn take(&mut self, ticket: Ticket) -> Option<Held> {
        self.held.remove(&ticket)
    }

    /// A client waiting for an answer left: nobody to answer.
    pub fn forget_conn(&mut self, conn: ConnKey) {
        for held in self.held.values_mut() {
            match held {
                Held::Added { conn: waiting, .. } | Held::Paused(Pausing { conn: waiting, .. }) => {
                    if *waiting == Some(conn) {
                        *waiting = None;
                    }
                }
                Held::Removed { conns, .. } => conns.retain(|&c| c != conn),
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }
}
