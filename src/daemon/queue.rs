//! The one file of the loop that speaks to the queue engine: `queue:`
//! requests and datagrams go in, with the asker's rights and the waiting
//! line's load; what the loop's jobs did goes in (started, finished, left
//! at shutdown); and the engine's events come out and are applied here:
//! answers and refusals to connections, jobs put in the waiting line, jobs
//! killed or withdrawn. No other file of the loop touches queue state.

use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::time::Instant;

use crate::daemon::Daemon;
use crate::keys::ConnKey;
use crate::net::protocol::{JobRef, Refusal, RetryRef};
use crate::queue::engine::{
    Admission, Asker, Event, Finish, NewJob, QueueEngine, Retention, RetryTarget, Wait,
};
use crate::queue::options::{parse as parse_options, JobOptions};
use crate::queue::store::Status;
use crate::run::modules::Module;
use crate::run::outcome::Outcome;
use crate::run::progress::Progress;
use crate::run::receipt::Receipt;

/// An answer, or a refusal to answer with.
pub type Reply = Result<Option<Vec<u8>>, Refusal>;

/// A query of one job: check, get, cancel or info.
type Query = fn(&mut dyn QueueEngine, Asker, u64);

impl Daemon {
    /// `queue:add[?options]:<module>:<data>`: a bad option is answered
    /// `400: ...` and adds nothing.
    pub(super) fn queue_add(
        &mut self,
        key: ConnKey,
        module: &str,
        options: Option<&[u8]>,
        data: &[u8],
    ) -> Reply {
        let Some((peer, listener)) = self.conns.get(key).map(|c| (c.peer, c.listener)) else {
            return Ok(None);
        };
        let now_ms = crate::journal::live::unix_ms(std::time::SystemTime::now());
        let mut options = match options.map(|text| parse_options(text, now_ms)) {
            None => JobOptions::default(),
            Some(Ok(options)) => options,
            Some(Err(bad)) => {
                log::debug!("tcp {peer}: queue:add refused: {}", bad.answer());
                return Ok(Some(bad.answer().into_bytes()));
            }
        };
        if !self.serves(listener, module) {
            log::debug!("tcp {peer}: queue:add of {module:?}, not served on this listener");
            return Err(Refusal::Forbidden);
        }
        let Some(found) = self.modules.lookup(module) else {
            log::debug!("tcp {peer}: queue:add of unknown module {module:?}");
            return Err(Refusal::UnknownModule);
        };
        let policy = crate::config::policy::policy(&self.settings.module_policy, module);
        options.retries = Some(options.retries.unwrap_or_else(|| policy.retries()));
        let job = NewJob {
            module: found,
            data: data.to_vec(),
            owner: self.owner_of(listener),
            client: Some(peer.ip()),
            conn: Some(key),
            udp_peer: None,
            priority: options.priority.unwrap_or_else(|| policy.priority()),
            options,
        };
        let (room, keep) = (self.admission(&job), self.retention());
        let added = self.queue.add(job, room, keep);
        self.route_queue();
        match added {
            Ok(id) => {
                log::info!(
                    "tcp {peer}: queue:add {module} ({} bytes) as id {id}",
                    data.len()
                );
                Ok(None)
            }
            Err(refusal) => {
                log::debug!(
                    "tcp {peer}: queue:add {module} refused: {}",
                    refusal.answer()
                );
                Err(refusal)
            }
        }
    }

    /// A datagram's job, kept in the queue's store and run once kept.
    pub(super) fn queue_datagram(
        &mut self,
        module: Rc<Module>,
        data: &[u8],
        peer: SocketAddr,
    ) -> Result<u64, Refusal> {
        let mut job = NewJob {
            module,
            data: data.to_vec(),
            owner: String::new(),
            client: Some(peer.ip()),
            conn: None,
            udp_peer: Some(peer),
            priority: Default::default(),
            options: JobOptions::default(),
        };
        let policy = crate::config::policy::policy(&self.settings.module_policy, &job.module.name);
        job.options.retries = Some(policy.retries());
        job.priority = self.default_priority(&job.module.name);
        let (room, keep) = (self.admission(&job), self.retention());
        let added = self.queue.add(job, room, keep);
        self.route_queue();
        added
    }

    /// The priority of `module`'s jobs that do not ask for their own.
    fn default_priority(&self, module: &str) -> crate::queue::options::Priority {
        crate::config::policy::policy(&self.settings.module_policy, module).priority()
    }

