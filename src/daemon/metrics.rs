//! The optional metrics listener (`"metrics": "127.0.0.1:9464"`): `/metrics`
//! in the Prometheus text format and `/healthz`, over HTTP, served by the
//! same loop as everything else. Each connection asks once and is closed;
//! few may be open, and none for long, so a scraper cannot hold the loop.

use std::io::ErrorKind;
use std::time::Instant;

use mio::Interest;

use crate::daemon::scrapes::{Scrape, MAX_SCRAPES, SCRAPE_TIMEOUT};
use crate::daemon::tokens;
use crate::daemon::Daemon;
use crate::io::{read_once, OutBuf, ReadResult};
use crate::keys::ScrapeKey;
use crate::net::exposition::{Exposition, CONTENT_TYPE};
use crate::net::http::{read_request, response, Request, Status, MAX_HEAD};
use crate::queue::store::Status as StoreStatus;
use crate::run::job::JobState;

impl Daemon {
    pub(super) fn accept_scrapes(&mut self) {
        let Some(server) = &mut self.metrics else {
            return;
        };
        loop {
            let mut stream = match server.listener.accept() {
                Ok((stream, _)) => stream,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    log::warn!("metrics: accept failed: {e}");
                    return;
                }
            };
            if server.scrapes.len() >= MAX_SCRAPES {
                let oldest = server.scrapes.iter().min_by_key(|(_, s)| s.opened);
                if let Some(key) = oldest.map(|(key, _)| key) {
                    server.scrapes.remove(key);
                }
            }
            let key = server.scrapes.next_key();
            let interest = Interest::READABLE | Interest::WRITABLE;
            if let Err(e) =
                self.poll
                    .registry()
                    .register(&mut stream, tokens::scrape(key), interest)
            {
                log::warn!("metrics: cannot watch a connection: {e}");
                continue;
            }
            server.scrapes.insert(Scrape {
                stream,
                head: Vec::new(),
                out: None,
                opened: Instant::now(),
            });
        }
    }

    /// Reads the request until its head is complete, answers it, writes
    /// the answer and closes.
    pub(super) fn scrape_ready(&mut self, key: ScrapeKey) {
        let mut scratch = self.scratch.take();
        let request = self.read_scrape(key, &mut scratch);
        self.scratch.put(scratch);
        if let Some(request) = request {
            let answer = self.http_answer(request);
            if let Some(scrape) = self.metrics.as_mut().and_then(|m| m.scrapes.get_mut(key)) {
                scrape.out = Some(OutBuf::new(answer));
            }
        }
        let Some(server) = &mut self.metrics else {
            return;
        };
        let Some(scrape) = server.scrapes.get_mut(key) else {
            return;
        };
        let done = match &mut scrape.out {
            Some(out) => !matches!(out.write_to(&scrape.stream), Ok(false)),
            None => false,
        };
        if done {
            // Closing the socket takes it out of the poll.
            server.scrapes.remove(key);
        }
    }

    /// The request, once its head is complete; `None` while it is not (a
    /// connection that ended or failed first is closed).
    fn read_scrape(&mut self, key: ScrapeKey, scratch: &mut [u8]) -> Option<Request> {
        let server = self.metrics.as_mut()?;
        let scrape = server.scrapes.get_mut(key)?;
        if scrape.out.is_some() {
            return None;
        }
        loop {
            match read_once(&scrape.stream, &mut scratch[..MAX_HEAD]) {
                ReadResult::Data(n) => {
                    scrape.head.extend_from_slice(&scratch[..n]);
                    match read_request(&scrape.head) {
                        Request::Incomplete => {}
                        request => return Some(request),
                    }
                }
                ReadResult::Blocked => return None,
                ReadResult::Eof | ReadResult::Failed(_) => {
                    server.scrapes.remove(key);
                    return None;
                }
            }
        }
    }

    fn http_answer(&self, request: Request) -> Vec<u8> {
        let text = "text/plain; charset=utf-8";
        match request {
            Request::Get { path, head_only } => match path.as_str() {
                "/metrics" => response(
                    Status::Ok,
                    CONTENT_TYPE,
                    self.metrics_page().as_bytes(),
                    head_only,
                ),
                "/healthz" => match self.queue_failing() {
                    None => response(Status::Ok, text, b"ok\n", head_only),
                    Some(why) => {
                        let body = format!("journal failing: {why}\n");
                        response(Status::Unavailable, text, body.as_bytes(), head_only)
                    }
                },
                _ => response(Status::NotFound, text, b"/metrics or /healthz\n", head_only),
            },
            Request::Refused(status) => {
                let body = format!("{}\n", status.reason());
                response(status, text, body.as_bytes(), false)
            }
            Request::Incomplete => Vec::new(),
        }
    }

    /// Closes metrics connections that have been open too long.
    pub(super) fn expire_scrapes(&mut self, now: Instant) {
        if let Some(server) = &mut self.metrics {
            let old = server
                .scrapes
                .keys_where(|s| now.duration_since(s.opened) > SCRAPE_TIMEOUT);
            for key in old {
                server.scrapes.remove(key);
            }
        }
    }

    /// The running jobs that said how far they are: (module, pid) and how
    /// far. A job is named by its process (a warm one by its worker's), not
    /// by its queue id, which is for its own listener and operators only.
    fn job_progress(&self) -> Vec<(Vec<String>, f64)> {
        let mut rows = Vec::new();
        for (_, job) in self.jobs.iter() {
            let Some(step) = job.progress.last else {
                continue;
            };
            let pid = match &job.state {
                JobState::Running(run) => run.process.pid,
                JobState::Warm(run) => run
                    .worker
                    .and_then(|w| self.workers.slab.get(w))
                    .and_then(|w| w.process.pid),
                JobState::Waiting => None,
            };
            if let Some(pid) = pid {
                rows.push((vec![job.module.name.clone(), pid.to_string()], step.ratio()));
            }
        }
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        rows
    }

    /// The `queue:stats` counters, per-module job counts and the duration
    /// histograms, in the Prometheus text format.
    pub(super) fn metrics_page(&self) -> String {
        let s = &self.stats;
        let mut e = Exposition::default();
        let gauge = |n: usize| n as f64;
        e.gauge(
            "bgjob_uptime_seconds",
            "Seconds since bgjobd started.",
            self.started.elapsed().as_secs_f64(),
        );
        e.gauge(
            "bgjob_jobs_waiting",
            "Jobs waiting for a running slot.",
            gauge(self.jobs.waiting()),
        );
        e.gauge(
            "bgjob_jobs_running",
            "Jobs running now.",
            gauge(self.jobs.running()),
        );
        e.gauge(
            "bgjob_results_unfetched_bytes",
            "Bytes of queue results not fetched yet.",
            gauge(self.queue_status().1),
        );
        e.labelled_counter(
            "bgjob_jobs_total",
            "Jobs finished, by outcome.",
            "outcome",
            [
                ("ok", s.jobs_ok),
                ("failed", s.jobs_failed),
                ("timed_out", s.jobs_timed_out),
                ("cancelled", s.jobs_cancelled),
            ],
        );
        e.labelled_counter(
            "bgjob_module_jobs_total",
            "Jobs finished, by module.",
            "module",
            s.by_module.iter().map(|(m, &n)| (m.as_str(), n)),
        );
        e.counter(
            "bgjob_streams_cut_total",
            "Streamed answers cut by a module failing after its output started.",
            s.streams_cut,
        );
        e.counter(
            "bgjob_request_bytes_spliced_total",
            "Request bytes spliced from clients' sockets into streamed jobs' stdin.",
            s.bytes_spliced,
        );
        e.counter(
            "bgjob_requests_cut_total",
            "Requests followed by more bytes after their quiet gap had ended them.",
            s.requests_cut,
        );
        e.counter(
            "bgjob_refused_total",
            "Requests refused with an NNN: answer or dropped.",
            s.refused,
        );
        e.counter(
            "bgjob_refused_busy_total",
            "Refused as 503: Busy or Too many connections.",
            s.refused_busy,
        );
        e.gauge(
            "bgjob_connections_open",
            "TCP connections open.",
            gauge(self.conns.len()),
        );
        e.counter(
            "bgjob_connections_total",
            "TCP connections accepted.",
            s.connections,
        );
        e.counter(
            "bgjob_datagrams_total",
            "UDP datagrams received.",
            s.datagrams,
        );
        e.counter(
            "bgjob_datagrams_forbidden_total",
            "Datagrams dropped: client not allowed or module not served.",
            s.udp_forbidden,
        );
        if let StoreStatus::Journal { bytes, .. } = self.queue_status().0 {
            e.gauge(
                "bgjob_journal_bytes",
                "Size of the queue's journal.",
                bytes as f64,
            );
        }
        e.gauge(
            "bgjob_journal_failing",
            "1 while the journal cannot be written, else 0.",
            if self.queue_failing().is_some() {
                1.0
            } else {
                0.0
            },
        );
        e.labelled_gauge(
            "bgjob_job_progress_ratio",
            "How far each running job that reports progress is, 0 to 1, by module and process id.",
            &["module", "pid"],
            self.job_progress(),
        );
        e.histogram("bgjob_job_run_seconds", "How long jobs ran.", &s.run_time);
        e.histogram(
            "bgjob_job_wait_seconds",
            "How long jobs waited for a running slot.",
            &s.wait_time,
        );
        e.histogram(
            "bgjob_request_seconds",
            "From a TCP connection's accept to the start of its answer.",
            &s.latency,
        );
        e.finish()
    }
}
