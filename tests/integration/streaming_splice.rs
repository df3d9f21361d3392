//! The request of a streamed job spliced from the socket into the module's
//! stdin (`net/splice.rs`): 16 MiB arrive whole and byte-exact however the
//! client writes and ends them, the daemon's memory stays flat, and the
//! size limit holds as it does for bytes the daemon reads.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

use crate::util::{wait_for, Daemon, Setup};

const SIXTEEN_MIB: usize = 16 << 20;

/// A payload that a shifted, dropped or doubled chunk cannot match.
fn pattern(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i % 251) as u8 ^ (i >> 16) as u8)
        .collect()
}

/// A `queue:stats` counter.
fn stat(d: &Daemon, key: &str) -> u64 {
    let stats = d.ask_str("queue:stats");
    let line = stats
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}: ")))
        .unwrap_or_else(|| panic!("no {key} in {stats}"));
    line.parse().unwrap()
}

/// The daemon's memory from /proc: (peak, now), in KiB.
fn rss_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| -> u64 {
        let line = status.lines().find(|l| l.starts_with(name)).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// How a client writes its request and ends it.
#[derive(Clone, Copy)]
enum Writes {
    /// One write, then a half-close.
    Whole,
    /// Four pieces with pauses between them, then a half-close.
    Pieces,
    /// One write, and the socket kept open (the quiet gap ends it).
    Classic,
}

/// Sends `cat:` and `payload` as `how` says, while reading the echo.
fn echo(d: &Daemon, payload: &[u8], how: Writes) -> Result<Vec<u8>, std::io::Error> {
    let mut stream = d.connect();
    let mut writer = stream.try_clone().unwrap();
    let sent = payload.to_vec();
    let send = std::thread::spawn(move || -> std::io::Result<TcpStream> {
        writer.write_all(b"cat:")?;
        match how {
            Writes::Pieces => {
                for piece in sent.chunks(sent.len() / 4 + 1) {
                    std::thread::sleep(Duration::from_millis(30));
                    writer.write_all(piece)?;
                }
            }
            Writes::Whole | Writes::Classic => writer.write_all(&sent)?,
        }
        if !matches!(how, Writes::Classic) {
            writer.shutdown(Shutdown::Write)?;
        }
        Ok(writer) // a classic client's write side stays open until it has read
    });
    let mut echoed = Vec::new();
    let end = stream.read_to_end(&mut echoed);
    let _ = send.join().unwrap();
    end.map(|_| echoed)
}

#[test]
fn sixteen_mib_are_spliced_whole_however_written_and_memory_stays_flat() {
    let d = Setup::new()
        .module("cat", "#!/bin/sh\nexec cat\n")
        .settings(
            r#""module_policy": {"cat": {"answer": "stream"}}, "max_request_bytes": 33554432,
               "request_gap_ms": 1000"#,
        )
        .start();
    assert_eq!(d.ask(b"cat:warm"), b"warm");
    let (peak_before, _) = rss_kib(d.pid());
    let payload = pattern(SIXTEEN_MIB);
    for how in [Writes::Whole, Writes::Pieces, Writes::Classic] {
        let spliced = stat(&d, "total_bytes_spliced");
        let echoed = echo(&d, &payload, how).unwrap();
        assert_eq!(echoed.len(), payload.len());
        assert!(echoed == payload, "the echo differs from the payload");
        // The head's read may bring some of the data; the rest is spliced.
        let now = stat(&d, "total_bytes_spliced") - spliced;
        assert!(
            now > (SIXTEEN_MIB - (1 << 20)) as u64,
            "only {now} bytes spliced"
        );
    }
    let (peak, rss) = rss_kib(d.pid());
    assert!(
        peak - peak_before < 3 * 1024,
        "peak memory grew by {} KiB over 3 x 16 MiB (now {rss} KiB)",
        peak - peak_before
    );
    d.wait_log("cat: in 16777216 bytes, out streamed, exit status 0");
}

#[test]
fn a_spliced_request_over_the_limit_is_refused_as_a_read_one_is() {
    const LIMIT: usize = 1 << 20;
    let d = Setup::new()
        .module("cat", "#!/bin/sh\nexec cat\n")
        .module("count", "#!/bin/sh\nexec wc -c\n")
        .module("first", "#!/bin/sh\nprintf first\nexec cat\n")
        .settings(&format!(
            r#""module_policy": {{"cat": {{"answer": "stream"}}, "count": {{"answer": "stream"}},
                                 "first": {{"answer": "stream"}}}},
               "max_request_bytes": {LIMIT}, "request_gap_ms": 5000"#
        ))
        .start();
    // Exactly at the limit is fine, and spliced.
    let at_limit = pattern(LIMIT - 4);
    assert!(echo(&d, &at_limit, Writes::Whole).unwrap() == at_limit);
    let spliced = stat(&d, "total_bytes_spliced");
    assert!(spliced > 0);
    // One byte over, to a module that has written nothing yet: 413, and
    // no byte past the limit reached it.
    let mut stream = d.connect();
    let mut writer = stream.try_clone().unwrap();
    let over = pattern(4 * LIMIT); // made first: a pause after the head would end it
    let send = std::thread::spawn(move || {
        let _ = writer.write_all(b"count:");
        let _ = writer.write_all(&over);
        let _ = writer.shutdown(Shutdown::Write);
    });
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    send.join().unwrap();
    assert_eq!(answer, b"413: Request too large");
    let over = stat(&d, "total_bytes_spliced") - spliced;
    assert!(over > 0 && over <= LIMIT as u64, "{over} bytes spliced");
    d.wait_log("request over 1048576 bytes");
    // Over it to a module whose answer has started: the connection is
    // reset, as for any streamed answer cut.
    let mut stream = d.connect();
    stream.write_all(b"first:").unwrap();
    let mut first = [0u8; 5];
    stream.read_exact(&mut first).unwrap();
    assert_eq!(&first, b"first");
    let mut writer = stream.try_clone().unwrap();
    let over = pattern(4 * LIMIT);
    let send = std::thread::spawn(move || {
        writer
            .write_all(&over)
            .and_then(|()| writer.shutdown(Shutdown::Write))
    });
    let mut rest = Vec::new();
    let read = stream.read_to_end(&mut rest);
    let written = send.join().unwrap();
    // The kernel reports a reset once per socket, to whichever call meets
    // it first: the reader's, or the writer's (the reader then sees an end
    // of file after it).
    let reset = |e: Option<&std::io::Error>| {
        e.is_some_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset)
    };
    assert!(
        reset(read.as_ref().err()) || reset(written.as_ref().err()),
        "a cut answer must not end like a whole one: read {read:?}, write {written:?}"
    );
    assert!(
        !rest.windows(3).any(|w| w == b"413"),
        "answered after its output"
    );
    assert_eq!(stat(&d, "total_streams_cut"), 1);
    wait_for("no children", || d.children().is_empty());
}

