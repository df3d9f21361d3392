//! The loop's map of the journal file: how many bytes each live job takes
//! (to know when dead records dominate), and where the frame that defines
//! it (its add, or its result) starts, as the writer reported, so that a
//! rewrite copies that frame instead of the loop encoding the data again.
//! It holds numbers, never data.

use std::collections::{BTreeMap, HashMap};

use crate::journal::frame::Salt;
use crate::journal::live::{Entry, Live};
use crate::journal::record::Record;
use crate::journal::rewrite::{Piece, Plan, Source};
use crate::journal::writer::Event;

/// A journal smaller than this is never compacted.
const COMPACT_MIN_BYTES: u64 = 64 * 1024;

/// The frame that defines a live id.
#[derive(Debug, Clone, Copy)]
struct Frame {
    seq: u64,
    len: u64,
    /// Its offset in the current file, once known.
    at: Option<u64>,
}

/// What one live id takes in the file.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Footprint {
    bytes: u64,
    frame: Option<Frame>,
}

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
    pub(super) footprint: Footprint,
}

#[derive(Debug, Default)]
pub(super) struct Footprints {
    by_id: HashMap<u64, Footprint>,
    live_bytes: u64,
    pub(super) file_bytes: u64,
    /// Defining frames handed to the writer and not yet placed: seq to id.
    unplaced: BTreeMap<u64, u64>,
    /// A rewrite handed over and not yet reported: its sequence number,
    /// the file's size then, and what it moves.
    moving: Option<(u64, u64, Vec<Moved>)>,
}

impl Footprints {
    /// A record of `len` bytes, as `seq`, at `at` if known.
    pub(super) fn track(&mut self, record: &Record, len: u64, seq: u64, at: Option<u64>) {
        self.file_bytes += len;
        let id = match record {
            // Of no job: small, and rewritten from the live view.
            Record::NextId(_) | Record::Paused { .. } => return,
            Record::Removed { id, .. } => {
                self.take(*id);
                return;
            }
            other => other.id(),
        };
        let fp = self.by_id.entry(id).or_default();
        fp.bytes += len;
        self.live_bytes += len;
        if matches!(record, Record::Added(_) | Record::Finished(_)) {
            fp.frame = Some(Frame { seq, len, at });
            if at.is_none() {
                self.unplaced.insert(seq, id);
            }
        }
    }

    /// Forgets an id; what it took.
    pub(super) fn take(&mut self, id: u64) -> Footprint {
        let fp = self.by_id.remove(&id).unwrap_or_default();
        self.live_bytes -= fp.bytes;
        fp
    }

    /// Puts back an id whose removal was not kept. Where its frame is may
    /// have changed since (a rewrite): the next rewrite encodes it.
    pub(super) fn put_back(&mut self, id: u64, mut fp: Footprint) {
        if let Some(frame) = &mut fp.frame {
            frame.at = None;
        }
        self.live_bytes += fp.bytes;
        self.by_id.insert(id, fp);
    }

    /// Starts over for a file about to be written whole.
    pub(super) fn clear(&mut self) {
        *self = Footprints::default();
    }

    /// True when dead records dominate the file.
    pub(super) fn wants_compaction(&self) -> bool {
        self.file_bytes > COMPACT_MIN_BYTES && self.file_bytes > 4 * self.live_bytes
    }

    pub(super) fn is_moving(&self) -> bool {
        self.moving.is_some()
    }

    /// Bytes a rewrite would have the loop encode (frames not in the file).
    pub(super) fn unplaced_bytes(&self) -> u64 {
        let fp = self.by_id.values();
        fp.filter(|f| f.frame.is_some_and(|f| f.at.is_none()))
            .map(|f| f.bytes)
            .sum()
    }

