//! Keys (`key=K` on `queue:add`): at most one held job per (listener,
//! key). While it is held (scheduled, waiting, running, or its result not
//! yet fetched or expired), another add with the same key on the same
//! listener answers the same id and adds nothing. A key is dropped lazily:
//! ids are never handed out twice, so a key whose id is no longer held is
//! simply free again.

use std::collections::HashMap;

use crate::keys::ConnKey;

/// The keys of the held jobs, and what they drew.
#[derive(Debug, Default)]
pub struct Keys {
    /// (listener, key) to the job's id.
    ids: HashMap<(String, Box<[u8]>), u64>,
    /// Adds answered with an existing job's id, by id.
    duplicates: HashMap<u64, u32>,
    /// Clients of a repeat add whose job is not kept yet: they are
    /// answered when it is, as its own client is.
    waiting: HashMap<u64, Vec<ConnKey>>,
}

impl Keys {
    /// The job added with `key` on `owner`, if `held` says it still is.
    pub fn keyed(&mut self, owner: &str, key: &[u8], held: impl Fn(u64) -> bool) -> Option<u64> {
        let name = (owner.to_string(), Box::<[u8]>::from(key));
        let id = *self.ids.get(&name)?;
        if held(id) {
            return Some(id);
        }
        self.ids.remove(&name);
        self.duplicates.remove(&id);
        None
    }

    /// Job `id` holds `key` on `owner` from now on.
    pub fn hold(&mut self, owner: &str, key: &[u8], id: u64) {
        let name = (owner.to_string(), Box::<[u8]>::from(key));
        self.ids.insert(name, id);
    }

    /// One more add was answered with job `id`'s id.
    pub fn count_duplicate(&mut self, id: u64) {
        *self.duplicates.entry(id).or_default() += 1;
    }

    /// `conn` waits for job `id` to be kept.
    pub fn wait(&mut self, id: u64, conn: ConnKey) {
        self.waiting.entry(id).or_default().push(conn);
    }

    /// The clients waiting for job `id` to be kept.
    pub fn take_waiting(&mut self, id: u64) -> Vec<ConnKey> {
        self.waiting.remove(&id).unwrap_or_default()
    }

    /// How many adds were answered with job `id`'s id.
    pub fn duplicates_of(&self, id: u64) -> u32 {
        self.duplicates.get(&id).copied().unwrap_or(0)
    }

    /// The client left: its repeat adds are not answered.
    pub fn forget(&mut self, conn: ConnKey) {
        self.waiting.retain(|_, conns| {
            conns.retain(|&c| c != conn);
            !conns.is_empty()
        });
    }

    /// After a load: keys whose job is no longer `held` are dropped.
    pub fn shrink(&mut self, held: impl Fn(u64) -> bool) {
        self.ids.retain(|_, id| held(*id));
        self.duplicates.retain(|id, _| held(*id));
        self.ids.shrink_to_fit();
        self.duplicates.shrink_to_fit();
    }
}
