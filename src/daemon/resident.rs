//! Code at rest. The kernel maps a program's code and read-only data page
//! by page as it runs, and around each page it touches it maps its
//! neighbours as well (fault around, 64 KiB), so start-up (argument and
//! config parsing, binding) leaves nearly all of the binary's and libc's
//! code resident, and each function the idle loop runs keeps 64 KiB.
//! Once the daemon is ready, when a load has subsided and when it is at
//! rest, it drops the pages of its read-only file mappings
//! (`MADV_DONTNEED`): the pages stay in the page cache, shared and clean,
//! so a later request maps them again with a minor fault each.
//!
//! Fault around is off for a mapping registered with a userfaultfd
//! (asynchronous write protection, Linux 6.7 and later, which also accepts
//! file mappings; nothing writes to these, so it never reports anything):
//! each fault then maps the one page it needs. Without it (an older
//! kernel, a seccomp filter), the pages are dropped all the same.

use std::os::fd::{FromRawFd, OwnedFd};

/// `UFFD_USER_MODE_ONLY`: open to every user, whatever
/// `vm.unprivileged_userfaultfd` says.
const USER_MODE_ONLY: libc::c_int = 1;
/// `UFFD_FEATURE_WP_ASYNC`: write faults resolved by the kernel, and any
/// kind of memory accepted.
const FEATURE_WP_ASYNC: u64 = 1 << 15;
/// `_IOWR(0xAA, 0x3F, struct uffdio_api)`.
const UFFDIO_API: libc::c_ulong = 0xC018_AA3F;
/// `_IOWR(0xAA, 0x00, struct uffdio_register)`.
const UFFDIO_REGISTER: libc::c_ulong = 0xC020_AA00;
/// `UFFDIO_REGISTER_MODE_WP`.
const MODE_WP: u64 = 2;
/// `UFFD_API`.
const API: u64 = 0xAA;

/// The daemon's read-only file mappings, and the userfaultfd that maps
/// them page by page (kept open: closing it would unregister them).
pub struct Resident {
    uffd: Option<OwnedFd>,
}

impl Resident {
    /// Opens the userfaultfd, if the kernel offers asynchronous write
    /// protection; the mappings are registered at each shed.
    pub fn new() -> Resident {
        Resident { uffd: open_uffd() }
    }

    /// True if fault around is off for the mappings registered.
    pub fn page_by_page(&self) -> bool {
        self.uffd.is_some()
    }

    /// Drops the pages of every read-only file mapping that holds no
    /// private copy. Returns how many KiB were resident in them.
    pub fn shed(&self) -> u64 {
        let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
            return 0;
        };
        let mut dropped = 0;
        for m in mappings(&smaps) {
            if m.read_only_file {
                if let Some(uffd) = &self.uffd {
                    register(uffd, m.start, m.end);
                }
                if m.anonymous_kib == 0 {
                    // SAFETY: the range is one of this process's read-only
                    // file mappings with no private copy in it: its pages
                    // are the file's, so dropping them only makes the next
                    // access read them again from the page cache. It is
                    // still that mapping: file mappings change only when a
                    // library is loaded or unloaded, which only this thread
                    // does (NSS lookups); the helper threads map and unmap
                    // anonymous memory only.
                    unsafe {
                        libc::madvise(m.start as *mut _, m.end - m.start, libc::MADV_DONTNEED)
                    };
                    dropped += m.rss_kib;
                }
            }
        }
        dropped
    }
}

/// One mapping of `/proc/self/smaps`, with what the shed needs.
#[derive(Debug, PartialEq)]
struct Mapping {
    start: usize,
    end: usize,
    /// `r-xp` or `r--p`, backed by a file (a path, not `[vdso]`).
    read_only_file: bool,
    rss_kib: u64,
    /// Pages copied on write (relocations made read-only afterwards).
    anonymous_kib: u64,
}

/// The mappings of a `/proc/PID/smaps` text.
fn mappings(smaps: &str) -> Vec<Mapping> {
    let mut out: Vec<Mapping> = Vec::new();
    for line in smaps.lines() {
        if let Some(m) = header(line) {
            out.push(m);
        } else if let (Some(m), Some((key, value))) = (out.last_mut(), line.split_once(':')) {
            let kib = || {
                value
                    .trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse()
                    .unwrap_or(0)
            };
            match key {
                "Rss" => m.rss_kib = kib(),
                "Anonymous" => m.anonymous_kib = kib(),
                _ => {}
            }
        }
    }
    out
}

