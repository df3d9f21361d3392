//! Failed attempts tried again, and what failed: retries with backoff,
//! attempts in queue:info, queue:failed and queue:retry, attempts across a
//! kill -9. Run against every engine (the harness picks it from
//! BGJOB_TEST_ENGINE).

use std::time::{Duration, Instant};

use crate::util::{wait_for, Setup};

/// Fails (exit 3, a line on stderr) until its third attempt, which
/// answers its attempt and job id.
const FLAKY: &str = "#!/bin/sh
if [ \"$BGJOB_ATTEMPT\" -lt 3 ]; then echo \"not yet $BGJOB_ATTEMPT\" >&2; exit 3; fi
printf 'ok on %s of %s' \"$BGJOB_ATTEMPT\" \"$BGJOB_JOB_ID\"
";

/// Always fails, saying why on stderr.
const BROKEN: &str = "#!/bin/sh\necho 'no such invoice' >&2\necho second line >&2\nexit 3\n";

fn field(info: &str, name: &str) -> String {
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
        .unwrap_or_else(|| panic!("no {name} in {info}"))
        .to_string()
}

fn id_of(answer: &str) -> u64 {
    answer.trim_start_matches("id:").parse().unwrap()
}

#[test]
fn a_job_that_fails_twice_then_succeeds_answers_its_success_to_a_get_that_waited() {
    let d = Setup::new()
        .module("flaky", FLAKY)
        .settings(r#""module_policy": {"flaky": {"retry_base_secs": 0.05}}"#)
        .start();
    let id = d.ask_str("queue:add?retries=2:flaky:");
    let start = Instant::now();
    let answer = d.ask_str(&format!("queue:get:{id}"));
    assert_eq!(answer, format!("ok on 3 of {}", id_of(&id)));
    assert!(start.elapsed() < Duration::from_secs(5));
    let info = d.ask_str(&format!("queue:info:{id}"));
    assert_eq!(field(&info, "status"), "fetched", "{info}");
    let d2 = d.ask_str("queue:add?retries=2:flaky:");
    wait_for("done", || d.ask_str(&format!("queue:check:{d2}")) == "2");
    let info = d.ask_str(&format!("queue:info:{d2}"));
    assert_eq!(field(&info, "status"), "done", "{info}");
    assert_eq!(field(&info, "attempts"), "3", "{info}");
    assert!(field(&info, "attempt_1").starts_with("exit 3, "), "{info}");
    assert!(
        field(&info, "attempt_1").ends_with(" s, not yet 1"),
        "{info}"
    );
    assert!(
        field(&info, "attempt_2").ends_with(" s, not yet 2"),
        "{info}"
    );
    assert!(field(&info, "attempt_3").starts_with("exit 0, "), "{info}");
}

#[test]
fn without_retries_a_failure_is_final_and_a_job_waiting_to_retry_is_checked_0() {
    let d = Setup::new()
        .module("flaky", FLAKY)
        .settings(r#""module_policy": {"flaky": {"retries": 2, "retry_base_secs": 1}}"#)
        .start();
    // The module's policy gives it two retries, the job's own option none.
    let once = d.ask_str("queue:add?retries=0:flaky:");
    assert_eq!(d.ask_str(&format!("queue:get:{once}")), d.ask_str("flaky:"));
    let id = d.add("flaky:");
    wait_for("the first attempt failed", || {
        d.ask_str(&format!("queue:info:{id}"))
            .contains("attempt_1: ")
    });
    assert_eq!(
        d.ask_str(&format!("queue:check:{id}")),
        "0",
        "waits to retry"
    );
    let info = d.ask_str(&format!("queue:info:{id}"));
    assert_eq!(field(&info, "status"), "scheduled", "{info}");
    assert!(info.contains("run_at: "), "{info}");
    assert_eq!(
        d.ask_str(&format!("queue:get:{id}")),
        format!("ok on 3 of {}", id_of(&id))
    );
}

#[test]
fn failed_jobs_are_listed_and_retried_after_a_fix() {
    let d = Setup::new()
        .module("invoice", BROKEN)
        .module("other", BROKEN)
        .settings(r#""module_policy": {"invoice": {"retry_base_secs": 0.05}}"#)
        .start();
    let id = d.ask_str("queue:add?retries=1:invoice:42");
    let failed = d.ask_str(&format!("queue:get:{id}"));
    assert_eq!(failed, "500: Module invoice failed (exit status 3)");
    let id2 = d.add("invoice:43");
    let other = d.add("other:1");
    for job in [&id2, &other] {
        wait_for("failed", || d.ask_str(&format!("queue:check:{job}")) == "2");
    }
    let info = d.ask_str(&format!("queue:info:{id2}"));
    assert_eq!(field(&info, "status"), "failed", "{info}");
    assert_eq!(field(&info, "attempts"), "1", "{info}");
    assert!(
        field(&info, "attempt_1").ends_with(", no such invoice"),
        "{info}"
    );
    assert_eq!(d.ask_str("queue:failed"), "403: Forbidden");
    let list = d.ask_operator("queue:failed");
    let rows: Vec<&str> = list.lines().collect();
    assert_eq!(rows.len(), 2, "the fetched one is not held: {list}");
    let row = rows
        .iter()
        .find(|r| r.starts_with(&format!("{} ", id_of(&id2))))
        .unwrap_or_else(|| panic!("{list}"));
    assert!(
        row.starts_with(&format!("{} invoice 1 ", id_of(&id2))),
        "{row}"
    );
    assert!(row.ends_with(" no such invoice"), "{row}");
    // The fix is deployed: the job's own listener queues it once more.
    d.add_module(
        "invoice",
        "#!/bin/sh\nprintf 'paid %s on %s' \"$(cat)\" \"$BGJOB_ATTEMPT\"\n",
    );
    assert_eq!(d.ask_str(&format!("queue:retry:{id2}")), "queued: 1");
    assert_eq!(d.ask_str(&format!("queue:get:{id2}")), "paid 43 on 2");
    assert_eq!(d.ask_str(&format!("queue:retry:{id2}")), "404: Unknown job");
    // A whole module, by an operator.
    assert_eq!(d.ask_str("queue:retry:module:other"), "403: Forbidden");
    d.add_module("other", "#!/bin/sh\nprintf fixed\n");
    assert_eq!(d.ask_operator("queue:retry:module:other"), "queued: 1");
    assert_eq!(d.ask_str(&format!("queue:get:{other}")), "fixed");
    assert_eq!(d.ask_operator("queue:failed"), "");
}

#[test]
fn kill_9_during_attempt_2_of_4_gives_attempt_3_after_the_restart() {
    let script = "#!/bin/sh
dir=$(dirname \"$0\")/..
echo \"$BGJOB_ATTEMPT\" >> \"$dir/attempts\"
case $BGJOB_ATTEMPT in
1) echo first >&2; exit 3 ;;
2) touch \"$dir/second\"; sleep 5 ;;
esac
printf 'attempt %s' \"$BGJOB_ATTEMPT\"
";
    let mut d = Setup::new()
        .module("cut", script)
        .settings(r#""module_policy": {"cut": {"retry_base_secs": 0.05}}"#)
        .start();
    let id = d.ask_str("queue:add?retries=3:cut:");
    let second = d.modules.join("../second");
    wait_for("attempt 2 running", || second.exists());
    // Its start record reaches the disk with the turn's group commit.
    std::thread::sleep(Duration::from_millis(300));
    d.crash_and_restart();
    assert_eq!(d.ask_str(&format!("queue:get:{id}")), "attempt 3");
    let attempts = std::fs::read_to_string(d.modules.join("../attempts")).unwrap();
    assert_eq!(attempts, "1\n2\n3\n", "never attempt 1 again");
}

#[test]
fn a_failed_job_waiting_for_its_retry_keeps_its_time_across_a_restart() {
    let mut d = Setup::new()
        .module("flaky", FLAKY)
        .settings(r#""module_policy": {"flaky": {"retry_base_secs": 2, "retry_max_secs": 2}}"#)
        .start();
    let id = d.ask_str("queue:add?retries=2:flaky:");
    wait_for("attempt 1 failed", || {
        d.ask_str(&format!("queue:info:{id}"))
            .contains("attempt_1: ")
    });
    d.crash_and_restart();
    let info = d.ask_str(&format!("queue:info:{id}"));
    assert_eq!(field(&info, "status"), "scheduled", "{info}");
    assert!(field(&info, "attempt_1").ends_with("not yet 1"), "{info}");
    assert_eq!(
        d.ask_str(&format!("queue:get:{id}")),
        format!("ok on 3 of {}", id_of(&id))
    );
}

#[test]
fn a_js_module_sees_its_job_id_and_attempt_through_the_host_api_warm_and_cold() {
    const JS: &str = "module.exports.TExecute = (parts, client) => {
  if (client.attempt < 2) throw new Error('first attempt fails');
  client.end(`${client.jobId} ${client.attempt}`);
};
";
    for workers in [1, 0] {
        let d = Setup::new()
            .settings(&format!(
                r#""node_workers": {workers}, "module_policy": {{"ids": {{"retry_base_secs": 0.05}}}}"#
            ))
            .start();
        std::fs::write(d.modules.join("ids.js"), JS).unwrap();
        let id = d.ask_str("queue:add?retries=1:ids:");
        assert!(id.starts_with("id:"), "{id}");
        let answer = d.ask_str(&format!("queue:get:{id}"));
        assert_eq!(answer, format!("{} 2", id_of(&id)), "workers {workers}");
    }
}

#[test]
fn a_failed_jobs_kept_data_counts_against_the_result_bounds() {
    // A failed job keeps its data for queue:retry: with a short answer and
    // large data, only counting the data keeps failed jobs bounded.
    let d = Setup::new()
        .module("broken", BROKEN)
        .settings(r#""result_retention_bytes": 100000"#)
        .start();
    let data = "x".repeat(60_000);
    let stats_bytes = || {
        let stats = d.ask_str("queue:stats");
        field(&stats, "results_bytes").parse::<usize>().unwrap()
    };
    let first = d.add(&format!("broken:{data}"));
    wait_for("the job to fail", || {
        d.ask_str(&format!("queue:check:{first}")) == "2"
    });
    assert!(stats_bytes() >= 60_000, "{}", d.ask_str("queue:stats"));
    let second = d.add(&format!("broken:{data}"));
    wait_for("the second to fail", || {
        d.ask_str(&format!("queue:check:{second}")) == "2"
    });
    // Two of them are over the bound: the older one's result goes.
    assert_eq!(
        d.ask_str(&format!("queue:check:{first}")),
        "404: Unknown job"
    );
    assert!(stats_bytes() <= 100_000, "{}", d.ask_str("queue:stats"));
}
