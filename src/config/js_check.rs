//! The start-up checks of `.js` modules (see `check.rs`): the npm packages
//! they `require`, with the npm command that installs a missing one for the
//! layout found (the seed kept its `package.json` beside its `modules/`
//! folder, without a lock file; the shipped modules keep theirs, with a
//! lock file, in the modules folder), and the working folder they run in.

use std::fs;
use std::path::Path;

use crate::config::finding::{finding, Finding, Subject};
use crate::config::module_check::candidates;
use crate::config::reach;
use crate::node::workdir::js_working_dir;

/// The folder `.js` modules run in must be one the module user can enter.
pub fn js_working_folder(s: &Subject) -> Vec<Finding> {
    let Ok(files) = candidates(s.modules_dir) else {
        return Vec::new();
    };
    if !files.iter().any(|c| c.name.ends_with(".js")) {
        return Vec::new();
    }
    let dir = js_working_dir(s.config.settings.js_working_dir.as_deref(), s.modules_dir);
    if !dir.is_dir() {
        return vec![finding(
            format!(
                "the .js modules' working folder {} is not a folder",
                dir.display()
            ),
            "create it, or set js_working_dir to a folder the module user can enter",
        )];
    }
    let blocked =
        reach::module_user(&s.config.settings).and_then(|who| reach::folder(&dir, &who).err());
    match blocked {
        Some(blocked) => vec![finding(
            format!("{blocked}, on the way to the .js modules' working folder"),
            reach::FIXES,
        )],
        None => Vec::new(),
    }
}

/// Node.js's own modules, which need no package.
const NODE_BUILTINS: &[&str] = &[
    "assert",
    "buffer",
    "child_process",
    "crypto",
    "dgram",
    "dns",
    "events",
    "fs",
    "http",
    "https",
    "net",
    "os",
    "path",
    "process",
    "querystring",
    "readline",
    "stream",
    "string_decoder",
    "timers",
    "tty",
    "url",
    "util",
    "vm",
    "worker_threads",
    "zlib",
];

/// The npm packages a `.js` file `require`s (relative paths and Node.js's
/// own modules left out): `require('less')`, `require("@scope/pkg/sub")`.
fn required_packages(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for piece in text.split("require(").skip(1) {
        let piece = piece.trim_start();
        let Some(quote) = piece.chars().next().filter(|q| *q == '\'' || *q == '"') else {
            continue;
        };
        let Some(spec) = piece[1..].split(quote).next() else {
            continue;
        };
        if spec.starts_with('.') || spec.starts_with('/') || spec.starts_with("node:") {
            continue;
        }
        let parts: Vec<&str> = spec.split('/').collect();
        let package = match parts.as_slice() {
            [scope, name, ..] if scope.starts_with('@') => format!("{scope}/{name}"),
            [name, ..] => name.to_string(),
            [] => continue,
        };
        if !NODE_BUILTINS.contains(&package.as_str()) && !out.contains(&package) {
            out.push(package);
        }
    }
    out
}

/// How much of a `.js` module is searched for `require` calls: this check
/// runs at start and on every reload, on the loop, and a module's requires
/// stand near its top; a large bundled module is not read whole.
const REQUIRE_SCAN: u64 = 256 * 1024;

