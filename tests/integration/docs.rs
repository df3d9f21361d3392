//! Every code block of the README and of `docs/` is run or checked, so none
//! can rot. A block's info string says how:
//! - `sh run`, `php run`, `python run`: run in order, per file, in one
//!   folder, against one live daemon (whose modules folder is `./modules`);
//!   `12341` stands for its port (and `bgjob`'s default server for its
//!   address), `127.0.0.1:9464` for its metrics listener, `127.0.0.1:9465`
//!   for its dashboard. A `text output` block right after is the exact stdout.
//!   The folder also holds a copy of the checkout's `clients/` (the client
//!   libraries, installed from there as the docs show), and `python` blocks
//!   find the Python library on `PYTHONPATH`.
//!   The README's blocks run as a newcomer runs them: in a folder laid out
//!   as the clone after its first command (`service.config`, `modules/`,
//!   `target/release/bgjobd` and `bgjob`), against the daemon that command
//!   starts there, with a plain `PATH`. The blocks of `docs/` find `bgjob`
//!   on the `PATH`, as the package installs it.
//! - `sh ci`: each command is run by `.ci/run`, `bin/test` or
//!   `.ci/package-lifecycle` (its words appear, in order, in one of their
//!   lines, quotes aside).
//! - `json`: a configuration file `bgjobd --check-config --warnings-ok`
//!   accepts (with an empty modules folder, so policies warn).
//! - `text synopsis=PROG`: every option and subcommand it names is in
//!   `PROG --help` (or a subcommand's).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::{Daemon, Setup, TempDir, BIN};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// A fenced code block: where it starts, its info string and its text.
struct Block {
    line: usize,
    info: Vec<String>,
    text: String,
}

fn blocks(path: &Path) -> Vec<Block> {
    let text = fs::read_to_string(path).unwrap();
    let mut out = Vec::new();
    let mut open: Option<Block> = None;
    for (i, line) in text.lines().enumerate() {
        match (&mut open, line.strip_prefix("```")) {
            (None, Some(info)) => {
                open = Some(Block {
                    line: i + 1,
                    info: info.split_whitespace().map(str::to_string).collect(),
                    text: String::new(),
                })
            }
            (Some(_), Some("")) => out.push(open.take().unwrap()),
            (Some(block), _) => {
                block.text.push_str(line);
                block.text.push('\n');
            }
            (None, None) => {}
        }
    }
    assert!(
        open.is_none(),
        "{}: a code block is not closed",
        path.display()
    );
    out
}

fn documents() -> Vec<PathBuf> {
    let mut files = vec![Path::new(ROOT).join("README.md")];
    let mut docs: Vec<PathBuf> = fs::read_dir(Path::new(ROOT).join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    files
}

fn bin_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_bgjob"))
        .parent()
        .unwrap()
        .to_owned()
}

/// The `PATH` of a fresh login: nothing of this repository on it.
const PLAIN_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The README's first command, as a newcomer runs it in the clone: it
/// builds `target/release/`, then runs the daemon there without arguments,
/// on `./service.config`, `./modules` and `./state`. Here the folder is a
/// copy of the clone's files (the port made free: `-1` prints it) whose
/// `target/release/` holds the programs this test was built with.
fn first_command_daemon(readme: &[Block]) -> (Daemon, String) {
    let first = readme
        .iter()
        .find(|b| b.info[0] == "sh")
        .expect("README: no first command");
    let command = first
        .text
        .lines()
        .next()
        .unwrap()
        .split(" #")
        .next()
        .unwrap();
    let daemon = command.rsplit("&& ").next().unwrap().trim();
    assert_eq!(
        daemon, "target/release/bgjobd",
        "README:{}: the first command should run the daemon it built, without arguments",
        first.line
    );
    let dir = TempDir::new("clone");
    let config = fs::read_to_string(Path::new(ROOT).join("service.config")).unwrap();
    fs::write(
        dir.path().join("service.config"),
        config.replace("12341", "0"),
    )
    .unwrap();
    let modules = dir.path().join("modules");
    fs::create_dir(&modules).unwrap();
    for name in ["test", "fail", "upper", "wc"] {
        let script = fs::read_to_string(Path::new(ROOT).join("modules").join(name)).unwrap();
        crate::util::write_module(&modules, name, &script);
    }
    let release = dir.path().join("target/release");
    fs::create_dir_all(&release).unwrap();
    for program in ["bgjobd", "bgjob"] {
        std::os::unix::fs::symlink(bin_dir().join(program), release.join(program)).unwrap();
    }
    let d = Daemon::spawn(dir, modules, vec!["-1".into()]);
    (d, "127.0.0.1:9464".into())
}

