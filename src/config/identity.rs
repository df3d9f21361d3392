//! Which user modules run as. A daemon started as root runs them as
//! `module_user` (default `nobody`) and refuses to run them as root unless
//! `allow_root_modules` says so.

use std::ffi::CString;

use crate::error::Error;

/// The (uid, gid) modules switch to, or `None` to run them as the daemon
/// itself (it is not root, so it could not switch anyway).
pub fn module_identity(
    user: Option<&str>,
    group: Option<&str>,
    allow_root: bool,
) -> Result<Option<(u32, u32)>, Error> {
    // SAFETY: geteuid has no arguments and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    if !root && user.is_none() {
        return Ok(None);
    }
    let name = user.unwrap_or("nobody");
    let (uid, primary_gid) = lookup_user(name)?;
    let gid = match group {
        Some(group) => lookup_group(group)?,
        None => primary_gid,
    };
    if uid == 0 && !allow_root {
        return Err(Error::Config(format!(
            "modules would run as root (module_user {name:?}): choose another module_user, or set allow_root_modules"
        )));
    }
    if !root {
        log::warn!("module_user {name:?} ignored: bgjobd is not running as root");
        return Ok(None);
    }
    Ok(Some((uid, gid)))
}

/// A user by name or number: (uid, primary gid).
fn lookup_user(name: &str) -> Result<(u32, u32), Error> {
    let missing = || Error::Config(format!("module_user {name:?}: no such user"));
    let c = CString::new(name).map_err(|_| missing())?;
    // SAFETY: getpwnam/getpwuid return a pointer into static storage or
    // null; it is read at once, on the only thread that calls them.
    unsafe {
        let entry = match name.parse::<u32>() {
            Ok(uid) => libc::getpwuid(uid),
            Err(_) => libc::getpwnam(c.as_ptr()),
        };
        if entry.is_null() {
            return match name.parse::<u32>() {
                Ok(uid) => Ok((uid, uid)),
                Err(_) => Err(missing()),
            };
        }
        Ok(((*entry).pw_uid, (*entry).pw_gid))
    }
}

fn lookup_group(name: &str) -> Result<u32, Error> {
    if let Ok(gid) = name.parse::<u32>() {
        return Ok(gid);
    }
    let missing = || Error::Config(format!("module_group {name:?}: no such group"));
    let c = CString::new(name).map_err(|_| missing())?;
    // SAFETY: as in lookup_user.
    unsafe {
        let entry = libc::getgrnam(c.as_ptr());
        if entry.is_null() {
            return Err(missing());
        }
        Ok((*entry).gr_gid)
    }
}
