//! The test harness: starts the real `bgjobd` on a free loopback port with a
//! temporary modules folder, and talks to it as a client would. On failure
//! it prints the daemon's command line and log.

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, UdpSocket};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_bgjobd");

/// A folder removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("bgjob-it-{tag}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        // Modules of a daemon started as root run as `nobody`: let them
        // write their traces here. Sticky, as /tmp, so that they cannot
        // move the modules folder aside (bgjobd warns of modules others
        // can change, see config/writable.rs).
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o1777)).unwrap();
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !self.0.as_os_str().is_empty() {
            let _ = fs::remove_dir_all(&self.0);
        }
    }
}

/// Writes an executable module script.
pub fn write_module(dir: &Path, name: &str, script: &str) {
    let path = dir.join(name);
    let tmp = dir.join(format!(".{name}.tmp"));
    fs::write(&tmp, script).unwrap();
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o755)).unwrap();
    fs::rename(&tmp, &path).unwrap();
}

/// How to start a daemon.
pub struct Setup {
    pub modules: Vec<(String, String)>,
    /// Extra environment of the daemon.
    pub env: Vec<(String, String)>,
    /// Settings as JSON object members, e.g. `"max_jobs": 1`.
    pub settings: Option<String>,
    pub args: Vec<String>,
    /// Where it listens (default a free loopback port).
    pub listen: String,
    /// Log at `-vv` (the default here), or at bgjobd's own default level.
    pub verbose: bool,
    /// The daemon's open-files limit (soft and hard), as `ulimit -n` sets it.
    pub open_files: Option<u64>,
    /// The dashboard's `web` object members besides `listen` (which is a
    /// free loopback port unless given); `None`: no dashboard.
    pub web: Option<String>,
}

impl Setup {
    pub fn new() -> Setup {
        Setup {
            modules: Vec::new(),
            env: Vec::new(),
            settings: None,
            args: Vec::new(),
            listen: "127.0.0.1:0".into(),
            verbose: true,
            open_files: None,
            web: None,
        }
    }

    /// Serves the dashboard on a free loopback port, with these members of
    /// the `web` object (`""`, or e.g. `"actions": true`); see
    /// [`Daemon::web_addr`] and [`Daemon::web_get`].
    pub fn web(mut self, members: &str) -> Setup {
        self.web = Some(members.into());
        self
    }

    /// Starts the daemon with this open-files limit (soft and hard).
    pub fn open_files(mut self, limit: u64) -> Setup {
        self.open_files = Some(limit);
        self
    }

    pub fn listen(mut self, addr: &str) -> Setup {
        self.listen = addr.into();
        self
    }

    /// Logs at bgjobd's default level (no `-v`), as an operator sees it.
    pub fn default_log_level(mut self) -> Setup {
        self.verbose = false;
        self
    }

    pub fn module(mut self, name: &str, script: &str) -> Setup {
        self.modules.push((name.into(), script.into()));
        self
    }

    pub fn settings(mut self, json_members: &str) -> Setup {
        self.settings = Some(json_members.into());
        self
    }

    pub fn env(mut self, name: &str, value: &str) -> Setup {
        self.env.push((name.into(), value.into()));
        self
    }

    pub fn arg(mut self, arg: &str) -> Setup {
        self.args.push(arg.into());
        self
    }

    pub fn start(self) -> Daemon {
        let dir = TempDir::new("daemon");
        let modules = dir.path().join("modules");
        fs::create_dir(&modules).unwrap();
        for (name, script) in &self.modules {
            write_module(&modules, name, script);
        }
        let mut args: Vec<String> = vec!["-1".into(), "--listen".into(), self.listen.clone()];
        if self.verbose {
            args.insert(0, "-vv".into());
        }
        args.push("--modules".into());
        args.push(modules.display().to_string());
        let mut settings = self.settings.clone();
        if let Some(members) = &self.web {
            let listen = if members.contains("\"listen\"") {
                String::new()
            } else {
                r#""listen": "127.0.0.1:0""#.to_string()
                    + if members.is_empty() { "" } else { ", " }
            };
            let web = format!(r#""web": {{{listen}{members}}}"#);
            settings = Some(match settings {
                Some(s) => format!("{s}, {web}"),
                None => web,
            });
        }
        if let Some(settings) = &settings {
            let config = dir.path().join("service.config");
            fs::write(&config, format!("{{{settings}}}")).unwrap();
            args.push("--config".into());
            args.push(config.display().to_string());
        }
        args.extend(self.args);
        Daemon::spawn_limited(dir, modules, args, &self.env, self.open_files)
    }
}

/// The arguments of [`Daemon::spawn_on_config`]: the folder's own config
/// and modules, the queue in memory.
pub const ON_CONFIG: [&str; 7] = [
    "-1",
    "-c",
    "service.config",
    "-m",
    "modules",
    "--state",
    "none",
];

/// A running `bgjobd`.
pub struct Daemon {
    pub child: Option<Child>,
    pub addr: SocketAddr,
    pub dir: TempDir,
    pub modules: PathBuf,
    pub args: Vec<String>,
    log: PathBuf,
}

impl Daemon {
    pub fn spawn(dir: TempDir, modules: PathBuf, args: Vec<String>) -> Daemon {
        Daemon::spawn_with_env(dir, modules, args, &[])
    }

