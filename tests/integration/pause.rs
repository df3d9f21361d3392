//! `queue:pause:<module>` and `queue:resume:<module>` over real sockets:
//! operators only; a paused module's queued jobs do not start while other
//! modules' do, its adds are still accepted and its direct calls answered;
//! the pause is journaled and survives a restart; `queue:stats` lists it;
//! `bgjob pause|resume`.

use std::process::Command;
use std::time::Duration;

use crate::util::{wait_for, Daemon, Setup};

const BGJOB: &str = env!("CARGO_BIN_EXE_bgjob");

/// `bgjob` over the daemon's operator socket: exit status and stdout.
fn bgjob(d: &Daemon, args: &[&str]) -> (Option<i32>, String) {
    let o = Command::new(BGJOB)
        .arg("--socket")
        .arg(d.operator_socket())
        .args(args)
        .output()
        .unwrap();
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
    )
}

/// Long enough for a job that could start to have started.
fn a_while() {
    std::thread::sleep(Duration::from_millis(500));
}

fn stats_line(d: &Daemon) -> Option<String> {
    let stats = d.ask_str("queue:stats");
    let line = stats.lines().find(|l| l.starts_with("paused_modules: "))?;
    Some(line.to_string())
}

#[test]
fn a_paused_module_keeps_its_jobs_waiting_across_a_restart_until_resumed() {
    let mut d = Setup::new()
        .module("held", "#!/bin/sh\nprintf 'held %s' \"$(cat)\"\n")
        .module("free", "#!/bin/sh\nprintf free\n")
        .settings(r#""max_jobs": 4"#)
        .start();
    assert_eq!(d.ask_operator("queue:pause:held"), "paused: held");
    assert_eq!(d.ask_operator("queue:pause:held"), "paused: held", "again");
    assert_eq!(stats_line(&d).as_deref(), Some("paused_modules: held"));
    let held = d.add("held:1");
    let free = d.add("free:");
    assert_eq!(d.ask_str(&format!("queue:get:{free}")), "free");
    assert_eq!(d.ask_str("held:direct"), "held direct", "direct calls run");
    a_while();
    assert_eq!(d.ask_str(&format!("queue:check:{held}")), "0");

    d.crash_and_restart();
    assert_eq!(stats_line(&d).as_deref(), Some("paused_modules: held"));
    let second = d.add("held:2");
    a_while();
    assert_eq!(d.ask_str(&format!("queue:check:{held}")), "0");
    assert_eq!(d.ask_str(&format!("queue:check:{second}")), "0");

    assert_eq!(d.ask_operator("queue:resume:held"), "resumed: held");
    assert_eq!(stats_line(&d), None, "nothing paused");
    assert_eq!(d.ask_str(&format!("queue:get:{held}")), "held 1");
    assert_eq!(d.ask_str(&format!("queue:get:{second}")), "held 2");

    // The resume is journaled too.
    d.crash_and_restart();
    assert_eq!(stats_line(&d), None);
    let third = d.add("held:3");
    assert_eq!(d.ask_str(&format!("queue:get:{third}")), "held 3");
}

#[test]
fn only_operators_pause_and_a_module_must_exist() {
    let d = Setup::new().module("m", "#!/bin/sh\nprintf ran\n").start();
    assert_eq!(d.ask_str("queue:pause:m"), "403: Forbidden");
    assert_eq!(d.ask_str("queue:resume:m"), "403: Forbidden");
    assert_eq!(stats_line(&d), None, "nothing paused by a client");
    assert_eq!(d.ask_operator("queue:pause:nosuch"), "400: Unknown request");
    assert_eq!(d.ask_operator("queue:pause:"), "500: Unknown queue request");
    let id = d.add("m:");
    assert_eq!(d.ask_str(&format!("queue:get:{id}")), "ran");
}

#[test]
fn bgjob_pauses_and_resumes_a_module() {
    let d = Setup::new().module("m", "#!/bin/sh\nprintf ran\n").start();
    assert_eq!(bgjob(&d, &["pause", "m"]), (Some(0), "paused: m\n".into()));
    let id = d.add("m:");
    a_while();
    assert_eq!(d.ask_str(&format!("queue:check:{id}")), "0");
    assert_eq!(
        bgjob(&d, &["resume", "m"]),
        (Some(0), "resumed: m\n".into())
    );
    wait_for("the job to run", || {
        d.ask_str(&format!("queue:check:{id}")) == "2"
    });
    let tcp = Command::new(BGJOB)
        .args(["--server", &d.addr.to_string(), "pause", "m"])
        .output()
        .unwrap();
    assert_eq!(tcp.status.code(), Some(6), "403 over plain TCP");
}

#[test]
fn a_pause_the_journal_cannot_keep_is_refused_and_taken_back() {
    let d = Setup::new().module("m", "#!/bin/sh\nprintf ran\n").start();
    let journal = d.dir.path().join("state/journal");
    let limit = |value: String| {
        let ok = Command::new("prlimit")
            .args(["--pid", &d.pid().to_string(), &format!("--fsize={value}:")])
            .status()
            .expect("prlimit (bin/test installs util-linux)");
        assert!(ok.success());
    };
    let len = std::fs::metadata(&journal).unwrap().len();
    limit(len.to_string());
    assert_eq!(d.ask_operator("queue:pause:m"), "503: Journal write failed");
    assert_eq!(stats_line(&d), None, "the pause was taken back");
    assert_eq!(d.ask_str("m:"), "ran");
    limit("unlimited".into());
    d.wait_log("writes succeed again");
    assert_eq!(d.ask_operator("queue:pause:m"), "paused: m");
    assert_eq!(stats_line(&d).as_deref(), Some("paused_modules: m"));
}

#[test]
fn a_paused_modules_datagrams_wait_too() {
    let d = Setup::new().start();
    let log = d.dir.path().join("got");
    d.add_module("note", &format!("#!/bin/sh\ncat >> {}\n", log.display()));
    assert_eq!(d.ask_operator("queue:pause:note"), "paused: note");
    d.send_udp(b"note:datagram");
    wait_for("the datagram to wait", || {
        d.ask_str("queue:stats").contains("jobs_waiting: 1\n")
    });
    a_while();
    assert!(!log.exists(), "a paused module's datagram does not run");
    assert_eq!(d.ask_operator("queue:resume:note"), "resumed: note");
    wait_for("the datagram to run", || {
        std::fs::read_to_string(&log).unwrap_or_default() == "datagram"
    });
}
