//! `bgjob`: the command-line client of bgjobd.
//!
//! Exit status: 0 ok, 2 bad command line, 3 cannot connect, 4 unknown
//! module (400), 5 unknown job (404), 6 failed (other 4xx/5xx), 7 timed out
//! (504, 408 or --timeout), 8 busy (503), 9 too large (413). An `NNN:`
//! answer goes to stderr; anything else to stdout.

/// The command line.
mod cli;
/// What an answer means for the exit code; `stats --watch`.
mod client;
/// `add`'s flags as `queue:add?<options>`.
mod options;
/// `status`: the dashboard's `/api/state`, for people.
mod status;

use std::io::{self, IsTerminal, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;

use cli::{Cli, Command};
use client::{classify_answer, draw_stats, parse_stats, status_word, Exit};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match run(&cli) {
        Ok(code) => code,
        // Whoever read the output stopped (`bgjob stats --watch | head`):
        // nothing is wrong, and there is nobody left to tell.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe && e.to_string() == STDOUT_CLOSED => {
            Exit::Ok
        }
        // A socket timeout reads as `WouldBlock` ("Resource temporarily
        // unavailable"): say what it means.
        Err(e) if e.kind() == io::ErrorKind::TimedOut || e.kind() == io::ErrorKind::WouldBlock => {
            eprintln!("bgjob: {}: timed out after {} s", cli.server(), cli.timeout);
            Exit::TimedOut
        }
        Err(e) => {
            eprintln!("bgjob: {}: {e}", cli.server());
            Exit::CannotConnect
        }
    };
    ExitCode::from(code as u8)
}

fn run(cli: &Cli) -> io::Result<Exit> {
    let ask = |request: Vec<u8>| ask(cli, &request);
    match &cli.command {
        Command::Run { module, data } => answer(ask(module_request(module, data)?)?),
        Command::Send { module, data } => {
            let datagram = module_request(module, data)?;
            let socket = UdpSocket::bind(if address(cli)?.is_ipv4() {
                "0.0.0.0:0"
            } else {
                "[::]:0"
            })?;
            socket.send_to(&datagram, address(cli)?)?;
            Ok(Exit::Ok)
        }
        Command::Add {
            module,
            data,
            options,
        } => {
            let query = match options::query(options) {
                Ok(query) => query,
                Err(why) => {
                    eprintln!("bgjob: {why}");
                    return Ok(Exit::Usage);
                }
            };
            let mut request = match query.is_empty() {
                true => b"queue:add:".to_vec(),
                false => format!("queue:add?{query}:").into_bytes(),
            };
            request.extend(module_request(module, data)?);
            let reply = ask(request)?;
            match reply.strip_prefix(b"id:") {
                Some(id) => {
                    print_line(&String::from_utf8_lossy(id))?;
                    Ok(Exit::Ok)
                }
                None => answer(reply),
            }
        }
        Command::Check { id } => {
            let reply = ask(format!("queue:check:id:{id}").into_bytes())?;
            match status_word(&String::from_utf8_lossy(&reply)) {
                Some(word) => {
                    print_line(word)?;
                    Ok(Exit::Ok)
                }
                None => answer(reply),
            }
        }
        Command::Get { id } => answer(ask(format!("queue:get:id:{id}").into_bytes())?),
        Command::Cancel { id } => line(ask(format!("queue:cancel:id:{id}").into_bytes())?),
        Command::Info { id } => answer(ask(format!("queue:info:id:{id}").into_bytes())?),
        Command::List => {
            let reply = ask(b"queue:list".to_vec())?;
            let forbidden = reply.starts_with(b"403:");
            let empty = reply.is_empty();
            let exit = answer(reply)?;
            if forbidden {
                eprintln!(
                    "bgjob: listing needs operator rights: the daemon's {} or {PACKAGE_SOCKET} (--socket PATH), or an admin listener",
                    cli.socket.display()
                );
            } else if empty {
                // Said on stderr: stdout stays one line per job for scripts.
                eprintln!("bgjob: no jobs held (none waiting, running or done and not fetched)");
            }
            Ok(exit)
        }
        Command::Failed => answer(ask(b"queue:failed".to_vec())?),
        Command::Retry { id, module } => {
            let request = match (id, module) {
                (Some(id), _) => format!("queue:retry:id:{id}"),
                (None, Some(module)) => format!("queue:retry:module:{module}"),
                (None, None) => return Ok(Exit::Usage),
            };
            line(ask(request.into_bytes())?)
        }
        Command::Pause { module } => line(ask(format!("queue:pause:{module}").into_bytes())?),
        Command::Resume { module } => line(ask(format!("queue:resume:{module}").into_bytes())?),
        Command::Stats { watch: false, .. } => answer(ask(b"queue:stats".to_vec())?),
        Command::Stats { watch: true, count } => watch(cli, *count),
        Command::Status { web, json } => show_status(cli, web, *json),
        Command::Ping => {
            let started = Instant::now();
            let (reply, via) = ask_via(cli, b"helo")?;
            if reply != b"oleh" {
                return answer(reply);
            }
            let ms = started.elapsed().as_secs_f64() * 1e3;
            print_line(&format!("oleh from {via} in {ms:.2} ms"))?;
            Ok(Exit::Ok)
        }
    }
}

