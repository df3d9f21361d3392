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
    /// Unnamed listeners given the same address before this one (two on
    /// port 0): each still owns its own jobs.
    pub twin: usize,
}

impl ListenerSpec {
    /// The name its queue jobs belong to, the same across restarts and
    /// reloads: a listener's name from the config (so that moving it to
    /// another port keeps its jobs), or an unnamed one's address (a port of
    /// 0 stays 0).
    pub fn owner(&self) -> String {
        match self.twin {
            _ if self.label != UNNAMED && self.label != "--listen" => self.label.clone(),
            0 => format!("{}@{}", self.label, self.addr),
            n => format!("{}@{}#{}", self.label, self.addr, n + 1),
        }
    }
}

/// Tells apart unnamed listeners given the same address (`-l 127.0.0.1:0`
/// twice): without it they would own the same jobs, and a job added on one
/// would be fetched on the other.
pub fn tell_apart(specs: &mut [ListenerSpec]) {
    for i in 1..specs.len() {
        let (before, rest) = specs.split_at_mut(i);
        let spec = &mut rest[0];
        spec.twin = 0;
        while before.iter().any(|b| b.owner() == spec.owner()) {
            spec.twin += 1;
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
        twin: 0,
        label,
        addr: SocketAddr::new(ip, port),
        access: Access { allow, modules },
        udp: raw.udp.unwrap_or(true),
        admin: raw.admin.unwrap_or(false),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(label: &str, addr: &str) -> ListenerSpec {
        ListenerSpec {
            label: label.into(),
            addr: addr.parse().unwrap(),
            access: Access::default(),
            udp: true,
            admin: false,
            framing: Framing::default(),
            twin: 0,
        }
    }

    #[test]
    fn unnamed_listeners_on_one_address_get_owners_of_their_own() {
        let mut specs = vec![
            spec(UNNAMED, "127.0.0.1:0"),
            spec("web", "127.0.0.1:0"),
            spec(UNNAMED, "127.0.0.1:0"),
            spec(UNNAMED, "127.0.0.1:0"),
            spec(UNNAMED, "127.0.0.1:9"),
        ];
        tell_apart(&mut specs);
        let owners: Vec<String> = specs.iter().map(ListenerSpec::owner).collect();
        assert_eq!(
            owners,
            [
                "listener@127.0.0.1:0",
                "web",
                "listener@127.0.0.1:0#2",
                "listener@127.0.0.1:0#3",
                "listener@127.0.0.1:9",
            ]
        );
    }
}
