//! Memory after load: what a load made the daemon allocate goes back once
//! the load has subsided (tables shrink, the heap is trimmed), instead of
//! staying at the peak. The curve itself is a benchmark (`bench/memory.sh`).

use std::time::{Duration, Instant};

use crate::util::{Daemon, Setup};

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
    fall_to(
        middle,
        || rss_kib(d.pid()),
        |now| {
            format!("memory kept after the load: idle {idle} KiB, peak {peak} KiB, now {now} KiB")
        },
    );
}

/// Polls until the daemon's RSS is at most `bound` KiB, for up to a minute.
fn wait_rss_at_most(d: &Daemon, bound: u64, what: &str) {
    fall_to(
        bound,
        || rss_kib(d.pid()),
        |now| format!("memory kept after {what}: now {now} KiB, expected at most {bound} KiB"),
    );
}

/// Polls `read` (KiB) every half second until it is at most `bound`,
/// failing with `kept(now)` after a minute.
fn fall_to(bound: u64, read: impl Fn() -> u64, kept: impl Fn(u64) -> String) {
    let start = Instant::now();
    let mut now = read();
    while now > bound {
        assert!(start.elapsed() < Duration::from_secs(60), "{}", kept(now));
        std::thread::sleep(Duration::from_millis(500));
        now = read();
    }
}

#[test]
fn memory_a_queue_load_took_goes_back_after_its_results_are_fetched() {
    let d = Setup::new()
        .default_log_level()
        .module("test", "#!/bin/sh\nprintf Test\n")
        .settings(r#""max_waiting": 20000, "max_waiting_per_client": 20000"#)
        .start();
    assert_eq!(d.ask_str("helo"), "oleh");
    let idle = rss_kib(d.pid());
    // 8 clients each add 600 jobs, then fetch them: the results are held
    // together at the peak, and the receipts of the last 1,024 outlive it.
    let clients: Vec<_> = (0..8)
        .map(|_| {
            let addr = d.addr;
            std::thread::spawn(move || {
                let ask = |request: &str| {
                    let mut s = std::net::TcpStream::connect(addr).unwrap();
                    std::io::Write::write_all(&mut s, request.as_bytes()).unwrap();
                    s.shutdown(std::net::Shutdown::Write).unwrap();
                    String::from_utf8(crate::util::read_to_end(&mut s)).unwrap()
                };
                let ids: Vec<String> = (0..600).map(|_| ask("queue:add:test:")).collect();
                for id in ids {
                    assert!(id.starts_with("id:"), "{id}");
                    assert_eq!(ask(&format!("queue:get:{id}")), "Test");
                }
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    let peak = rss_kib(d.pid()).max(idle);
    assert!(
        peak > idle + 4096,
        "the load should take memory: idle {idle} KiB, peak {peak} KiB"
    );
    // What outlives the load is copied apart from it, so at least half
    // of what it took goes back (without the copy, about a third did).
    let what = format!("the queue load (idle {idle} KiB, peak {peak} KiB)");
    wait_rss_at_most(&d, idle + (peak - idle) / 2, &what);
}

/// KiB resident in the daemon's own executable's mappings, and whether
/// its code mapping is registered for write protection (`uw`, which turns
/// fault around off for it).
fn binary_kib(pid: u32) -> (u64, bool) {
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    let exe = exe.to_str().unwrap();
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap();
    let (mut kib, mut page_by_page, mut ours, mut code) = (0, false, false, false);
    for line in smaps.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() >= 5 && fields[0].contains('-') && fields[1].len() == 4 {
            ours = fields.get(5) == Some(&exe);
            code = fields[1] == "r-xp";
        } else if ours && fields.first() == Some(&"Rss:") {
            kib += fields[1].parse::<u64>().unwrap();
        } else if ours && code && fields.first() == Some(&"VmFlags:") {
            page_by_page |= fields.contains(&"uw");
        }
    }
    (kib, page_by_page)
}

#[test]
fn memory_the_code_of_a_few_jobs_goes_back_once_the_daemon_is_at_rest() {
    // Too few to count as a load (memory.rs gives back after a load of
    // hundreds of live entries): only the rest after it sheds the code.
    let d = Setup::new()
        .module("test", "#!/bin/sh\nprintf Test\n")
        .start();
    for _ in 0..20 {
        assert_eq!(d.ask_str("test:"), "Test");
        assert_eq!(d.ask_str("helo"), "oleh");
    }
    let (after, _) = binary_kib(d.pid());
    fall_to(
        after * 3 / 4,
        || binary_kib(d.pid()).0,
        |now| {
            format!(
                "code kept at rest: {now} KiB of the binary resident, {after} KiB after the jobs"
            )
        },
    );
    // Asked again after the rest, the daemon maps what it needs again.
    assert_eq!(d.ask_str("test:"), "Test");
}

/// True if this kernel is Linux 6.7 or later (userfaultfd write
/// protection of file mappings).
fn kernel_has_async_write_protection() -> bool {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    let mut parts = release
        .trim()
        .split(['.', '-'])
        .map(|p| p.parse::<u32>().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0)) >= (6, 7)
}

#[test]
fn memory_code_is_mapped_page_by_page_where_the_kernel_allows() {
    if !kernel_has_async_write_protection() {
        // The machine CI runs on has it: there the figures in the docs
        // depend on it, so it must not go untested.
        assert!(
            std::env::var_os("CI").is_none(),
            "CI's kernel must be Linux 6.7 or later (userfaultfd write protection)"
        );
        eprintln!("skipped: needs Linux 6.7 or later");
        return;
    }
    let d = Setup::new().start();
    assert_eq!(d.ask_str("helo"), "oleh");
    let (kib, page_by_page) = binary_kib(d.pid());
    assert!(
        page_by_page,
        "the code mapping has no `uw` flag ({kib} KiB resident)"
    );
}

/// KiB resident in the daemon's heap.
fn heap_kib(pid: u32) -> u64 {
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap();
    let mut heap = false;
    for line in smaps.lines() {
        if line.contains(" rw-p ") || line.contains(" r--p ") || line.contains(" ---p ") {
            heap = line.ends_with("[heap]");
        } else if let Some(kib) = line.strip_prefix("Rss:").filter(|_| heap) {
            return kib.trim().trim_end_matches("kB").trim().parse().unwrap();
        }
    }
    0
}

#[test]
fn memory_the_heap_holds_no_child_stacks() {
    // The spawn threads' vfork stacks (64 KiB each, zeroed, so resident
    // whole) are mapped apart from the heap: after a job, the debug
    // build's heap holds about 130 KiB here, and 208-244 KiB with them.
    let d = Setup::new()
        .module("test", "#!/bin/sh\nprintf Test\n")
        .start();
    assert_eq!(d.ask_str("test:"), "Test");
    let bound = 176;
    fall_to(
        bound,
        || heap_kib(d.pid()),
        |now| format!("the heap holds {now} KiB, expected at most {bound} KiB"),
    );
}
