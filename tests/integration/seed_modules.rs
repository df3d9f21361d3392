//! The seed's example modules (`tests/seed/`), unchanged, in the seed's
//! layout: `service.config` and `package.json` at the top, the modules in
//! `modules/`, the npm packages in the top's `node_modules` (here the ones
//! `npm ci --prefix modules` installed for the shipped modules, linked in).
//! bgjobd runs from another folder. Each module works, or answers a clear
//! `NNN:` error naming what is missing.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::{Daemon, TempDir, BIN};

const SEED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/seed");
const PACKAGES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/modules/node_modules");

/// A copy of the seed's folder, with its npm packages and the
/// `modules/tmp/` its typescript.js writes to (open to the module user).
fn seed_folder(dir: &TempDir) -> PathBuf {
    assert!(
        Path::new(PACKAGES).join("less").is_dir()
            && Path::new(PACKAGES).join("typescript").is_dir(),
        "npm packages missing: run `npm ci --prefix modules` (bin/test does)"
    );
    let top = dir.path().join("seed");
    fs::create_dir_all(top.join("modules/tmp")).unwrap();
    fs::set_permissions(top.join("modules/tmp"), fs::Permissions::from_mode(0o777)).unwrap();
    for file in ["service.config", "package.json"] {
        fs::copy(Path::new(SEED).join(file), top.join(file)).unwrap();
    }
    for entry in fs::read_dir(Path::new(SEED).join("modules")).unwrap() {
        let path = entry.unwrap().path();
        fs::copy(&path, top.join("modules").join(path.file_name().unwrap())).unwrap();
    }
    std::os::unix::fs::symlink(PACKAGES, top.join("node_modules")).unwrap();
    top
}

/// bgjobd on the seed's folder, started from another working folder.
fn start(dir: TempDir, top: &Path, config: &Path) -> Daemon {
    Daemon::on_folder(dir, &top.join("modules"), &config.display().to_string())
}

/// What a module answers: `works` if its package is installed, else `missing`.
fn expect(package: &str, works: &str, missing: &'static str) -> String {
    if Path::new(PACKAGES).join(package).is_dir() {
        works.to_string()
    } else {
        missing.to_string()
    }
}

fn check_every_module(d: &Daemon, mode: &str) {
    let answers = [
        ("test:", "Test".to_string()),
        (
            "fail:",
            "500: Module fail exports nothing and wrote nothing".into(),
        ),
        (
            "less:@c: red;\n.a { color: @c; }",
            "500: Module less wrote an object, not a string or Buffer".into(),
        ),
        ("typescript:let x: number = 1;", "var x = 1;\n".into()),
        (
            "coffee:x = 1",
            expect(
                "coffee-script",
                "(function() {\n  var x;\n\n  x = 1;\n\n}).call(this);\n",
                "500: Module coffee needs the npm package coffee-script, which is not installed",
            ),
        ),
        (
            "jade:p Hello",
            expect(
                "jade",
                "<p>Hello</p>",
                "500: Module jade needs the npm package jade, which is not installed",
            ),
        ),
        (
            "sass:.a { .b { color: red; } }",
            expect(
                "node-sass",
                "500: Module sass wrote an object, not a string or Buffer",
                "404: SASS not available",
            ),
        ),
        (
            "roole:a\n  color: red",
            expect(
                "roole-parser",
                "a {\n  color: red;\n}",
                "404: ROOLE not available",
            ),
        ),
    ];
    for (request, answer) in &answers {
        assert_eq!(&d.ask_str(request), answer, "{request:?} ({mode})");
    }
    let id = d.ask_str("queue:add:test:");
    assert_eq!(d.ask_str(&format!("queue:get:{id}")), "Test", "{mode}");
    let leftovers: Vec<_> = fs::read_dir(d.modules.join("tmp")).unwrap().collect();
    assert!(leftovers.is_empty(), "typescript.js cleans up ({mode})");
}

#[test]
fn the_seeds_modules_run_unchanged_in_the_seeds_layout_warm_and_cold() {
    let dir = TempDir::new("seed-warm");
    let top = seed_folder(&dir);
    // The seed's own service.config: warm workers, the default.
    let d = start(dir, &top, &top.join("service.config"));
    check_every_module(&d, "warm");

    let dir = TempDir::new("seed-cold");
    let top = seed_folder(&dir);
    let cold = dir.path().join("cold.config");
    fs::write(&cold, r#"{"node_workers": 0}"#).unwrap();
    let d = start(dir, &top, &cold);
    check_every_module(&d, "cold");
}

#[test]
fn check_config_names_the_npm_command_for_the_seeds_layout() {
    let dir = TempDir::new("seed-check");
    let top = seed_folder(&dir);
    let out = Command::new(BIN)
        .current_dir(dir.path())
        .arg("--check-config")
        .arg("-c")
        .arg(top.join("service.config"))
        .arg("-m")
        .arg(top.join("modules"))
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let missing = ["jade", "coffee-script", "node-sass", "roole-parser"]
        .into_iter()
        .find(|package| !Path::new(PACKAGES).join(package).is_dir());
    let Some(package) = missing else {
        // Every package installed: nothing to hint at.
        assert!(!text.contains("needs the npm package"), "{text}");
        return;
    };
    let want = format!(
        "needs the npm package {package}, which is not installed (run `npm install` in {}, which installs its package.json's dependencies)",
        top.display()
    );
    assert!(text.contains(&want), "{want:?} not in:\n{text}");
    assert!(!text.contains("npm ci"), "no lock file here:\n{text}");
}
