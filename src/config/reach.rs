//! Can the module user reach the modules? Search permission on every folder
//! on the way, execute permission on each module, and read permission on
//! scripts and `.js` files (their interpreter reads them) and on the `.js`
//! modules' `node_modules`. Modules run with the module user's group and no
//! supplementary groups, so that is all that is checked.
//!
//! Checked at start, on SIGHUP and by `--check-config`, so a modules folder
//! the module user cannot reach is told at once, with the path and the fix,
//! instead of as `Permission denied` answers.

use std::fmt;
use std::fs::{self, Metadata};
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::config::Settings;
use crate::error::Error;

/// How to fix an unreachable modules folder.
pub const FIXES: &str = "make every folder on the way searchable for that user (chmod o+x), \
    move the modules to a folder it can reach (e.g. /srv/bgjob/modules), \
    or set module_user to a user that can reach them";

/// The user modules run as, for the checks and the messages.
#[derive(Debug, Clone)]
pub struct Who {
    pub uid: u32,
    pub gid: u32,
    pub name: String,
}

/// The first thing that stops the module user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blocked {
    pub user: String,
    pub path: PathBuf,
    /// What it cannot do: "enter", "read" or "run".
    pub what: &'static str,
    pub mode: u32,
}

impl fmt::Display for Blocked {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "modules run as {}, who cannot {} {} (mode {:04o})",
            self.user,
            self.what,
            self.path.display(),
            self.mode & 0o7777
        )
    }
}

/// Read, write and execute, as in a mode's bits.
const READ: u32 = 4;
const EXECUTE: u32 = 1;

fn allowed(meta: &Metadata, who: &Who, want: u32) -> bool {
    let mode = meta.mode();
    if who.uid == 0 {
        // Root may do anything but run a file nobody may run.
        return want & EXECUTE == 0 || meta.is_dir() || mode & 0o111 != 0;
    }
    let bits = if meta.uid() == who.uid {
        mode >> 6
    } else if meta.gid() == who.gid {
        mode >> 3
    } else {
        mode
    };
    bits & 7 & want == want
}

fn check(path: &Path, who: &Who, want: u32, what: &'static str) -> Result<(), Blocked> {
    let Ok(meta) = fs::metadata(path) else {
        return Ok(()); // gone: not a permission problem
    };
    if allowed(&meta, who, want) {
        return Ok(());
    }
    Err(Blocked {
        user: who.name.clone(),
        path: path.to_path_buf(),
        what,
        mode: meta.mode(),
    })
}

/// Search permission on `dir` and every folder above it.
pub fn folder(dir: &Path, who: &Who) -> Result<(), Blocked> {
    let dir = fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let mut chain: Vec<&Path> = dir.ancestors().collect();
    chain.reverse();
    for step in chain {
        check(step, who, EXECUTE, "enter")?;
    }
    Ok(())
}

/// What the user needs of one module file (its folder checked apart).
pub fn module(path: &Path, who: &Who) -> Result<(), Blocked> {
    let is_js = path.extension().is_some_and(|e| e == "js");
    if is_js {
        check(path, who, READ, "read")?;
        if let Some(node_modules) = path.parent().map(|d| d.join("node_modules")) {
            if node_modules.is_dir() {
                check(&node_modules, who, EXECUTE | READ, "enter")?;
            }
        }
        return Ok(());
    }
    check(path, who, EXECUTE, "run")?;
    if is_script(path) {
        check(path, who, READ, "read")?;
    }
    Ok(())
}

/// A file starting with `#!`: its interpreter must read it.
fn is_script(path: &Path) -> bool {
    let mut head = [0u8; 2];
    fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok_and(|()| &head == b"#!")
}

