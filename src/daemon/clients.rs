//! TCP clients: accepting them, carrying out what their connections decide
//! (see `net/conn.rs`), routing requests, and the two paths every
//! connection ends through: [`Daemon::answer`] and [`Daemon::close`].

use std::time::Instant;

use crate::daemon::Daemon;
use crate::keys::ConnKey;
use crate::net::conn::{Conn, Limits, Phase, Verdict};
use crate::net::pace::Pacing;
use crate::net::protocol::{Control, Head, Refusal};
use crate::run::job::{Job, Origin};
use crate::sanitize::quoted;

impl Daemon {
    /// The limits connections apply, from the current settings.
    pub(super) fn conn_limits(&self) -> Limits {
        Limits {
            max_request: self.settings.max_request,
            pacing: Pacing {
                request_gap: self.settings.request_gap,
                idle_timeout: self.settings.idle_timeout,
                request_timeout: self.settings.request_timeout,
                min_rate: self.settings.request_min_rate,
                min_rate_after: self.settings.request_min_rate_after,
            },
        }
    }

    /// Readiness of a connection: steps it until it waits.
    pub(super) fn conn_ready(&mut self, key: ConnKey) {
        self.drive(key, None);
    }

    /// A connection's deadline came.
    pub(super) fn conn_deadline(&mut self, key: ConnKey, now: Instant) {
        let limits = self.conn_limits();
        if self.input_held(key) {
            // Not reading is the daemon's doing, not a quiet client: its
            // clock is read again when reading resumes. The deadline is
            // forgotten, so that resuming sets it again even if it is the
            // same instant (a request's whole-time bound).
            if let Some(conn) = self.conns.get_mut(key) {
                conn.forget_deadline();
            }
            return;
        }
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let verdict = conn.expire(now, &limits);
        self.drive(key, Some(verdict));
    }

    /// Carries out `first` (if given), then steps the connection and
    /// carries out each verdict until it waits or closes.
    fn drive(&mut self, key: ConnKey, first: Option<Verdict>) {
        let limits = self.conn_limits();
        if let Some(conn) = self.conns.get_mut(key) {
            conn.new_drive();
        }
        let mut scratch = self.scratch.take();
        let mut next = first;
        loop {
            let verdict = match next.take() {
                Some(verdict) => verdict,
                None if self.input_held(key) => break,
                None => {
                    let stdin = self.splice_target(key);
                    match self.conns.get_mut(key) {
                        Some(conn) => conn.step(&mut scratch, &limits, stdin),
                        None => break,
                    }
                }
            };
            match verdict {
                Verdict::Wait => break,
                Verdict::Close => {
                    self.close(key);
                    break;
                }
                Verdict::Route {
                    head,
                    request,
                    complete,
                } => self.route(key, head, request, complete),
                Verdict::Input { job, len } => {
                    if let Some(job) = self.jobs.get_mut(job) {
                        job.push_input(&scratch[..len]);
                    }
                    self.feed_stdin(job);
                    if self.hold_input(job) {
                        break;
                    }
                }
                Verdict::Spliced { job, len } => {
                    if let Some(job) = self.jobs.get_mut(job) {
                        job.bytes_in += len;
                    }
                    self.stats.bytes_spliced += len as u64;
                }
                Verdict::StdinFull(job) => {
                    if self.stdin_full(job) {
                        break;
                    }
                }
                Verdict::InputEnded(job) => {
                    if let Some(job) = self.jobs.get_mut(job) {
                        job.input_complete = true;
                    }
                    self.feed_stdin(job);
                }
                Verdict::Late(bytes) => self.late_bytes(key, bytes),
                Verdict::Refuse(refusal) => self.refuse(key, refusal),
            }
        }
        self.scratch.put(scratch);
        self.schedule_conn(key);
    }

    /// A request ended by its quiet gap was followed by more bytes: the
    /// client wrote it in pieces, and the request that ran was cut. Counted
    /// and logged, since nothing can be answered about it any more.
    fn late_bytes(&mut self, key: ConnKey, bytes: usize) {
        self.stats.requests_cut += 1;
        let peer = self.conns.get(key).map(|c| c.peer);
        let peer = peer.map_or_else(|| "-".to_string(), |p| p.to_string());
        self.warn_limited(
            "request cut",
            format_args!(
                "tcp {peer}: {bytes} bytes arrived after its request had ended (its quiet gap \
                 passed): they are not part of it; a client that writes a request in pieces \
                 should write it in one write or set request_gap_ms"
            ),
        );
    }

