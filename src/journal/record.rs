//! The journal's records: what each says and how its body is encoded.
//! Framing, salt and damage are `frame.rs`'s.
//!
//! A body starts with its kind byte. Integers are little-endian; byte
//! strings and text are a u32 length and the bytes. Bodies of the first
//! format ([`Format::V1`]) lack the owner, the counter and the client; they
//! are read once, at the start that rewrites the file.

use std::rc::Rc;

use crate::journal::codec::{Reader, Writer};
use crate::queue::attempts::{Again, Attempt};
use crate::queue::options::JobOptions;
use crate::queue::store::Removal;
use crate::run::receipt::Receipt;

/// The highest id counter a record may carry: ids are a permutation of
/// counters below 2^53, so that JavaScript and PHP clients keep them exact.
pub const MAX_COUNTER: u64 = 1 << 53;

/// Which body layout a file uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Header-less frames, sequential ids, no owners.
    V1,
    /// Salted frames; jobs carry their owner, counter and client.
    V2,
}

/// How a journaled job arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Queue = 1,
    Udp = 2,
}

/// A job accepted under `id`: what it takes to run it again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Added {
    pub id: u64,
    /// The counter the id was made from.
    pub counter: u64,
    /// The listener it was added on (empty: any, for old journals).
    pub owner: String,
    pub transport: Transport,
    /// The client's address (for UDP, with its port), or empty.
    pub peer: String,
    pub module: String,
    pub data: Rc<[u8]>,
    /// Unix time in milliseconds.
    pub at_ms: u64,
    /// What it asked for on `queue:add` (none in journals written before
    /// options existed: they read as the defaults).
    pub options: JobOptions,
}

/// A finished job's result, until it is fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    pub id: u64,
    pub owner: String,
    /// The client's address, or empty.
    pub peer: String,
    pub module: String,
    pub answer: Rc<[u8]>,
    pub receipt: Receipt,
    pub at_ms: u64,
    /// Every attempt it made (none in older journals).
    pub tries: Vec<Attempt>,
    /// A failed job's data and options, for `queue:retry`.
    pub again: Option<Box<Again>>,
    /// Its `key` option: a repeat add answers its id until it is fetched.
    pub key: Option<Vec<u8>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// Id counters below this were used (the start of a compacted journal).
    NextId(u64),
    /// A job accepted.
    Added(Added),
    Started {
        id: u64,
        attempt: u32,
    },
    /// A job's result, kept until fetched.
    Finished(Finished),
    Removed {
        id: u64,
        why: Removal,
    },
    /// An attempt of job `id` failed; `retry_at_ms` says when it runs again.
    Attempt {
        id: u64,
        attempt: Attempt,
    },
    /// The starting of a module's queued jobs was stopped (`paused`) or
    /// restarted (`queue:pause`, `queue:resume`); the last one counts.
    Paused {
        module: String,
        paused: bool,
    },
}

impl Record {
    pub fn id(&self) -> u64 {
        match self {
            Record::NextId(id) => *id,
            Record::Added(Added { id, .. })
            | Record::Started { id, .. }
            | Record::Finished(Finished { id, .. })
            | Record::Removed { id, .. }
            | Record::Attempt { id, .. } => *id,
            // Of no job.
            Record::Paused { .. } => 0,
        }
    }

