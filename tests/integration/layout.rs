//! The source layout keeps its promises: no two files of the daemon's
//! library import each other (directly or around a longer loop), `impl
//! Daemon` lives only in the loop's folder, and files stay short enough
//! to read in one sitting.

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

/// The code before the unit tests, without comment lines.
fn code(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap();
    let text = text.split("#[cfg(test)]").next().unwrap();
    text.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The file a `crate::a::b::c` path lives in: the longest prefix that is one.
fn file_of(segments: &[&str]) -> Option<PathBuf> {
    for n in (1..=segments.len()).rev() {
        let base = src().join(segments[..n].join("/"));
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

/// The module path of a file: `src/journal/mod.rs` is `journal`.
fn module_of(file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src()).unwrap().with_extension("");
    let mut segments: Vec<String> = rel.iter().map(|s| s.to_string_lossy().into()).collect();
    if segments.last().is_some_and(|s| s == "mod" || s == "lib") {
        segments.pop();
    }
    segments
}

/// Paths written relative to the file's module (`super::x`, or `child::x`
/// for a module it declares), made absolute.
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
    out
}

fn import_graph() -> BTreeMap<PathBuf, BTreeSet<PathBuf>> {
    let mut graph = BTreeMap::new();
    for file in library_files() {
        let mut targets = BTreeSet::new();
        let code = code(&file);
        let mut paths = crate_paths(&code);
        paths.extend(relative_paths(&file, &code));
        for path in paths {
            let segments: Vec<&str> = path.iter().map(String::as_str).collect();
            if let Some(target) = file_of(&segments) {
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
    assert!(paths.contains(&vec!["run".into(), "job".into(), "Origin".into()]));
    assert!(paths.contains(&vec!["run".into(), "outcome".into(), "Outcome".into()]));
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
