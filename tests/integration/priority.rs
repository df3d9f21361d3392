//! The waiting line over real sockets: strict priority (highest first,
//! FIFO within one priority), a module's own `max_jobs` within the global
//! one without holding up other modules (and read again on SIGHUP), and a
//! module's own `max_waiting` refused as the global bound is.

use std::path::Path;

use crate::util::{wait_for, Daemon, Setup};

/// A module that appends `<name> <data>` to `log` and exits.
fn noting(name: &str, log: &Path) -> String {
    format!(
        "#!/bin/sh\nprintf '%s %s\\n' {name} \"$(cat)\" >> {}\n",
        log.display()
    )
}

/// A module that holds its running slot until `gate` exists.
fn gated(gate: &Path) -> String {
    format!(
        "#!/bin/sh\nwhile [ ! -e {} ]; do sleep 0.02; done\nprintf open\n",
        gate.display()
    )
}

/// Waits until `queue:check` of `added` (an `id:<n>` answer) says `status`.
fn wait_status(d: &Daemon, added: &str, status: &str) {
    let check = format!("queue:check:{}", added);
    wait_for(&format!("{check} to be {status}"), || {
        d.ask_str(&check) == status
    });
}

fn lines(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines().map(str::to_string).collect()
}

#[test]
fn with_one_slot_higher_priorities_start_first_and_fifo_within_one() {
    let d = Setup::new()
        .settings(
            r#""max_jobs": 1, "module_policy": {"urgent": {"priority": "high"},
               "later": {"priority": "low"}, "plain": {"priority": "normal"}}"#,
        )
        .start();
    let (log, gate) = (d.dir.path().join("order"), d.dir.path().join("gate"));
    d.add_module("gate", &gated(&gate));
    for name in ["urgent", "plain", "later", "other"] {
        d.add_module(name, &noting(name, &log));
    }
    let first = d.add("gate:");
    wait_status(&d, &first, "1");
    for job in [
        "later:1", "plain:1", "urgent:1", "other:1", "later:2", "urgent:2", "plain:2",
    ] {
        d.add(job);
    }
    std::fs::write(&gate, "").unwrap();
    wait_for("seven jobs", || lines(&log).len() == 7);
    assert_eq!(
        lines(&log),
        ["urgent 1", "urgent 2", "plain 1", "other 1", "plain 2", "later 1", "later 2"],
        "high first, normal (the default) next, low last; FIFO within each"
    );
}

/// The most intervals open at once, from `start <ns>` and `end <ns>` lines.
fn most_at_once(lines: &[String]) -> usize {
    let mut events: Vec<(u128, i32)> = lines
        .iter()
        .map(|line| {
            let (what, at) = line.split_once(' ').unwrap();
            // Ends sort before starts of the same instant.
            (at.parse().unwrap(), if what == "start" { 1 } else { -1 })
        })
        .collect();
    events.sort();
    let (mut open, mut most) = (0i32, 0i32);
    for (_, step) in events {
        open += step;
        most = most.max(open);
    }
    most as usize
}

