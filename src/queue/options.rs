//! Options of `queue:add?<options>:<module>:<data>`: the text between `add?`
//! and the module, as PHP's `http_build_query` writes it (`name=value`
//! pairs joined by `&`, `+` for a space, `%XX` for a byte). Parsing is pure:
//! the clock is passed in, so a delay becomes an absolute run time once,
//! at the add, and is journaled as that time.

/// The longest delay: 30 days, in seconds.
pub const MAX_DELAY_SECS: f64 = 30.0 * 24.0 * 3600.0;
/// The most retries a job may ask for.
pub const MAX_RETRIES: u32 = 25;
/// The longest key, in bytes.
pub const MAX_KEY: usize = 200;

/// Where a job stands among the waiting jobs of its module: strictly
/// higher first, first come first served within one priority.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Priority {
    High = 0,
    #[default]
    Normal = 1,
    Low = 2,
}

impl Priority {
    /// The option's spelling.
    pub fn name(self) -> &'static str {
        match self {
            Priority::High => "high",
            Priority::Normal => "normal",
            Priority::Low => "low",
        }
    }

    /// The journal's byte for it (unknown bytes read as normal).
    pub fn from_byte(b: u8) -> Priority {
        match b {
            0 => Priority::High,
            2 => Priority::Low,
            _ => Priority::Normal,
        }
    }
}

/// What a job asked for on `queue:add`; `None` is the default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobOptions {
    /// Not started before this Unix time, in milliseconds (`delay`, `at`).
    pub run_at_ms: Option<u64>,
    pub priority: Option<Priority>,
    /// Attempts after the first, when an attempt fails.
    pub retries: Option<u32>,
    /// At most one held job per (listener, key).
    pub key: Option<Vec<u8>>,
    /// This job's time limit, in milliseconds.
    pub timeout_ms: Option<u64>,
}

/// Why options were refused: the answer names the option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BadOptions {
    /// `400: Unknown option <name>`.
    Unknown(String),
    /// `400: Bad option <name>`.
    Bad(String),
}

impl BadOptions {
    /// The `NNN: text` answer.
    pub fn answer(&self) -> String {
        match self {
            BadOptions::Unknown(name) => format!("400: Unknown option {name}"),
            BadOptions::Bad(name) => format!("400: Bad option {name}"),
        }
    }
}

