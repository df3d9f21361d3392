//! A state folder on a full or nearly full disk (a small tmpfs, as root):
//! the daemon starts and serves what needs no disk, refuses queue requests
//! with `503` while the journal cannot be rewritten, retries with backoff
//! without filling the disk or flapping, and writes what it kept in memory
//! once there is room.

use std::time::{Duration, Instant};

use crate::metrics::{curl, metrics_addr};
use crate::util::{wait_for, write_module, Daemon, SmallDisk, TempDir};

/// A daemon with its state folder on a tmpfs of `size`, with metrics.
fn on_small_disk(size: &str, modules: &[(&str, &str)]) -> Option<(SmallDisk, Daemon)> {
    let dir = TempDir::new("smalldisk");
    let disk = SmallDisk::mount(&dir.path().join("state"), size)?;
    let modules_dir = dir.path().join("modules");
    std::fs::create_dir(&modules_dir).unwrap();
    for (name, script) in modules {
        write_module(&modules_dir, name, script);
    }
    std::fs::write(
        dir.path().join("service.config"),
        r#"{"metrics": "127.0.0.1:0", "state_dir": "state", "max_jobs": 4, "listen": [{"port": 0}]}"#,
    )
    .unwrap();
    let args = ["-vv", "-1", "-c", "service.config", "-m", "modules"];
    let d = Daemon::spawn(
        dir,
        modules_dir,
        args.iter().map(|a| a.to_string()).collect(),
    );
    Some((disk, d))
}

#[test]
fn a_daemon_started_on_a_full_disk_serves_and_keeps_its_jobs_until_there_is_room() {
    let modules = [
        ("ok", "#!/bin/sh\ncat\n"),
        ("block", "#!/bin/sh\nsleep 30\n"),
    ];
    let Some((disk, mut d)) = on_small_disk("256k", &modules) else {
        return;
    };
    let result = d.add("ok:unfetched");
    wait_for("done", || {
        d.ask_str(&format!("queue:check:{result}")) == "2"
    });
    let waiting: Vec<String> = (0..3).map(|i| d.add(&format!("block:{i}"))).collect();
    d.kill9();
    disk.fill(0);
    d.start_again();
    // What needs no disk works.
    assert_eq!(d.ask_str("helo"), "oleh");
    assert_eq!(d.ask_str("ok:direct"), "direct");
    // Queue requests that must be written are refused, and say why.
    assert_eq!(d.ask_str("queue:add:ok:x"), "503: Journal write failed");
    let addr = metrics_addr(&d);
    let (code, body) = curl(&addr, "/healthz", &[]);
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("No space left on device"), "{body}");
    // The recovered jobs and result are served from memory.
    assert_eq!(d.ask_str(&format!("queue:check:{result}")), "2");
    for id in &waiting {
        assert_ne!(d.ask_str(&format!("queue:check:{id}")), "404: Unknown job");
    }
    disk.empty();
    let mut added = String::new();
    wait_for("adds accepted once there is room", || {
        added = d.ask_str("queue:add:block:after");
        added.starts_with("id:")
    });
    assert_eq!(curl(&addr, "/healthz", &[]).0, 200);
    d.wait_log("writes succeed again after");
    // Written once there was room: a crash now loses none of them.
    d.crash_and_restart();
    assert_eq!(d.ask_str(&format!("queue:get:{result}")), "unfetched");
    for id in waiting.iter().chain([&added]) {
        assert_ne!(
            d.ask_str(&format!("queue:check:{id}")),
            "404: Unknown job",
            "{id}"
        );
    }
}

#[test]
fn a_nearly_full_disk_makes_the_journal_back_off_not_spin_or_flap() {
    let big = "#!/bin/sh\nhead -c 30000 /dev/zero | tr '\\0' r\n";
    let Some((disk, d)) = on_small_disk("512k", &[("big", big), ("ok", "#!/bin/sh\ncat\n")]) else {
        return;
    };
    let ids: Vec<String> = (0..4).map(|_| d.add("big:")).collect();
    for id in &ids {
        wait_for("done", || d.ask_str(&format!("queue:check:{id}")) == "2");
    }
    // Room for small records, not for a rewrite of the 120 KB of results.
    disk.fill(40 * 1024);
    let large = "x".repeat(100 * 1024);
    assert_eq!(
        d.ask_str(&format!("queue:add:ok:{large}")),
        "503: Journal write failed"
    );
    let addr = metrics_addr(&d);
    let start = Instant::now();
    let mut codes = Vec::new();
    while start.elapsed() < Duration::from_secs(4) {
        codes.push(curl(&addr, "/healthz", &[]).0);
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        codes.iter().all(|&c| c == 503),
        "/healthz flapped: {codes:?}"
    );
    let log = d.log();
    let failing = log.matches("the changes not written are refused").count();
    assert_eq!(failing, 1, "one line when it starts failing:\n{log}");
    let tries = log.matches("rewrite try").count();
    // 0.1 s doubling: about 5 tries in 4 s; a retry without backoff makes 40.
    assert!((1..=8).contains(&tries), "{tries} tries:\n{log}");
    assert!(!log.contains("writes succeed again"), "{log}");
    assert!(!d.dir.path().join("state/journal.tmp").exists());
    disk.empty();
    wait_for("adds accepted again", || {
        d.ask_str("queue:add:ok:y").starts_with("id:")
    });
    let log = d.log();
    assert_eq!(
        log.matches("writes succeed again after").count(),
        1,
        "{log}"
    );
    for id in &ids {
        assert_eq!(d.ask_str(&format!("queue:check:{id}")), "2");
    }
}

#[test]
fn a_journal_that_filled_its_disk_recovers_once_its_results_are_fetched() {
    // Nothing else on the disk: the journal itself filled it. Once every
    // result is fetched a rewrite would be nearly empty, so the daemon
    // must make room by itself, not wait for an operator.
    let Some((_disk, d)) = on_small_disk("300k", &[("wc", "#!/bin/sh\nwc -c\n")]) else {
        return;
    };
    let data = "x".repeat(40_000);
    let mut ids = Vec::new();
    for _ in 0..10 {
        let answer = d.ask_str(&format!("queue:add:wc:{data}"));
        if answer.starts_with("id:") {
            ids.push(answer);
        } else {
            assert_eq!(answer, "503: Journal write failed");
        }
    }
    assert!(ids.len() < 10, "the disk never filled");
    for id in &ids {
        // A fetch is a record too: retried until the journal has room.
        wait_for("the fetch", || {
            d.ask_str(&format!("queue:get:{id}")).trim() == "40000"
        });
    }
    wait_for("adds accepted again", || {
        d.ask_str("queue:add:wc:after").starts_with("id:")
    });
}
