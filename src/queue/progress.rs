//! How far the engine's jobs are: the last progress a running job's
//! module reported (`BGJOB_PROGRESS_FD`, or a warm worker's frame), kept
//! with the job while it is live and shown by `queue:info`.

use crate::queue::local::LocalEngine;
use crate::run::progress::Progress;

impl LocalEngine {
    /// Job `id` said how far it is; a job no longer live is not kept.
    pub(super) fn set_progress(&mut self, id: u64, progress: Progress) {
        if let Some(live) = self.live.get_mut(&id) {
            live.set_progress(progress);
        }
    }
}
