//! First-read framing (`"framing": "first-read"` on a listener): a classic
//! client's request ends with the first read that holds a `:`, as the old
//! service ended it, with no quiet gap; the default framing is unchanged;
//! `--check-config` notes the choice, and SIGHUP applies it.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::Duration;

use crate::util::{listener_addr, read_to_end, write_module, Daemon, TempDir, BIN};

const CAT: &str = "#!/bin/sh\nexec cat\n";
/// A quiet gap no test waits out: a request answered at all was not ended
/// by it (the client's read timeout is 20 s).
const HUGE_GAP: &str = r#""request_gap_ms": 60000"#;

/// A daemon with the listeners `quiet` (default framing) and `seed`
/// (first-read), serving `cat` and `test.js`, with `settings` besides.
fn two_listeners(settings: &str) -> (Daemon, SocketAddr, SocketAddr) {
    let dir = TempDir::new("first-read");
    let modules = dir.path().join("modules");
    std::fs::create_dir(&modules).unwrap();
    write_module(&modules, "cat", CAT);
    std::fs::write(
        modules.join("test.js"),
        "exports.TExecute = function (parts, client) { client.end('Test:' + parts[1]); };\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("service.config"),
        config("first-read", settings),
    )
    .unwrap();
    let d = Daemon::spawn_on_config(dir);
    let addr_of = |name: &str| {
        d.wait_log(&format!(" ({name};"));
        listener_addr(&d.log(), name).unwrap()
    };
    let (quiet, seed) = (addr_of("quiet"), addr_of("seed"));
    (d, quiet, seed)
}

fn config(seed_framing: &str, settings: &str) -> String {
    format!(
        r#"{{"listen": [
        {{"name": "quiet", "address": "127.0.0.1", "port": 0}},
        {{"name": "seed", "address": "127.0.0.1", "port": 0, "framing": "{seed_framing}"}}],
        {settings}}}"#
    )
}

/// A classic client: writes each piece (pausing between them), never
/// half-closes, and reads until the daemon closes, for at most `limit`
/// (`None` if no answer came by then).
fn classic(addr: SocketAddr, pieces: &[&[u8]], limit: Duration) -> Option<Vec<u8>> {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_nodelay(true).unwrap();
    for (i, piece) in pieces.iter().enumerate() {
        if i > 0 {
            std::thread::sleep(Duration::from_millis(300));
        }
        stream.write_all(piece).unwrap();
    }
    stream.set_read_timeout(Some(limit)).unwrap();
    let mut answer = Vec::new();
    match stream.read_to_end(&mut answer) {
        Ok(_) => Some(answer),
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => None,
        Err(e) => panic!("reading the answer: {e}"),
    }
}

const LONG: Duration = Duration::from_secs(20);

#[test]
fn first_read_framing_cuts_a_request_written_in_two_pieces_after_the_first() {
    let (_d, _, seed) = two_listeners(HUGE_GAP);
    let answer = classic(seed, &[b"cat:abc", b"def"], LONG);
    assert_eq!(
        answer.as_deref(),
        Some(&b"abc"[..]),
        "cut after the first read"
    );
    // A read without a `:` does not end it: the first one with a `:` does.
    let answer = classic(seed, &[b"ca", b"t:xyz", b"later"], LONG);
    assert_eq!(answer.as_deref(), Some(&b"xyz"[..]));
    // A half-close still ends a request at once, whatever was written.
    let mut stream = TcpStream::connect(seed).unwrap();
    stream.write_all(b"cat:whole").unwrap();
    stream.shutdown(std::net::Shutdown::Write).unwrap();
    assert_eq!(read_to_end(&mut stream), b"whole");
}

