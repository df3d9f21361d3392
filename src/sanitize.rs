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

/// [`loggable`] in double quotes, for a value inside a log line: each byte
/// is escaped once (`{:?}` of the escaped text would escape it again).
pub fn quoted(bytes: &[u8], max: usize) -> String {
    format!("\"{}\"", loggable(bytes, max))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_text_is_escaped_and_cut() {
        assert_eq!(loggable(b"a\n\x00b", 10), "a\\n\\x00b");
        assert_eq!(loggable(b"abcdef", 3), "abc...");
    }

    #[test]
    fn quoted_text_is_escaped_once() {
        assert_eq!(quoted(b"a\"b\n", 10), r#""a\"b\n""#);
        assert_eq!(quoted(b"", 10), r#""""#);
    }
}
