//! How far a job is, as its module says: lines `N/M` or `N%` written to the
//! descriptor named by `BGJOB_PROGRESS_FD` (or sent by a warm `.js`
//! worker's `progress(n, m)`). The last line that parses counts; a line
//! that does not (or is over [`MAX_LINE`] bytes) is ignored and counted,
//! so a module cannot make the daemon hold more than one line of it. A
//! leaf: it imports nothing from the crate.

use std::fmt;

/// The longest progress line, newline excluded.
pub const MAX_LINE: usize = 256;

/// One progress report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// `done` of `total` (`40/100`), `done` at most `total`, `total` above 0.
    Of { done: u64, total: u64 },
    /// A percentage, 0 to 100 (`40%`).
    Percent(u8),
}

impl Step {
    /// Parses one line, surrounding white space aside.
    pub fn parse(line: &[u8]) -> Option<Step> {
        let text = std::str::from_utf8(line).ok()?.trim();
        let number = |s: &str| {
            let digits = !s.is_empty() && s.len() <= 19 && s.bytes().all(|b| b.is_ascii_digit());
            digits.then(|| s.parse::<u64>().ok()).flatten()
        };
        if let Some(percent) = text.strip_suffix('%') {
            let p = number(percent)?;
            return (p <= 100).then_some(Step::Percent(p as u8));
        }
        let (done, total) = text.split_once('/')?;
        let (done, total) = (number(done)?, number(total)?);
        (total > 0 && done <= total).then_some(Step::Of { done, total })
    }

    /// How far, from 0 to 1.
    pub fn ratio(self) -> f64 {
        match self {
            Step::Of { done, total } => done as f64 / total as f64,
            Step::Percent(p) => f64::from(p) / 100.0,
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Of { done, total } => write!(f, "{done}/{total}"),
            Step::Percent(p) => write!(f, "{p}%"),
        }
    }
}

/// What a job said of its progress so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// The last line that parsed.
    pub last: Option<Step>,
    /// Lines that did not parse, or were too long.
    pub ignored: u64,
}

impl Progress {
    /// Takes one whole line: the last step if it parses, else one more
    /// ignored (an empty line says nothing, and is not worth counting).
    pub fn say(&mut self, line: &[u8]) {
        match Step::parse(line) {
            Some(step) => self.last = Some(step),
            None if line.iter().all(u8::is_ascii_whitespace) => {}
            None => self.ignored += 1,
        }
    }

    /// `progress: 40/100` and `progress_ignored: N` lines for `queue:info`,
    /// each ending in a newline; empty when nothing was said.
    pub fn info_lines(&self) -> String {
        let mut out = String::new();
        if let Some(step) = self.last {
            out.push_str(&format!("progress: {step}\n"));
        }
        if self.ignored > 0 {
            out.push_str(&format!("progress_ignored: {}\n", self.ignored));
        }
        out
    }
}

/// Progress lines as they arrive from a pipe, in chunks of any size.
#[derive(Debug, Default)]
pub struct ProgressLines {
    /// The start of a line not complete yet (at most [`MAX_LINE`] bytes).
    line: Vec<u8>,
    /// The line being read is over [`MAX_LINE`]: skipped to its end.
    skipping: bool,
    pub progress: Progress,
}

impl ProgressLines {
    /// Takes a chunk; true if it changed what [`ProgressLines::progress`] says.
    pub fn feed(&mut self, chunk: &[u8]) -> bool {
        let before = self.progress;
        let mut rest = chunk;
        while let Some(newline) = rest.iter().position(|&b| b == b'\n') {
            self.take(&rest[..newline]);
            self.end_line();
            rest = &rest[newline + 1..];
        }
        self.take(rest);
        self.progress != before
    }

    /// The pipe closed: a last line without its newline counts too.
    pub fn finish(&mut self) -> bool {
        let before = self.progress;
        if !self.line.is_empty() || self.skipping {
            self.end_line();
        }
        self.progress != before
    }

    fn take(&mut self, part: &[u8]) {
        if self.skipping {
            return;
        }
        if self.line.len() + part.len() > MAX_LINE {
            self.line.clear();
            self.skipping = true;
        } else {
            self.line.extend_from_slice(part);
        }
    }

    fn end_line(&mut self) {
        let line = std::mem::take(&mut self.line);
        match self.skipping {
            true => self.progress.ignored += 1,
            false => self.progress.say(&line),
        }
        self.skipping = false;
        // What a flood left is given back, not kept for the next line.
        if line.capacity() <= MAX_LINE {
            self.line = line;
            self.line.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fractions_and_percentages_parse_and_the_rest_does_not() {
        let of = |done, total| Some(Step::Of { done, total });
        assert_eq!(Step::parse(b"40/100"), of(40, 100));
        assert_eq!(Step::parse(b" 0/3\r"), of(0, 3));
        assert_eq!(Step::parse(b"3/3"), of(3, 3));
        assert_eq!(Step::parse(b"40%"), Some(Step::Percent(40)));
        assert_eq!(Step::parse(b"100%"), Some(Step::Percent(100)));
        for bad in [
            &b"4/3"[..],
            b"1/0",
            b"101%",
            b"-1/3",
            b"1.5/3",
            b"12.5%",
            b"/3",
            b"3/",
            b"%",
            b"half",
            b"1/2/3",
            b"+1/2",
            b"99999999999999999999/99999999999999999999",
            b"\xff/3",
        ] {
            assert_eq!(Step::parse(bad), None, "{bad:?}");
        }
        assert_eq!(Step::parse(b"40/100").unwrap().to_string(), "40/100");
        assert_eq!(Step::Percent(7).to_string(), "7%");
        assert_eq!(Step::parse(b"1/4").unwrap().ratio(), 0.25);
    }

    #[test]
    fn lines_across_chunks_count_and_garbage_is_counted_not_kept() {
        let mut lines = ProgressLines::default();
        assert!(!lines.feed(b"1/"), "no newline yet");
        assert!(lines.feed(b"0\n2/10\nnonsense\n\n5"));
        assert_eq!(lines.progress.last, Some(Step::Of { done: 2, total: 10 }));
        assert_eq!(lines.progress.ignored, 2, "1/0 and nonsense");
        assert!(lines.feed(b"0%\n"));
        assert_eq!(lines.progress.last, Some(Step::Percent(50)));
        let flood = vec![b'x'; 10 * MAX_LINE];
        lines.feed(&flood);
        lines.feed(&flood);
        assert!(lines.line.is_empty(), "a long line is not held");
        lines.feed(b"1/2\n");
        assert_eq!(lines.progress.last, Some(Step::Percent(50)), "its tail");
        assert_eq!(lines.progress.ignored, 3);
        lines.feed(&[b'7'; MAX_LINE]);
        assert_eq!(lines.line.len(), MAX_LINE, "a line of the longest length");
        lines.feed(b"\n3/4");
        assert_eq!(lines.progress.ignored, 4, "a number too large");
        assert!(lines.finish());
        assert_eq!(lines.progress.last, Some(Step::Of { done: 3, total: 4 }));
        assert_eq!(
            lines.progress.info_lines(),
            "progress: 3/4\nprogress_ignored: 4\n"
        );
        assert_eq!(Progress::default().info_lines(), "");
    }
}
