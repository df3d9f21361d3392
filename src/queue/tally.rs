//! Counts of the jobs the engine holds outside the daemon's waiting line
//! (not yet kept, or scheduled for later), kept as they change, so that
//! admitting a job costs the same with 100,000 scheduled as with none.

use std::collections::HashMap;
use std::net::IpAddr;

use crate::queue::job::Live;

/// Jobs held, in all, of each client and module, and their data's bytes.
#[derive(Debug, Default)]
pub struct Tally {
    all: usize,
    udp: usize,
    bytes: usize,
    clients: HashMap<IpAddr, (usize, usize)>,
    modules: HashMap<String, usize>,
}

impl Tally {
    /// `job` is held from now on.
    pub(super) fn add(&mut self, job: &Live) {
        self.all += 1;
        self.udp += usize::from(job.udp_peer().is_some());
        self.bytes += job.data.len();
        if let Some(ip) = job.client() {
            let mine = self.clients.entry(ip).or_default();
            mine.0 += 1;
            mine.1 += job.data.len();
        }
        match self.modules.get_mut(&job.module().name) {
            Some(n) => *n += 1,
            None => {
                self.modules.insert(job.module().name.clone(), 1);
            }
        }
    }

    /// `job` is held no more.
    pub(super) fn remove(&mut self, job: &Live) {
        self.all -= 1;
        self.udp -= usize::from(job.udp_peer().is_some());
        self.bytes -= job.data.len();
        if let Some(ip) = job.client() {
            if let Some(mine) = self.clients.get_mut(&ip) {
                mine.0 -= 1;
                mine.1 -= job.data.len();
                if mine.0 == 0 {
                    self.clients.remove(&ip);
                }
            }
        }
        if let Some(n) = self.modules.get_mut(&job.module().name) {
            *n -= 1;
            if *n == 0 {
                self.modules.remove(&job.module().name);
            }
        }
    }

    /// In all, of `client`, datagrams, and the data's bytes in all and of
    /// `client`.
    pub fn counts(&self, client: Option<IpAddr>) -> [usize; 5] {
        let mine = client.and_then(|ip| self.clients.get(&ip)).copied();
        let (n, b) = mine.unwrap_or_default();
        [self.all, n, self.udp, self.bytes, b]
    }

    /// Jobs of `module` held.
    pub fn of_module(&self, module: &str) -> usize {
        self.modules.get(module).copied().unwrap_or(0)
    }

    /// After a load: the maps drop the capacity it left.
    pub fn shrink(&mut self) {
        self.clients.shrink_to_fit();
        self.modules.shrink_to_fit();
    }
}
