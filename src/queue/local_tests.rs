//! The local engine driven without sockets: requests in, events out, over
//! the in-memory store and over a journal in a temporary folder.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::journal::{Journal, SyncPolicy};
use crate::keys::Key;
use crate::queue::engine::{Admission, Asker, Finish, NewJob, QueueEngine, Retention};
use crate::queue::store::MemoryStore;
use crate::run::modules::Module;
use crate::run::outcome::Outcome;
use crate::run::receipt::Receipt;

fn module(name: &str) -> Rc<Module> {
    Rc::new(crate::run::modules::test_module(name))
}

fn conn(n: usize) -> ConnKey {
    ConnKey::new(n)
}

fn asker(n: usize, owner: &str) -> Asker {
    Asker {
        conn: conn(n),
        owner: owner.into(),
        operator: false,
    }
}

fn room() -> Admission {
    Admission {
        max_waiting: 100,
        max_waiting_per_client: 100,
        max_waiting_bytes: 1 << 20,
        max_waiting_bytes_per_client: 1 << 20,
        ..Admission::default()
    }
}

/// Retention roomy enough for every test of the engine.
pub(in crate::queue) fn keep() -> Retention {
    Retention {
        total: 1 << 20,
        per_client: 1 << 20,
        time: Duration::from_secs(60),
    }
}

fn memory() -> LocalEngine {
    let store = Box::<MemoryStore>::default();
    LocalEngine::start(store, Recovered::default(), IdKey([7; 32]), &mut |_| None)
}

fn add(engine: &mut LocalEngine, by: usize, owner: &str) -> u64 {
    let job = NewJob {
        module: module("m"),
        data: b"data".to_vec(),
        owner: owner.into(),
        client: Some([10, 0, 0, by as u8].into()),
        conn: Some(conn(by)),
        udp_peer: None,
        priority: Default::default(),
        options: Default::default(),
    };
    engine.add(job, room(), keep()).unwrap()
}

/// Every event now, in order.
fn drain(engine: &mut LocalEngine) -> Vec<Event> {
    std::iter::from_fn(|| engine.poll_event()).collect()
}

/// The answers among `events`, as (connection, text).
fn answers(events: &[Event]) -> Vec<(ConnKey, String)> {
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    events
        .iter()
        .filter_map(|e| match e {
            Event::Answer { conn, answer } => Some((*conn, text(answer))),
            Event::Refuse { conn, refusal } => Some((*conn, refusal.answer().to_string())),
            _ => None,
        })
        .collect()
}

fn runs(events: &[Event]) -> Vec<u64> {
    let run = |e: &Event| match e {
        Event::Run(job) => Some(job.id),
        _ => None,
    };
    events.iter().filter_map(run).collect()
}

fn finish(answer: &[u8], outcome: Outcome) -> Finish {
    Finish {
        answer: answer.into(),
        receipt: Receipt {
            outcome: Some(outcome),
            ..Receipt::default()
        },
        interrupted: false,
        stderr: String::new(),
        retry_wait: Duration::ZERO,
    }
}

#[test]
fn an_add_is_answered_and_run_only_once_its_record_is_kept() {
    let mut engine = memory();
    let id = add(&mut engine, 1, "web");
    let before = drain(&mut engine);
    assert!(
        matches!(
            before[..],
            [Event::Wait {
                on: Wait::Store,
                ..
            }]
        ),
        "{before:?}"
    );
    engine.end_turn();
    let after = drain(&mut engine);
    assert_eq!(runs(&after), vec![id]);
    assert_eq!(answers(&after), vec![(conn(1), format!("id:{id}"))]);
}