/// The first [`REQUIRE_SCAN`] bytes of a file, as text.
fn leading_text(path: &Path) -> String {
    use std::io::Read;
    let mut bytes = Vec::new();
    if let Ok(file) = fs::File::open(path) {
        let _ = file.take(REQUIRE_SCAN).read_to_end(&mut bytes);
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

pub fn node_packages(s: &Subject) -> Vec<Finding> {
    let Ok(files) = candidates(s.modules_dir) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for c in files.iter().filter(|c| c.name.ends_with(".js")) {
        let text = leading_text(&c.path);
        // Node.js looks in node_modules next to the file's real path, then
        // in every folder above it.
        let real = fs::canonicalize(&c.path).unwrap_or_else(|_| c.path.clone());
        for package in required_packages(&text) {
            let found = real
                .ancestors()
                .skip(1)
                .any(|dir| dir.join("node_modules").join(&package).is_dir());
            if !found {
                out.push(finding(
                    format!(
                        "module {} needs the npm package {package}, which is not installed",
                        c.name
                    ),
                    install_hint(&real, &package),
                ));
            }
        }
    }
    out
}

/// The npm command that installs a missing package where Node.js finds it,
/// for the layout found: npm works in the folder of the nearest
/// `package.json` above the module (beside the modules, as the seed keeps
/// it, or in the modules folder), and Node.js looks in the `node_modules`
/// of every folder above the module. `npm ci` needs a lock file; a package
/// that `package.json` does not declare needs its name.
fn install_hint(module: &Path, package: &str) -> String {
    let here = module.parent().unwrap_or(Path::new("."));
    let Some(dir) = here.ancestors().find(|d| d.join("package.json").is_file()) else {
        return format!(
            "run `npm install {package}` in {}: there is no package.json above the module",
            here.display()
        );
    };
    let shown = dir.display();
    if !declares(&dir.join("package.json"), package) {
        return format!(
            "run `npm install {package}` in {shown}: its package.json does not list it"
        );
    }
    let locked = ["package-lock.json", "npm-shrinkwrap.json"]
        .iter()
        .any(|lock| dir.join(lock).is_file());
    if locked {
        format!("run `npm ci` in {shown}, which installs its package.json's lock file")
    } else {
        format!("run `npm install` in {shown}, which installs its package.json's dependencies")
    }
}

/// True if the `package.json` lists the package among its dependencies.
fn declares(package_json: &Path, package: &str) -> bool {
    let Ok(text) = fs::read_to_string(package_json) else {
        return false;
    };
    let Ok(json) = serde_json::from_str::<serde_json::Value>(&text) else {
        return false;
    };
    [
        "dependencies",
        "optionalDependencies",
        "devDependencies",
        "peerDependencies",
    ]
    .iter()
    .any(|field| json.get(field).and_then(|deps| deps.get(package)).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_package_is_a_finding_and_a_present_one_is_not() {
        let dir = std::env::temp_dir().join(format!("bgjob-npm-check-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("node_modules/present")).unwrap();
        fs::write(
            dir.join("page.js"),
            "require('present'); require('./x'); require('fs'); require(\"absent/sub\")",
        )
        .unwrap();
        let config = crate::config::Config::default();
        let subject = Subject {
            config: &config,
            modules_dir: &dir,
        };
        let found: Vec<String> = node_packages(&subject)
            .iter()
            .map(|f| f.to_string())
            .collect();
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].starts_with(
                "module page.js needs the npm package absent, which is not installed (run `npm install absent` in "
            ),
            "{found:?}"
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_working_folder_must_exist_when_there_are_js_modules() {
        let dir = std::env::temp_dir().join(format!("bgjob-js-folder-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("modules")).unwrap();
        let mut config = crate::config::Config::default();
        config.settings.js_working_dir = Some(dir.join("gone"));
        let modules = dir.join("modules");
        let subject = Subject {
            config: &config,
            modules_dir: &modules,
        };
        assert_eq!(js_working_folder(&subject), Vec::new(), "no .js module");
        fs::write(modules.join("m.js"), "").unwrap();
        let found = js_working_folder(&subject);
        assert_eq!(found.len(), 1);
        assert!(found[0].what.ends_with("gone is not a folder"), "{found:?}");
        config.settings.js_working_dir = None;
        let subject = Subject {
            config: &config,
            modules_dir: &modules,
        };
        assert_eq!(
            js_working_folder(&subject),
            Vec::new(),
            "the default exists"
        );
        // A module user who cannot enter it is told, with the fixes.
        use std::os::unix::fs::PermissionsExt;
        fs::create_dir(dir.join("closed")).unwrap();
        fs::set_permissions(dir.join("closed"), fs::Permissions::from_mode(0o700)).unwrap();
        config.settings.js_working_dir = Some(dir.join("closed"));
        config.settings.module_limits.identity = Some((4_000_000, 4_000_000));
        let subject = Subject {
            config: &config,
            modules_dir: &modules,
        };
        let found = js_working_folder(&subject);
        assert_eq!(found.len(), 1);
        assert!(
            found[0]
                .what
                .starts_with("modules run as nobody, who cannot enter ")
                && found[0].what.contains("closed (mode 0700), on the way to"),
            "{found:?}"
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_npm_hint_fits_the_layout() {
        let top = std::env::temp_dir().join(format!("bgjob-check-npm-{}", std::process::id()));
        let _ = fs::remove_dir_all(&top);
        let modules = top.join("modules");
        fs::create_dir_all(&modules).unwrap();
        let module = modules.join("less.js");
        let hint = |package| install_hint(&module, package);
        let shown = |dir: &Path| dir.display().to_string();
        assert!(
            hint("less").starts_with(&format!("run `npm install less` in {}:", shown(&modules))),
            "no package.json: {}",
            hint("less")
        );
        // The seed's layout: package.json beside the modules, no lock file.
        fs::write(
            top.join("package.json"),
            r#"{"dependencies": {"less": "*"}}"#,
        )
        .unwrap();
        assert!(hint("less").starts_with(&format!("run `npm install` in {},", shown(&top))));
        assert!(hint("jade").starts_with(&format!("run `npm install jade` in {}:", shown(&top))));
        fs::write(top.join("package-lock.json"), "{}").unwrap();
        assert!(hint("less").starts_with(&format!("run `npm ci` in {},", shown(&top))));
        // A package.json in the modules folder is the nearer one.
        fs::write(
            modules.join("package.json"),
            r#"{"dependencies": {"less": "*"}}"#,
        )
        .unwrap();
        assert!(hint("less").starts_with(&format!("run `npm install` in {},", shown(&modules))));
        fs::remove_dir_all(&top).unwrap();
    }

    #[test]
    fn required_packages_are_read_from_the_source() {
        assert_eq!(
            required_packages("require('less'); require( \"@s/p/x\"); require('os'); require(x)"),
            ["less", "@s/p"]
        );
    }
}
