//! Modules others can change: `--check-config`, start-up and SIGHUP warn of
//! a modules folder, a module or a folder above them that others than the
//! owner and root may write, and with a listener other hosts can reach,
//! bgjobd refuses to run them unless `allow_writable_modules` says so.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::{wait_for, write_module, Daemon, TempDir, BIN};

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// A folder with a modules folder of one module, and a config file.
fn layout(config: &str) -> (TempDir, PathBuf) {
    let dir = TempDir::new("writable");
    let modules = dir.path().join("modules");
    fs::create_dir(&modules).unwrap();
    write_module(&modules, "test", "#!/bin/sh\nprintf Test\n");
    fs::write(dir.path().join("service.config"), config).unwrap();
    (dir, modules)
}

/// Runs bgjobd on the folder's config and modules, with `extra`: it must
/// exit within 10 s (one that serves instead is killed, and the caller's
/// check of its status fails).
fn bgjobd(dir: &TempDir, extra: &[&str]) -> std::process::Output {
    let mut child = Command::new(BIN)
        .args(crate::util::ON_CONFIG)
        .args(extra)
        .current_dir(dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() && start.elapsed().as_secs() < 10 {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let _ = child.kill();
    child.wait_with_output().unwrap()
}

const LOOPBACK: &str = r#"[{"address": "127.0.0.1", "port": 0}]"#;
const EXPOSED: &str =
    r#"{"listen": [{"address": "0.0.0.0", "port": 0, "allow": ["127.0.0.0/8"], "udp": false}]"#;

#[test]
fn check_config_names_modules_others_can_change() {
    let (dir, modules) = layout(LOOPBACK);
    let out = bgjobd(&dir, &["--check-config"]);
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("writable by"), "{text}");
    chmod(&modules, 0o777);
    chmod(&modules.join("test"), 0o775);
    let out = bgjobd(&dir, &["--check-config"]);
    let text = String::from_utf8_lossy(&out.stderr);
    let folder = fs::canonicalize(&modules).unwrap();
    assert!(
        text.contains(&format!(
            "{} is writable by anyone (mode 0777)",
            folder.display()
        )),
        "{text}"
    );
    assert!(
        text.contains("test is writable by its group (mode 0775)"),
        "{text}"
    );
    assert!(
        text.contains(&format!("chmod go-w {}", folder.display())),
        "{text}"
    );
}

#[test]
fn on_loopback_writable_modules_are_warned_of_and_served() {
    let (dir, modules) = layout(LOOPBACK);
    chmod(&modules.join("test"), 0o777);
    let d = Daemon::spawn_on_config(dir);
    assert_eq!(d.ask_str("test:"), "Test");
    assert!(
        d.log().contains("test is writable by anyone"),
        "{}",
        d.log()
    );
}

#[test]
fn other_hosts_are_not_served_from_writable_modules_unless_allowed() {
    let (dir, modules) = layout(&format!("{EXPOSED}}}"));
    chmod(&modules, 0o777);
    let out = bgjobd(&dir, &[]);
    let text = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("is writable by anyone"), "{text}");
    assert!(text.contains("allow_writable_modules"), "{text}");

    let allowed = format!(r#"{EXPOSED}, "allow_writable_modules": true}}"#);
    fs::write(dir.path().join("service.config"), &allowed).unwrap();
    let d = Daemon::spawn_on_config(dir);
    let local = std::net::SocketAddr::from(([127, 0, 0, 1], d.addr.port()));
    let mut s = std::net::TcpStream::connect(local).unwrap();
    std::io::Write::write_all(&mut s, b"test:").unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    assert_eq!(crate::util::read_to_end(&mut s), b"Test", "allowed");
    assert!(d.log().contains("is writable by anyone"), "still warned");

    // Taken back on SIGHUP: the reload is refused, the old settings stay.
    let config = d.dir.path().join("service.config");
    fs::write(&config, format!("{EXPOSED}}}")).unwrap();
    d.signal("HUP");
    wait_for("the reload refused", || d.log().contains("reload refused"));
    assert!(
        d.log().contains("refuses to run these modules"),
        "{}",
        d.log()
    );
}