#[test]
fn check_and_get_follow_the_job_from_waiting_to_fetched() {
    let mut engine = memory();
    let id = add(&mut engine, 1, "web");
    engine.end_turn();
    drain(&mut engine);
    engine.check(asker(2, "web"), id);
    assert_eq!(answers(&drain(&mut engine)), vec![(conn(2), "0".into())]);
    engine.started(id, 1);
    engine.check(asker(2, "web"), id);
    assert_eq!(answers(&drain(&mut engine)), vec![(conn(2), "1".into())]);
    engine.get(asker(3, "web"), id);
    let waits = drain(&mut engine);
    assert!(matches!(waits[..], [Event::Wait { on: Wait::Result(w), .. }] if w == id));
    engine.finished(id, finish(b"result", Outcome::Exited(0)), keep());
    assert!(
        answers(&drain(&mut engine)).is_empty(),
        "not before the fetch is kept"
    );
    engine.end_turn();
    assert_eq!(
        answers(&drain(&mut engine)),
        vec![(conn(3), "result".into())]
    );
    engine.check(asker(2, "web"), id);
    assert_eq!(
        answers(&drain(&mut engine)),
        vec![(conn(2), "404: Unknown job".into())]
    );
    engine.info(asker(2, "web"), id);
    let info = answers(&drain(&mut engine));
    assert!(info[0].1.contains("status: fetched"), "{info:?}");
}

#[test]
fn another_listeners_job_is_unknown_but_an_operator_sees_it() {
    let mut engine = memory();
    let id = add(&mut engine, 1, "web");
    engine.end_turn();
    drain(&mut engine);
    engine.check(asker(2, "other"), id);
    assert_eq!(
        answers(&drain(&mut engine)),
        vec![(conn(2), "404: Unknown job".into())]
    );
    let operator = Asker {
        operator: true,
        ..asker(3, "operator")
    };
    engine.check(operator.clone(), id);
    assert_eq!(answers(&drain(&mut engine)), vec![(conn(3), "0".into())]);
    engine.list(asker(2, "web"));
    assert_eq!(
        answers(&drain(&mut engine)),
        vec![(conn(2), "403: Forbidden".into())]
    );
    engine.list(operator);
    let listed = drain(&mut engine);
    assert!(
        matches!(&listed[..], [Event::List { rows, .. }] if rows.len() == 1),
        "{listed:?}"
    );
}

#[test]
fn cancel_withdraws_a_waiting_job_and_kills_a_running_one() {
    let mut engine = memory();
    let (waiting, running) = (add(&mut engine, 1, "web"), add(&mut engine, 2, "web"));
    engine.end_turn();
    drain(&mut engine);
    engine.get(asker(3, "web"), waiting);
    drain(&mut engine);
    engine.cancel(asker(4, "web"), waiting);
    let events = drain(&mut engine);
    assert!(events
        .iter()
        .any(|e| matches!(e, Event::Withdraw { id, .. } if *id == waiting)));
    assert_eq!(
        answers(&events),
        vec![
            (conn(3), "410: Module m cancelled".into()),
            (conn(4), "cancelled: waiting job removed".into())
        ]
    );
    engine.started(running, 1);
    engine.cancel(asker(4, "web"), running);
    let events = drain(&mut engine);
    assert!(
        matches!(events[0], Event::Kill { id } if id == running),
        "{events:?}"
    );
    assert_eq!(
        answers(&events),
        vec![(conn(4), "cancelled: running job killed".into())]
    );
    engine.finished(
        running,
        finish(b"410: Module m cancelled", Outcome::Cancelled),
        keep(),
    );
    engine.check(asker(4, "web"), running);
    assert_eq!(
        answers(&drain(&mut engine)),
        vec![(conn(4), "404: Unknown job".into())]
    );
}

#[test]
fn jobs_not_kept_yet_count_against_the_waiting_bound() {
    let mut engine = memory();
    let bound = Admission {
        max_waiting: 1,
        ..room()
    };
    let job = |n: u8| NewJob {
        module: module("m"),
        data: vec![n],
        owner: "web".into(),
        client: None,
        conn: None,
        udp_peer: None,
        priority: Default::default(),
        options: Default::default(),
    };
    assert!(engine.add(job(1), bound, keep()).is_ok());
    assert_eq!(engine.add(job(2), bound, keep()), Err(Refusal::Busy));
    assert_eq!(engine.unkept(None), (1, 0, 0));
    engine.end_turn();
    assert_eq!(
        engine.unkept(None),
        (0, 0, 0),
        "kept: the loop's line counts it now"
    );
}

