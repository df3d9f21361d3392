//! The configuration file: the seed's JSON array of listeners, or an object
//! with listeners and limits. Every limit has a default and a hard ceiling.
//!
//! ```json
//! [{"server": "main", "address": "127.0.0.1", "port": 12341}]
//! ```
//! or
//! ```json
//! {"listen": [{"name": "main", "address": "127.0.0.1", "port": 12341}],
//!  "max_jobs": 16, "job_timeout_secs": 30}
//! ```

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use crate::config::access::{Access, Cidr};
use crate::config::settings::Settings;
use crate::error::Error;
use crate::journal::sync::SyncPolicy;
use crate::run::spawn::ModuleLimits;

/// One address to serve TCP and UDP on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerSpec {
    pub label: String,
    pub addr: SocketAddr,
    /// Who may use it; listeners without their own list take the `allow`
    /// setting.
    pub access: Access,
    /// Operator rights: `queue:list`, and every listener's jobs.
    pub admin: bool,
}

impl ListenerSpec {
    /// The name its queue jobs belong to: the same across restarts with
    /// the same configuration (a port of 0 stays 0).
    pub fn owner(&self) -> String {
        format!("{}@{}", self.label, self.addr)
    }
}

/// What a configuration file holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub listeners: Vec<ListenerSpec>,
    pub settings: Settings,
}

/// The port the seed used; the shipped config binds it on loopback.
pub const DEFAULT_PORT: u16 = 12341;

impl Default for Config {
    fn default() -> Self {
        Config {
            listeners: vec![ListenerSpec {
                label: "default".into(),
                addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), DEFAULT_PORT),
                access: Access::default(),
                admin: false,
            }],
            settings: Settings::default(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawListener {
    server: Option<String>,
    name: Option<String>,
    address: Option<String>,
    port: Value,
    allow: Option<Vec<String>>,
    modules: Option<Vec<String>>,
    admin: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    cpu_secs: Option<u64>,
    address_space_bytes: Option<u64>,
    open_files: Option<u64>,
    processes: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    listen: Option<Vec<RawListener>>,
    max_jobs: Option<u64>,
    max_waiting: Option<u64>,
    job_timeout_secs: Option<f64>,
    kill_grace_ms: Option<u64>,
    max_output_bytes: Option<u64>,
    max_request_bytes: Option<u64>,
    max_connections: Option<u64>,
    idle_timeout_secs: Option<f64>,
    request_gap_ms: Option<u64>,
    result_retention_secs: Option<u64>,
    shutdown_grace_secs: Option<u64>,
    node: Option<PathBuf>,
    result_retention_bytes: Option<u64>,
    result_retention_bytes_per_client: Option<u64>,
    max_waiting_bytes: Option<u64>,
    max_waiting_bytes_per_client: Option<u64>,
    allow: Option<Vec<String>>,
    max_connections_per_client: Option<u64>,
    max_waiting_per_client: Option<u64>,
    module_env: Option<Vec<String>>,
    module_limits: Option<RawLimits>,
    module_user: Option<String>,
    module_group: Option<String>,
    allow_root_modules: Option<bool>,
    node_workers: Option<u64>,
    node_worker_idle_secs: Option<f64>,
    state_dir: Option<String>,
    journal_sync: Option<Value>,
}

impl Config {
    /// Parses a configuration file's text.
    pub fn parse(text: &str) -> Result<Config, Error> {
        let value: Value = serde_json::from_str(text).map_err(|e| Error::Config(e.to_string()))?;
        let raw = match value {
            Value::Array(_) => RawConfig {
                listen: Some(from_value(value)?),
                ..RawConfig::default()
            },
            Value::Object(_) => from_value(value)?,
            _ => {
                return Err(Error::Config(
                    "expected a JSON array of listeners or an object".into(),
                ))
            }
        };
        let defaults = Config::default();
        let allow = raw.allow.as_deref().map(parse_networks).transpose()?;
        let mut listeners: Vec<ListenerSpec> = match raw.listen {
            Some(list) => list.into_iter().map(listener).collect::<Result<_, _>>()?,
            None => defaults.listeners,
        };
        for l in &mut listeners {
            if l.access.allow.is_none() {
                l.access.allow = allow.clone();
            }
        }
        let d = defaults.settings;
        let settings = Settings {
            max_jobs: clamp(raw.max_jobs, d.max_jobs, 1, 4096),
            max_waiting: clamp(raw.max_waiting, d.max_waiting, 0, 1 << 20),
            job_timeout: secs(raw.job_timeout_secs, d.job_timeout, 0.001, 86_400.0)?,
            kill_grace: millis(raw.kill_grace_ms, d.kill_grace, 0, 60_000),
            max_output: clamp(raw.max_output_bytes, d.max_output, 0, 1 << 30),
            max_request: clamp(raw.max_request_bytes, d.max_request, 0, 1 << 30),
            max_connections: clamp(raw.max_connections, d.max_connections, 1, 1 << 20),
            idle_timeout: secs(raw.idle_timeout_secs, d.idle_timeout, 0.001, 3600.0)?,
            request_gap: millis(raw.request_gap_ms, d.request_gap, 0, 60_000),
            result_retention: secs_whole(
                raw.result_retention_secs,
                d.result_retention,
                30 * 86_400,
            ),
            shutdown_grace: secs_whole(raw.shutdown_grace_secs, d.shutdown_grace, 3600),
            node: raw.node.unwrap_or(d.node),
            result_retention_bytes: clamp(
                raw.result_retention_bytes,
                d.result_retention_bytes,
                0,
                1 << 40,
            ),
            max_waiting_bytes: clamp(raw.max_waiting_bytes, d.max_waiting_bytes, 0, 1 << 40),
            max_waiting_bytes_per_client: clamp(
                raw.max_waiting_bytes_per_client,
                d.max_waiting_bytes_per_client,
                0,
                1 << 40,
            ),
            result_retention_bytes_per_client: clamp(
                raw.result_retention_bytes_per_client,
                d.result_retention_bytes_per_client,
                0,
                1 << 40,
            ),
            allow,
            max_connections_per_client: clamp(
                raw.max_connections_per_client,
                d.max_connections_per_client,
                1,
                1 << 20,
            ),
            max_waiting_per_client: clamp(
                raw.max_waiting_per_client,
                d.max_waiting_per_client,
                1,
                1 << 20,
            ),
            module_env: raw.module_env.unwrap_or_default(),
            module_user: raw.module_user,
            module_group: raw.module_group,
            allow_root_modules: raw.allow_root_modules.unwrap_or(false),
            module_limits: raw.module_limits.map_or(d.module_limits, |l| ModuleLimits {
                identity: None,
                cpu_secs: l.cpu_secs,
                address_space_bytes: l.address_space_bytes,
                open_files: l.open_files,
                processes: l.processes,
            }),
            node_workers: clamp(raw.node_workers, d.node_workers, 0, 64),
            node_worker_idle: secs(raw.node_worker_idle_secs, d.node_worker_idle, 0.1, 86_400.0)?,
            state_dir: match raw.state_dir {
                Some(dir) => parse_state_dir(&dir),
                None => d.state_dir,
            },
            journal_sync: match raw.journal_sync {
                Some(v) => parse_sync(&v)?,
                None => d.journal_sync,
            },
        };
        Ok(Config {
            listeners,
            settings,
        })
    }

    /// Reads and parses a configuration file.
    pub fn load(path: &std::path::Path) -> Result<Config, Error> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Io(format!("cannot read {}", path.display()), e))?;
        Config::parse(&text).map_err(|e| match e {
            Error::Config(why) => Error::Config(format!("{}: {why}", path.display())),
            other => other,
        })
    }
}

