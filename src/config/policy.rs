//! Per-module policies, the `"module_policy"` map of the configuration
//! file: `{"<module>": {"answer": "stream"}}`. Read at start and on SIGHUP;
//! a key the policy does not know is an error that names its path
//! (`module_policy.cat.anser`), a policy for a module the folder does not
//! hold is a warning (`config/check.rs`).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use crate::queue::options::{Priority, MAX_RETRIES};

/// How a direct TCP call's answer reaches its client.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Answer {
    /// The module's whole output is collected, then sent once it exited:
    /// a failure becomes a `5xx` answer.
    #[default]
    Buffered,
    /// The module's stdout is the client's socket: its output reaches the
    /// client as it is written, and nothing is held by the daemon.
    Stream,
}

/// What one module's calls are served with. Fields are added as the
/// policy grows; each one is optional, so `{}` is the default policy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModulePolicy {
    /// How a direct call's answer is sent (queue jobs and warm `.js`
    /// workers are always buffered, UDP calls have no answer).
    #[serde(default)]
    pub answer: Answer,
    /// This module's time limit in seconds, in place of the global
    /// `job_timeout_secs`, for direct calls and queue jobs alike: a slow
    /// renderer may get minutes while everything else keeps its seconds.
    #[serde(default, deserialize_with = "positive_secs")]
    pub job_timeout_secs: Option<Duration>,
    /// How many of this module's jobs may run at once, within the global
    /// `max_jobs`, so that one slow module cannot take every slot.
    #[serde(default)]
    pub max_jobs: Option<usize>,
    /// How many of this module's jobs may wait at once, within the global
    /// `max_waiting`.
    #[serde(default)]
    pub max_waiting: Option<usize>,
    /// The warm pool size of this `.js` module, in place of the global
    /// `node_workers`.
    #[serde(default)]
    pub node_workers: Option<usize>,
    /// Attempts after the first when an attempt fails (0-25), for jobs that
    /// do not ask for their own: a flaky mailer retries, a renderer not.
    #[serde(default, deserialize_with = "retries")]
    pub retries: Option<u32>,
    /// The wait before the first retry, in seconds; it doubles with each
    /// further attempt, up to `retry_max_secs`.
    #[serde(default, deserialize_with = "positive_secs")]
    pub retry_base_secs: Option<Duration>,
    /// The longest wait between two attempts, in seconds.
    #[serde(default, deserialize_with = "positive_secs")]
    pub retry_max_secs: Option<Duration>,
    /// The priority of this module's jobs that do not ask for their own.
    #[serde(default, deserialize_with = "priority")]
    pub priority: Option<Priority>,
}

/// The policy of a module that has none: every default.
static DEFAULT_POLICY: ModulePolicy = ModulePolicy {
    answer: Answer::Buffered,
    job_timeout_secs: None,
    max_jobs: None,
    max_waiting: None,
    node_workers: None,
    retries: None,
    retry_base_secs: None,
    retry_max_secs: None,
    priority: None,
};

/// The wait before the first retry when a policy does not set one.
pub const DEFAULT_RETRY_BASE: Duration = Duration::from_secs(10);
/// The longest wait between attempts when a policy does not set one.
pub const DEFAULT_RETRY_MAX: Duration = Duration::from_secs(3600);

/// The longest per-module time limit, a day, as for the global one.
const MAX_TIMEOUT_SECS: f64 = 86_400.0;

/// Reads a time limit or a wait: a number of seconds above 0 and at most a
/// day (a decimal such as 0.05 is fine). A bad value is an error, so
/// `--check-config` names its path.
fn positive_secs<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    let secs = f64::deserialize(d)?;
    if secs.is_finite() && secs > 0.0 && secs <= MAX_TIMEOUT_SECS {
        Ok(Some(Duration::from_secs_f64(secs)))
    } else {
        Err(serde::de::Error::custom(format!(
            "{secs} is out of range (above 0, at most {MAX_TIMEOUT_SECS})"
        )))
    }
}

/// Reads a retry count: 0 to `MAX_RETRIES`, as a job may ask for.
fn retries<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    let n = u64::deserialize(d)?;
    match u32::try_from(n) {
        Ok(n) if n <= MAX_RETRIES => Ok(Some(n)),
        _ => Err(serde::de::Error::custom(format!(
            "{n} is out of range (0 to {MAX_RETRIES})"
        ))),
    }
}

