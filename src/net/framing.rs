//! Where a classic client's request ends, as a listener chooses: the
//! default rules (`net/quiet.rs`), or the old service's, which took the
//! first read that held a `:` as the whole request. A leaf: the config and
//! the connection both name it.

use std::fmt;

/// How a listener ends the request of a client that keeps its write side
/// open (a half-close always ends it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Framing {
    /// Control requests when they parse whole, anything else after a quiet
    /// gap derived from the connection (or `request_gap_ms`).
    #[default]
    Quiet,
    /// As the old service: the first read that holds a `:` ends the
    /// request, with no quiet gap. A request written in two pieces is cut
    /// after the first. Requests without a `:`, and those whose reads end
    /// on a full segment (one large write), end as under `Quiet`.
    FirstRead,
}

impl Framing {
    /// The config's spelling (`"framing": "first-read"`).
    pub fn parse(text: &str) -> Option<Framing> {
        match text {
            "quiet" => Some(Framing::Quiet),
            "first-read" => Some(Framing::FirstRead),
            _ => None,
        }
    }
}

impl fmt::Display for Framing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Framing::Quiet => "quiet",
            Framing::FirstRead => "first-read",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_spelling_round_trips() {
        for framing in [Framing::Quiet, Framing::FirstRead] {
            assert_eq!(Framing::parse(&framing.to_string()), Some(framing));
        }
        assert_eq!(Framing::parse("first_read"), None);
        assert_eq!(Framing::default(), Framing::Quiet);
    }
}
