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

use serde::Deserialize;
use serde_json::Value;

use crate::config::access::Access;
pub use crate::config::listener::ListenerSpec;
use crate::config::listener::{listener, RawListener};
use crate::config::settings::Settings;
pub use crate::config::values::{parse_addr, parse_ip, parse_state_dir};
use crate::config::values::{parse_networks, parse_sync, Ranges};
use crate::error::Error;
use crate::run::limits::ModuleLimits;

/// What a configuration file holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub listeners: Vec<ListenerSpec>,
    pub settings: Settings,
    /// Values out of range that were clamped, one line each, to report.
    pub clamped: Vec<String>,
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
                udp: true,
                admin: false,
                framing: Default::default(),
                twin: 0,
            }],
            settings: Settings::default(),
            clamped: Vec::new(),
        }
    }
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
    max_waiting_udp: Option<u64>,
    job_timeout_secs: Option<f64>,
    kill_grace_ms: Option<u64>,
    max_output_bytes: Option<u64>,
    max_request_bytes: Option<u64>,
    max_connections: Option<u64>,
    idle_timeout_secs: Option<f64>,
    request_gap_ms: Option<u64>,
    request_timeout_secs: Option<f64>,
    request_min_rate: Option<u64>,
    request_min_rate_after_secs: Option<f64>,
    result_retention_secs: Option<u64>,
    shutdown_grace_secs: Option<u64>,
    node: Option<PathBuf>,
    js_working_dir: Option<PathBuf>,
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
    allow_writable_modules: Option<bool>,
    module_uids: Option<String>,
    node_workers: Option<u64>,
    node_worker_idle_secs: Option<f64>,
    state_dir: Option<String>,
    journal_sync: Option<Value>,
    metrics: Option<String>,
    web: Option<crate::config::web::RawWeb>,
    module_policy: Option<crate::config::policy::Policies>,
}

