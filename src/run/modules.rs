//! The module index: which names map to which files in the modules folder.
//!
//! `modules/<name>`, an executable file, runs directly; otherwise
//! `modules/<name>.js` runs under Node.js. The index is refreshed every 10
//! seconds from modification times, and a name it does not know is looked up
//! on the file system at once, so a module added a moment ago is found on its
//! first request.

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::SystemTime;

use crate::run::name::clean_module_name;

/// How a module file is run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An executable file, run directly.
    Executable,
    /// A `.js` file, run under `node`.
    Node,
}

/// A module file found in the folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Module {
    pub name: String,
    pub path: PathBuf,
    pub kind: Kind,
    pub modified: SystemTime,
    pub size: u64,
    /// SHA-256 of the file, for job receipts; read again only when the
    /// modification time or size changes.
    pub sha256: String,
}

/// True if the module's file is still a file, executable if it was.
fn still_there(module: &Module) -> bool {
    fs::metadata(&module.path).is_ok_and(|meta| {
        meta.is_file() && (module.kind == Kind::Node || meta.permissions().mode() & 0o111 != 0)
    })
}

/// The modules folder as last seen.
#[derive(Debug)]
pub struct ModuleIndex {
    dir: PathBuf,
    modules: HashMap<String, Rc<Module>>,
}

impl ModuleIndex {
    pub fn new(dir: PathBuf) -> Self {
        let mut index = ModuleIndex {
            dir,
            modules: HashMap::new(),
        };
        index.rescan();
        index
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn len(&self) -> usize {
        self.modules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.modules.is_empty()
    }

    /// Reads the folder again, logging what appeared, vanished or changed.
    pub fn rescan(&mut self) {
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) => {
                log::warn!("cannot read modules folder {}: {e}", self.dir.display());
                self.modules.clear();
                return;
            }
        };
        let mut found: HashMap<String, Rc<Module>> = HashMap::new();
        for entry in entries.flatten() {
            let file_name = entry.file_name();
            let Some(file_name) = file_name.to_str() else {
                continue;
            };
            let name = file_name.strip_suffix(".js").unwrap_or(file_name);
            if name.is_empty() || clean_module_name(name.as_bytes()) != name {
                continue;
            }
            // Only a name whose own lookup lands on this file, so the rescan
            // and the single lookup never disagree.
            if found.contains_key(name) {
                continue;
            }
            if let Some(module) = self.probe(name) {
                found.insert(name.to_string(), module);
            }
        }
        for (name, module) in &found {
            match self.modules.get(name) {
                None => log::info!("module {name} found: {}", module.path.display()),
                Some(old) if old != module => log::info!("module {name} changed"),
                Some(_) => {}
            }
        }
        for name in self.modules.keys().filter(|n| !found.contains_key(*n)) {
            log::info!("module {name} removed");
        }
        self.modules = found;
    }

    /// The module of that (cleaned) name, looking at the folder when the index
    /// does not know it yet.
    pub fn lookup(&mut self, name: &str) -> Option<Rc<Module>> {
        if let Some(module) = self.modules.get(name) {
            // One stat per request: a file removed or no longer executable
            // since the last scan is forgotten now, not at the next scan.
            if still_there(module) {
                return Some(module.clone());
            }
            log::info!("module {name} removed or no longer executable");
            self.modules.remove(name);
        }
        if name.is_empty() || name.len() > crate::run::name::MAX_MODULE_NAME {
            return None;
        }
        let module = self.probe(name)?;
        log::info!("module {name} found: {}", module.path.display());
        self.modules.insert(name.to_string(), module.clone());
        Some(module)
    }

    /// Drops a name whose file turned out to be gone.
    pub fn forget(&mut self, name: &str) {
        self.modules.remove(name);
    }

    fn probe(&self, name: &str) -> Option<Rc<Module>> {
        let exe = self.dir.join(name);
        let (path, kind, meta) = match fs::metadata(&exe) {
            Ok(meta) if meta.is_file() && meta.permissions().mode() & 0o111 != 0 => {
                (exe, Kind::Executable, meta)
            }
            _ => {
                let js = self.dir.join(format!("{name}.js"));
                let meta = fs::metadata(&js).ok().filter(|m| m.is_file())?;
                (js, Kind::Node, meta)
            }
        };
        let (modified, size) = (meta.modified().ok()?, meta.len());
        let path = absolute(path);
        if let Some(known) = self.modules.get(name) {
            if known.path == path && known.modified == modified && known.size == size {
                return Some(known.clone());
            }
        }
        let sha256 = sha256_file(&path).unwrap_or_default();
        Some(Rc::new(Module {
            name: name.to_string(),
            path,
            kind,
            modified,
            size,
            sha256,
        }))
    }
}

/// Modules run with the daemon's working folder, so their paths are made
/// absolute once, here.
fn absolute(path: PathBuf) -> PathBuf {
    std::path::absolute(&path).unwrap_or(path)
}

/// The SHA-256 of a file as lower-case hex, read as a stream so a large
/// module is never held in memory twice.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    use sha2::{Digest, Sha256};
    use std::io::Read;
    let mut file = fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0; 64 * 1024];
    loop {
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => hasher.update(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("bgjob-modules-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn write(dir: &Path, name: &str, mode: u32) {
        let path = dir.join(name);
        fs::write(&path, "#!/bin/sh\n").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn executables_win_over_js_and_plain_files_are_not_modules() {
        let dir = temp_dir("kinds");
        write(&dir, "both", 0o755);
        write(&dir, "both.js", 0o644);
        write(&dir, "script.js", 0o644);
        write(&dir, "plain", 0o644);
        write(&dir, "bad name", 0o755);
        let mut index = ModuleIndex::new(dir.clone());
        assert_eq!(index.len(), 2);
        assert_eq!(index.lookup("both").unwrap().kind, Kind::Executable);
        assert_eq!(index.lookup("script").unwrap().kind, Kind::Node);
        assert!(index.lookup("plain").is_none());
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn new_files_are_found_on_first_lookup_and_removed_ones_vanish_on_rescan() {
        let dir = temp_dir("fresh");
        let mut index = ModuleIndex::new(dir.clone());
        assert!(index.lookup("later").is_none());
        write(&dir, "later", 0o755);
        assert!(index.lookup("later").is_some());
        fs::remove_file(dir.join("later")).unwrap();
        index.rescan();
        assert!(index.lookup("later").is_none());
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn module_files_hash_as_sha256() {
        let dir = std::env::temp_dir().join(format!("bgjob-sha-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let file = dir.join("abc");
        fs::write(&file, b"abc").unwrap();
        assert_eq!(
            sha256_file(&file).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        fs::remove_dir_all(&dir).unwrap();
    }
}
