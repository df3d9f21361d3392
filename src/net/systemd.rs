//! Running under systemd: sockets handed over by socket activation
//! (`LISTEN_PID`, `LISTEN_FDS`, `LISTEN_FDNAMES`) and readiness for
//! `Type=notify` (`NOTIFY_SOCKET`). The `sd-notify` crate reads the
//! variables and speaks the protocol; this file turns the descriptors into
//! listeners named as the socket units name them.

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use mio::net::{TcpListener, UdpSocket};

use crate::config::access::Access;
use crate::error::Error;
use crate::net::listeners::Listener;

/// True if systemd handed this process sockets: `LISTEN_PID` is ours and
/// `LISTEN_FDS` counts at least one. A malformed variable, or a descriptor
/// that is not open, also says yes, so that [`inherited_listeners`] reports
/// it instead of the daemon quietly binding the config's listeners.
pub fn activated() -> bool {
    sd_notify::listen_fds().map_or(true, |fds| fds.len() > 0)
}

/// The sockets systemd handed over, grouped into listeners by address and
/// labelled with their names (`FileDescriptorName=`, by default the socket
/// unit's name; `unknown` without `LISTEN_FDNAMES`), or `None` when not
/// socket-activated. The variables are removed so modules do not see them,
/// and the descriptors are closed on exec.
///
/// Call it before the daemon starts its threads: it changes the environment.
pub fn inherited_listeners(access: &Access) -> Result<Option<Vec<Listener>>, Error> {
    let ours = activated();
    // SAFETY: removing environment variables is sound while no other thread
    // reads the environment; bgjobd calls this from main, before the daemon
    // starts its spawn and journal threads.
    let handed = unsafe { sd_notify::listen_fds_with_names_and_unset_env() };
    if !ours {
        // The variables were meant for another process, if set at all.
        return Ok(None);
    }
    let handed =
        handed.map_err(|e| Error::Io("cannot take the sockets systemd passed".into(), e))?;
    let mut sockets = Vec::with_capacity(handed.len());
    for (fd, name) in handed {
        let (addr, socket) =
            adopt(fd).map_err(|e| Error::Io(format!("systemd socket {name} (fd {fd})"), e))?;
        sockets.push((name, addr, socket));
    }
    Ok(Some(group(sockets, access)))
}

/// One socket systemd passed, of either kind.
#[derive(Debug)]
enum Handed {
    Tcp(TcpListener),
    Udp(UdpSocket),
}

/// Takes descriptor `fd` as a non-blocking TCP listener or UDP socket, with
/// the address it is bound to. sd-notify has already set it close-on-exec
/// and checked that it is open.
fn adopt(fd: RawFd) -> io::Result<(SocketAddr, Handed)> {
    // SAFETY: an open descriptor that systemd passed to this process alone;
    // nothing else in the daemon refers to it.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    Ok(match socket_type(fd.as_fd())? {
        libc::SOCK_STREAM => {
            let socket = std::net::TcpListener::from(fd);
            socket.set_nonblocking(true)?;
            (
                socket.local_addr()?,
                Handed::Tcp(TcpListener::from_std(socket)),
            )
        }
        libc::SOCK_DGRAM => {
            let socket = std::net::UdpSocket::from(fd);
            socket.set_nonblocking(true)?;
            (
                socket.local_addr()?,
                Handed::Udp(UdpSocket::from_std(socket)),
            )
        }
        other => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("socket type {other}, not TCP or UDP"),
            ))
        }
    })
}

