//! Modules and clients that misbehave: nothing crashes, blocks or leaks.

use std::io::Write;
use std::time::{Duration, Instant};

use crate::util::{process_alive, read_to_end, wait_for, Setup};

#[test]
fn a_module_past_its_time_limit_is_killed_with_its_whole_process_group() {
    let d = Setup::new().arg("--timeout").arg("0.5").start();
    let pidfile = d.dir.path().join("grandchild");
    d.add_module(
        "hang",
        &format!(
            "#!/bin/sh\nsleep 300 &\necho $! > {}\nprintf partial\nsleep 300\n",
            pidfile.display()
        ),
    );
    let start = Instant::now();
    assert_eq!(d.ask_str("hang:"), "504: Module hang timed out");
    assert!(start.elapsed() < Duration::from_secs(5));
    let grandchild: u32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    wait_for("the grandchild to be gone", || !process_alive(grandchild));
    // The daemon, a child subreaper, reaps the orphaned grandchild itself.
    wait_for("no child or zombie left", || d.children().is_empty());
}

#[test]
fn a_module_ignoring_sigterm_is_killed_after_the_grace() {
    let d = Setup::new()
        .module(
            "stubborn",
            "#!/bin/sh\ntrap '' TERM\nsleep 300 &\nwait\nwait\n",
        )
        .settings(r#""job_timeout_secs": 0.3, "kill_grace_ms": 200"#)
        .start();
    assert_eq!(d.ask_str("stubborn:"), "504: Module stubborn timed out");
    d.wait_log("ignored SIGTERM, killing its process group");
    wait_for("no children", || d.children().is_empty());
}

#[test]
fn a_module_that_never_reads_its_input_still_answers() {
    let d = Setup::new()
        .module("test", "#!/bin/sh\nprintf Test\n")
        .settings(r#""max_request_bytes": 8000000"#)
        .start();
    let mut request = b"test:".to_vec();
    request.extend(std::iter::repeat_n(b'z', 3_000_000));
    assert_eq!(d.ask(&request), b"Test");
    assert_eq!(d.ask_classic(&request), b"Test");
    assert_eq!(d.ask_str("helo"), "oleh");
}

#[test]
fn a_module_that_closes_stdout_and_keeps_running_is_answered_when_it_exits() {
    let d = Setup::new()
        .module("closer", "#!/bin/sh\nprintf early\nexec >&-\nsleep 0.4\n")
        .start();
    let start = Instant::now();
    assert_eq!(d.ask_str("closer:"), "early");
    assert!(
        start.elapsed() >= Duration::from_millis(350),
        "answered before the module exited"
    );
}

#[test]
fn output_held_open_by_an_escaped_process_does_not_hold_the_answer() {
    let d = Setup::new().settings(r#""kill_grace_ms": 300"#).start();
    let pidfile = d.dir.path().join("escaped");
    d.add_module(
        "escape",
        &format!(
            "#!/bin/sh\nprintf x\nsetsid sleep 30 &\necho $! > {}\nsleep 0.3\n",
            pidfile.display()
        ),
    );
    let start = Instant::now();
    assert_eq!(d.ask_str("escape:"), "x");
    assert!(start.elapsed() < Duration::from_secs(10));
    d.wait_log("a process outside its group keeps its output open");
    let pid = std::fs::read_to_string(&pidfile).unwrap();
    let _ = std::process::Command::new("kill").arg(pid.trim()).status();
}

#[test]
fn output_beyond_the_cap_fails_the_job() {
    let d = Setup::new()
        .module("flood", "#!/bin/sh\nexec yes flood\n")
        .settings(r#""max_output_bytes": 1000"#)
        .start();
    assert_eq!(
        d.ask_str("flood:"),
        "500: Module flood failed (output over 1000 bytes)"
    );
    wait_for("no children", || d.children().is_empty());
}

#[test]
fn a_module_that_cannot_start_is_a_clear_failure() {
    let d = Setup::new()
        .module("broken", "no interpreter line\n")
        .start();
    let answer = d.ask_str("broken:");
    assert!(
        answer.starts_with("500: Module broken failed (cannot start: "),
        "{answer}"
    );
    assert_eq!(d.ask_str("helo"), "oleh");
}

#[test]
fn clients_that_vanish_harm_nobody() {
    let d = Setup::new()
        .module("slow", "#!/bin/sh\nsleep 0.3\nprintf done\n")
        .module("cat", "#!/bin/sh\nexec cat\n")
        .start();
    for request in [&b"slow:"[..], b"cat:some data", b"queue:get:id:1", b"hel"] {
        let mut s = d.connect();
        s.write_all(request).unwrap();
        drop(s);
    }
    // A client that resets while its job runs.
    let s = d.connect();
    (&s).write_all(b"slow:").unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    socket_reset(s);
    assert_eq!(d.ask_str("helo"), "oleh");
    wait_for("jobs to finish", || d.children().is_empty());
    assert_eq!(d.ask_str("slow:"), "done");
}

/// Closes with SO_LINGER 0, which sends a reset.
fn socket_reset(s: std::net::TcpStream) {
    use std::os::fd::AsRawFd;
    let linger = libc_linger();
    // SAFETY: setsockopt on a socket we own with a correctly sized struct.
    unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            &linger as *const _ as *const libc::c_void,
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}

fn libc_linger() -> libc::linger {
    libc::linger {
        l_onoff: 1,
        l_linger: 0,
    }
}

#[test]
fn no_zombie_and_no_leaked_descriptor_after_many_requests() {
    let d = Setup::new()
        .module("test", "#!/bin/sh\nprintf Test\n")
        .module("cat", "#!/bin/sh\nexec cat\n")
        .module("fail", "#!/bin/sh\nexit 1\n")
        .module("bg", "#!/bin/sh\nsleep 5 &\nprintf bg\n")
        .start();
    // Before any request: a connection's descriptor closes a moment after
    // the client has read its answer, so a count taken then could be one
    // high. The journal writer rewrites the journal once at start: let it.
    std::thread::sleep(Duration::from_millis(300));
    let baseline = d.fd_count();
    assert_eq!(d.ask_str("test:"), "Test");
    for i in 0..60 {
        assert_eq!(d.ask_str("test:"), "Test");
        assert_eq!(d.ask_str(&format!("cat:{i}")), i.to_string());
        assert_eq!(
            d.ask_str("fail:"),
            "500: Module fail failed (exit status 1)"
        );
        assert_eq!(d.ask_str("bg:"), "bg");
        assert_eq!(d.ask_str("nosuch:"), "400: Unknown request");
        d.send_udp(b"test:");
        let mut half = d.connect();
        half.write_all(b"cat:gone").unwrap();
        drop(half);
    }
    let id = d.ask_str("queue:add:test:");
    assert_eq!(d.ask_str(&format!("queue:get:{id}")), "Test");
    wait_for("every child reaped", || d.children().is_empty());
    let fds = || {
        let dir = format!("/proc/{}/fd", d.pid());
        let mut fds: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| format!("{:?}", std::fs::read_link(e.path()).unwrap_or_default()))
            .collect();
        fds.sort();
        fds
    };
    let start = Instant::now();
    while d.fd_count() != baseline {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "descriptors leaked: {:?}",
            fds()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut s = d.connect();
    s.write_all(b"helo").unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    assert_eq!(read_to_end(&mut s), b"oleh");
}