    /// Appends this record's body (in the current format).
    pub fn encode_body(&self, out: &mut Vec<u8>) {
        let mut w = Writer(out);
        match self {
            Record::NextId(next) => {
                w.u8(1);
                w.u64(*next);
            }
            Record::Added(Added {
                id,
                counter,
                owner,
                transport,
                peer,
                module,
                data,
                at_ms,
                options,
            }) => {
                w.u8(2);
                w.u64(*id);
                w.u64(*counter);
                w.bytes(owner.as_bytes());
                w.u8(*transport as u8);
                w.bytes(peer.as_bytes());
                w.bytes(module.as_bytes());
                w.bytes(data);
                w.u64(*at_ms);
                w.options(options);
            }
            Record::Started { id, attempt } => {
                w.u8(3);
                w.u64(*id);
                w.u32(*attempt);
            }
            Record::Finished(Finished {
                id,
                owner,
                peer,
                module,
                answer,
                receipt,
                at_ms,
                tries,
                again,
                key,
            }) => {
                w.u8(4);
                w.u64(*id);
                w.bytes(owner.as_bytes());
                w.bytes(peer.as_bytes());
                w.bytes(module.as_bytes());
                w.bytes(answer);
                w.u64(*at_ms);
                w.receipt(receipt);
                w.u32(tries.len() as u32);
                for attempt in tries {
                    w.attempt(attempt);
                }
                w.u8(again.is_some() as u8);
                if let Some(again) = again {
                    w.bytes(&again.data);
                    w.options(&again.options);
                }
                w.u8(key.is_some() as u8);
                w.bytes(key.as_deref().unwrap_or_default());
            }
            Record::Removed { id, why } => {
                w.u8(5);
                w.u64(*id);
                w.u8(*why as u8);
            }
            Record::Attempt { id, attempt } => {
                w.u8(6);
                w.u64(*id);
                w.attempt(attempt);
            }
            Record::Paused { module, paused } => {
                w.u8(7);
                w.bytes(module.as_bytes());
                w.u8(u8::from(*paused));
            }
        }
    }

    /// Decodes a body of `format`; `None` if it does not parse whole or
    /// carries a counter out of range.
    pub fn decode_body(body: &[u8], format: Format) -> Option<Record> {
        let v2 = format == Format::V2;
        let mut r = Reader(body);
        let record = match r.u8()? {
            1 => Record::NextId(r.u64()?).checked()?,
            2 => {
                let id = r.u64()?;
                Record::Added(Added {
                    id,
                    counter: if v2 { r.u64()? } else { id },
                    owner: if v2 { r.text()? } else { String::new() },
                    transport: match r.u8()? {
                        1 => Transport::Queue,
                        2 => Transport::Udp,
                        _ => return None,
                    },
                    peer: r.text()?,
                    module: r.text()?,
                    data: Rc::from(r.bytes()?),
                    at_ms: r.u64()?,
                    // Records written before options end here.
                    options: match r.0.is_empty() {
                        true => JobOptions::default(),
                        false => r.options()?,
                    },
                })
                .checked()?
            }
            3 => Record::Started {
                id: r.u64()?,
                attempt: r.u32()?,
            },
            4 => Record::Finished(Finished {
                // Records written before attempts end after the receipt.
                id: r.u64()?,
                owner: if v2 { r.text()? } else { String::new() },
                peer: if v2 { r.text()? } else { String::new() },
                module: r.text()?,
                answer: Rc::from(r.bytes()?),
                at_ms: r.u64()?,
                receipt: r.receipt()?,
                tries: match r.0.is_empty() {
                    true => Vec::new(),
                    false => {
                        let n = r.u32()?;
                        (0..n).map(|_| r.attempt()).collect::<Option<_>>()?
                    }
                },
                again: match r.0.is_empty() {
                    true => None,
                    false if r.u8()? == 0 => None,
                    false => Some(Box::new(Again {
                        data: Rc::from(r.bytes()?),
                        options: r.options()?,
                    })),
                },
                key: match r.0.is_empty() {
                    true => None,
                    false => {
                        let (has, key) = (r.u8()? != 0, r.bytes()?.to_vec());
                        has.then_some(key)
                    }
                },
            }),
            5 => Record::Removed {
                id: r.u64()?,
                why: match r.u8()? {
                    1 => Removal::Fetched,
                    2 => Removal::Expired,
                    3 => Removal::Cancelled,
                    4 => Removal::Done,
                    5 => Removal::Dropped,
                    _ => return None,
                },
            },
            6 => Record::Attempt {
                id: r.u64()?,
                attempt: r.attempt()?,
            },
            7 => Record::Paused {
                module: r.text()?,
                paused: match r.u8()? {
                    0 => false,
                    1 => true,
                    _ => return None,
                },
            },
            _ => return None,
        };
        r.0.is_empty().then_some(record)
    }

    /// `None` for a counter that would overflow the id space.
    fn checked(self) -> Option<Record> {
        let ok = match &self {
            Record::NextId(next) => *next <= MAX_COUNTER,
            Record::Added(Added { counter, .. }) => *counter < MAX_COUNTER,
            _ => true,
        };
        ok.then_some(self)
    }
}

#[cfg(test)]
#[path = "record_tests.rs"]
mod tests;
