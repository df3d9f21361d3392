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
    let ids: Vec<String> = (1..=200).map(|i| d.add(&format!("echo:{i}"))).collect();
    wait_for("some jobs done", || {
        d.ask_str(&format!("queue:check:{}", ids[4])) == "2"
    });
    d.crash_and_restart();
    d.wait_log("journal: recovered");
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(
            d.ask_str(&format!("queue:get:{id}")),
            format!("r{}", i + 1),
            "job {i}"
        );
    }
    let next = d.add("echo:x");
    assert!(!ids.contains(&next), "an id is never handed out twice");
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
    let id = d.add("slow:");
    wait_for("running", || d.ask_str(&format!("queue:check:{id}")) == "1");
    // The start is journaled without holding the job back; give it time to
    // reach the disk, or the rerun would count as attempt 1 again.
    std::thread::sleep(Duration::from_millis(1000));
    d.crash_and_restart();
    d.wait_log("1 interrupted jobs to run again");
    assert_eq!(d.ask_str(&format!("queue:get:{id}")), "attempt 2");
    assert_eq!(
        field(&d.ask_str(&format!("queue:info:{id}")), "attempts"),
        "2"
    );
    for pid in std::fs::read_to_string(&pids).unwrap().lines() {
        let _ = std::process::Command::new("kill").arg(pid).status();
    }
}

#[test]
fn unfetched_results_survive_a_restart_and_fetched_ones_do_not_come_back() {
    let mut d = Setup::new().module("echo", ECHO_SLOWLY).start();
    let (a, b) = (d.add("echo:a"), d.add("echo:b"));
    wait_for("both done", || {
        d.ask_str(&format!("queue:check:{a}")) == "2"
            && d.ask_str(&format!("queue:check:{b}")) == "2"
    });
    assert_eq!(d.ask_str(&format!("queue:get:{a}")), "ra");
    d.signal("TERM");
    assert!(d.wait_exit(Duration::from_secs(5)).success());
    d.start_again();
    assert_eq!(
        d.ask_str(&format!("queue:check:{a}")),
        "404: Unknown job",
        "fetched before the restart"
    );
    assert_eq!(d.ask_str(&format!("queue:get:{b}")), "rb");
    let c = d.add("echo:c");
    assert!(c != a && c != b);
}

