//! Per-module policies, the `"module_policy"` map of the configuration
//! file: `{"<module>": {"answer": "stream"}}`. Read at start and on SIGHUP;
//! a key the policy does not know is an error that names its path
//! (`module_policy.cat.anser`), a policy for a module the folder does not
//! hold is a warning (`config/check.rs`).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

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
}

/// The longest per-module time limit, a day, as for the global one.
const MAX_TIMEOUT_SECS: f64 = 86_400.0;

/// Reads a time limit: a number of seconds above 0 and at most a day. A
/// bad value is an error, so `--check-config` names its path.
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

impl ModulePolicy {
    /// The time limit of this module's jobs: its own, else the global one.
    pub fn job_timeout(&self, global: Duration) -> Duration {
        self.job_timeout_secs.unwrap_or(global)
    }
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
}
