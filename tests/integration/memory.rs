//! Memory after load: what a load made the daemon allocate goes back once
//! the load has subsided (tables shrink, the heap is trimmed), instead of
//! staying at the peak. The curve itself is a benchmark (`bench/memory.sh`).

use std::time::{Duration, Instant};

use crate::util::Setup;

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

#[test]
fn memory_a_load_took_goes_back_after_it() {
    // Each helo leaves deadlines that come due up to the idle timeout
    // (10 s) later: 30,000 of them take megabytes at the peak.
    let d = Setup::new().default_log_level().start();
    assert_eq!(d.ask_str("helo"), "oleh");
    let idle = rss_kib(d.pid());
    let clients: Vec<_> = (0..8)
        .map(|_| {
            let addr = d.addr;
            std::thread::spawn(move || {
                for _ in 0..3750 {
                    let mut s = std::net::TcpStream::connect(addr).unwrap();
                    std::io::Write::write_all(&mut s, b"helo").unwrap();
                    s.shutdown(std::net::Shutdown::Write).unwrap();
                    assert_eq!(crate::util::read_to_end(&mut s), b"oleh");
                }
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    let peak = rss_kib(d.pid());
    assert!(
        peak > idle + 2048,
        "the load should take memory: idle {idle} KiB, peak {peak} KiB"
    );
    // Given back within a minute (the deadlines expire within 10 s, then
    // the load has subsided): below the middle of idle and peak.
    let middle = (idle + peak) / 2;
    let start = Instant::now();
    let mut now = peak;
    while now > middle {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "memory kept after the load: idle {idle} KiB, peak {peak} KiB, now {now} KiB"
        );
        std::thread::sleep(Duration::from_millis(500));
        now = rss_kib(d.pid());
    }
}