#[test]
fn udp_jobs_are_journaled_too() {
    let mut d = Setup::new()
        .module("block", "#!/bin/sh\nsleep 0.5\n")
        .settings(r#""max_jobs": 1"#)
        .start();
    let out = d.dir.path().join("udp-ran");
    d.add_module("note", &format!("#!/bin/sh\ncat > {}\n", out.display()));
    let id = d.add("block:");
    wait_for("blocking", || {
        d.ask_str(&format!("queue:check:{id}")) == "1"
    });
    d.send_udp(b"note:from udp");
    d.wait_log("note (8 bytes) as job ");
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
        let ids: Vec<String> = (1..=5).map(|i| d.add(&format!("hold:{i}"))).collect();
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
        for (i, id) in ids[..4].iter().enumerate() {
            assert_ne!(
                d.ask_str(&format!("queue:check:{id}")),
                "404: Unknown job",
                "{damage}: job {i}"
            );
        }
        // The damaged fifth record may be handed out again: it never
        // reached the disk whole, so in a real crash it was never answered.
        let next = d.add("hold:");
        assert!(
            !ids[..4].contains(&next),
            "{damage}: id {next} handed out again"
        );
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
    let (hang, quick) = (d.add("hang:"), d.add("quick:"));
    wait_for("running", || {
        d.ask_str(&format!("queue:check:{hang}")) == "1" && pidfile.exists()
    });
    assert_eq!(
        d.ask_str(&format!("queue:cancel:{quick}")),
        "cancelled: waiting job removed"
    );
    assert_eq!(
        d.ask_str(&format!("queue:check:{quick}")),
        "404: Unknown job"
    );
    let getter = {
        let addr = d.addr;
        let request = format!("queue:get:{hang}");
        std::thread::spawn(move || {
            use std::io::Write;
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            s.write_all(request.as_bytes()).unwrap();
            s.shutdown(std::net::Shutdown::Write).unwrap();
            crate::util::read_to_end(&mut s)
        })
    };
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        d.ask_str(&format!("queue:cancel:{hang}")),
        "cancelled: running job killed"
    );
    assert_eq!(getter.join().unwrap(), b"410: Module hang cancelled");
    let pid: u32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    wait_for("the child gone", || !process_alive(pid));
    assert_eq!(
        d.ask_str(&format!("queue:check:{hang}")),
        "404: Unknown job"
    );
    assert_eq!(
        d.ask_str(&format!("queue:cancel:{hang}")),
        "404: Unknown job"
    );
    let quick = d.add("quick:");
    wait_for("done", || d.ask_str(&format!("queue:check:{quick}")) == "2");
    assert_eq!(
        d.ask_str(&format!("queue:cancel:{quick}")),
        "cancelled: result dropped"
    );
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
    assert_eq!(field(&three, "status"), "failed", "its last attempt failed");
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
    let first = d.add("ok:");
    wait_for("done", || d.ask_str(&format!("queue:check:{first}")) == "2");
    let hang = d.add("hang:");
    wait_for("running", || {
        d.ask_str(&format!("queue:check:{hang}")) == "1"
    });
    let (third, fourth) = (d.add("ok:"), d.add("ok:"));
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
    assert_eq!(
        d.ask_str("queue:list"),
        "403: Forbidden",
        "ids are for operators"
    );
    let list = d.ask_operator("queue:list");
    let rows: Vec<Vec<&str>> = list.lines().map(|l| l.split(' ').collect()).collect();
    let mut summary: Vec<(String, &str, &str)> = rows
        .iter()
        .map(|r| (format!("id:{}", r[0]), r[1], r[3]))
        .collect();
    summary.sort();
    let mut expected = vec![
        (first, "ok", "done"),
        (hang.clone(), "hang", "running"),
        (third, "ok", "waiting"),
        (fourth, "ok", "waiting"),
    ];
    expected.sort();
    assert_eq!(summary, expected);
    assert!(rows.iter().all(|r| r[4].parse::<f64>().is_ok()), "{list}");
    assert_eq!(
        d.ask_str(&format!("queue:cancel:{hang}")),
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
    let counter = field(&d.ask_str("queue:stats"), "next_id").to_string();
    assert_eq!(counter, "181", "the id counter survives compaction");
}

#[test]
fn results_beyond_the_retention_bytes_drop_the_oldest() {
    let d = Setup::new()
        .module("sixty", "#!/bin/sh\nprintf '%060d' 0\n")
        .settings(r#""result_retention_bytes": 100"#)
        .start();
    let mut ids = Vec::new();
    for _ in 1..=2 {
        let id = d.add("sixty:");
        wait_for("done", || d.ask_str(&format!("queue:check:{id}")) == "2");
        ids.push(id);
    }
    assert_eq!(
        d.ask_str(&format!("queue:check:{}", ids[0])),
        "404: Unknown job"
    );
    assert_eq!(d.ask_str(&format!("queue:get:{}", ids[1])).len(), 60);
}

#[test]
fn relaxed_sync_settings_and_no_state_folder_work() {
    for sync in [r#""never""#, "50", r#""each""#] {
        let d = Setup::new()
            .module("ok", "#!/bin/sh\nprintf ok\n")
            .settings(&format!(r#""journal_sync": {sync}"#))
            .start();
        let id = d.add("ok:");
        assert_eq!(d.ask_str(&format!("queue:get:{id}")), "ok", "{sync}");
    }
    let mut d = Setup::new()
        .module("ok", "#!/bin/sh\nprintf ok\n")
        .arg("--state")
        .arg("none")
        .start();
    let id = d.add("ok:");
    assert!(
        !d.dir.path().join("state").exists(),
        "no state folder with --state none"
    );
    d.crash_and_restart();
    assert_eq!(
        d.ask_str(&format!("queue:check:{id}")),
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

#[test]
fn a_module_does_not_outlive_a_daemon_killed_with_sigkill() {
    // Without systemd's cgroup to clean up, a running module whose daemon
    // died would run on without its time limit, and again after the restart.
    let mut d = Setup::new()
        .module(
            "stay",
            "#!/bin/sh\nread f\necho $$ > \"$f\"\nexec sleep 100\n",
        )
        .start();
    let pid_file = d.dir.path().join("stay.pid");
    let id = d.ask_str(&format!("queue:add:stay:{}\n", pid_file.display()));
    assert!(id.starts_with("id:"), "{id}");
    wait_for("the module's pid", || {
        std::fs::read_to_string(&pid_file).is_ok_and(|s| s.ends_with('\n'))
    });
    let pid: u32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(process_alive(pid));
    d.kill9();
    wait_for("the module to die with its daemon", || !process_alive(pid));
}

#[test]
fn journal_bytes_is_the_journal_size_from_the_start() {
    let d = Setup::new().start();
    let stats = d.ask_str("queue:stats");
    let size = std::fs::metadata(d.dir.path().join("state/journal"))
        .unwrap()
        .len();
    assert!(size > 0);
    assert_eq!(field(&stats, "journal_bytes"), size.to_string(), "{stats}");
}
