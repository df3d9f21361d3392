//! SIGHUP with a config that would leave nothing served is refused like a
//! broken one, and a reload logs what changed, not what stayed the same.

use std::fs;
use std::path::PathBuf;

use crate::util::{wait_for, write_module, Daemon, TempDir};

/// A daemon on its config file's listeners (not `--listen`), with a
/// module that sleeps a moment, so the time limit in force can be seen.
fn on_config(config: &str) -> (Daemon, PathBuf) {
    let dir = TempDir::new("reload");
    let modules = dir.path().join("modules");
    fs::create_dir(&modules).unwrap();
    write_module(&modules, "nap", "#!/bin/sh\nsleep 0.5\nprintf awake\n");
    let path = dir.path().join("service.config");
    fs::write(&path, config).unwrap();
    (Daemon::spawn_on_config(dir), path)
}

/// Sends SIGHUP and waits for the reload's `n`-th outcome line.
fn reload(d: &Daemon, n: usize) {
    d.signal("HUP");
    wait_for("the reload's outcome", || {
        let log = d.log();
        log.matches("reloaded ").count() + log.matches("reload refused").count() >= n
    });
}

#[test]
fn a_reload_that_would_serve_nothing_is_refused_and_the_old_settings_stay() {
    let (d, config) =
        on_config(r#"{"listen": [{"address": "127.0.0.1", "port": 0}], "job_timeout_secs": 5}"#);
    assert_eq!(d.ask_str("nap:"), "awake");
    // Each of these would close every listener; with the short time limit
    // they carry, a reload that took them would also time the module out.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let broken = [
        r#"{"listen": [], "job_timeout_secs": 0.1}"#.to_string(),
        "[]".to_string(),
        format!(
            r#"{{"listen": [{{"address": "127.0.0.1", "port": {port}}}], "job_timeout_secs": 0.1}}"#
        ),
    ];
    for (n, text) in broken.iter().enumerate() {
        fs::write(&config, text).unwrap();
        reload(&d, n + 1);
        let log = d.log();
        let refused = log.matches("reload refused, old settings kept").count();
        assert_eq!(refused, n + 1, "{text}: refused\n{log}");
        assert_eq!(
            d.ask_str("nap:"),
            "awake",
            "{text}: still served, old limit"
        );
    }
    assert!(d.log().contains("\"listen\" is empty"), "{}", d.log());
    assert!(
        d.log().contains("no listener could be bound"),
        "{}",
        d.log()
    );
    drop(taken);
    // --check-config says the same of an empty list, in either format, and
    // of an address this host does not have (TEST-NET-1, RFC 5737).
    let elsewhere = r#"[{"address": "192.0.2.1", "port": 12341}]"#;
    for (text, said) in [
        (r#"{"listen": []}"#, "\"listen\" is empty"),
        ("[]", "\"listen\" is empty"),
        (
            elsewhere,
            "listener 192.0.2.1:12341 (listener) cannot be bound",
        ),
    ] {
        fs::write(&config, text).unwrap();
        let out = std::process::Command::new(crate::util::BIN)
            .args(["--check-config", "-c"])
            .arg(&config)
            .arg("-m")
            .arg(&d.modules)
            .output()
            .unwrap();
        let told = String::from_utf8_lossy(&out.stderr);
        assert!(told.contains(said), "{text}: {told}");
        assert_ne!(out.status.code(), Some(0), "{text}: {told}");
    }
}

#[test]
fn an_unchanged_reload_names_no_change() {
    let (d, config) = on_config(
        r#"{"listen": [{"address": "127.0.0.1", "port": 0, "udp": false},
                       {"address": "127.0.0.1", "port": 0, "allow": ["127.0.0.1"]}]}"#,
    );
    // A setting read at start only changes once, then stays so.
    let text = fs::read_to_string(&config).unwrap();
    let changed = text.replacen('{', r#"{"metrics": "127.0.0.1:0", "#, 1);
    fs::write(&config, changed).unwrap();
    for n in 1..=3 {
        reload(&d, n);
    }
    let log = d.log();
    assert_eq!(log.matches("metrics changed").count(), 1, "{log}");
    assert_eq!(log.matches("now allow").count(), 0, "{log}");
    assert_eq!(log.matches("reload: closed listener").count(), 0, "{log}");
    assert_eq!(d.ask_str("nap:"), "awake");
}

#[test]
fn a_vanished_module_is_warned_of_at_the_default_level() {
    let (d, _) = on_config(r#"[{"address": "127.0.0.1", "port": 0}]"#);
    write_module(&d.modules, "once", "#!/bin/sh\nprintf here\n");
    assert_eq!(d.ask_str("once:"), "here");
    fs::remove_file(d.modules.join("once")).unwrap();
    assert_eq!(d.ask_str("once:"), "400: Unknown request");
    fs::remove_file(d.modules.join("nap")).unwrap();
    reload(&d, 1);
    let log = d.log();
    assert!(log.contains("WARN"), "{log}");
    assert!(log.contains("module once removed"), "{log}");
    assert!(log.contains("nap removed"), "{log}");
}