#[test]
fn a_client_leaving_is_forgotten_and_results_expire_on_the_tick() {
    let mut engine = memory();
    let id = add(&mut engine, 1, "web");
    engine.end_turn();
    drain(&mut engine);
    engine.get(asker(2, "web"), id);
    drain(&mut engine);
    engine.forget(conn(2));
    engine.started(id, 1);
    engine.finished(id, finish(b"result", Outcome::Exited(0)), keep());
    engine.end_turn();
    assert!(
        answers(&drain(&mut engine)).is_empty(),
        "nobody waits any more"
    );
    engine.check(asker(3, "web"), id);
    assert_eq!(answers(&drain(&mut engine)), vec![(conn(3), "2".into())]);
    let gone = Instant::now() + Duration::from_secs(61);
    engine.tick(gone, keep());
    engine.check(asker(3, "web"), id);
    assert_eq!(
        answers(&drain(&mut engine)),
        vec![(conn(3), "404: Unknown job".into())]
    );
}

struct Folder(PathBuf);

impl Drop for Folder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The engine over a journal on `dir`, with the poll its waker needs.
fn journaled(dir: &Path) -> (LocalEngine, mio::Poll) {
    let poll = mio::Poll::new().unwrap();
    let waker = Arc::new(mio::Waker::new(poll.registry(), mio::Token(0)).unwrap());
    let (journal, recovered) = Journal::open(dir, SyncPolicy::Always, waker).unwrap();
    let key = recovered.id_key.clone().unwrap_or(IdKey([7; 32]));
    let lookup = &mut |name: &str| Some(module(name));
    (
        LocalEngine::start(Box::new(journal), recovered, key, lookup),
        poll,
    )
}

/// Waits (off any loop) until the journal's writer has answered.
fn settle(engine: &mut LocalEngine) -> Vec<Event> {
    engine.end_turn();
    let mut events = drain(engine);
    for _ in 0..500 {
        if engine.settled() {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
        engine.wake();
        events.extend(drain(engine));
    }
    events
}

#[test]
fn over_a_journal_a_restart_runs_the_job_again_and_keeps_its_result() {
    let dir = std::env::temp_dir().join(format!("bgjob-engine-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let _folder = Folder(dir.clone());
    let (mut engine, poll) = journaled(&dir);
    let (interrupted, done) = (add(&mut engine, 1, "web"), add(&mut engine, 2, "web"));
    let events = settle(&mut engine);
    assert_eq!(runs(&events), vec![interrupted, done]);
    engine.started(interrupted, 1);
    engine.started(done, 1);
    engine.finished(done, finish(b"kept", Outcome::Exited(0)), keep());
    settle(&mut engine);
    engine.close();
    drop((engine, poll));
    let (mut again, _poll) = journaled(&dir);
    let events = drain(&mut again);
    let rerun: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::Run(job) => Some((job.id, job.attempts)),
            _ => None,
        })
        .collect();
    assert_eq!(
        rerun,
        vec![(interrupted, 1)],
        "the interrupted job runs again"
    );
    again.get(asker(3, "web"), done);
    let events = settle(&mut again);
    assert_eq!(answers(&events), vec![(conn(3), "kept".into())]);
    again.close();
}

#[test]
fn without_a_journal_a_waiting_job_is_dropped_at_shutdown_and_its_getters_told() {
    let mut engine = memory();
    let (dropped, removed) = (add(&mut engine, 1, "web"), add(&mut engine, 2, "web"));
    engine.end_turn();
    drain(&mut engine);
    engine.get(asker(3, "web"), dropped);
    drain(&mut engine);
    assert!(!engine.stop_waiting(dropped), "memory keeps nothing");
    let told = answers(&drain(&mut engine));
    assert_eq!(
        told,
        vec![(conn(3), Refusal::ShuttingDown.answer().to_string())]
    );
    engine.removed(removed, Removal::Dropped);
    for id in [dropped, removed] {
        engine.check(asker(4, "web"), id);
        assert_eq!(
            answers(&drain(&mut engine)),
            vec![(conn(4), "404: Unknown job".into())]
        );
    }
    assert_eq!(engine.unkept(None), (0, 0, 0));
}
