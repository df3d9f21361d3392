//! A client's TCP socket lent to a module as its stdout, for a streamed
//! answer: the module's own copy of the socket, blocking (a module writes
//! with plain blocking writes; the daemon's reads and writes of the same
//! socket use `MSG_DONTWAIT`, see `stream.rs`), with Nagle's delay off so
//! that what the module writes leaves as it is written.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

/// A close-on-exec copy of `socket` for a module's stdout (the vfork
/// child puts it on descriptor 1), with the socket made blocking,
/// `TCP_NODELAY` set and receives bounded to 1 ms.
pub fn lend(socket: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: fcntl and setsockopt on a descriptor we own; the copy is
    // new and owned by no one else.
    unsafe {
        let copy = libc::fcntl(socket, libc::F_DUPFD_CLOEXEC, 3);
        if copy < 0 {
            return Err(io::Error::last_os_error());
        }
        let copy = OwnedFd::from_raw_fd(copy);
        let flags = libc::fcntl(socket, libc::F_GETFL);
        if flags < 0 || libc::fcntl(socket, libc::F_SETFL, flags & !libc::O_NONBLOCK) < 0 {
            return Err(io::Error::last_os_error());
        }
        set_option(
            socket,
            (libc::IPPROTO_TCP, libc::TCP_NODELAY),
            &(1 as libc::c_int),
        );
        // The daemon splices from its copy after FIONREAD said how much is
        // queued; should a module read from its stdout in between, the
        // splice waits at most this long instead of blocking the loop.
        let timeout = libc::timeval {
            tv_sec: 0,
            tv_usec: 1000,
        };
        set_option(socket, (libc::SOL_SOCKET, libc::SO_RCVTIMEO), &timeout);
        Ok(copy)
    }
}

/// Sets a socket option, best effort (the lend works without it).
fn set_option<T>(socket: RawFd, (level, name): (libc::c_int, libc::c_int), value: &T) {
    // SAFETY: setsockopt reads size_of::<T>() bytes from a live value.
    unsafe {
        libc::setsockopt(
            socket,
            level,
            name,
            (value as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        );
    }
}

/// The start of the kernel's `struct tcp_info` (linux/tcp.h) up to
/// `tcpi_bytes_acked` (Linux 4.1).
#[repr(C)]
#[derive(Default)]
struct AckedInfo {
    /// Everything before `tcpi_pacing_rate`: 8 bytes of states, then 24
    /// 32-bit fields.
    head: [u32; 26],
    /// pacing and max pacing rate
    pacing: [u64; 2],
    bytes_acked: u64,
}

/// Bytes written into the socket so far, by anyone (acknowledged by the
/// peer, or still in the send queue); `None` if the kernel does not say.
/// Before the daemon has written anything, these are the module's.
pub fn bytes_written(socket: RawFd) -> Option<u64> {
    let mut info = AckedInfo::default();
    let mut len = std::mem::size_of::<AckedInfo>() as libc::socklen_t;
    let mut queued: libc::c_int = 0;
    // SAFETY: the kernel writes at most `len` bytes into `info`, a
    // plain-old-data struct of that size, and an int into `queued`.
    let ok = unsafe {
        libc::getsockopt(
            socket,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut info as *mut AckedInfo).cast(),
            &mut len,
        ) == 0
            && len as usize == std::mem::size_of::<AckedInfo>()
            && libc::ioctl(socket, libc::TIOCOUTQ, &mut queued) == 0
    };
    ok.then(|| info.bytes_acked + queued.max(0) as u64)
}

/// Makes the socket's close reset the connection (`SO_LINGER` of 0): a
/// client then sees an error instead of the end of a complete answer.
pub fn reset_on_close(socket: RawFd) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt reads the linger struct we own.
    unsafe {
        libc::setsockopt(
            socket,
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::AsRawFd;

    #[test]
    fn bytes_written_counts_what_the_copy_wrote() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        server.set_nonblocking(true).unwrap();
        assert_eq!(bytes_written(server.as_raw_fd()), Some(0));
        let copy = lend(server.as_raw_fd()).unwrap();
        let mut copy = std::fs::File::from(copy);
        copy.write_all(b"hello").unwrap();
        drop(copy);
        assert_eq!(bytes_written(server.as_raw_fd()), Some(5));
        let mut got = [0; 5];
        client.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"hello");
    }
}
