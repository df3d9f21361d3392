//! What a module may use and see: resource limits, the user it runs as,
//! and the variables of the daemon's environment it gets.

use std::io;
use std::sync::OnceLock;

/// The environment variables a module gets from the daemon's own (`LC_*`:
/// every variable starting so), besides its `BGJOB_*` ones and the names
/// listed in the `module_env` setting.
pub const MODULE_ENV: [&str; 11] = [
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "SHELL",
    "LANG",
    "LANGUAGE",
    "LC_*",
    "TZ",
    "TMPDIR",
    "NODE_PATH",
];

/// Resource limits for module processes (the `module_limits` setting), and
/// the user and group they run as.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ModuleLimits {
    /// (uid, gid) to switch to before exec; `None`: stay as the daemon.
    pub identity: Option<(u32, u32)>,
    pub cpu_secs: Option<u64>,
    pub address_space_bytes: Option<u64>,
    pub open_files: Option<u64>,
    /// Processes of the module's user (root is not bound by this one).
    pub processes: Option<u64>,
}

/// The daemon's soft open-files limit before it raised its own: what
/// modules get unless `module_limits.open_files` says otherwise, as systemd
/// gives its services.
static MODULE_OPEN_FILES: OnceLock<u64> = OnceLock::new();

/// Raises the daemon's soft open-files limit to the hard one (connections
/// and pipes need descriptors; a shell's 1024 is too few for the default
/// 1024 connections), keeping the old soft limit for modules. Returns the
/// (old, new) soft limits.
pub fn raise_open_files_limit() -> io::Result<(u64, u64)> {
    // SAFETY: getrlimit and setrlimit on a struct we own.
    unsafe {
        let mut limit: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return Err(io::Error::last_os_error());
        }
        let old = limit.rlim_cur;
        let _ = MODULE_OPEN_FILES.set(old as u64);
        limit.rlim_cur = limit.rlim_max;
        if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok((old as u64, limit.rlim_cur as u64))
    }
}

/// The daemon's soft open-files limit now.
pub fn open_files_limit() -> Option<u64> {
    // SAFETY: getrlimit on a struct we own.
    unsafe {
        let mut limit: libc::rlimit = std::mem::zeroed();
        (libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0).then_some(limit.rlim_cur as u64)
    }
}

/// The open-files limit less the descriptors open now (read at start,
/// once the listeners, journal and spare descriptor are open).
pub fn descriptors_left() -> usize {
    let limit = open_files_limit().unwrap_or(1024) as usize;
    // Less the one read_dir itself holds.
    let open = std::fs::read_dir("/proc/self/fd").map_or(0, |fds| fds.count().saturating_sub(1));
    limit.saturating_sub(open)
}

impl ModuleLimits {
    pub(super) fn as_rlimits(&self) -> Vec<(libc::__rlimit_resource_t, libc::rlim_t)> {
        let open_files = self.open_files.or(MODULE_OPEN_FILES.get().copied());
        [
            (libc::RLIMIT_CPU, self.cpu_secs),
            (libc::RLIMIT_AS, self.address_space_bytes),
            (libc::RLIMIT_NOFILE, open_files),
            (libc::RLIMIT_NPROC, self.processes),
        ]
        .into_iter()
        .filter_map(|(resource, value)| value.map(|v| (resource, v as libc::rlim_t)))
        .collect()
    }
}
