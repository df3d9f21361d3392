//! One listener of the configuration file: its address, name, access
//! rules, rights and framing, as written and as checked.

use std::net::SocketAddr;

use serde::Deserialize;
use serde_json::Value;

use crate::config::access::Access;
use crate::config::values::{parse_framing, parse_ip, parse_networks};
use crate::error::Error;
use crate::net::framing::Framing;

/// One address to serve TCP and UDP on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerSpec {
    pub label: String,
    pub addr: SocketAddr,
    /// Who may use it; listeners without their own list take the `allow`
    /// setting.
    pub access: Access,
    /// Serve UDP as well as TCP (`"udp": false` turns it off).
    pub udp: bool,
    /// Operator rights: `queue:list`, and every listener's jobs.
    pub admin: bool,
    /// Where a classic client's request ends (`"framing"`).
    pub framing: Framing,
}

impl ListenerSpec {
    /// The name its queue jobs belong to, the same across restarts and
    /// reloads: a listener's name from the config (so that moving it to
    /// another port keeps its jobs), or an unnamed one's address (a port of
    /// 0 stays 0).
    pub fn owner(&self) -> String {
        if self.label == UNNAMED || self.label == "--listen" {
            format!("{}@{}", self.label, self.addr)
        } else {
            self.label.clone()
        }
    }
}

/// The label of a listener the config gives no name.
pub const UNNAMED: &str = "listener";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawListener {
    server: Option<String>,
    name: Option<String>,
    address: Option<String>,
    port: Value,
    allow: Option<Vec<String>>,
    modules: Option<Vec<String>>,
    udp: Option<bool>,
    admin: Option<bool>,
    framing: Option<String>,
}

/// A listener's entry of the config file, checked.
pub fn listener(raw: RawListener) -> Result<ListenerSpec, Error> {
    let label = raw.name.or(raw.server).unwrap_or_else(|| UNNAMED.into());
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
        framing: parse_framing(&label, raw.framing.as_deref())?,
        label,
        addr: SocketAddr::new(ip, port),
        access: Access { allow, modules },
        udp: raw.udp.unwrap_or(true),
        admin: raw.admin.unwrap_or(false),
    })
}
