//! The `/api/state` document (its fields are described in
//! docs/operations.md): what the loop gathers, as plain data, turned into
//! JSON here. Lists are capped; their `_total` beside them says how many
//! there were.

use serde::Serialize;
use serde_json::Value;

use crate::web::history::Point;

/// Running and failed jobs listed at most.
pub const MAX_LISTED: usize = 200;
/// Bytes of a failed job's stderr shown at most.
pub const MAX_STDERR: usize = 1024;

/// The whole document.
#[derive(Debug, Serialize)]
pub struct State {
    pub version: &'static str,
    pub uptime_secs: u64,
    /// Unix seconds.
    pub now: f64,
    pub actions: bool,
    pub journal: Journal,
    pub counts: Counts,
    /// Cluster mode does not exist yet: always null.
    pub cluster: Option<Value>,
    pub modules: Vec<ModuleRow>,
    pub history: History,
    pub running: Vec<Running>,
    pub running_total: usize,
    pub failed: Vec<Failed>,
    pub failed_total: usize,
}

/// Where the queue is kept and whether it is being written.
#[derive(Debug, Serialize)]
pub struct Journal {
    /// `syncing`, `failing` or `memory`.
    pub state: &'static str,
    pub error: Option<String>,
}

#[derive(Debug, Default, Serialize)]
pub struct Counts {
    pub running: usize,
    pub waiting: usize,
    pub scheduled: usize,
    pub failed: usize,
}

#[derive(Debug, Serialize)]
pub struct ModuleRow {
    pub name: String,
    pub waiting: usize,
    pub running: usize,
    pub done_hour: u32,
    pub failed_hour: u32,
    pub run_p50_ms: Option<f64>,
    pub run_p95_ms: Option<f64>,
    pub paused: bool,
    /// Its `module_policy` as configured (`{}` if none).
    pub policy: Value,
}

#[derive(Debug, Serialize)]
pub struct History {
    pub interval_secs: u64,
    pub points: Vec<Point>,
}

#[derive(Debug, Serialize)]
pub struct Running {
    /// The queue id; `null` for a direct call, which has none.
    pub id: Option<u64>,
    pub module: String,
    /// The listener it came through (`udp` for a datagram's job).
    pub listener: String,
    pub attempt: u32,
    pub age_secs: f64,
    pub progress: Option<Progress>,
}

/// `done` of `total`; an `N%` line is `N` of 100.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Progress {
    pub done: u64,
    pub total: u64,
}

#[derive(Debug, Serialize)]
pub struct Failed {
    pub id: u64,
    pub module: String,
    pub attempts: u32,
    pub age_secs: f64,
    /// How the last attempt ended: `exit 3`, `signal 9`, `timed out`...
    pub exit: String,
    /// What it wrote to stderr first, raw (the page escapes it).
    pub stderr: String,
}

impl State {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }
}

/// At most `max` bytes of `text`, cut at a character boundary.
pub fn cut(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

/// One decimal place is all an age needs.
pub fn tenths(secs: f64) -> f64 {
    (secs * 10.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_has_the_documented_fields() {
        let state = State {
            version: "0.1.0",
            uptime_secs: 3,
            now: 1.5,
            actions: false,
            journal: Journal {
                state: "failing",
                error: Some("disk full".into()),
            },
            counts: Counts::default(),
            cluster: None,
            modules: vec![],
            history: History {
                interval_secs: 10,
                points: vec![],
            },
            running: vec![Running {
                id: None,
                module: "m".into(),
                listener: "main".into(),
                attempt: 1,
                age_secs: 0.5,
                progress: Some(Progress { done: 4, total: 10 }),
            }],
            running_total: 1,
            failed: vec![],
            failed_total: 0,
        };
        let v: Value = serde_json::from_str(&state.to_json()).unwrap();
        assert_eq!(v["journal"]["error"], "disk full");
        assert_eq!(v["cluster"], Value::Null);
        assert_eq!(v["running"][0]["id"], Value::Null);
        assert_eq!(v["running"][0]["progress"]["total"], 10);
        assert_eq!(v["counts"]["scheduled"], 0);
        assert_eq!(v["history"]["interval_secs"], 10);
    }

    #[test]
    fn text_is_cut_at_a_character() {
        assert_eq!(cut("héllo", 2), "h");
        assert_eq!(cut("abc", 10), "abc");
        assert_eq!(tenths(1.26), 1.3);
    }
}