    /// Schedules the connection's deadline if it set a new one.
    pub(super) fn schedule_conn(&mut self, key: ConnKey) {
        if let Some(at) = self.conns.get_mut(key).and_then(Conn::take_new_deadline) {
            self.timers
                .schedule(at, crate::daemon::timers::Timer::Conn(key));
        }
    }

    /// Routes a request whose head says where it goes.
    fn route(&mut self, key: ConnKey, head: Head, request: Vec<u8>, complete: bool) {
        let Some((peer, listener)) = self.conns.get(key).map(|c| (c.peer, c.listener)) else {
            return;
        };
        match head {
            Head::Incomplete => self.keep_reading(key, request),
            Head::Module { name, .. } if !self.serves(listener, &name) => {
                let why = format!("module {name:?} is not served on this listener");
                self.refuse_for(key, Refusal::Forbidden, &why);
            }
            Head::Module { name, body_start } => {
                let Some(module) = self.modules.lookup(&name) else {
                    if request.is_empty() {
                        // A port probe (a load balancer's health check):
                        // answered, but not worth a warning.
                        log::debug!("tcp {peer}: an empty request");
                        self.stats.refusal(Refusal::UnknownModule);
                        return self
                            .answer(key, Refusal::UnknownModule.answer().as_bytes().to_vec());
                    }
                    // The name as sent, not the data after it (a session
                    // id, a password...), which the log must not keep.
                    let head = request.split(|&b| b == b':').next().unwrap_or_default();
                    let why = format!("no module {}", quoted(head, 64));
                    return self.refuse_for(key, Refusal::UnknownModule, &why);
                };
                // A warm worker takes the whole request in one frame.
                if !complete && self.runs_warm(&module) {
                    return self.keep_reading(key, request);
                }
                // Queue jobs not yet kept count as waiting too.
                let (all, waiting, _) = self.waiting_with_queue(Some(peer.ip()));
                if waiting >= self.settings.max_waiting_per_client {
                    let why = format!("{name}: this client has {waiting} jobs waiting");
                    return self.refuse_for(key, Refusal::Busy, &why);
                }
                let policy = crate::config::policy::policy(&self.settings.module_policy, &name);
                if policy
                    .max_waiting
                    .is_some_and(|max| self.jobs.waiting_of(&name) >= max)
                {
                    let why = format!("{name}: its max_waiting jobs are waiting");
                    return self.refuse_for(key, Refusal::Busy, &why);
                }
                let origin = Origin::Tcp {
                    conn: Some(key),
                    peer,
                };
                let job = Job::new(module, origin, &request[body_start..], complete);
                let unkept = all - self.jobs.waiting();
                match self
                    .jobs
                    .add(job, self.settings.max_waiting.saturating_sub(unkept))
                {
                    Ok(job) => {
                        if let Some(conn) = self.conns.get_mut(key) {
                            conn.feed_job(job);
                        }
                    }
                    Err(_) => {
                        let why = format!("{name}: waiting line full");
                        self.refuse_for(key, Refusal::Busy, &why);
                    }
                }
            }
            Head::Control(control) => self.control(key, control, &request),
        }
    }

    fn keep_reading(&mut self, key: ConnKey, request: Vec<u8>) {
        if let Some(conn) = self.conns.get_mut(key) {
            conn.keep_reading(request);
        }
    }

    /// Requests the daemon answers itself.
    fn control(&mut self, key: ConnKey, control: Control, request: &[u8]) {
        let reply = match control {
            Control::Helo => Ok(Some(b"oleh".to_vec())),
            Control::Hello => Ok(Some(b"olleh".to_vec())),
            Control::UnknownQueue => Err(Refusal::UnknownQueueRequest),
            Control::QueueAdd {
                module,
                data_start,
                options,
            } => {
                let options = options.map(|range| &request[range]);
                self.queue_add(key, &module, options, &request[data_start..])
            }
            Control::QueueFailed => self.queue_failed(key),
            Control::QueueRetry(target) => self.queue_retry(key, target),
            Control::QueueCheck(id) => self.queue_check(key, id),
            Control::QueueGet(id) => self.queue_get(key, id),
            Control::QueueCancel(id) => self.queue_cancel(key, id),
            Control::QueueStats => self.queue_stats(key),
            Control::QueueList => self.queue_list(key),
            Control::QueuePause { module, paused } => self.queue_pause(key, module, paused),
            Control::QueueInfo(id) => self.queue_info(key, id),
        };
        let Some(peer) = self.conns.get(key).map(|c| c.peer) else {
            return;
        };
        match reply {
            Ok(Some(answer)) => {
                log::info!(
                    "tcp {peer}: {} answered ({} bytes)",
                    quoted(request, 64),
                    answer.len()
                );
                self.answer(key, answer);
            }
            Ok(None) => {}
            Err(refusal) => {
                let why = quoted(request, 64);
                self.refuse_for(key, refusal, &why);
            }
        }
    }

