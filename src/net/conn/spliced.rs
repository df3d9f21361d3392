//! A streamed job's request moved from the socket into its stdin pipe by
//! the kernel (`net/splice.rs`), counted as if it had been read: its size
//! limit and its clock hold as for bytes the daemon reads.

use std::os::fd::RawFd;

use super::Conn;
use crate::net::phase::{Limits, Phase, Verdict};
use crate::net::splice::{from_socket, Spliced};

impl Conn {
    /// One splice into `stdin`, the job's pipe, while the request is read:
    /// a verdict, or `None` when a plain read must look at the socket (it
    /// is at its end, the module closed its stdin, splicing is
    /// unavailable, or the next byte is past the size limit, which the
    /// read then refuses).
    pub(super) fn splice_into(&mut self, stdin: RawFd, limits: &Limits) -> Option<Verdict> {
        let Phase::Job(job) = self.phase else {
            return None;
        };
        if !self.reading_request() || !self.splicing {
            return None;
        }
        let socket = self.stream.tcp_fd()?;
        let room = limits.max_request.saturating_sub(self.pace.bytes());
        if room == 0 {
            return None; // a byte more is over the limit: the read refuses it
        }
        match from_socket(socket, stdin, room) {
            Spliced::Moved(len) => {
                self.pace.arrived(len);
                Some(Verdict::Spliced { job, len })
            }
            Spliced::PipeFull => Some(Verdict::StdinFull(job)),
            Spliced::Drained => Some(self.drained(limits)),
            Spliced::ReadInstead => None,
            Spliced::Unsupported => {
                self.splicing = false;
                None
            }
            Spliced::Failed(e) => {
                log::debug!("tcp {}: {e}", self.peer);
                Some(Verdict::Close)
            }
        }
    }
}
