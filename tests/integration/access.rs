//! Who may use the daemon, and what modules get: allow lists, per-listener
//! modules, per-client connection limits, the module environment and limits.

use crate::util::{wait_for, write_module, Daemon, Setup, TempDir};

#[test]
fn clients_outside_the_allow_list_are_refused() {
    let d = Setup::new()
        .settings(r#""allow": ["10.0.0.0/8", "fd00::/8"]"#)
        .start();
    let out = d.dir.path().join("ran");
    d.add_module("note", &format!("#!/bin/sh\ntouch {}\n", out.display()));
    assert_eq!(d.ask_str("helo"), "403: Forbidden");
    assert_eq!(d.ask_str("note:"), "403: Forbidden");
    d.send_udp(b"note:");
    d.wait_log("dropped, not an allowed client");
    assert!(!out.exists(), "a refused datagram runs nothing");
    d.wait_log("refused with 403: Forbidden");

    let open = Setup::new()
        .settings(r#""allow": ["127.0.0.0/8", "::1"]"#)
        .start();
    assert_eq!(open.ask_str("helo"), "oleh");
}

#[test]
fn a_listener_can_serve_only_some_modules() {
    let dir = TempDir::new("listener-modules");
    let modules = dir.path().join("modules");
    std::fs::create_dir(&modules).unwrap();
    write_module(&modules, "test", "#!/bin/sh\nprintf Test\n");
    let out = dir.path().join("other-ran");
    write_module(
        &modules,
        "other",
        &format!("#!/bin/sh\ntouch {}\nprintf other\n", out.display()),
    );
    std::fs::write(
        dir.path().join("service.config"),
        r#"{"listen": [{"name": "public", "address": "127.0.0.1", "port": 0, "modules": ["test"]}]}"#,
    )
    .unwrap();
    let d = Daemon::spawn_on_config(dir);
    assert_eq!(d.ask_str("test:"), "Test");
    assert_eq!(d.ask_str("other:"), "403: Forbidden");
    assert_eq!(d.ask_str("queue:add:other:"), "403: Forbidden");
    assert_eq!(
        d.ask_str("helo"),
        "oleh",
        "the daemon's own requests stay open"
    );
    d.send_udp(b"other:");
    d.wait_log("module \"other\" is not served on this listener");
    assert!(!out.exists());
}

#[test]
fn a_listener_open_to_other_hosts_without_an_allow_list_is_warned_about() {
    let d = Setup::new().arg("--listen").arg("0.0.0.0:0").start();
    d.wait_log("is reachable from other hosts and has no allow list");
    let guarded = Setup::new()
        .arg("--listen")
        .arg("0.0.0.0:0")
        .settings(r#""allow": ["127.0.0.0/8"]"#)
        .start();
    guarded.wait_log("started: listening on");
    assert!(!guarded.log().contains("has no allow list"));
}

#[test]
fn one_client_cannot_hold_every_connection() {
    let d = Setup::new()
        .settings(r#""max_connections_per_client": 2"#)
        .start();
    let held = [d.connect(), d.connect()];
    let mut third = d.connect();
    assert_eq!(
        crate::util::read_to_end(&mut third),
        b"503: Too many connections"
    );
    drop(held);
    wait_for("room again", || d.ask_str("helo") == "oleh");
}

#[test]
fn a_client_at_its_bound_loses_its_slowest_idle_connection_not_its_next_request() {
    // On one host every client is 127.0.0.1: idle connections of one
    // program must not lock the others out until the idle timeout.
    let d = Setup::new()
        .settings(r#""max_connections_per_client": 3, "idle_timeout_secs": 60"#)
        .start();
    let mut held = [d.connect(), d.connect(), d.connect()];
    // Only connections open for a second may be closed to make room.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert_eq!(d.ask_str("helo"), "oleh");
    // The oldest idle one was told why and closed.
    let answer = crate::util::read_to_end(&mut held[0]);
    assert!(
        answer.starts_with(b"408"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    d.wait_log("closed to make room");
}

#[test]
fn modules_get_an_allow_listed_environment_and_resource_limits() {
    let d = Setup::new()
        .env("SECRET_TOKEN", "do-not-leak")
        .env("KEEP_ME", "kept")
        .env("LC_TIME", "C")
        .settings(r#""module_env": ["KEEP_ME"], "module_limits": {"open_files": 64, "cpu_secs": 5}"#)
        .module(
            "env",
            "#!/bin/sh\nprintf '%s|%s|%s|%s|%s|%s' \"${SECRET_TOKEN-unset}\" \"$KEEP_ME\" \"$LC_TIME\" \"${PATH:+path}\" \"$(ulimit -n)\" \"$(ulimit -t)\"\n",
        )
        .start();
    assert_eq!(d.ask_str("env:"), "unset|kept|C|path|64|5");
}

#[test]
fn modules_of_a_root_daemon_run_as_nobody() {
    let d = Setup::new()
        .module(
            "whoami",
            "#!/bin/sh\nprintf '%s:%s' \"$(id -u)\" \"$(id -G)\"\n",
        )
        .start();
    let answer = d.ask_str("whoami:");
    // SAFETY: geteuid has no arguments and cannot fail.
    match unsafe { libc::geteuid() } {
        0 => assert_eq!(
            answer, "65534:65534",
            "privileges dropped, supplementary groups cleared"
        ),
        uid => assert!(answer.starts_with(&format!("{uid}:")), "{answer}"),
    }
}

#[test]
fn modules_run_as_root_only_when_allowed() {
    let dir = TempDir::new("root-modules");
    let config = dir.path().join("root.config");
    std::fs::write(&config, r#"{"module_user": "root"}"#).unwrap();
    let out = std::process::Command::new(crate::util::BIN)
        .args(["--listen", "127.0.0.1:0", "--state", "none", "-c"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("modules would run as root"));
    // SAFETY: as above.
    if unsafe { libc::geteuid() } == 0 {
        let d = Setup::new()
            .settings(r#""module_user": "root", "allow_root_modules": true"#)
            .module("whoami", "#!/bin/sh\nid -u\n")
            .start();
        assert_eq!(d.ask_str("whoami:"), "0\n");
    }
}

/// Sends a request from a given loopback address, half-closes, reads the answer.
pub fn ask_from(from: &str, to: std::net::SocketAddr, request: &str) -> String {
    let mut stream = socket_from(from, to);
    use std::io::Write;
    stream.write_all(request.as_bytes()).unwrap();
    stream.shutdown(std::net::Shutdown::Write).unwrap();
    String::from_utf8(crate::util::read_to_end(&mut stream)).unwrap()
}

pub fn socket_from(from: &str, to: std::net::SocketAddr) -> std::net::TcpStream {
    // std has no bind-before-connect: build the socket with libc.
    use std::os::fd::FromRawFd;
    // SAFETY: a new socket bound to a loopback address; ownership passes to TcpStream.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0);
        let ip: std::net::Ipv4Addr = from.parse().unwrap();
        let addr = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: 0,
            sin_addr: libc::in_addr {
                s_addr: u32::from(ip).to_be(),
            },
            sin_zero: [0; 8],
        };
        let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        assert_eq!(
            libc::bind(fd, (&addr as *const libc::sockaddr_in).cast(), len),
            0
        );
        let std::net::SocketAddr::V4(to) = to else {
            panic!("IPv4 only")
        };
        let target = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: to.port().to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from(*to.ip()).to_be(),
            },
            sin_zero: [0; 8],
        };
        assert_eq!(
            libc::connect(fd, (&target as *const libc::sockaddr_in).cast(), len),
            0
        );
        std::net::TcpStream::from_raw_fd(fd)
    }
}

#[test]
fn one_client_cannot_fill_the_waiting_line_for_everybody() {
    let d = Setup::new()
        .module("block", "#!/bin/sh\nsleep 1\n")
        .module("ok", "#!/bin/sh\nprintf ok\n")
        .settings(r#""max_jobs": 1, "max_waiting": 100, "max_waiting_per_client": 2"#)
        .start();
    let block = ask_from("127.0.0.1", d.addr, "queue:add:block:");
    wait_for("running", || {
        d.ask_str(&format!("queue:check:{block}")) == "1"
    });
    assert!(ask_from("127.0.0.1", d.addr, "queue:add:ok:").starts_with("id:"));
    let third = ask_from("127.0.0.1", d.addr, "queue:add:ok:");
    assert!(third.starts_with("id:"));
    assert_eq!(
        ask_from("127.0.0.1", d.addr, "queue:add:ok:"),
        "503: Busy",
        "this client's share is taken"
    );
    assert_eq!(ask_from("127.0.0.1", d.addr, "ok:"), "503: Busy");
    assert!(
        ask_from("127.0.0.2", d.addr, "queue:add:ok:").starts_with("id:"),
        "another client still gets in"
    );
    assert_eq!(d.ask_str(&format!("queue:get:{third}")), "ok");
    assert!(
        ask_from("127.0.0.1", d.addr, "queue:add:ok:").starts_with("id:"),
        "room again once its jobs started"
    );
}
