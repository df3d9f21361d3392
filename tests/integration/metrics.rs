//! The optional metrics listener: `/metrics` in the Prometheus text format
//! (checked with `promtool`), `/healthz`, and HTTP refusals, with `curl`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};

use crate::util::{Daemon, Setup};

pub fn metrics_addr(d: &Daemon) -> String {
    d.wait_log("metrics on http://");
    let log = d.log();
    let rest = log.split_once("metrics on http://").unwrap().1;
    rest.split_once("/metrics").unwrap().0.to_string()
}

/// `curl -s -i` of a path: the status line's code and the body.
pub fn curl(addr: &str, path: &str, extra: &[&str]) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-s", "-S", "-i", "--max-time", "10"])
        .args(extra)
        .arg(format!("http://{addr}{path}"))
        .output()
        .expect("curl (bin/test installs it)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| {
            panic!(
                "no status in {text:?} {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    (code, body)
}

#[test]
fn metrics_are_served_in_the_prometheus_format() {
    let d = Setup::new()
        .module("ok", "#!/bin/sh\ncat\n")
        .module("fails", "#!/bin/sh\nexit 3\n")
        .settings(r#""metrics": "127.0.0.1:0""#)
        .start();
    let addr = metrics_addr(&d);
    assert_eq!(d.ask_str("ok:a"), "a");
    assert_eq!(d.ask_str("ok:b"), "b");
    assert!(d.ask_str("fails:").starts_with("500:"));
    assert_eq!(d.ask_str("nosuch"), "400: Unknown request");
    let (code, page) = curl(&addr, "/metrics", &[]);
    assert_eq!(code, 200, "{page}");
    for want in [
        "bgjob_jobs_total{outcome=\"ok\"} 2\n",
        "bgjob_jobs_total{outcome=\"failed\"} 1\n",
        "bgjob_module_jobs_total{module=\"ok\"} 2\n",
        "bgjob_module_jobs_total{module=\"fails\"} 1\n",
        "bgjob_refused_total 1\n",
        "bgjob_job_run_seconds_count 3\n",
        "bgjob_job_wait_seconds_count 3\n",
        "bgjob_request_seconds_count 4\n",
        "bgjob_job_run_seconds_bucket{le=\"+Inf\"} 3\n",
        "# TYPE bgjob_request_seconds histogram\n",
    ] {
        assert!(page.contains(want), "{want:?} not in:\n{page}");
    }
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian's prometheus package; bin/test installs it)");
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(page.as_bytes())
        .unwrap();
    let out = promtool.wait_with_output().unwrap();
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool: {}{}\n{page}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn healthz_and_refusals_over_http() {
    let d = Setup::new()
        .settings(r#""metrics": "127.0.0.1:0", "state_dir": "none""#)
        .start();
    let addr = metrics_addr(&d);
    assert_eq!(curl(&addr, "/healthz", &[]), (200, "ok\n".into()));
    assert_eq!(curl(&addr, "/nope", &[]).0, 404);
    assert_eq!(curl(&addr, "/metrics", &["-X", "POST"]).0, 405);
    // A head that never ends is cut off at its limit.
    let mut s = TcpStream::connect(&addr).unwrap();
    let _ = s.write_all(b"GET /metrics HTTP/1.1\r\n");
    let _ = s.write_all(&vec![b'x'; 9000]);
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 431 "), "{answer:?}");
    // So is a head that ends past it, however it arrives: a 12 KiB head
    // field, a 9 KiB request line.
    let long_field = format!("X-Long: {}", "a".repeat(12 * 1024));
    assert_eq!(curl(&addr, "/metrics", &["-H", &long_field]).0, 431);
    assert_eq!(
        curl(&addr, &format!("/{}", "a".repeat(9 * 1024)), &[]).0,
        431
    );
    // Idle connections cannot lock a scraper out.
    let idle: Vec<TcpStream> = (0..40)
        .map(|_| TcpStream::connect(&addr).unwrap())
        .collect();
    assert_eq!(curl(&addr, "/healthz", &[]).0, 200);
    drop(idle);
    // The daemon's own port is unaffected.
    assert_eq!(d.ask_str("helo"), "oleh");
}

#[test]
fn metrics_are_off_by_default() {
    let d = Setup::new().start();
    d.wait_log("started:");
    assert!(!d.log().contains("metrics on"), "{}", d.log());
}

#[test]
fn healthz_says_503_while_the_journal_cannot_be_written() {
    // The state folder on a 256 KiB tmpfs that is then filled up.
    let dir = crate::util::TempDir::new("fulldisk");
    let state = dir.path().join("small");
    let Some(_disk) = crate::util::SmallDisk::mount(&state, "256k") else {
        return;
    };
    let modules = dir.path().join("modules");
    std::fs::create_dir(&modules).unwrap();
    crate::util::write_module(&modules, "ok", "#!/bin/sh\ncat\n");
    std::fs::write(
        dir.path().join("service.config"),
        r#"{"metrics": "127.0.0.1:0", "state_dir": "small", "listen": [{"port": 0}]}"#,
    )
    .unwrap();
    let args = ["-v", "-1", "-c", "service.config", "-m", "modules"];
    let d = Daemon::spawn(dir, modules, args.iter().map(|a| a.to_string()).collect());
    let addr = metrics_addr(&d);
    assert_eq!(curl(&addr, "/healthz", &[]), (200, "ok\n".into()));
    // Fill the disk, then ask until a journal write fails.
    let _ = std::fs::write(state.join("filler"), vec![0u8; 512 * 1024]);
    let big = "x".repeat(64 * 1024);
    crate::util::wait_for("a failed journal write", || {
        d.ask_str(&format!("queue:add:ok:{big}")) == "503: Journal write failed"
    });
    let (code, body) = curl(&addr, "/healthz", &[]);
    assert_eq!(code, 503, "{body}");
    assert!(body.starts_with("journal failing: "), "{body}");
    let (_, page) = curl(&addr, "/metrics", &[]);
    assert!(page.contains("bgjob_journal_failing 1\n"), "{page}");
}
