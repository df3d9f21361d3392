//! The id floor, the loop's side. `<state>/id-floor`, beside the id key,
//! says that id counters below it may have been handed out. The journal
//! carries the counter too, but a journal can be damaged or lost; the
//! floor is kept outside it so that ids after any recovery continue above
//! every id handed out before (the key is kept, so an old counter would
//! give an old id again, and a client holding it would reach another
//! client's job).
//!
//! Counters are reserved in blocks of [`BLOCK`]: at start, above what the
//! journal and the old floor say, and then by the writer thread (where the
//! journal's file work is done), asked for at the end of the turn in which
//! half the block is used, so neither the loop nor an add waits for it. An
//! add whose counter is not covered by what is on disk is refused rather
//! than answered. The file itself is `state.rs`'s.

use std::path::Path;
use std::sync::mpsc::Sender;

use crate::journal::record::MAX_COUNTER;
use crate::journal::state::{read_floor, write_floor};
use crate::journal::writer::Command;
use crate::queue::store::{Change, Completion, Ticket};

/// Counters reserved at a time.
pub const BLOCK: u64 = 1 << 16;

/// Which counters are reserved on disk, and what is being reserved.
#[derive(Debug)]
pub struct IdFloor {
    /// Counters below this are reserved on disk.
    kept: u64,
    /// The floor to ask the writer for at the end of this turn.
    want: Option<u64>,
    /// A reservation on its way: its sequence number and floor.
    asked: Option<(u64, u64)>,
    /// Adds refused this turn: their counter was not reserved.
    refused: Vec<Ticket>,
}

impl IdFloor {
    /// At start, before any id is handed out: the counter to continue
    /// from (the journal's, or the old floor if that is higher) and a
    /// floor a block above it, written here (start-up may wait for the
    /// disk; the loop is not running yet). If it cannot be written the old
    /// floor stands, and adds past it are refused until a reservation
    /// works.
    pub fn start(dir: &Path, journal_counter: u64) -> (IdFloor, u64) {
        let old = read_floor(dir);
        let counter = journal_counter.max(old).clamp(1, MAX_COUNTER);
        let want = counter.saturating_add(BLOCK).min(MAX_COUNTER);
        let kept = match write_floor(dir, want) {
            Ok(()) => want,
            Err(e) => {
                log::warn!("cannot write the id floor in {}: {e}", dir.display());
                old
            }
        };
        let floor = IdFloor {
            kept,
            want: None,
            asked: None,
            refused: Vec::new(),
        };
        (floor, counter)
    }

    /// A change is about to be kept: true unless it adds a job whose
    /// counter is not reserved on disk; such an add's ticket is refused at
    /// the next [`IdFloor::settle`]. Asks for the next block once half of
    /// this one is used.
    pub fn admit(&mut self, change: &Change, ticket: Option<Ticket>) -> bool {
        let &Change::Added { counter, .. } = change else {
            return true;
        };
        if self.asked.is_none() && counter.saturating_add(BLOCK / 2) >= self.kept {
            let floor = counter.saturating_add(BLOCK).min(MAX_COUNTER);
            self.want = Some(self.want.map_or(floor, |w| w.max(floor)));
        }
        if counter < self.kept {
            return true;
        }
        self.refused.extend(ticket);
        false
    }

    /// At the end of a turn, after its records were handed over: sends the
    /// reservation asked for, as the record after `seq`. The last sequence
    /// number used.
    pub fn ask(&mut self, seq: u64, tx: &Sender<Command>) -> u64 {
        let Some(floor) = self.want.take().filter(|&f| f > self.kept) else {
            return seq;
        };
        self.asked = Some((seq + 1, floor));
        let _ = tx.send(Command::Reserve(floor, seq + 1));
        seq + 1
    }

    /// What the writer reported (records up to `durable` are kept, those
    /// in `lost` never will be); the adds refused since the last call.
    pub fn settle(&mut self, durable: u64, lost: &[(u64, u64)]) -> Vec<(Ticket, Completion)> {
        if let Some((seq, floor)) = self.asked {
            if lost.iter().any(|&(a, b)| a <= seq && seq <= b) {
                self.asked = None;
            } else if seq <= durable {
                self.kept = self.kept.max(floor);
                self.asked = None;
            }
        }
        let why = || Completion::Refused("the id floor is not on disk".into());
        self.refused.drain(..).map(|t| (t, why())).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add(counter: u64) -> Change {
        Change::Added {
            id: counter,
            counter,
            owner: String::new(),
            client: None,
            arrival: crate::queue::store::Arrival::Queue,
            module: "m".into(),
            data: std::rc::Rc::from(&b""[..]),
            added_at: std::time::SystemTime::UNIX_EPOCH,
            options: Default::default(),
        }
    }

    #[test]
    fn reservations_come_before_the_counters_they_cover() {
        let (tx, rx) = std::sync::mpsc::channel();
        let mut floor = IdFloor {
            kept: BLOCK + 1,
            want: None,
            asked: None,
            refused: Vec::new(),
        };
        assert!(floor.admit(&add(10), Some(1)));
        assert_eq!(floor.ask(5, &tx), 5, "most of the block is left");
        assert!(
            floor.admit(&add(BLOCK / 2 + 1), Some(2)),
            "half the block is used"
        );
        assert_eq!(floor.ask(5, &tx), 6);
        let Ok(Command::Reserve(next, 6)) = rx.try_recv() else {
            panic!("a reservation as record 6")
        };
        assert_eq!(next, BLOCK / 2 + 1 + BLOCK);
        assert!(
            !floor.admit(&add(BLOCK + 1), Some(3)),
            "not before it is on disk"
        );
        assert_eq!(floor.ask(6, &tx), 6, "one at a time");
        assert_eq!(floor.settle(5, &[]).len(), 1, "the refused add");
        assert!(!floor.admit(&add(BLOCK + 1), None));
        floor.settle(6, &[]);
        assert!(floor.admit(&add(BLOCK + 1), Some(4)));
        // A lost reservation is asked for again.
        assert!(floor.admit(&add(next - 10), None));
        assert_eq!(floor.ask(9, &tx), 10);
        floor.settle(20, &[(10, 10)]);
        assert!(!floor.admit(&add(next), Some(5)));
        assert_eq!(floor.ask(20, &tx), 21, "asked again");
    }

    #[test]
    fn the_start_never_goes_below_the_floor_or_the_journal() {
        let dir = std::env::temp_dir().join(format!("bgjob-floor-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (_, counter) = IdFloor::start(&dir, 40);
        assert_eq!(counter, 40, "a new folder: the journal's counter");
        assert_eq!(read_floor(&dir), 40 + BLOCK);
        let (_, counter) = IdFloor::start(&dir, 1);
        assert_eq!(counter, 40 + BLOCK, "a lost journal: the floor");
        std::fs::write(dir.join("id-floor"), b"junk").unwrap();
        let (_, counter) = IdFloor::start(&dir, 90);
        assert_eq!(counter, 90, "a damaged floor lowers nothing");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
