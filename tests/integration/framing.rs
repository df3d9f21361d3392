//! Where a request ends: at half-close, or after a quiet gap for clients
//! that keep their write side open.

use std::io::Write;
use std::time::{Duration, Instant};

use crate::util::{read_to_end, Setup};

const CAT: &str = "#!/bin/sh\nexec cat\n";

#[test]
fn half_close_ends_the_request_at_once() {
    let d = Setup::new()
        .module("cat", CAT)
        .settings(r#""request_gap_ms": 5000"#)
        .start();
    let start = Instant::now();
    assert_eq!(d.ask_str("cat:abc"), "abc");
    assert_eq!(d.ask_str("queue:check:id:99"), "404: Unknown job");
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "waited for the gap: {:?}",
        start.elapsed()
    );
}

#[test]
fn a_quiet_gap_ends_the_request_of_a_classic_client() {
    let d = Setup::new()
        .module("cat", CAT)
        .settings(r#""request_gap_ms": 300"#)
        .start();
    let start = Instant::now();
    assert_eq!(d.ask_classic(b"cat:xyz"), b"xyz");
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(300),
        "answered before the gap: {took:?}"
    );
    assert_eq!(d.ask_classic(b"queue:check:id:1"), b"404: Unknown job");
}

#[test]
fn a_payload_written_in_many_small_writes_arrives_whole() {
    let d = Setup::new()
        .module("cat", CAT)
        .settings(r#""request_gap_ms": 1500"#)
        .start();
    let mut stream = d.connect();
    stream.set_nodelay(true).unwrap();
    let mut expected = Vec::new();
    stream.write_all(b"ca").unwrap();
    std::thread::sleep(Duration::from_millis(30));
    stream.write_all(b"t:").unwrap();
    for i in 0..40u32 {
        let piece = format!("piece {i};");
        stream.write_all(piece.as_bytes()).unwrap();
        expected.extend_from_slice(piece.as_bytes());
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(read_to_end(&mut stream), expected);
}

#[test]
fn a_module_that_does_not_read_answers_without_waiting_for_the_gap() {
    let d = Setup::new()
        .module("test", "#!/bin/sh\nprintf Test\n")
        .settings(r#""request_gap_ms": 5000"#)
        .start();
    let start = Instant::now();
    assert_eq!(d.ask_classic(b"test:hello"), b"Test");
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "waited for the gap: {:?}",
        start.elapsed()
    );
}

#[test]
fn large_payloads_stream_through() {
    let d = Setup::new()
        .module("cat", CAT)
        .settings(r#""max_request_bytes": 20000000, "max_output_bytes": 20000000"#)
        .start();
    let data: Vec<u8> = (0..8_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let mut request = b"cat:".to_vec();
    request.extend_from_slice(&data);
    assert!(d.ask(&request) == data, "8 MB did not come back intact");
}

#[test]
fn an_overlong_head_is_answered_without_waiting_for_its_end() {
    // A head that can name no module is answered as soon as it is too long,
    // while the client is still sending, instead of being scanned again at
    // every read until it stops.
    let d = Setup::new()
        .module("test", "#!/bin/sh\nprintf Test\n")
        .settings(r#""request_gap_ms": 10000"#)
        .start();
    let mut s = d.connect();
    s.set_nodelay(true).unwrap();
    std::io::Write::write_all(&mut s, &[b'a'; 16 * 1024]).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let mut answer = [0u8; 64];
    let n = std::io::Read::read(&mut s, &mut answer).unwrap();
    assert_eq!(&answer[..n], b"400: Unknown request");
    assert_eq!(d.ask_str("test:"), "Test");
}

#[test]
fn bytes_after_a_request_ended_by_its_gap_are_counted_and_logged_not_silently_dropped() {
    // The derived gap ends a one-write request after 1 ms of quiet: a
    // client that writes the rest later, even if it then half-closes, had
    // its request cut. That must be visible.
    let d = Setup::new().module("cat", CAT).default_log_level().start();
    let mut stream = d.connect();
    stream.set_nodelay(true).unwrap();
    stream.write_all(b"cat:abc").unwrap();
    std::thread::sleep(Duration::from_millis(100));
    stream.write_all(b"def").unwrap();
    stream.shutdown(std::net::Shutdown::Write).unwrap();
    assert_eq!(read_to_end(&mut stream), b"abc");
    d.wait_log("3 bytes arrived after its request had ended");
    let stats = d.ask_str("queue:stats");
    assert!(stats.contains("total_requests_cut: 1\n"), "{stats}");
    // A request written at once is not counted.
    assert_eq!(d.ask_classic(b"cat:whole"), b"whole");
    let stats = d.ask_str("queue:stats");
    assert!(stats.contains("total_requests_cut: 1\n"), "{stats}");
}