/// Decodes `+` and `%XX` as `http_build_query` encodes them; a `%` not
/// followed by two hex digits is refused.
fn decode(text: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        match text[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = text.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    Some(out)
}

/// Seconds as a plain decimal (`30`, `0.5`), never negative, NaN or
/// infinite, nor in exponent form.
fn seconds(value: &[u8]) -> Option<f64> {
    let text = std::str::from_utf8(value).ok()?;
    let plain = !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && text.bytes().filter(|&b| b == b'.').count() <= 1
        && text != ".";
    plain.then(|| text.parse::<f64>().ok()).flatten()
}

/// Parses the option text of one add, at Unix time `now_ms`.
pub fn parse(text: &[u8], now_ms: u64) -> Result<JobOptions, BadOptions> {
    let mut options = JobOptions::default();
    let mut delay = false;
    let mut at = false;
    let mut seen: Vec<String> = Vec::new();
    for pair in text.split(|&b| b == b'&').filter(|p| !p.is_empty()) {
        let (name, value) = match pair.iter().position(|&b| b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &b""[..]),
        };
        let name = decode(name).map(|n| String::from_utf8_lossy(&n).into_owned());
        let Some(name) = name else {
            return Err(BadOptions::Unknown(crate::sanitize::loggable(pair, 64)));
        };
        let bad = || BadOptions::Bad(name.clone());
        // Given twice, it says two things: which one was meant is a guess.
        if seen.contains(&name) {
            return Err(bad());
        }
        seen.push(name.clone());
        let value = decode(value).ok_or_else(bad)?;
        match name.as_str() {
            "delay" => {
                let secs = seconds(&value).filter(|s| *s <= MAX_DELAY_SECS);
                let secs = secs.ok_or_else(bad)?;
                if at {
                    return Err(bad());
                }
                delay = true;
                options.run_at_ms = Some(now_ms + (secs * 1000.0).round() as u64);
            }
            "at" => {
                let secs = seconds(&value).ok_or_else(bad)?;
                let ms = (secs * 1000.0).round();
                // As far ahead as a delay may be, and no further.
                let latest = now_ms as f64 + MAX_DELAY_SECS * 1000.0;
                if delay || ms > latest {
                    return Err(bad());
                }
                at = true;
                options.run_at_ms = Some(ms as u64);
            }
            "priority" => {
                options.priority = Some(match &value[..] {
                    b"high" => Priority::High,
                    b"normal" => Priority::Normal,
                    b"low" => Priority::Low,
                    _ => return Err(bad()),
                });
            }
            "retries" => {
                let text = std::str::from_utf8(&value).map_err(|_| bad())?;
                let n = text.parse::<u32>().ok().filter(|n| *n <= MAX_RETRIES);
                if !text.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(bad());
                }
                options.retries = Some(n.ok_or_else(bad)?);
            }
            "key" => {
                if value.is_empty() || value.len() > MAX_KEY {
                    return Err(bad());
                }
                options.key = Some(value);
            }
            "timeout" => {
                let secs = seconds(&value).filter(|s| *s > 0.0 && *s <= MAX_DELAY_SECS);
                options.timeout_ms = Some((secs.ok_or_else(bad)? * 1000.0).round() as u64);
            }
            _ => {
                return Err(BadOptions::Unknown(crate::sanitize::loggable(
                    name.as_bytes(),
                    64,
                )))
            }
        }
    }
    Ok(options)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_700_000_000_000;

    #[test]
    fn options_as_php_writes_them() {
        let got = parse(b"delay=30&retries=3&key=invoice-1234&priority=high", NOW).unwrap();
        assert_eq!(got.run_at_ms, Some(NOW + 30_000));
        assert_eq!(got.retries, Some(3));
        assert_eq!(got.key.as_deref(), Some(&b"invoice-1234"[..]));
        assert_eq!(got.priority, Some(Priority::High));
        let got = parse(b"key=a+b%26c%3D%25&timeout=1.5", NOW).unwrap();
        assert_eq!(got.key.as_deref(), Some(&b"a b&c=%"[..]));
        assert_eq!(got.timeout_ms, Some(1500));
        assert_eq!(parse(b"", NOW).unwrap(), JobOptions::default());
        assert_eq!(
            parse(b"at=1700000100", NOW).unwrap().run_at_ms,
            Some(1_700_000_100_000)
        );
        assert_eq!(
            parse(b"delay=0.25", NOW).unwrap().run_at_ms,
            Some(NOW + 250)
        );
    }

    #[test]
    fn unknown_and_bad_options_are_named() {
        let unknown = |t: &[u8]| parse(t, NOW).unwrap_err().answer();
        assert_eq!(unknown(b"colour=red"), "400: Unknown option colour");
        assert_eq!(unknown(b"delay=30&colour"), "400: Unknown option colour");
        for (text, name) in [
            (&b"delay=-1"[..], "delay"),
            (b"delay=abc", "delay"),
            (b"delay=2592001", "delay"),
            (b"delay=1e3", "delay"),
            (b"delay=", "delay"),
            (b"delay=1&at=5", "at"),
            (b"at=5&delay=1", "delay"),
            (b"at=x", "at"),
            (b"priority=urgent", "priority"),
            (b"retries=26", "retries"),
            (b"retries=-1", "retries"),
            (b"retries=+1", "retries"),
            (b"key=", "key"),
            (b"timeout=0", "timeout"),
            (b"key=%zz", "key"),
        ] {
            assert_eq!(
                parse(text, NOW).unwrap_err(),
                BadOptions::Bad(name.into()),
                "{}",
                String::from_utf8_lossy(text)
            );
        }
        let long = format!("key={}", "k".repeat(201));
        assert_eq!(
            parse(long.as_bytes(), NOW).unwrap_err(),
            BadOptions::Bad("key".into())
        );
        let longest = format!("key={}", "k".repeat(200));
        assert!(parse(longest.as_bytes(), NOW).is_ok());
    }

    #[test]
    fn an_option_given_twice_or_an_at_past_thirty_days_is_bad() {
        let bad = |t: &str| parse(t.as_bytes(), NOW).unwrap_err();
        assert_eq!(bad("delay=1&delay=5"), BadOptions::Bad("delay".into()));
        assert_eq!(bad("key=a&retries=1&key=b"), BadOptions::Bad("key".into()));
        let month = MAX_DELAY_SECS as u64;
        let at = |secs: u64| format!("at={}", NOW / 1000 + secs);
        assert!(parse(at(month).as_bytes(), NOW).is_ok());
        assert_eq!(bad(&at(month + 1)), BadOptions::Bad("at".into()));
    }
}
