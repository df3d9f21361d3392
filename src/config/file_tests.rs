//! Unit tests of the configuration file's parsing.

use super::*;
use crate::journal::sync::SyncPolicy;
use std::time::Duration;

#[test]
fn seed_format_is_accepted_unchanged() {
    let config = Config::parse(
        r#"[{"server": "background", "address": "0.0.0.0", "port": 12341},
            {"name": "second", "address": "::1", "port": "4000"}]"#,
    )
    .unwrap();
    assert_eq!(config.listeners.len(), 2);
    assert_eq!(config.listeners[0].label, "background");
    assert_eq!(config.listeners[0].addr, "0.0.0.0:12341".parse().unwrap());
    assert_eq!(config.listeners[1].addr, "[::1]:4000".parse().unwrap());
    assert_eq!(config.settings, Settings::default());
    assert_eq!(config.listeners[0].access, Access::default());
}

#[test]
fn allow_lists_apply_per_listener_or_from_the_setting() {
    let config = Config::parse(
        r#"{"allow": ["127.0.0.0/8"], "listen": [
            {"name": "a", "address": "0.0.0.0", "port": 1},
            {"name": "b", "address": "0.0.0.0", "port": 2, "allow": ["10.0.0.0/8"], "modules": ["test"]}]}"#,
    )
    .unwrap();
    let ip = |s: &str| s.parse().unwrap();
    assert!(config.listeners[0].access.permits(ip("127.0.0.1")));
    assert!(!config.listeners[0].access.permits(ip("10.0.0.1")));
    assert!(config.listeners[1].access.permits(ip("10.0.0.1")));
    assert!(!config.listeners[1].access.permits(ip("127.0.0.1")));
    assert!(
        config.listeners[1].access.serves("test") && !config.listeners[1].access.serves("less")
    );
    assert!(config.listeners[0].udp);
    let config = Config::parse(r#"[{"address": "0.0.0.0", "port": 1, "udp": false}]"#).unwrap();
    assert!(!config.listeners[0].udp);
}

#[test]
fn object_form_sets_limits_and_clamps_them() {
    let config = Config::parse(
        r#"{"listen": [{"name": "a", "address": "localhost", "port": 1}],
            "max_jobs": 0, "job_timeout_secs": 2.5, "max_request_bytes": 10, "request_gap_ms": 999999}"#,
    )
    .unwrap();
    assert_eq!(config.listeners[0].addr, "127.0.0.1:1".parse().unwrap());
    assert_eq!(config.settings.max_jobs, 1);
    assert_eq!(config.settings.job_timeout, Duration::from_millis(2500));
    assert_eq!(config.settings.max_request, 10);
    assert_eq!(config.settings.request_gap, Some(Duration::from_secs(60)));
    assert_eq!(
        config.clamped,
        [
            "max_jobs: 0 is out of range, 1 is used",
            "request_gap_ms: 999999 is out of range, 60000 is used"
        ]
    );
    let config = Config::parse(r#"{"state_dir": "none", "journal_sync": 200}"#).unwrap();
    assert_eq!(config.settings.state_dir, None);
    assert_eq!(
        config.settings.journal_sync,
        SyncPolicy::Every(Duration::from_millis(200))
    );
    let config =
        Config::parse(r#"{"state_dir": "/var/lib/bgjob", "journal_sync": "never"}"#).unwrap();
    assert_eq!(
        config.settings.state_dir,
        Some(PathBuf::from("/var/lib/bgjob"))
    );
    assert_eq!(config.settings.journal_sync, SyncPolicy::Never);
    assert!(Config::parse(r#"{"journal_sync": "sometimes"}"#).is_err());
}

#[test]
fn mistakes_are_named() {
    let err = |text: &str| Config::parse(text).unwrap_err().to_string();
    assert!(err(r#"{"max_jobz": 1}"#).contains("max_jobz"));
    assert!(err(r#"[{"address": "x.example", "port": 1}]"#).contains("not an IP address"));
    assert!(err(r#"[{"address": "127.0.0.1", "port": 70000}]"#).contains("port"));
    assert!(err("[").contains("EOF"));
    assert!(err("3").contains("expected"));
    assert!(err(r#"{"allow": ["10.0.0.0/40"]}"#).contains("prefix"));
    assert_eq!(
        err("{\n \"max_jobs\": \"8\"}"),
        "invalid configuration: max_jobs: invalid type: string \"8\", expected u64 at line 2 column 16"
    );
    let nested = err(r#"{"listen": [{"port": 1}, {"port": 2, "adress": "::1"}]}"#);
    assert!(
        nested.contains("listen[1]") && nested.contains("adress"),
        "{nested}"
    );
    let seed = err(r#"[{"port": 1, "allow": "10.0.0.0/8"}]"#);
    assert!(
        seed.starts_with("invalid configuration: [0].allow: invalid type"),
        "{seed}"
    );
}
