//! `bgjob-bench`: a load generator for bgjobd (and any server that answers
//! one request per connection). Loopback only in the shipped scripts.
//!
//! TCP mode: N client threads each connect, send the request, optionally
//! half-close, read to EOF and check the answer, until the request count or
//! the duration is used up. Prints one `key=value` line.
//! UDP mode: sends the datagrams as fast as it can and prints the rate.
//! Idle mode: holds N connections open for a while (for memory figures).
//! Queue-get mode: adds `--requests` queue jobs of `--request` (untimed),
//! waits until all are done, then times fetching them with `queue:get`.
//! Spawn mode: no server; the daemon's vfork spawn path against std's
//! `Command`, alternately, `--rounds` rounds of `--requests` spawns with
//! `--concurrency` in flight; `--as-user` and `--rlimit-cpu` for the user
//! switch and limit of a daemon run as root (see `spawn.rs`).

/// Tallies and percentiles of the client modes.
mod bench;
/// Spawn mode: the vfork path against std's `Command`.
mod spawn;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, UdpSocket};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};

use bench::{Expect, Tally};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Mode {
    Tcp,
    Udp,
    Idle,
    /// A Gearman job server: SUBMIT_JOB of function `--function` with the
    /// request as workload, on one connection per client, waiting for
    /// WORK_COMPLETE (for comparing with a Gearman worker).
    Gearman,
    /// No server: the daemon's `Spawner` (vfork) against `std::process::Command`.
    Spawn,
    /// `queue:add` of `--request` N times (untimed), then `queue:get` of
    /// each, timed.
    QueueGet,
}

/// Load generator for bgjobd.
#[derive(Debug, Parser)]
#[command(name = "bgjob-bench", version)]
struct Args {
    /// Server address.
    #[arg(long, default_value = "127.0.0.1:12341")]
    server: SocketAddr,
    #[arg(long, value_enum, default_value = "tcp")]
    mode: Mode,
    /// Concurrent clients (tcp), connections to hold (idle), or children in
    /// flight (spawn).
    #[arg(short = 'c', long, default_value_t = 8)]
    concurrency: usize,
    /// Requests in all (tcp, udp), or spawns per round and way (spawn).
    #[arg(short = 'n', long, default_value_t = 1000)]
    requests: u64,
    /// Stop after this many seconds even if requests remain (tcp); how long
    /// to hold the connections (idle).
    #[arg(long, default_value_t = 60.0)]
    duration: f64,
    /// The request; `{i}` is replaced by the request's number.
    #[arg(short = 'r', long, default_value = "test:hello")]
    request: String,
    /// The exact answer expected.
    #[arg(long, conflicts_with = "expect_prefix")]
    expect: Option<String>,
    /// The start of the answer expected.
    #[arg(long)]
    expect_prefix: Option<String>,
    /// Half-close after sending (shutdown of the write side), as modern
    /// clients do; without it the client keeps its write side open, as the
    /// seed's PHP examples do.
    #[arg(long)]
    half_close: bool,
    /// Per-request time limit in seconds.
    #[arg(long, default_value_t = 10.0)]
    timeout: f64,
    /// Append this many bytes of data to the request (payload tests).
    #[arg(long, default_value_t = 0)]
    payload_bytes: usize,
    /// The answer must be this many bytes long.
    #[arg(long, conflicts_with_all = ["expect", "expect_prefix"])]
    expect_len: Option<usize>,
    /// The Gearman function to call (gearman mode).
    #[arg(long, default_value = "test")]
    function: String,
    /// Rounds of each way, alternating (spawn).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Run the children as this user, as a root daemon runs modules (spawn;
    /// needs root).
    #[arg(long, value_name = "NAME")]
    as_user: Option<String>,
    /// Set the children's RLIMIT_CPU to this many seconds (spawn).
    #[arg(long, value_name = "SECS")]
    rlimit_cpu: Option<u64>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let expect = match (&args.expect, &args.expect_prefix, args.expect_len) {
        (Some(e), _, _) => Expect::Exactly(e.clone().into_bytes()),
        (_, Some(p), _) => Expect::Prefix(p.clone().into_bytes()),
        (_, _, Some(n)) => Expect::Length(n),
        _ => Expect::Anything,
    };
    match args.mode {
        Mode::Tcp | Mode::Gearman => tcp(&args, expect, Arc::new(Vec::new())),
        Mode::QueueGet => match queued(&args) {
            Ok(ids) => {
                let args = Args {
                    request: "queue:get:{id}".into(),
                    half_close: true,
                    ..args
                };
                tcp(&args, expect, Arc::new(ids))
            }
            Err(e) => {
                eprintln!("bgjob-bench: queueing the jobs: {e}");
                ExitCode::from(1)
            }
        },
        Mode::Udp => udp(&args),
        Mode::Idle => idle(&args),
        Mode::Spawn => {
            let options = spawn::Options {
                as_user: args.as_user.clone(),
                rlimit_cpu: args.rlimit_cpu,
            };
            spawn::run(
                args.requests as usize,
                args.rounds,
                args.concurrency,
                &options,
            )
        }
    }
}

