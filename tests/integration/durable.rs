//! The journal: nothing queued is lost to a crash or a restart.

use std::time::Duration;

use crate::util::{process_alive, wait_for, Setup};

const ECHO_SLOWLY: &str = "#!/bin/sh\nsleep 0.01\nprintf 'r%s' \"$(cat)\"\n";

#[test]
fn jobs_survive_a_kill_9_and_are_fetched_under_their_ids() {
    let mut d = Setup::new()
        .module("echo", ECHO_SLOWLY)
        .settings(r#""max_jobs": 2"#)
        .start();
    for i in 1..=200 {
        assert_eq!(d.ask_str(&format!("queue:add:echo:{i}")), format!("id:{i}"));
    }
    wait_for("some jobs done", || d.ask_str("queue:check:id:5") == "2");
    d.crash_and_restart();
    d.wait_log("journal: recovered");
    for i in 1..=200 {
        assert_eq!(
            d.ask_str(&format!("queue:get:id:{i}")),
            format!("r{i}"),
            "job {i}"
        );
    }
    assert_eq!(d.ask_str("queue:add:echo:x"), "id:201", "ids continue");
}

#[test]
fn a_job_running_at_the_crash_runs_again_and_knows_its_attempt() {
    let mut d = Setup::new().start();
    let pids = d.dir.path().join("pids");
    d.add_module(
        "slow",
        &format!(
            "#!/bin/sh\necho $$ >> {}\nsleep 2\nprintf 'attempt %s' \"$BGJOB_ATTEMPT\"\n",
            pids.display()
        ),
    );
    assert_eq!(d.ask_str("queue:add:slow:"), "id:1");
    wait_for("running", || d.ask_str("queue:check:id:1") == "1");
    // The start is journaled without holding the job back; give it time to
    // reach the disk, or the rerun would count as attempt 1 again.
    std::thread::sleep(Duration::from_millis(1000));
    d.crash_and_restart();
    d.wait_log("1 interrupted jobs to run again");
    assert_eq!(d.ask_str("queue:get:id:1"), "attempt 2");
    assert_eq!(field(&d.ask_str("queue:info:id:1"), "attempts"), "2");
    for pid in std::fs::read_to_string(&pids).unwrap().lines() {
        let _ = std::process::Command::new("kill").arg(pid).status();
    }
}

#[test]
fn unfetched_results_survive_a_restart_and_fetched_ones_do_not_come_back() {
    let mut d = Setup::new().module("echo", ECHO_SLOWLY).start();
    assert_eq!(d.ask_str("queue:add:echo:a"), "id:1");
    assert_eq!(d.ask_str("queue:add:echo:b"), "id:2");
    wait_for("both done", || {
        d.ask_str("queue:check:id:2") == "2" && d.ask_str("queue:check:id:1") == "2"
    });
    assert_eq!(d.ask_str("queue:get:id:1"), "ra");
    d.signal("TERM");
    assert!(d.wait_exit(Duration::from_secs(5)).success());
    d.start_again();
    assert_eq!(
        d.ask_str("queue:check:id:1"),
        "404: Unknown job",
        "fetched before the restart"
    );
    assert_eq!(d.ask_str("queue:get:id:2"), "rb");
    assert_eq!(d.ask_str("queue:add:echo:c"), "id:3");
}

#[test]
fn udp_jobs_are_journaled_too() {
    let mut d = Setup::new()
        .module("block", "#!/bin/sh\nsleep 0.5\n")
        .settings(r#""max_jobs": 1"#)
        .start();
    let out = d.dir.path().join("udp-ran");
    d.add_module("note", &format!("#!/bin/sh\ncat > {}\n", out.display()));
    assert_eq!(d.ask_str("queue:add:block:"), "id:1");
    wait_for("blocking", || d.ask_str("queue:check:id:1") == "1");
    d.send_udp(b"note:from udp");
    d.wait_log("note (8 bytes) as job 2");
    // No client waits for a datagram's record: wait until the journal has it.
    let journal = d.dir.path().join("state/journal");
    wait_for("the datagram's record", || {
        std::fs::read(&journal).is_ok_and(|j| j.windows(8).any(|w| w == b"from udp"))
    });
    assert!(!out.exists(), "still waiting behind the blocker");
    d.crash_and_restart();
    wait_for("the UDP job to run after the restart", || out.exists());
    wait_for("its output", || {
        std::fs::read_to_string(&out).unwrap() == "from udp"
    });
}

#[test]
fn a_truncated_or_bit_flipped_journal_tail_is_survived() {
    for damage in ["truncate", "flip"] {
        let mut d = Setup::new()
            .module("hold", "#!/bin/sh\nsleep 30\n")
            .settings(r#""max_jobs": 1, "shutdown_grace_secs": 0"#)
            .start();
        for i in 1..=5 {
            assert_eq!(d.ask_str(&format!("queue:add:hold:{i}")), format!("id:{i}"));
        }
        d.signal("TERM");
        assert!(d.wait_exit(Duration::from_secs(5)).success());
        let journal = d.dir.path().join("state/journal");
        let mut bytes = std::fs::read(&journal).unwrap();
        let len = bytes.len();
        match damage {
            "truncate" => bytes.truncate(len - 3),
            _ => bytes[len - 2] ^= 0x40,
        }
        std::fs::write(&journal, bytes).unwrap();
        d.start_again();
        d.wait_log("journal: 1 damaged places");
        assert_eq!(d.ask_str("helo"), "oleh", "{damage}");
        for i in 1..=4 {
            assert_ne!(
                d.ask_str(&format!("queue:check:id:{i}")),
                "404: Unknown job",
                "{damage}: job {i}"
            );
        }
        let next: u64 = d
            .ask_str("queue:add:hold:")
            .trim_start_matches("id:")
            .parse()
            .unwrap();
        assert!(next >= 5, "{damage}: id {next} handed out again");
    }
}

#[test]
fn cancel_removes_a_waiting_job_and_kills_a_running_one() {
    let d = Setup::new().settings(r#""max_jobs": 1"#).start();
    let pidfile = d.dir.path().join("pid");
    d.add_module(
        "hang",
        &format!("#!/bin/sh\necho $$ > {}\nsleep 30\n", pidfile.display()),
    );
    d.add_module("quick", "#!/bin/sh\nprintf quick\n");
    assert_eq!(d.ask_str("queue:add:hang:"), "id:1");
    assert_eq!(d.ask_str("queue:add:quick:"), "id:2");
    wait_for("running", || {
        d.ask_str("queue:check:id:1") == "1" && pidfile.exists()
    });
    assert_eq!(
        d.ask_str("queue:cancel:id:2"),
        "cancelled: waiting job removed"
    );
    assert_eq!(d.ask_str("queue:check:id:2"), "404: Unknown job");
    let getter = {
        let addr = d.addr;
        std::thread::spawn(move || {
            use std::io::Write;
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            s.write_all(b"queue:get:id:1").unwrap();
            s.shutdown(std::net::Shutdown::Write).unwrap();
            crate::util::read_to_end(&mut s)
        })
    };
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        d.ask_str("queue:cancel:id:1"),
        "cancelled: running job killed"
    );
    assert_eq!(getter.join().unwrap(), b"410: Module hang cancelled");
    let pid: u32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    wait_for("the child gone", || !process_alive(pid));
    assert_eq!(d.ask_str("queue:check:id:1"), "404: Unknown job");
    assert_eq!(d.ask_str("queue:cancel:id:1"), "404: Unknown job");
    assert_eq!(d.ask_str("queue:add:quick:"), "id:3");
    wait_for("done", || d.ask_str("queue:check:id:3") == "2");
    assert_eq!(d.ask_str("queue:cancel:id:3"), "cancelled: result dropped");
    assert!(d.ask_str("queue:stats").contains("total_cancelled: 2\n"));
}

fn field<'a>(text: &'a str, key: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}: ")))
        .unwrap_or_else(|| panic!("no {key} in:\n{text}"))
}

#[test]
fn info_tells_exit_code_signal_cut_output_cpu_time_and_module_hash() {
    let d = Setup::new()
        .module("three", "#!/bin/sh\nprintf oops\nexit 3\n")
        .module("killed", "#!/bin/sh\nkill -9 $$\n")
        .module("flood", "#!/bin/sh\nexec yes\n")
        .module(
            "burn",
            "#!/bin/sh\ni=0\nwhile [ $i -lt 300000 ]; do i=$((i+1)); done\nprintf burnt\n",
        )
        .settings(r#""max_output_bytes": 100"#)
        .start();
    let ids: Vec<String> = ["three", "killed", "flood", "burn"]
        .iter()
        .map(|m| {
            d.ask_str(&format!("queue:add:{m}:12345"))
                .trim_start_matches("id:")
                .to_string()
        })
        .collect();
    for id in &ids {
        wait_for("done", || d.ask_str(&format!("queue:check:id:{id}")) == "2");
    }
    let info = |i: usize| d.ask_str(&format!("queue:info:id:{}", ids[i]));
    let three = info(0);
    assert_eq!(field(&three, "status"), "done");
    assert_eq!(field(&three, "exit_code"), "3");
    assert_eq!(field(&three, "attempts"), "1");
    assert_eq!(field(&three, "bytes_in"), "5");
    assert_eq!(field(&three, "bytes_out"), "4");
    assert_eq!(field(&three, "output_cut"), "no");
    let sha = std::process::Command::new("sha256sum")
        .arg(d.modules.join("three"))
        .output()
        .unwrap();
    assert_eq!(
        field(&three, "module_sha256"),
        String::from_utf8_lossy(&sha.stdout)
            .split(' ')
            .next()
            .unwrap()
    );
    assert_eq!(field(&info(1), "signal"), "9");
    let flood = info(2);
    assert_eq!(field(&flood, "output_cut"), "yes");
    assert_eq!(field(&flood, "bytes_out"), "100");
    let burn = info(3);
    let cpu: f64 = field(&burn, "cpu_user_ms").parse().unwrap();
    assert!(cpu > 20.0, "cpu {cpu}");
    let wall: f64 = field(&burn, "wall_ms").parse().unwrap();
    assert!(wall >= cpu * 0.5, "wall {wall}, cpu {cpu}");
    assert!(field(&burn, "max_rss_kib").parse::<u64>().unwrap() > 0);
    assert_eq!(d.ask_str(&format!("queue:get:id:{}", ids[3])), "burnt");
    assert_eq!(
        field(&info(3), "status"),
        "fetched",
        "receipts outlive the fetch"
    );
    assert_eq!(d.ask_str("queue:info:id:999"), "404: Unknown job");
}

#[test]
fn stats_and_list_reflect_what_happened() {
    let d = Setup::new()
        .module("ok", "#!/bin/sh\nprintf ok\n")
        .module("bad", "#!/bin/sh\nexit 1\n")
        .module("hang", "#!/bin/sh\nsleep 30\n")
        .settings(r#""max_jobs": 1, "max_waiting": 2"#)
        .start();
    assert_eq!(d.ask_str("ok:"), "ok");
    assert_eq!(d.ask_str("bad:"), "500: Module bad failed (exit status 1)");
    assert_eq!(d.ask_str("queue:add:ok:"), "id:1");
    wait_for("done", || d.ask_str("queue:check:id:1") == "2");
    assert_eq!(d.ask_str("queue:add:hang:"), "id:2");
    wait_for("running", || d.ask_str("queue:check:id:2") == "1");
    assert_eq!(d.ask_str("queue:add:ok:"), "id:3");
    assert_eq!(d.ask_str("queue:add:ok:"), "id:4");
    assert_eq!(d.ask_str("queue:add:ok:"), "503: Busy");
    let stats = d.ask_str("queue:stats");
    for (key, value) in [
        ("jobs_waiting", "2"),
        ("jobs_running", "1"),
        ("jobs_done_unfetched", "1"),
        ("total_ok", "2"),
        ("total_failed", "1"),
        ("total_refused_busy", "1"),
        ("module.ok", "2"),
        ("module.bad", "1"),
        ("next_id", "5"),
    ] {
        assert_eq!(field(&stats, key), value, "{stats}");
    }
    assert!(field(&stats, "journal_bytes").parse::<u64>().unwrap() > 0);
    assert!(
        field(&stats, "journal_last_fsync_ms_ago")
            .parse::<u64>()
            .is_ok(),
        "{stats}"
    );
    assert!(field(&stats, "uptime_secs").parse::<u64>().is_ok());
    let list = d.ask_str("queue:list");
    let rows: Vec<Vec<&str>> = list.lines().map(|l| l.split(' ').collect()).collect();
    let summary: Vec<(&str, &str, &str)> = rows.iter().map(|r| (r[0], r[1], r[3])).collect();
    assert_eq!(
        summary,
        [
            ("1", "ok", "done"),
            ("2", "hang", "running"),
            ("3", "ok", "waiting"),
            ("4", "ok", "waiting")
        ]
    );
    assert!(rows.iter().all(|r| r[4].parse::<f64>().is_ok()), "{list}");
    assert_eq!(
        d.ask_str("queue:cancel:id:2"),
        "cancelled: running job killed"
    );
}

#[test]
fn the_journal_compacts_when_dead_records_dominate() {
    let d = Setup::new().module("echo", "#!/bin/sh\nexec cat\n").start();
    let journal = d.dir.path().join("state/journal");
    let data = "x".repeat(1024);
    for round in 0..3 {
        let ids: Vec<String> = (0..60)
            .map(|_| d.ask_str(&format!("queue:add:echo:{data}")))
            .collect();
        for id in ids {
            assert_eq!(d.ask_str(&format!("queue:get:{id}")), data, "round {round}");
        }
    }
    d.wait_log("journal compacted to");
    wait_for("a small journal", || {
        std::fs::metadata(&journal).unwrap().len() < 64 * 1024
    });
    assert_eq!(
        d.ask_str("queue:add:echo:z"),
        "id:181",
        "ids survive compaction"
    );
}

#[test]
fn results_beyond_the_retention_bytes_drop_the_oldest() {
    let d = Setup::new()
        .module("sixty", "#!/bin/sh\nprintf '%060d' 0\n")
        .settings(r#""result_retention_bytes": 100"#)
        .start();
    for id in 1..=2 {
        assert_eq!(d.ask_str("queue:add:sixty:"), format!("id:{id}"));
        wait_for("done", || d.ask_str(&format!("queue:check:id:{id}")) == "2");
    }
    assert_eq!(d.ask_str("queue:check:id:1"), "404: Unknown job");
    assert_eq!(d.ask_str("queue:get:id:2").len(), 60);
}

#[test]
fn relaxed_sync_settings_and_no_state_folder_work() {
    for sync in [r#""never""#, "50", r#""each""#] {
        let d = Setup::new()
            .module("ok", "#!/bin/sh\nprintf ok\n")
            .settings(&format!(r#""journal_sync": {sync}"#))
            .start();
        assert_eq!(d.ask_str("queue:add:ok:"), "id:1", "{sync}");
        assert_eq!(d.ask_str("queue:get:id:1"), "ok", "{sync}");
    }
    let mut d = Setup::new()
        .module("ok", "#!/bin/sh\nprintf ok\n")
        .arg("--state")
        .arg("none")
        .start();
    assert_eq!(d.ask_str("queue:add:ok:"), "id:1");
    assert!(
        !d.dir.path().join("state").exists(),
        "no state folder with --state none"
    );
    d.crash_and_restart();
    assert_eq!(
        d.ask_str("queue:check:id:1"),
        "404: Unknown job",
        "in memory only"
    );
}

#[test]
fn a_large_module_is_hashed_without_stalling_the_daemon() {
    let d = Setup::new().arg("--state").arg("none").start();
    // A script that exits before its long, sparse tail: 64 MiB to hash.
    let big = d.modules.join("big");
    std::fs::write(&big, "#!/bin/sh\nprintf big\nexit 0\n").unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&big)
        .unwrap()
        .set_len(64 << 20)
        .unwrap();
    std::fs::set_permissions(&big, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    // The first request finds the new module; its answer is read later.
    let mut first = d.connect();
    std::io::Write::write_all(&mut first, b"queue:add:big:").unwrap();
    first.shutdown(std::net::Shutdown::Write).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(50));
    let start = std::time::Instant::now();
    assert_eq!(d.ask_str("helo"), "oleh");
    let helo = start.elapsed();
    let first = String::from_utf8(crate::util::read_to_end(&mut first)).unwrap();
    assert!(
        helo < std::time::Duration::from_millis(500),
        "helo waited {helo:?} for the hash"
    );
    let id = first.strip_prefix("id:").unwrap().to_string();
    wait_for("done", || d.ask_str(&format!("queue:check:id:{id}")) == "2");
    let sha = std::process::Command::new("sha256sum")
        .arg(&big)
        .output()
        .unwrap();
    let expected = String::from_utf8_lossy(&sha.stdout)
        .split(' ')
        .next()
        .unwrap()
        .to_string();
    // The hash arrives from its thread; a later job's receipt carries it.
    let start = std::time::Instant::now();
    loop {
        let id = d.ask_str("queue:add:big:");
        let id = id.strip_prefix("id:").unwrap();
        wait_for("done", || d.ask_str(&format!("queue:check:id:{id}")) == "2");
        let info = d.ask_str(&format!("queue:info:id:{id}"));
        if field(&info, "module_sha256") == expected {
            break;
        }
        assert_eq!(field(&info, "module_sha256"), "pending");
        assert!(start.elapsed().as_secs() < 120, "no hash after 2 minutes");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}
