//! `bgjob-bench`: a load generator for bgjobd (and any server that answers
//! one request per connection). Loopback only in the shipped scripts.
//!
//! TCP mode: N client threads each connect, send the request, optionally
//! half-close, read to EOF and check the answer, until the request count or
//! the duration is used up. Prints one `key=value` line.
//! UDP mode: sends the datagrams as fast as it can and prints the rate.
//! Idle mode: holds N connections open for a while (for memory figures).

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, UdpSocket};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};

use bgjob::bench::{Expect, Tally};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Mode {
    Tcp,
    Udp,
    Idle,
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
    /// Concurrent clients (tcp), or connections to hold (idle).
    #[arg(short = 'c', long, default_value_t = 8)]
    concurrency: usize,
    /// Requests in all (tcp, udp).
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
}

fn main() -> ExitCode {
    let args = Args::parse();
    let expect = match (&args.expect, &args.expect_prefix) {
        (Some(e), _) => Expect::Exactly(e.clone().into_bytes()),
        (_, Some(p)) => Expect::Prefix(p.clone().into_bytes()),
        _ => Expect::Anything,
    };
    match args.mode {
        Mode::Tcp => tcp(&args, expect),
        Mode::Udp => udp(&args),
        Mode::Idle => idle(&args),
    }
}

fn tcp(args: &Args, expect: Expect) -> ExitCode {
    let next = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs_f64(args.duration);
    let timeout = Duration::from_secs_f64(args.timeout);
    let start = Instant::now();
    let workers: Vec<_> = (0..args.concurrency.max(1))
        .map(|_| {
            let (next, expect, request) = (next.clone(), expect.clone(), args.request.clone());
            let (server, total, half_close) = (args.server, args.requests, args.half_close);
            std::thread::spawn(move || {
                let mut tally = Tally::default();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total || Instant::now() > deadline {
                        return tally;
                    }
                    let request = request.replace("{i}", &i.to_string());
                    let began = Instant::now();
                    match once(server, request.as_bytes(), half_close, timeout) {
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
    stream.write_all(request)?;
    if half_close {
        stream.shutdown(Shutdown::Write)?;
    }
    let mut answer = Vec::new();
    match stream.read_to_end(&mut answer) {
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
