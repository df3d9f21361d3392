//! A damaged journal header, and ids after any recovery: a flipped bit in
//! the header costs no job, a header that cannot be read is kept aside
//! byte for byte, and no id handed out before a restart is handed out
//! again after it, whatever became of the journal.

use std::collections::HashSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::util::{wait_for, Daemon, Setup};

/// The journal's header: magic (8 bytes) and salt (16).
const HEADER_LEN: usize = 24;

/// A daemon holding `n` finished, unfetched results; their ids, and the
/// journal as a clean stop left it.
fn daemon_with_results(n: usize) -> (Daemon, Vec<String>, Vec<u8>) {
    let mut d = Setup::new().module("echo", "#!/bin/sh\nexec cat\n").start();
    let ids: Vec<String> = (0..n).map(|i| d.add(&format!("echo:secret-{i}"))).collect();
    for id in &ids {
        wait_for("done", || d.ask_str(&format!("queue:check:{id}")) == "2");
    }
    stop(&mut d);
    let journal = std::fs::read(journal_of(&d)).unwrap();
    (d, ids, journal)
}

fn journal_of(d: &Daemon) -> PathBuf {
    d.dir.path().join("state/journal")
}

fn stop(d: &mut Daemon) {
    d.signal("TERM");
    assert!(d.wait_exit(Duration::from_secs(10)).success());
    d.child = None;
}

/// The `journal.damaged-*` files of the state folder.
fn kept_aside(state: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(state)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("journal.damaged-")
        })
        .collect();
    found.sort();
    found
}

#[test]
fn a_flipped_bit_anywhere_in_the_header_loses_no_job_and_reuses_no_id() {
    let (mut d, ids, journal) = daemon_with_results(4);
    let mut handed_out: HashSet<String> = ids.iter().cloned().collect();
    for offset in 0..HEADER_LEN {
        let mut damaged = journal.clone();
        damaged[offset] ^= 1 << (offset % 8);
        std::fs::write(journal_of(&d), &damaged).unwrap();
        d.start_again();
        for id in &ids {
            assert_eq!(
                d.ask_str(&format!("queue:check:{id}")),
                "2",
                "job {id} after a flip in byte {offset}; log:\n{}",
                d.log()
            );
        }
        let i = offset % ids.len();
        assert_eq!(
            d.ask_str(&format!("queue:get:{}", ids[i])),
            format!("secret-{i}")
        );
        let new = d.add("echo:new");
        assert!(
            handed_out.insert(new.clone()),
            "{new} was handed out before (flip in byte {offset})"
        );
        d.kill9();
    }
    assert!(kept_aside(&d.dir.path().join("state")).is_empty());
}

#[test]
fn a_header_that_cannot_be_read_is_kept_aside_byte_for_byte_and_ids_go_on() {
    let (mut d, ids, journal) = daemon_with_results(3);
    // The magic and two bytes of the salt: no salt one byte away verifies.
    let mut damaged = journal.clone();
    for offset in [0, 17, 21] {
        damaged[offset] ^= 0x08;
    }
    std::fs::write(journal_of(&d), &damaged).unwrap();
    d.start_again();
    let state = d.dir.path().join("state");
    let aside = kept_aside(&state);
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert_eq!(std::fs::read(&aside[0]).unwrap(), damaged, "byte for byte");
    let mode = std::fs::metadata(&aside[0]).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let log = d.log();
    let name = aside[0].file_name().unwrap().to_string_lossy().to_string();
    assert!(
        log.contains("nothing could be read") && log.contains(&name),
        "{log}"
    );
    // The queue starts empty, but no id is handed out again.
    assert_eq!(
        d.ask_str(&format!("queue:check:{}", ids[0])),
        "404: Unknown job"
    );
    let mut handed_out: HashSet<String> = ids.iter().cloned().collect();
    for _ in 0..3 {
        let new = d.add("echo:new");
        assert!(handed_out.insert(new.clone()), "{new} handed out twice");
    }
    // A journal removed, or the id floor damaged as well: still no reuse.
    d.kill9();
    std::fs::remove_file(journal_of(&d)).unwrap();
    d.start_again();
    let new = d.add("echo:new");
    assert!(handed_out.insert(new.clone()), "{new} handed out twice");
    d.kill9();
    std::fs::write(journal_of(&d), &journal).unwrap();
    std::fs::write(state.join("id-floor"), b"garbage").unwrap();
    d.start_again();
    d.wait_log("it is damaged");
    assert_eq!(
        d.ask_str(&format!("queue:get:{}", ids[1])),
        "secret-1",
        "the journal of before is read again"
    );
    let new = d.add("echo:new");
    assert!(
        !ids.contains(&new),
        "{new}: below the journal's own counter"
    );
}

#[test]
fn no_id_is_handed_out_before_its_floor_is_on_disk() {
    let (mut d, ids, _) = daemon_with_results(2);
    // The floor's file cannot be replaced while its temporary name is a
    // folder: the start cannot reserve ids above the old floor.
    let blocker = d.dir.path().join("state/id-floor.tmp");
    std::fs::create_dir(&blocker).unwrap();
    d.start_again();
    d.wait_log("cannot write the id floor");
    for _ in 0..3 {
        assert_eq!(d.ask_str("queue:add:echo:x"), "503: Journal write failed");
    }
    assert_eq!(
        d.ask_str("echo:direct"),
        "direct",
        "direct calls are served"
    );
    assert_eq!(d.ask_str(&format!("queue:get:{}", ids[0])), "secret-0");
    // Once the floor can be written, the writer thread reserves ids again.
    std::fs::remove_dir(&blocker).unwrap();
    let mut new = String::new();
    wait_for("an add accepted", || {
        new = d.ask_str("queue:add:echo:y");
        new.starts_with("id:")
    });
    assert!(!ids.contains(&new), "{new} handed out twice");
    assert_eq!(d.ask_str(&format!("queue:get:{new}")), "y");
}
