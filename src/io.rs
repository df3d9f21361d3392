//! Non-blocking I/O rules in one place, as mio's docs ask: after a readiness
//! event, read or write until `WouldBlock`; retry `Interrupted`; a read of 0
//! bytes is the peer closing.

use std::io::{self, ErrorKind, Read, Write};
use std::rc::Rc;

/// Bytes waiting to be written, with how far the writing got. Serves TCP
/// answers and child stdin alike, so a partial write is never lost.
#[derive(Debug, Default)]
pub struct OutBuf {
    bytes: Vec<u8>,
    pos: usize,
}

impl OutBuf {
    pub fn new(bytes: Vec<u8>) -> Self {
        OutBuf { bytes, pos: 0 }
    }

    /// Adds bytes at the end, dropping what was already written first
    /// (all of it, or once it is most of the buffer: a stream that never
    /// drains whole must not keep every byte it ever wrote).
    pub fn push(&mut self, more: &[u8]) {
        if self.pos == self.bytes.len() {
            self.bytes.clear();
            self.pos = 0;
        } else if self.pos >= self.bytes.len() / 2 {
            self.bytes.drain(..self.pos);
            self.pos = 0;
        }
        self.bytes.extend_from_slice(more);
    }

    pub fn is_empty(&self) -> bool {
        self.pos == self.bytes.len()
    }

    /// Unwritten bytes.
    pub fn len(&self) -> usize {
        self.bytes.len() - self.pos
    }

    /// The bytes not yet written.
    pub fn pending(&self) -> &[u8] {
        &self.bytes[self.pos..]
    }

    /// Forgets everything not yet written, releasing the memory.
    pub fn discard(&mut self) {
        self.bytes = Vec::new();
        self.pos = 0;
    }

    /// Writes until done (`Ok(true)`) or the writer would block (`Ok(false)`).
    pub fn write_to<W: Write>(&mut self, w: W) -> io::Result<bool> {
        let done = write_from(&self.bytes, &mut self.pos, w)?;
        if done {
            self.discard();
        }
        Ok(done)
    }
}

/// The one read buffer for every socket and pipe: allocated at the first
/// read, and released when the daemon is at rest (64 KiB the idle daemon
/// would otherwise keep).
#[derive(Debug, Default)]
pub struct ReadBuffer(Vec<u8>);

impl ReadBuffer {
    /// Bytes read at most at once.
    pub const SIZE: usize = 64 * 1024;

    /// The buffer, allocated if it was released.
    pub fn get(&mut self) -> &mut [u8] {
        if self.0.is_empty() {
            self.0 = vec![0; Self::SIZE];
        }
        &mut self.0
    }

    /// Takes the buffer out (to read while the owner is borrowed);
    /// `put` gives it back.
    pub fn take(&mut self) -> Vec<u8> {
        self.get();
        std::mem::take(&mut self.0)
    }

    pub fn put(&mut self, buf: Vec<u8>) {
        self.0 = buf;
    }

    /// Frees the buffer; the next read allocates it again.
    pub fn release(&mut self) {
        self.0 = Vec::new();
    }

    /// True while the buffer is allocated.
    pub fn held(&self) -> bool {
        !self.0.is_empty()
    }
}

/// An answer being written to a client. Its bytes are shared, so that one
/// result sent to many clients waiting in `queue:get` is held once.
#[derive(Debug)]
pub struct SharedOut {
    bytes: Rc<[u8]>,
    pos: usize,
}

impl SharedOut {
    pub fn new(bytes: Rc<[u8]>) -> Self {
        SharedOut { bytes, pos: 0 }
    }

    /// Writes until done (`Ok(true)`) or the writer would block (`Ok(false)`).
    pub fn write_to<W: Write>(&mut self, w: W) -> io::Result<bool> {
        write_from(&self.bytes, &mut self.pos, w)
    }
}

