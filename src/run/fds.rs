//! Descriptors for children: close-on-exec pipes whose loop ends are
//! non-blocking, and standard descriptors that are always open.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use mio::unix::pipe::{Receiver, Sender};
use mio::{Interest, Registry, Token};

use crate::io::{drain, ReadEnd};

/// Bytes read from a module's stderr or progress pipe per readiness event:
/// a module that floods them waits its turn, and the loop goes on to the
/// other events first (the pipe is watched again, so it is read next turn).
pub(super) const PIPE_BUDGET: usize = 256 * 1024;

pub(super) fn fd(owned: &OwnedFd) -> RawFd {
    use std::os::fd::AsRawFd;
    owned.as_raw_fd()
}

/// A close-on-exec pipe: (read end, write end). The child's ends lose the
/// flag when the vfork child duplicates them onto 0, 1 and 2.
pub(super) fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills the two-element array on success.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both descriptors were just created and are owned by no one else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

pub(super) trait Nonblocking: Sized {
    fn set(&self) -> io::Result<()>;
}

impl Nonblocking for Sender {
    fn set(&self) -> io::Result<()> {
        self.set_nonblocking(true)
    }
}

impl Nonblocking for Receiver {
    fn set(&self) -> io::Result<()> {
        self.set_nonblocking(true)
    }
}

pub(super) fn nonblocking<P: Nonblocking>(pipe: P) -> io::Result<P> {
    pipe.set()?;
    Ok(pipe)
}

/// Makes sure descriptors 0, 1 and 2 are open (on `/dev/null` if not), so
/// that no pipe or socket the daemon opens later lands on them.
pub fn ensure_standard_fds() {
    for fd in 0..3 {
        // SAFETY: fcntl probes the descriptor; open returns a new one, kept
        // open for the life of the process on purpose.
        unsafe {
            if libc::fcntl(fd, libc::F_GETFD) == -1 {
                libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
            }
        }
    }
}

/// Reads `pipe` as [`drain`] does, but at most [`PIPE_BUDGET`] bytes: past
/// it, the pipe is registered again under `token` (which makes epoll report
/// it again if it still holds data), and the rest waits for that event.
pub(super) fn drain_budget(
    pipe: &mut Receiver,
    scratch: &mut [u8],
    (registry, token): (&Registry, Token),
    mut take: impl FnMut(&[u8]),
) -> io::Result<ReadEnd> {
    let mut left = PIPE_BUDGET;
    let end = drain(&*pipe, scratch, |chunk| {
        take(chunk);
        left = left.saturating_sub(chunk.len());
        left > 0
    });
    if matches!(end, Ok(ReadEnd::Open)) && left == 0 {
        registry.reregister(pipe, token, Interest::READABLE)?;
    }
    end
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::time::Duration;

    #[test]
    fn a_full_pipe_is_read_a_budget_at_a_time_and_reported_again() {
        let (r, w) = pipe().unwrap();
        // SAFETY: fcntl on a descriptor we own; 1 MiB is the default
        // ceiling for unprivileged users.
        let size = unsafe { libc::fcntl(fd(&w), libc::F_SETPIPE_SZ, 1 << 20) };
        assert!(size as usize >= 2 * PIPE_BUDGET, "pipe of {size} bytes");
        let mut writer = std::fs::File::from(w);
        let sent = PIPE_BUDGET + PIPE_BUDGET / 2;
        writer.write_all(&vec![b'x'; sent]).unwrap();
        let mut poll = mio::Poll::new().unwrap();
        let mut events = mio::Events::with_capacity(4);
        let mut pipe = nonblocking(Receiver::from(r)).unwrap();
        let token = Token(7);
        poll.registry()
            .register(&mut pipe, token, Interest::READABLE)
            .unwrap();
        poll.poll(&mut events, Some(Duration::from_secs(5)))
            .unwrap();
        let mut scratch = vec![0; 64 * 1024];
        let mut read = 0;
        let watch = (poll.registry(), token);
        let end = drain_budget(&mut pipe, &mut scratch, watch, |c| read += c.len()).unwrap();
        assert_eq!((end, read), (ReadEnd::Open, PIPE_BUDGET), "one budget");
        // Registered again with data left: reported again, though nothing
        // new was written (epoll is edge-triggered).
        poll.poll(&mut events, Some(Duration::from_secs(5)))
            .unwrap();
        assert!(events.iter().any(|e| e.token() == token), "reported again");
        let watch = (poll.registry(), token);
        drain_budget(&mut pipe, &mut scratch, watch, |c| read += c.len()).unwrap();
        assert_eq!(read, sent, "the rest at the next event");
    }
}
