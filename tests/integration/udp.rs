//! UDP: fire and forget.

use std::net::UdpSocket;
use std::time::Duration;

use crate::util::{wait_for, Setup};

#[test]
fn a_datagram_runs_its_module_and_gets_no_reply() {
    let d = Setup::new().start();
    let out = d.dir.path().join("udp-out");
    d.add_module(
        "registersession",
        &format!("#!/bin/sh\n{{ printf '%s %s ' \"$BGJOB_TRANSPORT\" \"$BGJOB_REMOTE\"; cat; }} > {}.tmp\nmv {0}.tmp {0}\nprintf logged-output\n", out.display()),
    );
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .send_to(b"registersession:abc:123\n", d.addr)
        .unwrap();
    wait_for("the module's file", || out.exists());
    let local = socket.local_addr().unwrap();
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        format!("udp {local} abc:123\n")
    );
    socket
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut buf = [0u8; 100];
    assert!(socket.recv_from(&mut buf).is_err(), "UDP must never answer");
    d.wait_log("logged-output");
}

#[test]
fn bad_datagrams_are_counted_and_logged_and_harm_nobody() {
    let d = Setup::new()
        .module("test", "#!/bin/sh\nprintf Test\n")
        .settings(r#""max_request_bytes": 100"#)
        .start();
    d.send_udp(b"nosuch:x");
    d.send_udp(b"");
    d.send_udp(&[0xff; 50]);
    d.send_udp(&[b'a'; 500]);
    d.wait_log("udp 127.0.0.1");
    d.wait_log("over the request limit");
    assert_eq!(d.ask_str("test:"), "Test");
}

#[test]
fn a_datagram_flood_keeps_to_its_budget_and_never_refuses_tcp() {
    let d = Setup::new()
        .module("slow", "#!/bin/sh\nsleep 30\n")
        .module("test", "#!/bin/sh\nprintf Test\n")
        .settings(r#""max_jobs": 1, "max_waiting": 16, "max_waiting_udp": 4"#)
        .start();
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    for _ in 0..50 {
        socket.send_to(b"slow:x", d.addr).unwrap();
    }
    wait_for("the flood counted", || {
        d.ask_str("queue:stats").contains("datagrams_total: 50")
    });
    let stats = d.ask_str("queue:stats");
    // Four waiting (and one running, if it started in time); the rest dropped.
    assert!(
        stats.contains("datagrams_over_budget: 45\n")
            || stats.contains("datagrams_over_budget: 46\n"),
        "{stats}"
    );
    // TCP clients still get in line.
    for _ in 0..8 {
        assert!(d.ask_str("queue:add:test:").starts_with("id:"));
    }
}

#[test]
fn a_listener_can_serve_tcp_only() {
    let d = Setup::new()
        .module("test", "#!/bin/sh\nprintf Test\n")
        .listen("127.0.0.1:0/tcp")
        .start();
    assert_eq!(d.ask_str("test:"), "Test");
    // Nothing of the daemon's is bound to that UDP port.
    let udp = std::fs::read_to_string(format!("/proc/{}/net/udp", d.pid())).unwrap();
    let port = format!(":{:04X} ", d.addr.port());
    let inodes: Vec<String> = std::fs::read_dir(format!("/proc/{}/fd", d.pid()))
        .unwrap()
        .flatten()
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .map(|l| l.display().to_string())
        .filter_map(|l| {
            Some(
                l.strip_prefix("socket:[")?
                    .trim_end_matches(']')
                    .to_string(),
            )
        })
        .collect();
    for line in udp.lines().filter(|l| l.contains(&port)) {
        let inode = line.split_whitespace().nth(9).unwrap_or("");
        assert!(
            !inodes.iter().any(|i| i == inode),
            "the daemon holds a UDP socket: {line}"
        );
    }
    // And a datagram to the port finds no one: the kernel answers it with
    // "port unreachable", which a connected socket reads as a refusal.
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.connect(d.addr).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    socket.send(b"test:").unwrap();
    let got = socket.recv(&mut [0u8; 64]).map_err(|e| e.kind());
    assert_eq!(got, Err(std::io::ErrorKind::ConnectionRefused));
}

#[test]
fn a_reachable_udp_listener_is_warned_about_forged_sources() {
    let d = Setup::new()
        .listen("0.0.0.0:0")
        .settings(r#""allow": ["127.0.0.0/8"]"#)
        .start();
    d.wait_log("UDP source addresses can be forged");
    let d = Setup::new()
        .listen("0.0.0.0:0/tcp")
        .settings(r#""allow": ["127.0.0.0/8"]"#)
        .start();
    d.wait_log("started: listening on");
    assert!(!d.log().contains("can be forged"), "{}", d.log());
}
