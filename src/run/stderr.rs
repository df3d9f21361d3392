//! A module's stderr, line by line into the log: escaped, long lines cut
//! into pieces, and at most 64 KiB per job so a chatty module cannot flood
//! the log.

use crate::sanitize::loggable;

/// How much stderr of one job goes to the log; the rest is counted.
const LOG_CAP: usize = 64 * 1024;
/// A line longer than this is logged in pieces.
const LINE_CAP: usize = 4096;

#[derive(Debug, Default)]
pub struct StderrLog {
    /// A line not yet complete.
    line: Vec<u8>,
    /// Bytes seen since the last [`StderrLog::finish`].
    seen: usize,
    /// The first line that was not empty (cut at [`FIRST_CAP`]): what a
    /// failed queue job's attempt is remembered by.
    first: Vec<u8>,
}

/// How much of the first line is kept.
const FIRST_CAP: usize = 200;

impl StderrLog {
    /// Logs the complete lines of `chunk`, keeping a partial last one.
    pub fn feed(&mut self, module: &str, pid: Option<u32>, chunk: &[u8]) {
        for &b in chunk {
            if b != b'\n' {
                self.line.push(b);
            }
            if b == b'\n' || self.line.len() >= LINE_CAP {
                self.flush_line(module, pid);
            }
        }
    }

    /// The stream ended, or a job did: logs what is left and says how much
    /// was not logged.
    pub fn finish(&mut self, module: &str, pid: Option<u32>) {
        if !self.line.is_empty() {
            self.flush_line(module, pid);
        }
        if self.seen > LOG_CAP {
            log::warn!(
                "module {module}{}: {} more bytes of stderr not logged",
                pid.map_or_else(String::new, |pid| format!(" [{pid}]")),
                self.seen - LOG_CAP
            );
        }
        self.seen = 0;
    }

    /// The first line written that was not empty.
    pub fn first_line(&self) -> &[u8] {
        &self.first
    }

    fn flush_line(&mut self, module: &str, pid: Option<u32>) {
        if self.first.is_empty() {
            let cut = self.line.len().min(FIRST_CAP);
            self.first.extend_from_slice(&self.line[..cut]);
        }
        if self.seen < LOG_CAP {
            let pid = pid.map_or_else(String::new, |pid| format!(" [{pid}]"));
            log::warn!("module {module}{pid}: {}", loggable(&self.line, LINE_CAP));
        }
        self.seen += self.line.len() + 1;
        self.line.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_split_and_counted() {
        let mut log = StderrLog::default();
        log.feed("m", Some(1), b"one\ntw");
        assert_eq!((log.line.as_slice(), log.seen), (&b"tw"[..], 4));
        log.feed("m", Some(1), b"o\n");
        assert_eq!((log.line.len(), log.seen), (0, 8));
        log.feed("m", None, &[b'x'; LINE_CAP + 10]);
        assert_eq!(log.line.len(), 10, "a long line is logged in pieces");
        log.finish("m", None);
        assert_eq!((log.line.len(), log.seen), (0, 0), "each job starts afresh");
        assert_eq!(log.first_line(), b"one", "the first line is kept");
    }
}
