//! Per-module policies, the `"module_policy"` map of the configuration
//! file: `{"<module>": {"answer": "stream"}}`. Read at start and on SIGHUP;
//! a key the policy does not know is an error that names its path
//! (`module_policy.cat.anser`), a policy for a module the folder does not
//! hold is a warning (`config/check.rs`).

use std::collections::BTreeMap;

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
}