/// `SOCK_STREAM`, `SOCK_DGRAM`, ...; fails if `fd` is not a socket.
fn socket_type(fd: BorrowedFd) -> io::Result<libc::c_int> {
    let mut kind: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt on an open descriptor, with an out-parameter of the
    // size passed.
    let r = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_TYPE,
            (&mut kind as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(kind)
}

/// One listener per address: a socket unit with `ListenStream=` and
/// `ListenDatagram=` on one address passes a TCP and a UDP socket, which
/// serve together. Sockets of two units on one address name both (`a+b`).
/// A second socket of the same kind on an address is closed, as one
/// listener serves one of each.
fn group(sockets: Vec<(String, SocketAddr, Handed)>, access: &Access) -> Vec<Listener> {
    let mut by_addr: BTreeMap<SocketAddr, Listener> = BTreeMap::new();
    for (name, addr, socket) in sockets {
        let listener = by_addr.entry(addr).or_insert_with(|| Listener {
            label: name.clone(),
            addr,
            tcp: None,
            udp: None,
            access: access.clone(),
            owner: String::new(),
            admin: false,
            framing: Default::default(),
        });
        let kept = match socket {
            Handed::Tcp(tcp) if listener.tcp.is_none() => {
                listener.tcp = Some(tcp);
                true
            }
            Handed::Udp(udp) if listener.udp.is_none() => {
                listener.udp = Some(udp);
                true
            }
            _ => false,
        };
        if kept && !listener.label.split('+').any(|n| n == name) {
            listener.label = format!("{}+{name}", listener.label);
        }
    }
    let mut listeners: Vec<Listener> = by_addr.into_values().collect();
    for l in &mut listeners {
        l.owner = format!("{}@{}", l.label, l.addr);
    }
    listeners
}

/// Sends a state line (`READY=1`, `STOPPING=1`) to systemd, if it asked
/// for them (`NOTIFY_SOCKET`); does nothing otherwise. A failure is logged,
/// not fatal: the daemon serves either way. sd-notify 0.5 takes
/// `NOTIFY_SOCKET` as a path, which is what systemd passes; an abstract
/// address (`@name`) fails here with that warning.
pub fn notify(state: &str) {
    if let Err(e) = sd_notify::notify(&[sd_notify::NotifyState::Custom(state)]) {
        let to = std::env::var_os("NOTIFY_SOCKET").unwrap_or_default();
        log::warn!("cannot notify systemd at {}: {e}", to.to_string_lossy());
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::IntoRawFd;

    use super::*;

    /// A TCP listener and a UDP socket on one loopback address.
    fn pair() -> (SocketAddr, Handed, Handed) {
        let tcp = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = tcp.local_addr().unwrap();
        let udp = UdpSocket::bind(addr).unwrap();
        (addr, Handed::Tcp(tcp), Handed::Udp(udp))
    }

    fn labels(listeners: &[Listener]) -> Vec<(&str, bool, bool)> {
        listeners
            .iter()
            .map(|l| (l.label.as_str(), l.tcp.is_some(), l.udp.is_some()))
            .collect()
    }

    #[test]
    fn the_tcp_and_udp_sockets_of_one_address_make_one_listener() {
        let (addr, tcp, udp) = pair();
        let sockets = vec![("main".into(), addr, tcp), ("main".into(), addr, udp)];
        let listeners = group(sockets, &Access::default());
        assert_eq!(labels(&listeners), [("main", true, true)]);
        assert_eq!(listeners[0].addr, addr);
    }

    #[test]
    fn a_listener_is_named_after_every_unit_that_serves_it() {
        let (addr, tcp, udp) = pair();
        let (other, other_tcp, _) = pair();
        let sockets = vec![
            ("stream".into(), addr, tcp),
            ("datagram".into(), addr, udp),
            ("other".into(), other, other_tcp),
        ];
        let mut listeners = group(sockets, &Access::default());
        listeners.sort_by_key(|l| l.label.clone());
        assert_eq!(
            labels(&listeners),
            [("other", true, false), ("stream+datagram", true, true)]
        );
    }

    #[test]
    fn a_descriptor_is_adopted_as_the_kind_of_socket_it_is() {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = tcp.local_addr().unwrap();
        let (got, handed) = adopt(tcp.into_raw_fd()).unwrap();
        assert_eq!(got, addr);
        assert!(matches!(handed, Handed::Tcp(_)), "{handed:?}");

        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = udp.local_addr().unwrap();
        let (got, handed) = adopt(udp.into_raw_fd()).unwrap();
        assert_eq!(got, addr);
        assert!(matches!(handed, Handed::Udp(_)), "{handed:?}");

        let (pipe, _writer) = std::io::pipe().unwrap();
        let err = adopt(pipe.into_raw_fd()).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOTSOCK), "{err}");
    }
}
