//! The dashboard's listener (`"web": {...}`): its page, `/api/state`,
//! `/metrics` and `/healthz`, and the actions that go to the queue as an
//! operator's would. Served by the same loop as everything else: each
//! connection asks once and is closed, few may be open and none for long,
//! and what a request asks is answered from memory at once, so a slow or
//! dripping client cannot hold the loop. The pure parts (parsing, routes,
//! checks, the state document) are in `src/web/`.

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::Instant;

use mio::Interest;

use crate::config::web::WebSettings;
use crate::daemon::tokens;
use crate::daemon::web_server::{WebConn, WebServer, MAX_WEB_CONNS, WEB_TIMEOUT};
use crate::daemon::Daemon;
use crate::io::{read_once, OutBuf, ReadResult};
use crate::keys::WebKey;
use crate::net::protocol::{JobRef, RetryRef};
use crate::web::guard::{host_allowed, origin_matches, token_matches};
use crate::web::request::{parse, Parsed, MAX_BODY, MAX_HEAD};
use crate::web::response::{self, action_refused, queue_answer, refusal, Status};
use crate::web::route::{route, Action, Route};

impl Daemon {
    /// At start and on reload: serves the dashboard as the settings say;
    /// a new address rebinds (keeping the old listener if it cannot),
    /// the allow list and actions apply to the next request.
    pub(super) fn apply_web(&mut self) {
        let wanted = self.settings.web.clone();
        match (wanted, &mut self.web) {
            (None, None) => {}
            (None, Some(_)) => {
                log::info!(target: "bgjobd", "dashboard off");
                self.web = None;
            }
            (Some(settings), Some(server)) if server.settings.listen == settings.listen => {
                server.settings = settings;
            }
            (Some(settings), old) => {
                let token = old.as_ref().map(|s| s.token.clone());
                match WebServer::bind(settings.clone(), token, self.poll.registry()) {
                    Ok(server) => {
                        log::info!(target: "bgjobd", "dashboard on http://{}/", server.addr);
                        self.web = Some(server);
                    }
                    // The allow list and actions still apply where it
                    // stays: a reload that turns actions off must not leave
                    // them on because a new port was taken.
                    Err(e) => match old {
                        Some(server) => {
                            let listen = server.settings.listen;
                            server.settings = WebSettings { listen, ..settings };
                            log::error!(
                                "{e}; the dashboard stays on {listen}, with the new allow list and actions"
                            );
                        }
                        None => log::error!("{e}; the dashboard stays off"),
                    },
                }
            }
        }
    }

