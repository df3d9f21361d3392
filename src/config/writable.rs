//! Can others change the modules? Anyone who can write to the modules
//! folder, to a module, or to a folder above them can put code there that
//! runs as the module user and reads every client's data. Each of those is
//! a finding (a warning at start and on SIGHUP, listed by `--check-config`),
//! and with a listener other hosts can reach bgjobd refuses to start unless
//! `"allow_writable_modules": true` says the operator chose it.
//!
//! "Others" are users other than the file's owner and root: a path is
//! open when its group or everyone may write it. A sticky folder above the
//! modules (`/tmp`, mode 1777) lets others add entries but not rename or
//! remove those of someone else, so it is open only when its owner is
//! neither root nor the owner of the entry on the way, who could then move
//! that entry aside. The modules folder itself is open when writable by
//! others, sticky or not: a new module needs no one's entry moved.

use std::fmt;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::config::finding::{error, finding, Finding, Subject};
use crate::config::module_check::candidates;
use crate::config::Settings;
use crate::error::Error;

/// A path others can write, with its mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Open {
    pub path: PathBuf,
    pub mode: u32,
}

impl fmt::Display for Open {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let who = if self.mode & 0o002 != 0 {
            "anyone"
        } else {
            "its group"
        };
        write!(
            f,
            "{} is writable by {who} (mode {:04o}): whoever can write there runs code as the module user and reads every client's data",
            self.path.display(),
            self.mode & 0o7777
        )
    }
}

const WRITE_BY_OTHERS: u32 = 0o022;
const STICKY: u32 = 0o1000;

/// Every path others can write among the modules folder, the folders
/// above it, its modules (executables and `.js` files) and, for a module
/// that is a link, the folders above the file it points to.
pub fn open_paths(dir: &Path) -> Vec<Open> {
    let Ok(dir) = fs::canonicalize(dir) else {
        return Vec::new(); // missing: reported by the modules check
    };
    let mut open = Vec::new();
    let mut seen = Vec::new();
    chain(&dir, &mut open, &mut seen);
    for c in candidates(&dir).unwrap_or_default() {
        if !(c.executable || c.name.ends_with(".js")) {
            continue;
        }
        let Ok(target) = fs::canonicalize(&c.path) else {
            continue;
        };
        if let Some(parent) = target.parent().filter(|p| *p != dir) {
            chain(parent, &mut open, &mut seen);
        }
        if let Ok(meta) = fs::metadata(&target) {
            if meta.mode() & WRITE_BY_OTHERS != 0 {
                open.push(Open {
                    path: c.path,
                    mode: meta.mode(),
                });
            }
        }
    }
    open
}

/// `folder` (open if others may write it) and the folders above it (open
/// as the module docs say, sticky ones by their owner), each folder once.
fn chain(folder: &Path, open: &mut Vec<Open>, seen: &mut Vec<PathBuf>) {
    let mut below: Option<u32> = None; // owner of the entry on the way
    for step in folder.ancestors() {
        let Ok(meta) = fs::metadata(step) else {
            return;
        };
        let owner = meta.uid();
        let writable = meta.mode() & WRITE_BY_OTHERS != 0;
        let guarded = meta.mode() & STICKY != 0
            && below.is_some_and(|entry_owner| owner == 0 || owner == entry_owner);
        if writable && !guarded && !seen.iter().any(|s| s == step) {
            open.push(Open {
                path: step.to_path_buf(),
                mode: meta.mode(),
            });
        }
        if !seen.iter().any(|s| s == step) {
            seen.push(step.to_path_buf());
        }
        below = Some(owner);
    }
}

/// The check of `check.rs`: one finding per open path.
pub fn writable_modules(s: &Subject) -> Vec<Finding> {
    let exposed = s
        .config
        .listeners
        .iter()
        .any(|l| !l.addr.ip().is_loopback());
    let refused = exposed && !s.config.settings.allow_writable_modules;
    open_paths(s.modules_dir)
        .into_iter()
        .map(|o| {
            let mut fix = format!("chmod go-w {}", o.path.display());
            if refused {
                fix.push_str(
                    "; with a listener other hosts can reach, bgjobd refuses to start until then, or until \"allow_writable_modules\": true says so",
                );
            }
            match refused {
                true => error(o.to_string(), fix),
                false => finding(o.to_string(), fix),
            }
        })
        .collect()
}

/// At start and on SIGHUP: with a listener other hosts can reach, modules
/// others can change are refused unless the settings allow them.
pub fn settle(settings: &Settings, dir: &Path, exposed: bool) -> Result<(), Error> {
    if !exposed || settings.allow_writable_modules {
        return Ok(());
    }
    match open_paths(dir).into_iter().next() {
        None => Ok(()),
        Some(o) => Err(Error::Config(format!(
            "{o}; bgjobd listens where other hosts can reach it, so it refuses to run these modules: chmod go-w {}, or set \"allow_writable_modules\": true",
            o.path.display()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn chmod(path: &Path, mode: u32) {
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn open_folders_and_modules_are_found_and_sticky_ones_above_are_not() {
        let top = std::env::temp_dir().join(format!("bgjob-writable-{}", std::process::id()));
        let _ = fs::remove_dir_all(&top);
        let modules = top.join("modules");
        fs::create_dir_all(&modules).unwrap();
        let module = modules.join("m");
        fs::write(&module, "#!/bin/sh\n").unwrap();
        chmod(&module, 0o755);
        chmod(&modules, 0o755);
        chmod(&top, 0o755);
        let paths =
            |dir: &Path| -> Vec<PathBuf> { open_paths(dir).into_iter().map(|o| o.path).collect() };
        // The temporary folder above is sticky and owned by root or by us.
        assert_eq!(paths(&modules), Vec::<PathBuf>::new());
        chmod(&module, 0o757);
        assert_eq!(paths(&modules), vec![module.clone()]);
        chmod(&module, 0o755);
        chmod(&modules, 0o775);
        let canonical = fs::canonicalize(&modules).unwrap();
        assert_eq!(paths(&modules), vec![canonical.clone()]);
        chmod(&modules, 0o1777);
        assert_eq!(paths(&modules), vec![canonical], "sticky or not");
        chmod(&modules, 0o755);
        chmod(&top, 0o777);
        assert_eq!(paths(&modules), vec![fs::canonicalize(&top).unwrap()]);
        chmod(&top, 0o1777);
        assert_eq!(paths(&modules), Vec::<PathBuf>::new(), "sticky, ours");
        let o = Open {
            path: module,
            mode: 0o100777,
        };
        assert!(o.to_string().contains("writable by anyone (mode 0777)"));
        fs::remove_dir_all(&top).unwrap();
    }
}
