//! Warm Node.js workers: resident `node` processes, a small pool per `.js`
//! module, each loading its module once and serving one job at a time over
//! its stdin and stdout.
//!
//! Framing (text headers, binary bodies):
//! - daemon to worker: `job <transport> <remote> <length>\n<data>`, or
//!   `unload\n` (call `Unload()` if exported, then exit); closing stdin
//!   stops it.
//! - worker to daemon: `ready\n` once the module is loaded; `cold\n` if the
//!   module cannot be served warm (no TExecute/UExecute: a plain script, or
//!   it does not load) and it exits; `ok <length>\n<answer>` or
//!   `fail <length>\n<answer>` per job.

use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use std::time::Instant;

use mio::unix::pipe::{Receiver, Sender};
use slab::Slab;

use crate::io::OutBuf;
use crate::run::job::JobKey;
use crate::run::modules::Module;
use crate::run::stderr::StderrLog;

/// What a worker is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerState {
    /// Loading its module; not yet `ready`.
    Starting,
    /// Waiting for a job since then.
    Idle(Instant),
    /// Running this job.
    Busy(JobKey),
    /// Its module changed: told to unload and exit.
    Retiring,
    /// Killed or gone; removed once reaped.
    Dead,
}

/// A resident worker process.
#[derive(Debug)]
pub struct Worker {
    /// The module version it loaded.
    pub module: Rc<Module>,
    pub pid: Option<u32>,
    pub serial: u64,
    pub stdin: Option<Sender>,
    pub stdin_watched: bool,
    pub stdout: Option<Receiver>,
    pub stderr: Option<Receiver>,
    /// Frames not yet written to its stdin.
    pub out: OutBuf,
    /// Bytes read from its stdout, not yet a whole reply.
    pub inbuf: Vec<u8>,
    pub state: WorkerState,
    pub stderr_log: StderrLog,
}

impl Worker {
    pub fn signal_kill(&mut self) {
        if let Some(pid) = self.pid {
            if self.state != WorkerState::Dead {
                crate::run::process::signal_group(pid, libc::SIGKILL);
            }
        }
        self.state = WorkerState::Dead;
    }

    /// True if it loaded this version of the module.
    pub fn serves(&self, module: &Module) -> bool {
        self.module.path == module.path && self.module.modified == module.modified
    }
}

/// A reply from a worker.
#[derive(Debug, PartialEq, Eq)]
pub enum Reply {
    Ready,
    Cold,
    Done {
        ok: bool,
        answer: Vec<u8>,
    },
    /// The worker wrote something outside the framing.
    Garbled(String),
}

/// Takes one whole reply off the front of `buf`, if there is one.
pub fn next_reply(buf: &mut Vec<u8>) -> Option<Reply> {
    let newline = buf.iter().position(|&b| b == b'\n')?;
    let header = String::from_utf8_lossy(&buf[..newline]).into_owned();
    let mut words = header.split(' ');
    let reply = match (words.next(), words.next()) {
        (Some("ready"), None) => Reply::Ready,
        (Some("cold"), None) => Reply::Cold,
        (Some(status @ ("ok" | "fail")), Some(len)) => {
            // A length that overflows (found by fuzzing) is garbage.
            let Some(end) = len
                .parse::<usize>()
                .ok()
                .and_then(|len| (newline + 1).checked_add(len))
            else {
                buf.clear();
                return Some(Reply::Garbled(header));
            };
            if buf.len() < end {
                return None;
            }
            let answer = buf[newline + 1..end].to_vec();
            buf.drain(..end);
            return Some(Reply::Done {
                ok: status == "ok",
                answer,
            });
        }
        _ => {
            buf.clear();
            return Some(Reply::Garbled(header));
        }
    };
    buf.drain(..=newline);
    Some(reply)
}

/// A job's frame for a worker.
pub fn job_frame(transport: &str, remote: &str, data: &[u8]) -> Vec<u8> {
    let remote = if remote.is_empty() { "-" } else { remote };
    let mut frame = format!("job {transport} {remote} {}\n", data.len()).into_bytes();
    frame.extend_from_slice(data);
    frame
}

/// All workers, and the jobs waiting for one, by module name.
#[derive(Debug, Default)]
pub struct Workers {
    pub slab: Slab<Worker>,
    pub queues: HashMap<String, VecDeque<JobKey>>,
    /// Modules that cannot run warm, by the version found so.
    pub cold: HashMap<String, std::time::SystemTime>,
}

impl Workers {
    /// Workers of this module that can still take jobs.
    pub fn live_count(&self, name: &str) -> usize {
        self.slab
            .iter()
            .filter(|(_, w)| {
                w.module.name == name
                    && !matches!(w.state, WorkerState::Dead | WorkerState::Retiring)
            })
            .count()
    }

    pub fn by_pid(&self, pid: u32) -> Option<usize> {
        self.slab
            .iter()
            .find(|(_, w)| w.pid == Some(pid))
            .map(|(k, _)| k)
    }

    pub fn by_serial(&self, serial: u64) -> Option<usize> {
        self.slab
            .iter()
            .find(|(_, w)| w.serial == serial && w.pid.is_none())
            .map(|(k, _)| k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_taken_whole() {
        let mut buf = b"ready\nok 5\nhel".to_vec();
        assert_eq!(next_reply(&mut buf), Some(Reply::Ready));
        assert_eq!(next_reply(&mut buf), None, "body incomplete");
        buf.extend_from_slice(b"lofail 3\nbad");
        assert_eq!(
            next_reply(&mut buf),
            Some(Reply::Done {
                ok: true,
                answer: b"hello".to_vec()
            })
        );
        assert_eq!(
            next_reply(&mut buf),
            Some(Reply::Done {
                ok: false,
                answer: b"bad".to_vec()
            })
        );
        assert!(buf.is_empty());
        let mut buf = b"cold\n".to_vec();
        assert_eq!(next_reply(&mut buf), Some(Reply::Cold));
        let mut buf = b"console.log noise\n".to_vec();
        assert!(matches!(next_reply(&mut buf), Some(Reply::Garbled(_))));
        let mut buf = format!("ok {}\nx", usize::MAX).into_bytes();
        assert!(
            matches!(next_reply(&mut buf), Some(Reply::Garbled(_))),
            "no overflow"
        );
    }

    #[test]
    fn job_frames_carry_transport_remote_and_data() {
        assert_eq!(
            job_frame("tcp", "127.0.0.1:5", b"a\nb"),
            b"job tcp 127.0.0.1:5 3\na\nb"
        );
        assert_eq!(job_frame("queue", "", b""), b"job queue - 0\n");
    }
}
