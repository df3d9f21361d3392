//! The schedule heap, driven without sockets: due jobs in bounded batches,
//! the earliest run time as the deadline, a failed attempt held for its
//! retry.

use std::rc::Rc;
use std::time::{Duration, Instant};

use super::*;
use crate::keys::{ConnKey, Key};
use crate::queue::engine::{Admission, Event, Finish, NewJob, QueueEngine};
use crate::queue::ids::IdKey;
use crate::queue::local::tests::keep;
use crate::queue::options::JobOptions;
use crate::queue::store::{MemoryStore, Recovered};
use crate::run::outcome::Outcome;
use crate::run::receipt::Receipt;

fn engine() -> LocalEngine {
    let store = Box::<MemoryStore>::default();
    LocalEngine::start(store, Recovered::default(), IdKey([3; 32]), &mut |_| None)
}

fn room() -> Admission {
    Admission {
        max_waiting: 1 << 20,
        max_waiting_per_client: 1 << 20,
        max_waiting_bytes: 1 << 30,
        max_waiting_bytes_per_client: 1 << 30,
        ..Admission::default()
    }
}

fn add(engine: &mut LocalEngine, options: JobOptions) -> u64 {
    let job = NewJob {
        module: Rc::new(crate::run::modules::test_module("m")),
        data: b"d".to_vec(),
        owner: "main".into(),
        client: Some([10, 0, 0, 1].into()),
        conn: Some(ConnKey::new(1)),
        udp_peer: None,
        priority: Default::default(),
        options,
    };
    engine.add(job, room(), keep()).unwrap()
}

fn at(ms_from_now: u64) -> JobOptions {
    JobOptions {
        run_at_ms: Some(unix_ms_now() + ms_from_now),
        ..JobOptions::default()
    }
}

/// The jobs the engine said to run, after the end of a turn.
fn turn(engine: &mut LocalEngine) -> Vec<u64> {
    engine.end_turn();
    std::iter::from_fn(|| engine.poll_event())
        .filter_map(|e| match e {
            Event::Run(job) => Some(job.id),
            _ => None,
        })
        .collect()
}

#[test]
fn jobs_due_together_start_in_bounded_batches_and_the_deadline_is_the_earliest() {
    let mut e = engine();
    let later = add(&mut e, at(60_000));
    let due = JobOptions {
        run_at_ms: Some(unix_ms_now() + 3000),
        ..JobOptions::default()
    };
    for _ in 0..5000 {
        add(&mut e, due.clone());
    }
    assert!(turn(&mut e).is_empty(), "kept, not due yet");
    assert_eq!(e.unkept_counts(None)[0], 5001, "all held, all counted");
    let deadline = e.poll_timeout().unwrap();
    assert!(deadline <= Instant::now() + Duration::from_millis(3000));
    std::thread::sleep(
        deadline.saturating_duration_since(Instant::now()) + Duration::from_millis(10),
    );
    let batches: Vec<usize> = (0..4).map(|_| turn(&mut e).len()).collect();
    assert_eq!(
        batches,
        vec![DUE_PER_TURN, DUE_PER_TURN, 5000 - 2 * DUE_PER_TURN, 0]
    );
    assert_eq!(e.unkept_counts(None)[0], 1, "only the later one is held");
    let deadline = e.poll_timeout().unwrap();
    assert!(
        deadline > Instant::now() + Duration::from_secs(50),
        "{later}"
    );
}

#[test]
fn a_failed_attempt_with_retries_left_is_held_for_its_wait_then_runs_again() {
    let mut e = engine();
    let retries = JobOptions {
        retries: Some(1),
        ..JobOptions::default()
    };
    let id = add(&mut e, retries);
    assert_eq!(turn(&mut e), vec![id]);
    e.started(id, 1);
    let failed = |wait| Finish {
        answer: Rc::from(&b"500: Module m failed (exit status 3)"[..]),
        receipt: Receipt {
            attempts: 1,
            outcome: Some(Outcome::Exited(3)),
            ..Receipt::default()
        },
        interrupted: false,
        stderr: "boom".into(),
        retry_wait: wait,
    };
    e.finished(id, failed(Duration::from_millis(30)), keep());
    assert!(turn(&mut e).is_empty(), "waits before its next attempt");
    assert_eq!(e.live[&id].phase, Phase::Scheduled);
    std::thread::sleep(Duration::from_millis(40));
    assert_eq!(turn(&mut e), vec![id]);
    assert_eq!(e.live[&id].attempts, 1, "the next start is attempt 2");
    e.started(id, 2);
    e.finished(id, failed(Duration::ZERO), keep());
    assert!(turn(&mut e).is_empty(), "no retries left: failed for good");
    assert!(!e.live.contains_key(&id));
    assert_eq!(e.book.failed()[0].attempts, 2);
}