/// Reads a priority by its option's spelling: `high`, `normal` or `low`.
fn priority<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Priority>, D::Error> {
    let name = String::deserialize(d)?;
    [Priority::High, Priority::Normal, Priority::Low]
        .into_iter()
        .find(|p| p.name() == name)
        .map(Some)
        .ok_or_else(|| {
            serde::de::Error::custom(format!("{name:?} is not a priority (high, normal or low)"))
        })
}

impl ModulePolicy {
    /// The keys set, as the config file writes them (for the dashboard):
    /// `{}` for the default policy.
    pub fn as_json(&self) -> serde_json::Value {
        let mut map = serde_json::Map::new();
        let mut put = |key: &str, value: serde_json::Value| {
            map.insert(key.to_string(), value);
        };
        if self.answer == Answer::Stream {
            put("answer", "stream".into());
        }
        let secs = |d: Duration| serde_json::Value::from(d.as_secs_f64());
        if let Some(d) = self.job_timeout_secs {
            put("job_timeout_secs", secs(d));
        }
        if let Some(n) = self.max_jobs {
            put("max_jobs", n.into());
        }
        if let Some(n) = self.max_waiting {
            put("max_waiting", n.into());
        }
        if let Some(n) = self.node_workers {
            put("node_workers", n.into());
        }
        if let Some(n) = self.retries {
            put("retries", n.into());
        }
        if let Some(d) = self.retry_base_secs {
            put("retry_base_secs", secs(d));
        }
        if let Some(d) = self.retry_max_secs {
            put("retry_max_secs", secs(d));
        }
        if let Some(p) = self.priority {
            put("priority", p.name().into());
        }
        serde_json::Value::Object(map)
    }

    /// The time limit of this module's jobs: its own, else the global one.
    pub fn job_timeout(&self, global: Duration) -> Duration {
        self.job_timeout_secs.unwrap_or(global)
    }

    /// The retries of this module's jobs that do not ask for their own.
    pub fn retries(&self) -> u32 {
        self.retries.unwrap_or(0)
    }

    /// The wait before the first retry.
    pub fn retry_base(&self) -> Duration {
        self.retry_base_secs.unwrap_or(DEFAULT_RETRY_BASE)
    }

    /// The longest wait between two attempts.
    pub fn retry_max(&self) -> Duration {
        self.retry_max_secs.unwrap_or(DEFAULT_RETRY_MAX)
    }

    /// The priority of this module's jobs that do not ask for their own.
    pub fn priority(&self) -> Priority {
        self.priority.unwrap_or_default()
    }

    /// The wait after failed attempt `attempt` (1-based): `retry_base x
    /// 2^(attempt-1)` times `jitter` (the caller's random factor, meant to
    /// lie in [0.75, 1.25], so that jobs failed together do not retry
    /// together), at most `retry_max`.
    pub fn retry_wait(&self, attempt: u32, jitter: f64) -> Duration {
        let doublings = attempt.saturating_sub(1).min(60) as i32;
        let secs = self.retry_base().as_secs_f64() * 2f64.powi(doublings) * jitter.max(0.0);
        Duration::from_secs_f64(secs.min(self.retry_max().as_secs_f64()))
    }
}

/// A random factor in [0.75, 1.25] for a retry's wait, so that jobs failed
/// together do not all retry in the same instant.
pub fn jitter() -> f64 {
    let mut bytes = [0u8; 4];
    if crate::journal::frame::fill_random(&mut bytes).is_err() {
        return 1.0;
    }
    0.75 + f64::from(u32::from_le_bytes(bytes)) / f64::from(u32::MAX) * 0.5
}

/// The policy of `module` under `policies`, else the default one.
pub fn policy<'a>(policies: &'a Policies, module: &str) -> &'a ModulePolicy {
    policies.get(module).unwrap_or(&DEFAULT_POLICY)
}

/// The time limit of `module`'s jobs under `policies`, else `global`.
pub fn job_timeout(policies: &Policies, module: &str, global: Duration) -> Duration {
    policies
        .get(module)
        .map_or(global, |policy| policy.job_timeout(global))
}

