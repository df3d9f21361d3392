//! The dashboard's setting (`"web": {"listen": ..., "allow": [...],
//! "actions": ...}`): where it is served, who may reach it, and whether it
//! may act on jobs. Off unless the config (or `--web`) names an address.

use std::net::SocketAddr;

use serde::Deserialize;

use crate::config::access::Cidr;
use crate::config::values::parse_addr;
use crate::error::Error;

/// The dashboard, as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSettings {
    pub listen: SocketAddr,
    /// Clients allowed; others get `403` (default: loopback only).
    pub allow: Vec<Cidr>,
    /// Cancel, retry, pause and resume from the page (default off).
    pub actions: bool,
}

/// The `web` object as written.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct RawWeb {
    listen: Option<String>,
    allow: Option<Vec<String>>,
    actions: Option<bool>,
}

/// The networks a dashboard allows unless told otherwise.
pub fn loopback() -> Vec<Cidr> {
    ["127.0.0.0/8", "::1/128"]
        .iter()
        .filter_map(|n| Cidr::parse(n).ok())
        .collect()
}

impl WebSettings {
    /// A dashboard on `listen` with the defaults.
    pub fn on(listen: SocketAddr) -> WebSettings {
        WebSettings {
            listen,
            allow: loopback(),
            actions: false,
        }
    }

    /// Reads the `web` object: `listen` is needed (`"off"` or `""` turns
    /// the dashboard off), `allow` entries are networks.
    pub fn parse(raw: RawWeb) -> Result<Option<WebSettings>, Error> {
        let listen = match raw.listen.as_deref() {
            None => {
                return Err(Error::Config(
                    "web.listen: missing (for example \"127.0.0.1:9465\")".into(),
                ))
            }
            Some("") | Some("off") => return Ok(None),
            Some(text) => parse_addr(text).ok_or_else(|| {
                Error::Config(format!(
                    "web.listen: {text:?} is not ADDR:PORT (for example \"127.0.0.1:9465\")"
                ))
            })?,
        };
        let allow = match raw.allow {
            None => loopback(),
            Some(list) => list
                .iter()
                .map(|n| Cidr::parse(n).map_err(|e| Error::Config(format!("web.allow: {e}"))))
                .collect::<Result<_, _>>()?,
        };
        Ok(Some(WebSettings {
            listen,
            allow,
            actions: raw.actions.unwrap_or(false),
        }))
    }

    /// True if `ip` may use the dashboard.
    pub fn allows(&self, ip: std::net::IpAddr) -> bool {
        self.allow.iter().any(|net| net.contains(ip))
    }

    /// True if some allowed network is beyond this host.
    pub fn reaches_beyond_loopback(&self) -> bool {
        self.allow.iter().any(|net| !net.is_loopback())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Option<WebSettings>, Error> {
        WebSettings::parse(serde_json::from_str(text).unwrap())
    }

    #[test]
    fn defaults_are_loopback_and_no_actions() {
        let web = parse(r#"{"listen": "127.0.0.1:9465"}"#).unwrap().unwrap();
        assert_eq!(web.listen, "127.0.0.1:9465".parse().unwrap());
        assert!(!web.actions);
        assert!(web.allows("127.0.0.1".parse().unwrap()));
        assert!(web.allows("::1".parse().unwrap()));
        assert!(!web.allows("10.0.0.1".parse().unwrap()));
        assert!(!web.reaches_beyond_loopback());
    }

    #[test]
    fn allow_and_actions_are_read() {
        let web = parse(r#"{"listen": "[::1]:0", "allow": ["10.0.0.0/8"], "actions": true}"#)
            .unwrap()
            .unwrap();
        assert!(web.actions);
        assert!(web.allows("10.1.2.3".parse().unwrap()));
        assert!(!web.allows("127.0.0.1".parse().unwrap()));
        assert!(web.reaches_beyond_loopback());
        assert_eq!(parse(r#"{"listen": "off"}"#).unwrap(), None);
    }

    #[test]
    fn bad_values_are_errors() {
        let err = |t: &str| parse(t).unwrap_err().to_string();
        assert!(err(r#"{"listen": "nowhere"}"#).contains("web.listen"));
        assert!(err(r#"{"allow": []}"#).contains("web.listen: missing"));
        assert!(err(r#"{"listen": "127.0.0.1:1", "allow": ["x"]}"#).contains("web.allow"));
        assert!(serde_json::from_str::<RawWeb>(r#"{"listen": "a", "colour": 1}"#).is_err());
    }
}
