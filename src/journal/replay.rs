//! Replaying a journal at start without holding the file in memory: frames
//! are read one at a time from the file, each applied and dropped, so what
//! stays is the live view alone. Damage is skipped as `frame.rs` describes
//! (a long claimed frame has its checksum computed while reading, not after
//! holding it); a file of the first format is small by then and read whole.

use std::fs::File;
use std::io::{self, BufReader, ErrorKind, Read, Seek};
use std::path::Path;

use crate::journal::frame::{decode_all, find, Salt, HEADER_LEN, MAX_BODY};
use crate::journal::header::{judge, FirstFrame, HeaderState, Reading};
use crate::journal::record::{Format, Record};

/// A body longer than this has its checksum computed before it is held.
const HOLD_UNCHECKED: u64 = 1 << 20;
/// Bytes read at a time when searching or checking.
const CHUNK: usize = 64 * 1024;

/// What replaying a file found besides its records.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Damage {
    pub skipped_bytes: u64,
    pub bad_spots: usize,
    pub format: Option<Format>,
    /// What the header turned out to be.
    pub header: HeaderState,
    /// Records read.
    pub records: u64,
}

impl Damage {
    fn bad(&mut self, from: u64, to: u64) {
        if to > from {
            self.skipped_bytes += to - from;
            self.bad_spots += 1;
        }
    }

    /// True when nothing of the file could be read though it held
    /// something: its header is unreadable, or not one record verified.
    /// Such a file must not be overwritten.
    pub fn lost_everything(&self) -> bool {
        self.header == HeaderState::Unreadable || (self.records == 0 && self.skipped_bytes > 0)
    }
}

/// Reads the journal at `path` (missing: empty), handing each valid
/// record to `apply` in order.
pub fn replay(path: &Path, apply: impl FnMut(Record)) -> io::Result<Damage> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Damage::default()),
        Err(e) => return Err(e),
    };
    let size = file.metadata()?.len();
    replay_from(file, size, apply)
}

/// As [`replay`], for a journal held in memory (the fuzz target's entry).
pub fn replay_bytes(bytes: &[u8], apply: impl FnMut(Record)) -> io::Result<Damage> {
    replay_from(io::Cursor::new(bytes), bytes.len() as u64, apply)
}

/// Reads a journal of `size` bytes from `source`, frame by frame.
pub fn replay_from<R: Read + Seek>(
    source: R,
    size: u64,
    mut apply: impl FnMut(Record),
) -> io::Result<Damage> {
    let mut r = Cursor {
        r: BufReader::with_capacity(256 * 1024, source),
        pos: 0,
    };
    let mut head = vec![0u8; size.min(HEADER_LEN as u64) as usize];
    r.read_at(0, &mut head)?;
    let first = r.first_frame(size)?;
    let mut damage = Damage::default();
    let salt = match judge(&head, first.as_ref()) {
        Reading::Nothing => return Ok(damage),
        Reading::Salted(salt, state) => {
            damage.header = state;
            Salt(salt)
        }
        Reading::Unreadable => {
            // Nothing to read: the file is not held, only reported.
            damage.header = HeaderState::Unreadable;
            damage.bad(0, size);
            return Ok(damage);
        }
        Reading::V1 => {
            // The first format: small by now, read whole, once.
            let mut bytes = Vec::new();
            r.goto(0)?;
            r.r.read_to_end(&mut bytes)?;
            let decoded = decode_all(&bytes);
            drop(bytes);
            let damage = Damage {
                skipped_bytes: decoded.skipped_bytes as u64,
                bad_spots: decoded.bad_spots,
                format: decoded.format,
                header: decoded.header,
                records: decoded.records.len() as u64,
            };
            decoded.records.into_iter().for_each(apply);
            return Ok(damage);
        }
    };
    damage.format = Some(Format::V2);
    let mut pos = HEADER_LEN as u64;
    while pos < size {
        if let Some((record, len)) = r.frame_at(pos, size, &salt)? {
            apply(record);
            damage.records += 1;
            pos += len;
            continue;
        }
        let next = r.find_marker(pos + 1, size, salt.marker())?;
        damage.bad(pos, next);
        pos = next;
    }
    Ok(damage)
}

/// A buffered reader that knows where it is.
struct Cursor<R> {
    r: BufReader<R>,
    pos: u64,
}

impl<R: Read + Seek> Cursor<R> {
    fn goto(&mut self, pos: u64) -> io::Result<()> {
        if pos != self.pos {
            self.r.seek_relative(pos as i64 - self.pos as i64)?;
            self.pos = pos;
        }
        Ok(())
    }

    fn read_at(&mut self, pos: u64, buf: &mut [u8]) -> io::Result<()> {
        self.goto(pos)?;
        self.r.read_exact(buf)?;
        self.pos += buf.len() as u64;
        Ok(())
    }