impl Config {
    /// Parses a configuration file's text. An error names the key's path
    /// and the line (`listen[0].port: ... at line 2 column 40`).
    pub fn parse(text: &str) -> Result<Config, Error> {
        let value: Value = serde_json::from_str(text).map_err(|e| Error::Config(e.to_string()))?;
        let raw = match value {
            Value::Array(_) => RawConfig {
                listen: Some(from_text(text)?),
                ..RawConfig::default()
            },
            Value::Object(_) => from_text(text)?,
            _ => {
                return Err(Error::Config(
                    "expected a JSON array of listeners or an object".into(),
                ))
            }
        };
        let mut r = Ranges::default();
        let defaults = Config::default();
        let allow = raw.allow.as_deref().map(parse_networks).transpose()?;
        let mut listeners: Vec<ListenerSpec> = match raw.listen {
            Some(list) => list.into_iter().map(listener).collect::<Result<_, _>>()?,
            None => defaults.listeners,
        };
        crate::config::listener::tell_apart(&mut listeners);
        for l in &mut listeners {
            if l.access.allow.is_none() {
                l.access.allow = allow.clone();
            }
        }
        let d = defaults.settings;
        let settings = Settings {
            max_jobs: r.int("max_jobs", raw.max_jobs, d.max_jobs, 1, 4096),
            max_waiting: r.int("max_waiting", raw.max_waiting, d.max_waiting, 0, 1 << 20),
            max_waiting_udp: r.int(
                "max_waiting_udp",
                raw.max_waiting_udp,
                d.max_waiting_udp,
                0,
                1 << 20,
            ),
            job_timeout: r.secs(
                "job_timeout_secs",
                raw.job_timeout_secs,
                d.job_timeout,
                0.001,
                86_400.0,
            )?,
            kill_grace: r.millis("kill_grace_ms", raw.kill_grace_ms, d.kill_grace, 0, 60_000),
            max_output: r.int(
                "max_output_bytes",
                raw.max_output_bytes,
                d.max_output,
                0,
                1 << 30,
            ),
            max_request: r.int(
                "max_request_bytes",
                raw.max_request_bytes,
                d.max_request,
                0,
                1 << 30,
            ),
            max_connections: r.int(
                "max_connections",
                raw.max_connections,
                d.max_connections,
                1,
                1 << 20,
            ),
            idle_timeout: r.secs(
                "idle_timeout_secs",
                raw.idle_timeout_secs,
                d.idle_timeout,
                0.001,
                3600.0,
            )?,
            request_gap: raw.request_gap_ms.map(|ms| {
                r.millis(
                    "request_gap_ms",
                    Some(ms),
                    std::time::Duration::ZERO,
                    0,
                    60_000,
                )
            }),
            request_timeout: r.secs(
                "request_timeout_secs",
                raw.request_timeout_secs,
                d.request_timeout,
                0.001,
                3600.0,
            )?,
            request_min_rate: raw.request_min_rate.map_or(d.request_min_rate, |rate| {
                r.int("request_min_rate", Some(rate), 0, 0, 1 << 30) as u64
            }),
            request_min_rate_after: r.secs(
                "request_min_rate_after_secs",
                raw.request_min_rate_after_secs,
                d.request_min_rate_after,
                0.0,
                3600.0,
            )?,
            result_retention: r.secs_whole(
                "result_retention_secs",
                raw.result_retention_secs,
                d.result_retention,
                30 * 86_400,
            ),
            shutdown_grace: r.secs_whole(
                "shutdown_grace_secs",
                raw.shutdown_grace_secs,
                d.shutdown_grace,
                3600,
            ),
            node: raw.node.unwrap_or(d.node),
            js_working_dir: raw.js_working_dir,
            result_retention_bytes: r.int(
                "result_retention_bytes",
                raw.result_retention_bytes,
                d.result_retention_bytes,
                0,
                1 << 40,
            ),
            max_waiting_bytes: r.int(
                "max_waiting_bytes",
                raw.max_waiting_bytes,
                d.max_waiting_bytes,
                0,
                1 << 40,
            ),
            max_waiting_bytes_per_client: r.int(
                "max_waiting_bytes_per_client",
                raw.max_waiting_bytes_per_client,
                d.max_waiting_bytes_per_client,
                0,
                1 << 40,
            ),
            result_retention_bytes_per_client: r.int(
                "result_retention_bytes_per_client",
                raw.result_retention_bytes_per_client,
                d.result_retention_bytes_per_client,
                0,
                1 << 40,
            ),
            allow,
            max_connections_per_client: r.int(
                "max_connections_per_client",
                raw.max_connections_per_client,
                d.max_connections_per_client,
                1,
                1 << 20,
            ),
            max_waiting_per_client: r.int(
                "max_waiting_per_client",
                raw.max_waiting_per_client,
                d.max_waiting_per_client,
                1,
                1 << 20,
            ),
            module_env: raw.module_env.unwrap_or_default(),
            module_user: raw.module_user,
            module_group: raw.module_group,
            allow_root_modules: raw.allow_root_modules.unwrap_or(false),
            allow_writable_modules: raw.allow_writable_modules.unwrap_or(false),
            module_uids: raw
                .module_uids
                .map(|text| {
                    crate::run::uids::parse_range(&text).ok_or_else(|| {
                        Error::Config(format!(
                            "module_uids {text:?} is not a range FIRST-LAST of uids above 0"
                        ))
                    })
                })
                .transpose()?,
            module_limits: raw.module_limits.map_or(d.module_limits, |l| ModuleLimits {
                identity: None,
                cpu_secs: l.cpu_secs,
                address_space_bytes: l.address_space_bytes,
                open_files: l.open_files,
                processes: l.processes,
            }),
            node_workers: r.int("node_workers", raw.node_workers, d.node_workers, 0, 64),
            node_worker_idle: r.secs(
                "node_worker_idle_secs",
                raw.node_worker_idle_secs,
                d.node_worker_idle,
                0.1,
                86_400.0,
            )?,
            state_dir: match raw.state_dir {
                Some(dir) => parse_state_dir(&dir),
                None => d.state_dir,
            },
            journal_sync: match raw.journal_sync {
                Some(v) => parse_sync(&v, &mut r)?,
                None => d.journal_sync,
            },
            module_policy: raw.module_policy.unwrap_or_default(),
            metrics: match raw.metrics.as_deref() {
                None | Some("") | Some("off") => None,
                Some(text) => Some(parse_addr(text).ok_or_else(|| {
                    Error::Config(format!(
                        "metrics: {text:?} is not ADDR:PORT (for example \"127.0.0.1:9464\")"
                    ))
                })?),
            },
            web: match raw.web {
                Some(web) => crate::config::web::WebSettings::parse(web)?,
                None => None,
            },
        };
        Ok(Config {
            listeners,
            settings,
            clamped: r.notes,
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

/// Parses the text again as `T`, so that an error carries the key's path and line.
fn from_text<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, Error> {
    let mut de = serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        match path.as_str() {
            "." | "" => Error::Config(inner.to_string()),
            _ => Error::Config(format!("{path}: {inner}")),
        }
    })
}

#[cfg(test)]
#[path = "file_tests.rs"]
mod tests;
