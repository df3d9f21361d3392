//! The wire protocol, without sockets: what a request asks for and how an
//! answer is written. Everything here is pure and unit-tested.
//!
//! A request is `<module>` or `<module>:<data>`. The module name is cleaned to
//! `a-z A-Z 0-9 - _`; the data after the first `:` goes to the module's stdin
//! byte for byte. `helo`, `hello` and `queue:...` are answered by the daemon.

use crate::run::name::clean_module_name;
use crate::run::outcome::Outcome;

/// What the head of a TCP request tells us so far.
#[derive(Debug, PartialEq, Eq)]
pub enum Head {
    /// Not enough bytes yet to route the request.
    Incomplete,
    /// A module call: `name` is cleaned; the body starts at `body_start`.
    /// Routed as soon as the first `:` arrives, so the module can start while
    /// the rest of the data streams in.
    Module { name: String, body_start: usize },
    /// A request the daemon answers itself; it needs the whole request.
    Control(Control),
}

/// A request answered by the daemon rather than by a module.
#[derive(Debug, PartialEq, Eq)]
pub enum Control {
    Helo,
    Hello,
    /// `queue:add[?<options>]:<module>:<data>`; `data_start` and
    /// `options` (the text between `?` and the module) index the whole
    /// request.
    QueueAdd {
        module: String,
        data_start: usize,
        options: Option<std::ops::Range<usize>>,
    },
    /// `queue:failed`: the failed jobs whose results are held.
    QueueFailed,
    /// `queue:retry:id:<n>` or `queue:retry:module:<m>`.
    QueueRetry(RetryRef),
    QueueCheck(JobRef),
    QueueGet(JobRef),
    /// `queue:cancel:id:<n>`: remove a waiting job, kill a running one.
    QueueCancel(JobRef),
    /// `queue:info:id:<n>`: the job's receipt.
    QueueInfo(JobRef),
    /// `queue:stats`: counters as `key: value` lines.
    QueueStats,
    /// `queue:list`: one line per job held.
    QueueList,
    /// `queue:pause:<module>` (`paused`) or `queue:resume:<module>`.
    QueuePause {
        module: String,
        paused: bool,
    },
    /// Any other `queue:` request.
    UnknownQueue,
}

/// A job id as written by the client: a number, or something that names no job.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum JobRef {
    Id(u64),
    Invalid,
}

/// What `queue:retry` names: one job, or every failed job of a module.
#[derive(Debug, PartialEq, Eq, Clone)]
pub enum RetryRef {
    Id(JobRef),
    Module(String),
}

const QUEUE_PREFIX: &[u8] = b"queue:";

/// Classifies the bytes of a TCP request received so far. `complete` says the
/// request has ended (half-close or the quiet gap), so whatever is there is all.
pub fn classify(buf: &[u8], complete: bool) -> Head {
    let colon = buf.iter().position(|&b| b == b':');
    match colon {
        Some(i) if &buf[..=i] == QUEUE_PREFIX => {
            if complete {
                Head::Control(parse_queue(buf))
            } else {
                Head::Incomplete
            }
        }
        Some(i) => Head::Module {
            name: clean_module_name(&buf[..i]),
            body_start: i + 1,
        },
        None if !complete => Head::Incomplete,
        None => match trim(buf) {
            b"helo" => Head::Control(Control::Helo),
            b"hello" => Head::Control(Control::Hello),
            _ => Head::Module {
                name: clean_module_name(buf),
                body_start: buf.len(),
            },
        },
    }
}

/// True if `buf` is a control request that parses whole: a greeting, or a
/// queue request naming a job or asking for stats or the list. Such a request
/// is answered as soon as the socket is empty, without a quiet gap; `queue:add`
/// carries data of any length and waits like a module call.
pub fn is_whole_control(buf: &[u8]) -> bool {
    use JobRef::Id;
    matches!(
        classify(buf, true),
        Head::Control(
            Control::Helo
                | Control::Hello
                | Control::QueueStats
                | Control::QueueList
                | Control::QueueFailed
                | Control::QueueRetry(RetryRef::Id(Id(_)) | RetryRef::Module(_))
                | Control::QueuePause { .. }
                | Control::QueueCheck(Id(_))
                | Control::QueueGet(Id(_))
                | Control::QueueCancel(Id(_))
                | Control::QueueInfo(Id(_))
        )
    )
}

/// Past this many bytes, a request head that has not said where it goes
/// never will: module names are short, and so are control requests, but
/// for `queue:add`'s data.
pub const HEAD_LIMIT: usize = 4096;

/// True if the head can no longer become a valid request: over
/// [`HEAD_LIMIT`] bytes with no `:` after the module name (or the queue
/// request's name). It is routed as it is (an unknown module, or an
/// unknown queue request) rather than scanned again at every read.
pub fn head_overlong(buf: &[u8]) -> bool {
    if buf.len() <= HEAD_LIMIT {
        return false;
    }
    let head = &buf[..HEAD_LIMIT];
    match head.strip_prefix(QUEUE_PREFIX) {
        Some(rest) => match rest.strip_prefix(b"add:") {
            Some(add) => !add.contains(&b':'),
            // Options, then the module: two more colons to come.
            None if rest.starts_with(b"add?") => rest.iter().filter(|&&b| b == b':').count() < 2,
            None => true,
        },
        None => !head.contains(&b':'),
    }
}

/// Splits a UDP datagram into a cleaned module name and its data.
pub fn split_datagram(datagram: &[u8]) -> (String, &[u8]) {
    match datagram.iter().position(|&b| b == b':') {
        Some(i) => (clean_module_name(&datagram[..i]), &datagram[i + 1..]),
        None => (clean_module_name(datagram), &[]),
    }
}

