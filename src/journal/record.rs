//! The journal's record format.
//!
//! A file starts with [`MAGIC`]; then frames of
//! `[body length: u32 LE][CRC-32 of body: u32 LE][body]`. A body starts with
//! its kind byte. Integers are little-endian; byte strings and text are a
//! u32 length and the bytes. A frame whose checksum does not match (a torn
//! last write, a flipped bit) is skipped by searching forward for the next
//! frame that checks out, and reported: never mistaken for data.

use std::rc::Rc;

use crate::journal::codec::{Reader, Writer};
use crate::queue::store::Removal;
use crate::run::receipt::Receipt;

pub const MAGIC: &[u8; 8] = b"BGJOBJ1\n";

/// The longest body a frame may claim; larger lengths are corruption.
const MAX_BODY: usize = 1 << 31;

/// How a journaled job arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Queue = 1,
    Udp = 2,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// Ids below this were handed out (the start of a compacted journal).
    NextId(u64),
    Added {
        id: u64,
        transport: Transport,
        /// The UDP sender, or empty.
        peer: String,
        module: String,
        data: Rc<[u8]>,
        /// Unix time in milliseconds.
        at_ms: u64,
    },
    Started {
        id: u64,
        attempt: u32,
    },
    Finished {
        id: u64,
        module: String,
        answer: Rc<[u8]>,
        receipt: Receipt,
        at_ms: u64,
    },
    Removed {
        id: u64,
        why: Removal,
    },
}

impl Record {
    pub fn id(&self) -> u64 {
        match self {
            Record::NextId(id) => *id,
            Record::Added { id, .. }
            | Record::Started { id, .. }
            | Record::Finished { id, .. }
            | Record::Removed { id, .. } => *id,
        }
    }

    /// Appends this record as one frame.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(&[0; 8]);
        let mut w = Writer(out);
        match self {
            Record::NextId(next) => {
                w.u8(1);
                w.u64(*next);
            }
            Record::Added {
                id,
                transport,
                peer,
                module,
                data,
                at_ms,
            } => {
                w.u8(2);
                w.u64(*id);
                w.u8(*transport as u8);
                w.bytes(peer.as_bytes());
                w.bytes(module.as_bytes());
                w.bytes(data);
                w.u64(*at_ms);
            }
            Record::Started { id, attempt } => {
                w.u8(3);
                w.u64(*id);
                w.u32(*attempt);
            }
            Record::Finished {
                id,
                module,
                answer,
                receipt,
                at_ms,
            } => {
                w.u8(4);
                w.u64(*id);
                w.bytes(module.as_bytes());
                w.bytes(answer);
                w.u64(*at_ms);
                w.receipt(receipt);
            }
            Record::Removed { id, why } => {
                w.u8(5);
                w.u64(*id);
                w.u8(*why as u8);
            }
        }
        let body_len = out.len() - start - 8;
        let crc = crc32fast::hash(&out[start + 8..]);
        out[start..start + 4].copy_from_slice(&(body_len as u32).to_le_bytes());
        out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    }

    pub fn encoded_len(&self) -> usize {
        let mut v = Vec::new();
        self.encode_into(&mut v);
        v.len()
    }

    fn decode_body(body: &[u8]) -> Option<Record> {
        let mut r = Reader(body);
        let record = match r.u8()? {
            1 => Record::NextId(r.u64()?),
            2 => Record::Added {
                id: r.u64()?,
                transport: match r.u8()? {
                    1 => Transport::Queue,
                    2 => Transport::Udp,
                    _ => return None,
                },
                peer: r.text()?,
                module: r.text()?,
                data: Rc::from(r.bytes()?),
                at_ms: r.u64()?,
            },
            3 => Record::Started {
                id: r.u64()?,
                attempt: r.u32()?,
            },
            4 => Record::Finished {
                id: r.u64()?,
                module: r.text()?,
                answer: Rc::from(r.bytes()?),
                at_ms: r.u64()?,
                receipt: r.receipt()?,
            },
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
            _ => return None,
        };
        r.0.is_empty().then_some(record)
    }
}

/// What reading a journal file found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Decoded {
    pub records: Vec<Record>,
    /// Bytes that did not form valid frames (skipped, and reported).
    pub skipped_bytes: usize,
    /// Runs of bad bytes found.
    pub bad_spots: usize,
}

