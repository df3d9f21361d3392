//! The command line, the config file and signals.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::util::{read_to_end, wait_for, Daemon, Setup, TempDir, BIN};

#[test]
fn the_seed_config_format_is_read_from_the_default_path() {
    let dir = TempDir::new("seedconf");
    std::fs::write(
        dir.path().join("service.config"),
        r#"[{"server": "background", "address": "127.0.0.1", "port": 0}]"#,
    )
    .unwrap();
    let modules = dir.path().join("modules");
    std::fs::create_dir(&modules).unwrap();
    crate::util::write_module(&modules, "test", "#!/bin/sh\nprintf Test\n");
    // No --config and no --modules: ./service.config and ./modules.
    let d = Daemon::spawn(dir, modules, vec!["-v".into(), "-1".into()]);
    assert_eq!(d.ask_str("test:"), "Test");
    assert!(d.log().contains("tcp+udp (background;"), "{}", d.log());
}

#[test]
fn a_missing_config_is_an_error_unless_listen_is_given() {
    let dir = TempDir::new("noconf");
    let out = Command::new(BIN)
        .current_dir(dir.path())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot read ./service.config"), "{stderr}");
    // --listen: the config may be missing (Setup passes --listen and no --config).
    let d = Setup::new().start();
    assert_eq!(d.ask_str("helo"), "oleh");
}

#[test]
fn an_invalid_config_stops_the_start_with_a_clear_message() {
    let dir = TempDir::new("badconf");
    let config = dir.path().join("bad.config");
    std::fs::write(&config, r#"{"max_jobz": 3}"#).unwrap();
    let out = Command::new(BIN)
        .arg("-c")
        .arg(&config)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("max_jobz"));
}

#[test]
fn the_seed_error_switches_are_accepted() {
    for switch in ["-E", "-e", "-EE"] {
        let d = Setup::new().arg(switch).start();
        assert_eq!(d.ask_str("helo"), "oleh", "{switch}");
    }
    let out = Command::new(BIN).args(["-E", "-e"]).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "-E and -e contradict each other"
    );
}

#[test]
fn command_line_limits_override_the_config() {
    let d = Setup::new()
        .module("slow", "#!/bin/sh\nsleep 2\nprintf late\n")
        .settings(r#""job_timeout_secs": 60"#)
        .arg("--timeout")
        .arg("0.3")
        .start();
    assert_eq!(d.ask_str("slow:"), "504: Module slow timed out");
}

#[test]
fn sigterm_lets_running_jobs_finish_and_exits_zero() {
    let mut d = Setup::new()
        .module("slow", "#!/bin/sh\nsleep 0.5\nprintf finished\n")
        .start();
    let mut s = d.connect();
    s.write_all(b"slow:").unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    d.add("slow:");
    wait_for("both running", || d.children().len() == 2);
    d.signal("TERM");
    assert_eq!(read_to_end(&mut s), b"finished");
    assert!(d.wait_exit(Duration::from_secs(5)).success());
    assert!(
        std::net::TcpStream::connect(d.addr).is_err(),
        "no longer accepting"
    );
    assert!(d.log().contains("stopped: "));
}

#[test]
fn sigint_stops_too_and_waiting_clients_are_told() {
    let mut d = Setup::new()
        .module("slow", "#!/bin/sh\nsleep 0.5\nprintf finished\n")
        .settings(r#""max_jobs": 1"#)
        .start();
    let first = d.ask_str("queue:add:slow:");
    let mut waiting = d.connect();
    waiting.write_all(b"slow:").unwrap();
    waiting.shutdown(std::net::Shutdown::Write).unwrap();
    wait_for("one running", || {
        d.ask_str(&format!("queue:check:{first}")) == "1"
    });
    let kept = d.ask_str("queue:add:slow:");
    d.signal("INT");
    assert_eq!(read_to_end(&mut waiting), b"503: Shutting down");
    assert!(d.wait_exit(Duration::from_secs(5)).success());
    // The stop line says what happened to each waiting job: the queued one
    // is in the journal, the direct call was refused.
    let log = d.log();
    assert!(
        log.contains("of 2 waiting, 1 kept in the journal for the next start, 1 dropped"),
        "{log}"
    );
    d.start_again();
    assert_eq!(d.ask_str(&format!("queue:get:{kept}")), "finished");
}

#[test]
fn jobs_past_the_shutdown_grace_are_killed() {
    let mut d = Setup::new()
        .module("hang", "#!/bin/sh\nsleep 300\n")
        .settings(r#""shutdown_grace_secs": 0"#)
        .start();
    let mut s = d.connect();
    s.write_all(b"hang:").unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    wait_for("running", || d.children().len() == 1);
    let child = d.children()[0].0;
    d.signal("TERM");
    assert!(d.wait_exit(Duration::from_secs(5)).success());
    assert!(!crate::util::process_alive(child));
    assert_eq!(
        read_to_end(&mut s),
        b"500: Module hang failed (killed by signal 9)"
    );
}

#[test]
fn sighup_reloads_limits_and_rescans_modules() {
    let d = Setup::new()
        .module("slow", "#!/bin/sh\nsleep 1\nprintf late\n")
        .module("gone", "#!/bin/sh\nprintf here\n")
        .settings(r#""job_timeout_secs": 60"#)
        .start();
    assert_eq!(d.ask_str("gone:"), "here");
    let config = d.dir.path().join("service.config");
    std::fs::write(&config, r#"{"job_timeout_secs": 0.2}"#).unwrap();
    std::fs::remove_file(d.modules.join("gone")).unwrap();
    d.signal("HUP");
    d.wait_log("reloaded");
    d.wait_log("module gone removed");
    assert_eq!(d.ask_str("slow:"), "504: Module slow timed out");
    assert_eq!(d.ask_str("gone:"), "400: Unknown request");
    std::fs::write(&config, "{ broken").unwrap();
    d.signal("HUP");
    d.wait_log("reload refused, old settings kept");
    assert_eq!(d.ask_str("slow:"), "504: Module slow timed out");
}

#[test]
fn the_index_notices_removed_modules_within_ten_seconds() {
    let d = Setup::new()
        .module("gone", "#!/bin/sh\nprintf here\n")
        .start();
    assert_eq!(d.ask_str("gone:"), "here");
    std::fs::remove_file(d.modules.join("gone")).unwrap();
    let start = std::time::Instant::now();
    while d.ask_str("gone:") != "400: Unknown request" {
        assert!(start.elapsed() < Duration::from_secs(12), "still indexed");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(d.log().contains("module gone removed"));
}

#[test]
fn print_addr_reports_the_bound_port_and_udp_shares_it() {
    let d = Setup::new()
        .module("test", "#!/bin/sh\nprintf Test\n")
        .start();
    assert_ne!(d.addr.port(), 0);
    let udp = std::net::UdpSocket::bind(d.addr);
    assert!(udp.is_err(), "the daemon holds the UDP port too");
}
