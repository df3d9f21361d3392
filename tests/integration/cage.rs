//! Modules in a cage: who they run as, what they can reach, and a first
//! run as root from a folder others cannot enter. The tests that switch
//! users need root (CI runs as root) and say so when they cannot run.

use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::util::{process_alive, wait_for, write_module, Daemon, Setup, TempDir, BIN};

fn root() -> bool {
    crate::util::root_or_skip("switching module users needs root")
}

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// A checkout-like folder only its owner can enter (as `~` is on a fresh
/// server), with a modules folder inside.
fn closed_checkout() -> (TempDir, PathBuf) {
    let dir = TempDir::new("closed");
    let modules = dir.path().join("modules");
    fs::create_dir(&modules).unwrap();
    write_module(&modules, "test", "#!/bin/sh\nprintf Test\n");
    chmod(&modules, 0o755);
    chmod(dir.path(), 0o700);
    (dir, modules)
}

/// Runs bgjobd to its end in `dir` with `args` and the modules folder.
fn run_in(dir: &TempDir, modules: &Path, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .arg("--modules")
        .arg(modules)
        .current_dir(dir.path())
        .output()
        .unwrap()
}

fn start(dir: TempDir, modules: &Path, listen: &str, extra: &[&str]) -> Daemon {
    let mut args: Vec<String> = vec!["-v", "-1", "--listen", listen, "--modules"]
        .into_iter()
        .map(String::from)
        .collect();
    args.push(modules.display().to_string());
    args.extend(extra.iter().map(|a| a.to_string()));
    Daemon::spawn(dir, modules.to_path_buf(), args)
}

#[test]
fn a_first_run_from_a_closed_folder_answers_on_loopback_with_a_warning() {
    if !root() {
        return;
    }
    let (dir, modules) = closed_checkout();
    let d = start(dir, &modules, "127.0.0.1:0", &[]);
    assert_eq!(d.ask_str("test:"), "Test", "{}", d.log());
    let log = d.log();
    assert!(
        log.contains("modules run as nobody, who cannot enter")
            && log.contains("(mode 0700)")
            && log.contains("running modules as root (bgjobd's own user)"),
        "{log}"
    );
}