/// The policies by module name.
pub type Policies = BTreeMap<String, ModulePolicy>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn policies_parse_and_unknown_keys_name_their_path() {
        let config =
            Config::parse(r#"{"module_policy": {"cat": {"answer": "stream"}, "x": {}}}"#).unwrap();
        let policies = &config.settings.module_policy;
        assert_eq!(policies["cat"].answer, Answer::Stream);
        assert_eq!(policies["x"].answer, Answer::Buffered);
        let e = Config::parse(r#"{"module_policy": {"cat": {"anser": "stream"}}}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("module_policy.cat.anser"), "{e}");
        let e = Config::parse(r#"{"module_policy": {"cat": {"answer": "now"}}}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("module_policy.cat.answer"), "{e}");
    }

    #[test]
    fn limits_parse_and_a_bad_time_limit_names_its_path() {
        let config = Config::parse(
            r#"{"module_policy": {"slow": {"job_timeout_secs": 90, "max_jobs": 2,
                "max_waiting": 5, "node_workers": 3}}}"#,
        )
        .unwrap();
        let policies = &config.settings.module_policy;
        let slow = &policies["slow"];
        assert_eq!(
            (slow.max_jobs, slow.max_waiting, slow.node_workers),
            (Some(2), Some(5), Some(3))
        );
        let global = Duration::from_secs(30);
        assert_eq!(
            job_timeout(policies, "slow", global),
            Duration::from_secs(90)
        );
        assert_eq!(job_timeout(policies, "other", global), global);
        for bad in ["0", "-1", "86401"] {
            let e = Config::parse(&format!(
                r#"{{"module_policy": {{"slow": {{"job_timeout_secs": {bad}}}}}}}"#
            ))
            .unwrap_err()
            .to_string();
            assert!(
                e.contains("module_policy.slow.job_timeout_secs"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn retries_and_priority_parse_with_their_defaults() {
        let config = Config::parse(
            r#"{"module_policy": {"mailer": {"retries": 25, "retry_base_secs": 0.05,
                "retry_max_secs": 0.5, "priority": "high"}, "plain": {}}}"#,
        )
        .unwrap();
        let policies = &config.settings.module_policy;
        let mailer = policy(policies, "mailer");
        assert_eq!(mailer.retries(), 25);
        assert_eq!(mailer.retry_base(), Duration::from_millis(50));
        assert_eq!(mailer.retry_max(), Duration::from_millis(500));
        assert_eq!(mailer.priority(), Priority::High);
        for defaults in [policy(policies, "plain"), policy(policies, "absent")] {
            assert_eq!(defaults.retries(), 0);
            assert_eq!(defaults.retry_base(), Duration::from_secs(10));
            assert_eq!(defaults.retry_max(), Duration::from_secs(3600));
            assert_eq!(defaults.priority(), Priority::Normal);
        }
        let low = Config::parse(r#"{"module_policy": {"m": {"priority": "low"}}}"#).unwrap();
        assert_eq!(
            policy(&low.settings.module_policy, "m").priority(),
            Priority::Low
        );
    }

    #[test]
    fn the_retry_wait_doubles_with_jitter_up_to_its_ceiling() {
        let config = Config::parse(
            r#"{"module_policy": {"m": {"retry_base_secs": 2, "retry_max_secs": 10}}}"#,
        )
        .unwrap();
        let m = policy(&config.settings.module_policy, "m");
        let secs = |attempt, jitter| m.retry_wait(attempt, jitter).as_secs_f64();
        assert_eq!(secs(1, 1.0), 2.0);
        assert_eq!(secs(2, 1.0), 4.0);
        assert_eq!(secs(2, 0.75), 3.0);
        assert_eq!(secs(3, 1.25), 10.0);
        assert_eq!(secs(40, 1.0), 10.0);
        let default = policy(&config.settings.module_policy, "other");
        assert_eq!(default.retry_wait(1, 1.0), Duration::from_secs(10));
        assert_eq!(default.retry_wait(30, 1.0), Duration::from_secs(3600));
    }

    #[test]
    fn a_bad_retry_or_priority_names_its_path() {
        for (key, bad) in [
            ("retries", "26"),
            ("retries", "-1"),
            ("retries", "1.5"),
            ("retries", r#""3""#),
            ("retry_base_secs", "0"),
            ("retry_base_secs", "-0.05"),
            ("retry_max_secs", "86401"),
            ("retry_max_secs", r#""1h""#),
            ("priority", r#""urgent""#),
            ("priority", "1"),
        ] {
            let e = Config::parse(&format!(
                r#"{{"module_policy": {{"m": {{"{key}": {bad}}}}}}}"#
            ))
            .unwrap_err()
            .to_string();
            assert!(
                e.contains(&format!("module_policy.m.{key}")),
                "{key} {bad}: {e}"
            );
        }
    }
}