    /// The waiting line's load and the bounds, for the engine to decide
    /// on `job`.
    fn admission(&self, job: &NewJob) -> Admission {
        let (s, client, module) = (&self.settings, job.client, &job.module.name);
        let (data_bytes, client_data_bytes) = self.jobs.data_bytes(client);
        Admission {
            waiting: self.jobs.waiting(),
            client_waiting: client.map_or(0, |ip| self.jobs.waiting_for(ip)),
            data_bytes,
            client_data_bytes,
            max_waiting: s.max_waiting,
            max_waiting_per_client: s.max_waiting_per_client,
            max_waiting_bytes: s.max_waiting_bytes,
            max_waiting_bytes_per_client: s.max_waiting_bytes_per_client,
            module_waiting: self.jobs.waiting_of(module),
            module_max_waiting: crate::config::policy::policy(&s.module_policy, module).max_waiting,
        }
    }

    fn retention(&self) -> Retention {
        Retention {
            total: self.settings.result_retention_bytes,
            per_client: self.settings.result_retention_bytes_per_client,
            time: self.settings.result_retention,
        }
    }

    /// Jobs waiting, the queue's not yet kept included: in all, of
    /// `client`, and datagrams.
    pub(super) fn waiting_with_queue(&self, client: Option<IpAddr>) -> (usize, usize, usize) {
        let (all, mine, udp) = self.queue.unkept(client);
        let mine_here = client.map_or(0, |ip| self.jobs.waiting_for(ip));
        (
            self.jobs.waiting() + all,
            mine_here + mine,
            self.jobs.udp_waiting() + udp,
        )
    }

    /// Who asks: a TCP or operator connection, or the dashboard, which
    /// acts as an operator (its checks are in `web.rs`).
    fn asker(&self, key: ConnKey) -> Option<Asker> {
        if crate::daemon::tokens::asked_by_web(key).is_some() {
            let owner = "web".into();
            return Some(Asker {
                conn: key,
                owner,
                operator: true,
            });
        }
        let conn = self.conns.get(key)?;
        Some(Asker {
            conn: key,
            owner: self.owner_of(conn.listener),
            operator: conn.admin,
        })
    }

    /// check, get, cancel or info of job `id` for this connection.
    pub(super) fn queue_query(&mut self, key: ConnKey, id: JobRef, query: Query) -> Reply {
        let JobRef::Id(id) = id else {
            return Err(Refusal::UnknownJob);
        };
        if let Some(asker) = self.asker(key) {
            query(self.queue.as_mut(), asker, id);
            self.route_queue();
        }
        Ok(None)
    }

    pub(super) fn queue_check(&mut self, key: ConnKey, id: JobRef) -> Reply {
        self.queue_query(key, id, |q, a, id| q.check(a, id))
    }

    pub(super) fn queue_get(&mut self, key: ConnKey, id: JobRef) -> Reply {
        self.queue_query(key, id, |q, a, id| q.get(a, id))
    }

    pub(super) fn queue_cancel(&mut self, key: ConnKey, id: JobRef) -> Reply {
        self.queue_query(key, id, |q, a, id| q.cancel(a, id))
    }

    pub(super) fn queue_info(&mut self, key: ConnKey, id: JobRef) -> Reply {
        self.queue_query(key, id, |q, a, id| q.info(a, id))
    }

    /// `queue:failed`: the failed jobs whose results are held.
    pub(super) fn queue_failed(&mut self, key: ConnKey) -> Reply {
        if let Some(asker) = self.asker(key) {
            self.queue.failed(asker);
            self.route_queue();
        }
        Ok(None)
    }

    /// `queue:retry:id:<n>` or `queue:retry:module:<m>`.
    pub(super) fn queue_retry(&mut self, key: ConnKey, target: RetryRef) -> Reply {
        let target = match target {
            RetryRef::Id(JobRef::Id(id)) => RetryTarget::Id(id),
            RetryRef::Id(JobRef::Invalid) => return Err(Refusal::UnknownJob),
            RetryRef::Module(module) => RetryTarget::Module(module),
        };
        if let Some(asker) = self.asker(key) {
            let modules = &mut self.modules;
            self.queue
                .retry(asker, target, &mut |name| modules.lookup(name));
            self.route_queue();
        }
        Ok(None)
    }

    pub(super) fn queue_list(&mut self, key: ConnKey) -> Reply {
        if let Some(asker) = self.asker(key) {
            self.queue.list(asker);
            self.route_queue();
        }
        Ok(None)
    }

