//! The soak and fault test: a mix of good requests, garbage, slow clients,
//! clients that vanish, misbehaving modules, a UDP flood and many idle
//! connections, all at once; then the daemon must still serve, with no
//! zombie, no leaked descriptor, no module process left behind, its memory
//! back near where it started, and every accepted queue job accounted for.
//!
//! The suite runs it small. `bench/soak.sh [SCALE]` runs it larger
//! (`BGJOB_SOAK_SCALE`, default 1; 10,000 idle connections from scale 10).

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::util::{wait_for, Setup};

fn scale() -> u64 {
    std::env::var("BGJOB_SOAK_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1)
}

/// A small deterministic generator for garbage.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

fn ask(addr: SocketAddr, request: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    s.write_all(request)?;
    s.shutdown(Shutdown::Write)?;
    let mut answer = Vec::new();
    s.read_to_end(&mut answer)?;
    Ok(answer)
}

/// What a checked request got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Got {
    /// The expected answer.
    Answer,
    /// `503: Busy`: the waiting line was full. An answer, but not the one
    /// asked for, so counted apart and held to what the load explains.
    Refused,
    /// Anything else (printed).
    Wrong,
}

fn judge(request: &[u8], got: std::io::Result<Vec<u8>>, expected: &[u8]) -> Got {
    match got {
        Ok(answer) if answer == expected => Got::Answer,
        Ok(answer) if answer == b"503: Busy" => Got::Refused,
        other => {
            let got = other.map(|a| String::from_utf8_lossy(&a[..a.len().min(80)]).into_owned());
            eprintln!(
                "soak: {:?} got {got:?}",
                String::from_utf8_lossy(&request[..request.len().min(40)])
            );
            Got::Wrong
        }
    }
}

/// Counts of what checked requests got.
#[derive(Default)]
struct Tally {
    refused: AtomicU64,
    wrong: AtomicU64,
}

impl Tally {
    fn add(&self, got: Got) {
        match got {
            Got::Answer => {}
            Got::Refused => {
                self.refused.fetch_add(1, Ordering::Relaxed);
            }
            Got::Wrong => {
                self.wrong.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").parse().ok())
        .unwrap_or(0)
}

/// Processes in the daemon's module process groups, found through /proc
/// (an orphaned grandchild is no longer the daemon's child).
fn module_processes(marker: &str) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(marker))
        })
        .collect()
}

