//! `bgjob status`: the dashboard's `/api/state`, fetched over HTTP from
//! the daemon's `web` listener and printed for people (or raw with
//! `--json`).

use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use serde_json::Value;

/// `GET /api/state` from `addr`: the document's text, or why not.
pub fn fetch(addr: &str, limit: Option<Duration>) -> io::Result<Result<String, String>> {
    let target = addr
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address"))?;
    let mut stream = match limit {
        Some(limit) => TcpStream::connect_timeout(&target, limit)?,
        None => TcpStream::connect(target)?,
    };
    stream.set_read_timeout(limit)?;
    stream.set_write_timeout(limit)?;
    // The Host header names the address as the daemon's Host check wants.
    let request = format!("GET /api/state HTTP/1.1\r\nHost: {target}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes())?;
    let mut bytes = Vec::new();
    stream.read_to_end(&mut bytes)?;
    Ok(split_response(&String::from_utf8_lossy(&bytes)))
}

/// The body of a `200` response, or the status line of another.
pub fn split_response(text: &str) -> Result<String, String> {
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((text, ""));
    let status = head.lines().next().unwrap_or("");
    match status.split_whitespace().nth(1) {
        Some("200") => Ok(body.to_string()),
        _ => Err(format!(
            "the dashboard answered {status:?}: {}",
            body.trim()
        )),
    }
}

fn ms(v: &Value) -> String {
    v.as_f64().map_or("-".into(), |n| format!("{n:.1}"))
}

/// A count as text (JSON values ignore a width when displayed).
fn num(v: &Value) -> String {
    v.as_u64().map_or("-".into(), |n| n.to_string())
}

fn duration(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s} s"),
        s if s < 3600 => format!("{}m {:02}s", s / 60, s % 60),
        s if s < 86_400 => format!("{}h {:02}m", s / 3600, s % 3600 / 60),
        s => format!("{}d {:02}h", s / 86_400, s % 86_400 / 3600),
    }
}

