//! When journal records reach the disk: the `journal_sync` setting.

use std::fmt;
use std::time::Duration;

/// When records reach the disk, like beanstalkd's `-f`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncPolicy {
    /// `fdatasync` after each batch; `id:<n>` waits for it (the default).
    Always,
    /// `fdatasync` after every single record: the slow baseline, for benchmarks.
    EachRecord,
    /// `fdatasync` at most this often; answers do not wait for it.
    Every(Duration),
    /// Never `fdatasync` (the OS writes back when it likes); answers do not wait.
    Never,
}

impl SyncPolicy {
    /// Whether answers wait for `fdatasync` or only for `write`.
    pub fn acks_wait_for_sync(self) -> bool {
        matches!(self, SyncPolicy::Always | SyncPolicy::EachRecord)
    }
}

/// As the config file's `journal_sync` spells it.
impl fmt::Display for SyncPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SyncPolicy::Always => f.write_str("always"),
            SyncPolicy::EachRecord => f.write_str("each"),
            SyncPolicy::Every(every) => write!(f, "every {} ms", every.as_millis()),
            SyncPolicy::Never => f.write_str("never"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_read_as_the_config_spells_them() {
        assert_eq!(SyncPolicy::Always.to_string(), "always");
        assert_eq!(SyncPolicy::EachRecord.to_string(), "each");
        assert_eq!(
            SyncPolicy::Every(Duration::from_millis(200)).to_string(),
            "every 200 ms"
        );
    }
}
