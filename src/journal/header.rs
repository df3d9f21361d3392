//! Reading a journal's header when it may be damaged. A current header is
//! [`MAGIC`] and 16 bytes of salt; every frame repeats the salt's first 8
//! bytes and has a checksum over the whole salt, so the frames themselves
//! say what the salt was. The header is read as the first frame after it
//! confirms: a damaged magic is ignored when the salt verifies that frame,
//! and a damaged salt is rebuilt from the frame's marker (its first half)
//! or found among the 2,040 salts one byte away from the header's (its
//! second half). One damaged byte in the header so costs no record.
//!
//! Journals written so far keep being read as they are: the header format
//! does not change, only how a damaged one is read. The one risk: when the
//! header is whole but the first frame is damaged, one of the 2,040 salts
//! tried could verify that frame by chance (about 1 in 2 million), and the
//! file would be read under a wrong salt: nothing read, and kept aside.

/// The first bytes of a current journal.
pub const MAGIC: &[u8; 8] = b"BGJOBJ2\n";
/// The first bytes of a journal of the first format.
pub const MAGIC_V1: &[u8; 8] = b"BGJOBJ1\n";
/// Bytes before the first frame: magic and salt.
pub const HEADER_LEN: usize = 8 + 16;
/// The longest body a frame may claim; larger lengths are corruption.
pub const MAX_BODY: usize = 1 << 31;

/// A salt, as bytes (`frame.rs` wraps it).
type SaltBytes = [u8; 16];

/// What a journal's header turned out to be.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum HeaderState {
    /// No file, or an empty one: a new journal.
    #[default]
    Missing,
    /// The header checked out as written.
    Intact,
    /// The header was damaged; its salt was found again from the records.
    Rebuilt,
    /// Not a journal header, and no salt verifies the first frame.
    Unreadable,
}

/// How the file's salted frames are to be read, or that they are not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reading {
    /// An empty file.
    Nothing,
    /// The first format: no salt.
    V1,
    /// Salted frames under this salt, from [`HEADER_LEN`] on.
    Salted(SaltBytes, HeaderState),
    /// Nothing can be read.
    Unreadable,
}

/// The frame that follows the header, as found in the file: its marker,
/// claimed length and checksum, and a checksum of its length and body, so
/// any salt can be tried on it without reading the body again.
pub struct FirstFrame {
    pub marker: [u8; 8],
    pub crc: u32,
    /// CRC-32 state over the length field and the body.
    pub rest: crc32fast::Hasher,
}

impl FirstFrame {
    /// The first frame's fixed part (16 bytes at [`HEADER_LEN`]), if its
    /// length could be a frame within a file of `size` bytes: the length.
    pub fn claimed_len(head: &[u8; 16], size: u64) -> Option<u32> {
        let len = u32::from_le_bytes(head[8..12].try_into().expect("4 bytes"));
        let end = HEADER_LEN as u64 + 16 + len as u64;
        (len > 0 && len as usize <= MAX_BODY && end <= size).then_some(len)
    }

    /// Starts a first frame from its fixed part; the body is fed to `rest`.
    pub fn start(head: &[u8; 16]) -> FirstFrame {
        let mut rest = crc32fast::Hasher::new();
        rest.update(&head[8..12]);
        FirstFrame {
            marker: head[..8].try_into().expect("8 bytes"),
            crc: u32::from_le_bytes(head[12..16].try_into().expect("4 bytes")),
            rest,
        }
    }

    /// The first frame of a file held whole.
    pub fn of(file: &[u8]) -> Option<FirstFrame> {
        let head: &[u8; 16] = file.get(HEADER_LEN..HEADER_LEN + 16)?.try_into().ok()?;
        let len = FirstFrame::claimed_len(head, file.len() as u64)?;
        let mut first = FirstFrame::start(head);
        first
            .rest
            .update(&file[HEADER_LEN + 16..HEADER_LEN + 16 + len as usize]);
        Some(first)
    }

    /// True when `salt` makes this frame check out.
    fn verifies(&self, salt: &SaltBytes) -> bool {
        if salt[..8] != self.marker {
            return false;
        }
        let mut h = crc32fast::Hasher::new();
        h.update(salt);
        h.combine(&self.rest);
        h.finalize() == self.crc
    }
}

/// How to read a file that starts with `head` (its first [`HEADER_LEN`]
/// bytes, or all of it if shorter) and whose first frame is `first`.
pub fn judge(head: &[u8], first: Option<&FirstFrame>) -> Reading {
    if head.is_empty() {
        return Reading::Nothing;
    }
    let magic_ok = head.starts_with(MAGIC);
    let written: Option<SaltBytes> = head.get(8..HEADER_LEN).and_then(|s| s.try_into().ok());
    if let (Some(written), Some(first)) = (written, first) {
        if first.verifies(&written) {
            let state = if magic_ok {
                HeaderState::Intact
            } else {
                HeaderState::Rebuilt
            };
            return Reading::Salted(written, state);
        }
        // Checked before the first format's magic: a salted file whose
        // magic was damaged into it is still read as salted.
        if let Some(salt) = candidates(&written, &first.marker).find(|s| first.verifies(s)) {
            return Reading::Salted(salt, HeaderState::Rebuilt);
        }
    }
    if head.starts_with(MAGIC_V1) {
        return Reading::V1;
    }
    match written {
        // The first frame is damaged (or there is none): trust the header.
        Some(written) if magic_ok => Reading::Salted(written, HeaderState::Intact),
        _ if one_byte_off(&head[..head.len().min(8)], MAGIC_V1) => Reading::V1,
        _ => Reading::Unreadable,
    }
}

/// Salts one damaged byte away from `written`, given the marker the first
/// frame carries: the marker as the first half (damage there), then each
/// byte of the second half replaced by every other value.
fn candidates<'a>(
    written: &'a SaltBytes,
    marker: &'a [u8; 8],
) -> impl Iterator<Item = SaltBytes> + 'a {
    let mut base = *written;
    base[..8].copy_from_slice(marker);
    let second_half = (8..16).flat_map(move |at| {
        (0..=255u8).filter(move |&v| v != base[at]).map(move |v| {
            let mut salt = base;
            salt[at] = v;
            salt
        })
    });
    std::iter::once(base).chain(second_half)
}

fn one_byte_off(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).filter(|(x, y)| x != y).count() == 1
}

#[cfg(test)]
#[path = "header_tests.rs"]
mod tests;
