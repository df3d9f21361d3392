//! A connection's answer: written as the socket takes it, then our FIN and
//! the linger (or the close, if the client already sent its FIN).

use std::net::Shutdown;
use std::time::Instant;

use super::{Conn, LINGER};
use crate::net::phase::{Phase, Verdict};
use crate::net::stream::Answering;

impl Conn {
    /// Writes what it can of the answer now.
    pub fn flush(&mut self) -> Option<Verdict> {
        self.write()
    }

    /// Writes the answer; once it is all out, shuts down our side and
    /// lingers (or closes, if the client already sent its FIN).
    pub(super) fn write(&mut self) -> Option<Verdict> {
        let Phase::Answer(out) = &mut self.phase else {
            return None;
        };
        match out.write_to(Answering(&self.stream)) {
            Ok(false) => None,
            Ok(true) if self.peer_eof => Some(Verdict::Close),
            Ok(true) => {
                // Our FIN tells the client the answer is complete.
                let _ = self.stream.shutdown(Shutdown::Write);
                self.phase = Phase::Linger;
                self.set_deadline(Some(Instant::now() + LINGER));
                None
            }
            Err(e) => {
                log::debug!("tcp {}: answer not delivered: {e}", self.peer);
                Some(Verdict::Close)
            }
        }
    }
}
