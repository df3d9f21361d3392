//! The journal type itself: compaction on the writer keeps exactly the
//! live jobs, and a writer that dies is never silent.

use std::rc::Rc;
use std::time::{Duration, SystemTime};

use super::*;
use crate::queue::store::{Arrival, Change, Completion, QueueStore, Removal};
use crate::run::receipt::Receipt;

struct Folder(PathBuf);

impl Drop for Folder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn folder(tag: &str) -> Folder {
    let dir = std::env::temp_dir().join(format!("bgjob-journal-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    Folder(dir)
}

/// A journal on `dir`, with a poll for its waker kept alive beside it.
fn open(dir: &Path) -> (Journal, Recovered, mio::Poll) {
    let poll = mio::Poll::new().unwrap();
    let waker = Arc::new(mio::Waker::new(poll.registry(), mio::Token(0)).unwrap());
    let (journal, recovered) = Journal::open(dir, SyncPolicy::Always, waker).unwrap();
    (journal, recovered, poll)
}

fn added(id: u64, data: &[u8]) -> Change {
    Change::Added {
        id,
        counter: id,
        owner: "main".into(),
        client: None,
        arrival: Arrival::Queue,
        module: "m".into(),
        data: Rc::from(data),
        added_at: SystemTime::now(),
        options: Default::default(),
    }
}

fn finished(id: u64, answer: &[u8]) -> Change {
    Change::Finished {
        id,
        owner: "main".into(),
        client: None,
        module: "m".into(),
        answer: Rc::from(answer),
        receipt: Receipt::default(),
        finished_at: SystemTime::now(),
        tries: Vec::new(),
        again: None,
        key: None,
    }
}

fn removed(id: u64) -> Change {
    Change::Removed {
        id,
        why: Removal::Fetched,
    }
}

/// Turns until `ticket` completes (10 s at most).
fn complete(j: &mut Journal, ticket: Ticket) -> Completion {
    for _ in 0..1000 {
        j.end_turn();
        if let Some((_, c)) = j.completions().into_iter().find(|(t, _)| *t == ticket) {
            return c;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("ticket {ticket} never completed")
}

/// Turns until no rewrite is under way.
fn settle(j: &mut Journal) {
    for _ in 0..1000 {
        j.end_turn();
        j.completions();
        if !j.footprints.is_moving() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("the rewrite never ended")
}

#[test]
fn compaction_on_the_writer_keeps_exactly_the_live_jobs_and_results() {
    let dir = folder("compact");
    let (mut j, _, _poll) = open(&dir.0);
    let data = vec![b'd'; 1000];
    let pause = |module: &str, paused| Change::Paused {
        module: module.into(),
        paused,
    };
    j.submit(pause("render", true), None);
    j.submit(pause("mailer", true), None);
    for id in 1..=100 {
        j.submit(added(id, &data), (id == 100).then_some(100));
    }
    j.submit(pause("mailer", false), None);
    assert_eq!(complete(&mut j, 100), Completion::Done);
    for id in 1..=90 {
        j.submit(finished(id, b"answer"), None);
        j.submit(removed(id), None);
    }
    j.submit(finished(95, b"kept result"), None);
    // A fetch waiting for its record when the compaction is planned: it
    // is kept, so the result must not be in the new file.
    j.submit(removed(96), None);
    j.submit(finished(97, b"fetched"), None);
    j.submit(removed(97), Some(7));
    let before = j.progress().file_bytes;
    // The jobs' data is in the file: the rewrite copies it, and the loop
    // encodes only what the writer has not placed yet (result 95).
    assert!(j.footprints.unplaced_bytes(&j.live) < 2000);
    j.end_turn();
    assert!(j.footprints.is_moving(), "dead records dominate: a rewrite");
    assert_eq!(complete(&mut j, 7), Completion::Done);
    settle(&mut j);
    j.close();
    let after = std::fs::metadata(dir.0.join("journal")).unwrap().len();
    assert!(after < before / 4, "{before} -> {after}");
    drop(j);
    let (_j, recovered, _poll) = open(&dir.0);
    let jobs: Vec<u64> = recovered.jobs.iter().map(|j| j.id).collect();
    assert_eq!(jobs, vec![91, 92, 93, 94, 98, 99, 100]);
    assert!(recovered.jobs.iter().all(|j| *j.data == data[..]));
    let results: Vec<(u64, &[u8])> = recovered
        .results
        .iter()
        .map(|r| (r.id, &*r.answer))
        .collect();
    assert_eq!(results, vec![(95, &b"kept result"[..])]);
    assert_eq!(recovered.paused, ["render"], "the pauses are rewritten too");
}

#[test]
fn a_dead_writer_refuses_what_waits_and_makes_the_journal_failing() {
    let dir = folder("dead");
    let (mut j, _, _poll) = open(&dir.0);
    j.submit(added(1, b"x"), Some(1));
    assert_eq!(complete(&mut j, 1), Completion::Done);
    assert_eq!(j.failing(), None);
    j.send(Command::Panic {
        holding_lock: false,
    });
    while !j.thread.as_ref().unwrap().is_finished() {
        std::thread::sleep(Duration::from_millis(5));
    }
    j.submit(added(2, b"y"), Some(2));
    assert!(matches!(complete(&mut j, 2), Completion::Refused(_)));
    let why = j.failing().expect("failing");
    assert!(why.contains("writer"), "{why}");
    // Nothing is lost silently: later adds are refused too.
    j.submit(added(3, b"z"), Some(3));
    assert!(matches!(complete(&mut j, 3), Completion::Refused(_)));
}

#[test]
fn a_poisoned_progress_lock_makes_the_journal_failing() {
    let dir = folder("poison");
    let (mut j, _, _poll) = open(&dir.0);
    j.submit(added(1, b"x"), Some(1));
    j.send(Command::Panic { holding_lock: true });
    assert!(matches!(
        complete(&mut j, 1),
        Completion::Done | Completion::Refused(_)
    ));
    while !j.shared.progress.is_poisoned() {
        std::thread::sleep(Duration::from_millis(5));
    }
    j.completions();
    let why = j.failing().expect("failing");
    assert!(why.contains("poisoned"), "{why}");
    let _ = j.status();
}

#[test]
fn a_rewrite_that_fails_after_its_rename_makes_the_journal_failing_until_one_works() {
    let dir = folder("reopen");
    let (mut j, _, _poll) = open(&dir.0);
    j.submit(added(1, b"before"), Some(1));
    assert_eq!(complete(&mut j, 1), Completion::Done);
    let path = dir.0.join("journal");
    rewrite::tests::fail_after_rename(&path, true);
    j.rewrite();
    settle(&mut j);
    let why = j.failing().expect("failing");
    assert!(why.contains("a fault for a test"), "{why}");
    // Nothing goes to the old, unlinked file: the add is refused.
    j.submit(added(2, b"lost"), Some(2));
    assert!(matches!(complete(&mut j, 2), Completion::Refused(_)));
    rewrite::tests::fail_after_rename(&path, false);
    for _ in 0..1000 {
        j.end_turn();
        j.completions();
        if j.failing().is_none() {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(j.failing(), None, "a later rewrite works");
    j.submit(added(3, b"after"), Some(3));
    assert_eq!(complete(&mut j, 3), Completion::Done);
    j.close();
    drop(j);
    let (_j, recovered, _poll) = open(&dir.0);
    let jobs: Vec<u64> = recovered.jobs.iter().map(|j| j.id).collect();
    assert_eq!(jobs, vec![1, 3]);
}

#[test]
fn a_failing_journal_tries_one_last_rewrite_when_it_closes() {
    let dir = folder("lastrewrite");
    let (mut j, _, _poll) = open(&dir.0);
    j.submit(added(1, b"job"), Some(1));
    assert_eq!(complete(&mut j, 1), Completion::Done);
    let path = dir.0.join("journal");
    rewrite::tests::fail_after_rename(&path, true);
    j.rewrite();
    settle(&mut j);
    assert!(j.failing().is_some());
    // Its result is kept in memory only: there is no file to append to.
    j.submit(finished(1, b"result"), None);
    j.submit(added(2, b"refused"), Some(2));
    assert!(matches!(complete(&mut j, 2), Completion::Refused(_)));
    rewrite::tests::fail_after_rename(&path, false);
    j.close();
    drop(j);
    let (_j, recovered, _poll) = open(&dir.0);
    assert!(recovered.jobs.is_empty(), "{:?}", recovered.jobs);
    let results: Vec<(u64, &[u8])> = recovered
        .results
        .iter()
        .map(|r| (r.id, &*r.answer))
        .collect();
    assert_eq!(results, vec![(1, &b"result"[..])]);
}

#[test]
fn a_jobs_add_is_held_only_until_it_is_on_disk_then_copied_by_rewrites() {
    let dir = folder("held");
    let (mut j, _, _poll) = open(&dir.0);
    for id in 1..=50 {
        j.submit(added(id, &[b'x'; 100]), (id == 50).then_some(50));
    }
    assert_eq!(j.footprints.held().0, 50, "not written yet: held encoded");
    assert_eq!(complete(&mut j, 50), Completion::Done);
    j.completions();
    assert_eq!(j.footprints.held(), (0, 0), "synced: nothing held");
    j.submit(Change::Started { id: 7, attempt: 1 }, None);
    // Twice: the second copies what the first wrote.
    for _ in 0..2 {
        j.rewrite();
        settle(&mut j);
        assert_eq!(j.failing(), None);
    }
    j.close();
    drop(j);
    let (_j, recovered, _poll) = open(&dir.0);
    let jobs: Vec<(u64, u32, usize)> = recovered
        .jobs
        .iter()
        .map(|j| (j.id, j.attempts, j.data.len()))
        .collect();
    let expected: Vec<(u64, u32, usize)> =
        (1..=50).map(|id| (id, u32::from(id == 7), 100)).collect();
    assert_eq!(jobs, expected);
}
