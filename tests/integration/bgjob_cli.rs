//! The `bgjob` client against a live daemon: every subcommand and exit code.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use crate::util::{wait_for, Daemon, Setup};

const BGJOB: &str = env!("CARGO_BIN_EXE_bgjob");

fn bgjob(d: &Daemon, args: &[&str]) -> Output {
    bgjob_stdin(d, args, None)
}

fn bgjob_stdin(d: &Daemon, args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(BGJOB)
        .args(args)
        .env("BGJOB_SERVER", d.addr.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(data) = stdin {
        input.write_all(data).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn run_send_and_ping() {
    let d = Setup::new()
        .module("test", "#!/bin/sh\nprintf Test\n")
        .module("cat", "#!/bin/sh\nexec cat\n")
        .start();
    let o = bgjob(&d, &["run", "test"]);
    assert_eq!((o.status.code(), out(&o).as_str()), (Some(0), "Test"));
    let o = bgjob(&d, &["run", "cat", "a:b c"]);
    assert_eq!(out(&o), "a:b c");
    let binary: Vec<u8> = (0..=255).collect();
    let o = bgjob_stdin(&d, &["run", "cat"], Some(&binary));
    assert_eq!(o.stdout, binary, "stdin, binary-safe");
    let o = bgjob_stdin(&d, &["run", "cat", "-"], Some(b"dash"));
    assert_eq!(out(&o), "dash");
    let o = bgjob(&d, &["ping"]);
    assert!(
        o.status.success() && out(&o).starts_with("oleh from "),
        "{}",
        out(&o)
    );
    let file = d.dir.path().join("sent");
    d.add_module("note", &format!("#!/bin/sh\ncat > {}\n", file.display()));
    let o = bgjob(&d, &["send", "note", "over udp"]);
    assert!(o.status.success());
    wait_for("the datagram's job", || {
        std::fs::read_to_string(&file).is_ok_and(|s| s == "over udp")
    });
}

#[test]
fn queue_subcommands() {
    let d = Setup::new()
        .module("slow", "#!/bin/sh\nsleep 0.3\nprintf later\n")
        .module("hang", "#!/bin/sh\nsleep 30\n")
        .settings(r#""max_jobs": 1"#)
        .start();
    let slow = out(&bgjob(&d, &["add", "slow", "x"])).trim().to_string();
    assert!(slow.parse::<u64>().is_ok_and(|id| id < 1 << 53), "{slow}");
    let hang = out(&bgjob(&d, &["add", "hang"])).trim().to_string();
    assert_eq!(out(&bgjob(&d, &["check", &hang])), "waiting\n");
    let o = bgjob(&d, &["get", &slow]);
    assert_eq!((o.status.code(), out(&o).as_str()), (Some(0), "later"));
    wait_for("running", || {
        out(&bgjob(&d, &["check", &hang])) == "running\n"
    });
    let o = bgjob(&d, &["list"]);
    assert!(err(&o).starts_with("403: Forbidden\n"), "not over TCP");
    assert!(err(&o).contains("--socket PATH"), "{}", err(&o));
    let socket = d.operator_socket().display().to_string();
    let list = out(&bgjob(&d, &["--socket", &socket, "list"]));
    assert!(
        list.starts_with(&format!("{hang} hang queue running ")),
        "{list}"
    );
    let info = out(&bgjob(&d, &["info", &hang]));
    assert!(info.contains("status: running\n"), "{info}");
    let stats = out(&bgjob(&d, &["stats"]));
    assert!(stats.contains("jobs_running: 1\n"), "{stats}");
    let o = bgjob(&d, &["cancel", &hang]);
    assert_eq!(
        (o.status.code(), out(&o).as_str()),
        (Some(0), "cancelled: running job killed\n")
    );
    let o = bgjob(&d, &["get", &slow]);
    assert_eq!(
        (o.status.code(), err(&o).as_str()),
        (Some(5), "404: Unknown job\n")
    );
    let o = bgjob(&d, &["check", "99"]);
    assert_eq!(o.status.code(), Some(5));
}

#[test]
fn each_error_class_has_its_exit_code() {
    let d = Setup::new()
        .module("fail", "#!/bin/sh\nexit 1\n")
        .module("slow", "#!/bin/sh\nsleep 5\n")
        .settings(r#""max_request_bytes": 20, "job_timeout_secs": 0.3"#)
        .start();
    let code = |args: &[&str]| bgjob(&d, args).status.code();
    let o = bgjob(&d, &["run", "nosuch"]);
    assert_eq!(
        (o.status.code(), err(&o).as_str()),
        (Some(4), "400: Unknown request\n")
    );
    assert!(o.stdout.is_empty(), "errors go to stderr");
    assert_eq!(code(&["get", "42"]), Some(5));
    assert_eq!(code(&["run", "fail"]), Some(6));
    assert_eq!(code(&["run", "slow"]), Some(7), "504");
    let o = bgjob(&d, &["--timeout", "0.1", "run", "slow"]);
    assert_eq!(o.status.code(), Some(7), "the client's own limit");
    assert!(
        err(&o).ends_with(": timed out after 0.1 s\n") && !err(&o).contains("os error"),
        "{}",
        err(&o)
    );
    assert_eq!(code(&["run", "fail", &"x".repeat(100)]), Some(9));
    let busy = Setup::new()
        .settings(r#""max_waiting": 0"#)
        .module("fail", "#!/bin/sh\nexit 1\n")
        .start();
    assert_eq!(bgjob(&busy, &["run", "fail"]).status.code(), Some(8));
    drop(busy);
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let o = Command::new(BGJOB)
        .args(["--server", &closed.to_string(), "ping"])
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(
        Command::new(BGJOB)
            .arg("frobnicate")
            .output()
            .unwrap()
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn every_subcommand_has_help() {
    for sub in [
        "run", "send", "add", "check", "get", "cancel", "info", "stats", "list", "ping", "status",
    ] {
        let o = Command::new(BGJOB).args([sub, "--help"]).output().unwrap();
        assert!(o.status.success(), "{sub}");
        let help = String::from_utf8_lossy(&o.stdout);
        assert!(help.contains("--server"), "{sub}");
        assert!(help.contains("Exit status:\n  0  ok\n"), "{sub}: {help}");
        assert!(help.contains("  7  timed out"), "{sub}: {help}");
        // Every argument and option line carries a description after its name.
        let mut section = "";
        for line in help.lines() {
            if !line.starts_with(' ') {
                section = line;
                continue;
            }
            if section == "Arguments:" || section == "Options:" {
                let described = line
                    .trim()
                    .split("  ")
                    .filter(|p| !p.trim().is_empty())
                    .count()
                    >= 2;
                assert!(described, "{sub}: {line:?} has no description");
            }
        }
    }
    let o = Command::new(BGJOB).arg("--help").output().unwrap();
    assert!(String::from_utf8_lossy(&o.stdout).contains("Exit status:"));
}

#[test]
fn an_answer_ends_with_a_newline_on_a_terminal_only() {
    let d = Setup::new()
        .module("test", "#!/bin/sh\nprintf Test\n")
        .start();
    assert_eq!(
        out(&bgjob(&d, &["run", "test", ""])),
        "Test",
        "a pipe gets the bytes"
    );
    let command = format!("{BGJOB} --server {} run test ''", d.addr);
    let o = Command::new("script")
        .args(["-qefc", &command, "/dev/null"])
        .output()
        .expect("script (util-linux)");
    assert_eq!(String::from_utf8_lossy(&o.stdout), "Test\r\n");
}

#[test]
fn stats_watch_redraws_in_a_terminal() {
    let d = Setup::new()
        .module("test", "#!/bin/sh\nprintf Test\n")
        .start();
    assert_eq!(d.ask_str("test:"), "Test");
    let command = format!("{BGJOB} --server {} stats --watch --count 3", d.addr);
    let o = Command::new("script")
        .args(["-qefc", &command, "/dev/null"])
        .output()
        .expect("script (util-linux)");
    let screen = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{screen}");
    assert_eq!(
        screen.matches("\x1b[H\x1b[2J").count(),
        3,
        "three redraws: {screen:?}"
    );
    assert!(screen.contains("jobs_running"), "{screen}");
    assert!(screen.contains("module.test"), "{screen}");
    assert!(screen.contains("per s"), "{screen}");
}

#[test]
fn an_empty_list_says_so() {
    let d = Setup::new().start();
    let socket = d.operator_socket().display().to_string();
    let o = bgjob(&d, &["--socket", &socket, "list"]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert_eq!(out(&o), "", "stdout stays one line per job");
    assert!(err(&o).contains("no jobs held"), "{}", err(&o));
}

#[test]
fn stats_watch_into_a_reader_that_stops_ends_quietly() {
    let d = Setup::new().start();
    let mut child = Command::new(BGJOB)
        .args(["--server", &d.addr.to_string(), "stats", "--watch"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // As `| head -n1` does: read a line, then close the pipe.
    let mut first = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut first,
    )
    .unwrap();
    assert!(first.starts_with("bgjobd up "), "{first}");
    let o = child.wait_with_output().unwrap();
    assert_eq!(
        (o.status.code(), err(&o).as_str()),
        (Some(0), ""),
        "no Broken pipe"
    );
}
