//! A classic client on a slow link: its request arrives in full-sized
//! segments milliseconds apart, and some are lost at the shaper and sent
//! again; the request must still arrive whole. The client lives in its own
//! network namespace, joined to the daemon's by a veth pair whose client
//! side is shaped to 2 Mbit/s with `tc ... tbf` (root only).

use std::fs::File;
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::util::{read_to_end, Setup};

/// A network namespace and veth pair, removed when dropped.
struct Net {
    ns: String,
    veth: String,
}

impl Net {
    /// Builds it, or says why it cannot.
    fn build(subnet: u32) -> Result<Net, String> {
        let id = std::process::id();
        let net = Net {
            ns: format!("bgjt{id}"),
            veth: format!("bgjv{id}"),
        };
        let (host, client) = (format!("{}a", net.veth), format!("{}b", net.veth));
        let server_ip = format!("10.231.{subnet}.1/30");
        let client_ip = format!("10.231.{subnet}.2/30");
        let steps: [&[&str]; 9] = [
            &["ip", "netns", "add", &net.ns],
            &[
                "ip", "link", "add", &host, "type", "veth", "peer", "name", &client,
            ],
            &["ip", "link", "set", &client, "netns", &net.ns],
            &["ip", "addr", "add", &server_ip, "dev", &host],
            &["ip", "link", "set", &host, "up"],
            &[
                "ip", "-n", &net.ns, "addr", "add", &client_ip, "dev", &client,
            ],
            &["ip", "-n", &net.ns, "link", "set", &client, "up"],
            &["ip", "-n", &net.ns, "link", "set", "lo", "up"],
            // 2 Mbit/s with a short queue: TCP overruns it and loses segments.
            &[
                "tc", "-n", &net.ns, "qdisc", "add", "dev", &client, "root", "tbf", "rate",
                "2mbit", "burst", "4kb", "latency", "30ms",
            ],
        ];
        for step in steps {
            let out = Command::new(admin_tool(step[0]))
                .args(&step[1..])
                .output()
                .map_err(|e| format!("{}: {e}", step.join(" ")))?;
            if !out.status.success() {
                return Err(format!(
                    "{}: {}",
                    step.join(" "),
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
            }
        }
        Ok(net)
    }

    /// Runs `f` on a thread that has entered the client's namespace.
    fn in_client<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let ns = File::open(format!("/run/netns/{}", self.ns)).expect("netns file");
        std::thread::spawn(move || {
            // SAFETY: setns on a descriptor we own; it moves only this thread.
            let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
            f()
        })
        .join()
        .unwrap()
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        let _ = Command::new(admin_tool("ip"))
            .args(["netns", "del", &self.ns])
            .status();
        let _ = Command::new(admin_tool("ip"))
            .args(["link", "del", &format!("{}a", self.veth)])
            .output(); // usually gone with the namespace already
    }
}

/// `ip` or `tc` by name, also where a user's `PATH` does not look on
/// Debian (`tc` is in /usr/sbin).
fn admin_tool(name: &str) -> std::path::PathBuf {
    let path = std::env::var("PATH").unwrap_or_default();
    let found = (path.split(':').chain(["/usr/sbin", "/sbin"]))
        .map(|dir| std::path::Path::new(dir).join(name))
        .find(|candidate| candidate.is_file());
    found.unwrap_or_else(|| name.into())
}

/// Retransmissions the client's socket counted.
fn retransmitted(stream: &TcpStream) -> u32 {
    let mut info = [0u32; 32];
    let mut len = std::mem::size_of_val(&info) as libc::socklen_t;
    // SAFETY: the kernel writes at most `len` bytes into the buffer.
    unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            info.as_mut_ptr().cast(),
            &mut len,
        )
    };
    // tcpi_total_retrans: after 8 bytes of flags and 23 u32 fields.
    info[2 + 23]
}

#[test]
fn a_classic_request_over_a_slow_lossy_link_arrives_whole() {
    let subnet = std::process::id() % 250;
    let net = match Net::build(subnet) {
        Ok(net) => net,
        Err(why) => {
            // CI runs as root on a kernel that makes namespaces: there, not
            // running is a failure.
            assert!(
                std::env::var_os("CI").is_none(),
                "the slow link could not be built: {why}"
            );
            eprintln!(
                "NOT RUN: a_classic_request_over_a_slow_lossy_link_arrives_whole \
                 needs root and network namespaces: {why}"
            );
            return;
        }
    };
    let d = Setup::new()
        .module("count", "#!/bin/sh\nexec wc -c\n")
        .listen(&format!("10.231.{subnet}.1:0"))
        .start();
    let addr: SocketAddr = d.addr;
    let (answers, took, retrans) = net.in_client(move || {
        let mut answers = Vec::new();
        let mut took = Vec::new();
        let mut retrans = 0;
        for _ in 0..3 {
            let start = Instant::now();
            let mut stream = TcpStream::connect(addr).unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(30)))
                .unwrap();
            let mut request = b"count:".to_vec();
            request.extend(std::iter::repeat_n(b'z', 256 << 10));
            stream.write_all(&request).unwrap();
            answers.push(String::from_utf8(read_to_end(&mut stream)).unwrap());
            took.push(start.elapsed());
            retrans += retransmitted(&stream);
        }
        (answers, took, retrans)
    });
    eprintln!("slow link: 3 x 256 KiB in {took:?}, {retrans} segments sent again");
    for answer in answers {
        assert_eq!(answer.trim(), (256 << 10).to_string());
    }
}