#[test]
fn a_closed_folder_stops_a_start_that_listens_beyond_loopback() {
    if !root() {
        return;
    }
    let (dir, modules) = closed_checkout();
    let out = run_in(&dir, &modules, &["--listen", "0.0.0.0:0"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let closed = fs::canonicalize(dir.path()).unwrap();
    assert!(
        stderr.contains(&format!(
            "modules run as nobody, who cannot enter {} (mode 0700)",
            closed.display()
        )) && stderr.contains("chmod o+x"),
        "{stderr}"
    );
}

#[test]
fn a_chosen_module_user_must_reach_the_folder_even_on_loopback() {
    if !root() {
        return;
    }
    let (dir, modules) = closed_checkout();
    let config = dir.path().join("service.config");
    fs::write(&config, r#"{"module_user": "nobody"}"#).unwrap();
    let config = config.display().to_string();
    let out = run_in(
        &dir,
        &modules,
        &["--listen", "127.0.0.1:0", "--config", &config],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("who cannot enter"));
}

#[test]
fn check_config_fails_for_an_unreachable_modules_folder() {
    if !root() {
        return;
    }
    let (dir, modules) = closed_checkout();
    let check = |modules: &Path| {
        run_in(
            &dir,
            modules,
            &["--check-config", "--listen", "127.0.0.1:0"],
        )
    };
    // On loopback bgjobd would start, running the modules as root: a
    // warning; listening elsewhere it would not start: an error.
    let out = check(&modules);
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("warning: modules run as nobody, who cannot enter"),
        "{stderr}"
    );
    let out = run_in(&dir, &modules, &["--check-config", "--listen", "0.0.0.0:0"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("error: modules run as nobody, who cannot enter"),
        "{stderr}"
    );
    chmod(dir.path(), 0o711);
    assert_eq!(check(&modules).status.code(), Some(0), "reachable now");
}

const PROBE: &str = "#!/bin/sh
read journal
if cat \"$journal\" >/dev/null 2>&1; then echo journal:readable; else echo journal:closed; fi
if [ -e /proc/$$/fd/9 ]; then echo fd9:open; else echo fd9:closed; fi
grep NoNewPrivs /proc/$$/status
pwd
ulimit -Sn
";

/// Starts bgjobd with descriptor 9 open on a private file (as a careless
/// parent would leave it) and its soft open-files limit at 1024.
fn start_with_inheritance(modules: &Path, dir: TempDir) -> Daemon {
    let secret = dir.path().join("rootonly.log");
    fs::write(&secret, "").unwrap();
    chmod(&secret, 0o600);
    let file = fs::OpenOptions::new().append(true).open(&secret).unwrap();
    let mut command = Command::new(BIN);
    command
        .args(["-v", "-1", "--listen", "127.0.0.1:0", "--modules"])
        .arg(modules)
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(fs::File::create(dir.path().join("bgjobd.log")).unwrap());
    let fd = std::os::fd::AsRawFd::as_raw_fd(&file);
    // SAFETY: dup2 and setrlimit are async-signal-safe.
    unsafe {
        command.pre_exec(move || {
            libc::dup2(fd, 9);
            let mut limit: libc::rlimit = std::mem::zeroed();
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
            limit.rlim_cur = limit.rlim_max.min(1024);
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
            Ok(())
        });
    }
    let mut child = command.spawn().unwrap();
    drop(file);
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line.trim().parse().expect("bgjobd printed its address");
    Daemon::attach(child, addr, dir, modules.to_path_buf())
}

#[test]
fn a_module_sees_no_journal_no_inherited_descriptor_and_cannot_gain_privileges() {
    let dir = TempDir::new("probe");
    let modules = dir.path().join("modules");
    fs::create_dir(&modules).unwrap();
    write_module(&modules, "probe", PROBE);
    let journal = dir.path().join("state/journal");
    let d = start_with_inheritance(&modules, dir);
    assert!(d.ask_str("queue:add:probe:secret").starts_with("id:"));
    let answer = d.ask_str(&format!("probe:{}\n", journal.display()));
    let lines: Vec<&str> = answer.lines().collect();
    if root() {
        assert_eq!(lines[0], "journal:closed", "{answer}");
    }
    assert_eq!(lines[1], "fd9:closed", "{answer}");
    assert_eq!(
        lines[2].split_whitespace().collect::<Vec<_>>(),
        ["NoNewPrivs:", "1"]
    );
    assert_eq!(
        Path::new(lines[3]),
        fs::canonicalize(&modules).unwrap(),
        "own folder"
    );
    let state = fs::metadata(journal.parent().unwrap()).unwrap();
    assert_eq!(state.permissions().mode() & 0o777, 0o700, "state folder");
    let file = fs::metadata(&journal).unwrap();
    assert_eq!(file.permissions().mode() & 0o777, 0o600, "journal");
    // The daemon took its hard limit; modules keep the soft one it had.
    let limits = fs::read_to_string(format!("/proc/{}/limits", d.pid())).unwrap();
    let open_files: Vec<&str> = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(
        open_files[3], open_files[4],
        "soft raised to hard: {limits}"
    );
    let hard: u64 = open_files[4].parse().unwrap();
    assert_eq!(lines[4], hard.min(1024).to_string(), "{answer}");
}

const SLEEPER: &str = "#!/bin/sh\nread f\necho $$ > \"$f\"\nsleep 5\n";
const SIGNALLER: &str = "#!/bin/sh
read f
if kill -0 \"$(cat \"$f\")\" 2>/dev/null; then echo can-signal; else echo cannot-signal; fi
";

fn signal_probe(uids: bool) -> String {
    let mut setup = Setup::new()
        .module("sleeper", SLEEPER)
        .module("signaller", SIGNALLER);
    if uids {
        setup = setup.settings(r#""module_uids": "61000-61015""#);
    }
    let d = setup.start();
    let pid_file = d.dir.path().join("sleeper.pid");
    assert!(d
        .ask_str(&format!("queue:add:sleeper:{}\n", pid_file.display()))
        .starts_with("id:"));
    wait_for("the sleeper's pid", || {
        fs::read_to_string(&pid_file).is_ok_and(|s| s.ends_with('\n'))
    });
    d.ask_str(&format!("signaller:{}\n", pid_file.display()))
}

#[test]
fn with_module_uids_a_job_cannot_signal_another() {
    if !root() {
        return;
    }
    assert_eq!(signal_probe(false), "can-signal\n", "one shared user");
    assert_eq!(signal_probe(true), "cannot-signal\n");
}

/// Leaves a process in a session of its own, and gives it the time to get
/// there before the job ends (else the job's group kill takes it along).
const LEAVER: &str = "#!/bin/sh
read f
setsid sleep 123 </dev/null >/dev/null 2>&1 &
echo $! > \"$f\"
sleep 0.3
echo left
";

#[test]
fn with_module_uids_what_a_job_left_behind_ends_with_it() {
    if !root() {
        return;
    }
    let d = Setup::new()
        .module("leaver", LEAVER)
        .settings(r#""module_uids": "61100-61103""#)
        .start();
    let pid_file = d.dir.path().join("left.pid");
    assert_eq!(
        d.ask_str(&format!("leaver:{}\n", pid_file.display())),
        "left\n"
    );
    let pid: u32 = fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    wait_for("the escaped sleep to be killed", || !process_alive(pid));
    wait_for("no zombie left", || {
        crate::util::children_of(d.pid())
            .iter()
            .all(|&(_, state)| state != 'Z')
    });
    assert!(d.log().contains("from 61100-61103"), "{}", d.log());
}

#[test]
fn without_module_uids_an_escaped_process_outlives_its_job() {
    // What the range is for: the shared-uid default cannot end it.
    let d = Setup::new().module("leaver", LEAVER).start();
    let pid_file = d.dir.path().join("left.pid");
    assert_eq!(
        d.ask_str(&format!("leaver:{}\n", pid_file.display())),
        "left\n"
    );
    let pid: u32 = fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(process_alive(pid), "setsid escaped the process group kill");
    // SAFETY: kill(2) of the test's own leftover.
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
}

#[test]
fn a_module_the_user_cannot_run_is_answered_with_the_user_and_the_path() {
    if !root() {
        return;
    }
    let d = Setup::new().start();
    let locked = d.modules.join("locked");
    fs::write(&locked, "\x7fELF not really").unwrap();
    chmod(&locked, 0o700);
    let answer = d.ask_str("locked:");
    assert_eq!(
        answer,
        format!(
            "500: Module locked failed (cannot start: {0}: Permission denied (os error 13): \
             modules run as nobody, who cannot run {0} (mode 0700))",
            locked.display()
        )
    );
}