/// The daemon `run` blocks talk to, with the repository's shell modules.
fn live_daemon() -> (Daemon, String) {
    let mut setup = Setup::new()
        .settings(r#""state_dir": "none", "metrics": "127.0.0.1:0""#)
        .web("");
    for name in ["test", "fail", "upper", "wc"] {
        let script = fs::read_to_string(Path::new(ROOT).join("modules").join(name)).unwrap();
        setup = setup.module(name, &script);
    }
    let d = setup.start();
    copy_client_libraries(d.dir.path());
    d.wait_log("metrics on http://");
    let log = d.log();
    let metrics = log.split_once("metrics on http://").unwrap().1;
    let metrics = metrics.split_once("/metrics").unwrap().0.to_string();
    (d, metrics)
}

/// The checkout's `clients/` into the blocks' folder, so that installing
/// the libraries from there (which writes build files) leaves the checkout
/// as it was.
fn copy_client_libraries(dir: &Path) {
    let ok = Command::new("cp")
        .arg("-r")
        .arg(Path::new(ROOT).join("clients"))
        .arg(dir)
        .status()
        .unwrap();
    assert!(ok.success(), "cp -r clients {}", dir.display());
}

fn run_block(block: &Block, d: &Daemon, metrics: &str, path: &str, where_: &str) -> String {
    let program = match block.info[0].as_str() {
        "sh" => vec!["sh", "-e"],
        "php" => vec!["php"],
        "python" => vec!["python3"],
        other => panic!("{where_}: cannot run {other}"),
    };
    let mut text = block.text.clone();
    if d.log().contains("dashboard on http://") {
        text = text.replace("127.0.0.1:9465", &d.web_addr().to_string());
    }
    let text = text
        .replace("127.0.0.1:9464", metrics)
        .replace("12341", &d.addr.port().to_string());
    let script = d.dir.path().join(".snippet");
    fs::write(&script, text).unwrap();
    let o = Command::new(program[0])
        .args(&program[1..])
        .arg(&script)
        .current_dir(d.dir.path())
        .env("PATH", path)
        .env("BGJOB_SERVER", d.addr.to_string())
        .env("PYTHONPATH", d.dir.path().join("clients/python/src"))
        .output()
        .unwrap_or_else(|e| panic!("{where_}: {} (bin/test installs it): {e}", program[0]));
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "{where_}: {:?}\n{}{stdout}{}",
        o.status,
        block.text,
        String::from_utf8_lossy(&o.stderr)
    );
    stdout
}

/// The CI scripts' lines, as words.
fn ci_lines() -> Vec<Vec<String>> {
    [".ci/run", "bin/test", ".ci/package-lifecycle"]
        .iter()
        .flat_map(|f| {
            let text = fs::read_to_string(Path::new(ROOT).join(f)).unwrap();
            text.lines()
                .map(|l| {
                    l.split_whitespace()
                        .map(|w| w.trim_matches(|c| c == '\'' || c == '"').to_string())
                        .collect()
                })
                .collect::<Vec<Vec<String>>>()
        })
        .collect()
}

fn in_order(words: &[&str], line: &[String]) -> bool {
    let mut rest = line.iter();
    words.iter().all(|w| rest.any(|l| l == w))
}

fn check_ci(block: &Block, where_: &str) {
    let ci = ci_lines();
    for line in block.text.lines() {
        let command = line.split(" #").next().unwrap().trim();
        if command.is_empty() {
            continue;
        }
        let words: Vec<&str> = command.split_whitespace().collect();
        assert!(
            ci.iter().any(|l| in_order(&words, l)),
            "{where_}: `{command}` is not run by .ci/run, bin/test or .ci/package-lifecycle"
        );
    }
}

/// The names `"module_policy": {"a": {...}, "b": {...}}` maps, if any:
/// the strings directly inside its object (its values are objects).
fn policy_modules(json: &str) -> Vec<String> {
    let Some(at) = json.find("\"module_policy\"") else {
        return Vec::new();
    };
    let (mut names, mut depth, mut name) = (Vec::new(), 0, None::<String>);
    for c in json[at..].chars().skip_while(|&c| c != '{') {
        if let Some(n) = &mut name {
            if c == '"' {
                names.push(std::mem::take(n));
                name = None;
            } else {
                n.push(c);
            }
            continue;
        }
        match c {
            '{' => depth += 1,
            '}' if depth == 1 => break,
            '}' => depth -= 1,
            '"' if depth == 1 => name = Some(String::new()),
            _ => {}
        }
    }
    names
}

fn check_json(block: &Block, where_: &str) {
    let dir = TempDir::new("docjson");
    fs::create_dir(dir.path().join("modules")).unwrap();
    // The modules a block's `module_policy` names exist, as they would
    // where the block is used: a policy for a missing module is a warning.
    for name in policy_modules(&block.text) {
        crate::util::write_module(&dir.path().join("modules"), &name, "#!/bin/sh\ncat\n");
    }
    fs::write(dir.path().join("c.json"), &block.text).unwrap();
    let o = Command::new(BIN)
        .args([
            "--check-config",
            "--warnings-ok",
            "-c",
            "c.json",
            "-m",
            "modules",
        ])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{where_}: {}{}",
        block.text,
        String::from_utf8_lossy(&o.stderr)
    );
}

