//! Binding the TCP and UDP sockets of each listener.

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;

use mio::net::{TcpListener, UdpSocket};

use crate::config::access::Access;
use crate::config::ListenerSpec;
use crate::error::Error;
use crate::net::framing::Framing;

/// Listen backlog. std and mio use 128, which overflows under bursts of
/// short connections; a full backlog stalls clients for a second or more.
const BACKLOG: i32 = 1024;

/// One address served over TCP and UDP (sockets handed over by systemd may
/// bring only one of the two).
#[derive(Debug)]
pub struct Listener {
    pub label: String,
    /// The bound address (with the real port when 0 was asked for).
    pub addr: SocketAddr,
    pub tcp: Option<TcpListener>,
    pub udp: Option<UdpSocket>,
    pub access: Access,
    /// The name its queue jobs belong to (see `ListenerSpec::owner`).
    pub owner: String,
    /// Operator rights: `queue:list`, and every listener's jobs.
    pub admin: bool,
    /// Where a classic client's request ends, for connections accepted now.
    pub framing: Framing,
}

/// Binds TCP and UDP on the same address. With port 0, TCP picks a free port
/// and UDP takes the same number (retrying if UDP has it in use).
pub fn bind(spec: &ListenerSpec) -> Result<Listener, Error> {
    let fail = |what: &str, e: io::Error| {
        Error::Io(format!("cannot {what} {} ({})", spec.addr, spec.label), e)
    };
    let tries = if spec.addr.port() == 0 { 20 } else { 1 };
    let mut last_err = None;
    for _ in 0..tries {
        let tcp = TcpListener::bind(spec.addr).map_err(|e| fail("listen on TCP", e))?;
        let addr = tcp
            .local_addr()
            .map_err(|e| fail("read the address of", e))?;
        // A second listen(2) on a listening socket sets its backlog (Linux).
        // SAFETY: plain syscall on a descriptor we own.
        if unsafe { libc::listen(tcp.as_raw_fd(), BACKLOG) } != 0 {
            return Err(fail(
                "set the listen backlog of",
                io::Error::last_os_error(),
            ));
        }
        if !spec.udp {
            return Ok(Listener {
                label: spec.label.clone(),
                addr,
                tcp: Some(tcp),
                udp: None,
                access: spec.access.clone(),
                owner: spec.owner(),
                admin: spec.admin,
                framing: spec.framing,
            });
        }
        match UdpSocket::bind(addr) {
            Ok(udp) => {
                return Ok(Listener {
                    label: spec.label.clone(),
                    addr,
                    tcp: Some(tcp),
                    udp: Some(udp),
                    access: spec.access.clone(),
                    owner: spec.owner(),
                    admin: spec.admin,
                    framing: spec.framing,
                })
            }
            Err(e) => last_err = Some(e),
        }
    }
    Err(fail(
        "listen on UDP",
        last_err.expect("tried at least once"),
    ))
}
