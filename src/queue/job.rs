//! A job the local engine holds, compactly: 100,000 jobs held for later
//! should cost the daemon little more than their data. What many jobs
//! share (their listener, client, priority, time limit and retries) is one
//! [`Class`] they point to; small data is kept inline; what few jobs have
//! (a datagram's sender, failed attempts, a key, progress) is boxed apart.
//! Pure: no I/O, no clock but what it is given.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::rc::{Rc, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::queue::attempts::Attempt;
use crate::queue::engine::RunJob;
use crate::queue::options::Priority;
use crate::run::modules::Module;
use crate::run::progress::Progress;

/// What the jobs of one module from one client on one listener, added
/// with the same options, have in common.
#[derive(Debug, Clone)]
pub struct Class {
    /// Their module (this version of it: the same one, not an equal one).
    pub module: Rc<Module>,
    /// The listener the jobs belong to (empty for datagrams).
    pub owner: String,
    pub client: Option<IpAddr>,
    pub priority: Priority,
    /// Their own time limit, in milliseconds.
    pub timeout_ms: Option<u64>,
    /// Attempts allowed after the first.
    pub retries: u32,
}

impl Class {
    fn key(
        &self,
    ) -> (
        *const Module,
        &str,
        Option<IpAddr>,
        Priority,
        Option<u64>,
        u32,
    ) {
        (
            Rc::as_ptr(&self.module),
            &self.owner,
            self.client,
            self.priority,
            self.timeout_ms,
            self.retries,
        )
    }
}

impl PartialEq for Class {
    fn eq(&self, other: &Class) -> bool {
        self.key() == other.key()
    }
}

impl Eq for Class {}

impl std::hash::Hash for Class {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.key().hash(state);
    }
}

/// The classes of the held jobs, each kept once while a job points to it.
#[derive(Debug, Default)]
pub struct Classes {
    known: HashMap<Class, Weak<Class>>,
    /// Classes no job points to any more are dropped from `known` once it
    /// has grown to this.
    purge_at: usize,
}

impl Classes {
    /// The shared copy of `class`.
    pub fn get(&mut self, class: Class) -> Rc<Class> {
        if let Some(shared) = self.known.get(&class).and_then(Weak::upgrade) {
            return shared;
        }
        if self.known.len() >= self.purge_at {
            self.known.retain(|_, weak| weak.strong_count() > 0);
            self.purge_at = (2 * self.known.len()).max(16);
        }
        let shared = Rc::new(class.clone());
        self.known.insert(class, Rc::downgrade(&shared));
        shared
    }

    /// Classes known (some may have no job left).
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.known.len()
    }

    /// After a load: classes without jobs are dropped.
    pub fn shrink(&mut self) {
        self.known.retain(|_, weak| weak.strong_count() > 0);
        self.known.shrink_to_fit();
        self.purge_at = (2 * self.known.len()).max(16);
    }
}

/// Bytes of data kept in the job itself.
const INLINE: usize = 7;

/// A job's data: up to [`INLINE`] bytes in place, else shared with the
/// job's runs (16 bytes either way).
#[derive(Debug, Clone)]
pub enum Data {
    Inline { len: u8, bytes: [u8; INLINE] },
    Shared(Rc<[u8]>),
}

impl Data {
    pub fn new(data: Rc<[u8]>) -> Data {
        if data.len() > INLINE {
            return Data::Shared(data);
        }
        let mut bytes = [0; INLINE];
        bytes[..data.len()].copy_from_slice(&data);
        Data::Inline {
            len: data.len() as u8,
            bytes,
        }
    }

    pub fn as_slice(&self) -> &[u8] {
        match self {
            Data::Inline { len, bytes } => &bytes[..*len as usize],
            Data::Shared(data) => data,
        }
    }

    pub fn len(&self) -> usize {
        self.as_slice().len()
    }

    /// The data to hand over (a copy only when it is small).
    pub fn shared(&self) -> Rc<[u8]> {
        match self {
            Data::Inline { .. } => Rc::from(self.as_slice()),
            Data::Shared(data) => data.clone(),
        }
    }
}

