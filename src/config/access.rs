//! Who may use a listener: allowed client networks (CIDR, IPv4 and IPv6)
//! and, optionally, which modules it serves.

use std::collections::HashSet;
use std::net::IpAddr;

/// A network such as `10.0.0.0/8` or `::1/128` (a bare address is a /32 or
/// /128).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn parse(text: &str) -> Result<Cidr, String> {
        let (addr, prefix) = match text.trim().split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text.trim(), None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("{text:?} is not an IP network"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|&p| p <= max)
                .ok_or_else(|| format!("{text:?}: prefix must be 0 to {max}"))?,
            None => max,
        };
        Ok(Cidr { addr, prefix })
    }

    /// True if `ip` is in this network; an IPv4 client on an IPv6 socket
    /// (`::ffff:a.b.c.d`) counts as its IPv4 address.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                prefix_match(&net.octets(), &ip.octets(), self.prefix)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                prefix_match(&net.octets(), &ip.octets(), self.prefix)
            }
            _ => false,
        }
    }

    /// True if every address of the network is this host's loopback.
    pub fn is_loopback(&self) -> bool {
        match self.addr {
            IpAddr::V4(v4) => v4.is_loopback() && self.prefix >= 8,
            IpAddr::V6(v6) => v6.is_loopback() && self.prefix == 128,
        }
    }
}

/// As written in the config: `10.0.0.0/8`.
impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

fn prefix_match(net: &[u8], ip: &[u8], prefix: u8) -> bool {
    let (whole, rest) = ((prefix / 8) as usize, prefix % 8);
    if net[..whole] != ip[..whole] {
        return false;
    }
    rest == 0 || (net[whole] ^ ip[whole]) >> (8 - rest) == 0
}

/// A listener's rules. Empty rules allow everyone everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Access {
    /// Allowed client networks; `None`: any client.
    pub allow: Option<Vec<Cidr>>,
    /// Modules served; `None`: all.
    pub modules: Option<HashSet<String>>,
}

impl Access {
    pub fn permits(&self, ip: IpAddr) -> bool {
        self.allow
            .as_ref()
            .is_none_or(|nets| nets.iter().any(|n| n.contains(ip)))
    }

    pub fn serves(&self, module: &str) -> bool {
        self.modules.as_ref().is_none_or(|m| m.contains(module))
    }
}

/// For the start-up line: `allow 10.0.0.0/8 127.0.0.1/32, modules a b`.
impl std::fmt::Display for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.allow {
            None => f.write_str("allow any")?,
            Some(nets) => {
                f.write_str("allow")?;
                for net in nets {
                    write!(f, " {net}")?;
                }
            }
        }
        if let Some(modules) = &self.modules {
            let mut names: Vec<&String> = modules.iter().collect();
            names.sort();
            f.write_str(", modules")?;
            for name in names {
                write!(f, " {name}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn networks_contain_their_addresses() {
        let net = Cidr::parse("10.1.0.0/16").unwrap();
        assert!(net.contains(ip("10.1.255.3")));
        assert!(!net.contains(ip("10.2.0.1")));
        assert!(
            net.contains(ip("::ffff:10.1.0.9")),
            "IPv4 client on an IPv6 socket"
        );
        assert!(Cidr::parse("127.0.0.1").unwrap().contains(ip("127.0.0.1")));
        assert!(!Cidr::parse("127.0.0.1").unwrap().contains(ip("127.0.0.2")));
        let odd = Cidr::parse("192.168.4.0/22").unwrap();
        assert!(odd.contains(ip("192.168.7.255")) && !odd.contains(ip("192.168.8.0")));
        let v6 = Cidr::parse("fd00::/8").unwrap();
        assert!(v6.contains(ip("fd12::1")) && !v6.contains(ip("fe80::1")));
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains(ip("8.8.8.8")));
        assert!(!v6.contains(ip("10.0.0.1")));
    }

    #[test]
    fn bad_networks_are_named() {
        assert!(Cidr::parse("10.0.0.0/33").unwrap_err().contains("prefix"));
        assert!(Cidr::parse("example.com")
            .unwrap_err()
            .contains("not an IP network"));
    }

    #[test]
    fn empty_rules_allow_everything() {
        let open = Access::default();
        assert!(open.permits(ip("1.2.3.4")) && open.serves("x"));
        let closed = Access {
            allow: Some(vec![Cidr::parse("127.0.0.0/8").unwrap()]),
            modules: Some(["test".to_string()].into()),
        };
        assert!(closed.permits(ip("127.0.0.5")) && !closed.permits(ip("10.0.0.1")));
        assert!(closed.serves("test") && !closed.serves("less"));
        assert_eq!(open.to_string(), "allow any");
        assert_eq!(closed.to_string(), "allow 127.0.0.0/8, modules test");
    }
}
