//! The loop's map of the journal file: how many bytes each live id takes
//! (to know when dead records dominate), and where the frame that defines
//! it (its add, or its result) starts, as the writer reported, so that a
//! rewrite copies that frame instead of the loop encoding it again. Each
//! id's footprint is kept in its live entry (`live.rs`), so an id costs one
//! map entry; here are the totals, and the frames handed to the writer
//! that are not durably in the file yet, held encoded: a lost or cut-off
//! one is written again by the next rewrite from these bytes, and a job's
//! add is nowhere else in the journal.

use std::collections::BTreeMap;

use crate::journal::frame::Salt;
use crate::journal::live::{Entry, Footprint, Live, NOWHERE};
use crate::journal::record::Record;
use crate::journal::rewrite::{Piece, Plan, Source};
use crate::journal::writer::Event;

/// A journal smaller than this is never compacted.
const COMPACT_MIN_BYTES: u64 = 64 * 1024;

/// A job or result a rewrite keeps, and where its frame lands.
#[derive(Debug)]
struct Moved {
    id: u64,
    seq: u64,
    at: u64,
    len: u64,
    bytes_before: u64,
    bytes_after: u64,
}

/// A removal not yet kept: its entry goes into a rewrite, to be written
/// only if the removal is lost.
pub(super) struct Pending<'a> {
    pub(super) removal: u64,
    pub(super) entry: &'a Entry,
}

#[derive(Debug, Default)]
pub(super) struct Footprints {
    live_bytes: u64,
    pub(super) file_bytes: u64,
    /// Defining frames handed to the writer and not durably in the file
    /// yet, encoded: seq to (id, frame).
    held: BTreeMap<u64, (u64, Box<[u8]>)>,
    /// The held frames up to this sequence number were looked at since
    /// the last rewrite: those left are lost.
    released: u64,
    /// A rewrite handed over and not yet reported: its sequence number,
    /// the file's size then, and what it moves.
    moving: Option<(u64, u64, Vec<Moved>)>,
}

impl Footprints {
    /// Record `seq` (`frame`, encoded), applied to `live`; at `at` in the
    /// file if known. `removed`: the entry it removed.
    pub(super) fn track(
        &mut self,
        live: &mut Live,
        record: &Record,
        frame: &[u8],
        seq: u64,
        at: Option<u64>,
        removed: Option<&Entry>,
    ) {
        let len = frame.len() as u64;
        self.file_bytes += len;
        let id = match record {
            // Of no job: small, and rewritten from the live view.
            Record::NextId(_) | Record::Paused { .. } => return,
            Record::Removed { .. } => {
                if let Some(entry) = removed {
                    self.forget(&entry.fp);
                }
                return;
            }
            other => other.id(),
        };
        let Some(entry) = live.get_mut(id) else {
            return;
        };
        let fp = &mut entry.fp;
        let before = fp.bytes;
        fp.bytes = fp.bytes.saturating_add(len as u32);
        self.live_bytes += u64::from(fp.bytes - before);
        if matches!(record, Record::Added(_) | Record::Finished(_)) {
            fp.seq = seq;
            fp.len = len as u32;
            fp.at = at.unwrap_or(NOWHERE);
            if at.is_none() {
                self.held.insert(seq, (id, frame.into()));
            }
        }
    }

    /// What a removed id took is no longer live.
    pub(super) fn forget(&mut self, fp: &Footprint) {
        self.live_bytes -= u64::from(fp.bytes);
    }

    /// Puts back a result whose removal was not kept. Where its frame is
    /// may have changed since (a rewrite): the next rewrite encodes it.
    pub(super) fn put_back(&mut self, live: &mut Live, id: u64, mut entry: Entry) {
        entry.fp.unplace();
        self.live_bytes += u64::from(entry.fp.bytes);
        live.put_back(id, entry);
    }

    /// Starts over for a file about to be written whole.
    pub(super) fn clear(&mut self, live: &mut Live) {
        *self = Footprints::default();
        for fp in live.footprints_mut() {
            *fp = Footprint::default();
        }
    }

    /// True when dead records dominate the file.
    pub(super) fn wants_compaction(&self) -> bool {
        self.file_bytes > COMPACT_MIN_BYTES && self.file_bytes > 4 * self.live_bytes
    }

    pub(super) fn is_moving(&self) -> bool {
        self.moving.is_some()
    }

    /// Bytes a rewrite would have the loop write from memory (frames not
    /// in the file).
    pub(super) fn unplaced_bytes(&self, live: &Live) -> u64 {
        (live.iter())
            .filter(|(_, e)| e.fp.at().is_none())
            .map(|(_, e)| u64::from(e.fp.bytes))
            .sum()
    }

    /// Frames held encoded, and their bytes.
    #[cfg(test)]
    pub(super) fn held(&self) -> (usize, usize) {
        let bytes = self.held.values().map(|(_, f)| f.len()).sum();
        (self.held.len(), bytes)
    }

    /// Drops the held frames that are durably in the file: placed, and at
    /// or below `settled` (no failed sync can cut them off any more), and
    /// those of ids gone or defined by a later frame. Those not placed
    /// (lost) stay, for the next rewrite; they are looked at again only
    /// after a rewrite, so that a failing journal holding many does not
    /// walk them every turn.
    pub(super) fn release(&mut self, live: &Live, settled: u64) {
        if settled <= self.released {
            return;
        }
        let from = self.released.saturating_add(1);
        let done: Vec<u64> = (self.held.range(from..=settled))
            .filter(|&(&seq, &(id, _))| {
                let unplaced = live
                    .get(id)
                    .is_some_and(|e| e.fp.seq == seq && e.fp.at().is_none());
                !unplaced
            })
            .map(|(&seq, _)| seq)
            .collect();
        for seq in done {
            self.held.remove(&seq);
        }
        self.released = settled;
    }

