//! Module uids (`module_uids`): a range of otherwise unused uids, one for
//! each running job or warm worker, like systemd's DynamicUser. A job then
//! cannot signal, trace or read another, and when it ends every process of
//! its uid is killed before the uid serves again, whatever `setsid` or
//! double forks it did.

use std::collections::VecDeque;

#[derive(Debug)]
pub struct UidPool {
    /// The group every module uid runs with.
    gid: u32,
    free: VecDeque<u32>,
}

impl UidPool {
    /// The uids `first..=last`, all free.
    pub fn new(first: u32, last: u32, gid: u32) -> Self {
        UidPool {
            gid,
            free: (first..=last).collect(),
        }
    }

    pub fn gid(&self) -> u32 {
        self.gid
    }

    /// A uid no process runs as, if one is free.
    pub fn take(&mut self) -> Option<u32> {
        self.free.pop_front()
    }

    /// A uid cleared of every process: it may serve again.
    pub fn give_back(&mut self, uid: u32) {
        self.free.push_back(uid);
    }

    pub fn free(&self) -> usize {
        self.free.len()
    }
}

/// Parses `FIRST-LAST`, a range of at least one uid above 0.
pub fn parse_range(text: &str) -> Option<(u32, u32)> {
    let (first, last) = text.trim().split_once('-')?;
    let (first, last): (u32, u32) = (first.trim().parse().ok()?, last.trim().parse().ok()?);
    (first > 0 && first <= last && last - first < 1 << 20).then_some((first, last))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse_and_uids_come_back_last() {
        assert_eq!(parse_range("60000-60003"), Some((60000, 60003)));
        assert_eq!(parse_range("0-5"), None, "never root");
        assert_eq!(parse_range("9-3"), None);
        assert_eq!(parse_range("x"), None);
        let mut pool = UidPool::new(10, 11, 7);
        assert_eq!(
            (pool.take(), pool.take(), pool.take()),
            (Some(10), Some(11), None)
        );
        pool.give_back(10);
        assert_eq!(pool.take(), Some(10));
        assert_eq!(pool.gid(), 7);
    }
}
