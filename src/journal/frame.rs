//! How records sit in a journal file, as SQLite's WAL does it: the file
//! starts with [`MAGIC`] and 16 random bytes of salt (new at every
//! rewrite); every frame is
//! `[salt's first 8 bytes][body length: u32 LE][CRC-32 of salt, length and body: u32 LE][body]`.
//! No byte string a client sends can be a valid frame of this file, since
//! it would have to hold the salt, which never leaves the state folder.
//!
//! A frame that does not check out (a torn last write, a flipped bit) is
//! skipped: the reader looks for the next place where the salt's first 8
//! bytes appear and checks the frame there, so resynchronising is linear
//! in the file's size. Files of the first format ([`MAGIC_V1`], no salt)
//! are still read, once, by the start that rewrites them.

use crate::journal::header::{judge, FirstFrame, HeaderState, Reading};
use crate::journal::record::{Format, Record};

pub use crate::journal::header::{HEADER_LEN, MAGIC, MAGIC_V1, MAX_BODY};

/// A file's random salt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Salt(pub [u8; 16]);

impl Salt {
    /// 16 bytes from the kernel's random source.
    pub fn random() -> std::io::Result<Salt> {
        let mut salt = [0u8; 16];
        fill_random(&mut salt)?;
        Ok(Salt(salt))
    }

    pub fn marker(&self) -> &[u8] {
        &self.0[..8]
    }

    /// The file header this salt starts.
    pub fn header(&self) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&self.0);
        out
    }

    fn checksum(&self, len: u32, body: &[u8]) -> u32 {
        let mut h = self.hasher(len);
        h.update(body);
        h.finalize()
    }

    /// A checksum of a frame of `len` bytes, to be fed its body.
    pub(super) fn hasher(&self, len: u32) -> crc32fast::Hasher {
        let mut h = crc32fast::Hasher::new();
        h.update(&self.0);
        h.update(&len.to_le_bytes());
        h
    }

    /// Appends `record` as one frame of a file with this salt.
    pub fn encode(&self, record: &Record, out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(self.marker());
        out.extend_from_slice(&[0; 8]);
        record.encode_body(out);
        let len = (out.len() - start - 16) as u32;
        let crc = self.checksum(len, &out[start + 16..]);
        out[start + 8..start + 12].copy_from_slice(&len.to_le_bytes());
        out[start + 12..start + 16].copy_from_slice(&crc.to_le_bytes());
    }
}

/// Fills `buf` from `getrandom(2)`.
pub fn fill_random(buf: &mut [u8]) -> std::io::Result<()> {
    let mut filled = 0;
    while filled < buf.len() {
        let rest = &mut buf[filled..];
        // SAFETY: the kernel writes at most `rest.len()` bytes into `rest`.
        let n = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        filled += n as usize;
    }
    Ok(())
}

/// What reading a journal file found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Decoded {
    pub records: Vec<Record>,
    /// Bytes that did not form valid frames (skipped, and reported).
    pub skipped_bytes: usize,
    /// Runs of bad bytes found.
    pub bad_spots: usize,
    /// The file's format, if its header said.
    pub format: Option<Format>,
    /// What its header turned out to be.
    pub header: HeaderState,
}

impl Decoded {
    fn bad(&mut self, from: usize, to: usize) {
        if to > from {
            self.skipped_bytes += to - from;
            self.bad_spots += 1;
        }
    }
}

/// Decodes a whole journal file, skipping what does not check out; a
/// damaged header is read as `header.rs` says.
pub fn decode_all(file: &[u8]) -> Decoded {
    let mut decoded = Decoded::default();
    let head = &file[..file.len().min(HEADER_LEN)];
    match judge(head, FirstFrame::of(file).as_ref()) {
        Reading::Nothing => {}
        Reading::Salted(salt, state) => {
            decoded.format = Some(Format::V2);
            decoded.header = state;
            decode_salted(file, &Salt(salt), &mut decoded);
        }
        Reading::V1 => {
            decoded.format = Some(Format::V1);
            decoded.header = HeaderState::Intact;
            decode_v1(file, &mut decoded);
        }
        Reading::Unreadable => {
            decoded.header = HeaderState::Unreadable;
            decoded.bad(0, file.len());
        }
    }
    decoded
}

fn decode_salted(file: &[u8], salt: &Salt, decoded: &mut Decoded) {
    let mut pos = HEADER_LEN;
    while pos < file.len() {
        if let Some((record, len)) = salted_frame_at(&file[pos..], salt) {
            decoded.records.push(record);
            pos += len;
            continue;
        }
        // Damage: the next frame starts where the marker appears again.
        let next = find(&file[pos + 1..], salt.marker()).map_or(file.len(), |i| pos + 1 + i);
        decoded.bad(pos, next);
        pos = next;
    }
}

/// A valid frame at the start of `bytes`, and its length.
fn salted_frame_at(bytes: &[u8], salt: &Salt) -> Option<(Record, usize)> {
    if bytes.get(..8)? != salt.marker() {
        return None;
    }
    let len = u32::from_le_bytes(bytes.get(8..12)?.try_into().ok()?);
    let crc = u32::from_le_bytes(bytes.get(12..16)?.try_into().ok()?);
    if len == 0 || len as usize > MAX_BODY {
        return None;
    }
    let body = bytes.get(16..16 + len as usize)?;
    if salt.checksum(len, body) != crc {
        return None;
    }
    Some((Record::decode_body(body, Format::V2)?, 16 + len as usize))
}

/// The first place `needle` occurs in `hay`; linear.
pub(super) fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let first = needle[0];
    let mut from = 0;
    while let Some(i) = hay[from..].iter().position(|&b| b == first) {
        let at = from + i;
        if hay.get(at..at + needle.len())? == needle {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

/// The first format: `[length][CRC-32 of body][body]` after the magic,
/// searched byte by byte after damage. Read once, then rewritten.
fn decode_v1(file: &[u8], decoded: &mut Decoded) {
    let mut pos = MAGIC_V1.len();
    let mut bad_since: Option<usize> = None;
    while pos < file.len() {
        match v1_frame_at(&file[pos..]) {
            Some((record, len)) => {
                if let Some(start) = bad_since.take() {
                    decoded.bad(start, pos);
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
        decoded.bad(start, file.len());
    }
}

fn v1_frame_at(bytes: &[u8]) -> Option<(Record, usize)> {
    let len = u32::from_le_bytes(bytes.get(0..4)?.try_into().ok()?) as usize;
    let crc = u32::from_le_bytes(bytes.get(4..8)?.try_into().ok()?);
    if len == 0 || len > MAX_BODY {
        return None;
    }
    let body = bytes.get(8..8 + len)?;
    if crc32fast::hash(body) != crc {
        return None;
    }
    Some((Record::decode_body(body, Format::V1)?, 8 + len))
}

#[cfg(test)]
#[path = "frame_tests.rs"]
pub(super) mod tests;
