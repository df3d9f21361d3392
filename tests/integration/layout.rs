//! The source layout keeps its promises: no two source files (the
//! library's or a binary's) import each other (directly or around a longer
//! loop), every `mod` line says what the module is for, `impl Daemon`
//! lives only in the loop's folder, and files stay short enough to read in
//! one sitting.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// About 400 lines, as the house style asks; a little slack for comments.
const MAX_LINES: usize = 420;

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The Rust files below `dir`, but for those below a folder named `skip`.
fn walk(dir: &Path, skip: &str, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            if path.file_name().unwrap() != skip {
                walk(&path, skip, out);
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The library's files (binaries keep their own code under `src/bin/`).
fn library_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    walk(&src(), "bin", &mut files);
    files.retain(|f| !f.ends_with("main.rs"));
    files.sort();
    files
}

/// Every source file: the library's and each binary's.
fn all_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    walk(&src(), "", &mut files);
    files.sort();
    files
}

/// The folder a file's `crate::` paths start from: `src/` for the
/// library, `src/bin/NAME/` for a binary's files.
fn crate_root(file: &Path) -> PathBuf {
    let bin = src().join("bin");
    match file.strip_prefix(&bin) {
        Ok(rel) => bin.join(rel.iter().next().unwrap()),
        Err(_) => src(),
    }
}

/// The code before the unit tests, without comment lines.
fn code(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap();
    let text = text.split("#[cfg(test)]").next().unwrap();
    text.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The file a `crate::a::b::c` path lives in below `root`: the longest
/// prefix that is one.
fn file_of(root: &Path, segments: &[&str]) -> Option<PathBuf> {
    for n in (1..=segments.len()).rev() {
        let base = root.join(segments[..n].join("/"));
        for candidate in [base.with_extension("rs"), base.join("mod.rs")] {
            if candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    None
}

/// Every `crate::...` path in `code`, braces expanded one level at a time.
fn crate_paths(code: &str) -> Vec<Vec<String>> {
    fn expand(prefix: &[String], rest: &str, out: &mut Vec<Vec<String>>) {
        let rest = rest.trim();
        let path_end = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(rest.len());
        let mut path: Vec<String> = prefix.to_vec();
        path.extend(
            rest[..path_end]
                .split("::")
                .filter(|s| !s.is_empty())
                .map(String::from),
        );
        let after = &rest[path_end..];
        if !after.starts_with('{') {
            out.push(path);
            return;
        }
        let (mut depth, mut start) = (0, 1);
        for (i, c) in after.char_indices() {
            match c {
                '{' => depth += 1,
                '}' | ',' if depth == 1 => {
                    expand(&path, &after[start..i], out);
                    start = i + 1;
                    if c == '}' {
                        return;
                    }
                }
                '}' => depth -= 1,
                _ => {}
            }
        }
    }
    let mut out = Vec::new();
    for (i, _) in code.match_indices("crate::") {
        expand(&[], &code[i + "crate::".len()..], &mut out);
    }
    out
}

/// The module path of a file below its crate's root: `src/journal/mod.rs`
/// is `journal`, `src/bin/bgjob-bench/spawn/command.rs` is `spawn::command`.
fn module_of(file: &Path) -> Vec<String> {
    let rel = file
        .strip_prefix(crate_root(file))
        .unwrap()
        .with_extension("");
    let mut segments: Vec<String> = rel.iter().map(|s| s.to_string_lossy().into()).collect();
    if segments
        .last()
        .is_some_and(|s| s == "mod" || s == "lib" || s == "main")
    {
        segments.pop();
    }
    segments
}

/// Paths written relative to the file's module (`super::x`, or `child::x`
/// for a module it declares, in a `use` line or in an expression), made
/// absolute.
fn relative_paths(file: &Path, code: &str) -> Vec<Vec<String>> {
    let module = module_of(file);
    let children: Vec<&str> = code
        .lines()
        .filter_map(|l| l.trim().trim_start_matches("pub ").strip_prefix("mod "))
        .map(|l| l.trim_end_matches(';'))
        .collect();
    let mut out = Vec::new();
    for line in code.lines().map(str::trim) {
        let Some(rest) = line.trim_start_matches("pub ").strip_prefix("use ") else {
            continue;
        };
        let (base, rest) = if let Some(rest) = rest.strip_prefix("super::") {
            (module[..module.len().saturating_sub(1)].to_vec(), rest)
        } else if children.iter().any(|c| rest.starts_with(&format!("{c}::"))) {
            (module.clone(), rest)
        } else {
            continue;
        };
        for mut path in crate_paths(&format!("crate::{rest}")) {
            let mut full = base.clone();
            full.append(&mut path);
            out.push(full);
        }
    }
    for child in children {
        let used = code.match_indices(&format!("{child}::")).any(|(i, _)| {
            let before = code[..i].chars().next_back();
            !before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':')
        });
        if used {
            let mut full = module.clone();
            full.push(child.to_string());
            out.push(full);
        }
    }
    out
}

fn import_graph() -> BTreeMap<PathBuf, BTreeSet<PathBuf>> {
    let mut graph = BTreeMap::new();
    for file in all_files() {
        let root = crate_root(&file);
        let mut targets = BTreeSet::new();
        let code = code(&file);
        let mut paths = crate_paths(&code);
        paths.extend(relative_paths(&file, &code));
        for path in paths {
            let segments: Vec<&str> = path.iter().map(String::as_str).collect();
            if let Some(target) = file_of(&root, &segments) {
                if target != file {
                    targets.insert(target);
                }
            }
        }
        graph.insert(file, targets);
    }
    graph
}

/// A loop of imports, if there is one.
fn find_cycle(graph: &BTreeMap<PathBuf, BTreeSet<PathBuf>>) -> Option<Vec<PathBuf>> {
    fn visit(
        node: &PathBuf,
        graph: &BTreeMap<PathBuf, BTreeSet<PathBuf>>,
        stack: &mut Vec<PathBuf>,
        done: &mut BTreeSet<PathBuf>,
    ) -> Option<Vec<PathBuf>> {
        if let Some(at) = stack.iter().position(|n| n == node) {
            return Some(stack[at..].to_vec());
        }
        if !done.insert(node.clone()) {
            return None;
        }
        stack.push(node.clone());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, stack, done) {
                return Some(cycle);
            }
        }
        stack.pop();
        None
    }
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        if let Some(cycle) = visit(node, graph, &mut Vec::new(), &mut done) {
            return Some(cycle);
        }
    }
    None
}