#[test]
fn urgent_data_in_a_spliced_request_does_not_stall_the_daemon() {
    use std::os::fd::AsRawFd;
    let d = Setup::new()
        .module("cat", "#!/bin/sh\nexec cat\n")
        .settings(r#""module_policy": {"cat": {"answer": "stream"}}, "request_gap_ms": 5000"#)
        .start();
    let mut stream = d.connect();
    stream.write_all(b"cat:before ").unwrap();
    let mut first = [0u8; 7];
    stream.read_exact(&mut first).unwrap();
    assert_eq!(&first, b"before ");
    // One byte of urgent data, then ordinary bytes behind its mark: a
    // splice leaves them, and FIONREAD says 0 while a peek finds them.
    // SAFETY: send of one byte from a live buffer.
    let sent = unsafe { libc::send(stream.as_raw_fd(), b"!".as_ptr().cast(), 1, libc::MSG_OOB) };
    assert_eq!(sent, 1);
    stream.write_all(b"after").unwrap();
    std::thread::sleep(Duration::from_millis(200));
    // Another client is served: the loop is not spinning on the first.
    assert_eq!(d.ask_str("helo"), "oleh");
    stream.shutdown(Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).unwrap();
    assert!(
        rest.ends_with(b"after"),
        "{:?}\n{}",
        String::from_utf8_lossy(&rest),
        d.log()
    );
}