#[test]
fn a_modules_own_max_jobs_holds_under_fifty_concurrent_adds_and_others_go_by() {
    let d = Setup::new()
        .settings(r#""max_jobs": 8, "module_policy": {"slow": {"max_jobs": 2}}"#)
        .start();
    let (log, quick_log) = (d.dir.path().join("runs"), d.dir.path().join("quick"));
    d.add_module(
        "slow",
        &format!(
            "#!/bin/sh\necho start $(date +%s%N) >> {log}\nsleep 0.1\necho end $(date +%s%N) >> {log}\n",
            log = log.display()
        ),
    );
    d.add_module("quick", &noting("quick", &quick_log));
    let ids: Vec<String> = std::thread::scope(|s| {
        let d = &d;
        let adds: Vec<_> = (0..50)
            .map(|i| s.spawn(move || d.add(&format!("slow:{i}"))))
            .collect();
        adds.into_iter().map(|a| a.join().unwrap()).collect()
    });
    // Forty-odd slow jobs wait behind the module's two slots: a job of
    // another module starts at once, not after them.
    let quick = d.add("quick:now");
    assert_eq!(d.ask_str(&format!("queue:get:{}", quick)), "");
    let ended = lines(&log).iter().filter(|l| l.starts_with("end")).count();
    assert!(ended < 40, "quick waited for {ended} slow jobs");
    for added in &ids {
        assert_eq!(d.ask_str(&format!("queue:get:{}", added)), "");
    }
    let runs = lines(&log);
    assert_eq!(runs.len(), 100, "{runs:?}");
    assert_eq!(most_at_once(&runs), 2, "{runs:?}");
}

#[test]
fn a_modules_own_max_waiting_is_refused_as_busy_and_others_are_not() {
    let d = Setup::new()
        .settings(r#""max_jobs": 4, "module_policy": {"gate": {"max_jobs": 1, "max_waiting": 2}}"#)
        .start();
    let gate = d.dir.path().join("gate");
    d.add_module("gate", &gated(&gate));
    d.add_module("echo", "#!/bin/sh\ncat\n");
    let running = d.add("gate:0");
    wait_status(&d, &running, "1");
    let waiting = [d.add("gate:1"), d.add("gate:2")];
    assert_eq!(d.ask_str("queue:add:gate:3"), "503: Busy");
    let mut direct = d.connect();
    std::io::Write::write_all(&mut direct, b"gate:").unwrap();
    direct.shutdown(std::net::Shutdown::Write).unwrap();
    assert_eq!(crate::util::read_to_end(&mut direct), b"503: Busy");
    let other = d.add("echo:fine");
    assert_eq!(d.ask_str(&format!("queue:get:{}", other)), "fine");
    std::fs::write(&gate, "").unwrap();
    for added in waiting.iter().chain([&running]) {
        assert_eq!(d.ask_str(&format!("queue:get:{}", added)), "open");
    }
    // Room again once they ran.
    let again = d.add("gate:4");
    assert_eq!(d.ask_str(&format!("queue:get:{}", again)), "open");
}

fn running(d: &Daemon) -> String {
    let stats = d.ask_str("queue:stats");
    let line = stats.lines().find(|l| l.starts_with("jobs_running: "));
    line.unwrap_or_default().to_string()
}

#[test]
fn a_modules_own_max_jobs_is_read_again_on_sighup() {
    let d = Setup::new()
        .settings(r#""max_jobs": 8, "module_policy": {"gate": {"max_jobs": 1}}"#)
        .start();
    let gate = d.dir.path().join("gate");
    d.add_module("gate", &gated(&gate));
    let ids: Vec<String> = (0..4).map(|i| d.add(&format!("gate:{i}"))).collect();
    wait_status(&d, &ids[0], "1");
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(running(&d), "jobs_running: 1");
    std::fs::write(
        d.dir.path().join("service.config"),
        r#"{"max_jobs": 8, "module_policy": {"gate": {"max_jobs": 3}}}"#,
    )
    .unwrap();
    d.signal("HUP");
    d.wait_log("reloaded ");
    wait_for("three running", || running(&d) == "jobs_running: 3");
    std::fs::write(&gate, "").unwrap();
    for id in &ids {
        assert_eq!(d.ask_str(&format!("queue:get:{id}")), "open");
    }
}

#[test]
fn waiting_jobs_keep_their_order_across_a_restart() {
    // Ids are unguessable, so their order is not the order of arrival:
    // after a crash the line must come back in the order the jobs came.
    let mut d = Setup::new().settings(r#""max_jobs": 1"#).start();
    let (gate, order) = (d.dir.path().join("gate"), d.dir.path().join("order"));
    d.add_module("gate", &gated(&gate));
    d.add_module(
        "note",
        &format!(
            "#!/bin/sh\ncat >> {}\necho >> {}\n",
            order.display(),
            order.display()
        ),
    );
    let first = d.add("gate:");
    wait_status(&d, &first, "1");
    let names: Vec<String> = (0..12).map(|i| format!("job{i}")).collect();
    for name in &names {
        d.add(&format!("note:{name}"));
    }
    d.crash_and_restart();
    std::fs::write(&gate, "").unwrap();
    wait_for("every job to run", || {
        std::fs::read_to_string(&order).is_ok_and(|t| t.lines().count() == names.len())
    });
    let ran: Vec<String> = std::fs::read_to_string(&order)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(ran, names);
}
