//! Smaller defects a hostile or unlucky client met: one host seen as two
//! clients, datagram jobs waiting for an unrelated event, modules that
//! vanished still accepted.

use std::io::Write;
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;

use crate::util::{read_to_end, Setup};

#[test]
fn an_ipv4_client_on_an_ipv6_socket_is_the_same_client() {
    let d = Setup::new()
        .arg("--listen")
        .arg("[::]:0")
        .settings(r#""max_connections_per_client": 1"#)
        .start();
    d.wait_log("[::]:");
    let log = d.log();
    let v6_port: u16 = log
        .split("[::]:")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .unwrap()
        .parse()
        .unwrap();
    let _held = d.connect(); // 127.0.0.1 on the IPv4 listener
                             // The same host through the IPv6 socket arrives as ::ffff:127.0.0.1.
    let mut second = TcpStream::connect(("127.0.0.1", v6_port)).unwrap();
    second.write_all(b"helo").unwrap();
    second.shutdown(std::net::Shutdown::Write).unwrap();
    assert_eq!(read_to_end(&mut second), b"503: Too many connections");
    d.wait_log("tcp 127.0.0.1:");
}

#[test]
fn datagram_jobs_without_a_state_folder_start_in_the_same_turn() {
    let d = Setup::new()
        .module("quick", "#!/bin/sh\ntrue\n")
        .arg("--state")
        .arg("none")
        .start();
    for _ in 0..5 {
        d.send_udp(b"quick:");
        std::thread::sleep(std::time::Duration::from_millis(150));
    }
    crate::util::wait_for("five datagram jobs", || {
        d.log().matches("udp 127.0.0.1").count() >= 10
    });
    let log = d.log();
    let waits: Vec<f64> = log
        .lines()
        .filter(|l| l.contains(" quick") && l.contains("waited "))
        .filter_map(|l| l.split("waited ").nth(1)?.split(' ').next()?.parse().ok())
        .collect();
    assert_eq!(waits.len(), 5, "{log}");
    assert!(waits.iter().all(|&ms| ms < 150.0), "waited {waits:?} ms");
}

#[test]
fn a_module_removed_or_no_longer_executable_is_unknown_at_once() {
    let d = Setup::new()
        .module("gone", "#!/bin/sh\nprintf here\n")
        .module("locked", "#!/bin/sh\nprintf here\n")
        .start();
    assert_eq!(d.ask_str("gone:"), "here");
    assert_eq!(d.ask_str("locked:"), "here");
    std::fs::remove_file(d.modules.join("gone")).unwrap();
    let locked = d.modules.join("locked");
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o644)).unwrap();
    for name in ["gone", "locked"] {
        assert_eq!(
            d.ask_str(&format!("{name}:")),
            "400: Unknown request",
            "{name}"
        );
        assert_eq!(
            d.ask_str(&format!("queue:add:{name}:")),
            "400: Unknown request",
            "{name}"
        );
    }
    d.wait_log("module gone removed or no longer executable");
}
