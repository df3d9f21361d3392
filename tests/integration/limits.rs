//! Limits: request size, waiting line, connections, idle clients, running children.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use crate::util::{read_to_end, wait_for, Setup};

#[test]
fn a_request_over_the_limit_gets_413_and_its_job_is_stopped() {
    let d = Setup::new()
        .module("cat", "#!/bin/sh\nexec cat\n")
        .settings(r#""max_request_bytes": 1000"#)
        .start();
    let mut request = b"cat:".to_vec();
    request.extend([b'a'; 996]);
    assert_eq!(d.ask(&request).len(), 996, "exactly at the limit is fine");
    request.push(b'b');
    assert_eq!(
        d.ask_str(std::str::from_utf8(&request).unwrap()),
        "413: Request too large"
    );
    assert_eq!(d.ask(&[b'q'; 5000]), b"413: Request too large");
    let mut add = b"queue:add:cat:".to_vec();
    add.extend([b'a'; 2000]);
    assert_eq!(d.ask(&add), b"413: Request too large");
    wait_for("no children", || d.children().is_empty());
    d.wait_log("request over 1000 bytes");
}

#[test]
fn a_full_waiting_line_answers_503_busy() {
    let d = Setup::new()
        .module("block", "#!/bin/sh\nsleep 1\nprintf ok\n")
        .settings(r#""max_jobs": 1, "max_waiting": 1"#)
        .start();
    let first = d.add("block:");
    wait_for("running", || {
        d.ask_str(&format!("queue:check:{first}")) == "1"
    });
    let second = d.add("block:");
    assert_eq!(d.ask_str("queue:add:block:"), "503: Busy");
    assert_eq!(d.ask_str("block:"), "503: Busy");
    d.wait_log("waiting line full");
    assert_eq!(d.ask_str(&format!("queue:get:{second}")), "ok");
}

#[test]
fn running_children_are_limited_and_the_rest_wait() {
    let d = Setup::new().arg("--max-jobs").arg("2").start();
    let dir = d.dir.path().join("running");
    std::fs::create_dir(&dir).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    d.add_module(
        "count",
        &format!(
            "#!/bin/sh\ntouch {dir}/$$\nls {dir} | wc -l > {dir}.max.$$\nsleep 0.3\nrm {dir}/$$\nprintf ok\n",
            dir = dir.display()
        ),
    );
    let clients: Vec<_> = (0..6)
        .map(|_| {
            let addr = d.addr;
            std::thread::spawn(move || {
                let mut s = std::net::TcpStream::connect(addr).unwrap();
                s.write_all(b"count:").unwrap();
                s.shutdown(std::net::Shutdown::Write).unwrap();
                read_to_end(&mut s)
            })
        })
        .collect();
    for c in clients {
        assert_eq!(c.join().unwrap(), b"ok");
    }
    let most = std::fs::read_dir(d.dir.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("running.max."))
        .map(|e| {
            std::fs::read_to_string(e.path())
                .unwrap()
                .trim()
                .parse::<u32>()
                .unwrap()
        })
        .max()
        .unwrap();
    assert_eq!(most, 2, "at most two ran at once");
}

#[test]
fn connections_beyond_the_limit_are_refused_with_503() {
    let d = Setup::new().settings(r#""max_connections": 2"#).start();
    let _a = d.connect();
    let _b = d.connect();
    let mut third = d.connect();
    let mut answer = String::new();
    third.read_to_string(&mut answer).unwrap();
    assert_eq!(answer, "503: Too many connections");
    drop((_a, _b));
    // A connection that arrives before the freed slots are reclaimed at the
    // end of the daemon's turn may still be refused (or reset): poll.
    wait_for("room again", || {
        d.try_ask(b"helo").as_deref() == Some(&b"oleh"[..])
    });
}

#[test]
fn a_client_that_sends_nothing_gets_408() {
    let d = Setup::new().settings(r#""idle_timeout_secs": 0.3"#).start();
    let start = Instant::now();
    let mut s = d.connect();
    assert_eq!(read_to_end(&mut s), b"408: Request timeout");
    assert!(start.elapsed() >= Duration::from_millis(250));
    d.wait_log("idle, closed");
}

#[test]
fn the_data_of_waiting_jobs_is_bounded_in_all_and_per_client() {
    use crate::access::ask_from;
    let d = Setup::new()
        .module("block", "#!/bin/sh\nsleep 30\n")
        .module("hold", "#!/bin/sh\nsleep 30\n")
        .settings(
            r#""max_jobs": 1, "max_waiting_bytes": 3000, "max_waiting_bytes_per_client": 2000"#,
        )
        .start();
    let block = d.add("block:");
    wait_for("running", || {
        d.ask_str(&format!("queue:check:{block}")) == "1"
    });
    let add = |from: &str, bytes: usize| {
        ask_from(
            from,
            d.addr,
            &format!("queue:add:hold:{}", "x".repeat(bytes)),
        )
    };
    assert!(add("127.0.0.1", 1500).starts_with("id:"));
    assert_eq!(add("127.0.0.1", 1500), "503: Busy", "this client's share");
    assert!(
        add("127.0.0.2", 1400).starts_with("id:"),
        "another client's"
    );
    assert_eq!(add("127.0.0.3", 200), "503: Busy", "the total");
    // Datagrams count too.
    d.send_udp(format!("hold:{}", "x".repeat(600)).as_bytes());
    d.wait_log("job of 600 bytes refused");
}

#[test]
fn out_of_descriptors_a_waiting_client_is_refused_not_left_hanging() {
    // Started with a hard limit of 64 open files, far below the 1024
    // connections it would take: the clients beyond what the descriptors
    // allow get 503 instead of hanging in the listen backlog.
    use std::io::{BufRead, BufReader};
    use std::net::TcpStream;
    use std::os::unix::process::CommandExt;
    let dir = crate::util::TempDir::new("emfile");
    let mut command = std::process::Command::new(crate::util::BIN);
    command
        .args(["-1", "--listen", "127.0.0.1:0", "--state", "none"])
        .current_dir(dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    // SAFETY: setrlimit is async-signal-safe.
    unsafe {
        command.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: 64,
                rlim_max: 64,
            };
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
            Ok(())
        });
    }
    let mut child = command.spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr: std::net::SocketAddr = line.trim().parse().unwrap();
    let held: Vec<TcpStream> = (0..80).map(|_| TcpStream::connect(addr).unwrap()).collect();
    let mut late = TcpStream::connect(addr).unwrap();
    late.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut answer = String::new();
    let read = late.read_to_string(&mut answer);
    let _ = child.kill();
    let _ = child.wait();
    drop(held);
    read.unwrap();
    assert_eq!(answer, "503: Too many connections");
}

#[test]
fn out_of_descriptors_idle_clients_make_room_for_a_new_one_at_once() {
    // 256 open files, far below max_connections (1024): the table fills
    // with idle clients until the descriptors run out. Making room must
    // start from the descriptors, so a new client is served within a
    // second or so, not refused until the idle timeout drops the others.
    use std::net::TcpStream;
    let d = crate::util::Setup::new()
        .settings(r#""idle_timeout_secs": 60, "request_timeout_secs": 60, "state_dir": "none""#)
        .open_files(256)
        .start();
    let held: Vec<TcpStream> = (0..400)
        .filter_map(|_| TcpStream::connect(d.addr).ok())
        .collect();
    // Only connections open for a second may be closed to make room.
    std::thread::sleep(Duration::from_millis(1500));
    let start = std::time::Instant::now();
    let mut answer = d.try_ask(b"helo").unwrap_or_default();
    // Generous: it takes one accept; the idle timeout is 60 s.
    while answer != b"oleh" && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(100));
        answer = d.try_ask(b"helo").unwrap_or_default();
    }
    assert_eq!(
        String::from_utf8_lossy(&answer),
        "oleh",
        "{} held",
        held.len()
    );
    drop(held);
}
