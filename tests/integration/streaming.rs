//! Streamed answers (`"module_policy": {"m": {"answer": "stream"}}`): the
//! module's stdout is the client's socket. Answers arrive whole (16 MiB
//! included, without the daemon holding them), a failure before any output
//! is still answered `5xx`, one after it resets the connection and is
//! counted; queue jobs stay buffered; the policy is checked and reloaded.

use std::io::{ErrorKind, Read, Write};
use std::net::Shutdown;

use crate::util::{wait_for, write_module, Setup, TempDir};

const SIXTEEN_MIB: usize = 16 << 20;

fn streaming(modules: &[&str]) -> String {
    let policies: Vec<String> = modules
        .iter()
        .map(|m| format!(r#""{m}": {{"answer": "stream"}}"#))
        .collect();
    format!(r#""module_policy": {{{}}}"#, policies.join(", "))
}

/// The daemon's peak resident memory so far, in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// A payload that a shifted or dropped chunk cannot match.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

#[test]
fn streamed_answers_arrive_whole_including_16_mib_without_being_held() {
    let d = Setup::new()
        .module("cat", "#!/bin/sh\nexec cat\n")
        .module("big", "#!/bin/sh\nexec head -c 16777216 /dev/zero\n")
        .settings(&format!(
            r#"{}, "max_request_bytes": 33554432"#,
            streaming(&["cat", "big"])
        ))
        .start();
    let before = peak_rss_kib(d.pid());
    // 16 MiB out of a module that reads nothing (the default output cap,
    // 4 MiB, would fail it if it were held).
    let out = d.ask(b"big:");
    assert_eq!(out.len(), SIXTEEN_MIB);
    assert!(out.iter().all(|&b| b == 0));
    // 16 MiB through cat, written while the answer is read.
    let payload = pattern(SIXTEEN_MIB);
    let mut stream = d.connect();
    let mut writer = stream.try_clone().unwrap();
    let sent = payload.clone();
    let send = std::thread::spawn(move || {
        writer.write_all(b"cat:").unwrap();
        writer.write_all(&sent).unwrap();
        writer.shutdown(Shutdown::Write).unwrap();
    });
    let mut echoed = Vec::new();
    stream.read_to_end(&mut echoed).unwrap();
    send.join().unwrap();
    assert_eq!(echoed.len(), payload.len());
    assert!(echoed == payload, "the echo differs from the payload");
    let grown = peak_rss_kib(d.pid()).saturating_sub(before);
    assert!(
        grown < 8 * 1024,
        "the daemon's peak memory grew by {grown} KiB for 16 MiB answers"
    );
    // Small answers, to a classic client too (it never half-closes).
    assert_eq!(d.ask(b"cat:hello"), b"hello");
    assert_eq!(d.ask_classic(b"cat:classic"), b"classic");
    d.wait_log("out streamed, exit status 0");
}

#[test]
fn a_streamed_module_failing_after_its_first_byte_resets_the_connection_and_is_counted() {
    let d = Setup::new()
        .module("half", "#!/bin/sh\nprintf partial\nexit 3\n")
        .settings(&format!(
            r#"{}, "metrics": "127.0.0.1:0""#,
            streaming(&["half"])
        ))
        .start();
    let mut stream = d.connect();
    stream.write_all(b"half:").unwrap();
    stream.shutdown(Shutdown::Write).unwrap();
    let mut got = Vec::new();
    let end = stream.read_to_end(&mut got);
    assert!(
        matches!(&end, Err(e) if e.kind() == ErrorKind::ConnectionReset),
        "a cut answer must not end like a whole one: {end:?} after {got:?}"
    );
    assert!(b"partial".starts_with(&got), "{got:?}");
    d.wait_log("streamed answer cut after 7 bytes (exit status 3), connection reset");
    d.wait_log("half: in 0 bytes, out streamed, exit status 3");
    let stats = d.ask_str("queue:stats");
    assert!(stats.contains("total_streams_cut: 1\n"), "{stats}");
    assert!(stats.contains("total_failed: 1\n"), "{stats}");
    let metrics = scrape(&d);
    assert!(
        metrics.contains("\nbgjob_streams_cut_total 1\n"),
        "{metrics}"
    );
}

/// The daemon's `/metrics` page.
fn scrape(d: &crate::util::Daemon) -> String {
    d.wait_log("metrics on http://");
    let log = d.log();
    let rest = log.split_once("metrics on http://").unwrap().1;
    let addr = rest.split_once("/metrics").unwrap().0;
    let mut http = std::net::TcpStream::connect(addr).unwrap();
    http.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").unwrap();
    let mut page = String::new();
    http.read_to_string(&mut page).unwrap();
    page
}

#[test]
fn a_streamed_module_failing_before_any_output_still_gets_its_answer() {
    let d = Setup::new()
        .module("fails", "#!/bin/sh\necho oops >&2\nexit 3\n")
        .module("slow", "#!/bin/sh\nsleep 30\n")
        .settings(&format!(
            r#"{}, "job_timeout_secs": 0.3"#,
            streaming(&["fails", "slow"])
        ))
        .start();
    assert_eq!(
        d.ask_str("fails:"),
        "500: Module fails failed (exit status 3)"
    );
    assert_eq!(
        d.ask_classic(b"fails:x"),
        b"500: Module fails failed (exit status 3)"
    );
    assert_eq!(d.ask_str("slow:"), "504: Module slow timed out");
    let stats = d.ask_str("queue:stats");
    assert!(stats.contains("total_streams_cut: 0\n"), "{stats}");
}

#[test]
fn queue_jobs_of_a_streamed_module_keep_their_result() {
    let d = Setup::new()
        .module("cat", "#!/bin/sh\nexec cat\n")
        .settings(&streaming(&["cat"]))
        .start();
    let id = d.add("cat:kept");
    wait_for("the job to finish", || {
        d.ask_str(&format!("queue:check:{id}")) == "2"
    });
    assert_eq!(d.ask_str(&format!("queue:get:{id}")), "kept");
}

#[test]
fn the_policy_is_read_again_on_sighup() {
    let d = Setup::new()
        .module("big", "#!/bin/sh\nexec head -c 5000000 /dev/zero\n")
        .settings(r#""max_output_bytes": 1000"#)
        .start();
    assert_eq!(
        d.ask_str("big:"),
        "500: Module big failed (output over 1000 bytes)"
    );
    let config = d.dir.path().join("service.config");
    std::fs::write(
        &config,
        format!(r#"{{"max_output_bytes": 1000, {}}}"#, streaming(&["big"])),
    )
    .unwrap();
    d.signal("HUP");
    d.wait_log("reloaded");
    assert_eq!(d.ask(b"big:").len(), 5_000_000, "streamed: no output cap");
}

#[test]
fn check_config_names_a_bad_policy_key_and_warns_of_a_policy_for_no_module() {
    let dir = TempDir::new("policy");
    let modules = dir.path().join("modules");
    std::fs::create_dir(&modules).unwrap();
    write_module(&modules, "cat", "#!/bin/sh\nexec cat\n");
    let check = |config: &str| crate::util::check_config(config, &modules, &[]);
    let listen = r#""listen": [{"address": "127.0.0.1", "port": 0}]"#;
    let (code, text) = check(&format!(
        r#"{{{listen}, "module_policy": {{"cat": {{"answer": "stream", "anwser": 1}}}}}}"#
    ));
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("module_policy.cat.anwser"), "{text}");
    let (code, text) = check(&format!(
        r#"{{{listen}, "module_policy": {{"cat": {{"answer": "stream"}}, "gone": {{"answer": "stream"}}}}}}"#
    ));
    assert_eq!(code, Some(3), "a warning, not an error: {text}");
    assert!(
        text.contains("warning: module_policy names \"gone\", which is not a module"),
        "{text}"
    );
    assert!(text.contains("configuration usable"), "{text}");
}
