//! What the Debian package ships: the systemd units (checked with
//! `systemd-analyze`), and the man pages and completions generated from
//! the clap definitions.

use std::fs;
use std::process::Command;

use crate::util::{TempDir, BIN};

fn read_doc(name: &str) -> String {
    fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/").to_string() + name).unwrap()
}

/// The highest exposure `systemd-analyze security` may give the service.
const MAX_EXPOSURE: f64 = 2.0;

/// The shipped units, with `/usr/bin/bgjobd` pointing at the built binary
/// (verify checks that the commands exist).
fn units() -> TempDir {
    let dir = TempDir::new("units");
    for unit in ["bgjobd.service", "bgjobd.socket"] {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/bin/").to_string() + unit;
        let text = fs::read_to_string(path).unwrap();
        fs::write(dir.path().join(unit), text.replace("/usr/bin/bgjobd", BIN)).unwrap();
    }
    dir
}

fn systemd_analyze(args: &[&str], dir: &TempDir) -> (bool, String) {
    let out = Command::new("systemd-analyze")
        .args(args)
        .current_dir(dir.path())
        .output()
        .expect("systemd-analyze (bin/test installs systemd)");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[test]
fn the_units_verify_and_the_service_is_sandboxed() {
    let dir = units();
    let (ok, text) = systemd_analyze(
        &["verify", "--man=no", "./bgjobd.service", "./bgjobd.socket"],
        &dir,
    );
    assert!(
        ok && text.trim().is_empty(),
        "systemd-analyze verify:\n{text}"
    );
    let (_, text) = systemd_analyze(&["security", "--offline=true", "./bgjobd.service"], &dir);
    let score: f64 = text
        .lines()
        .find_map(|l| l.split_once("Overall exposure level for bgjobd.service: "))
        .and_then(|(_, rest)| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in:\n{text}"));
    assert!(
        score <= MAX_EXPOSURE,
        "exposure {score} > {MAX_EXPOSURE}:\n{text}"
    );
    let service = fs::read_to_string(dir.path().join("bgjobd.service")).unwrap();
    // Node.js needs writable-executable memory for its JIT.
    assert!(!service
        .lines()
        .any(|l| l.starts_with("MemoryDenyWriteExecute=")));
    assert!(service.contains("DynamicUser=yes") && service.contains("UMask=0077"));
}

#[cfg(feature = "assets")]
#[test]
fn man_pages_and_completions_come_from_the_command_lines() {
    let dir = TempDir::new("assets");
    let status = Command::new(env!("CARGO_BIN_EXE_bgjob-assets"))
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(status.success());
    let read = |path: &str| fs::read_to_string(dir.path().join(path)).unwrap();
    let daemon = read("man/bgjobd.8");
    assert!(
        daemon.starts_with(".ie") || daemon.contains(".TH bgjobd 8"),
        "{daemon}"
    );
    for flag in [
        "check\\-config",
        "warnings\\-ok",
        "log\\-format",
        "print\\-addr",
    ] {
        assert!(daemon.contains(flag), "{flag} not in bgjobd.8");
    }
    // More than the options: what the documents say of the settings, the
    // check, signals, exit status and the installed files.
    for section in ["SETTINGS", "CHECKS", "SIGNALS", "EXIT STATUS", "FILES"] {
        assert!(
            daemon.contains(&format!(".SH \"{section}\"")),
            "no {section}"
        );
    }
    let configuration = read_doc("configuration.md");
    let settings = configuration
        .split("| setting | default | range | meaning |")
        .nth(1)
        .unwrap();
    for row in settings.lines().skip(2).take_while(|l| l.starts_with('|')) {
        let name = row.split('`').nth(1).unwrap();
        assert!(
            daemon.contains(&format!("\\fB{name}")),
            "{name} not in bgjobd.8"
        );
    }
    for text in [
        "SIGHUP",
        "3 warnings only",
        "/etc/bgjob/service.config",
        "/var/lib/bgjob",
        "admin.sock",
    ] {
        assert!(daemon.contains(text), "{text} not in bgjobd.8");
    }
    let client = read("man/bgjob.1");
    for (page, text) in [("bgjobd.8", &daemon), ("bgjob.1", &client)] {
        assert!(!text.contains('`'), "a literal backtick in {page}");
    }
    assert!(
        client.contains(".TH bgjob 1") && client.contains("timed out"),
        "{client}"
    );
    for (file, flag) in [
        ("completions/bgjobd.bash", "--log-format"),
        ("completions/bgjob.bash", "--server"),
        ("completions/_bgjob", "--timeout"),
        ("completions/bgjobd.fish", "check-config"),
    ] {
        assert!(read(file).contains(flag), "{flag} not in {file}");
    }
}
