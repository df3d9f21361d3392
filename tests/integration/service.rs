//! Running as a service: --check-config, systemd socket activation and
//! readiness, and the client examples of the README.

use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::util::{wait_for, write_module, Daemon, Setup, TempDir, BIN};

fn check(args: &[&str]) -> (Option<i32>, String) {
    let o = Command::new(BIN)
        .arg("--check-config")
        .args(args)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
    (o.status.code(), text)
}

#[test]
fn check_config_names_the_first_problem() {
    let dir = TempDir::new("check");
    let modules = dir.path().join("modules");
    std::fs::create_dir(&modules).unwrap();
    write_module(&modules, "test", "#!/bin/sh\nprintf Test\n");
    let config = dir.path().join("service.config");
    std::fs::write(
        &config,
        r#"[{"server": "x", "address": "127.0.0.1", "port": 12341}]"#,
    )
    .unwrap();
    let (c, m) = (config.to_str().unwrap(), modules.to_str().unwrap());
    let (code, text) = check(&["-c", c, "-m", m]);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("configuration ok: listeners 127.0.0.1:12341, 1 modules"),
        "{text}"
    );

    std::fs::write(&config, r#"{"listen": [], "max_jobz": 1}"#).unwrap();
    let (code, text) = check(&["-c", c, "-m", m]);
    assert_eq!(code, Some(1));
    assert!(text.contains("unknown field `max_jobz`"), "{text}");

    std::fs::write(&config, r#"{"node": "/nonexistent/node"}"#).unwrap();
    std::fs::write(modules.join("page.js"), "").unwrap();
    let (code, text) = check(&["-c", c, "-m", m]);
    assert_eq!(code, Some(3), "a warning: {text}");
    assert!(text.contains("warning: page.js needs Node.js"), "{text}");
    std::fs::remove_file(modules.join("page.js")).unwrap();

    std::fs::write(modules.join("noexec"), "#!/bin/sh\n").unwrap();
    let (code, text) = check(&["-c", c, "-m", m]);
    assert_eq!(code, Some(3), "a warning: {text}");
    assert!(text.contains("noexec is not executable"), "{text}");
}

/// Starts bgjobd as systemd starts it for a socket unit: a TCP and a UDP
/// socket on one loopback address as descriptors 3 and 4, `LISTEN_PID` and
/// `LISTEN_FDS=2`, and the `extra` variables (shell `NAME=value` words).
/// Returns once it answers on the inherited TCP socket.
fn start_activated(dir: TempDir, modules: PathBuf, extra: &str) -> Daemon {
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = tcp.local_addr().unwrap();
    let udp = std::net::UdpSocket::bind(addr).unwrap();
    let (tcp_fd, udp_fd) = (tcp.as_raw_fd(), udp.as_raw_fd());
    let script = format!(
        "export LISTEN_PID=$$ LISTEN_FDS=2 {extra}; exec {BIN} -v --state none -m {}",
        modules.display()
    );
    let mut cmd = Command::new("sh");
    let log = std::fs::File::create(dir.path().join("bgjobd.log")).unwrap();
    cmd.args(["-c", &script])
        .current_dir(dir.path())
        .stderr(log);
    // SAFETY: fcntl and dup2 only, between fork and exec, as systemd hands
    // sockets over. Both are first moved above 3 and 4, so that neither is
    // overwritten nor left close-on-exec by a dup2 onto itself.
    unsafe {
        cmd.pre_exec(move || {
            let (t, u) = (
                libc::fcntl(tcp_fd, libc::F_DUPFD_CLOEXEC, 10),
                libc::fcntl(udp_fd, libc::F_DUPFD_CLOEXEC, 10),
            );
            if t < 0 || u < 0 || libc::dup2(t, 3) < 0 || libc::dup2(u, 4) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn().unwrap();
    drop((tcp, udp));
    let d = Daemon::attach(child, addr, dir, modules);
    wait_for("the daemon on the inherited socket", || {
        std::net::TcpStream::connect(addr).is_ok_and(|_| d.ask_str("helo") == "oleh")
    });
    d
}

#[test]
fn socket_activation_uses_the_sockets_it_is_handed() {
    let dir = TempDir::new("activation");
    let modules = dir.path().join("modules");
    std::fs::create_dir(&modules).unwrap();
    write_module(
        &modules,
        "fds",
        "#!/bin/sh\nls -l /proc/$$/fd | grep -c socket || true\n",
    );
    let out = dir.path().join("udp");
    write_module(
        &modules,
        "note",
        &format!("#!/bin/sh\ncat > {}\n", out.display()),
    );
    write_module(&modules, "env", "#!/bin/sh\nenv\n");
    // Passed on to modules if the daemon still had them.
    std::fs::write(
        dir.path().join("service.config"),
        r#"{"module_env": ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"]}"#,
    )
    .unwrap();
    let mut d = start_activated(dir, modules, "LISTEN_FDNAMES=main:main");
    assert_eq!(
        d.ask_str("fds:").trim(),
        "0",
        "the listening sockets do not leak into modules"
    );
    assert!(
        !d.ask_str("env:").contains("LISTEN_"),
        "the activation variables do not leak into modules"
    );
    d.send_udp(b"note:via the inherited udp socket");
    wait_for("the datagram", || std::fs::read_to_string(&out).is_ok());
    d.signal("TERM");
    assert!(d.wait_exit(Duration::from_secs(5)).success());
}

#[test]
fn socket_activation_names_listeners_as_the_socket_unit_does() {
    let dir = TempDir::new("fdnames");
    let modules = dir.path().join("modules");
    std::fs::create_dir(&modules).unwrap();
    // As systemd sets it for a .socket unit with FileDescriptorName=bgjob-main
    // and a ListenStream= and a ListenDatagram= line.
    let mut d = start_activated(dir, modules, "LISTEN_FDNAMES=bgjob-main:bgjob-main");
    let line = format!("listening on {} tcp+udp (bgjob-main;", d.addr);
    assert!(d.log().contains(&line), "no {line:?} in the log");
    d.signal("TERM");
    assert!(d.wait_exit(Duration::from_secs(5)).success());
}

#[test]
fn systemd_is_told_when_ready_and_when_stopping() {
    let dir = TempDir::new("notify");
    let socket_path = dir.path().join("notify.sock");
    let socket = std::os::unix::net::UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let modules = dir.path().join("modules");
    std::fs::create_dir(&modules).unwrap();
    let child = Command::new(BIN)
        .args(["--listen", "127.0.0.1:0", "-1", "--state", "none", "-m"])
        .arg(&modules)
        .env("NOTIFY_SOCKET", &socket_path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // sd_notify(3): a datagram of newline-separated assignments, the last
    // newline optional.
    let states = || {
        let mut buf = [0u8; 64];
        let n = socket.recv(&mut buf).unwrap();
        String::from_utf8_lossy(&buf[..n])
            .lines()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert_eq!(states(), ["READY=1"]);
    let mut d = Daemon::attach(child, "127.0.0.1:9".parse().unwrap(), dir, modules);
    d.signal("TERM");
    assert_eq!(states(), ["STOPPING=1"]);
    assert!(d.wait_exit(Duration::from_secs(5)).success());
}

#[test]
fn the_readme_client_examples_run_against_a_live_daemon() {
    let d = Setup::new()
        .module("upper", "#!/bin/sh\nexec tr a-z A-Z\n")
        .start();
    let port = d.addr.port().to_string();
    let clients = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients");
    let bin_dir = std::path::Path::new(env!("CARGO_BIN_EXE_bgjob"))
        .parent()
        .unwrap()
        .to_owned();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap());
    let run = |program: &str, file: &str| {
        let o = Command::new(program)
            .arg(format!("{clients}/{file}"))
            .arg(&port)
            .env("PATH", &path)
            .output()
            .unwrap_or_else(|e| panic!("{program} is installed (bin/test installs it): {e}"));
        let text = String::from_utf8_lossy(&o.stdout).into_owned();
        assert!(
            o.status.success(),
            "{file}: {text}{}",
            String::from_utf8_lossy(&o.stderr)
        );
        text
    };
    assert_eq!(
        run("sh", "client.sh"),
        "HELLO FROM BGJOB\nQUEUED\nunknown module: exit 4\nHELLO FROM NC\nHELLO FROM SOCAT\n"
    );
    assert_eq!(
        run("php", "client.php"),
        "HELLO CLASSIC\nHELLO HALF-CLOSED\nQUEUED FROM PHP\nerror: 400: Unknown request\n"
    );
    assert_eq!(
        run("python3", "client.py"),
        "HELLO FROM PYTHON\nQUEUED FROM PYTHON\nerror: 400: Unknown request\n"
    );
}
