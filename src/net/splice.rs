//! Request bytes moved from a client's TCP socket straight into a module's
//! stdin pipe with `splice(2)`, for a streamed job: the kernel hands the
//! socket's pages to the pipe, and the bytes never cross the daemon.
//!
//! The socket is blocking (it is the module's stdout, see `lent.rs`), and
//! `SPLICE_F_NONBLOCK` makes only the pipe side non-blocking: a splice from
//! an empty blocking socket would sleep. So the socket's queue is asked
//! first (`FIONREAD`), and at most what it holds is spliced, which never
//! waits for more. An empty socket is peeked (`MSG_PEEK | MSG_DONTWAIT`):
//! open and empty, it waits for its next readiness; at its end, a plain
//! read takes the end as for any request.

use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering};

/// Cleared when the kernel refuses to splice from a socket (`EINVAL`: an
/// old kernel, or a socket type without it): requests are read and written
/// from then on.
static SPLICE_WORKS: AtomicBool = AtomicBool::new(true);

/// What one splice did.
#[derive(Debug)]
pub enum Spliced {
    /// This many bytes went from the socket into the pipe.
    Moved(usize),
    /// The socket is empty and open: nothing until its next readiness.
    Drained,
    /// A plain read must look at the socket: it is at its end (which the
    /// read tells), or the module closed its stdin (the read's bytes then
    /// find it closed, and are dropped as for any job that does not read
    /// its input), or its data is urgent data, which splice leaves.
    ReadInstead,
    /// The pipe is full: the module has not read what it was given.
    PipeFull,
    /// Splicing is not available here; requests are read and written.
    Unsupported,
    /// The socket or the pipe failed.
    Failed(io::Error),
}