    /// Takes what the writer reported.
    pub(super) fn apply(&mut self, live: &mut Live, event: &Event) {
        match *event {
            Event::Placed { seq, at } => {
                if let Some(&(id, _)) = self.held.get(&seq) {
                    if let Some(entry) = live.get_mut(id).filter(|e| e.fp.seq == seq) {
                        entry.fp.at = at;
                    }
                }
            }
            Event::Lost {
                first,
                last,
                cut_off,
                ..
            } => {
                if !cut_off {
                    return;
                }
                // Placed, then cut off by a failed sync: still held.
                for fp in live.footprints_mut() {
                    if (first..=last).contains(&fp.seq) {
                        fp.unplace();
                    }
                }
            }
            Event::Rewritten { seq, bytes } => {
                let Some((planned, size_then, moved)) = self.moving.take() else {
                    return;
                };
                debug_assert_eq!(planned, seq);
                self.moved(live, seq, moved);
                self.live_bytes = live.iter().map(|(_, e)| u64::from(e.fp.bytes)).sum();
                self.file_bytes = bytes + self.file_bytes.saturating_sub(size_then);
            }
            Event::NotRewritten { broken, .. } => {
                let moving = self.moving.take();
                if let (true, Some((seq, _, moved))) = (broken, moving) {
                    // The new file took the journal's name whole: its
                    // frames are where the plan put them, and the next
                    // rewrite copies them from it.
                    self.moved(live, seq, moved);
                }
            }
        }
    }

    /// The frames of rewrite `seq` are where it put them; the frames of
    /// the old file are gone with it.
    fn moved(&mut self, live: &mut Live, seq: u64, moved: Vec<Moved>) {
        // The lost frames it wrote are placed now: looked at again.
        self.released = 0;
        for fp in live.footprints_mut() {
            if fp.seq < seq {
                fp.unplace();
            }
        }
        for m in moved {
            let Some(entry) = live.get_mut(m.id) else {
                continue;
            };
            let fp = &mut entry.fp;
            let bytes = (u64::from(fp.bytes) + m.bytes_after).saturating_sub(m.bytes_before);
            fp.bytes = bytes.min(u64::from(u32::MAX)) as u32;
            if fp.seq == m.seq {
                fp.at = m.at;
                fp.len = m.len as u32;
            }
        }
    }

    /// The whole file as rewrite `seq` writes it: the header, next id and
    /// paused modules,
    /// each live job (its add, copied or written from the held frame, and
    /// its last start) or result, then the results whose removal is not
    /// kept yet, each only if that removal is lost.
    pub(super) fn plan(
        &mut self,
        seq: u64,
        salt: Salt,
        next_counter: u64,
        live: &Live,
        pending: &[Pending],
    ) -> Plan {
        let mut pieces = Vec::new();
        let mut fresh = salt.header();
        salt.encode(&Record::NextId(next_counter), &mut fresh);
        for paused in live.pauses() {
            salt.encode(&paused, &mut fresh);
        }
        let mut at = fresh.len() as u64;
        let mut moved = Vec::new();
        for (id, entry) in live.iter() {
            let start = at;
            let Some(len) = self.put(&mut pieces, &mut fresh, id, entry, &salt, None) else {
                continue;
            };
            at += len;
            for started in entry.started(id) {
                let before = fresh.len();
                salt.encode(&started, &mut fresh);
                at += (fresh.len() - before) as u64;
            }
            moved.push(Moved {
                id,
                seq: entry.fp.seq,
                at: start,
                len,
                bytes_before: u64::from(entry.fp.bytes),
                bytes_after: at - start,
            });
        }
        flush(&mut pieces, &mut fresh, None);
        for p in pending {
            let unless = Some(p.removal);
            self.put(&mut pieces, &mut fresh, 0, p.entry, &salt, unless);
            flush(&mut pieces, &mut fresh, unless);
        }
        self.moving = Some((seq, self.file_bytes, moved));
        Plan { salt, pieces }
    }

    /// Adds the defining frame of an id: a copy if the file has it, else
    /// the frame held, or a result encoded, into `fresh`. Its length;
    /// none for a job whose add is nowhere (which cannot be).
    fn put(
        &self,
        pieces: &mut Vec<Piece>,
        fresh: &mut Vec<u8>,
        id: u64,
        entry: &Entry,
        salt: &Salt,
        unless_kept: Option<u64>,
    ) -> Option<u64> {
        let fp = entry.fp;
        if let Some(at) = fp.at() {
            flush(pieces, fresh, unless_kept);
            let len = u64::from(fp.len);
            pieces.push(Piece {
                source: Source::Copy {
                    seq: fp.seq,
                    at,
                    len,
                },
                unless_kept,
            });
            return Some(len);
        }
        let before = fresh.len();
        match (entry.what.finished(), self.held.get(&fp.seq)) {
            (Some(finished), _) => salt.encode(&Record::Finished(finished.clone()), fresh),
            (None, Some((held, frame))) if *held == id => fresh.extend_from_slice(frame),
            (None, _) => {
                log::error!("journal: the add of job {id} is neither in the file nor held");
                return None;
            }
        }
        Some((fresh.len() - before) as u64)
    }
}

/// Ends a run of encoded frames as one piece.
fn flush(pieces: &mut Vec<Piece>, fresh: &mut Vec<u8>, unless_kept: Option<u64>) {
    if !fresh.is_empty() {
        pieces.push(Piece {
            source: Source::Fresh(std::mem::take(fresh)),
            unless_kept,
        });
    }
}