/// `status`: the document, raw or for people; errors name the dashboard.
fn show_status(cli: &Cli, web: &str, json: bool) -> io::Result<Exit> {
    let limit = (cli.timeout > 0.0).then(|| Duration::from_secs_f64(cli.timeout));
    let text = match status::fetch(web, limit) {
        Ok(Ok(text)) => text,
        Ok(Err(why)) => {
            eprintln!("bgjob: {web}: {why}");
            return Ok(Exit::Failed);
        }
        Err(e) if e.kind() == io::ErrorKind::TimedOut || e.kind() == io::ErrorKind::WouldBlock => {
            eprintln!("bgjob: dashboard {web}: timed out after {} s", cli.timeout);
            return Ok(Exit::TimedOut);
        }
        Err(e) => {
            let hint =
                "is the dashboard on (\"web\" in the config)? --web ADDR or BGJOB_WEB names it";
            eprintln!("bgjob: dashboard {web}: {e} ({hint})");
            return Ok(Exit::CannotConnect);
        }
    };
    if json {
        print_line(text.trim_end())?;
        return Ok(Exit::Ok);
    }
    match serde_json::from_str(&text) {
        Ok(state) => {
            let text = status::render(&state);
            to_stdout(|out| out.write_all(text.as_bytes()))?;
            Ok(Exit::Ok)
        }
        Err(e) => {
            eprintln!("bgjob: {web}: /api/state is not JSON: {e}");
            Ok(Exit::Failed)
        }
    }
}

/// `module:data`, the data from the argument or stdin.
fn module_request(module: &str, data: &Option<String>) -> io::Result<Vec<u8>> {
    let mut request = module.as_bytes().to_vec();
    request.push(b':');
    match data.as_deref() {
        Some("-") | None => {
            io::stdin().lock().read_to_end(&mut request)?;
        }
        Some(data) => request.extend_from_slice(data.as_bytes()),
    }
    Ok(request)
}

impl Cli {
    fn server(&self) -> &str {
        self.server.as_deref().unwrap_or("127.0.0.1:12341")
    }
}

fn address(cli: &Cli) -> io::Result<SocketAddr> {
    cli.server()
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address"))
}

/// The operator socket of the Debian package's service (its state folder,
/// `--state /var/lib/bgjob`), tried after `--socket`'s default.
const PACKAGE_SOCKET: &str = "/var/lib/bgjob/admin.sock";

/// One request: connect, send, half-close, read to EOF. Over the operator
/// socket when it can be opened and no server was named.
fn ask(cli: &Cli, request: &[u8]) -> io::Result<Vec<u8>> {
    ask_via(cli, request).map(|(reply, _)| reply)
}

/// As [`ask`], also saying where the request went.
fn ask_via(cli: &Cli, request: &[u8]) -> io::Result<(Vec<u8>, String)> {
    let limit = (cli.timeout > 0.0).then(|| Duration::from_secs_f64(cli.timeout));
    let explicit = cli.server.is_some() && !is_explicit_socket();
    if !explicit {
        // A named socket alone; else the default, then the package's.
        let sockets = match is_explicit_socket() {
            true => vec![cli.socket.as_path()],
            false => vec![cli.socket.as_path(), Path::new(PACKAGE_SOCKET)],
        };
        for socket in sockets {
            match UnixStream::connect(socket) {
                Ok(stream) => {
                    let via = socket.display().to_string();
                    return exchange(stream, request, limit).map(|reply| (reply, via));
                }
                Err(e) if is_explicit_socket() => {
                    return Err(io::Error::new(
                        e.kind(),
                        format!("{}: {e}", socket.display()),
                    ))
                }
                Err(_) => {}
            }
        }
    }
    let addr = address(cli)?;
    let stream = match limit {
        Some(limit) => TcpStream::connect_timeout(&addr, limit)?,
        None => TcpStream::connect(addr)?,
    };
    exchange(stream, request, limit).map(|reply| (reply, addr.to_string()))
}

