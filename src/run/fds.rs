//! Descriptors for children: close-on-exec pipes whose loop ends are
//! non-blocking, and standard descriptors that are always open.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use mio::unix::pipe::{Receiver, Sender};

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