/// The folder and every module in it: executables and `.js` files.
pub fn modules(dir: &Path, who: &Who) -> Result<(), Blocked> {
    folder(dir, who)?;
    let Ok(entries) = fs::read_dir(dir) else {
        return Ok(()); // unreadable as the daemon: reported elsewhere
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .filter(|p| {
            let js = p.extension().is_some_and(|e| e == "js");
            js || fs::metadata(p).is_ok_and(|m| m.mode() & 0o111 != 0)
        })
        .collect();
    files.sort();
    for file in files {
        module(&file, who)?;
    }
    Ok(())
}

/// The daemon's own user, as a warning names it.
pub fn daemon_user() -> &'static str {
    // SAFETY: geteuid has no arguments and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        "root (bgjobd's own user)"
    } else {
        "bgjobd's own user"
    }
}

/// Who modules run as under these settings, if not the daemon itself.
pub fn module_user(settings: &Settings) -> Option<Who> {
    let (mut uid, gid) = settings.module_limits.identity?;
    let mut name = settings
        .module_user
        .clone()
        .unwrap_or_else(|| "nobody".into());
    if let Some((first, _)) = settings.module_uids {
        // Every uid of the range stands as "others" to the files.
        uid = first;
        name = format!("the module uids ({first}-...)");
    }
    Some(Who { uid, gid, name })
}

/// Settles who modules run as, now that the listeners are known: a root
/// daemon whose module user cannot reach the modules runs them as itself
/// when the user did not choose the module user and every listener is on
/// loopback (safe enough for trying it out), and refuses to start
/// otherwise. Modules others can change are refused there too, with a
/// listener other hosts can reach (`writable.rs`).
pub fn settle(settings: &mut Settings, modules_dir: &Path, exposed: bool) -> Result<(), Error> {
    crate::config::writable::settle(settings, modules_dir, exposed)?;
    let Some(who) = module_user(settings) else {
        return Ok(());
    };
    let Err(blocked) = modules(modules_dir, &who) else {
        return Ok(());
    };
    if settings.module_user.is_none() && settings.module_uids.is_none() && !exposed {
        log::warn!(
            "{blocked}: running modules as {} instead, as every listener is on \
             loopback; before listening elsewhere, {FIXES}",
            daemon_user()
        );
        settings.module_limits.identity = None;
        return Ok(());
    }
    Err(Error::Config(format!("{blocked}: {FIXES}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn tree(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("bgjob-reach-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("inner/modules")).unwrap();
        dir
    }

    fn chmod(path: &Path, mode: u32) {
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    }

    /// A user who owns none of the files and is in none of their groups.
    fn stranger() -> Who {
        Who {
            uid: 4_000_000,
            gid: 4_000_000,
            name: "stranger".into(),
        }
    }

    #[test]
    fn the_first_closed_folder_on_the_way_is_named() {
        let dir = tree("folder");
        chmod(&dir, 0o755);
        chmod(&dir.join("inner"), 0o700);
        let blocked = folder(&dir.join("inner/modules"), &stranger()).unwrap_err();
        assert_eq!(blocked.path, fs::canonicalize(dir.join("inner")).unwrap());
        assert_eq!(
            blocked.to_string(),
            format!(
                "modules run as stranger, who cannot enter {} (mode 0700)",
                blocked.path.display()
            )
        );
        chmod(&dir.join("inner"), 0o711);
        assert_eq!(folder(&dir.join("inner/modules"), &stranger()), Ok(()));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn scripts_need_reading_and_running() {
        let dir = tree("files");
        chmod(&dir, 0o755);
        let script = dir.join("s");
        fs::write(&script, "#!/bin/sh\necho hi\n").unwrap();
        chmod(&script, 0o711);
        assert_eq!(module(&script, &stranger()).unwrap_err().what, "read");
        chmod(&script, 0o744);
        assert_eq!(module(&script, &stranger()).unwrap_err().what, "run");
        chmod(&script, 0o755);
        assert_eq!(module(&script, &stranger()), Ok(()));
        let js = dir.join("m.js");
        fs::write(&js, "").unwrap();
        chmod(&js, 0o600);
        assert_eq!(module(&js, &stranger()).unwrap_err().what, "read");
        fs::remove_dir_all(&dir).unwrap();
    }
}
