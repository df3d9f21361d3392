//! UDP: each datagram is one request `<module>[:<data>]`. The module runs and
//! nothing is sent back (fire and forget: no reply, no amplification).

use std::net::SocketAddr;

use crate::daemon::Daemon;
use crate::io::{read_once, ReadResult};
use crate::net::protocol::{split_datagram, Refusal};
use crate::sanitize::quoted;

impl Daemon {
    pub(super) fn receive_datagrams(&mut self, listener: usize) {
        let mut scratch = self.scratch.take();
        while let Some((l, udp)) = self
            .listeners
            .get(listener)
            .and_then(|l| Some((l, l.udp.as_ref()?)))
        {
            let mut from = None;
            let got = read_once(
                ReadFrom {
                    socket: udp,
                    from: &mut from,
                },
                &mut scratch,
            );
            match (got, from) {
                (ReadResult::Data(n), Some(peer)) => self.datagram(listener, peer, &scratch[..n]),
                (ReadResult::Eof, Some(peer)) => self.datagram(listener, peer, &[]),
                (ReadResult::Blocked, _) => break,
                (ReadResult::Failed(e), _) => {
                    log::warn!("udp receive on {} failed: {e}", l.addr);
                    break;
                }
                _ => break,
            }
        }
        self.scratch.put(scratch);
    }

    fn datagram(&mut self, listener: usize, peer: SocketAddr, datagram: &[u8]) {
        let peer = super::accept::canonical(peer);
        self.stats.datagrams += 1;
        if !self
            .listeners
            .get(listener)
            .is_none_or(|l| l.access.permits(peer.ip()))
        {
            // No answer and a debug line only: a flood must not flood the log.
            self.stats.refusal(Refusal::Forbidden);
            self.stats.udp_forbidden += 1;
            self.warn_limited(
                "udp forbidden",
                format_args!("udp {peer}: dropped, not an allowed client"),
            );
            return;
        }
        if datagram.len() > self.settings.max_request {
            self.stats.refusal(Refusal::TooLarge);
            let len = datagram.len();
            self.warn_limited(
                Refusal::TooLarge.answer(),
                format_args!("udp {peer}: dropped, {len} bytes is over the request limit"),
            );
            return;
        }
        let (name, data) = split_datagram(datagram);
        if !self.serves(listener, &name) {
            self.stats.refusal(Refusal::Forbidden);
            self.stats.udp_forbidden += 1;
            self.warn_limited(
                "udp forbidden",
                format_args!("udp {peer}: dropped, module {name:?} is not served on this listener"),
            );
            return;
        }
        let Some(module) = self.modules.lookup(&name) else {
            self.stats.refusal(Refusal::UnknownModule);
            // The name as sent, never the data after it.
            let head = datagram.split(|&b| b == b':').next().unwrap_or_default();
            let request = quoted(head, 64);
            self.warn_limited(
                Refusal::UnknownModule.answer(),
                format_args!("udp {peer}: dropped, no module {request}"),
            );
            return;
        };
        if self.waiting_with_queue(None).2 >= self.settings.max_waiting_udp {
            // Counted, logged at debug only: a flood must not flood the log.
            self.stats.refusal(Refusal::Busy);
            self.stats.udp_over_budget += 1;
            log::debug!("udp {peer}: {name} dropped, max_waiting_udp jobs waiting");
            return;
        }
        if self.stopping.is_some() {
            self.stats.refusal(Refusal::ShuttingDown);
            self.warn_limited(
                Refusal::ShuttingDown.answer(),
                format_args!("udp {peer}: {name} dropped, shutting down"),
            );
            return;
        }
        match self.queue_datagram(module, data, peer) {
            Ok(id) => log::info!("udp {peer}: {name} ({} bytes) as job {id}", data.len()),
            Err(refusal) => {
                self.stats.refusal(refusal);
                let answer = refusal.answer();
                self.warn_limited(answer, format_args!("udp {peer}: {name} dropped: {answer}"));
            }
        }
    }
}

/// `recv_from` as a `Read`, so datagrams go through the same read rules.
struct ReadFrom<'a> {
    socket: &'a mio::net::UdpSocket,
    from: &'a mut Option<SocketAddr>,
}

impl std::io::Read for ReadFrom<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let (n, peer) = self.socket.recv_from(buf)?;
        *self.from = Some(peer);
        Ok(n)
    }
}
