//! A smoke run of the load generator, so it never rots.

use std::process::Command;

use crate::util::Setup;

const BENCH: &str = env!("CARGO_BIN_EXE_bgjob-bench");

fn run(args: &[&str]) -> (bool, String) {
    let out = Command::new(BENCH).args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn the_load_generator_counts_answers_and_wrong_answers() {
    let d = Setup::new()
        .module("test", "#!/bin/sh\nprintf Test\n")
        .start();
    let server = d.addr.to_string();
    let (ok, line) = run(&[
        "--server", &server, "-c", "3", "-n", "20", "--expect", "Test",
    ]);
    assert!(ok, "{line}");
    assert!(
        line.starts_with("requests=20 ok=20 errors=0 wrong=0 req_per_sec="),
        "{line}"
    );
    for key in ["p50_ms=", "p90_ms=", "p99_ms=", "max_ms="] {
        assert!(line.contains(key), "{line}");
    }
    let (ok, line) = run(&[
        "--server",
        &server,
        "-n",
        "5",
        "-r",
        "queue:add:test:{i}",
        "--half-close",
        "--expect",
        "Test",
    ]);
    assert!(!ok, "wrong answers fail the run");
    assert!(line.contains("wrong=5"), "{line}");
    let (_, line) = run(&[
        "--server", &server, "--mode", "udp", "-n", "5", "-r", "test:",
    ]);
    assert!(line.starts_with("datagrams=5 errors=0"), "{line}");
    let (ok, line) = run(&[
        "--server",
        &server,
        "--mode",
        "idle",
        "-c",
        "5",
        "--duration",
        "0.1",
    ]);
    assert!(ok && line.trim() == "held=5", "{line}");
}

#[test]
fn the_spawn_comparison_runs_both_ways() {
    let (ok, out) = run(&["--mode", "spawn", "-n", "20", "--rounds", "1", "-c", "2"]);
    assert!(ok, "{out}");
    assert!(out.contains("vfork") && out.contains("Command"), "{out}");
}