#[test]
fn first_read_framing_answers_a_one_write_request_without_the_quiet_gap() {
    let (d, quiet, seed) = two_listeners(HUGE_GAP);
    // The default framing waits out the gap (60 s): no answer in 2 s.
    assert_eq!(
        classic(quiet, &[b"cat:abc"], Duration::from_secs(2)),
        None,
        "the default framing must still wait for its gap"
    );
    // First-read: answered, so not after the gap; a module that reads its
    // input, a warm `.js` module (which takes its request whole) and a
    // queue add alike.
    assert_eq!(classic(seed, &[b"cat:abc"], LONG).unwrap(), b"abc");
    assert_eq!(classic(seed, &[b"test:hi"], LONG).unwrap(), b"Test:hi");
    let id = classic(seed, &[b"queue:add:cat:queued"], LONG).unwrap();
    assert!(id.starts_with(b"id:"), "{:?}", String::from_utf8_lossy(&id));
    // Control requests end as they always do.
    assert_eq!(classic(seed, &[b"helo"], LONG).unwrap(), b"oleh");
    drop(d);
}

#[test]
fn check_config_notes_first_read_framing_without_failing() {
    let dir = TempDir::new("first-read-check");
    let modules = dir.path().join("modules");
    std::fs::create_dir(&modules).unwrap();
    write_module(&modules, "cat", CAT);
    let path = dir.path().join("check.config");
    std::fs::write(&path, config("first-read", r#""state_dir": "none""#)).unwrap();
    let o = Command::new(BIN)
        .arg("--check-config")
        .arg("-c")
        .arg(&path)
        .arg("-m")
        .arg(&modules)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{text}");
    assert!(
        text.contains("(seed) ends a classic client's request at the first read that holds a ':'"),
        "{text}"
    );
    assert!(text.contains("cut after the first"), "{text}");
    assert!(text.contains("configuration ok"), "{text}");
    assert!(!text.contains("(quiet) ends"), "{text}");

    std::fs::write(&path, config("first_read", r#""state_dir": "none""#)).unwrap();
    let o = Command::new(BIN)
        .args(["--check-config", "-m"])
        .arg(&modules)
        .arg("-c")
        .arg(&path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{text}");
    assert!(
        text.contains(r#"listener seed: framing "first_read" is neither "quiet" nor "first-read""#),
        "{text}"
    );
}

#[test]
fn a_reload_changes_a_listeners_framing() {
    let (d, _, seed) = two_listeners(HUGE_GAP);
    assert_eq!(classic(seed, &[b"cat:abc"], LONG).unwrap(), b"abc");
    std::fs::write(
        d.dir.path().join("service.config"),
        config("quiet", HUGE_GAP),
    )
    .unwrap();
    d.signal("HUP");
    d.wait_log(&format!(
        "reload: listener {seed} now frames requests quiet"
    ));
    assert_eq!(
        classic(seed, &[b"cat:abc"], Duration::from_secs(2)),
        None,
        "after the reload the gap applies again"
    );
}

/// `len` bytes of data that show where a cut would fall.
fn numbered(len: usize) -> Vec<u8> {
    (0..len).map(|i| b'a' + (i % 26) as u8).collect()
}

#[test]
fn first_read_framing_never_cuts_one_write_larger_than_a_segment() {
    let (d, _, seed) = two_listeners(r#""request_gap_ms": 300, "max_request_bytes": 1048576"#);
    let data = numbered(300 << 10);
    // One write (two would be two pieces, the first cut by this framing).
    let request = [b"cat:".as_slice(), &data].concat();
    // Half-closed: ended by the half-close, whole.
    let mut stream = TcpStream::connect(seed).unwrap();
    stream.write_all(&request).unwrap();
    stream.shutdown(std::net::Shutdown::Write).unwrap();
    let answer = read_to_end(&mut stream);
    assert_eq!(answer.len(), data.len(), "a half-closed request was cut");
    assert!(answer == data);
    // A classic client's one write: ended by its gap, whole.
    let answer = classic(seed, &[&request], LONG).unwrap();
    assert_eq!(answer.len(), data.len(), "one large write was cut");
    // A queue job keeps all of it.
    let request = [b"queue:add:cat:".as_slice(), &data].concat();
    let id = classic(seed, &[&request], LONG).unwrap();
    let id = String::from_utf8(id).unwrap();
    let id = id.strip_prefix("id:").expect("an id");
    let got = classic(seed, &[format!("queue:get:id:{id}").as_bytes()], LONG).unwrap();
    assert_eq!(got.len(), data.len(), "the queued job's data was cut");
    // Over the limit: refused, not run on its first segments.
    let request = [b"cat:".as_slice(), &numbered(2 << 20)].concat();
    let mut stream = TcpStream::connect(seed).unwrap();
    let _ = stream.write_all(&request);
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let answer = read_to_end(&mut stream);
    assert!(
        answer.starts_with(b"413"),
        "{} {:?}",
        answer.len(),
        String::from_utf8_lossy(&answer[..answer.len().min(80)])
    );
    drop(d);
}

/// Answers `echo:<data>:<its pid>` at once or after a few milliseconds, so
/// requests from many clients overlap on the worker and in its waiting line.
const ECHO: &str = "exports.TExecute = function (parts, client) {
  const wait = parts[1].length % 3;
  const answer = 'echo:' + parts[1] + ':' + process.pid;
  if (wait === 0) client.end(answer);
  else setTimeout(() => client.end(answer), wait);
};
";

/// Classic clients, `clients` at once, each asking `rounds` times with a
/// request of its own: the answers, by request.
fn crowd(addr: SocketAddr, clients: usize, rounds: usize, module: &str) -> Vec<(String, String)> {
    let threads: Vec<_> = (0..clients)
        .map(|c| {
            let module = module.to_string();
            std::thread::spawn(move || {
                (0..rounds)
                    .map(|r| {
                        let data = format!("c{c}-{}", "x".repeat(r));
                        let request = format!("{module}:{data}");
                        let answer = classic(addr, &[request.as_bytes()], LONG)
                            .unwrap_or_else(|| panic!("no answer to {request}"));
                        (data, String::from_utf8_lossy(&answer).into_owned())
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect()
}

#[test]
fn many_classic_clients_on_first_read_framing_share_one_worker_each_with_its_own_answer() {
    let (d, _, seed) = two_listeners(r#""node_workers": 1"#);
    std::fs::write(d.modules.join("echo.js"), ECHO).unwrap();
    let answers = crowd(seed, 32, 4, "echo");
    assert_eq!(answers.len(), 128);
    let pid = answers[0].1.rsplit(':').next().unwrap().to_string();
    for (data, answer) in &answers {
        assert_eq!(
            answer,
            &format!("echo:{data}:{pid}"),
            "byte for byte, its own"
        );
    }
    // One worker served them all (one pid), and a queue job on it after
    // those direct calls still has a receipt with the worker's CPU and
    // memory.
    let id = String::from_utf8(classic(seed, &[b"queue:add:echo:q"], LONG).unwrap()).unwrap();
    let get = format!("queue:get:{id}");
    assert_eq!(
        String::from_utf8(classic(seed, &[get.as_bytes()], LONG).unwrap()).unwrap(),
        format!("echo:q:{pid}")
    );
    let info = format!("queue:info:{id}");
    let info = String::from_utf8(classic(seed, &[info.as_bytes()], LONG).unwrap()).unwrap();
    let rss = info
        .lines()
        .find_map(|l| l.strip_prefix("max_rss_kib: "))
        .unwrap_or_else(|| panic!("no max_rss_kib in:\n{info}"));
    assert!(rss.parse::<u64>().unwrap() > 0, "{info}");
    assert!(info.contains("cpu_user_ms: "), "{info}");
}

#[test]
fn a_worker_that_dies_with_first_read_clients_waiting_fails_only_its_own_job() {
    let (d, _, seed) = two_listeners(r#""node_workers": 1"#);
    std::fs::write(
        d.modules.join("dies.js"),
        "exports.TExecute = function (parts, client) {
  if (parts[1] === 'now') return setTimeout(() => process.exit(3), 300);
  client.end('ok:' + parts[1]);
};
",
    )
    .unwrap();
    assert_eq!(classic(seed, &[b"dies:warm"], LONG).unwrap(), b"ok:warm");
    let dying = std::thread::spawn(move || classic(seed, &[b"dies:now"], LONG));
    // The others arrive while the dying job holds the only worker.
    std::thread::sleep(Duration::from_millis(100));
    let answers = crowd(seed, 8, 2, "dies");
    assert_eq!(
        dying.join().unwrap().as_deref(),
        Some(&b"500: Module dies failed (exit status 3)"[..])
    );
    for (data, answer) in &answers {
        assert_eq!(answer, &format!("ok:{data}"));
    }
}