    /// True if the listener serves that module.
    pub(super) fn serves(&self, listener: usize, module: &str) -> bool {
        self.listeners
            .get(listener)
            .is_none_or(|l| l.access.serves(module))
    }

    /// Answers with a seed-style `NNN: text` refusal, counting it. A job
    /// the request was streaming into must not act on part of it: it is
    /// dropped or killed.
    pub(super) fn refuse(&mut self, key: ConnKey, refusal: Refusal) {
        self.refuse_for(key, refusal, "");
    }

    /// As [`Daemon::refuse`], saying why in the (rate-limited) warn line.
    pub(super) fn refuse_for(&mut self, key: ConnKey, refusal: Refusal, why: &str) {
        if let Some(peer) = self.conns.get(key).map(|c| c.peer) {
            let answer = refusal.answer();
            let sep = if why.is_empty() { "" } else { ": " };
            self.warn_limited(
                answer,
                format_args!("tcp {peer}: refused with {answer}{sep}{why}"),
            );
        }
        self.stats.refusal(refusal);
        if let Some(job) = self.conns.get(key).and_then(Conn::job) {
            // A refusal cannot follow a streamed answer's first bytes.
            let cut = self.stream_started(key, job);
            self.abandon_job(job);
            if cut {
                return self.cut_stream(key);
            }
        }
        self.answer(key, refusal.answer().as_bytes().to_vec());
    }

    /// The one path that answers a client: the connection starts writing,
    /// and what its previous phase stood for is undone.
    pub(super) fn answer(&mut self, key: ConnKey, answer: impl Into<std::rc::Rc<[u8]>>) {
        if let Some(web) = crate::daemon::tokens::asked_by_web(key) {
            return self.web_answered(web, &answer.into());
        }
        let limits = self.conn_limits();
        if let Some(conn) = self.conns.get(key) {
            self.stats
                .latency
                .observe(conn.opened.elapsed().as_secs_f64());
        }
        let Some(left) = self
            .conns
            .get_mut(key)
            .and_then(|c| c.answer(answer.into(), &limits))
        else {
            return;
        };
        self.left_phase(key, left);
        self.schedule_conn(key);
        // Written now: most answers fit the socket buffer at once.
        let flushed = self.conns.get_mut(key).and_then(Conn::flush);
        if flushed == Some(Verdict::Close) {
            self.close(key);
        }
        self.schedule_conn(key);
    }

    /// The one path that tears a connection down; it leaves the slab at the
    /// end of the turn, so a late event for its token in this turn finds it
    /// closed.
    pub(super) fn close(&mut self, key: ConnKey) {
        let Some(left) = self.conns.get_mut(key).and_then(Conn::close) else {
            return;
        };
        self.left_phase(key, left);
        self.closed.push(key);
    }

    /// Undoes what a connection's phase stood for elsewhere: a job it fed
    /// goes on without it, a `queue:get` stops watching, a held `id:<n>`
    /// has nobody to go to.
    pub(super) fn left_phase(&mut self, key: ConnKey, left: Phase) {
        match left {
            Phase::Job(job) => self.detach_job(job),
            Phase::QueueWait(_) | Phase::Durable => self.queue_forget(key),
            Phase::Head(_) | Phase::Answer(_) | Phase::Linger | Phase::Closed => {}
        }
    }

    /// Closing a socket removes it from the epoll set: no `deregister` needed.
    pub(super) fn remove_closed(&mut self) {
        for key in std::mem::take(&mut self.closed) {
            let Some(conn) = self.conns.remove(key) else {
                continue;
            };
            let ip = conn.peer.ip();
            if let Some(n) = self.per_client.get_mut(&ip) {
                *n -= 1;
                if *n == 0 {
                    self.per_client.remove(&ip);
                }
            }
        }
    }
}
