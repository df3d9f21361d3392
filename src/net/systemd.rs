//! Running under systemd: sockets handed over by socket activation
//! (`LISTEN_FDS`), and readiness for `Type=notify` (`NOTIFY_SOCKET`). Both
//! are plain environment and file-descriptor protocols; no library needed.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::os::fd::{FromRawFd, RawFd};

use mio::net::{TcpListener, UdpSocket};

use crate::config::access::Access;
use crate::error::Error;
use crate::net::listeners::Listener;

/// The first descriptor systemd passes.
const FIRST_FD: RawFd = 3;

/// True if systemd handed this process sockets (`LISTEN_PID` is ours).
pub fn activated() -> bool {
    std::env::var("LISTEN_PID")
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
        == Some(std::process::id())
        && std::env::var_os("LISTEN_FDS").is_some()
}

/// The sockets systemd handed over, grouped into listeners by address, or
/// `None` when not socket-activated. The variables are removed so modules
/// do not see them, and the descriptors closed on exec.
pub fn inherited_listeners(access: &Access) -> Result<Option<Vec<Listener>>, Error> {
    let ours = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
        == Some(std::process::id());
    let count = std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|n| n.parse::<i32>().ok());
    for var in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] {
        std::env::remove_var(var);
    }
    let (true, Some(count)) = (ours, count) else {
        return Ok(None);
    };
    let mut by_addr: BTreeMap<SocketAddr, Listener> = BTreeMap::new();
    for fd in FIRST_FD..FIRST_FD + count {
        let fail = |what: &str| {
            Error::Io(
                format!("inherited socket {fd}: {what}"),
                std::io::Error::last_os_error(),
            )
        };
        // SAFETY: fcntl and getsockopt on a descriptor systemd gave us, with
        // correctly sized out-parameters.
        let kind = unsafe {
            if libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) != 0 {
                return Err(fail("not open"));
            }
            let mut kind: libc::c_int = 0;
            let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
            if libc::getsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_TYPE,
                (&mut kind as *mut libc::c_int).cast(),
                &mut len,
            ) != 0
            {
                return Err(fail("not a socket"));
            }
            kind
        };
        let (addr, tcp, udp) = match kind {
            libc::SOCK_STREAM => {
                // SAFETY: the descriptor is a stream socket we now own.
                let std = unsafe { std::net::TcpListener::from_raw_fd(fd) };
                std.set_nonblocking(true)
                    .map_err(|e| Error::Io(format!("inherited socket {fd}"), e))?;
                let addr = std
                    .local_addr()
                    .map_err(|e| Error::Io(format!("inherited socket {fd}"), e))?;
                (addr, Some(TcpListener::from_std(std)), None)
            }
            libc::SOCK_DGRAM => {
                // SAFETY: the descriptor is a datagram socket we now own.
                let std = unsafe { std::net::UdpSocket::from_raw_fd(fd) };
                std.set_nonblocking(true)
                    .map_err(|e| Error::Io(format!("inherited socket {fd}"), e))?;
                let addr = std
                    .local_addr()
                    .map_err(|e| Error::Io(format!("inherited socket {fd}"), e))?;
                (addr, None, Some(UdpSocket::from_std(std)))
            }
            other => {
                return Err(Error::Config(format!(
                    "inherited socket {fd} has type {other}, not TCP or UDP"
                )))
            }
        };
        let listener = by_addr.entry(addr).or_insert_with(|| Listener {
            label: "systemd".into(),
            addr,
            tcp: None,
            udp: None,
            access: access.clone(),
        });
        listener.tcp = listener.tcp.take().or(tcp);
        listener.udp = listener.udp.take().or(udp);
    }
    Ok(Some(by_addr.into_values().collect()))
}

/// Sends a state line (`READY=1`, `STOPPING=1`) to systemd, if it asked
/// for them; does nothing otherwise.
pub fn notify(state: &str) {
    use std::os::unix::net::UnixDatagram;
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let Ok(socket) = UnixDatagram::unbound() else {
        return;
    };
    let path = path.to_string_lossy().into_owned();
    let sent = match path.strip_prefix('@') {
        Some(name) => {
            use std::os::linux::net::SocketAddrExt;
            std::os::unix::net::SocketAddr::from_abstract_name(name)
                .and_then(|addr| socket.send_to_addr(state.as_bytes(), &addr))
        }
        None => socket.send_to(state.as_bytes(), &path),
    };
    if let Err(e) = sent {
        log::warn!("cannot notify systemd at {path}: {e}");
    }
}
