//! When journal records reach the disk: the `journal_sync` setting.

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
