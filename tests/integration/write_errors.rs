//! What was acknowledged is exactly what is on disk: a write that fails
//! (here a file size limit put on the running daemon, as a full disk
//! would) refuses exactly the changes it lost, fetches are answered only
//! once their record is kept, and writes are retried until they work.

use std::io::Write;
use std::net::{Shutdown, TcpStream};
use std::process::Command;

use crate::util::{read_to_end, wait_for, Daemon, Setup};

/// Limits the daemon's file size (`prlimit`), in bytes, or lifts the limit.
fn limit_file_size(d: &Daemon, bytes: Option<u64>) {
    let value = bytes.map_or("unlimited".to_string(), |b| b.to_string());
    let ok = Command::new("prlimit")
        .args(["--pid", &d.pid().to_string(), &format!("--fsize={value}:")])
        .status()
        .unwrap();
    assert!(ok.success());
}

fn journal_len(d: &Daemon) -> u64 {
    std::fs::metadata(d.dir.path().join("state/journal"))
        .unwrap()
        .len()
}

#[test]
fn a_fetch_is_answered_only_once_its_record_is_kept() {
    let mut d = Setup::new().module("ok", "#!/bin/sh\nprintf ok\n").start();
    let id = d.add("ok:");
    wait_for("done", || d.ask_str(&format!("queue:check:{id}")) == "2");
    limit_file_size(&d, Some(journal_len(&d)));
    assert_eq!(
        d.ask_str(&format!("queue:get:{id}")),
        "503: Journal write failed",
        "the fetch could not be recorded: not delivered"
    );
    assert_eq!(d.ask_str(&format!("queue:check:{id}")), "2", "still there");
    limit_file_size(&d, None);
    d.wait_log("writes succeed again");
    assert_eq!(d.ask_str(&format!("queue:get:{id}")), "ok");
    d.crash_and_restart();
    assert_eq!(
        d.ask_str(&format!("queue:check:{id}")),
        "404: Unknown job",
        "a delivered result never comes back"
    );
}

#[test]
fn exactly_the_adds_not_on_disk_are_refused_and_adds_work_again_after_the_error() {
    let mut d = Setup::new().settings(r#""max_jobs": 1"#).start();
    let ran = d.dir.path().join("ran");
    d.add_module(
        "note",
        &format!(
            "#!/bin/sh\nsleep 0.2\ncat >> {}\necho >> {}\n",
            ran.display(),
            ran.display()
        ),
    );
    d.add_module("block", "#!/bin/sh\nsleep 30\n");
    d.add("block:");
    // Room for a small record, not for a large one; both sent together, so
    // that they often share a batch. The small one is kept if it comes
    // first in the batch (records reach the disk in order); either way,
    // what was answered `id:` must be exactly what is on disk.
    limit_file_size(&d, Some(journal_len(&d) + 2000));
    let send = |request: Vec<u8>| {
        let mut s = TcpStream::connect(d.addr).unwrap();
        s.write_all(&request).unwrap();
        s
    };
    let mut small = send(b"queue:add:note:small".to_vec());
    let mut large_request = b"queue:add:note:large".to_vec();
    large_request.extend(std::iter::repeat_n(b'x', 20_000));
    let mut large = send(large_request);
    small.shutdown(Shutdown::Write).unwrap();
    large.shutdown(Shutdown::Write).unwrap();
    let small = String::from_utf8(read_to_end(&mut small)).unwrap();
    let large = String::from_utf8(read_to_end(&mut large)).unwrap();
    assert_eq!(large, "503: Journal write failed");
    let small_kept = small.starts_with("id:");
    assert!(small_kept || small == large, "{small}");
    limit_file_size(&d, Some(journal_len(&d)));
    assert_eq!(
        d.ask_str("queue:add:note:while failing"),
        "503: Journal write failed"
    );
    limit_file_size(&d, None);
    let mut after = String::new();
    wait_for("adds accepted again", || {
        after = d.ask_str("queue:add:note:after");
        after.starts_with("id:")
    });
    d.crash_and_restart();
    d.wait_log("journal: recovered");
    // The blocker ran again after the restart; the notes wait behind it:
    // the acknowledged adds are there, the refused ones are not.
    let jobs = d.ask_operator("queue:list");
    let waiting: Vec<&str> = jobs.lines().filter(|l| l.contains(" note ")).collect();
    let kept: Vec<&String> = [&small, &after]
        .into_iter()
        .filter(|a| a.starts_with("id:"))
        .collect();
    assert_eq!(waiting.len(), kept.len(), "{jobs}");
    for id in kept {
        assert!(
            jobs.contains(&format!("{} note", id.trim_start_matches("id:"))),
            "{id} in {jobs}"
        );
    }
}

#[test]
fn a_refused_fetch_keeps_its_result_through_the_rewrite_and_a_crash() {
    let mut d = Setup::new()
        .module("ok", "#!/bin/sh\nprintf kept\n")
        .start();
    let id = d.add("ok:");
    wait_for("done", || d.ask_str(&format!("queue:check:{id}")) == "2");
    limit_file_size(&d, Some(journal_len(&d)));
    assert_eq!(
        d.ask_str(&format!("queue:get:{id}")),
        "503: Journal write failed"
    );
    limit_file_size(&d, None);
    // Writes work again once the journal is rewritten from its live view,
    // which must still hold the result whose fetch was refused.
    d.wait_log("writes succeed again");
    d.crash_and_restart();
    assert_eq!(
        d.ask_str(&format!("queue:check:{id}")),
        "2",
        "a fetch not done: the result stays"
    );
    assert_eq!(d.ask_str(&format!("queue:get:{id}")), "kept");
}

#[test]
fn cancel_of_a_finished_result_answers_once_its_record_is_kept() {
    let mut d = Setup::new().module("ok", "#!/bin/sh\nprintf r\n").start();
    let id = d.add("ok:");
    wait_for("done", || d.ask_str(&format!("queue:check:{id}")) == "2");
    limit_file_size(&d, Some(journal_len(&d)));
    assert_eq!(
        d.ask_str(&format!("queue:cancel:{id}")),
        "503: Journal write failed",
        "the cancel could not be recorded: not done"
    );
    assert_eq!(d.ask_str(&format!("queue:check:{id}")), "2", "still there");
    limit_file_size(&d, None);
    d.wait_log("writes succeed again");
    assert_eq!(
        d.ask_str(&format!("queue:cancel:{id}")),
        "cancelled: result dropped"
    );
    d.crash_and_restart();
    assert_eq!(
        d.ask_str(&format!("queue:check:{id}")),
        "404: Unknown job",
        "a cancel answered never comes back"
    );
}
