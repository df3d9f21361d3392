//! The `bgjob` client's pure parts: what an answer means for the exit code,
//! and how `stats --watch` reads and draws the counters.

use std::collections::BTreeMap;

/// Exit codes of `bgjob`, one per class of answer, for shell scripts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Ok = 0,
    /// A bad command line (clap exits with it itself, `add` for a bad
    /// `--delay`).
    Usage = 2,
    /// The daemon cannot be reached, or the connection broke.
    CannotConnect = 3,
    /// `400`: no such module.
    UnknownModule = 4,
    /// `404`: no such job (or a module's own `404: ...`).
    UnknownJob = 5,
    /// Any other `4xx`/`5xx`: the module or the request failed.
    Failed = 6,
    /// `504` or `408`, or the client's `--timeout` passed.
    TimedOut = 7,
    /// `503`: the waiting line or the connections are full, or shutting down.
    Busy = 8,
    /// `413`: the request is over the daemon's limit.
    TooLarge = 9,
}

/// Classifies an answer by its seed-style `NNN:` code, if it has one.
pub fn classify_answer(answer: &[u8]) -> Exit {
    if !bgjob::net::protocol::is_coded_error(answer) {
        return Exit::Ok;
    }
    let text = String::from_utf8_lossy(answer);
    match text.trim_start().get(..3) {
        Some("400") => Exit::UnknownModule,
        Some("404") => Exit::UnknownJob,
        Some("408") | Some("504") => Exit::TimedOut,
        Some("413") => Exit::TooLarge,
        Some("503") => Exit::Busy,
        _ => Exit::Failed,
    }
}

/// The word for a `queue:check` digit.
pub fn status_word(digit: &str) -> Option<&'static str> {
    match digit.trim() {
        "0" => Some("waiting"),
        "1" => Some("running"),
        "2" => Some("done"),
        _ => None,
    }
}

/// Reads `key: value` lines.
pub fn parse_stats(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// One screen of `bgjob stats --watch`: the gauges, and the totals with
/// their rate per second since the previous screen.
pub fn draw_stats(
    now: &BTreeMap<String, String>,
    before: Option<&BTreeMap<String, String>>,
    secs: f64,
) -> String {
    let num = |m: &BTreeMap<String, String>, k: &str| m.get(k).and_then(|v| v.parse::<f64>().ok());
    let mut out = String::from("bgjobd");
    if let Some(up) = now.get("uptime_secs") {
        out.push_str(&format!(" up {up} s"));
    }
    out.push_str("\n\n");
    for key in [
        "jobs_running",
        "jobs_waiting",
        "jobs_done_unfetched",
        "connections_open",
    ] {
        out.push_str(&format!(
            "{key:<22}{:>10}\n",
            now.get(key).map_or("-", String::as_str)
        ));
    }
    out.push_str(&format!(
        "\n{:<22}{:>10}{:>10}\n",
        "total", "count", "per s"
    ));
    let totals = now
        .keys()
        .filter(|k| k.starts_with("total_") || k.starts_with("module."));
    for key in totals {
        let value = num(now, key).unwrap_or(0.0);
        let rate = before
            .and_then(|b| num(b, key))
            .map_or("-".to_string(), |old| {
                format!("{:.1}", (value - old).max(0.0) / secs.max(1e-3))
            });
        out.push_str(&format!("{key:<22}{value:>10}{rate:>10}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_map_to_exit_codes() {
        assert_eq!(classify_answer(b"Test"), Exit::Ok);
        assert_eq!(
            classify_answer(b"400: Unknown request"),
            Exit::UnknownModule
        );
        assert_eq!(classify_answer(b"404: Unknown job"), Exit::UnknownJob);
        assert_eq!(
            classify_answer(b"500: Module fail failed (exit status 1)"),
            Exit::Failed
        );
        assert_eq!(classify_answer(b"410: Module x cancelled"), Exit::Failed);
        assert_eq!(classify_answer(b"504: Module x timed out"), Exit::TimedOut);
        assert_eq!(classify_answer(b"503: Busy"), Exit::Busy);
        assert_eq!(classify_answer(b"413: Request too large"), Exit::TooLarge);
        assert_eq!(classify_answer(b"200: fine"), Exit::Ok);
    }

    #[test]
    fn stats_are_drawn_with_rates() {
        let before = parse_stats("total_ok: 10\njobs_running: 1\n");
        let now = parse_stats("uptime_secs: 5\ntotal_ok: 30\njobs_running: 2\nmodule.test: 4\n");
        let screen = draw_stats(&now, Some(&before), 2.0);
        assert!(screen.starts_with("bgjobd up 5 s\n"));
        assert!(
            screen.contains("jobs_running                   2\n"),
            "{screen}"
        );
        assert!(
            screen.contains("total_ok                      30      10.0\n"),
            "{screen}"
        );
        assert!(
            screen.contains("module.test                    4         -\n"),
            "{screen}"
        );
        assert_eq!(status_word("2\n"), Some("done"));
    }
}