fn help(program: &str, args: &[&str]) -> Option<String> {
    let exe = bin_dir().join(program);
    let o = Command::new(exe).args(args).arg("--help").output().unwrap();
    o.status
        .success()
        .then(|| String::from_utf8_lossy(&o.stdout).into_owned())
}

fn check_synopsis(block: &Block, program: &str, where_: &str) {
    let mut known = help(program, &[]).unwrap();
    let subcommands: Vec<&str> = block
        .text
        .lines()
        .skip(1)
        .filter(|l| l.starts_with("  ") && !l.trim_start().starts_with('['))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    for sub in &subcommands {
        let text = help(program, &[sub]).unwrap_or_else(|| panic!("{where_}: no subcommand {sub}"));
        known.push_str(&text);
    }
    let flags = block
        .text
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .filter(|w| w.starts_with("--") && w.len() > 2);
    for flag in flags {
        assert!(
            known.contains(flag),
            "{where_}: {flag} is not in `{program} --help`"
        );
    }
}

#[test]
fn every_code_block_of_the_documentation_runs_or_is_checked() {
    let mut ran = 0;
    for path in documents() {
        let name = path.strip_prefix(ROOT).unwrap().display().to_string();
        let blocks = blocks(&path);
        let readme = name == "README.md";
        let search = match readme {
            true => PLAIN_PATH.to_string(),
            false => format!("{}:{}", bin_dir().display(), std::env::var("PATH").unwrap()),
        };
        let mut live: Option<(Daemon, String)> = None;
        let mut last_output: Option<String> = None;
        for block in &blocks {
            let where_ = format!("{name}:{}", block.line);
            let info: Vec<&str> = block.info.iter().map(String::as_str).collect();
            match info.as_slice() {
                [_, "run"] => {
                    let (d, metrics) = live.get_or_insert_with(|| match readme {
                        true => first_command_daemon(&blocks),
                        false => live_daemon(),
                    });
                    last_output = Some(run_block(block, d, metrics, &search, &where_));
                    ran += 1;
                    continue;
                }
                ["text", "output"] => {
                    let got = last_output
                        .as_deref()
                        .unwrap_or_else(|| panic!("{where_}: output without a run block"));
                    assert_eq!(got, block.text, "{where_}: the output differs");
                }
                ["sh", "ci"] => check_ci(block, &where_),
                ["json"] => check_json(block, &where_),
                ["text", synopsis] if synopsis.starts_with("synopsis=") => {
                    check_synopsis(block, &synopsis["synopsis=".len()..], &where_)
                }
                _ => panic!(
                    "{where_}: a code block must say how it is tested: {:?}",
                    block.info
                ),
            }
            last_output = None;
        }
    }
    assert!(ran >= 8, "only {ran} blocks ran");
}

#[test]
fn links_between_the_documents_lead_somewhere() {
    for path in documents() {
        let text = fs::read_to_string(&path).unwrap();
        for target in text.split("](").skip(1).filter_map(|t| t.split(')').next()) {
            let file = target.split('#').next().unwrap();
            if file.is_empty() || file.contains("://") {
                continue;
            }
            let resolved = path.parent().unwrap().join(file);
            assert!(resolved.exists(), "{}: link to {target}", path.display());
        }
    }
}

/// The words in backticks of the paragraph that starts with `start`.
fn paragraph_names(text: &str, start: &str) -> Vec<String> {
    let from = text.find(start).unwrap_or_else(|| panic!("no {start:?}"));
    let paragraph = text[from + start.len()..].split("\n\n").next().unwrap();
    paragraph
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

#[test]
fn every_queue_stats_key_is_in_the_protocol_document() {
    let text = fs::read_to_string(Path::new(ROOT).join("docs/protocol.md")).unwrap();
    let documented = paragraph_names(&text, "`queue:stats` keys:");
    for settings in [r#""state_dir": "none""#, r#""max_jobs": 2"#] {
        let d = Setup::new()
            .module("test", "#!/bin/sh\nprintf Test\n")
            .settings(settings)
            .start();
        assert_eq!(d.ask_str("test:"), "Test");
        let stats = d.ask_str("queue:stats");
        for line in stats.lines() {
            let key = line.split(": ").next().unwrap();
            let key = if key.starts_with("module.") {
                "module.<name>"
            } else {
                key
            };
            assert!(
                documented.iter().any(|d| d == key || d == line),
                "queue:stats key {key:?} is not in docs/protocol.md: {documented:?}"
            );
        }
    }
}
