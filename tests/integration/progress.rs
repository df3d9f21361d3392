//! How far a job is, over real sockets: a module writes `N/M` or `N%` lines
//! to `BGJOB_PROGRESS_FD` (`.js` modules call `client.progress(n, m)`, warm
//! or cold), and the last one shows in `queue:info`, `bgjob info` and the
//! metrics endpoint; garbage is counted, a flood does not stall the loop,
//! and a module that ignores the descriptor works as before.

use std::path::Path;
use std::process::Command;

use crate::metrics::{curl, metrics_addr};
use crate::util::{wait_for, Daemon, Setup};

const BGJOB: &str = env!("CARGO_BIN_EXE_bgjob");

/// Waits until `queue:info` of `id` has `line`; the whole answer.
fn info_with(d: &Daemon, id: &str, line: &str) -> String {
    let ask = format!("queue:info:{id}");
    let mut info = String::new();
    wait_for(&format!("{line:?} in {ask}"), || {
        info = d.ask_str(&ask);
        info.lines().any(|l| l == line)
    });
    info
}

/// A module that waits until `gate` exists, then answers `done`.
fn waits_for(gate: &Path, before: &str) -> String {
    format!(
        "#!/bin/sh\n{before}\nwhile [ ! -e {} ]; do sleep 0.02; done\nprintf done\n",
        gate.display()
    )
}

#[test]
fn the_last_progress_line_shows_in_queue_info_bgjob_info_and_the_metrics() {
    let d = Setup::new().settings(r#""metrics": "127.0.0.1:0""#).start();
    let gate = d.dir.path().join("gate");
    let said = "echo 10/100 >&$BGJOB_PROGRESS_FD\necho oops >&$BGJOB_PROGRESS_FD\n\
                printf '40/1' >&$BGJOB_PROGRESS_FD\nprintf '00\\n' >&$BGJOB_PROGRESS_FD";
    d.add_module("steps", &waits_for(&gate, said));
    let id = d.add("steps:");
    let info = info_with(&d, &id, "progress: 40/100");
    assert!(info.contains("status: running\n"), "{info}");
    assert!(info.contains("\nprogress_ignored: 1\n"), "{info}");
    let number = id.trim_start_matches("id:");
    let o = Command::new(BGJOB)
        .args(["--server", &d.addr.to_string(), "info", number])
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&o.stdout);
    assert!(shown.contains("progress: 40/100\n"), "{shown}");
    let (code, page) = curl(&metrics_addr(&d), "/metrics", &[]);
    assert_eq!(code, 200);
    let sample = page
        .lines()
        .find(|l| l.starts_with("bgjob_job_progress_ratio{module=\"steps\",pid=\""))
        .unwrap_or_else(|| panic!("no progress sample in:\n{page}"));
    assert!(sample.ends_with("\"} 0.4"), "{sample}");
    std::fs::write(&gate, "").unwrap();
    assert_eq!(d.ask_str(&format!("queue:get:{id}")), "done");
}

#[test]
fn a_percentage_counts_and_a_direct_call_answers_as_before() {
    let d = Setup::new().start();
    let gate = d.dir.path().join("gate");
    d.add_module(
        "pct",
        &waits_for(
            &gate,
            "echo 1/3 >&$BGJOB_PROGRESS_FD\necho 75% >&$BGJOB_PROGRESS_FD",
        ),
    );
    let id = d.add("pct:");
    info_with(&d, &id, "progress: 75%");
    std::fs::write(&gate, "").unwrap();
    assert_eq!(
        d.ask_str("pct:"),
        "done",
        "a direct call writes progress too"
    );
    assert_eq!(d.ask_str(&format!("queue:get:{id}")), "done");
}

#[test]
fn a_flood_on_the_progress_pipe_does_not_stall_the_loop() {
    let d = Setup::new().start();
    d.add_module(
        "flood",
        "#!/bin/sh\nyes garbage >&$BGJOB_PROGRESS_FD &\nyes 1/2/3 >&$BGJOB_PROGRESS_FD &\n\
         exec cat /dev/zero >&$BGJOB_PROGRESS_FD\n",
    );
    let id = d.add("flood:");
    let ask = format!("queue:info:{id}");
    wait_for("garbage to be counted", || {
        let info = d.ask_str(&ask);
        let ignored = info
            .lines()
            .find_map(|l| l.strip_prefix("progress_ignored: "))
            .and_then(|n| n.parse::<u64>().ok());
        ignored.is_some_and(|n| n > 10_000)
    });
    // Answered while the flood goes on (the harness gives each 20 s).
    for _ in 0..20 {
        assert_eq!(d.ask_str("helo"), "oleh");
    }
    let info = d.ask_str(&ask);
    assert!(!info.contains("\nprogress: "), "nothing parsed: {info}");
    assert!(info.contains("status: running\n"), "{info}");
    assert_eq!(
        d.ask_str(&format!("queue:cancel:{id}")),
        "cancelled: running job killed"
    );
    wait_for("the flood's processes to be gone", || {
        d.children().is_empty()
    });
}

#[test]
fn a_module_that_ignores_or_closes_the_progress_pipe_works() {
    let d = Setup::new()
        .module("plain", "#!/bin/sh\nprintf plain\n")
        .module("closes", "#!/bin/sh\nexec 3>&-\nsleep 0.1\nprintf closed\n")
        .start();
    assert_eq!(d.ask_str("plain:"), "plain");
    assert_eq!(d.ask_str("closes:"), "closed");
    for (module, answer) in [("plain", "plain"), ("closes", "closed")] {
        let id = d.add(&format!("{module}:"));
        assert_eq!(d.ask_str(&format!("queue:get:{id}")), answer);
        let info = d.ask_str(&format!("queue:info:{id}"));
        assert!(!info.contains("progress"), "{info}");
    }
}

/// A seed-style module that reports progress, then ends once `gate` exists.
fn js_progress(gate: &Path) -> String {
    format!(
        r#"const fs = require('fs');
exports.TExecute = function (parts, client) {{
  client.progress(1, 4);
  client.progress(2.7, 4);
  const wait = () => (fs.existsSync({gate:?}) ? client.end('js done') : setTimeout(wait, 20));
  wait();
}};
"#,
        gate = gate.display().to_string()
    )
}

#[test]
fn a_js_module_reports_progress_through_the_host_warm_and_cold() {
    for workers in [1, 0] {
        let d = Setup::new()
            .settings(&format!(r#""node_workers": {workers}"#))
            .start();
        let gate = d.dir.path().join("gate");
        std::fs::write(d.modules.join("steps.js"), js_progress(&gate)).unwrap();
        let id = d.add("steps:");
        info_with(&d, &id, "progress: 2/4");
        std::fs::write(&gate, "").unwrap();
        assert_eq!(
            d.ask_str(&format!("queue:get:{id}")),
            "js done",
            "node_workers {workers}"
        );
    }
}
