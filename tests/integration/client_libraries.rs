//! The client libraries in `clients/` (PHP, Python), by their own test
//! suites (PHPUnit, pytest), against real daemons started here. Each suite
//! gets two daemons (a plain one and a limited one, as its tests' header
//! describes) and a folder for the `note` module's files, by environment
//! variable. A missing PHPUnit or pytest fails under CI.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use crate::util::{write_module, Daemon, Setup, TempDir};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The daemons a suite talks to, and where `note` writes.
struct Daemons {
    main: Daemon,
    limited: Daemon,
    notes: TempDir,
}

fn modules(notes: &Path) -> Vec<(&'static str, String)> {
    vec![
        ("test", "#!/bin/sh\nprintf Test\n".into()),
        ("fail", "#!/bin/sh\necho failing >&2\nexit 1\n".into()),
        ("echo", "#!/bin/sh\nexec cat\n".into()),
        (
            "sleep",
            "#!/bin/sh\nsleep \"$(cat)\"\nprintf slept\n".into(),
        ),
        (
            "note",
            format!(
                "#!/bin/sh\nread -r name\ncat > {}/\"$name\"\n",
                notes.display()
            ),
        ),
    ]
}

fn start() -> Daemons {
    let notes = TempDir::new("client-notes");
    let mut setup = Setup::new().settings(r#""job_timeout_secs": 2"#);
    for (name, script) in modules(notes.path()) {
        setup = setup.module(name, &script);
    }
    let main = setup.start();

    // Listeners from the config file, to serve only some modules.
    let dir = TempDir::new("client-limited");
    let folder = dir.path().join("modules");
    fs::create_dir(&folder).unwrap();
    for (name, script) in modules(notes.path()) {
        write_module(&folder, name, &script);
    }
    let config = dir.path().join("service.config");
    fs::write(
        &config,
        r#"{"listen": [{"name": "limited", "address": "127.0.0.1", "port": 0, "modules": ["test", "sleep"]}],
            "max_jobs": 1, "max_waiting": 1, "max_request_bytes": 1024, "request_gap_ms": 0, "idle_timeout_secs": 10}"#,
    )
    .unwrap();
    let args = [
        "-vv",
        "-1",
        "-c",
        config.to_str().unwrap(),
        "-m",
        folder.to_str().unwrap(),
    ]
    .map(String::from)
    .to_vec();
    let limited = Daemon::spawn(dir, folder, args);
    Daemons {
        main,
        limited,
        notes,
    }
}

/// Runs a suite's command with the daemons' addresses in its environment.
fn run_suite(program: &str, args: &[&str], daemons: &Daemons) -> Output {
    Command::new(program)
        .args(args)
        .current_dir(ROOT)
        .env("BGJOB_TEST_SERVER", daemons.main.addr.to_string())
        .env(
            "BGJOB_TEST_LIMITED_SERVER",
            daemons.limited.addr.to_string(),
        )
        .env("BGJOB_TEST_NOTES", daemons.notes.path())
        // Keep the checkout free of bytecode caches.
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"))
}

/// True when `program args` runs; otherwise a failure under CI, a note elsewhere.
fn present(program: &str, args: &[&str], package: &str) -> bool {
    let found = Command::new(program)
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "`{program} {}` does not run: bin/test installs {package}",
            args.join(" ")
        );
        eprintln!("skipped: {program} is missing (bin/test installs {package})");
    }
    found
}

/// The number right after `before` on a line of the output (PHPUnit's
/// `OK (21 tests, 70 assertions)`), or 0.
fn count_after(output: &str, before: &str) -> usize {
    output
        .lines()
        .filter_map(|l| l.strip_prefix(before))
        .filter_map(|rest| {
            rest.split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse()
                .ok()
        })
        .next_back()
        .unwrap_or(0)
}

/// The number right before `after` on a line of the output (pytest's
/// `===== 21 passed in 3.20s =====`), or 0.
fn count_before(output: &str, after: &str) -> usize {
    output
        .lines()
        .filter_map(|l| l.split_once(after))
        .filter_map(|(head, _)| {
            head.rsplit(|c: char| !c.is_ascii_digit())
                .next()?
                .parse()
                .ok()
        })
        .next_back()
        .unwrap_or(0)
}

fn report(o: &Output) -> String {
    format!(
        "{:?}\n{}{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn the_php_library_passes_its_phpunit_tests_against_real_daemons() {
    if !present("phpunit", &["--version"], "phpunit") {
        return;
    }
    let daemons = start();
    let o = run_suite("phpunit", &["-c", "clients/php/phpunit.xml.dist"], &daemons);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "phpunit: {}", report(&o));
    // Exactly "OK (N tests, ...)": no test skipped, incomplete or risky.
    let ran = count_after(&out, "OK (");
    assert!(ran >= 20, "phpunit ran {ran} tests: {}", report(&o));
}

#[test]
fn the_python_library_passes_its_pytest_tests_against_real_daemons() {
    // The first interpreter that has pytest (Debian's python3-pytest is
    // /usr/bin/python3's, when another python3 comes first on the PATH).
    let python = ["python3", "/usr/bin/python3"].into_iter().find(|p| {
        Command::new(p)
            .args(["-m", "pytest", "--version"])
            .output()
            .is_ok_and(|o| o.status.success())
    });
    let Some(python) = python else {
        present("python3", &["-m", "pytest", "--version"], "python3-pytest");
        return;
    };
    let daemons = start();
    let o = run_suite(
        python,
        &[
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-rs",
            "clients/python/tests",
        ],
        &daemons,
    );
    let out = String::from_utf8_lossy(&o.stdout);
    // Exit status 5 (no tests collected) is a failure too.
    assert_eq!(o.status.code(), Some(0), "pytest: {}", report(&o));
    assert!(
        !out.contains("skipped"),
        "pytest skipped tests: {}",
        report(&o)
    );
    let ran = count_before(&out, " passed");
    assert!(ran >= 20, "pytest ran {ran} tests: {}", report(&o));
}
