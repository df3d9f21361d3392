//! What an operator sees in the log at the default level: a start line,
//! refusals and failed jobs at warn (rate-limited), values as users write
//! them, `<N>` priorities under systemd, and fatal errors once.

use std::process::Command;

use crate::util::{Setup, TempDir, BIN};

#[test]
fn the_default_level_tells_start_refusals_and_failures() {
    let d = Setup::new()
        .default_log_level()
        .module("fails", "#!/bin/sh\necho oops >&2\nexit 3\n")
        .module("ok", "#!/bin/sh\ncat\n")
        .start();
    d.wait_log("bgjobd ");
    let log = d.log();
    let start = log.lines().find(|l| l.contains("started:")).unwrap();
    for want in [
        env!("CARGO_PKG_VERSION"),
        &format!("listening on {} tcp+udp", d.addr),
        "allow any",
        "2 modules in",
        "journal sync: always",
    ] {
        assert!(start.contains(want), "{want:?} not in {start:?}");
    }
    assert_eq!(d.ask_str("ok:fine"), "fine");
    assert_eq!(d.ask_str("nosuch:x"), "400: Unknown request");
    d.wait_log("refused with 400: Unknown request: no module \"nosuch\"");
    assert!(d.ask_str("fails:x").contains("exit status 3"));
    d.wait_log("fails: in 1 bytes");
    let log = d.log();
    let failed = log.lines().find(|l| l.contains("fails: in")).unwrap();
    assert!(
        failed.contains("WARN") && failed.contains(", exit status 3,"),
        "{failed}"
    );
    assert!(
        !log.contains("ok: in"),
        "per-request lines stay at -v:\n{log}"
    );
    assert!(!log.contains("Exited(") && !log.contains("[0]"), "{log}");
    let stderr_line = log.lines().find(|l| l.contains("oops")).unwrap();
    assert!(stderr_line.contains("module fails"), "{stderr_line}");
}

#[test]
fn a_flood_of_refusals_is_one_line_a_second_with_a_count() {
    let d = Setup::new().default_log_level().start();
    for _ in 0..100 {
        assert_eq!(d.ask_str("nosuch"), "400: Unknown request");
    }
    // The held-back count is reported once the second is over, even with
    // no further refusal.
    d.wait_log("more lines like the last \"400: Unknown request\" not logged");
    let log = d.log();
    let lines = log
        .lines()
        .filter(|l| l.contains("refused with 400"))
        .count();
    assert!((1..=10).contains(&lines), "{lines} lines:\n{log}");
    let number_before = |line: &str, text: &str| -> Option<u64> {
        let head = line.split_once(text)?.0;
        head.rsplit([' ', '(']).next()?.parse().ok()
    };
    let held: u64 = log
        .lines()
        .filter_map(|l| {
            number_before(l, " more lines like the last").or(number_before(l, " more like it"))
        })
        .sum();
    assert_eq!(
        held as usize + lines,
        100,
        "every refusal logged or counted:\n{log}"
    );
}

#[test]
fn under_systemd_lines_carry_syslog_priorities() {
    let d = Setup::new()
        .default_log_level()
        .env("JOURNAL_STREAM", "8:12345")
        .start();
    d.ask_str("nosuch");
    d.wait_log("<4>tcp ");
    let log = d.log();
    assert!(log.lines().any(|l| l.starts_with("<6>bgjobd ")), "{log}");
    assert!(
        log.lines().all(|l| l.starts_with('<')),
        "no timestamps:\n{log}"
    );

    let d = Setup::new()
        .default_log_level()
        .env("JOURNAL_STREAM", "8:12345")
        .arg("--log-format")
        .arg("plain")
        .start();
    d.wait_log("started:");
    assert!(d.log().starts_with("[20"), "{}", d.log());
}

#[test]
fn an_empty_listener_list_is_a_start_up_error_printed_once() {
    let dir = TempDir::new("nolisten");
    let config = dir.path().join("service.config");
    std::fs::write(&config, r#"{"listen": []}"#).unwrap();
    std::fs::create_dir(dir.path().join("modules")).unwrap();
    for extra in [&[][..], &["--check-config"][..]] {
        let out = Command::new(BIN)
            .arg("-c")
            .arg(&config)
            .arg("-m")
            .arg(dir.path().join("modules"))
            .args(extra)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert_eq!(stderr.matches("\"listen\" is empty").count(), 1, "{stderr}");
    }
}

#[test]
fn a_port_probe_is_answered_but_not_warned_about() {
    // A load balancer's TCP check connects and closes: that is no refusal
    // worth a line at the default level.
    let d = Setup::new().default_log_level().start();
    assert_eq!(d.ask_str(""), "400: Unknown request");
    assert_eq!(d.ask_str("nosuch:"), "400: Unknown request");
    d.wait_log("nosuch");
    assert!(
        !d.log().contains("no module \"\""),
        "an empty request was warned about:\n{}",
        d.log()
    );
}

#[test]
fn a_refusal_logs_the_module_name_and_not_the_data() {
    // One daemon per transport: refusals of a kind share a rate limit.
    let d = Setup::new().default_log_level().start();
    assert_eq!(d.ask_str("registersession:sess42"), "400: Unknown request");
    d.wait_log("refused with 400: Unknown request: no module \"registersession\"");
    let u = Setup::new().default_log_level().start();
    u.send_udp(b"registersession:sess43");
    u.wait_log("dropped, no module \"registersession\"");
    for log in [d.log(), u.log()] {
        assert!(!log.contains("sess4"), "the data was logged:\n{log}");
    }
}

#[test]
fn a_hostile_name_is_escaped_once_in_its_log_line() {
    let d = Setup::new().default_log_level().start();
    assert_eq!(d.ask_str("a\"b\\c\nd:x"), "400: Unknown request");
    // Each byte escaped once: not `\\\"` nor `\\n` (an escape escaped again).
    d.wait_log(r#"no module "a\"b\\c\nd""#);
    let u = Setup::new().default_log_level().start();
    u.send_udp(b"e\"f\ng:x");
    u.wait_log(r#"dropped, no module "e\"f\ng""#);
}