/// Adds the jobs and waits until each is done; their `id:<n>`s.
fn queued(args: &Args) -> std::io::Result<Vec<String>> {
    let timeout = Duration::from_secs_f64(args.timeout);
    let mut ids = Vec::new();
    for i in 0..args.requests {
        let request = format!("queue:add:{}", args.request.replace("{i}", &i.to_string()));
        let answer = once(args.server, request.as_bytes(), true, timeout)?;
        let answer = String::from_utf8_lossy(&answer).into_owned();
        if !answer.starts_with("id:") {
            return Err(std::io::Error::other(answer));
        }
        ids.push(answer);
    }
    for id in &ids {
        let check = format!("queue:check:{id}");
        while once(args.server, check.as_bytes(), true, timeout)? != b"2" {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    Ok(ids)
}

fn tcp(args: &Args, expect: Expect, ids: Arc<Vec<String>>) -> ExitCode {
    let next = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs_f64(args.duration);
    let timeout = Duration::from_secs_f64(args.timeout);
    let start = Instant::now();
    let workers: Vec<_> = (0..args.concurrency.max(1))
        .map(|_| {
            let (next, expect, request) = (next.clone(), expect.clone(), args.request.clone());
            let ids = ids.clone();
            let (server, total, half_close, payload) = (
                args.server,
                args.requests,
                args.half_close,
                args.payload_bytes,
            );
            let (gearman, function) = (matches!(args.mode, Mode::Gearman), args.function.clone());
            std::thread::spawn(move || {
                let mut tally = Tally::default();
                let mut connection: Option<TcpStream> = None;
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total || Instant::now() > deadline {
                        return tally;
                    }
                    let mut request = request.replace("{i}", &i.to_string());
                    if let Some(id) = ids.get(i as usize) {
                        request = request.replace("{id}", id);
                    }
                    let mut request = request.into_bytes();
                    request.resize(request.len() + payload, b'x');
                    let began = Instant::now();
                    let answer = if gearman {
                        gearman_job(&mut connection, server, &function, &request, timeout)
                    } else {
                        once(server, &request, half_close, timeout)
                    };
                    match answer {
                        Ok(answer) => {
                            tally.latencies.push(began.elapsed());
                            if !expect.accepts(&answer) {
                                tally.wrong += 1;
                            }
                        }
                        Err(_) => tally.errors += 1,
                    }
                }
            })
        })
        .collect();
    let mut tally = Tally::default();
    for w in workers {
        tally.merge(w.join().expect("client thread"));
    }
    let summary = tally.summary(start.elapsed());
    println!("{}", summary.line());
    if summary.errors + summary.wrong > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn once(
    server: SocketAddr,
    request: &[u8],
    half_close: bool,
    timeout: Duration,
) -> std::io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect_timeout(&server, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let send = |mut stream: &TcpStream| -> std::io::Result<()> {
        stream.write_all(request)?;
        if half_close {
            stream.shutdown(Shutdown::Write)?;
        }
        Ok(())
    };
    // Room for an echo of a payload at hand, as bench/floor.c's reader has.
    let mut answer = Vec::with_capacity(if request.len() > 1 << 20 {
        request.len()
    } else {
        0
    });
    let read = if request.len() > 1 << 20 {
        // A payload is written while the answer is read, as a pipe to
        // `cat` is (bench/floor.c): a module that answers as it reads
        // would otherwise wait for a client that waits for it.
        std::thread::scope(|scope| {
            let writer = scope.spawn(|| send(&stream));
            let read = (&stream).read_to_end(&mut answer);
            writer.join().expect("writer thread")?;
            read
        })
    } else {
        send(&stream)?;
        stream.read_to_end(&mut answer)
    };
    match read {
        Ok(_) => Ok(answer),
        // A server whose child never read the request resets the connection
        // after answering (unread input at close): what arrived before the
        // reset is the answer, and the answer check judges it.
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset && !answer.is_empty() => {
            Ok(answer)
        }
        Err(e) => Err(e),
    }
}

/// One Gearman job on a kept connection: SUBMIT_JOB, then packets until
/// WORK_COMPLETE (its result is the answer) or WORK_FAIL.
fn gearman_job(
    connection: &mut Option<TcpStream>,
    server: SocketAddr,
    function: &str,
    workload: &[u8],
    timeout: Duration,
) -> std::io::Result<Vec<u8>> {
    const SUBMIT_JOB: u32 = 7;
    const WORK_COMPLETE: u32 = 13;
    const WORK_FAIL: u32 = 14;
    if connection.is_none() {
        let stream = TcpStream::connect_timeout(&server, timeout)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_nodelay(true)?;
        *connection = Some(stream);
    }
    let stream = connection.as_mut().expect("connected");
    let mut data = function.as_bytes().to_vec();
    data.extend_from_slice(b"\0\0");
    data.extend_from_slice(workload);
    let mut packet = b"\0REQ".to_vec();
    packet.extend_from_slice(&SUBMIT_JOB.to_be_bytes());
    packet.extend_from_slice(&(data.len() as u32).to_be_bytes());
    packet.extend_from_slice(&data);
    let result = (|| {
        stream.write_all(&packet)?;
        loop {
            let mut header = [0u8; 12];
            stream.read_exact(&mut header)?;
            let kind = u32::from_be_bytes(header[4..8].try_into().expect("4 bytes"));
            let size = u32::from_be_bytes(header[8..12].try_into().expect("4 bytes")) as usize;
            let mut body = vec![0; size];
            stream.read_exact(&mut body)?;
            match kind {
                WORK_COMPLETE => {
                    let start = body
                        .iter()
                        .position(|&b| b == 0)
                        .map_or(body.len(), |p| p + 1);
                    return Ok(body[start..].to_vec());
                }
                WORK_FAIL => return Ok(b"WORK_FAIL".to_vec()),
                _ => {} // JOB_CREATED, WORK_DATA, WORK_STATUS
            }
        }
    })();
    if result.is_err() {
        *connection = None;
    }
    result
}

fn udp(args: &Args) -> ExitCode {
    let socket = match UdpSocket::bind(if args.server.is_ipv4() {
        "127.0.0.1:0"
    } else {
        "[::1]:0"
    }) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("bgjob-bench: {e}");
            return ExitCode::from(1);
        }
    };
    let start = Instant::now();
    let mut errors = 0;
    for i in 0..args.requests {
        let request = args.request.replace("{i}", &i.to_string());
        if socket.send_to(request.as_bytes(), args.server).is_err() {
            errors += 1;
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    println!(
        "datagrams={} errors={errors} sent_per_sec={:.0}",
        args.requests,
        args.requests as f64 / elapsed.max(1e-9)
    );
    ExitCode::SUCCESS
}

fn idle(args: &Args) -> ExitCode {
    let mut held = Vec::with_capacity(args.concurrency);
    for _ in 0..args.concurrency {
        match TcpStream::connect(args.server) {
            Ok(s) => held.push(s),
            Err(e) => {
                eprintln!("bgjob-bench: connection {} failed: {e}", held.len() + 1);
                break;
            }
        }
    }
    println!("held={}", held.len());
    std::thread::sleep(Duration::from_secs_f64(args.duration));
    ExitCode::SUCCESS
}