/// A stream the client talks over: TCP, or the operator's Unix socket.
trait Channel: Read + Write {
    fn limit(&self, limit: Option<Duration>) -> io::Result<()>;
    fn half_close(&self) -> io::Result<()>;
}

impl Channel for TcpStream {
    fn limit(&self, limit: Option<Duration>) -> io::Result<()> {
        self.set_read_timeout(limit)?;
        self.set_write_timeout(limit)
    }
    fn half_close(&self) -> io::Result<()> {
        self.shutdown(Shutdown::Write)
    }
}

impl Channel for UnixStream {
    fn limit(&self, limit: Option<Duration>) -> io::Result<()> {
        self.set_read_timeout(limit)?;
        self.set_write_timeout(limit)
    }
    fn half_close(&self) -> io::Result<()> {
        self.shutdown(Shutdown::Write)
    }
}

/// The protocol's one exchange: send, half-close, read the answer to EOF.
fn exchange(
    mut stream: impl Channel,
    request: &[u8],
    limit: Option<Duration>,
) -> io::Result<Vec<u8>> {
    stream.limit(limit)?;
    stream.write_all(request)?;
    stream.half_close()?;
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply)?;
    Ok(reply)
}

/// True if `--socket` or `BGJOB_SOCKET` named the socket: then it is used
/// (or its failure reported) even beside a server.
fn is_explicit_socket() -> bool {
    std::env::var_os("BGJOB_SOCKET").is_some()
        || std::env::args().any(|a| a == "--socket" || a.starts_with("--socket="))
}

/// What a write to a closed stdout becomes, told apart from a broken
/// connection to the daemon (which is an error).
const STDOUT_CLOSED: &str = "stdout closed";

/// Writes to stdout; a reader that went away is [`STDOUT_CLOSED`].
fn to_stdout(write: impl FnOnce(&mut io::StdoutLock) -> io::Result<()>) -> io::Result<()> {
    write(&mut io::stdout().lock()).map_err(|e| match e.kind() {
        io::ErrorKind::BrokenPipe => io::Error::new(e.kind(), STDOUT_CLOSED),
        _ => e,
    })
}

/// One line on stdout.
fn print_line(text: &str) -> io::Result<()> {
    to_stdout(|out| writeln!(out, "{text}"))
}

/// Prints an answer: `NNN:` errors to stderr with their exit code. On a
/// terminal the answer ends with a newline, so the prompt starts on its
/// own line; into a pipe or a file it is written byte for byte.
fn answer(reply: Vec<u8>) -> io::Result<Exit> {
    let exit = classify_answer(&reply);
    if exit == Exit::Ok {
        to_stdout(|out| {
            out.write_all(&reply)?;
            if out.is_terminal() && !reply.is_empty() && !reply.ends_with(b"\n") {
                out.write_all(b"\n")?;
            }
            Ok(())
        })?;
    } else {
        io::stderr().write_all(&reply)?;
        if !reply.ends_with(b"\n") {
            eprintln!();
        }
    }
    Ok(exit)
}

/// As [`answer`], with a newline after a successful one-line answer.
fn line(mut reply: Vec<u8>) -> io::Result<Exit> {
    if classify_answer(&reply) == Exit::Ok && !reply.ends_with(b"\n") {
        reply.push(b'\n');
    }
    answer(reply)
}

/// Redraws the counters every second until interrupted (or `count` screens).
fn watch(cli: &Cli, count: Option<u64>) -> io::Result<Exit> {
    let mut before = None;
    let mut last = Instant::now();
    let tty = io::stdout().is_terminal();
    let mut screens = 0;
    loop {
        let reply = ask(cli, b"queue:stats")?;
        if classify_answer(&reply) != Exit::Ok {
            return answer(reply);
        }
        let now = parse_stats(&String::from_utf8_lossy(&reply));
        let screen = draw_stats(&now, before.as_ref(), last.elapsed().as_secs_f64());
        last = Instant::now();
        to_stdout(|out| {
            if tty {
                out.write_all(b"\x1b[H\x1b[2J")?; // home, clear
            }
            out.write_all(screen.as_bytes())?;
            if !tty {
                out.write_all(b"\n")?;
            }
            out.flush()
        })?;
        before = Some(now);
        screens += 1;
        if count.is_some_and(|c| screens >= c) {
            return Ok(Exit::Ok);
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}
