//! The module index: which names map to which files in the modules folder.
//!
//! `modules/<name>`, an executable file, runs directly; otherwise
//! `modules/<name>.js` runs under Node.js. The index is refreshed every 10
//! seconds from modification times, and a name it does not know is looked up
//! on the file system at once, so a module added a moment ago is found on its
//! first request.

use std::cell::OnceCell;
use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::SystemTime;

use crate::ratelimit::RateLimit;
use crate::run::hasher::{FileKey, Hasher};
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
    /// SHA-256 of the file, for job receipts, once the hashing thread has
    /// read it (see `hasher.rs`).
    pub sha256: OnceCell<String>,
    /// What identifies this version of the file.
    pub key: FileKey,
}

impl Module {
    /// The file's SHA-256, or `pending` while the hashing thread reads it.
    pub fn hash_for_receipt(&self) -> String {
        self.sha256
            .get()
            .cloned()
            .unwrap_or_else(|| "pending".into())
    }
}

/// True if the module's file is still a file, executable if it was.
fn still_there(module: &Module) -> bool {
    fs::metadata(&module.path).is_ok_and(|meta| {
        meta.is_file() && (module.kind == Kind::Node || meta.permissions().mode() & 0o111 != 0)
    })
}

/// The modules folder as last seen.
pub struct ModuleIndex {
    dir: PathBuf,
    modules: HashMap<String, Rc<Module>>,
    hasher: Hasher,
    /// Modules whose hash is being computed, by file.
    hashing: HashMap<FileKey, Vec<Rc<Module>>>,
    /// Vanished modules are warned of (clients calling them now get
    /// `400`), at most one line a second, as other warnings.
    vanished: RateLimit,
}

impl ModuleIndex {
    pub fn new(dir: PathBuf, hasher: Hasher) -> Self {
        let mut index = ModuleIndex {
            dir,
            modules: HashMap::new(),
            hasher,
            hashing: HashMap::new(),
            vanished: RateLimit::new(std::time::Duration::from_secs(1)),
        };
        index.rescan();
        index
    }

    /// Hashes the hashing thread finished go to their modules.
    pub fn take_hashes(&mut self) {
        for (key, hash) in self.hasher.finished() {
            for module in self.hashing.remove(&key).unwrap_or_default() {
                let _ = module.sha256.set(hash.clone());
            }
        }
    }

    /// The names of the modules found at the last scan or lookup.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.modules.keys().map(String::as_str)
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
        let mut gone: Vec<&str> = (self.modules.keys())
            .filter(|n| !found.contains_key(*n))
            .map(String::as_str)
            .collect();
        gone.sort_unstable();
        // One line per scan (every 10 s at most, and each SIGHUP), whatever
        // the number, so it needs no rate limit.
        if !gone.is_empty() {
            let kind = if gone.len() == 1 { "module" } else { "modules" };
            log::warn!("{kind} {} removed", gone.join(", "));
        }
        self.modules = found;
    }

    /// The module of that name as the index last saw it, without looking
    /// at its file.
    pub fn known(&self, name: &str) -> Option<Rc<Module>> {
        self.modules.get(name).cloned()
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
            self.tell_vanished(format_args!(
                "module {name} removed or no longer executable"
            ));
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

    /// A warning that a module vanished, found by a request's lookup:
    /// rate-limited, as requests come as fast as clients send them.
    fn tell_vanished(&mut self, line: std::fmt::Arguments) {
        match self
            .vanished
            .admit("module removed", std::time::Instant::now())
        {
            Some(0) => log::warn!("{line}"),
            Some(held) => log::warn!("{line} (and {held} more removals not logged)"),
            None => log::debug!("{line}"),
        }
    }

    /// Drops a name whose file turned out to be gone.
    pub fn forget(&mut self, name: &str) {
        self.modules.remove(name);
    }

    fn probe(&mut self, name: &str) -> Option<Rc<Module>> {
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
        let key = FileKey {
            dev: meta.dev(),
            ino: meta.ino(),
            size,
            modified,
        };
        if let Some(known) = self.modules.get(name) {
            if known.path == path && known.key == key {
                return Some(known.clone());
            }
        }
        let module = Rc::new(Module {
            name: name.to_string(),
            path,
            kind,
            modified,
            size,
            sha256: OnceCell::new(),
            key,
        });
        match self.hasher.hash(&module.key, &module.path) {
            Some(hash) => {
                let _ = module.sha256.set(hash);
            }
            None => self
                .hashing
                .entry(module.key.clone())
                .or_default()
                .push(module.clone()),
        }
        Some(module)
    }
}

/// A module's path is made absolute once, here: it is run from the modules
/// folder, and logged and checked from elsewhere.
fn absolute(path: PathBuf) -> PathBuf {
    std::path::absolute(&path).unwrap_or(path)
}

/// A module that exists only in memory, for unit tests of what holds one.
#[cfg(test)]
pub fn test_module(name: &str) -> Module {
    let epoch = SystemTime::UNIX_EPOCH;
    Module {
        name: name.into(),
        path: "/bin/true".into(),
        kind: Kind::Executable,
        modified: epoch,
        size: 0,
        sha256: Default::default(),
        key: FileKey {
            dev: 0,
            ino: 0,
            size: 0,
            modified: epoch,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// An index with a hashing thread of its own.
    fn index(dir: PathBuf) -> ModuleIndex {
        let poll = mio::Poll::new().unwrap();
        let waker = std::sync::Arc::new(mio::Waker::new(poll.registry(), mio::Token(0)).unwrap());
        ModuleIndex::new(dir, Hasher::start(waker).unwrap())
    }

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
        let mut index = index(dir.clone());
        assert_eq!(index.len(), 2);
        assert_eq!(index.lookup("both").unwrap().kind, Kind::Executable);
        assert_eq!(index.lookup("script").unwrap().kind, Kind::Node);
        assert!(index.lookup("plain").is_none());
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn new_files_are_found_on_first_lookup_and_removed_ones_vanish_on_rescan() {
        let dir = temp_dir("fresh");
        let mut index = index(dir.clone());
        assert!(index.lookup("later").is_none());
        write(&dir, "later", 0o755);
        assert!(index.lookup("later").is_some());
        fs::remove_file(dir.join("later")).unwrap();
        index.rescan();
        assert!(index.lookup("later").is_none());
        fs::remove_dir_all(dir).unwrap();
    }
}
