//! Per-module limits (`"module_policy": {"m": {"job_timeout_secs": ..}}`):
//! a module's own time limit replaces the global one for its direct calls
//! and its queue jobs, while other modules keep the global limit; a bad
//! value of any policy key (limits, retries, priority) is named by its path
//! in `--check-config`.

use std::time::{Duration, Instant};

use crate::util::{write_module, Setup, TempDir};

#[test]
fn a_modules_own_time_limit_replaces_the_global_one_for_calls_and_jobs() {
    let d = Setup::new()
        .module("quick", "#!/bin/sh\nsleep 30\n")
        .module("patient", "#!/bin/sh\nsleep 1\nprintf patient-done\n")
        .settings(
            r#""job_timeout_secs": 0.5, "kill_grace_ms": 100,
               "module_policy": {"quick": {"job_timeout_secs": 0.2},
                                 "patient": {"job_timeout_secs": 20}}"#,
        )
        .start();
    let started = Instant::now();
    assert_eq!(d.ask_str("quick:"), "504: Module quick timed out");
    assert!(started.elapsed() < Duration::from_secs(10));
    // Its 1 s run is beyond the global 0.5 s, within its own 20 s.
    assert_eq!(d.ask_str("patient:"), "patient-done");
    let id = d.ask_str("queue:add:patient:");
    assert_eq!(d.ask_str(&format!("queue:get:{id}")), "patient-done");
    let id = d.ask_str("queue:add:quick:");
    assert_eq!(
        d.ask_str(&format!("queue:get:{id}")),
        "504: Module quick timed out"
    );
}

#[test]
fn a_module_without_its_own_limit_keeps_the_global_one() {
    let d = Setup::new()
        .module("slow", "#!/bin/sh\nsleep 1\nprintf slow-done\n")
        .settings(
            r#""job_timeout_secs": 0.3, "kill_grace_ms": 100,
               "module_policy": {"slow": {"max_jobs": 2}}"#,
        )
        .start();
    assert_eq!(d.ask_str("slow:"), "504: Module slow timed out");
}

#[test]
fn check_config_names_a_bad_per_module_limit_by_its_path() {
    let dir = TempDir::new("limits");
    let modules = dir.path().join("modules");
    std::fs::create_dir(&modules).unwrap();
    write_module(&modules, "cat", "#!/bin/sh\nexec cat\n");
    let listen = r#""listen": [{"address": "127.0.0.1", "port": 0}]"#;
    for policy in [
        r#"{"job_timeout_secs": 0}"#,
        r#"{"job_timeout_secs": "soon"}"#,
        r#"{"max_jobs": -1}"#,
        r#"{"max_waitnig": 3}"#,
        r#"{"retries": 26}"#,
        r#"{"retry_base_secs": 0}"#,
        r#"{"retry_max_secs": "1h"}"#,
        r#"{"priority": "urgent"}"#,
    ] {
        let config = format!(r#"{{{listen}, "module_policy": {{"cat": {policy}}}}}"#);
        let (code, text) = crate::util::check_config(&config, &modules, &[]);
        assert_eq!(code, Some(1), "{policy}: {text}");
        assert!(text.contains("module_policy.cat."), "{policy}: {text}");
    }
    let config = format!(
        r#"{{{listen}, "module_policy": {{"cat": {{"job_timeout_secs": 2.5, "max_jobs": 1,
            "max_waiting": 4, "node_workers": 2, "retries": 3, "retry_base_secs": 0.05,
            "retry_max_secs": 60, "priority": "low"}}}}}}"#
    );
    let (code, text) = crate::util::check_config(&config, &modules, &[]);
    assert_eq!(code, Some(0), "{text}");
}
