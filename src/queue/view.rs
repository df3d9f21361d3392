//! What the dashboard shows of the local engine's queue, read at once
//! without a request: jobs held for later, jobs not kept yet, failed
//! results and paused modules.

use crate::queue::engine::QueueView;
use crate::queue::local::{LocalEngine, Phase};

impl LocalEngine {
    pub(super) fn dashboard_view(&self, listed: usize) -> QueueView {
        let (failed_total, failed) = self.book.failed_newest(listed);
        let mut view = QueueView {
            failed_total,
            failed,
            paused: self.paused.iter().cloned().collect(),
            ..QueueView::default()
        };
        for live in self.live.values() {
            match live.phase {
                Phase::Scheduled => view.scheduled += 1,
                Phase::Unkept => view.unkept += 1,
                Phase::Waiting | Phase::Running => {}
            }
        }
        view
    }
}