/// Where an accepted job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// Handed to the store; not acknowledged, not run yet.
    Unkept,
    /// Kept, and handed to the loop to run.
    Waiting,
    /// Started (cold, or on a warm worker).
    Running,
    /// Kept, and held by the engine until its run time (a delay, or the
    /// wait before a retry).
    Scheduled,
}

impl Phase {
    /// True while the engine holds the job itself, outside the daemon's
    /// waiting line: it counts as waiting through the engine's tally.
    pub(super) fn held(self) -> bool {
        matches!(self, Phase::Unkept | Phase::Scheduled)
    }
}

/// What few jobs have.
#[derive(Debug, Default)]
struct More {
    /// The datagram's sender; none for a queue job.
    udp_peer: Option<SocketAddr>,
    /// Its finished attempts.
    tries: Vec<Attempt>,
    /// Its `key` option.
    key: Option<Box<[u8]>>,
    /// How far it is, as its module last said.
    progress: Progress,
}

/// A job accepted and not ended (48 bytes; its id is its map key). When a
/// job held for later runs is kept once, in the engine's heap by run time
/// (`schedule.rs`), and, until its add is kept, in what waits for that.
#[derive(Debug)]
pub(super) struct Live {
    pub class: Rc<Class>,
    pub data: Data,
    /// When it was added, in Unix ms.
    added_at_ms: u64,
    more: Option<Box<More>>,
    /// Runs started before (more than zero: it was interrupted or failed).
    pub attempts: u32,
    pub phase: Phase,
    /// Taken over from the store at start: its wait counts from then.
    recovered: bool,
}

impl Live {
    /// A job in `phase`, to run as soon as it may.
    pub(super) fn new(
        class: Rc<Class>,
        data: Rc<[u8]>,
        added_at: SystemTime,
        phase: Phase,
    ) -> Live {
        Live {
            class,
            data: Data::new(data),
            added_at_ms: unix_ms(added_at),
            more: None,
            attempts: 0,
            phase,
            recovered: false,
        }
    }

    /// Marks a job taken over at start.
    pub(super) fn recovered(mut self) -> Live {
        self.recovered = true;
        self
    }

    fn more(&mut self) -> &mut More {
        self.more.get_or_insert_with(Default::default)
    }

    pub(super) fn module(&self) -> &Rc<Module> {
        &self.class.module
    }

    pub(super) fn owner(&self) -> &str {
        &self.class.owner
    }

    pub(super) fn client(&self) -> Option<IpAddr> {
        self.class.client
    }

    pub(super) fn retries(&self) -> u32 {
        self.class.retries
    }

    pub(super) fn udp_peer(&self) -> Option<SocketAddr> {
        self.more.as_ref().and_then(|m| m.udp_peer)
    }

    pub(super) fn set_udp_peer(&mut self, peer: Option<SocketAddr>) {
        if peer.is_some() {
            self.more().udp_peer = peer;
        }
    }

    pub(super) fn tries(&self) -> &[Attempt] {
        self.more.as_ref().map_or(&[], |m| &m.tries)
    }

    pub(super) fn push_try(&mut self, attempt: Attempt) {
        self.more().tries.push(attempt);
    }

    pub(super) fn set_tries(&mut self, tries: Vec<Attempt>) {
        if !tries.is_empty() {
            self.more().tries = tries;
        }
    }

    pub(super) fn key(&self) -> Option<&[u8]> {
        self.more.as_ref().and_then(|m| m.key.as_deref())
    }

    pub(super) fn set_key(&mut self, key: Option<Box<[u8]>>) {
        if key.is_some() {
            self.more().key = key;
        }
    }

    pub(super) fn progress(&self) -> Progress {
        self.more.as_ref().map(|m| m.progress).unwrap_or_default()
    }

    pub(super) fn set_progress(&mut self, progress: Progress) {
        if progress != Progress::default() || self.more.is_some() {
            self.more().progress = progress;
        }
    }