fn parse_queue(req: &[u8]) -> Control {
    let rest = &req[QUEUE_PREFIX.len()..];
    let (add, options) = match rest.strip_prefix(b"add?") {
        // Options end at the first `:` (http_build_query encodes it).
        Some(with) => match with.iter().position(|&b| b == b':') {
            Some(i) => {
                let start = req.len() - with.len();
                (Some(&with[i + 1..]), Some(start..start + i))
            }
            None => (Some(&b""[..]), Some(req.len() - with.len()..req.len())),
        },
        None => (rest.strip_prefix(b"add:"), None),
    };
    if let Some(add) = add {
        let start = req.len() - add.len();
        let (module, data_start) = match add.iter().position(|&b| b == b':') {
            Some(i) => (clean_module_name(&add[..i]), start + i + 1),
            None => (clean_module_name(add), req.len()),
        };
        return Control::QueueAdd {
            module,
            data_start,
            options,
        };
    }
    if let Some(target) = rest.strip_prefix(b"retry:") {
        if let Some(module) = target.strip_prefix(b"module:") {
            return Control::QueueRetry(RetryRef::Module(clean_module_name(trim(module))));
        }
        return parse_job_ref(target).map_or(Control::UnknownQueue, |id| {
            Control::QueueRetry(RetryRef::Id(id))
        });
    }
    if let Some(id) = rest.strip_prefix(b"check:") {
        return parse_job_ref(id).map_or(Control::UnknownQueue, Control::QueueCheck);
    }
    if let Some(id) = rest.strip_prefix(b"get:") {
        return parse_job_ref(id).map_or(Control::UnknownQueue, Control::QueueGet);
    }
    if let Some(id) = rest.strip_prefix(b"cancel:") {
        return parse_job_ref(id).map_or(Control::UnknownQueue, Control::QueueCancel);
    }
    if let Some(id) = rest.strip_prefix(b"info:") {
        return parse_job_ref(id).map_or(Control::UnknownQueue, Control::QueueInfo);
    }
    for (verb, paused) in [(&b"pause:"[..], true), (b"resume:", false)] {
        if let Some(module) = rest.strip_prefix(verb).map(|m| clean_module_name(trim(m))) {
            if module.is_empty() {
                return Control::UnknownQueue;
            }
            return Control::QueuePause { module, paused };
        }
    }
    match trim(rest) {
        b"stats" => Control::QueueStats,
        b"list" => Control::QueueList,
        b"failed" => Control::QueueFailed,
        _ => Control::UnknownQueue,
    }
}

/// `id:<n>` names a job; `id:` followed by anything else names none (404);
/// without `id:` the request itself is malformed (500).
fn parse_job_ref(s: &[u8]) -> Option<JobRef> {
    let digits = trim(s.strip_prefix(b"id:")?);
    let id = std::str::from_utf8(digits)
        .ok()
        .filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|d| d.parse().ok());
    Some(id.map_or(JobRef::Invalid, JobRef::Id))
}

fn trim(s: &[u8]) -> &[u8] {
    let start = s
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &s[start..end]
}

/// True when a module's output already carries the seed's `NNN:` error form,
/// the pattern the seed's PHP clients test with `/^[45][0-9]{2}\:/` after `ltrim`.
pub fn is_coded_error(output: &[u8]) -> bool {
    match trim(output) {
        [a, b, c, b':', ..] => matches!(a, b'4' | b'5') && b.is_ascii_digit() && c.is_ascii_digit(),
        _ => false,
    }
}

/// The answer a client gets for a finished module run.
pub fn render_answer(module: &str, outcome: &Outcome, output: Vec<u8>) -> Vec<u8> {
    match outcome {
        Outcome::Exited(0) => return output,
        Outcome::Exited(_) | Outcome::Signaled(_) if is_coded_error(&output) => return output,
        _ => {}
    }
    let text = match outcome {
        Outcome::Exited(code) => format!("500: Module {module} failed (exit status {code})"),
        Outcome::Signaled(sig) => format!("500: Module {module} failed (killed by signal {sig})"),
        Outcome::TimedOut => format!("504: Module {module} timed out"),
        Outcome::OutputTooLarge(cap) => {
            format!("500: Module {module} failed (output over {cap} bytes)")
        }
        Outcome::SpawnFailed(why) => format!("500: Module {module} failed (cannot start: {why})"),
        Outcome::Cancelled => format!("410: Module {module} cancelled"),
    };
    text.into_bytes()
}

/// Refusals that are answered without running anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    UnknownModule,
    UnknownJob,
    UnknownQueueRequest,
    TooLarge,
    Busy,
    TooManyConnections,
    Idle,
    /// The request did not arrive within its deadline or at the least rate.
    TooSlow,
    ShuttingDown,
    Internal,
    JournalFailed,
    Forbidden,
}

impl Refusal {
    /// The seed-style `NNN: text` answer.
    pub fn answer(self) -> &'static str {
        match self {
            Refusal::UnknownModule => "400: Unknown request",
            Refusal::UnknownJob => "404: Unknown job",
            Refusal::UnknownQueueRequest => "500: Unknown queue request",
            Refusal::TooLarge => "413: Request too large",
            Refusal::Busy => "503: Busy",
            Refusal::TooManyConnections => "503: Too many connections",
            Refusal::Idle | Refusal::TooSlow => "408: Request timeout",
            Refusal::ShuttingDown => "503: Shutting down",
            Refusal::Internal => "500: Internal error",
            Refusal::JournalFailed => "503: Journal write failed",
            Refusal::Forbidden => "403: Forbidden",
        }
    }
}

#[cfg(test)]
#[path = "protocol_tests.rs"]
mod tests;
