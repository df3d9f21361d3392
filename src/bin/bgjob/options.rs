//! `bgjob add`'s flags as the option text of `queue:add?<options>:...`,
//! written as PHP's `http_build_query` writes it.

use crate::cli::AddOptions;

/// Seconds from `30`, `1.5`, `30s`, `5m`, `2h` or `1d`.
pub fn seconds(text: &str) -> Option<f64> {
    let (number, unit) = match text.char_indices().last()? {
        (i, 's') => (&text[..i], 1.0),
        (i, 'm') => (&text[..i], 60.0),
        (i, 'h') => (&text[..i], 3600.0),
        (i, 'd') => (&text[..i], 86400.0),
        _ => (text, 1.0),
    };
    let value: f64 = number.parse().ok()?;
    (value.is_finite() && value >= 0.0).then_some(value * unit)
}

/// Percent-encodes every byte but letters, digits and `-_.~`.
fn encode(value: &str) -> String {
    let mut out = String::new();
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The option text, or which flag is bad; empty without options.
pub fn query(o: &AddOptions) -> Result<String, String> {
    let mut pairs = Vec::new();
    let secs = |flag: &str, text: &str| {
        seconds(text).ok_or_else(|| format!("--{flag} {text}: not a number of seconds"))
    };
    if let Some(delay) = &o.delay {
        pairs.push(format!("delay={}", secs("delay", delay)?));
    }
    if let Some(at) = &o.at {
        pairs.push(format!("at={}", encode(at)));
    }
    if let Some(priority) = &o.priority {
        pairs.push(format!("priority={}", encode(priority)));
    }
    if let Some(retries) = o.retries {
        pairs.push(format!("retries={retries}"));
    }
    if let Some(key) = &o.key {
        pairs.push(format!("key={}", encode(key)));
    }
    if let Some(timeout) = &o.job_timeout {
        pairs.push(format!("timeout={}", secs("job-timeout", timeout)?));
    }
    Ok(pairs.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_become_options() {
        assert_eq!(seconds("30s"), Some(30.0));
        assert_eq!(seconds("5m"), Some(300.0));
        assert_eq!(seconds("1.5"), Some(1.5));
        assert_eq!(seconds("x"), None);
        let o = AddOptions {
            delay: Some("2m".into()),
            retries: Some(3),
            key: Some("invoice 12&3".into()),
            ..AddOptions::default()
        };
        assert_eq!(
            query(&o).unwrap(),
            "delay=120&retries=3&key=invoice%2012%263"
        );
        assert_eq!(query(&AddOptions::default()).unwrap(), "");
    }
}
