//! Values of the configuration file and command line: addresses, networks,
//! the sync policy, and numbers brought into their range, each clamp noted
//! so that it is reported rather than applied silently.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use crate::config::access::Cidr;
use crate::error::Error;
use crate::journal::sync::SyncPolicy;
use crate::net::framing::Framing;

/// Brings numbers into their range and notes every value it changed.
#[derive(Debug, Default)]
pub struct Ranges {
    /// One line per clamped value: the key, what was given, what is used.
    pub notes: Vec<String>,
}

impl Ranges {
    fn note(&mut self, key: &str, given: impl std::fmt::Display, used: impl std::fmt::Display) {
        self.notes
            .push(format!("{key}: {given} is out of range, {used} is used"));
    }

    /// A count or size within `min..=max`.
    pub fn int(
        &mut self,
        key: &str,
        value: Option<u64>,
        default: usize,
        min: usize,
        max: usize,
    ) -> usize {
        let Some(v) = value else { return default };
        let used = (v.min(max as u64) as usize).max(min);
        if used as u64 != v {
            self.note(key, v, used);
        }
        used
    }

    /// Milliseconds within `min..=max`.
    pub fn millis(
        &mut self,
        key: &str,
        value: Option<u64>,
        default: Duration,
        min: u64,
        max: u64,
    ) -> Duration {
        let Some(v) = value else { return default };
        let used = v.clamp(min, max);
        if used != v {
            self.note(key, v, used);
        }
        Duration::from_millis(used)
    }

    /// Whole seconds up to `max`.
    pub fn secs_whole(
        &mut self,
        key: &str,
        value: Option<u64>,
        default: Duration,
        max: u64,
    ) -> Duration {
        let Some(v) = value else { return default };
        if v > max {
            self.note(key, v, max);
        }
        Duration::from_secs(v.min(max))
    }

    /// Seconds, fractions allowed, within `min..=max`.
    pub fn secs(
        &mut self,
        key: &str,
        value: Option<f64>,
        default: Duration,
        min: f64,
        max: f64,
    ) -> Result<Duration, Error> {
        match value {
            None => Ok(default),
            Some(v) if v.is_finite() => {
                let used = v.clamp(min, max);
                if used != v {
                    self.note(key, v, used);
                }
                Ok(Duration::from_secs_f64(used))
            }
            Some(v) => Err(Error::Config(format!(
                "{key}: {v} is not a number of seconds"
            ))),
        }
    }
}

/// A list of networks, each `a.b.c.d/n`, `x::y/n` or a bare address.
pub fn parse_networks(list: &[String]) -> Result<Vec<Cidr>, Error> {
    list.iter()
        .map(|n| Cidr::parse(n).map_err(|e| Error::Config(format!("allow: {e}"))))
        .collect()
}

/// A state folder, or `none` for no journal.
pub fn parse_state_dir(text: &str) -> Option<PathBuf> {
    (text != "none").then(|| PathBuf::from(text))
}

/// `"always"` (the default), `"never"`, `"each"` (one fsync per record), or a
/// number of milliseconds between fsyncs.
pub fn parse_sync(value: &Value, ranges: &mut Ranges) -> Result<SyncPolicy, Error> {
    match value {
        Value::String(s) if s == "always" => Ok(SyncPolicy::Always),
        Value::String(s) if s == "never" => Ok(SyncPolicy::Never),
        Value::String(s) if s == "each" => Ok(SyncPolicy::EachRecord),
        Value::Number(n) if n.as_u64().is_some() => Ok(SyncPolicy::Every(ranges.millis(
            "journal_sync",
            n.as_u64(),
            Duration::ZERO,
            1,
            60_000,
        ))),
        _ => Err(Error::Config(format!(
            "journal_sync: expected \"always\", \"never\", \"each\" or milliseconds, got {value}"
        ))),
    }
}

/// An IP literal, or `localhost`; no name lookups, which would block.
/// A listener's `"framing"`: `"quiet"` (the default) or `"first-read"`.
pub fn parse_framing(label: &str, text: Option<&str>) -> Result<Framing, Error> {
    let Some(text) = text else {
        return Ok(Framing::default());
    };
    Framing::parse(text).ok_or_else(|| {
        Error::Config(format!(
            "listener {label}: framing {text:?} is neither \"quiet\" nor \"first-read\""
        ))
    })
}

pub fn parse_ip(text: &str) -> Option<IpAddr> {
    match text.trim() {
        "localhost" => Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        other => other.trim_matches(['[', ']']).parse().ok(),
    }
}

/// `ADDR:PORT` with the address as [`parse_ip`] reads it: `127.0.0.1:9464`,
/// `[::1]:9464`, `localhost:9464`.
pub fn parse_addr(text: &str) -> Option<SocketAddr> {
    let (ip, port) = text.trim().rsplit_once(':')?;
    Some(SocketAddr::new(parse_ip(ip)?, port.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_read_as_the_config_writes_them() {
        let addr = |s: &str| parse_addr(s).map(|a| a.to_string());
        assert_eq!(addr("localhost:12350").as_deref(), Some("127.0.0.1:12350"));
        assert_eq!(addr("[::1]:5").as_deref(), Some("[::1]:5"));
        assert_eq!(addr("10.0.0.1:80").as_deref(), Some("10.0.0.1:80"));
        assert_eq!(addr("example.com:80"), None);
        assert_eq!(addr("127.0.0.1"), None);
    }

    #[test]
    fn clamped_values_are_noted() {
        let mut r = Ranges::default();
        assert_eq!(r.int("max_jobs", Some(100_000), 16, 1, 4096), 4096);
        assert_eq!(r.int("max_waiting", Some(5), 16, 0, 10), 5);
        assert_eq!(
            r.millis("request_gap_ms", Some(0), Duration::ZERO, 0, 10),
            Duration::ZERO
        );
        assert_eq!(
            r.secs("job_timeout_secs", Some(0.0), Duration::ZERO, 0.001, 10.0)
                .unwrap(),
            Duration::from_millis(1)
        );
        assert_eq!(
            r.notes,
            [
                "max_jobs: 100000 is out of range, 4096 is used",
                "job_timeout_secs: 0 is out of range, 0.001 is used"
            ]
        );
    }
}
