//! The framing between the daemon and a warm Node.js worker (text headers,
//! binary bodies):
//! - daemon to worker: `job <transport> <remote> <length>\n<data>`, or
//!   `unload\n` (call `Unload()` if exported, then exit); closing stdin
//!   stops it.
//! - worker to daemon: `ready\n` once the module is loaded; `cold\n` if the
//!   module cannot be served warm (no TExecute/UExecute: a plain script, or
//!   it does not load) and it exits; `ok <length>\n<answer>` or
//!   `fail <length>\n<answer>` per job; `progress <N/M or N%>\n` while a
//!   job runs (its `client.progress(n, m)`).

/// A reply from a worker.
#[derive(Debug, PartialEq, Eq)]
pub enum Reply {
    Ready,
    Cold,
    Done {
        ok: bool,
        answer: Vec<u8>,
    },
    /// How far the current job is: one progress line, unparsed.
    Progress(Vec<u8>),
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
        (Some("progress"), step) => Reply::Progress(step.unwrap_or_default().into()),
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

/// A job's frame for a worker: `job <transport> <remote> <length>
/// <queue id or -> <attempt>`, then the data; the host hands the id and the
/// attempt to the module as `client.jobId` and `client.attempt`.
pub fn job_frame(transport: &str, remote: &str, data: &[u8], job: (Option<u64>, u32)) -> Vec<u8> {
    let remote = if remote.is_empty() { "-" } else { remote };
    let id = job.0.map_or_else(|| "-".to_string(), |id| id.to_string());
    let mut frame =
        format!("job {transport} {remote} {} {id} {}\n", data.len(), job.1).into_bytes();
    frame.extend_from_slice(data);
    frame
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
        let mut buf = b"cold\nprogress 40/100\nok 0\n".to_vec();
        assert_eq!(next_reply(&mut buf), Some(Reply::Cold));
        assert_eq!(
            next_reply(&mut buf),
            Some(Reply::Progress(b"40/100".to_vec()))
        );
        assert!(matches!(
            next_reply(&mut buf),
            Some(Reply::Done { ok: true, .. })
        ));
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
            job_frame("tcp", "127.0.0.1:5", b"a\nb", (None, 1)),
            b"job tcp 127.0.0.1:5 3 - 1\na\nb"
        );
        assert_eq!(
            job_frame("queue", "", b"", (Some(42), 2)),
            b"job queue - 0 42 2\n"
        );
    }
}
