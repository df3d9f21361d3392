//! A client's stream: TCP from a listener, or Unix from the operator
//! socket in the state folder. One connection machine serves both.

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::os::fd::AsRawFd;

use mio::event::Source;
use mio::net::{TcpStream, UnixStream};
use mio::{Interest, Registry, Token};

#[derive(Debug)]
pub enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Stream {
    /// The TCP socket's descriptor; none for the operator socket.
    pub fn tcp_fd(&self) -> Option<std::os::fd::RawFd> {
        use std::os::fd::AsRawFd;
        match self {
            Stream::Tcp(s) => Some(s.as_raw_fd()),
            Stream::Unix(_) => None,
        }
    }

    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.shutdown(how),
            Stream::Unix(s) => s.shutdown(how),
        }
    }
}

impl AsRawFd for Stream {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        match self {
            Stream::Tcp(s) => s.as_raw_fd(),
            Stream::Unix(s) => s.as_raw_fd(),
        }
    }
}

/// TCP is read and written with `MSG_DONTWAIT`, which never blocks
/// whatever the socket's own flag says: a socket that is a streaming
/// module's stdout is blocking for the module (see `daemon/streams.rs`),
/// and the daemon shares it.
impl Read for &Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => {
                // SAFETY: recv writes at most `buf.len()` bytes into `buf`.
                let n = unsafe {
                    libc::recv(
                        s.as_raw_fd(),
                        buf.as_mut_ptr().cast(),
                        buf.len(),
                        libc::MSG_DONTWAIT,
                    )
                };
                done(n)
            }
            Stream::Unix(s) => (&*s).read(buf),
        }
    }
}

impl Write for &Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.send(buf, 0)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Stream {
    /// One `send` with `MSG_DONTWAIT | MSG_NOSIGNAL` and `flags` (TCP).
    fn send(&self, buf: &[u8], flags: libc::c_int) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => {
                // SAFETY: send reads at most `buf.len()` bytes of `buf`.
                let n = unsafe {
                    libc::send(
                        s.as_raw_fd(),
                        buf.as_ptr().cast(),
                        buf.len(),
                        libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL | flags,
                    )
                };
                done(n)
            }
            Stream::Unix(s) => (&*s).write(buf),
        }
    }
}

/// Writes an answer that our FIN follows as soon as it is all out (the
/// connection shuts down its write side, or closes). TCP sends it with
/// `MSG_MORE`: the last, partly filled segment waits in the kernel for the
/// FIN, which `shutdown` or `close` adds to it and sends at once, so a
/// short answer and its end leave in one segment and the client wakes once
/// for both, not once for the answer and again for its end. Full segments
/// go out as they fill; a segment held this way is sent within 200 ms
/// even if nothing followed it.
pub struct Answering<'a>(pub &'a Stream);

impl Write for Answering<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.send(buf, libc::MSG_MORE)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A byte count from a system call, or its error.
fn done(n: isize) -> io::Result<usize> {
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

impl Source for Stream {
    fn register(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.register(r, t, i),
            Stream::Unix(s) => s.register(r, t, i),
        }
    }

    fn reregister(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.reregister(r, t, i),
            Stream::Unix(s) => s.reregister(r, t, i),
        }
    }

    fn deregister(&mut self, r: &Registry) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.deregister(r),
            Stream::Unix(s) => s.deregister(r),
        }
    }
}
