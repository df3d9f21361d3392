//! Admission to the local engine: whether a new job fits the waiting
//! bounds (the daemon's waiting line plus what the engine holds itself),
//! and handing an admitted job to the store under a new id.

use std::net::IpAddr;
use std::rc::Rc;
use std::time::SystemTime;

use crate::keys::ConnKey;
use crate::net::protocol::Refusal;
use crate::queue::engine::{Admission, Event, NewJob, Retention, Wait};
use crate::queue::held::Held;
use crate::queue::job::Class;
use crate::queue::local::{Live, LocalEngine, Phase};
use crate::queue::options::JobOptions;
use crate::queue::results::ResultLimits;
use crate::queue::store::{Arrival, Change};

impl LocalEngine {
    /// Jobs the engine holds (not kept yet, or scheduled): in all, of
    /// `client`, datagrams, and their data's bytes in all and of `client`.
    pub(super) fn unkept_counts(&self, client: Option<IpAddr>) -> [usize; 5] {
        self.tally.counts(client)
    }

    /// Admits a queue job (or, with `udp_peer`, a datagram's job) under a
    /// new id: it is handed to the store, and acknowledged and run only
    /// once the store has kept it.
    pub(super) fn admit(
        &mut self,
        job: NewJob,
        room: Admission,
        keep: Retention,
    ) -> Result<u64, Refusal> {
        if let Some(key) = &job.options.key {
            if let Some(id) = self.keyed(&job.owner, key) {
                log::info!("queue:add of {}: key held by job {id}", job.module.name);
                self.duplicate(id, job.conn);
                return Ok(id);
            }
        }
        if self.store.failing().is_some() {
            return Err(Refusal::JournalFailed);
        }
        let [unkept, mine_unkept, _, unkept_bytes, mine_unkept_bytes] =
            self.unkept_counts(job.client);
        if room.waiting + unkept >= room.max_waiting {
            return Err(Refusal::Busy);
        }
        if job.client.is_some() && room.client_waiting + mine_unkept >= room.max_waiting_per_client
        {
            return Err(Refusal::Busy);
        }
        if let Some(max) = room.module_max_waiting {
            let module = &job.module.name;
            if room.module_waiting + self.tally.of_module(module) >= max {
                log::debug!("job of {module} refused: {max} of its jobs wait");
                return Err(Refusal::Busy);
            }
        }
        let (held, mine) = (
            room.data_bytes + unkept_bytes,
            room.client_data_bytes + mine_unkept_bytes,
        );
        let len = job.data.len();
        if held + len > room.max_waiting_bytes || mine + len > room.max_waiting_bytes_per_client {
            log::warn!(
                "job of {len} bytes refused: jobs' data held {held} bytes, this client's {mine}"
            );
            return Err(Refusal::Busy);
        }
        let limits = ResultLimits {
            total: keep.total,
            per_client: keep.per_client,
        };
        if job.udp_peer.is_none() && !self.book.has_room(job.client, limits) {
            log::warn!(
                "queue:add refused: unfetched results fill this client's share or the total"
            );
            return Err(Refusal::Busy);
        }
        let live = &self.live;
        let Some((id, counter)) = self.book.allocate_id(|id| live.contains_key(&id)) else {
            log::error!("queue ids used up");
            return Err(Refusal::Busy);
        };
        let arrival = job.udp_peer.map_or(Arrival::Queue, Arrival::Udp);
        let data: Rc<[u8]> = job.data.into();
        let added_at = SystemTime::now();
        let change = Change::Added {
            id,
            counter,
            owner: job.owner.clone(),
            client: job.client,
            arrival,
            module: job.module.name.clone(),
            data: data.clone(),
            added_at,
            // Its priority as resolved (its own, else its module's), so a
            // restart keeps it whatever the policy says by then.
            options: JobOptions {
                priority: Some(job.priority),
                ..job.options.clone()
            },
        };
        let ticket = self.held.hold(Held::Added {
            id,
            conn: job.conn,
            run_at_ms: job.options.run_at_ms,
        });
        self.store.submit(change, Some(ticket));
        if let Some(conn) = job.conn {
            self.events.push_back(Event::Wait {
                conn,
                on: Wait::Store,
            });
        }
        let class = self.classes.get(Class {
            module: job.module,
            owner: job.owner,
            client: job.client,
            priority: job.priority,
            timeout_ms: job.options.timeout_ms,
            retries: job.options.retries.unwrap_or(0),
        });
        let mut live = Live::new(class, data, added_at, Phase::Unkept);
        live.set_udp_peer(job.udp_peer);
        if let Some(key) = job.options.key {
            self.hold_key(live.owner(), &key, id);
            live.set_key(Some(key.into()));
        }
        self.put_live(id, live);
        Ok(id)
    }

    /// The held job added with `key` on `owner`, if there is one.
    pub(super) fn keyed(&mut self, owner: &str, key: &[u8]) -> Option<u64> {
        let (book, live) = (&self.book, &self.live);
        (self.keys).keyed(owner, key, |id| {
            live.contains_key(&id) || book.get(id).is_some()
        })
    }

    /// Job `id` holds `key` on `owner` from now on.
    pub(super) fn hold_key(&mut self, owner: &str, key: &[u8], id: u64) {
        self.keys.hold(owner, key, id);
    }

    /// A repeat add of job `id`: counted, and its client answered
    /// `id:<n>` (once the job is kept, if it is not yet).
    pub(super) fn duplicate(&mut self, id: u64, conn: Option<ConnKey>) {
        self.keys.count_duplicate(id);
        let Some(conn) = conn else { return };
        let unkept = self.live.get(&id).is_some_and(|l| l.phase == Phase::Unkept);
        if unkept {
            self.keys.wait(id, conn);
            let on = Wait::Store;
            self.events.push_back(Event::Wait { conn, on });
        } else {
            self.answer(conn, format!("id:{id}").into_bytes());
        }
    }

    /// Job `id` was kept (or not): its repeat adds are answered.
    pub(super) fn duplicates_kept(&mut self, id: u64, kept: bool) {
        for conn in self.keys.take_waiting(id) {
            if kept {
                self.answer(conn, format!("id:{id}").into_bytes());
            } else {
                self.refuse(conn, Refusal::JournalFailed);
            }
        }
    }
}