    pub(super) fn queue_stats(&mut self, key: ConnKey) -> Reply {
        self.queue.stats(key);
        self.route_queue();
        Ok(None)
    }

    /// Run `attempt` of a queue or datagram job started.
    pub(super) fn queue_started(&mut self, id: u64, attempt: u32) {
        self.queue.started(id, attempt);
        self.route_queue();
    }

    /// `queue:pause`/`queue:resume`: the engine checks rights and keeps it.
    pub(super) fn queue_pause(&mut self, key: ConnKey, module: String, paused: bool) -> Reply {
        if let Some(asker) = self.asker(key) {
            if asker.operator && self.modules.lookup(&module).is_none() {
                return Err(Refusal::UnknownModule);
            }
            self.queue.pause(asker, module, paused);
            self.route_queue();
        }
        Ok(None)
    }

    /// A queue or datagram job said how far it is.
    pub(super) fn queue_progress(&mut self, id: u64, progress: Progress) {
        self.queue.progress(id, progress);
    }

    /// A queue or datagram job of `module` ended; `stderr` is the first
    /// line it wrote there.
    pub(super) fn queue_finished(
        &mut self,
        id: u64,
        module: &str,
        answer: &[u8],
        (receipt, stderr): (Receipt, String),
        stop: bool,
    ) {
        let policy = crate::config::policy::policy(&self.settings.module_policy, module);
        let finish = Finish {
            answer: answer.into(),
            retry_wait: policy.retry_wait(receipt.attempts, crate::config::policy::jitter()),
            receipt,
            interrupted: stop,
            stderr,
        };
        let keep = self.retention();
        self.queue.finished(id, finish, keep);
        self.route_queue();
    }

    /// At shutdown, a queue or datagram job that never started: true if
    /// the queue keeps it for the next start.
    pub(super) fn queue_stop_waiting(&mut self, id: u64) -> bool {
        let kept = self.queue.stop_waiting(id);
        self.route_queue();
        kept
    }

    /// A connection waiting for the queue left.
    pub(super) fn queue_forget(&mut self, key: ConnKey) {
        self.queue.forget(key);
    }

    pub(super) fn queue_tick(&mut self, now: Instant) {
        let keep = self.retention();
        self.queue.tick(now, keep);
        self.route_queue();
    }

    /// The loop's waker: the store may have kept something.
    pub(super) fn queue_wake(&mut self) {
        self.queue.wake();
        self.route_queue();
    }

    /// End of a turn: the store takes the turn's changes (the in-memory
    /// store keeps them at once).
    pub(super) fn commit(&mut self) {
        self.queue.end_turn();
        self.route_queue();
    }

    pub(super) fn queue_deadline(&self) -> Option<Instant> {
        self.queue.poll_timeout()
    }

    pub(super) fn queue_durable(&self) -> bool {
        self.queue.durable()
    }

    pub(super) fn queue_settled(&self) -> bool {
        self.queue.settled()
    }

    pub(super) fn queue_view(&self, listed: usize) -> crate::queue::engine::QueueView {
        self.queue.view(listed)
    }

    pub(super) fn queue_failing(&self) -> Option<String> {
        self.queue.failing()
    }

    pub(super) fn queue_status(&self) -> (Status, usize) {
        (self.queue.status(), self.queue.results_bytes())
    }

    pub(super) fn queue_close(&mut self) {
        self.queue.close();
    }

    /// Applies the engine's events until it has none.
    pub(super) fn route_queue(&mut self) {
        while let Some(event) = self.queue.poll_event() {
            match event {
                Event::Answer { conn, answer } => self.answer(conn, answer),
                Event::Refuse { conn, refusal } => self.refuse(conn, refusal),
                Event::Wait { conn, on } => {
                    if let Some(conn) = self.conns.get_mut(conn) {
                        match on {
                            Wait::Store => conn.await_store(),
                            Wait::Result(id) => conn.await_result(id),
                        }
                    }
                }
                Event::Run(run) => self.run_queued(run),
                Event::Kill { id } => self.kill_queued(id),
                Event::Withdraw { id, module } => {
                    if let Some(key) = self.job_of(id) {
                        self.jobs.remove(key);
                    }
                    self.stats.job_done(&module, &Outcome::Cancelled);
                }
                Event::Stats { conn, stats } => {
                    let text = self.render_stats(&stats);
                    self.answer(conn, text.into_bytes());
                }
                Event::List { conn, rows } => self.answer_list(conn, rows),
                Event::Pause { module, paused } => self.jobs.set_paused(&module, paused),
            }
        }
    }
}
