//! Untrusted bytes made safe for a log line.

/// Renders untrusted bytes for a log line: printable ASCII kept, the rest
/// escaped, and cut to `max` bytes so a hostile request cannot flood the log.
pub fn loggable(bytes: &[u8], max: usize) -> String {
    let mut out: String = bytes[..bytes.len().min(max)]
        .iter()
        .flat_map(|&b| std::ascii::escape_default(b))
        .map(char::from)
        .collect();
    if bytes.len() > max {
        out.push_str("...");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_text_is_escaped_and_cut() {
        assert_eq!(loggable(b"a\n\x00b", 10), "a\\n\\x00b");
        assert_eq!(loggable(b"abcdef", 3), "abc...");
    }
}