    pub(super) fn accept_web(&mut self) {
        loop {
            let Some(server) = &mut self.web else {
                return;
            };
            let (mut stream, peer) = match server.listener.accept() {
                Ok(accepted) => accepted,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    log::warn!("dashboard: accept failed: {e}");
                    return;
                }
            };
            let allowed = server.settings.allows(peer.ip());
            if server.conns.len() >= MAX_WEB_CONNS {
                // Clients outside the allow list go first, so that they
                // cannot push out the clients that may use the page.
                let oldest = (server.conns.iter()).min_by_key(|(_, c)| (c.allowed, c.opened));
                if let Some(key) = oldest.map(|(key, _)| key) {
                    self.web_close(key);
                }
            }
            let Some(server) = &mut self.web else {
                return;
            };
            let key = server.conns.next_key();
            let interest = Interest::READABLE | Interest::WRITABLE;
            let registry = self.poll.registry();
            if let Err(e) = registry.register(&mut stream, tokens::web_conn(key), interest) {
                log::warn!("dashboard: cannot watch a connection: {e}");
                continue;
            }
            server.conns.insert(WebConn {
                stream,
                peer,
                buf: Vec::new(),
                out: None,
                acting: false,
                allowed,
                opened: Instant::now(),
            });
        }
    }

    /// Reads the request until it is complete, answers it (or hands an
    /// action to the queue), writes the answer and closes.
    pub(super) fn web_ready(&mut self, key: WebKey) {
        if let Some(answer) = self.read_web(key) {
            self.set_web_answer(key, answer);
        }
        self.flush_web(key);
    }

    /// Writes what is ready of the answer; a written answer closes.
    fn flush_web(&mut self, key: WebKey) {
        let Some(conn) = self.web.as_mut().and_then(|s| s.conns.get_mut(key)) else {
            return;
        };
        let done = match &mut conn.out {
            Some(out) => !matches!(out.write_to(&conn.stream), Ok(false)),
            None => false,
        };
        if done {
            self.web_close(key);
        }
    }

    /// The one path that ends a dashboard connection: an action still
    /// waiting for the queue is forgotten there.
    fn web_close(&mut self, key: WebKey) {
        let Some(conn) = self.web.as_mut().and_then(|s| s.conns.remove(key)) else {
            return;
        };
        if conn.acting {
            self.queue_forget(tokens::web_asker(key));
        }
        // Dropping the socket closes it and takes it out of the poll.
    }

    fn set_web_answer(&mut self, key: WebKey, answer: Vec<u8>) {
        if let Some(conn) = self.web.as_mut().and_then(|s| s.conns.get_mut(key)) {
            conn.acting = false;
            conn.out = Some(OutBuf::new(answer));
        }
    }

    /// The answer to a complete request, once it has arrived; `None` while
    /// it has not (a connection that ended or failed first is closed).
    fn read_web(&mut self, key: WebKey) -> Option<Vec<u8>> {
        let mut scratch = self.scratch.take();
        let read = self.read_web_request(key, &mut scratch);
        self.scratch.put(scratch);
        let (request, peer) = match read? {
            Ok(pair) => pair,
            Err(status) => return Some(refusal(status)),
        };
        // Refused once its request is read, so that the refusal is not
        // lost to a reset for unread bytes.
        if !self.web.as_ref()?.settings.allows(peer.ip()) {
            log::debug!("dashboard {peer}: not in the allow list: 403");
            return Some(refusal(Status::Forbidden));
        }
        let Some(host) = request.host.as_deref().filter(|h| host_allowed(h)) else {
            log::debug!("dashboard {peer}: Host {:?} refused: 421", request.host);
            return Some(refusal(Status::MisdirectedRequest));
        };
        let (route, head_only) = match route(&request.method, &request.path, &request.query) {
            Ok(found) => found,
            Err(status) => return Some(refusal(status)),
        };
        let page = |ty: &str, body: &[u8]| response::response(Status::Ok, ty, body, head_only);
        let token = self.web.as_ref().map_or("", |s| s.token.as_str());
        Some(match route {
            Route::Page => page(response::HTML, crate::web::assets::page(token).as_bytes()),
            Route::Script => page("text/javascript", crate::web::assets::SCRIPT.as_bytes()),
            Route::Style => page("text/css", crate::web::assets::STYLE.as_bytes()),
            Route::State => page(response::JSON, self.web_state().as_bytes()),
            Route::Metrics => {
                let ty = crate::net::exposition::CONTENT_TYPE;
                page(ty, self.metrics_page().as_bytes())
            }
            Route::Health => {
                let (status, body) = match self.queue_failing() {
                    None => (Status::Ok, "ok\n".to_string()),
                    Some(why) => (Status::Unavailable, format!("journal failing: {why}\n")),
                };
                response::response(status, response::TEXT, body.as_bytes(), head_only)
            }
            Route::Act(action) => {
                let server = self.web.as_ref()?;
                let allowed = server.settings.actions
                    && token_matches(request.token.as_deref(), &server.token)
                    && origin_matches(request.origin.as_deref(), Some(host));
                if !allowed {
                    log::info!("dashboard {peer}: {action} refused (actions off, or token or Origin wrong): 403");
                    return Some(action_refused(Status::Forbidden, "403: Forbidden"));
                }
                log::info!("dashboard {}: {action}", peer.ip());
                return self.web_act(key, action);
            }
        })
    }

    /// The request once complete, or the status to refuse it with.
    fn read_web_request(
        &mut self,
        key: WebKey,
        scratch: &mut [u8],
    ) -> Option<Result<(crate::web::request::Request, SocketAddr), Status>> {
        let conn = self.web.as_mut()?.conns.get_mut(key)?;
        if conn.out.is_some() || conn.acting {
            return None;
        }
        loop {
            // A head and a body within bounds, and one byte to tell more.
            let room = (MAX_HEAD + MAX_BODY + 1).saturating_sub(conn.buf.len());
            match read_once(&conn.stream, &mut scratch[..room.max(1)]) {
                ReadResult::Data(n) => conn.buf.extend_from_slice(&scratch[..n]),
                ReadResult::Blocked => return None,
                ReadResult::Eof | ReadResult::Failed(_) => break,
            }
            match parse(&conn.buf) {
                Parsed::Incomplete => {}
                Parsed::Refused(status) => return Some(Err(status)),
                Parsed::Head(request) if conn.buf.len() >= request.head_len + request.body_len => {
                    return Some(Ok((request, conn.peer)))
                }
                Parsed::Head(_) => {}
            }
        }
        // The client left before its request was complete.
        self.web_close(key);
        None
    }

    /// Hands an action to the queue as an operator's; the answer comes
    /// back through [`Daemon::web_answered`], now or in a later turn.
    fn web_act(&mut self, key: WebKey, action: Action) -> Option<Vec<u8>> {
        if let Some(conn) = self.web.as_mut().and_then(|s| s.conns.get_mut(key)) {
            conn.acting = true;
        }
        let asker = tokens::web_asker(key);
        let reply = match action {
            Action::Cancel(id) => self.queue_cancel(asker, JobRef::Id(id)),
            Action::Retry(id) => self.queue_retry(asker, RetryRef::Id(JobRef::Id(id))),
            Action::RetryModule(module) => self.queue_retry(asker, RetryRef::Module(module)),
            Action::Pause(module) => self.queue_pause(asker, module, true),
            Action::Resume(module) => self.queue_pause(asker, module, false),
        };
        match reply {
            Ok(None) => None,
            Ok(Some(answer)) => Some(queue_answer(&answer)),
            Err(refused) => Some(queue_answer(refused.answer().as_bytes())),
        }
    }

    /// The queue's answer to a dashboard action (the one path that
    /// answers a client routes it here).
    pub(super) fn web_answered(&mut self, key: WebKey, answer: &[u8]) {
        let waiting = self.web.as_ref().and_then(|s| s.conns.get(key));
        if !waiting.is_some_and(|c| c.acting) {
            return;
        }
        self.set_web_answer(key, queue_answer(answer));
        self.flush_web(key);
    }

    /// Closes dashboard connections that have been open too long.
    pub(super) fn expire_web(&mut self, now: Instant) {
        let Some(server) = &self.web else {
            return;
        };
        let old = server
            .conns
            .keys_where(|c| now.duration_since(c.opened) > WEB_TIMEOUT);
        for key in old {
            self.web_close(key);
        }
    }
}
