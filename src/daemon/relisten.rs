//! SIGHUP and the config's listeners: new addresses are bound, removed ones
//! closed, kept ones take their new allow list and modules; settings read
//! only at start are named when they change.

use mio::Interest;

use crate::config::{ListenerSpec, Settings};
use crate::daemon::tokens;
use crate::daemon::Daemon;
use crate::error::Error;
use crate::net::listeners::{self, Listener};

impl Daemon {
    /// Applies the config's listeners. A listener's slot is never reused,
    /// so a connection accepted on a closed listener keeps its rules. A
    /// list that would leave nothing served (empty, or every new address
    /// failing to bind with none kept) is an error and changes nothing, so
    /// the reload is refused as a broken config is.
    pub(super) fn apply_listeners(&mut self, specs: &[ListenerSpec]) -> Result<(), Error> {
        crate::config::check::some_listener(specs)?;
        let kept = pair(specs, &self.listeners);
        // New addresses are bound first: if one cannot be, nothing is
        // closed, so a failed reload never leaves the daemon serving less.
        let mut bound = Vec::new();
        let mut failures = Vec::new();
        for (spec, kept) in specs.iter().zip(&kept) {
            if kept.is_none() {
                match listeners::bind(spec) {
                    Ok(listener) => bound.push(listener),
                    Err(e) => failures.push(e.to_string()),
                }
            }
        }
        if bound.is_empty() && kept.iter().all(Option::is_none) {
            return Err(Error::Config(format!(
                "no listener could be bound, so bgjobd would serve nothing: {}",
                failures.join("; ")
            )));
        }
        for e in &failures {
            log::warn!("reload: {e}");
        }
        for (spec, kept) in specs.iter().zip(&kept) {
            let Some(l) = kept.and_then(|i| self.listeners.get_mut(i)) else {
                continue;
            };
            if l.access != spec.access || l.label != spec.label {
                l.access = spec.access.clone();
                l.label = spec.label.clone();
                log::info!(target: "bgjobd", "reload: listener {} now {}", l.addr, l.access);
            }
            if l.framing != spec.framing {
                l.framing = spec.framing;
                log::info!(target: "bgjobd", "reload: listener {} now frames requests {}", l.addr, l.framing);
            }
        }
        let open = |l: &Listener| l.tcp.is_some() || l.udp.is_some();
        let before = self.listeners.len();
        for listener in bound {
            self.add_listener(listener);
        }
        for i in 0..before {
            let l = &self.listeners[i];
            if !open(l) || kept.contains(&Some(i)) {
                continue;
            }
            if !failures.is_empty() {
                log::warn!(
                    "reload: {} ({}) kept, as a new listener could not be bound; it closes at the next reload that binds them all",
                    l.addr,
                    l.label
                );
                continue;
            }
            log::info!(target: "bgjobd", "reload: closed listener {} ({})", l.addr, l.label);
            self.close_listener(i);
        }
        Ok(())
    }

    /// Watches a newly bound listener under the next free slot's tokens.
    fn add_listener(&mut self, mut l: Listener) {
        let i = self.listeners.len();
        let registry = self.poll.registry();
        let watched = l
            .tcp
            .as_mut()
            .map_or(Ok(()), |tcp| {
                registry.register(tcp, tokens::tcp_listener(i), Interest::READABLE)
            })
            .and_then(|()| {
                l.udp.as_mut().map_or(Ok(()), |udp| {
                    registry.register(udp, tokens::udp(i), Interest::READABLE)
                })
            });
        match watched {
            Ok(()) => {
                log::info!(target: "bgjobd", "reload: listening on {} ({}; {})", l.addr, l.label, l.access);
                self.listeners.push(l);
            }
            Err(e) => log::warn!("reload: cannot watch {}: {e}", l.addr),
        }
    }

    /// Stops accepting on listener `i`; its slot stays, without sockets.
    pub(super) fn close_listener(&mut self, i: usize) {
        let Some(l) = self.listeners.get_mut(i) else {
            return;
        };
        if let Some(mut tcp) = l.tcp.take() {
            let _ = self.poll.registry().deregister(&mut tcp);
        }
        if let Some(mut udp) = l.udp.take() {
            let _ = self.poll.registry().deregister(&mut udp);
        }
    }
}

/// Which open listener each spec keeps, if any, one spec per listener:
/// first the listener on the spec's own address, then, for a spec on port
/// 0, a listener of the same address and name whatever port it got (in
/// order, so two such specs keep two listeners, not one listener twice).
fn pair(specs: &[ListenerSpec], listeners: &[Listener]) -> Vec<Option<usize>> {
    let open = |l: &Listener| l.tcp.is_some() || l.udp.is_some();
    let mut kept: Vec<Option<usize>> = specs
        .iter()
        .map(|spec| {
            listeners
                .iter()
                .position(|l| open(l) && l.addr == spec.addr)
        })
        .collect();
    for (s, spec) in specs.iter().enumerate() {
        if kept[s].is_some() || spec.addr.port() != 0 {
            continue;
        }
        kept[s] = (0..listeners.len()).find(|&i| {
            let l = &listeners[i];
            open(l)
                && l.addr.ip() == spec.addr.ip()
                && l.label == spec.label
                && !kept.contains(&Some(i))
        });
    }
    kept
}

/// Settings read at start only that a reload changed: they wait for a restart.
pub(super) fn restart_keys(old: &Settings, new: &Settings) -> Vec<&'static str> {
    let mut keys = Vec::new();
    if old.state_dir != new.state_dir {
        keys.push("state_dir");
    }
    if old.journal_sync != new.journal_sync {
        keys.push("journal_sync");
    }
    if old.metrics != new.metrics {
        keys.push("metrics");
    }
    if old.module_env != new.module_env {
        keys.push("module_env");
    }
    if old.module_uids != new.module_uids {
        keys.push("module_uids");
    }
    keys
}
