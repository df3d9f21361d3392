//! The checks a dashboard request passes before it is served: the Host
//! header names this server by address (so a DNS-rebound name cannot
//! reach it from a browser), and an action carries the page's token and
//! an Origin that is the page's own.

/// True if `host` is an IP literal (`127.0.0.1:9465`, `[::1]:9465`, and
/// without a port for a listener on port 80) or `localhost`, with or
/// without a port: names that no other site's DNS can point at this server.
pub fn host_allowed(host: &str) -> bool {
    let port_ok = |p: &str| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit());
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    if let Some(rest) = host.strip_prefix('[') {
        let (ip, port) = match rest.split_once("]:") {
            Some((ip, port)) => (ip, Some(port)),
            None => (rest.strip_suffix(']').unwrap_or("-"), None),
        };
        return ip.parse::<std::net::Ipv6Addr>().is_ok() && port.is_none_or(port_ok);
    }
    let Some((name, port)) = host.rsplit_once(':') else {
        return host.parse::<std::net::Ipv4Addr>().is_ok();
    };
    port_ok(port)
        && (name.eq_ignore_ascii_case("localhost") || name.parse::<std::net::Ipv4Addr>().is_ok())
}

/// True if the request's Origin is the page's own: `http://` and the Host
/// it was sent to.
pub fn origin_matches(origin: Option<&str>, host: Option<&str>) -> bool {
    match (origin, host) {
        (Some(origin), Some(host)) => origin
            .strip_prefix("http://")
            .is_some_and(|rest| rest.eq_ignore_ascii_case(host)),
        _ => false,
    }
}

/// Compares a given token with the page's in time that does not depend on
/// where they differ.
pub fn token_matches(given: Option<&str>, token: &str) -> bool {
    let Some(given) = given else {
        return false;
    };
    let (a, b) = (given.as_bytes(), token.as_bytes());
    if a.len() != b.len() || b.is_empty() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The token of one start: 32 random bytes, in hex.
pub fn token_from(bytes: &[u8; 32]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_addresses_or_localhost() {
        for good in [
            "127.0.0.1:9465",
            "[::1]:80",
            "localhost",
            "localhost:9465",
            "10.0.0.1:1",
            "127.0.0.1",
            "[::1]",
        ] {
            assert!(host_allowed(good), "{good}");
        }
        for bad in [
            "evil.example:9465",
            "[::1",
            "::1",
            "127.0.0.1:",
            "127.0.0.1:99999x",
            "",
            "localhost.evil:80",
            "1.2.3.4.5:80",
        ] {
            assert!(!host_allowed(bad), "{bad}");
        }
    }

    #[test]
    fn origins_must_be_the_pages_own() {
        let host = Some("127.0.0.1:9465");
        assert!(origin_matches(Some("http://127.0.0.1:9465"), host));
        assert!(!origin_matches(Some("http://evil.example"), host));
        assert!(!origin_matches(Some("https://127.0.0.1:9465"), host));
        assert!(!origin_matches(Some("null"), host));
        assert!(!origin_matches(None, host));
        assert!(!origin_matches(Some("http://127.0.0.1:9465"), None));
    }

    #[test]
    fn tokens_match_whole_only() {
        let token = token_from(&[0xab; 32]);
        assert_eq!(token.len(), 64);
        assert!(token_matches(Some(&token), &token));
        assert!(!token_matches(Some(&token[..63]), &token));
        assert!(!token_matches(Some(&token.replace('a', "b")), &token));
        assert!(!token_matches(None, &token));
        assert!(!token_matches(Some(""), ""));
    }
}
