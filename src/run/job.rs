//! A job: one run of a module, from request to answer.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::rc::Rc;
use std::time::{Instant, SystemTime};

use crate::io::OutBuf;
use crate::keys::ConnKey;
use crate::queue::options::Priority;
use crate::run::modules::Module;
use crate::run::outcome::{decode_status, Outcome};
use crate::run::process::Process;

/// The peer address a connection over the operator's Unix socket stands
/// under (it has none of its own): loopback for the per-client counts, port
/// 0, which no TCP client has.
pub const OPERATOR_PEER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0);

/// Where a job came from, which is also where its answer goes.
#[derive(Debug, Clone, Copy)]
pub enum Origin {
    /// A direct TCP call; `conn` is `None` once the client is gone or was
    /// already answered (e.g. `413`), so the result is only logged.
    Tcp {
        conn: Option<ConnKey>,
        peer: SocketAddr,
    },
    /// A UDP datagram: fire and forget, the result is only logged.
    Udp { peer: SocketAddr },
    /// A `queue:add` job, kept under its id until fetched.
    Queue { id: u64 },
}

impl Origin {
    /// The value of `BGJOB_TRANSPORT`.
    pub fn transport(&self) -> &'static str {
        match self {
            Origin::Tcp { .. } => "tcp",
            Origin::Udp { .. } => "udp",
            Origin::Queue { .. } => "queue",
        }
    }

    /// The value of `BGJOB_REMOTE`: the client's `ip:port`, `unix` for the
    /// operator socket, none for a queue job.
    pub fn remote(&self) -> Option<String> {
        match self.peer()? {
            OPERATOR_PEER => Some("unix".into()),
            peer => Some(peer.to_string()),
        }
    }

    pub fn peer(&self) -> Option<SocketAddr> {
        match *self {
            Origin::Tcp { peer, .. } | Origin::Udp { peer } => Some(peer),
            Origin::Queue { .. } => None,
        }
    }
}

/// Where a job is in its life.
#[derive(Debug)]
pub enum JobState {
    /// In the FIFO waiting line for a free running slot.
    Waiting,
    /// Its process runs (or has exited and its pipes are draining).
    Running(Box<ColdRun>),
    /// A `.js` module's job handed to a resident Node.js worker (or waiting
    /// for one of its module's pool).
    Warm(WarmRun),
}

/// A job run by a warm worker.
#[derive(Debug)]
pub struct WarmRun {
    /// The worker running it; `None` while it waits for one.
    pub worker: Option<crate::keys::WorkerKey>,
    pub started: Instant,
    /// The job time limit.
    pub deadline: Instant,
    /// Killed because the daemon stopped: a journaled job runs again after
    /// the restart instead of being recorded as failed.
    pub killed_at_stop: bool,
    /// Its worker's CPU and memory over the job, once it ended there.
    pub usage: crate::run::outcome::Usage,
}

/// One run of a module.
#[derive(Debug)]
pub struct Job {
    pub module: Rc<Module>,
    pub origin: Origin,
    /// The journal id of a queue or UDP job.
    pub id: Option<u64>,
    /// The listener a queue job was added on: only it (or an operator)
    /// may see the job. Empty for other jobs and for jobs of old journals.
    pub owner: String,
    /// A journaled job's data, kept whole for compaction and restarts.
    pub data: Option<Rc<[u8]>>,
    /// Runs started, this one included once it runs (`BGJOB_ATTEMPT`).
    pub attempts: u32,
    /// Where it stands in the waiting line: highest first, FIFO within one.
    pub priority: Priority,
    /// Its own time limit (`queue:add?timeout=`), within its module's.
    pub timeout: Option<std::time::Duration>,
    /// How far it is, as its module said (`BGJOB_PROGRESS_FD`).
    pub progress: crate::run::progress::Progress,
    /// The client address that asked for it, for the per-client bound on
    /// waiting work (none for jobs recovered from the journal).
    pub client: Option<std::net::IpAddr>,
    /// Request data not yet written to the child's stdin.
    pub input: OutBuf,
    /// No more input will come: stdin is closed once `input` is written.
    pub input_complete: bool,
    /// Request data received so far, for the log and the size limit.
    pub bytes_in: usize,
    /// The client's socket is not read while this much input waits for
    /// stdin: memory stays flat whatever the request's size.
    pub input_held: bool,
    pub created: Instant,
    /// Wall-clock time it arrived, for the journal (survives restarts).
    pub added_at: SystemTime,
    pub state: JobState,
}