fn short(path: &Path) -> String {
    path.strip_prefix(src()).unwrap().display().to_string()
}

#[test]
fn no_two_library_files_import_each_other() {
    let graph = import_graph();
    assert!(graph.len() > 30, "the walk found the library");
    let cycle = find_cycle(&graph).map(|c| c.iter().map(|p| short(p)).collect::<Vec<_>>());
    assert_eq!(cycle, None, "an import cycle");
}

#[test]
fn the_checker_finds_a_cycle_when_there_is_one() {
    let (a, b) = (PathBuf::from("a.rs"), PathBuf::from("b.rs"));
    let mut graph = BTreeMap::new();
    graph.insert(a.clone(), BTreeSet::from([b.clone()]));
    graph.insert(b.clone(), BTreeSet::from([a.clone()]));
    assert!(find_cycle(&graph).is_some());
    graph.insert(b, BTreeSet::new());
    assert!(find_cycle(&graph).is_none());
    let paths = crate_paths("use crate::run::{job::{Job, Origin}, outcome::Outcome};");
    let spawn = src().join("bin/bgjob-bench/spawn.rs");
    let paths_of = |code: &str| relative_paths(&spawn, code);
    let expression = paths_of("mod command;\nfn f() { command::module_env(); }");
    assert_eq!(
        expression,
        vec![vec!["spawn".to_string(), "command".to_string()]]
    );
    assert!(paths_of("mod command;\nfn f() { subcommand::x(); }").is_empty());
    assert!(paths.contains(&vec!["run".into(), "job".into(), "Origin".into()]));
    assert!(paths.contains(&vec!["run".into(), "outcome".into(), "Outcome".into()]));
}

/// The `mod` lines of `text` without a `///` comment above them (above
/// their attributes), but for unit-test modules (`#[cfg(test)]`).
fn undocumented_mods(text: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let decl = line
            .trim_start_matches("pub(crate) ")
            .trim_start_matches("pub(super) ")
            .trim_start_matches("pub ");
        let Some(name) = decl.strip_prefix("mod ") else {
            continue;
        };
        if !name.ends_with(';') && !name.ends_with('{') {
            continue;
        }
        let mut above = lines[..i].iter().rev().skip_while(|l| l.starts_with("#["));
        let attributes = &lines[..i];
        let test_only = attributes
            .iter()
            .rev()
            .take_while(|l| l.starts_with("#["))
            .any(|l| l.starts_with("#[cfg(test)]"));
        if !test_only && !above.next().is_some_and(|l| l.starts_with("///")) {
            out.push(line.to_string());
        }
    }
    out
}

#[test]
fn every_module_says_what_it_is_for() {
    for file in all_files() {
        let text = fs::read_to_string(&file).unwrap();
        let bare = undocumented_mods(&text);
        assert!(
            bare.is_empty(),
            "{}: {bare:?} without a /// comment",
            short(&file)
        );
    }
}

#[test]
fn the_module_check_finds_a_bare_mod_line() {
    assert_eq!(undocumented_mods("mod a;\n"), vec!["mod a;"]);
    assert_eq!(
        undocumented_mods("// a\npub mod a {\n}"),
        vec!["pub mod a {"]
    );
    assert!(undocumented_mods("/// A.\n#[path = \"x.rs\"]\nmod a;").is_empty());
    assert!(undocumented_mods("#[cfg(test)]\nmod tests {\n}").is_empty());
}

#[test]
fn only_the_loop_folder_implements_the_daemon() {
    for file in library_files() {
        let inside = file.starts_with(src().join("daemon"));
        assert!(
            inside || !code(&file).contains("impl Daemon"),
            "{} implements Daemon outside src/daemon/",
            short(&file)
        );
    }
}

#[test]
fn every_source_file_reads_in_one_sitting() {
    let mut files = Vec::new();
    walk(&src(), "", &mut files);
    assert!(files.len() > 40, "the walk found the sources");
    for file in files {
        let lines = fs::read_to_string(&file).unwrap().lines().count();
        assert!(lines <= MAX_LINES, "{} has {lines} lines", file.display());
    }
}
