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