/// A mapping's header line: `start-end perms offset dev inode [path]`.
fn header(line: &str) -> Option<Mapping> {
    let mut fields = line.split_whitespace();
    let (start, end) = fields.next()?.split_once('-')?;
    let start = usize::from_str_radix(start, 16).ok()?;
    let end = usize::from_str_radix(end, 16).ok()?;
    let perms = fields.next()?;
    if perms.len() != 4 || end <= start {
        return None;
    }
    let path = fields.nth(3).unwrap_or("");
    Some(Mapping {
        start,
        end,
        read_only_file: matches!(perms, "r-xp" | "r--p") && path.starts_with('/'),
        rss_kib: 0,
        anonymous_kib: 0,
    })
}

/// `struct uffdio_api`.
#[repr(C)]
struct UffdioApi {
    api: u64,
    features: u64,
    ioctls: u64,
}

/// `struct uffdio_register`.
#[repr(C)]
struct UffdioRegister {
    start: u64,
    len: u64,
    mode: u64,
    ioctls: u64,
}

/// A userfaultfd with asynchronous write protection, or None where the
/// kernel or a seccomp filter refuses it.
fn open_uffd() -> Option<OwnedFd> {
    let flags = libc::O_CLOEXEC | libc::O_NONBLOCK | USER_MODE_ONLY;
    // SAFETY: userfaultfd takes flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_userfaultfd, flags) };
    if fd < 0 {
        log::debug!("no userfaultfd: {}", std::io::Error::last_os_error());
        return None;
    }
    // SAFETY: fd is a descriptor just opened, owned by nothing else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) };
    let mut api = UffdioApi {
        api: API,
        features: FEATURE_WP_ASYNC,
        ioctls: 0,
    };
    // SAFETY: UFFDIO_API reads and writes the struct given.
    let ok = unsafe { libc::ioctl(std::os::fd::AsRawFd::as_raw_fd(&fd), UFFDIO_API, &mut api) };
    if ok != 0 {
        log::debug!(
            "no asynchronous write protection: {}",
            std::io::Error::last_os_error()
        );
        return None;
    }
    Some(fd)
}

/// Registers a read-only mapping for write protection, which turns fault
/// around off for it. A mapping already registered, or one the kernel
/// refuses, stays as it is.
fn register(uffd: &OwnedFd, start: usize, end: usize) {
    let mut r = UffdioRegister {
        start: start as u64,
        len: (end - start) as u64,
        mode: MODE_WP,
        ioctls: 0,
    };
    // SAFETY: UFFDIO_REGISTER reads and writes the struct given; the
    // range is a mapping of this process.
    unsafe {
        libc::ioctl(
            std::os::fd::AsRawFd::as_raw_fd(uffd),
            UFFDIO_REGISTER,
            &mut r,
        )
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMAPS: &str = "\
5568c139c000-5568c13f0000 r--p 00000000 fe:00 5401313   /usr/sbin/bgjobd
Size:                336 kB
Rss:                 320 kB
Anonymous:             0 kB
5568c13f0000-5568c151a000 r-xp 00053000 fe:00 5401313   /usr/sbin/bgjobd
Rss:                1056 kB
Anonymous:             0 kB
5568c151a000-5568c1521000 r--p 001c7000 fe:00 5401313   /usr/sbin/bgjobd
Rss:                  28 kB
Anonymous:            28 kB
7fb41b775000-7fb41b782000 rw-p 00000000 00:00 0
Rss:                   8 kB
Anonymous:             8 kB
7fffd0b5e000-7fffd0b60000 r-xp 00000000 00:00 0          [vdso]
Rss:                   4 kB
7ffc3fbbd000-7ffc3fbde000 rw-p 00000000 00:00 0          [stack]
Rss:                  40 kB
Anonymous:            40 kB
";

    #[test]
    fn only_clean_read_only_file_mappings_are_shed() {
        let m = mappings(SMAPS);
        assert_eq!(m.len(), 6);
        let shed: Vec<(usize, u64)> = m
            .iter()
            .filter(|m| m.read_only_file && m.anonymous_kib == 0)
            .map(|m| (m.start, m.rss_kib))
            .collect();
        assert_eq!(shed, [(0x5568c139c000, 320), (0x5568c13f0000, 1056)]);
        // The relocations made read-only hold private copies: kept.
        assert!(m[2].read_only_file && m[2].anonymous_kib == 28);
        assert!(!m[3].read_only_file && !m[4].read_only_file);
        assert!(!m[5].read_only_file);
    }

    #[test]
    fn lines_that_are_not_mappings_are_not_taken_for_one() {
        for line in [
            "garbage",
            "Rss: 4 kB",
            "10-5 r-xp 0 0:0 0 /x",
            "VmFlags: rd ex mr mw me",
        ] {
            assert_eq!(header(line), None, "{line}");
        }
    }

    #[test]
    fn a_shed_keeps_this_process_running() {
        // The code and read-only data dropped, what runs next faults
        // them back.
        let r = Resident::new();
        assert!(r.shed() > 0);
        assert_eq!(format!("{}", 6 * 7), "42");
        assert_eq!(mappings(SMAPS).len(), 6);
    }
}
