//! Options on `queue:add` and jobs held for later (`delay`, `at`): their
//! statuses, the waiting bounds, and their times across a restart. Run
//! against every engine (the harness picks it from BGJOB_TEST_ENGINE).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::util::Setup;

/// Writes the Unix time it ran at (seconds, with fractions) to its log.
const STAMP: &str =
    "#!/bin/sh\ndate +%s.%N >> \"$(dirname \"$0\")/../stamps\"\nprintf 'ran %s' \"$(cat)\"\n";

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn info_field(info: &str, name: &str) -> Option<String> {
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
        .map(str::to_string)
}

#[test]
fn every_bad_or_unknown_option_answers_400_and_adds_nothing() {
    let d = Setup::new().module("echo", "#!/bin/sh\ncat\n").start();
    for (options, answer) in [
        ("colour=red", "400: Unknown option colour"),
        ("delay=-1", "400: Bad option delay"),
        ("delay=2592001", "400: Bad option delay"),
        ("delay=1&at=5", "400: Bad option at"),
        ("at=soon", "400: Bad option at"),
        ("priority=urgent", "400: Bad option priority"),
        ("retries=26", "400: Bad option retries"),
        ("key=", "400: Bad option key"),
        ("timeout=0", "400: Bad option timeout"),
        ("key=%zz", "400: Bad option key"),
    ] {
        let got = d.ask_str(&format!("queue:add?{options}:echo:x"));
        assert_eq!(got, answer, "{options}");
    }
    let stats = d.ask_str("queue:stats");
    assert!(stats.contains("jobs_waiting: 0\n"), "{stats}");
    let list = d.ask_operator("queue:list");
    assert_eq!(list, "", "nothing was added");
    // Plain adds and empty options still work; the data is untouched.
    let data = r#"{"q":"a?b&c=d:e"}"#;
    let id = d.ask_str(&format!("queue:add?priority=high&retries=1:echo:{data}"));
    assert!(id.starts_with("id:"), "{id}");
    assert_eq!(d.ask_str(&format!("queue:get:{id}")), data);
    let id = d.add(&format!("echo:{data}"));
    assert_eq!(d.ask_str(&format!("queue:get:{id}")), data);
    let id = d.ask_str("queue:add?:echo:plain");
    assert_eq!(d.ask_str(&format!("queue:get:{id}")), "plain");
}

#[test]
fn a_delayed_job_is_scheduled_then_starts_on_time() {
    let d = Setup::new().module("stamp", STAMP).start();
    let added = unix_now();
    let id = d.ask_str("queue:add?delay=1.5:stamp:later");
    assert!(id.starts_with("id:"), "{id}");
    assert_eq!(d.ask_str(&format!("queue:check:{id}")), "0");
    let info = d.ask_str(&format!("queue:info:{id}"));
    assert_eq!(
        info_field(&info, "status").as_deref(),
        Some("scheduled"),
        "{info}"
    );
    let run_at: f64 = info_field(&info, "run_at").unwrap().parse().unwrap();
    assert!((run_at - (added + 1.5)).abs() < 0.5, "{run_at} vs {added}");
    let stats = d.ask_str("queue:stats");
    assert!(
        stats.contains("jobs_waiting: 1\n"),
        "counts as waiting: {stats}"
    );
    assert_eq!(d.ask_str(&format!("queue:get:{id}")), "ran later");
    let ran = stamps(&d)[0];
    assert!(
        (ran - (added + 1.5)).abs() < 0.5,
        "ran at {ran}, added at {added}"
    );
}