    /// Takes what the writer reported.
    pub(super) fn apply(&mut self, event: &Event) {
        match *event {
            Event::Placed { seq, at } => {
                if let Some(id) = self.unplaced.remove(&seq) {
                    let frame = self.by_id.get_mut(&id).and_then(|f| f.frame.as_mut());
                    if let Some(frame) = frame.filter(|f| f.seq == seq) {
                        frame.at = Some(at);
                    }
                }
            }
            Event::Lost {
                first,
                last,
                cut_off,
                ..
            } => {
                let gone: Vec<u64> = self.unplaced.range(first..=last).map(|(&s, _)| s).collect();
                for seq in gone {
                    self.unplaced.remove(&seq);
                }
                if !cut_off {
                    return;
                }
                // Placed, then cut off by a failed sync.
                for frame in self.by_id.values_mut().filter_map(|f| f.frame.as_mut()) {
                    if (first..=last).contains(&frame.seq) {
                        frame.at = None;
                    }
                }
            }
            Event::Rewritten { seq, bytes } => {
                let Some((planned, size_then, moved)) = self.moving.take() else {
                    return;
                };
                debug_assert_eq!(planned, seq);
                for frame in self.by_id.values_mut().filter_map(|f| f.frame.as_mut()) {
                    if frame.seq < seq {
                        frame.at = None;
                    }
                }
                for m in moved {
                    let Some(fp) = self.by_id.get_mut(&m.id) else {
                        continue;
                    };
                    fp.bytes = (fp.bytes + m.bytes_after).saturating_sub(m.bytes_before);
                    if let Some(frame) = fp.frame.as_mut().filter(|f| f.seq == m.seq) {
                        frame.at = Some(m.at);
                        frame.len = m.len;
                    }
                }
                self.live_bytes = self.by_id.values().map(|f| f.bytes).sum();
                self.file_bytes = bytes + self.file_bytes.saturating_sub(size_then);
            }
            Event::NotRewritten { broken, .. } => {
                self.moving = None;
                if broken {
                    for frame in self.by_id.values_mut().filter_map(|f| f.frame.as_mut()) {
                        frame.at = None;
                    }
                }
            }
        }
    }

    /// The whole file as rewrite `seq` writes it: the header, next id and
    /// paused modules,
    /// each live job (its add, copied or encoded, and its last start) or
    /// result, then the results whose removal is not kept yet, each only
    /// if that removal is lost.
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
            let fp = self.by_id.get(&id).copied().unwrap_or_default();
            let start = at;
            let len = put(&mut pieces, &mut fresh, fp, entry, &salt, None);
            at += len;
            for started in entry.started(id) {
                let before = fresh.len();
                salt.encode(&started, &mut fresh);
                at += (fresh.len() - before) as u64;
            }
            if let Some(frame) = fp.frame {
                moved.push(Moved {
                    id,
                    seq: frame.seq,
                    at: start,
                    len,
                    bytes_before: fp.bytes,
                    bytes_after: at - start,
                });
            }
        }
        flush(&mut pieces, &mut fresh, None);
        for p in pending {
            put(
                &mut pieces,
                &mut fresh,
                p.footprint,
                p.entry,
                &salt,
                Some(p.removal),
            );
            flush(&mut pieces, &mut fresh, Some(p.removal));
        }
        self.moving = Some((seq, self.file_bytes, moved));
        Plan { salt, pieces }
    }
}

/// Adds the defining frame of an id: a copy if the file has it, else
/// encoded into `fresh`. Its length.
fn put(
    pieces: &mut Vec<Piece>,
    fresh: &mut Vec<u8>,
    fp: Footprint,
    entry: &Entry,
    salt: &Salt,
    unless_kept: Option<u64>,
) -> u64 {
    match fp.frame {
        Some(Frame {
            seq,
            len,
            at: Some(at),
        }) => {
            flush(pieces, fresh, unless_kept);
            pieces.push(Piece {
                source: Source::Copy { seq, at, len },
                unless_kept,
            });
            len
        }
        _ => {
            let before = fresh.len();
            salt.encode(&entry.defining(), fresh);
            (fresh.len() - before) as u64
        }
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