    /// The frame after the header, its body's checksum computed in
    /// chunks (it is not held), for `header.rs` to try salts on.
    fn first_frame(&mut self, size: u64) -> io::Result<Option<FirstFrame>> {
        if size < HEADER_LEN as u64 + 16 {
            return Ok(None);
        }
        let mut head = [0u8; 16];
        self.read_at(HEADER_LEN as u64, &mut head)?;
        let Some(len) = FirstFrame::claimed_len(&head, size) else {
            return Ok(None);
        };
        let mut first = FirstFrame::start(&head);
        let mut chunk = vec![0u8; CHUNK.min(len as usize)];
        let mut left = len as usize;
        while left > 0 {
            let n = left.min(CHUNK);
            self.r.read_exact(&mut chunk[..n])?;
            self.pos += n as u64;
            first.rest.update(&chunk[..n]);
            left -= n;
        }
        Ok(Some(first))
    }

    /// The valid frame at `pos`, and its length.
    fn frame_at(&mut self, pos: u64, size: u64, salt: &Salt) -> io::Result<Option<(Record, u64)>> {
        if pos + 16 > size {
            return Ok(None);
        }
        let mut head = [0u8; 16];
        self.read_at(pos, &mut head)?;
        let len = u32::from_le_bytes(head[8..12].try_into().expect("4 bytes"));
        let crc = u32::from_le_bytes(head[12..16].try_into().expect("4 bytes"));
        let body_at = pos + 16;
        if &head[..8] != salt.marker()
            || len == 0
            || len as usize > MAX_BODY
            || body_at + len as u64 > size
        {
            return Ok(None);
        }
        if len as u64 > HOLD_UNCHECKED {
            // Check before holding: damage may claim a long frame.
            let mut hasher = salt.hasher(len);
            let mut chunk = vec![0u8; CHUNK];
            let mut left = len as usize;
            while left > 0 {
                let n = left.min(CHUNK);
                self.r.read_exact(&mut chunk[..n])?;
                self.pos += n as u64;
                hasher.update(&chunk[..n]);
                left -= n;
            }
            if hasher.finalize() != crc {
                return Ok(None);
            }
        }
        let mut body = vec![0u8; len as usize];
        self.read_at(body_at, &mut body)?;
        let mut hasher = salt.hasher(len);
        hasher.update(&body);
        if hasher.finalize() != crc {
            return Ok(None);
        }
        Ok(Record::decode_body(&body, Format::V2).map(|r| (r, 16 + len as u64)))
    }

    /// The next place `marker` starts at or after `from`, or `size`.
    fn find_marker(&mut self, from: u64, size: u64, marker: &[u8]) -> io::Result<u64> {
        let mut at = from;
        let mut chunk = vec![0u8; CHUNK];
        while at < size {
            let n = (size - at).min(CHUNK as u64) as usize;
            self.read_at(at, &mut chunk[..n])?;
            if let Some(i) = find(&chunk[..n], marker) {
                return Ok(at + i as u64);
            }
            if at + n as u64 >= size {
                break;
            }
            // Overlap, so a marker across two chunks is found.
            at += (n - (marker.len() - 1)) as u64;
        }
        Ok(size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::record::{Added, Transport};
    use std::rc::Rc;

    fn added(id: u64, len: usize) -> Record {
        Record::Added(Added {
            id,
            counter: id,
            owner: "o".into(),
            transport: Transport::Queue,
            peer: String::new(),
            module: "m".into(),
            data: Rc::from(vec![7u8; len]),
            at_ms: 0,
            options: Default::default(),
        })
    }

    /// Replays bytes through a file; the records and the damage.
    fn through_file(bytes: &[u8]) -> (Vec<Record>, Damage) {
        let dir = std::env::temp_dir().join(format!("bgjob-replay-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("j{}", bytes.len()));
        std::fs::write(&path, bytes).unwrap();
        let mut records = Vec::new();
        let damage = replay(&path, |r| records.push(r)).unwrap();
        std::fs::remove_file(&path).unwrap();
        (records, damage)
    }

    #[test]
    fn streaming_replay_reads_what_the_whole_file_decoder_reads() {
        let salt = Salt([3; 16]);
        let records = vec![added(1, 10), added(2, 3 << 20), added(3, 10), added(4, 100)];
        let mut file = salt.header();
        let mut starts = Vec::new();
        for r in &records {
            starts.push(file.len());
            salt.encode(r, &mut file);
        }
        let (got, damage) = through_file(&file);
        assert_eq!(got, records);
        assert_eq!(damage.bad_spots, 0);
        // A flipped byte in the large record, a torn tail.
        let mut bad = file.clone();
        bad[starts[1] + 100_000] ^= 1;
        bad.truncate(bad.len() - 5);
        let (got, damage) = through_file(&bad);
        assert_eq!(got, vec![records[0].clone(), records[2].clone()]);
        assert_eq!(damage.bad_spots, 2);
        let whole = decode_all(&bad);
        assert_eq!(whole.records, got);
        assert_eq!(whole.skipped_bytes as u64, damage.skipped_bytes);
    }

    #[test]
    fn a_missing_file_is_an_empty_journal() {
        let path = std::env::temp_dir().join("bgjob-replay-no-such-file");
        assert_eq!(replay(&path, |_| panic!()).unwrap(), Damage::default());
    }
}