fn from_value<T: serde::de::DeserializeOwned>(value: Value) -> Result<T, Error> {
    serde_json::from_value(value).map_err(|e| Error::Config(e.to_string()))
}

fn listener(raw: RawListener) -> Result<ListenerSpec, Error> {
    let label = raw.name.or(raw.server).unwrap_or_else(|| "listener".into());
    let port = match &raw.port {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .and_then(|p| u16::try_from(p).ok())
    .ok_or_else(|| {
        Error::Config(format!(
            "listener {label}: port must be a number from 0 to 65535"
        ))
    })?;
    let address = raw.address.unwrap_or_else(|| "127.0.0.1".into());
    let ip = parse_ip(&address).ok_or_else(|| {
        Error::Config(format!(
            "listener {label}: address {address:?} is not an IP address"
        ))
    })?;
    let allow = raw.allow.as_deref().map(parse_networks).transpose()?;
    let modules = raw.modules.map(|m| m.into_iter().collect());
    Ok(ListenerSpec {
        label,
        addr: SocketAddr::new(ip, port),
        access: Access { allow, modules },
        admin: raw.admin.unwrap_or(false),
    })
}

/// A list of networks, each `a.b.c.d/n`, `x::y/n` or a bare address.
fn parse_networks(list: &[String]) -> Result<Vec<Cidr>, Error> {
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
fn parse_sync(value: &Value) -> Result<SyncPolicy, Error> {
    match value {
        Value::String(s) if s == "always" => Ok(SyncPolicy::Always),
        Value::String(s) if s == "never" => Ok(SyncPolicy::Never),
        Value::String(s) if s == "each" => Ok(SyncPolicy::EachRecord),
        Value::Number(n) if n.as_u64().is_some() => Ok(SyncPolicy::Every(Duration::from_millis(
            n.as_u64().unwrap_or(0).clamp(1, 60_000),
        ))),
        _ => Err(Error::Config(format!(
            "journal_sync: expected \"always\", \"never\", \"each\" or milliseconds, got {value}"
        ))),
    }
}

/// An IP literal, or `localhost`; no name lookups, which would block.
pub fn parse_ip(text: &str) -> Option<IpAddr> {
    match text.trim() {
        "localhost" => Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        other => other.trim_matches(['[', ']']).parse().ok(),
    }
}

fn clamp(value: Option<u64>, default: usize, min: usize, max: usize) -> usize {
    value.map_or(default, |v| (v.min(max as u64) as usize).max(min))
}

fn millis(value: Option<u64>, default: Duration, min: u64, max: u64) -> Duration {
    value.map_or(default, |v| Duration::from_millis(v.clamp(min, max)))
}

fn secs_whole(value: Option<u64>, default: Duration, max: u64) -> Duration {
    value.map_or(default, |v| Duration::from_secs(v.min(max)))
}

fn secs(value: Option<f64>, default: Duration, min: f64, max: f64) -> Result<Duration, Error> {
    match value {
        None => Ok(default),
        Some(v) if v.is_finite() => Ok(Duration::from_secs_f64(v.clamp(min, max))),
        Some(v) => Err(Error::Config(format!("{v} is not a number of seconds"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_format_is_accepted_unchanged() {
        let config = Config::parse(
            r#"[{"server": "background", "address": "0.0.0.0", "port": 12341},
                {"name": "second", "address": "::1", "port": "4000"}]"#,
        )
        .unwrap();
        assert_eq!(config.listeners.len(), 2);
        assert_eq!(config.listeners[0].label, "background");
        assert_eq!(config.listeners[0].addr, "0.0.0.0:12341".parse().unwrap());
        assert_eq!(config.listeners[1].addr, "[::1]:4000".parse().unwrap());
        assert_eq!(config.settings, Settings::default());
        assert_eq!(config.listeners[0].access, Access::default());
    }

    #[test]
    fn allow_lists_apply_per_listener_or_from_the_setting() {
        let config = Config::parse(
            r#"{"allow": ["127.0.0.0/8"], "listen": [
                {"name": "a", "address": "0.0.0.0", "port": 1},
                {"name": "b", "address": "0.0.0.0", "port": 2, "allow": ["10.0.0.0/8"], "modules": ["test"]}]}"#,
        )
        .unwrap();
        let ip = |s: &str| s.parse().unwrap();
        assert!(config.listeners[0].access.permits(ip("127.0.0.1")));
        assert!(!config.listeners[0].access.permits(ip("10.0.0.1")));
        assert!(config.listeners[1].access.permits(ip("10.0.0.1")));
        assert!(!config.listeners[1].access.permits(ip("127.0.0.1")));
        assert!(
            config.listeners[1].access.serves("test") && !config.listeners[1].access.serves("less")
        );
    }

    #[test]
    fn object_form_sets_limits_and_clamps_them() {
        let config = Config::parse(
            r#"{"listen": [{"name": "a", "address": "localhost", "port": 1}],
                "max_jobs": 0, "job_timeout_secs": 2.5, "max_request_bytes": 10, "request_gap_ms": 999999}"#,
        )
        .unwrap();
        assert_eq!(config.listeners[0].addr, "127.0.0.1:1".parse().unwrap());
        assert_eq!(config.settings.max_jobs, 1);
        assert_eq!(config.settings.job_timeout, Duration::from_millis(2500));
        assert_eq!(config.settings.max_request, 10);
        assert_eq!(config.settings.request_gap, Duration::from_secs(60));
        let config = Config::parse(r#"{"state_dir": "none", "journal_sync": 200}"#).unwrap();
        assert_eq!(config.settings.state_dir, None);
        assert_eq!(
            config.settings.journal_sync,
            SyncPolicy::Every(Duration::from_millis(200))
        );
        let config =
            Config::parse(r#"{"state_dir": "/var/lib/bgjob", "journal_sync": "never"}"#).unwrap();
        assert_eq!(
            config.settings.state_dir,
            Some(PathBuf::from("/var/lib/bgjob"))
        );
        assert_eq!(config.settings.journal_sync, SyncPolicy::Never);
        assert!(Config::parse(r#"{"journal_sync": "sometimes"}"#).is_err());
    }

    #[test]
    fn mistakes_are_named() {
        let err = |text: &str| Config::parse(text).unwrap_err().to_string();
        assert!(err(r#"{"max_jobz": 1}"#).contains("max_jobz"));
        assert!(err(r#"[{"address": "x.example", "port": 1}]"#).contains("not an IP address"));
        assert!(err(r#"[{"address": "127.0.0.1", "port": 70000}]"#).contains("port"));
        assert!(err("[").contains("EOF"));
        assert!(err("3").contains("expected"));
        assert!(err(r#"{"allow": ["10.0.0.0/40"]}"#).contains("prefix"));
    }
}