#[test]
fn soak_with_faults_loses_nothing() {
    let scale = scale();
    // A sleep of 300.<our pid> seconds: valid for sleep, unique in /proc.
    let marker = format!("300.{}", std::process::id());
    let d = Setup::new()
        .module("ok", "#!/bin/sh\nprintf ok\n")
        .module("cat", "#!/bin/sh\nexec cat\n")
        .module("hang", &format!("#!/bin/sh\nexec sleep {marker}\n"))
        .module("crash", "#!/bin/sh\nkill -9 $$\n")
        .module("grandchild", &format!("#!/bin/sh\nsleep {marker} &\nprintf ok\n"))
        .module("flood", "#!/bin/sh\nexec yes flood\n")
        .module("noread", "#!/bin/sh\nprintf ok\n")
        .settings(
            r#""job_timeout_secs": 1, "kill_grace_ms": 200, "max_output_bytes": 65536,
               "max_request_bytes": 1048576, "max_connections": 30000, "max_connections_per_client": 30000, "max_waiting_per_client": 2000,
               "idle_timeout_secs": 2, "max_waiting": 2000, "max_jobs": 8"#,
        )
        .start();
    let addr = d.addr;
    // Let start-up settle (the journal is rewritten once), then measure.
    thread::sleep(Duration::from_millis(300));
    assert_eq!(d.ask_str("helo"), "oleh");
    let (fds_before, rss_before) = (d.fd_count(), rss_kib(d.pid()));
    let started = Instant::now();

    let tried = Arc::new(AtomicU64::new(0));
    let tally = Arc::new(Tally::default());
    let mut workers = Vec::new();
    let spawn = |workers: &mut Vec<thread::JoinHandle<()>>, f: Box<dyn FnOnce() + Send>| {
        workers.push(thread::spawn(f))
    };

    // Good requests, checked.
    for w in 0..4 {
        let (tried, tally) = (tried.clone(), tally.clone());
        spawn(
            &mut workers,
            Box::new(move || {
                for i in 0..50 * scale {
                    let data = format!("{w}-{i}");
                    tried.fetch_add(2, Ordering::Relaxed);
                    tally.add(judge(b"ok:", ask(addr, b"ok:"), b"ok"));
                    let request = format!("cat:{data}").into_bytes();
                    tally.add(judge(&request, ask(addr, &request), data.as_bytes()));
                }
            }),
        );
    }
    // Garbage: random bytes, each must get an answer (an error is fine).
    let garbage = Arc::new(AtomicU64::new(0));
    {
        let (garbage, tally) = (garbage.clone(), tally.clone());
        spawn(
            &mut workers,
            Box::new(move || {
                let mut rng = Lcg(7);
                for _ in 0..100 * scale {
                    let len = (rng.next() % 300) as usize;
                    let request = rng.bytes(len);
                    garbage.fetch_add(1, Ordering::Relaxed);
                    if ask(addr, &request).is_err() {
                        tally.add(Got::Wrong);
                    }
                }
            }),
        );
    }
    // Misbehaving modules, with the answers they must get.
    let faults = Arc::new(AtomicU64::new(0));
    {
        let (faults, tally) = (faults.clone(), tally.clone());
        spawn(
            &mut workers,
            Box::new(move || {
                let big = vec![b'z'; 512 * 1024];
                for _ in 0..3 * scale {
                    let mut noread = b"noread:".to_vec();
                    noread.extend_from_slice(&big);
                    let cases: [(&[u8], &[u8]); 5] = [
                        (b"hang:", b"504: Module hang timed out"),
                        (b"crash:", b"500: Module crash failed (killed by signal 9)"),
                        (b"grandchild:", b"ok"),
                        (
                            b"flood:",
                            b"500: Module flood failed (output over 65536 bytes)",
                        ),
                        (&noread, b"ok"),
                    ];
                    for (request, expected) in cases {
                        faults.fetch_add(1, Ordering::Relaxed);
                        tally.add(judge(request, ask(addr, request), expected));
                    }
                }
            }),
        );
    }
    // Clients that vanish mid-request and mid-answer, and slow ones.
    {
        let faults = faults.clone();
        spawn(
            &mut workers,
            Box::new(move || {
                for i in 0..20 * scale {
                    faults.fetch_add(3, Ordering::Relaxed);
                    if let Ok(mut s) = TcpStream::connect(addr) {
                        let _ = s.write_all(b"cat:half a req");
                    }
                    if let Ok(mut s) = TcpStream::connect(addr) {
                        let _ = s.write_all(b"flood:");
                        let _ = s.shutdown(Shutdown::Write);
                        let mut some = [0u8; 100];
                        let _ = s.read(&mut some);
                    }
                    if i % 4 == 0 {
                        // A slow client: a byte now and then, for longer than the idle timeout.
                        if let Ok(mut s) = TcpStream::connect(addr) {
                            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                            for _ in 0..3 {
                                let _ = s.write_all(b"o");
                                thread::sleep(Duration::from_millis(700));
                            }
                            let mut rest = Vec::new();
                            let _ = s.read_to_end(&mut rest);
                        }
                    }
                }
            }),
        );
    }
    // A UDP flood.
    let datagrams = 1000 * scale;
    {
        spawn(
            &mut workers,
            Box::new(move || {
                let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
                for i in 0..datagrams {
                    let _ = socket.send_to(format!("ok:{i}").as_bytes(), addr);
                }
            }),
        );
    }
    // Idle connections, held for a while.
    let idle = if scale >= 10 {
        10_000
    } else {
        1_000 * scale as usize
    };
    {
        spawn(
            &mut workers,
            Box::new(move || {
                let held: Vec<TcpStream> = (0..idle)
                    .filter_map(|_| TcpStream::connect(addr).ok())
                    .collect();
                thread::sleep(Duration::from_millis(1500));
                drop(held);
            }),
        );
    }
    // Queue jobs: every accepted one must be fetchable.
    let accepted: Vec<String> = (0..50 * scale)
        .filter_map(|i| {
            let answer =
                String::from_utf8(ask(addr, format!("queue:add:cat:job {i}").as_bytes()).ok()?)
                    .ok()?;
            answer
                .starts_with("id:")
                .then(|| format!("{answer}|job {i}"))
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let mut lost = 0;
    for entry in &accepted {
        let (id, data) = entry.split_once('|').unwrap();
        if ask(addr, format!("queue:get:{id}").as_bytes())
            .ok()
            .as_deref()
            != Some(data.as_bytes())
        {
            lost += 1;
        }
    }

    // Afterwards: still serving, nothing left behind.
    assert_eq!(d.ask_str("helo"), "oleh");
    wait_for("every module process gone", || d.children().is_empty());
    wait_for("no grandchild left running", || {
        module_processes(&marker).is_empty()
    });
    wait_for("descriptors back", || d.fd_count() <= fds_before);
    let rss_after = rss_kib(d.pid());
    let stats = d.ask_str("queue:stats");
    let (refused, wrong) = (
        tally.refused.load(Ordering::Relaxed),
        tally.wrong.load(Ordering::Relaxed),
    );
    // What the load can keep waiting at once: one job per client thread
    // (six of them ask one request at a time), every queue job, and the
    // UDP budget (64). Below the waiting line (2000, and 2000 per client:
    // every client here is 127.0.0.1), no `503: Busy` is explained.
    let could_wait = 6 + 50 * scale + 64;
    let explained = if could_wait >= 2000 { u64::MAX } else { 0 };
    println!(
        "soak scale {scale}: {} s, {} good requests, {} garbage, {} faults, {datagrams} datagrams, {idle} idle connections, {} queue jobs; \
         refused {refused} (explained by the load: {}), wrong answers {wrong}, lost queue jobs {lost}; rss {rss_before} -> {rss_after} KiB\n{stats}",
        started.elapsed().as_secs(),
        tried.load(Ordering::Relaxed),
        garbage.load(Ordering::Relaxed),
        faults.load(Ordering::Relaxed),
        accepted.len(),
        if explained == u64::MAX { "any".to_string() } else { explained.to_string() },
    );
    assert_eq!(wrong, 0, "every checked request got its answer");
    assert!(
        refused <= explained,
        "{refused} checked requests refused with 503: Busy, which a waiting line of 2000 does not explain for at most {could_wait} jobs waiting"
    );
    assert_eq!(lost, 0, "every accepted queue job accounted for");
    assert_eq!(
        accepted.len() as u64,
        50 * scale,
        "every queue job accepted: the load does not fill the waiting line"
    );
    assert!(
        rss_after < rss_before + 16 * 1024,
        "memory back near its start: {rss_before} -> {rss_after} KiB"
    );
}
