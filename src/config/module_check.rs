//! The start-up checks of the modules folder (see `check.rs`): names and
//! modes, and `#!` interpreters (the npm packages of `.js` modules are
//! `js_check.rs`'s).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::config::finding::{finding, Finding, Subject};
use crate::run::name::clean_module_name;

/// A file of the modules folder that may be a module.
pub struct Candidate {
    pub path: PathBuf,
    pub name: String,
    pub executable: bool,
}

/// The folder's visible files, sorted; `Err` if it cannot be read.
pub fn candidates(dir: &Path) -> Result<Vec<Candidate>, std::io::Error> {
    let mut paths: Vec<PathBuf> = fs::read_dir(dir)?.flatten().map(|e| e.path()).collect();
    paths.sort();
    Ok(paths
        .into_iter()
        .filter_map(|path| {
            let name = path.file_name()?.to_string_lossy().into_owned();
            let meta = fs::metadata(&path).ok()?;
            // Hidden files and folders (node_modules, ...) are not modules.
            (!name.starts_with('.') && meta.is_file()).then(|| Candidate {
                executable: meta.permissions().mode() & 0o111 != 0,
                path,
                name,
            })
        })
        .collect())
}

pub fn modules_folder(s: &Subject) -> Vec<Finding> {
    let dir = s.modules_dir.display();
    let files = match candidates(s.modules_dir) {
        Ok(files) => files,
        Err(e) => {
            return vec![finding(
                format!("modules folder {dir} cannot be read: {e}"),
                "create it, or give its path with -m",
            )]
        }
    };
    let node = &s.config.settings.node;
    let mut out = Vec::new();
    let mut told_node = false;
    for c in files {
        let name = &c.name;
        if let Some(stem) = name.strip_suffix(".js") {
            if clean_module_name(stem.as_bytes()) != stem {
                out.push(finding(
                    format!("module {name} cannot be called"),
                    "module names may only use a-z A-Z 0-9 - _",
                ));
            } else if !told_node && find_program(node).is_none() {
                told_node = true;
                out.push(finding(
                    format!("{name} needs Node.js, but {} is not found", node.display()),
                    "install nodejs, or set \"node\"",
                ));
            }
        } else if c.executable {
            if clean_module_name(name.as_bytes()) != *name {
                out.push(finding(
                    format!("module {name} cannot be called"),
                    "module names may only use a-z A-Z 0-9 - _",
                ));
            } else if !matches!(
                &head(&c.path)[..],
                [b'#', b'!', ..] | [0x7f, b'E', b'L', b'F', ..]
            ) {
                out.push(finding(
                    format!("module {name} is neither a script with a #! line nor a program"),
                    format!("start {} with a #! line", c.path.display()),
                ));
            }
        } else if !name.contains('.') {
            out.push(finding(
                format!("module {name} is not executable"),
                format!("chmod +x {}", c.path.display()),
            ));
        }
    }
    out
}

/// The first line of a file, at most 256 bytes.
fn head(path: &Path) -> Vec<u8> {
    use std::io::Read;
    let mut buf = vec![0; 256];
    let n = fs::File::open(path)
        .and_then(|mut f| f.read(&mut buf))
        .unwrap_or(0);
    buf.truncate(n);
    let end = buf.iter().position(|&b| b == b'\n').unwrap_or(buf.len());
    buf.truncate(end);
    buf
}

/// The program a script's `#!` line names, and for `#!/usr/bin/env NAME`
/// the program looked up on `PATH`.
fn interpreter(line: &[u8]) -> Option<(String, Option<String>)> {
    let line = std::str::from_utf8(line.strip_prefix(b"#!")?).ok()?;
    let mut words = line.split_whitespace();
    let program = words.next()?.to_string();
    let looked_up = program
        .ends_with("/env")
        .then(|| words.find(|w| !w.starts_with('-') && !w.contains('=')))
        .flatten()
        .map(str::to_string);
    Some((program, looked_up))
}

pub fn module_interpreters(s: &Subject) -> Vec<Finding> {
    let Ok(files) = candidates(s.modules_dir) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for c in files
        .iter()
        .filter(|c| c.executable && !c.name.ends_with(".js"))
    {
        let Some((program, looked_up)) = interpreter(&head(&c.path)) else {
            continue;
        };
        let missing = if find_program(Path::new(&program)).is_none() {
            Some(program)
        } else {
            looked_up.filter(|name| find_program(Path::new(name)).is_none())
        };
        if let Some(missing) = missing {
            out.push(finding(
                format!(
                    "module {}: its #! interpreter {missing} is not found",
                    c.name
                ),
                format!(
                    "install {missing}, or fix the first line of {}",
                    c.path.display()
                ),
            ));
        }
    }
    out
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn folder(tag: &str, files: &[(&str, &str, u32)]) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("bgjob-check-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("node_modules/present")).unwrap();
        for (name, text, mode) in files {
            fs::write(dir.join(name), text).unwrap();
            fs::set_permissions(dir.join(name), fs::Permissions::from_mode(*mode)).unwrap();
        }
        dir
    }

    fn findings(dir: &Path) -> Vec<String> {
        let config = Config::default();
        let subject = Subject {
            config: &config,
            modules_dir: dir,
        };
        let out = [modules_folder, module_interpreters]
            .iter()
            .flat_map(|check| check(&subject))
            .map(|f| f.to_string())
            .collect();
        fs::remove_dir_all(dir).unwrap();
        out
    }

    #[test]
    fn a_good_folder_has_no_findings() {
        let dir = folder(
            "good",
            &[
                ("test", "#!/bin/sh\n", 0o755),
                ("envy", "#!/usr/bin/env sh\n", 0o755),
                ("package.json", "{}", 0o644),
            ],
        );
        assert_eq!(findings(&dir), Vec::<String>::new());
    }

    #[test]
    fn every_problem_is_a_finding_with_its_fix() {
        let dir = folder(
            "bad",
            &[
                ("plain", "#!/bin/sh\n", 0o644),
                ("x.sh", "#!/bin/sh\n", 0o755),
                ("bare", "echo hi\n", 0o755),
                ("py", "#!/usr/bin/python9 -u\n", 0o755),
                ("envy", "#!/usr/bin/env -S nosuchinterp9\n", 0o755),
            ],
        );
        let found = findings(&dir).join("\n");
        for want in [
            "module plain is not executable (chmod +x ",
            "module x.sh cannot be called",
            "module bare is neither a script",
            "module py: its #! interpreter /usr/bin/python9 is not found",
            "module envy: its #! interpreter nosuchinterp9 is not found",
        ] {
            assert!(found.contains(want), "{want:?} not in:\n{found}");
        }
    }
}