/// Writes `bytes[*pos..]` until done or the writer would block, moving `pos`.
fn write_from<W: Write>(bytes: &[u8], pos: &mut usize, mut w: W) -> io::Result<bool> {
    while *pos < bytes.len() {
        match w.write(&bytes[*pos..]) {
            Ok(0) => return Err(ErrorKind::WriteZero.into()),
            Ok(n) => *pos += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// Whether a reader can still produce bytes after draining it.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum ReadEnd {
    /// Nothing more for now; wait for the next readiness event.
    Open,
    /// The other side closed (read returned 0).
    Eof,
}

/// What one read of a non-blocking source gave.
#[derive(Debug)]
pub enum ReadResult {
    Data(usize),
    /// The other side closed (read returned 0).
    Eof,
    /// Nothing more until the next readiness event.
    Blocked,
    Failed(io::Error),
}

/// One read, retrying `Interrupted`.
pub fn read_once<R: Read>(mut r: R, buf: &mut [u8]) -> ReadResult {
    loop {
        return match r.read(buf) {
            Ok(0) => ReadResult::Eof,
            Ok(n) => ReadResult::Data(n),
            Err(e) if e.kind() == ErrorKind::WouldBlock => ReadResult::Blocked,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => ReadResult::Failed(e),
        };
    }
}

/// Reads until `WouldBlock` or end of stream, handing each chunk to `sink`.
/// `sink` returns false to stop early (e.g. a size limit was hit); the
/// reader then counts as open, and the caller decides what to do with it.
pub fn drain<R: Read>(
    mut r: R,
    scratch: &mut [u8],
    mut sink: impl FnMut(&[u8]) -> bool,
) -> io::Result<ReadEnd> {
    loop {
        match read_once(&mut r, scratch) {
            ReadResult::Data(n) => {
                if !sink(&scratch[..n]) {
                    return Ok(ReadEnd::Open);
                }
            }
            ReadResult::Eof => return Ok(ReadEnd::Eof),
            ReadResult::Blocked => return Ok(ReadEnd::Open),
            ReadResult::Failed(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that takes at most `room` bytes, then would block.
    struct Narrow {
        taken: Vec<u8>,
        room: usize,
    }

    impl Write for Narrow {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.room == 0 {
                return Err(ErrorKind::WouldBlock.into());
            }
            let n = buf.len().min(self.room).min(3);
            self.room -= n;
            self.taken.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn partial_writes_resume_where_they_stopped() {
        let mut out = OutBuf::new(b"hello world".to_vec());
        let mut w = Narrow {
            taken: vec![],
            room: 5,
        };
        assert!(!out.write_to(&mut w).unwrap());
        assert_eq!(out.len(), 6);
        out.push(b"!");
        w.room = 100;
        assert!(out.write_to(&mut w).unwrap());
        assert_eq!(w.taken, b"hello world!");
        assert!(out.is_empty());
    }

    #[test]
    fn written_bytes_are_dropped_as_more_are_pushed() {
        let mut out = OutBuf::new(vec![b'a'; 10]);
        let mut w = Narrow {
            taken: vec![],
            room: 9,
        };
        assert!(!out.write_to(&mut w).unwrap());
        out.push(b"bc");
        assert_eq!(out.bytes.len(), 3, "the written 9 bytes are gone");
        assert_eq!(out.pending(), b"abc");
    }

    #[test]
    fn drain_reports_eof_and_stops_when_asked() {
        let mut scratch = [0u8; 4];
        let mut got = vec![];
        let end = drain(&b"abcdefghij"[..], &mut scratch, |c| {
            got.extend_from_slice(c);
            true
        });
        assert_eq!(end.unwrap(), ReadEnd::Eof);
        assert_eq!(got, b"abcdefghij");
        let mut chunks = 0;
        let end = drain(&b"abcdefghij"[..], &mut scratch, |_| {
            chunks += 1;
            false
        });
        assert_eq!((end.unwrap(), chunks), (ReadEnd::Open, 1));
    }

    #[test]
    fn the_read_buffer_is_allocated_when_read_into_and_released_at_rest() {
        let mut b = ReadBuffer::default();
        assert!(!b.held());
        assert_eq!(b.get().len(), ReadBuffer::SIZE);
        b.release();
        assert!(!b.held());
        // Taken while released, it is whole: a read into it is never of
        // zero bytes (which would look like the peer closing).
        let taken = b.take();
        assert_eq!(taken.len(), ReadBuffer::SIZE);
        b.put(taken);
        assert!(b.held());
    }
}
