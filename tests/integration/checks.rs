//! The start-up check: `--check-config` reports every finding, marked as
//! an error (the daemon would not start: exit 1) or a warning (exit 3, or
//! 0 with --warnings-ok), and start-up warns of the warnings; config errors name their key and
//! line; `--listen localhost:PORT`; and SIGHUP applies listener changes.

use std::fs;
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use crate::util::{check_config as check, wait_for, write_module, Daemon, Setup, TempDir, BIN};

/// A modules folder with one of each problem the check finds.
fn broken_modules(dir: &TempDir) -> std::path::PathBuf {
    let modules = dir.path().join("modules");
    fs::create_dir(&modules).unwrap();
    write_module(&modules, "ok", "#!/bin/sh\ncat\n");
    fs::write(modules.join("noexec"), "#!/bin/sh\necho hi\n").unwrap();
    write_module(&modules, "py", "#!/usr/bin/python9\nprint(1)\n");
    fs::write(
        modules.join("page.js"),
        "exports.TExecute = () => require('nosuchpkg9');\n",
    )
    .unwrap();
    modules
}

#[test]
fn check_config_reports_every_finding_and_start_up_warns_of_them() {
    let dir = TempDir::new("findings");
    let modules = broken_modules(&dir);
    let state = dir.path().join("statefile");
    fs::write(&state, "not a folder").unwrap();
    let config = format!(
        r#"{{"max_jobs": 100000, "state_dir": "{}", "listen": [{{"address": "127.0.0.1", "port": 0}}]}}"#,
        state.display()
    );
    let (code, text) = check(&config, &modules, &[]);
    assert_eq!(code, Some(1), "{text}");
    for want in [
        "warning: max_jobs: 100000 is out of range, 4096 is used",
        "warning: module noexec is not executable (chmod +x ",
        "warning: module py: its #! interpreter /usr/bin/python9 is not found",
        "warning: module page.js needs the npm package nosuchpkg9, which is not installed (run `npm install nosuchpkg9` in ",
        "error: state folder ",
        "is not a folder",
        "1 error and 4 warnings found: bgjobd would not start",
    ] {
        assert!(text.contains(want), "{want:?} not in:\n{text}");
    }
    assert!(!text.contains("configuration ok"), "{text}");

    // Start-up says the same at warning level, and serves what it can.
    let d = Setup::new()
        .default_log_level()
        .module("ok", "#!/bin/sh\ncat\n")
        .module("py", "#!/usr/bin/python9\nprint(1)\n")
        .settings(r#""max_jobs": 100000, "state_dir": "none""#)
        .start();
    d.wait_log("started:");
    let log = d.log();
    assert!(
        log.contains("WARN  bgjobd] max_jobs: 100000 is out of range"),
        "{log}"
    );
    assert!(
        log.contains("module py: its #! interpreter /usr/bin/python9 is not found"),
        "{log}"
    );
    assert_eq!(d.ask_str("ok:fine"), "fine");
}

#[test]
fn warnings_alone_do_not_fail_the_units_check_and_errors_do() {
    let dir = TempDir::new("severity");
    let modules = broken_modules(&dir);
    let listen = r#"[{"address": "127.0.0.1", "port": 1}]"#;
    let (code, text) = check(listen, &modules, &[]);
    assert_eq!(code, Some(3), "warnings only: {text}");
    assert!(
        text.contains("3 warnings found: bgjobd would start"),
        "{text}"
    );
    assert!(
        text.contains("configuration usable: listeners 127.0.0.1:1"),
        "{text}"
    );
    assert!(!text.contains("error:"), "{text}");
    assert_eq!(
        text.lines()
            .filter(|l| l.starts_with("bgjobd: warning: "))
            .count()
            + 2,
        text.lines().count(),
        "the findings, the summary and the count alone: {text}"
    );
    // The unit's own check lines, as systemd runs them before a start and
    // a reload.
    let unit =
        fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/bin/bgjobd.service")).unwrap();
    let checks: Vec<Vec<&str>> = unit
        .lines()
        .filter_map(|l| {
            l.strip_prefix("ExecStartPre=")
                .or(l.strip_prefix("ExecReload="))
        })
        .filter(|l| l.contains("--check-config"))
        .map(|l| l.split_whitespace().skip(1).collect())
        .collect();
    assert_eq!(checks.len(), 2, "{unit}");
    let config = dir.path().join("unit.config");
    let state = dir.path().join("state");
    for (text, ok) in [(listen, true), (r#"{"listen": []}"#, false)] {
        fs::write(&config, text).unwrap();
        for args in &checks {
            let args: Vec<String> = args
                .iter()
                .map(|a| {
                    a.replace("/etc/bgjob/service.config", config.to_str().unwrap())
                        .replace("/etc/bgjob/modules", modules.to_str().unwrap())
                        .replace("/var/lib/bgjob", state.to_str().unwrap())
                })
                .collect();
            let o = Command::new(BIN).args(&args).output().unwrap();
            let err = String::from_utf8_lossy(&o.stderr);
            assert_eq!(o.status.success(), ok, "{args:?} on {text}: {err}");
        }
    }
}

#[test]
fn one_run_shows_every_finding_behind_a_type_error_or_no_listener() {
    let dir = TempDir::new("behind");
    let modules = broken_modules(&dir);
    for config in [r#"{"max_jobs": "8", "listen": []}"#, r#"{"listen": []}"#] {
        let (code, text) = check(config, &modules, &[]);
        assert_eq!(code, Some(1), "{text}");
        assert_eq!(text.matches("error: ").count(), 1, "{text}");
        for want in [
            "warning: module noexec is not executable",
            "warning: module py: its #! interpreter /usr/bin/python9 is not found",
            "1 error and 3 warnings found",
        ] {
            assert!(text.contains(want), "{want:?} not in:\n{text}");
        }
    }
    let (_, text) = check(r#"{"listen": []}"#, &modules, &[]);
    assert!(text.contains("error: \"listen\" is empty"), "{text}");
}

#[test]
fn config_errors_name_the_key_and_line() {
    let dir = TempDir::new("keypath");
    let modules = dir.path().join("modules");
    fs::create_dir(&modules).unwrap();
    let (code, text) = check("{\n  \"max_jobs\": \"8\"\n}", &modules, &[]);
    assert_eq!(code, Some(1));
    assert!(
        text.contains("max_jobs: invalid type: string \"8\", expected u64 at line 2 column"),
        "{text}"
    );
    assert_eq!(text.matches("max_jobs").count(), 1, "printed once: {text}");
    let (_, text) = check(
        r#"{"listen": [{"port": 1, "allow": "10.0.0.0/8"}]}"#,
        &modules,
        &[],
    );
    assert!(text.contains("listen[0].allow: invalid type"), "{text}");
}

#[test]
fn listen_takes_localhost_and_shows_in_the_summary() {
    let dir = TempDir::new("localhost");
    let modules = dir.path().join("modules");
    fs::create_dir(&modules).unwrap();
    write_module(&modules, "test", "#!/bin/sh\nprintf Test\n");
    let (code, text) = check("[]", &modules, &["--listen", "localhost:12350"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("listeners 127.0.0.1:12350 (--listen), 1 modules"),
        "{text}"
    );
    let d = Daemon::spawn(
        dir,
        modules,
        vec![
            "-1".into(),
            "--listen".into(),
            "localhost:0".into(),
            "-m".into(),
            "modules".into(),
        ],
    );
    assert!(d.addr.ip().is_loopback());
    assert_eq!(d.ask_str("test:"), "Test");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn sighup_applies_listener_changes() {
    let dir = TempDir::new("relisten");
    let modules = dir.path().join("modules");
    fs::create_dir(&modules).unwrap();
    write_module(&modules, "test", "#!/bin/sh\nprintf Test\n");
    let config = dir.path().join("service.config");
    let listeners = |ports: &[(u16, &str)]| {
        let list: Vec<String> = ports
            .iter()
            .map(|(p, allow)| {
                format!(r#"{{"name": "l{p}", "address": "127.0.0.1", "port": {p}, "allow": ["{allow}"]}}"#)
            })
            .collect();
        format!(r#"{{"state_dir": "none", "listen": [{}]}}"#, list.join(","))
    };
    let (a, b) = (free_port(), free_port());
    fs::write(&config, listeners(&[(a, "127.0.0.0/8")])).unwrap();
    let args = vec![
        "-v".into(),
        "-1".into(),
        "-c".into(),
        "service.config".into(),
        "-m".into(),
        "modules".into(),
    ];
    let d = Daemon::spawn(dir, modules, args);
    assert_eq!(d.addr.port(), a);
    assert_eq!(d.ask_str("test:"), "Test");

    // Port a's allow list changes; port b is added.
    fs::write(&config, listeners(&[(a, "10.0.0.0/8"), (b, "127.0.0.0/8")])).unwrap();
    d.signal("HUP");
    d.wait_log(&format!("reload: listening on 127.0.0.1:{b}"));
    d.wait_log(&format!(
        "reload: listener 127.0.0.1:{a} now allow 10.0.0.0/8"
    ));
    assert_eq!(d.ask_str("test:"), "403: Forbidden", "a's new allow list");
    let ask_for = |port: u16, request: &str| {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        std::io::Write::write_all(&mut s, request.as_bytes()).unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
        crate::util::read_to_end(&mut s)
    };
    let ask = |port: u16| ask_for(port, "test:");
    assert_eq!(ask(b), b"Test");

    // Port a is removed: closed.
    fs::write(&config, listeners(&[(b, "127.0.0.0/8")])).unwrap();
    d.signal("HUP");
    d.wait_log(&format!("reload: closed listener 127.0.0.1:{a}"));
    wait_for("port a closed", || {
        TcpStream::connect(("127.0.0.1", a)).is_err()
    });
    assert_eq!(ask(b), b"Test");

    // Moving to a port that is taken, beside a free one: nothing is closed.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let c = taken.local_addr().unwrap().port();
    let g = free_port();
    fs::write(
        &config,
        listeners(&[(c, "127.0.0.0/8"), (g, "127.0.0.0/8")]),
    )
    .unwrap();
    d.signal("HUP");
    d.wait_log(&format!("127.0.0.1:{b} (l{b}) kept"));
    assert_eq!(ask(b), b"Test", "still served");
    assert_eq!(ask(g), b"Test", "the free one served");
    drop(taken);

    // A named listener moved to another port keeps its queue jobs.
    let e = free_port();
    let named = |port: u16| {
        listeners(&[(port, "127.0.0.0/8")]).replace(&format!("\"l{port}\""), "\"main\"")
    };
    let f = free_port();
    fs::write(&config, named(f)).unwrap();
    d.signal("HUP");
    d.wait_log(&format!("reload: listening on 127.0.0.1:{f}"));
    let id = String::from_utf8(ask_for(f, "queue:add:test:")).unwrap();
    fs::write(&config, named(e)).unwrap();
    d.signal("HUP");
    d.wait_log(&format!("reload: listening on 127.0.0.1:{e}"));
    wait_for("the job done", || {
        ask_for(e, &format!("queue:check:{id}")) == b"2"
    });
    assert_eq!(ask_for(e, &format!("queue:get:{id}")), b"Test");
    let b = e;

    // A setting read at start only is named.
    fs::write(&config, named(b).replace("\"none\"", "\"state2\"")).unwrap();
    d.signal("HUP");
    d.wait_log("reload: state_dir changed, and take effect at the next restart");
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(ask(b), b"Test");
}

#[test]
fn check_config_finds_a_state_folder_that_cannot_be_created() {
    // /proc/sys takes no new folders, whoever asks.
    let out = std::process::Command::new(BIN)
        .args([
            "--check-config",
            "--listen",
            "127.0.0.1:0",
            "--state",
            "/proc/sys/bgjob/state",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("state folder /proc/sys/bgjob/state cannot be created in /proc/sys"),
        "{stderr}"
    );
}