/// Moves at most `max` bytes (and at most what the socket holds now) from
/// `socket` into the write end of `pipe`, without blocking.
pub fn from_socket(socket: RawFd, pipe: RawFd, max: usize) -> Spliced {
    if !SPLICE_WORKS.load(Ordering::Relaxed) {
        return Spliced::Unsupported;
    }
    // Asked again once if a byte came since FIONREAD; at TCP's urgent mark
    // FIONREAD stays 0 while a peek still finds the bytes behind it, and
    // only a plain read steps past the mark.
    let mut asked_again = false;
    loop {
        let mut queued: libc::c_int = 0;
        // SAFETY: FIONREAD writes one int into `queued`.
        if unsafe { libc::ioctl(socket, libc::FIONREAD, &mut queued) } < 0 {
            return Spliced::Failed(io::Error::last_os_error());
        }
        if queued <= 0 {
            match peek(socket) {
                // Bytes came since FIONREAD: asked again, once.
                Ok(true) if !asked_again => {
                    asked_again = true;
                    continue;
                }
                Ok(true) => return Spliced::ReadInstead,
                Ok(false) => return Spliced::ReadInstead,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Spliced::Drained,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Spliced::Failed(e),
            }
        }
        let len = max.min(queued as usize);
        // SAFETY: splice between two descriptors we own, no offsets.
        let n = unsafe {
            libc::splice(
                socket,
                std::ptr::null_mut(),
                pipe,
                std::ptr::null_mut(),
                len,
                libc::SPLICE_F_NONBLOCK | libc::SPLICE_F_MOVE,
            )
        };
        if n > 0 {
            return Spliced::Moved(n as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::Interrupted {
            continue;
        }
        let spliced = after(n, e);
        if matches!(spliced, Spliced::Unsupported) && SPLICE_WORKS.swap(false, Ordering::Relaxed) {
            log::info!("splice(2) from a client's socket refused: request bytes are copied");
        }
        return spliced;
    }
}

/// True if the socket holds a byte, false at its end; `WouldBlock` when
/// it is empty and open. Peeked, so that a byte that arrived since
/// FIONREAD is still spliced, not read.
fn peek(socket: RawFd) -> io::Result<bool> {
    let mut byte = 0u8;
    // SAFETY: recv writes at most one byte into `byte`.
    let n = unsafe {
        libc::recv(
            socket,
            (&mut byte as *mut u8).cast(),
            1,
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    match n {
        n if n < 0 => Err(io::Error::last_os_error()),
        n => Ok(n > 0),
    }
}

/// What a splice that moved nothing (`n` of 0, or -1 with `e`) means.
fn after(n: isize, e: io::Error) -> Spliced {
    if n == 0 {
        // Data was queued, yet none came (urgent data): a read takes it.
        return Spliced::ReadInstead;
    }
    match e.raw_os_error() {
        Some(libc::EAGAIN) => Spliced::PipeFull,
        Some(libc::EPIPE) => Spliced::ReadInstead,
        Some(libc::EINVAL) => Spliced::Unsupported,
        _ => Spliced::Failed(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::AsRawFd;

    /// A connected pair over loopback, and a pipe (read end, write end).
    fn setup() -> (TcpStream, TcpStream, std::fs::File, std::fs::File) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        let mut fds = [0; 2];
        // SAFETY: pipe2 writes two new descriptors, owned by the Files.
        assert_eq!(
            unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) },
            0
        );
        use std::os::fd::FromRawFd;
        // SAFETY: the descriptors are new and owned by nothing else.
        let (r, w) = unsafe {
            (
                std::fs::File::from_raw_fd(fds[0]),
                std::fs::File::from_raw_fd(fds[1]),
            )
        };
        (client, server, r, w)
    }

    /// Waits until the socket holds `n` bytes (loopback delivers at once,
    /// but the test must not depend on when).
    fn queued(socket: &TcpStream, n: usize) {
        for _ in 0..1000 {
            let mut q: libc::c_int = 0;
            // SAFETY: FIONREAD writes one int.
            unsafe { libc::ioctl(socket.as_raw_fd(), libc::FIONREAD, &mut q) };
            if q as usize >= n {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        panic!("{n} bytes never arrived");
    }

    #[test]
    fn urgent_data_is_left_to_a_read_and_never_spins() {
        let (client, server, _r, w) = setup();
        // SAFETY: send of one byte from a live buffer.
        let sent =
            unsafe { libc::send(client.as_raw_fd(), b"!".as_ptr().cast(), 1, libc::MSG_OOB) };
        assert_eq!(sent, 1);
        (&client).write_all(b"after").unwrap();
        // At the mark FIONREAD says 0 while a peek finds "after": before
        // the fix, this looped for ever.
        for _ in 0..1000 {
            match from_socket(server.as_raw_fd(), w.as_raw_fd(), 1 << 20) {
                Spliced::ReadInstead => return,
                Spliced::Drained => std::thread::sleep(std::time::Duration::from_millis(1)),
                Spliced::Moved(_) => return, // a kernel that splices past the mark
                other => panic!("{other:?}"),
            }
        }
        panic!("the bytes behind the urgent mark never showed");
    }

    #[test]
    fn moves_what_the_socket_holds_at_most_max_and_never_waits_on_an_empty_socket() {
        let (mut client, server, mut r, w) = setup();
        // Blocking, as a lent socket is: an empty one must not be spliced.
        assert!(matches!(
            from_socket(server.as_raw_fd(), w.as_raw_fd(), 1 << 20),
            Spliced::Drained
        ));
        client.write_all(b"hello, world").unwrap();
        queued(&server, 12);
        assert!(matches!(
            from_socket(server.as_raw_fd(), w.as_raw_fd(), 5),
            Spliced::Moved(5)
        ));
        assert!(matches!(
            from_socket(server.as_raw_fd(), w.as_raw_fd(), 1 << 20),
            Spliced::Moved(7)
        ));
        assert!(matches!(
            from_socket(server.as_raw_fd(), w.as_raw_fd(), 1 << 20),
            Spliced::Drained
        ));
        let mut got = [0; 12];
        r.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"hello, world");
        // At its end, a plain read tells it.
        client.shutdown(std::net::Shutdown::Write).unwrap();
        let mut end = Spliced::Drained;
        for _ in 0..1000 {
            end = from_socket(server.as_raw_fd(), w.as_raw_fd(), 1 << 20);
            if !matches!(end, Spliced::Drained) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert!(matches!(end, Spliced::ReadInstead), "{end:?}");
    }

    #[test]
    fn a_full_pipe_is_told_apart_from_an_empty_socket() {
        let (mut client, server, _r, w) = setup();
        // More than a default pipe (16 slots) can hold, whatever each
        // slot takes of the socket's pages.
        let writer = std::thread::spawn(move || {
            let chunk = vec![7u8; 64 * 1024];
            for _ in 0..64 {
                if client.write_all(&chunk).is_err() {
                    break;
                }
            }
        });
        let mut moved = 0;
        let full = loop {
            match from_socket(server.as_raw_fd(), w.as_raw_fd(), 1 << 20) {
                Spliced::Moved(n) => moved += n,
                Spliced::Drained => queued(&server, 1),
                other => break other,
            }
        };
        assert!(matches!(full, Spliced::PipeFull), "{full:?}");
        assert!(moved > 0 && moved < 4 << 20, "{moved}");
        drop(server);
        writer.join().unwrap();
    }

    #[test]
    fn einval_means_unsupported_eagain_a_full_pipe_and_nothing_moved_a_read() {
        let e = |code| io::Error::from_raw_os_error(code);
        assert!(matches!(after(-1, e(libc::EINVAL)), Spliced::Unsupported));
        assert!(matches!(after(-1, e(libc::EAGAIN)), Spliced::PipeFull));
        assert!(matches!(after(0, e(0)), Spliced::ReadInstead));
        assert!(matches!(after(-1, e(libc::EPIPE)), Spliced::ReadInstead));
        assert!(matches!(after(-1, e(libc::ECONNRESET)), Spliced::Failed(_)));
    }
}
