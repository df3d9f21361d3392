//! Slow clients cannot hold the door: a request has an absolute deadline and
//! a minimum rate after its first seconds, and when the connection table is
//! nearly full the slowest reader makes room for a new client.

use std::io::Write;
use std::net::TcpStream;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::util::{read_to_end, Daemon, Setup};

const UPPER: &str = "#!/bin/sh\nexec tr a-z A-Z\n";

/// A client that sends `head`, then one byte every 5 ms until the daemon
/// answers; returns the answer and how long it took. (The tests fix a long
/// quiet gap, so that only the rules under test can end these requests.)
fn dripping(d: &Daemon, head: &'static [u8]) -> JoinHandle<(String, Duration)> {
    let mut stream = d.connect();
    std::thread::spawn(move || {
        let start = Instant::now();
        stream.set_nodelay(true).unwrap();
        stream.write_all(head).unwrap();
        let mut reader = stream.try_clone().unwrap();
        let answer = std::thread::spawn(move || read_to_end(&mut reader));
        while !answer.is_finished() && start.elapsed() < Duration::from_secs(20) {
            if stream.write_all(b"z").is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let answer = String::from_utf8(answer.join().unwrap()).unwrap();
        (answer, start.elapsed())
    })
}

#[test]
fn a_dripping_client_is_cut_off_below_the_minimum_rate() {
    let d = Setup::new()
        .module("upper", UPPER)
        .settings(
            r#""request_min_rate": 500, "request_min_rate_after_secs": 1, "request_gap_ms": 2000"#,
        )
        .start();
    let (answer, took) = dripping(&d, b"upper:").join().unwrap();
    assert_eq!(answer, "408: Request timeout");
    assert!(took < Duration::from_secs(5), "{took:?}");
    d.wait_log("request too slow");
    // A client at a fair rate is served.
    assert_eq!(d.ask_classic(b"upper:abc"), b"ABC");
}

#[test]
fn a_request_must_arrive_within_its_deadline() {
    let d = Setup::new()
        .module("upper", UPPER)
        .settings(r#""request_min_rate": 0, "request_timeout_secs": 1, "request_gap_ms": 2000"#)
        .start();
    let (answer, took) = dripping(&d, b"upper:").join().unwrap();
    assert_eq!(answer, "408: Request timeout");
    assert!(took >= Duration::from_millis(900), "{took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
}

#[test]
fn a_nearly_full_table_closes_its_slowest_readers_first() {
    let d = Setup::new()
        .module("test", "#!/bin/sh\nprintf Test\n")
        .module("upper", UPPER)
        .settings(r#""max_connections": 8, "request_min_rate": 0, "request_gap_ms": 2000"#)
        .start();
    // One silent connection, then drippers: the silent one is the slowest.
    let silent = d.connect();
    std::thread::sleep(Duration::from_millis(50));
    let drippers: Vec<_> = (0..7).map(|_| dripping(&d, b"upper:")).collect();
    std::thread::sleep(Duration::from_millis(1300));
    // The table is full; a new client still gets in.
    assert_eq!(d.ask_str("test:"), "Test");
    let mut silent = silent;
    assert_eq!(read_to_end(&mut silent), b"408: Request timeout");
    d.wait_log("closed to make room");
    // Each further client closes one more slow reader.
    for _ in 0..3 {
        assert_eq!(d.ask_str("test:"), "Test");
    }
    drop(d);
    for dripper in drippers {
        let _ = dripper.join();
    }
}

#[test]
fn a_busy_connection_is_never_closed_to_make_room() {
    let d = Setup::new()
        .module("slow", "#!/bin/sh\nsleep 3\nprintf done\n")
        .module("test", "#!/bin/sh\nprintf Test\n")
        .settings(r#""max_connections": 2"#)
        .start();
    let mut waiting: Vec<TcpStream> = (0..2)
        .map(|_| {
            let mut s = d.connect();
            s.write_all(b"slow:").unwrap();
            s.shutdown(std::net::Shutdown::Write).unwrap();
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1300));
    // Refused at accept, best effort: read the answer before sending, so
    // that no request bytes turn the daemon's close into a reset.
    let mut third = d.connect();
    assert_eq!(read_to_end(&mut third), b"503: Too many connections");
    for s in &mut waiting {
        assert_eq!(read_to_end(s), b"done");
    }
}