/// Decodes a whole journal file, skipping what does not check out.
pub fn decode_all(file: &[u8]) -> Decoded {
    let mut decoded = Decoded::default();
    let mut pos = if file.starts_with(MAGIC) {
        MAGIC.len()
    } else {
        0
    };
    let mut bad_since: Option<usize> = None;
    if pos == 0 && !file.is_empty() {
        bad_since = Some(0);
    }
    while pos < file.len() {
        match frame_at(&file[pos..]) {
            Some((record, len)) => {
                if let Some(start) = bad_since.take() {
                    decoded.skipped_bytes += pos - start;
                    decoded.bad_spots += 1;
                }
                decoded.records.push(record);
                pos += len;
            }
            None => {
                bad_since.get_or_insert(pos);
                pos += 1;
            }
        }
    }
    if let Some(start) = bad_since {
        decoded.skipped_bytes += file.len() - start;
        decoded.bad_spots += 1;
    }
    decoded
}

/// A valid frame at the start of `bytes`, and its length.
fn frame_at(bytes: &[u8]) -> Option<(Record, usize)> {
    let len = u32::from_le_bytes(bytes.get(0..4)?.try_into().ok()?) as usize;
    let crc = u32::from_le_bytes(bytes.get(4..8)?.try_into().ok()?);
    if len == 0 || len > MAX_BODY {
        return None;
    }
    let body = bytes.get(8..8 + len)?;
    if crc32fast::hash(body) != crc {
        return None;
    }
    Some((Record::decode_body(body)?, 8 + len))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::outcome::{Outcome, Usage};
    use std::time::Duration;

    #[test]
    fn frames_use_the_standard_crc32() {
        // The polynomial of every journal written so far: old files stay readable.
        assert_eq!(crc32fast::hash(b"123456789"), 0xCBF4_3926);
    }

    fn samples() -> Vec<Record> {
        vec![
            Record::NextId(7),
            Record::Added {
                id: 7,
                transport: Transport::Queue,
                peer: String::new(),
                module: "upper".into(),
                data: (0..=255).collect::<Vec<u8>>().into(),
                at_ms: 1_700_000_000_000,
            },
            Record::Started { id: 7, attempt: 2 },
            Record::Finished {
                id: 7,
                module: "upper".into(),
                answer: Rc::from(&b"DONE"[..]),
                receipt: Receipt {
                    attempts: 2,
                    outcome: Some(Outcome::Signaled(9)),
                    wall: Duration::from_millis(15),
                    usage: Usage {
                        user: Duration::from_micros(300),
                        system: Duration::from_micros(200),
                        max_rss_kib: 1234,
                    },
                    bytes_in: 256,
                    bytes_out: 4,
                    output_cut: true,
                    module_sha256: "ab".repeat(32),
                },
                at_ms: 1_700_000_000_100,
            },
            Record::Removed {
                id: 7,
                why: Removal::Fetched,
            },
        ]
    }

    fn file_of(records: &[Record]) -> Vec<u8> {
        let mut file = MAGIC.to_vec();
        for r in records {
            r.encode_into(&mut file);
        }
        file
    }

    #[test]
    fn records_round_trip() {
        let records = samples();
        let decoded = decode_all(&file_of(&records));
        assert_eq!(decoded.records, records);
        assert_eq!((decoded.skipped_bytes, decoded.bad_spots), (0, 0));
    }

    #[test]
    fn a_torn_last_record_is_ignored() {
        let records = samples();
        let file = file_of(&records);
        for cut in 1..records.last().unwrap().encoded_len() {
            let decoded = decode_all(&file[..file.len() - cut]);
            assert_eq!(decoded.records, records[..records.len() - 1], "cut {cut}");
            assert_eq!(decoded.bad_spots, 1);
        }
    }

    #[test]
    fn a_flipped_bit_loses_only_its_record() {
        let records = samples();
        let file = file_of(&records);
        let third = MAGIC.len() + records[0].encoded_len() + records[1].encoded_len();
        for offset in [third, third + 3, third + 5, third + 9, third + 12] {
            let mut bad = file.clone();
            bad[offset] ^= 0x10;
            let decoded = decode_all(&bad);
            let mut expected = records.clone();
            expected.remove(2);
            assert_eq!(decoded.records, expected, "flip at {offset}");
            assert_eq!(decoded.bad_spots, 1);
        }
    }

    #[test]
    fn garbage_yields_no_records() {
        let decoded = decode_all(b"this is not a journal at all, not even close");
        assert!(decoded.records.is_empty());
        assert_eq!(decoded.bad_spots, 1);
    }
}