#[test]
fn scheduled_jobs_count_in_the_waiting_bounds() {
    let d = Setup::new()
        .module("echo", "#!/bin/sh\ncat\n")
        .settings(r#""max_waiting": 3"#)
        .start();
    for i in 0..3 {
        let id = d.ask_str(&format!("queue:add?delay=60:echo:{i}"));
        assert!(id.starts_with("id:"), "{id}");
    }
    assert_eq!(d.ask_str("queue:add?delay=60:echo:x"), "503: Busy");
    assert_eq!(d.ask_str("queue:add:echo:x"), "503: Busy");
}

#[test]
fn a_delayed_job_survives_a_restart_and_a_past_due_one_starts_at_once() {
    let mut d = Setup::new().module("stamp", STAMP).start();
    let at = unix_now() + 3.0;
    let later = d.ask_str(&format!("queue:add?at={at:.3}:stamp:later"));
    let soon = d.ask_str("queue:add?delay=0.8:stamp:soon");
    assert!(later.starts_with("id:") && soon.starts_with("id:"));
    d.kill9();
    // `soon` falls due while the daemon is down.
    std::thread::sleep(Duration::from_millis(1200));
    let restarted = Instant::now();
    d.start_again();
    assert_eq!(d.ask_str(&format!("queue:get:{soon}")), "ran soon");
    assert!(
        restarted.elapsed() < Duration::from_millis(1500),
        "past due: at once after the restart"
    );
    let info = d.ask_str(&format!("queue:info:{later}"));
    assert_eq!(
        info_field(&info, "status").as_deref(),
        Some("scheduled"),
        "{info}"
    );
    assert_eq!(d.ask_str(&format!("queue:check:{later}")), "0");
    assert_eq!(d.ask_str(&format!("queue:get:{later}")), "ran later");
    let ran = stamps(&d)[1];
    assert!((ran - at).abs() < 0.5, "ran at {ran}, asked for {at}");
}

#[test]
fn a_cancelled_scheduled_job_never_runs() {
    let d = Setup::new().module("stamp", STAMP).start();
    let id = d.ask_str("queue:add?delay=0.5:stamp:x");
    assert_eq!(
        d.ask_str(&format!("queue:cancel:{id}")),
        "cancelled: waiting job removed"
    );
    std::thread::sleep(Duration::from_millis(1000));
    assert!(stamps(&d).is_empty(), "it did not run");
    assert_eq!(d.ask_str(&format!("queue:check:{id}")), "404: Unknown job");
}

#[test]
fn a_job_timeout_is_its_own_time_limit() {
    let d = Setup::new().module("slow", "#!/bin/sh\nsleep 5\n").start();
    let id = d.ask_str("queue:add?timeout=0.3:slow:");
    let start = Instant::now();
    assert_eq!(
        d.ask_str(&format!("queue:get:{id}")),
        "504: Module slow timed out"
    );
    assert!(start.elapsed() < Duration::from_secs(3));
}

/// The Unix times the `stamp` module ran at, in order.
fn stamps(d: &crate::util::Daemon) -> Vec<f64> {
    let path = d.modules.join("../stamps");
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

#[test]
fn the_client_adds_with_options_lists_failed_jobs_and_retries_them() {
    let bgjob = |d: &crate::util::Daemon, args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_bgjob"))
            .args(["--socket", &d.operator_socket().display().to_string()])
            .args(args)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        (
            out.status.code(),
            text + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let d = Setup::new()
        .module("echo", "#!/bin/sh\ncat\n")
        .module("broken", "#!/bin/sh\necho 'disk full' >&2\nexit 3\n")
        .start();
    let (code, id) = bgjob(
        &d,
        &["add", "--delay", "1m", "--priority", "low", "echo", "x"],
    );
    assert_eq!(code, Some(0), "{id}");
    let (_, info) = bgjob(&d, &["info", id.trim()]);
    assert_eq!(
        info_field(&info, "status").as_deref(),
        Some("scheduled"),
        "{info}"
    );
    let (code, why) = bgjob(&d, &["add", "--delay", "soon", "echo", "x"]);
    assert_eq!(code, Some(2), "{why}");
    let (code, why) = bgjob(&d, &["add", "--retries", "26", "echo", "x"]);
    assert_eq!((code, why.trim()), (Some(4), "400: Bad option retries"));
    let (_, failed_id) = bgjob(&d, &["add", "--job-timeout", "5", "broken", "x"]);
    let failed_id = failed_id.trim().to_string();
    wait_for_done(&d, &failed_id);
    let (code, list) = bgjob(&d, &["failed"]);
    assert_eq!(code, Some(0), "{list}");
    assert!(
        list.starts_with(&format!("{failed_id} broken 1 ")),
        "{list}"
    );
    assert!(list.trim_end().ends_with("disk full"), "{list}");
    d.add_module("broken", "#!/bin/sh\nprintf mended\n");
    let (code, queued) = bgjob(&d, &["retry", &failed_id]);
    assert_eq!((code, queued.trim()), (Some(0), "queued: 1"));
    wait_for_done(&d, &failed_id);
    assert_eq!(
        d.ask_operator(&format!("queue:get:id:{failed_id}")),
        "mended"
    );
    let (code, queued) = bgjob(&d, &["retry", "--module", "broken"]);
    assert_eq!((code, queued.trim()), (Some(0), "queued: 0"));
}

fn wait_for_done(d: &crate::util::Daemon, id: &str) {
    crate::util::wait_for("the job done", || {
        d.ask_operator(&format!("queue:check:id:{id}")) == "2"
    });
}

#[test]
fn the_same_key_twice_gives_one_id_and_one_run_and_holds_across_a_restart() {
    let mut d = Setup::new().module("stamp", STAMP).start();
    let first = d.ask_str("queue:add?key=invoice-1234&delay=2:stamp:one");
    assert!(first.starts_with("id:"), "{first}");
    let again = d.ask_str("queue:add?key=invoice-1234:stamp:two");
    assert_eq!(again, first, "the same id, whatever the data and options");
    let other = d.ask_str("queue:add?key=invoice-9&delay=2:stamp:three");
    assert_ne!(other, first);
    // Keys are per listener: the operator socket's is another job.
    let elsewhere = d.ask_operator("queue:add?key=invoice-1234&delay=60:stamp:x");
    assert!(
        elsewhere.starts_with("id:") && elsewhere != first,
        "{elsewhere}"
    );
    let info = d.ask_str(&format!("queue:info:{first}"));
    assert_eq!(
        info_field(&info, "duplicates").as_deref(),
        Some("1"),
        "{info}"
    );
    // Both are still scheduled, so neither runs twice (at least once).
    d.crash_and_restart();
    assert_eq!(d.ask_str("queue:add?key=invoice-1234:stamp:four"), first);
    assert_eq!(d.ask_str(&format!("queue:get:{first}")), "ran one");
    assert_eq!(d.ask_str(&format!("queue:get:{other}")), "ran three");
    assert_eq!(stamps(&d).len(), 2, "one run per key");
    // Fetched: the key is free again.
    let next = d.ask_str("queue:add?key=invoice-1234:stamp:five");
    assert!(next.starts_with("id:") && next != first, "{next}");
}

#[test]
fn a_finished_keyed_job_holds_its_key_until_fetched_across_a_restart() {
    let mut d = Setup::new().module("stamp", STAMP).start();
    let first = d.ask_str("queue:add?key=k:stamp:one");
    wait_for_tcp_done(&d, &first);
    d.crash_and_restart();
    assert_eq!(d.ask_str("queue:add?key=k:stamp:two"), first);
    assert_eq!(d.ask_str(&format!("queue:get:{first}")), "ran one");
}

fn wait_for_tcp_done(d: &crate::util::Daemon, id: &str) {
    crate::util::wait_for("the job done", || {
        d.ask_str(&format!("queue:check:{id}")) == "2"
    });
}

#[test]
fn the_priority_option_orders_the_waiting_jobs_strictly() {
    let order = "#!/bin/sh
dir=$(dirname \"$0\")/..
[ \"$(cat)\" = gate ] && while [ ! -e \"$dir/open\" ]; do sleep 0.05; done
echo \"$BGJOB_JOB_ID\" >> \"$dir/order\"
";
    let d = Setup::new()
        .module("order", order)
        .settings(r#""max_jobs": 1"#)
        .start();
    let gate = d.add("order:gate");
    wait_for_tcp_running(&d, &gate);
    let low = d.ask_str("queue:add?priority=low:order:x");
    let normal = d.ask_str("queue:add:order:x");
    let high = d.ask_str("queue:add?priority=high:order:x");
    std::fs::write(d.modules.join("../open"), "").unwrap();
    for id in [&low, &normal, &high] {
        wait_for_tcp_done(&d, id);
    }
    let ran = std::fs::read_to_string(d.modules.join("../order")).unwrap();
    let ids: Vec<String> = [&gate, &high, &normal, &low]
        .iter()
        .map(|id| id.trim_start_matches("id:").to_string() + "\n")
        .collect();
    assert_eq!(ran, ids.concat(), "high, then normal, then low");
}

fn wait_for_tcp_running(d: &crate::util::Daemon, id: &str) {
    crate::util::wait_for("the job running", || {
        d.ask_str(&format!("queue:check:{id}")) == "1"
    });
}