/// The document as lines for people: the header, the modules, the running
/// and failed jobs.
pub fn render(state: &Value) -> String {
    let mut out = String::new();
    let journal = &state["journal"];
    let mut journal_word = journal["state"].as_str().unwrap_or("?").to_string();
    if let Some(error) = journal["error"].as_str() {
        journal_word += &format!(" ({error})");
    }
    let _ = writeln!(
        out,
        "bgjobd {}, up {}, journal {journal_word}, actions {}",
        state["version"].as_str().unwrap_or("?"),
        duration(state["uptime_secs"].as_u64().unwrap_or(0)),
        if state["actions"] == true {
            "on"
        } else {
            "off"
        },
    );
    let c = &state["counts"];
    let _ = writeln!(
        out,
        "jobs: {} running, {} waiting, {} scheduled, {} failed",
        c["running"], c["waiting"], c["scheduled"], c["failed"]
    );
    let modules = state["modules"].as_array().cloned().unwrap_or_default();
    if !modules.is_empty() {
        let width = modules
            .iter()
            .filter_map(|m| m["name"].as_str().map(str::len))
            .max()
            .unwrap_or(6)
            .max(6);
        let _ = writeln!(
            out,
            "\n{:<width$}  waiting  running  done/h  failed/h  p50 ms  p95 ms  paused  policy",
            "module"
        );
        for m in &modules {
            let policy = match m["policy"].as_object() {
                Some(p) if !p.is_empty() => p
                    .iter()
                    .map(|(k, v)| {
                        format!("{k}={}", v.as_str().map_or(v.to_string(), str::to_string))
                    })
                    .collect::<Vec<_>>()
                    .join(" "),
                _ => "-".into(),
            };
            let _ = writeln!(
                out,
                "{:<width$}  {:>7}  {:>7}  {:>6}  {:>8}  {:>6}  {:>6}  {:<6}  {policy}",
                m["name"].as_str().unwrap_or("?"),
                num(&m["waiting"]),
                num(&m["running"]),
                num(&m["done_hour"]),
                num(&m["failed_hour"]),
                ms(&m["run_p50_ms"]),
                ms(&m["run_p95_ms"]),
                if m["paused"] == true { "yes" } else { "no" },
            );
        }
    }
    let id = |v: &Value| v.as_u64().map_or("-".to_string(), |n| n.to_string());
    if let Some(running) = state["running"].as_array().filter(|r| !r.is_empty()) {
        let _ = writeln!(out, "\nrunning ({}):", state["running_total"]);
        for r in running {
            let progress = match (
                r["progress"]["done"].as_u64(),
                r["progress"]["total"].as_u64(),
            ) {
                (Some(done), Some(total)) => format!(", {done}/{total}"),
                _ => String::new(),
            };
            let _ = writeln!(
                out,
                "  {} {} ({}), attempt {}, {:.1} s{progress}",
                id(&r["id"]),
                r["module"].as_str().unwrap_or("?"),
                r["listener"].as_str().unwrap_or(""),
                r["attempt"],
                r["age_secs"].as_f64().unwrap_or(0.0),
            );
        }
    }
    if let Some(failed) = state["failed"].as_array().filter(|f| !f.is_empty()) {
        let _ = writeln!(out, "\nfailed ({}):", state["failed_total"]);
        for f in failed {
            let stderr = f["stderr"].as_str().unwrap_or("");
            let first =
                bgjob::sanitize::loggable(stderr.lines().next().unwrap_or("").as_bytes(), 120);
            let _ = writeln!(
                out,
                "  {} {}, {} attempts, {:.0} s ago, {}: {first}",
                id(&f["id"]),
                f["module"].as_str().unwrap_or("?"),
                f["attempts"],
                f["age_secs"].as_f64().unwrap_or(0.0),
                f["exit"].as_str().unwrap_or("?"),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_reads_as_lines() {
        let state: Value = serde_json::from_str(
            r#"{"version": "0.1.0", "uptime_secs": 3725, "actions": false,
                "journal": {"state": "failing", "error": "disk full"},
                "counts": {"running": 1, "waiting": 2, "scheduled": 0, "failed": 1},
                "modules": [{"name": "render", "waiting": 2, "running": 1, "done_hour": 10,
                  "failed_hour": 1, "run_p50_ms": 12.5, "run_p95_ms": null, "paused": true,
                  "policy": {"max_jobs": 4, "priority": "high"}}],
                "running": [{"id": 7, "module": "render", "listener": "main", "attempt": 2,
                  "age_secs": 3.2, "progress": {"done": 40, "total": 100}}],
                "running_total": 1,
                "failed": [{"id": 9, "module": "render", "attempts": 4, "age_secs": 60.0,
                  "exit": "exit 3", "stderr": "no such invoice\nsecond"}],
                "failed_total": 1}"#,
        )
        .unwrap();
        let text = render(&state);
        assert!(
            text.starts_with("bgjobd 0.1.0, up 1h 02m, journal failing (disk full), actions off\n"),
            "{text}"
        );
        assert!(
            text.contains("jobs: 1 running, 2 waiting, 0 scheduled, 1 failed\n"),
            "{text}"
        );
        assert!(text.contains("render        2        1      10         1    12.5       -  yes     max_jobs=4 priority=high\n"), "{text}");
        assert!(
            text.contains("  7 render (main), attempt 2, 3.2 s, 40/100\n"),
            "{text}"
        );
        assert!(
            text.contains("  9 render, 4 attempts, 60 s ago, exit 3: no such invoice\n"),
            "{text}"
        );
    }

    #[test]
    fn other_statuses_say_what_came() {
        assert_eq!(
            split_response("HTTP/1.1 200 OK\r\nA: b\r\n\r\n{}"),
            Ok("{}".into())
        );
        let no = split_response("HTTP/1.1 403 Forbidden\r\n\r\n403 Forbidden\n").unwrap_err();
        assert!(no.contains("403 Forbidden"), "{no}");
        assert_eq!(duration(59), "59 s");
        assert_eq!(duration(90_000), "1d 01h");
    }
}