    pub(super) fn added_at(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.added_at_ms)
    }

    /// When it was accepted, on this daemon's clock: at `start` for a job
    /// taken over then, else its add time (`now` and `wall` being now).
    pub(super) fn created(&self, start: Instant, now: Instant, wall: SystemTime) -> Instant {
        if self.recovered {
            return start;
        }
        let age = wall.duration_since(self.added_at()).unwrap_or_default();
        now.checked_sub(age).unwrap_or(now).max(start)
    }

    /// The job to hand to the loop, as job `id`.
    pub(super) fn run_job(&self, id: u64, start: Instant) -> RunJob {
        RunJob {
            id,
            module: self.class.module.clone(),
            data: self.data.shared(),
            udp_peer: self.udp_peer(),
            owner: self.class.owner.clone(),
            client: self.class.client,
            attempts: self.attempts,
            priority: self.class.priority,
            timeout: self.class.timeout_ms.map(Duration::from_millis),
            added_at: self.added_at(),
            created: self.created(start, Instant::now(), SystemTime::now()),
        }
    }
}

fn unix_ms(t: SystemTime) -> u64 {
    crate::journal::live::unix_ms(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(owner: &str, retries: u32) -> Class {
        thread_local! {
            static MODULE: Rc<Module> = Rc::new(crate::run::modules::test_module("m"));
        }
        Class {
            module: MODULE.with(Rc::clone),
            owner: owner.into(),
            client: Some([127, 0, 0, 1].into()),
            priority: Priority::Normal,
            timeout_ms: None,
            retries,
        }
    }

    #[test]
    fn a_held_job_is_small() {
        assert_eq!(std::mem::size_of::<Live>(), 48);
        assert_eq!(std::mem::size_of::<Data>(), 16);
    }

    #[test]
    fn jobs_of_one_class_share_it_and_classes_without_jobs_go() {
        let mut classes = Classes::default();
        let a = classes.get(class("main", 0));
        let b = classes.get(class("main", 0));
        assert!(Rc::ptr_eq(&a, &b), "one copy");
        let c = classes.get(class("main", 3));
        assert!(!Rc::ptr_eq(&a, &c), "other options, another class");
        let mut reloaded = class("main", 0);
        reloaded.module = Rc::new((*reloaded.module).clone());
        let d = classes.get(reloaded);
        assert!(!Rc::ptr_eq(&a, &d), "another version of the module");
        drop((a, b, c, d));
        for n in 0..40 {
            let _gone = classes.get(class(&format!("l{n}"), 0));
        }
        assert!(classes.len() <= 32, "{} kept", classes.len());
        classes.shrink();
        assert_eq!(classes.len(), 0);
    }

    #[test]
    fn small_data_is_kept_in_place_and_large_data_shared() {
        let small = Data::new(Rc::from(&b"1234567"[..]));
        assert!(matches!(small, Data::Inline { len: 7, .. }));
        assert_eq!(small.as_slice(), b"1234567");
        assert_eq!(&*small.shared(), b"1234567");
        let empty = Data::new(Rc::from(&b""[..]));
        assert_eq!(empty.len(), 0);
        let data: Rc<[u8]> = Rc::from(&b"12345678"[..]);
        let large = Data::new(data.clone());
        assert!(Rc::ptr_eq(&large.shared(), &data), "not copied");
    }

    #[test]
    fn what_few_jobs_have_is_boxed_only_when_they_have_it() {
        let class = Rc::new(class("main", 0));
        let wall = UNIX_EPOCH + Duration::from_millis(5_000);
        let mut live = Live::new(class, Rc::from(&b"x"[..]), wall, Phase::Unkept);
        live.set_udp_peer(None);
        live.set_key(None);
        live.set_tries(Vec::new());
        live.set_progress(Progress::default());
        assert!(live.more.is_none());
        live.set_key(Some(Box::from(&b"k"[..])));
        assert_eq!(live.key(), Some(&b"k"[..]));
        assert_eq!(live.added_at(), wall);
        // Created: its add time on this clock, or the start for a job
        // taken over then.
        let start = Instant::now();
        let now = start + Duration::from_secs(10);
        let later = wall + Duration::from_secs(3);
        assert_eq!(
            live.created(start, now, later),
            now - Duration::from_secs(3)
        );
        let live = live.recovered();
        assert_eq!(live.created(start, now, later), start);
    }
}
