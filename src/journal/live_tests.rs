//! The journal's live view: replay, compaction and recovery agree.

use super::*;
use crate::queue::store::Removal;
use crate::run::receipt::Receipt;
use std::rc::Rc;

fn added(id: u64) -> Record {
    Record::Added(Added {
        id: id * 1000,
        counter: id,
        owner: "main".into(),
        transport: Transport::Queue,
        peer: String::new(),
        module: "m".into(),
        data: Rc::from(&b"data"[..]),
        at_ms: 1000,
        options: Default::default(),
    })
}

#[test]
fn recovered_jobs_come_in_the_order_they_arrived_not_by_id() {
    let mut live = Live::loading();
    for (id, counter) in [(9, 1), (3, 2), (7, 3)] {
        let Record::Added(mut add) = added(id) else {
            unreachable!()
        };
        add.counter = counter;
        live.apply(&Record::Added(add));
    }
    let ids: Vec<u64> = live.recovered().jobs.iter().map(|j| j.id).collect();
    assert_eq!(ids, [9000, 3000, 7000]);
}

#[test]
fn replay_keeps_waiting_interrupted_and_finished_jobs() {
    let mut live = Live::loading();
    for record in [
        added(1),
        added(2),
        Record::Started {
            id: 2000,
            attempt: 1,
        },
        added(3),
        Record::Finished(Finished {
            id: 3000,
            owner: "main".into(),
            peer: "127.0.0.1".into(),
            module: "m".into(),
            answer: Rc::from(&b"out"[..]),
            receipt: Receipt::default(),
            at_ms: 2000,
            tries: Vec::new(),
            again: None,
            key: None,
        }),
        added(4),
        Record::Removed {
            id: 4000,
            why: Removal::Cancelled,
        },
    ] {
        live.apply(&record);
    }
    let recovered = live.recovered();
    assert_eq!(recovered.next_counter, 5, "counters, not ids, continue");
    let jobs: Vec<(u64, u32)> = recovered.jobs.iter().map(|j| (j.id, j.attempts)).collect();
    assert_eq!(jobs, vec![(1000, 0), (2000, 1)]);
    assert_eq!(recovered.jobs[0].owner, "main");
    assert_eq!(recovered.results.len(), 1);
    assert_eq!(recovered.results[0].client, Some([127, 0, 0, 1].into()));
    assert_eq!(&*recovered.results[0].answer, b"out");
    // A compacted journal replays to the same state.
    let mut again = Live::loading();
    for record in live.records() {
        again.apply(&record);
    }
    assert_eq!(again.recovered(), recovered);
}

#[test]
fn the_last_pause_of_a_module_counts_and_survives_compaction() {
    let mut live = Live::loading();
    let pause = |module: &str, paused| Record::Paused {
        module: module.into(),
        paused,
    };
    for record in [
        pause("a", true),
        pause("b", true),
        added(1),
        pause("a", false),
        pause("c", true),
        pause("c", true),
    ] {
        live.apply(&record);
    }
    assert_eq!(live.recovered().paused, ["b", "c"]);
    let mut again = Live::loading();
    for record in live.records() {
        again.apply(&record);
    }
    assert_eq!(again.recovered(), live.recovered());
}

#[test]
fn a_live_job_is_small_and_boxes_only_its_starts() {
    assert_eq!(std::mem::size_of::<Entry>(), 32);
    let mut live = Live::default();
    live.apply(&added(1));
    assert!(live.adds.is_none(), "no add record kept once loaded");
    assert_eq!(live.get(1000).unwrap().what, What::default());
    live.apply(&Record::Started {
        id: 1000,
        attempt: 2,
    });
    let started = live.get(1000).unwrap().what.started().cloned();
    assert_eq!(started.map(|s| s.attempts), Some(2));
    assert_eq!(live.get(1000).unwrap().started(1000).len(), 1);
    // A start of an id that is not live keeps nothing.
    live.apply(&Record::Started { id: 5, attempt: 1 });
    assert!(live.get(5).is_none());
    let removed = live.apply(&Record::Removed {
        id: 1000,
        why: Removal::Done,
    });
    assert!(removed.is_some());
    assert_eq!(live.iter().count(), 0);
}

#[test]
fn ids_continue_after_a_compacted_journal_with_nothing_live() {
    let mut live = Live::default();
    live.apply(&Record::NextId(40));
    assert_eq!(live.recovered().next_counter, 40);
    assert_eq!(live.records(), vec![Record::NextId(40)]);
}