impl Job {
    pub fn new(module: Rc<Module>, origin: Origin, data: &[u8], input_complete: bool) -> Self {
        Job {
            module,
            origin,
            id: None,
            owner: String::new(),
            data: None,
            attempts: 0,
            priority: Priority::Normal,
            timeout: None,
            progress: Default::default(),
            client: origin.peer().map(|p| p.ip()),
            input: OutBuf::new(data.to_vec()),
            input_complete,
            bytes_in: data.len(),
            input_held: false,
            created: Instant::now(),
            added_at: SystemTime::now(),
            state: JobState::Waiting,
        }
    }

    /// A queue or UDP job, kept in the journal under `id`. Its data is kept
    /// whole and copied to stdin when it starts.
    pub fn journaled(module: Rc<Module>, origin: Origin, id: u64, data: Rc<[u8]>) -> Self {
        let mut job = Job::new(module, origin, b"", true);
        job.id = Some(id);
        job.bytes_in = data.len();
        job.data = Some(data);
        job
    }

    /// Request data received and not yet written to stdin.
    pub fn input_backlog(&self) -> usize {
        let running = match &self.state {
            JobState::Running(run) => run.process.input.len(),
            _ => 0,
        };
        self.input.len() + running
    }

    /// More request data: to the running process's stdin, or kept until
    /// the job starts.
    pub fn push_input(&mut self, bytes: &[u8]) {
        self.bytes_in += bytes.len();
        match &mut self.state {
            JobState::Running(run) => run.process.input.push(bytes),
            JobState::Waiting | JobState::Warm(_) => self.input.push(bytes),
        }
    }

    pub fn cold_mut(&mut self) -> Option<&mut ColdRun> {
        match &mut self.state {
            JobState::Running(run) => Some(run),
            JobState::Waiting | JobState::Warm(_) => None,
        }
    }

    /// Started, on a process of its own or a warm worker.
    pub fn is_running(&self) -> bool {
        matches!(self.state, JobState::Running(_) | JobState::Warm(_))
    }
}

/// How far the stopping of a cold job's process has gone; each phase has
/// its deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopping {
    /// Running within its time limit.
    Running,
    /// Past its limit: SIGTERM sent to the group, SIGKILL at the deadline.
    Terminating,
    /// SIGKILL sent; waiting to reap.
    Killed,
    /// Reaped; its pipes get until the deadline to reach end of file (a
    /// process that left the group may still hold them open).
    Exited,
}

/// A job run by a process of its own, and what it has said so far.
#[derive(Debug)]
pub struct ColdRun {
    pub process: Process,
    /// Stdout so far, the answer once the job is done.
    pub output: Vec<u8>,
    /// Killed because the daemon stopped: a journaled job runs again after
    /// the restart instead of being recorded as failed.
    pub killed_at_stop: bool,
    /// An outcome decided by the daemon (timed out, output too large,
    /// cancelled), which wins over the exit status it caused.
    pub verdict: Option<Outcome>,
    pub started: Instant,
    pub stopping: Stopping,
    pub deadline: Instant,
    /// Its stdout is the client's socket (`"answer": "stream"`): `output`
    /// stays empty, and the answer is already with the client.
    pub streamed: bool,
}

impl ColdRun {
    pub fn new(process: Process, deadline: Instant) -> Self {
        ColdRun {
            process,
            output: Vec::new(),
            killed_at_stop: false,
            verdict: None,
            started: Instant::now(),
            stopping: Stopping::Running,
            deadline,
            streamed: false,
        }
    }

    /// Ends the run with `verdict` (unless one was decided already) and
    /// kills its process group.
    pub fn end(&mut self, verdict: Outcome) {
        self.verdict.get_or_insert(verdict);
        self.process.kill();
    }

    /// Done when reaped and both output pipes are closed.
    pub fn is_done(&self) -> bool {
        self.process.exit.is_some() && self.process.output_closed()
    }

    pub fn outcome(&self) -> Outcome {
        if let Some(verdict) = &self.verdict {
            return verdict.clone();
        }
        match self.process.exit {
            Some((raw, _)) => decode_status(raw),
            None => Outcome::SpawnFailed("not reaped".into()),
        }
    }
}
