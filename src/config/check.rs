//! `bgjobd --check-config`: the config file and the modules folder, checked
//! before a start or a reload, with the first problem named.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::error::Error;
use crate::run::name::clean_module_name;

/// Checks the modules folder; returns how many modules it holds, or the
/// first problem found.
pub fn check_modules(dir: &Path, node: &Path) -> Result<usize, Error> {
    let problem = |what: String| Error::Config(format!("modules folder {}: {what}", dir.display()));
    let entries = fs::read_dir(dir).map_err(|e| problem(format!("cannot be read ({e})")))?;
    let mut names: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    names.sort();
    let mut modules = 0;
    for path in names {
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let Ok(meta) = fs::metadata(&path) else {
            continue;
        };
        if file_name.starts_with('.') || !meta.is_file() {
            continue; // hidden files and folders (node_modules, ...) are not modules
        }
        let executable = meta.permissions().mode() & 0o111 != 0;
        if let Some(stem) = file_name.strip_suffix(".js") {
            if clean_module_name(stem.as_bytes()) != stem {
                return Err(problem(format!(
                    "{file_name}: module names may only use a-z A-Z 0-9 - _"
                )));
            }
            if find_program(node).is_none() {
                return Err(problem(format!(
                    "{file_name} needs Node.js, but {} is not found (install nodejs, or set \"node\")",
                    node.display()
                )));
            }
            modules += 1;
        } else if executable {
            if clean_module_name(file_name.as_bytes()) != file_name {
                return Err(problem(format!(
                    "{file_name} cannot be called: module names may only use a-z A-Z 0-9 - _"
                )));
            }
            let head = fs::read(&path)
                .map(|b| b.into_iter().take(4).collect::<Vec<u8>>())
                .unwrap_or_default();
            if !head.starts_with(b"#!") && !head.starts_with(b"\x7fELF") {
                return Err(problem(format!(
                    "{file_name} is neither a script with a #! line nor a program"
                )));
            }
            modules += 1;
        } else if !file_name.contains('.') {
            return Err(problem(format!(
                "{file_name} is not executable (chmod +x {})",
                path.display()
            )));
        }
    }
    Ok(modules)
}

/// A program as `Command` would find it: a path, or a name on `PATH`.
pub fn find_program(program: &Path) -> Option<PathBuf> {
    let is_exe = |p: &Path| {
        fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.components().count() > 1 {
        return is_exe(program).then(|| program.to_path_buf());
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|p| is_exe(p))
}

/// The summary line of a good configuration.
pub fn summary(config: &Config, modules: usize, dir: &Path) -> String {
    let listeners: Vec<String> = config
        .listeners
        .iter()
        .map(|l| format!("{}{}", l.addr, if l.udp { "" } else { "/tcp" }))
        .collect();
    format!(
        "configuration ok: listeners {}, {modules} modules in {}",
        listeners.join(" "),
        dir.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("bgjob-check-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("node_modules")).unwrap();
        dir
    }

    fn file(dir: &Path, name: &str, text: &str, mode: u32) {
        fs::write(dir.join(name), text).unwrap();
        fs::set_permissions(dir.join(name), fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn a_good_folder_counts_its_modules() {
        let d = dir("good");
        file(&d, "test", "#!/bin/sh\n", 0o755);
        file(&d, "package.json", "{}", 0o644);
        file(&d, ".hidden", "", 0o644);
        file(&d, "page.js", "", 0o644);
        assert_eq!(check_modules(&d, Path::new("sh")).unwrap(), 2);
        fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn problems_are_named() {
        let cases: [(&str, &str, u32, &str); 3] = [
            ("plain", "#!/bin/sh\n", 0o644, "plain is not executable"),
            ("x.sh", "#!/bin/sh\n", 0o755, "x.sh cannot be called"),
            ("bare", "echo hi\n", 0o755, "bare is neither a script"),
        ];
        for (name, text, mode, want) in cases {
            let d = dir(name);
            file(&d, name, text, mode);
            let err = check_modules(&d, Path::new("sh")).unwrap_err().to_string();
            assert!(err.contains(want), "{err}");
            fs::remove_dir_all(d).unwrap();
        }
        let d = dir("js");
        file(&d, "page.js", "", 0o644);
        let err = check_modules(&d, Path::new("no-such-node-binary"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("page.js needs Node.js"), "{err}");
        fs::remove_dir_all(d).unwrap();
        assert!(check_modules(Path::new("/nonexistent/modules"), Path::new("sh")).is_err());
    }
}