    pub fn spawn_with_env(
        dir: TempDir,
        modules: PathBuf,
        args: Vec<String>,
        env: &[(String, String)],
    ) -> Daemon {
        Daemon::spawn_limited(dir, modules, args, env, None)
    }

    /// Starts bgjobd on the folder's own `service.config` and `modules`
    /// (its listeners, not `--listen`), with the queue in memory.
    pub fn spawn_on_config(dir: TempDir) -> Daemon {
        let modules = dir.path().join("modules");
        let args = ON_CONFIG.iter().map(|a| a.to_string()).collect();
        Daemon::spawn(dir, modules, args)
    }

    /// As [`Daemon::spawn_with_env`], with an open-files limit if given.
    pub fn spawn_limited(
        dir: TempDir,
        modules: PathBuf,
        args: Vec<String>,
        env: &[(String, String)],
        open_files: Option<u64>,
    ) -> Daemon {
        let log = dir.path().join("bgjobd.log");
        let mut command = Command::new(BIN);
        if let Some(limit) = open_files {
            use std::os::unix::process::CommandExt;
            let limit = libc::rlimit {
                rlim_cur: limit,
                rlim_max: limit,
            };
            // SAFETY: setrlimit is async-signal-safe and touches only the child.
            unsafe {
                command.pre_exec(move || {
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        // The queue engine under test adds its own arguments, at every start
        // (so a restart on `args` gets them again, once).
        let engine = crate::engine::Engine::from_env();
        let mut child = command
            .args(&args)
            .args(engine.args())
            .envs(env.iter().map(|(k, v)| (k, v)))
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(fs::File::create(&log).unwrap())
            .spawn()
            .expect("start bgjobd");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line.trim().parse().unwrap_or_else(|_| {
            let _ = child.wait();
            panic!(
                "bgjobd {args:?} printed no address; log:\n{}",
                fs::read_to_string(&log).unwrap_or_default()
            )
        });
        Daemon {
            child: Some(child),
            addr,
            dir,
            modules,
            args,
            log,
        }
    }

    /// A daemon (at `-v`, without a journal) on an existing modules folder
    /// and configuration file, started in `dir` as its working folder.
    pub fn on_folder(dir: TempDir, modules: &Path, config: &str) -> Daemon {
        let modules_arg = modules.display().to_string();
        let args = [
            "-v",
            "-1",
            "--listen",
            "127.0.0.1:0",
            "--state",
            "none",
            "--modules",
            &modules_arg,
            "-c",
            config,
        ];
        Daemon::spawn(dir, modules.into(), args.map(String::from).to_vec())
    }

    /// Wraps a daemon started some other way.
    pub fn attach(child: Child, addr: SocketAddr, dir: TempDir, modules: PathBuf) -> Daemon {
        let log = dir.path().join("bgjobd.log");
        Daemon {
            child: Some(child),
            addr,
            dir,
            modules,
            args: Vec::new(),
            log,
        }
    }

    /// Kills the daemon with SIGKILL (as a crash would) and starts it again
    /// on the same folder, modules, state and arguments.
    pub fn crash_and_restart(&mut self) {
        self.kill9();
        self.start_again();
    }

    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// Starts the daemon again after it exited.
    pub fn start_again(&mut self) {
        let dir = std::mem::replace(&mut self.dir, TempDir(PathBuf::new()));
        let mut again = Daemon::spawn(dir, self.modules.clone(), self.args.clone());
        self.child = again.child.take();
        self.addr = again.addr;
        // The dropped shell then owns an empty folder and no process.
        self.dir = std::mem::replace(&mut again.dir, TempDir(PathBuf::new()));
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn add_module(&self, name: &str, script: &str) {
        write_module(&self.modules, name, script);
    }

    /// Connects, sends, half-closes and reads the answer to EOF.
    pub fn ask(&self, request: &[u8]) -> Vec<u8> {
        let mut stream = self.connect();
        stream.write_all(request).unwrap();
        stream.shutdown(Shutdown::Write).unwrap();
        read_to_end(&mut stream)
    }

    /// As [`Daemon::ask`], but a refused or reset connection is `None`
    /// rather than a panic, for polling while the daemon frees a slot.
    pub fn try_ask(&self, request: &[u8]) -> Option<Vec<u8>> {
        let mut stream = TcpStream::connect(self.addr).ok()?;
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .ok()?;
        stream.write_all(request).ok()?;
        stream.shutdown(Shutdown::Write).ok()?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).ok()?;
        Some(answer)
    }

    /// Asks over the operator socket in the state folder.
    pub fn ask_operator(&self, request: &str) -> String {
        let mut stream = std::os::unix::net::UnixStream::connect(self.operator_socket()).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        stream.write_all(request.as_bytes()).unwrap();
        stream.shutdown(Shutdown::Write).unwrap();
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).unwrap();
        String::from_utf8_lossy(&answer).into_owned()
    }

    pub fn operator_socket(&self) -> PathBuf {
        self.dir.path().join("state/admin.sock")
    }

    /// `queue:add` that must succeed: the `id:<n>` answer.
    pub fn add(&self, request: &str) -> String {
        let answer = self.ask_str(&format!("queue:add:{request}"));
        assert!(answer.starts_with("id:"), "queue:add:{request}: {answer}");
        answer
    }

    pub fn ask_str(&self, request: &str) -> String {
        String::from_utf8_lossy(&self.ask(request.as_bytes())).into_owned()
    }

    /// As a classic client (the seed's PHP examples): sends without
    /// half-closing and reads until the daemon closes.
    pub fn ask_classic(&self, request: &[u8]) -> Vec<u8> {
        let mut stream = self.connect();
        stream.write_all(request).unwrap();
        read_to_end(&mut stream)
    }

    pub fn connect(&self) -> TcpStream {
        let stream = TcpStream::connect(self.addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        stream
    }

    pub fn send_udp(&self, datagram: &[u8]) {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.send_to(datagram, self.addr).unwrap();
    }

    pub fn signal(&self, signal: &str) {
        let ok = Command::new("kill")
            .args(["-s", signal, &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
    }

    /// Waits for the daemon to exit by itself.
    pub fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let child = self.child.as_mut().unwrap();
        let start = Instant::now();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            assert!(
                start.elapsed() < limit,
                "bgjobd did not exit within {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The daemon's child processes as (pid, state letter).
    pub fn children(&self) -> Vec<(u32, char)> {
        children_of(self.pid())
    }

    /// How many file descriptors the daemon holds.
    pub fn fd_count(&self) -> usize {
        fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .unwrap()
            .count()
    }

    /// Waits until the log contains `text`.
    pub fn wait_log(&self, text: &str) {
        wait_for(&format!("log line {text:?}"), || self.log().contains(text));
    }

    /// The dashboard's address, as the last start or reload line gives it.
    pub fn web_addr(&self) -> SocketAddr {
        self.wait_log("dashboard on http://");
        let log = self.log();
        let rest = log.rsplit_once("dashboard on http://").unwrap().1;
        rest.split_once('/').unwrap().0.parse().unwrap()
    }

    /// `GET path` from the dashboard, with its own Host header.
    pub fn web_get(&self, path: &str) -> WebResponse {
        let addr = self.web_addr();
        web_request(
            addr,
            &format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n"),
        )
    }

    /// `/api/state` as JSON.
    pub fn web_state(&self) -> serde_json::Value {
        let r = self.web_get("/api/state");
        assert_eq!(r.status, 200, "{r:?}");
        serde_json::from_str(&r.body).unwrap()
    }

    /// The token the dashboard's page carries.
    pub fn web_token(&self) -> String {
        let page = self.web_get("/").body;
        let rest = page
            .split_once(r#"name="bgjob-token" content=""#)
            .unwrap()
            .1;
        rest.split_once('"').unwrap().0.to_string()
    }

    /// A dashboard action as the page sends it (`POST path`, with the
    /// page's token and its own Origin).
    pub fn web_act(&self, path: &str) -> WebResponse {
        let (addr, token) = (self.web_addr(), self.web_token());
        web_request(
            addr,
            &format!("POST {path} HTTP/1.1\r\nHost: {addr}\r\nOrigin: http://{addr}\r\nX-Bgjob-Token: {token}\r\nContent-Length: 0\r\n\r\n"),
        )
    }
}

/// A dashboard response: status, head and body.
#[derive(Debug, Clone)]
pub struct WebResponse {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl WebResponse {
    /// A header's value (the name's case does not matter).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// Sends a raw request to `addr` and reads the response to EOF.
pub fn web_request(addr: SocketAddr, request: &str) -> WebResponse {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut bytes = Vec::new();
    let _ = stream.read_to_end(&mut bytes);
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    WebResponse {
        status,
        head: head.to_string(),
        body: body.to_string(),
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!("--- bgjobd {:?}\n--- log:\n{}", self.args, self.log());
        }
    }
}

/// The address that the daemon's last start or reload line gives for the
/// listener named `label` (`... ADDR tcp+udp (LABEL; ...)`).
pub fn listener_addr(log: &str, label: &str) -> Option<SocketAddr> {
    let mark = format!(" ({label};");
    let line = log.lines().rev().find(|l| l.contains(&mark))?;
    let before = &line[..line.find(&mark)?];
    let mut words = before.rsplit(' ');
    let _kinds = words.next()?;
    words.next()?.parse().ok()
}

pub fn read_to_end(stream: &mut TcpStream) -> Vec<u8> {
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).expect("answer read to EOF");
    answer
}

/// Processes whose parent is `pid`, with their state letter (Z: zombie).
pub fn children_of(pid: u32) -> Vec<(u32, char)> {
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(format!("/proc/{child}/stat")) else {
            continue;
        };
        // pid (comm) state ppid ...: comm may hold spaces, so split after ')'.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        let mut fields = rest.split_whitespace();
        let state = fields.next().and_then(|s| s.chars().next()).unwrap_or('?');
        if fields.next().and_then(|p| p.parse::<u32>().ok()) == Some(pid) {
            found.push((child, state));
        }
    }
    found
}

pub fn process_alive(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            !s.rsplit_once(')')
                .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

/// True when the tests run as root. Elsewhere a test that needs root says
/// why it did not run; under CI (which runs as root) that is a failure, so
/// no such test can pass there without running.
pub fn root_or_skip(why: &str) -> bool {
    // SAFETY: geteuid has no arguments and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run the suite as root: {why}"
        );
        eprintln!("skipped: {why}");
    }
    root
}

/// A small tmpfs mounted on a folder, unmounted (and the folder holding it
/// removed) when dropped, after the daemon using it.
pub struct SmallDisk(pub PathBuf);

impl SmallDisk {
    /// Mounts a tmpfs of `size` (as `mount` spells it: `256k`) on `path`,
    /// which it creates. Mounting needs root, as CI runs the suite: `None`
    /// elsewhere, after saying why (a failure under CI).
    pub fn mount(path: &Path, size: &str) -> Option<SmallDisk> {
        fs::create_dir_all(path).unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .status()
            .is_ok_and(|s| s.success());
        if !mounted {
            // SAFETY: geteuid has no arguments and cannot fail.
            assert_ne!(
                unsafe { libc::geteuid() },
                0,
                "root could not mount a tmpfs"
            );
            root_or_skip("mounting a tmpfs needs root");
            return None;
        }
        Some(SmallDisk(path.to_path_buf()))
    }

    /// Fills the disk but for about `leave` bytes, with the file `filler`.
    pub fn fill(&self, leave: u64) {
        let mut file = fs::File::create(self.0.join("filler")).unwrap();
        let chunk = vec![0u8; 4096];
        while free_bytes(&self.0) > leave + 4096 && file.write_all(&chunk).is_ok() {}
        if leave == 0 {
            while file.write_all(&chunk[..64]).is_ok() {}
        }
        let _ = file.sync_all();
    }

    /// Makes room again.
    pub fn empty(&self) {
        fs::remove_file(self.0.join("filler")).unwrap();
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        if let Some(parent) = self.0.parent() {
            let _ = fs::remove_dir_all(parent);
        }
    }
}

/// Bytes free in the file system holding `path`.
pub fn free_bytes(path: &Path) -> u64 {
    let out = Command::new("df")
        .args(["--output=avail", "-B1"])
        .arg(path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .nth(1)
        .and_then(|l| l.trim().parse().ok())
        .unwrap()
}

/// Polls `check` for up to 10 seconds.
pub fn wait_for(what: &str, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `bgjobd --check-config` of `config` (written beside `modules`) and
/// `modules`, with `extra` arguments: its exit status and all it printed.
pub fn check_config(config: &str, modules: &Path, extra: &[&str]) -> (Option<i32>, String) {
    let path = modules.parent().unwrap().join("check.config");
    std::fs::write(&path, config).unwrap();
    let o = Command::new(BIN)
        .arg("--check-config")
        .arg("-c")
        .arg(&path)
        .arg("-m")
        .arg(modules)
        .args(extra)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
    (o.status.code(), text)
}
