//! The queue book: ids, results, shares, watchers.
use super::*;
use crate::keys::Key;

fn conn(n: usize) -> ConnKey {
    ConnKey::new(n)
}

fn book() -> QueueBook {
    QueueBook::new(IdKey([1; 32]))
}

fn add(book: &mut QueueBook) -> u64 {
    book.allocate_id(|_| false).unwrap().0
}

fn done_by(answer: &[u8], finished: Instant, client: [u8; 4]) -> Done {
    Done {
        owner: "main".into(),
        client: Some(client.into()),
        module: "m".into(),
        answer: Rc::from(answer),
        finished,
        receipt: Receipt::default(),
        tries: Vec::new(),
        again: None,
    }
}

fn done(answer: &[u8], finished: Instant) -> Done {
    done_by(answer, finished, [10, 0, 0, 1])
}

fn evicted(finished: Finished) -> Vec<u64> {
    match finished {
        Finished::Kept { evicted } => evicted,
        other => panic!("{other:?}"),
    }
}

const ROOMY: ResultLimits = ResultLimits {
    total: 100,
    per_client: 100,
};

#[test]
fn results_are_kept_until_fetched_or_expired() {
    let now = Instant::now();
    let mut book = book();
    let (a, b) = (add(&mut book), add(&mut book));
    assert_ne!(a, b);
    assert!(book.get(a).is_none(), "an unfinished job is the engine's");
    assert!(book.take_done(a).is_none());
    assert!(evicted(book.finish(a, done(b"A", now), ROOMY)).is_empty());
    let fetched = book.take_done(a).unwrap();
    assert_eq!(&*fetched.answer, b"A");
    book.fetched(a, *fetched);
    assert!(book.get(a).is_none());
    assert!(book.fetched_receipt(a).is_some(), "the receipt stays");
    book.finish(b, done(b"B", now), ROOMY);
    assert!(book
        .expire(now + Duration::from_secs(5), Duration::from_secs(10))
        .is_empty());
    assert_eq!(
        book.expire(now + Duration::from_secs(11), Duration::from_secs(10)),
        vec![b]
    );
    assert!(book.get(b).is_none());
    assert_eq!(book.held_bytes(), 0);
}

#[test]
fn a_client_over_its_share_loses_its_own_oldest_never_anothers() {
    let now = Instant::now();
    let mut book = book();
    let limits = ResultLimits {
        total: 100,
        per_client: 50,
    };
    let ids: Vec<u64> = (0..4).map(|_| add(&mut book)).collect();
    let other = ids[0];
    let theirs = done_by(&[0; 40], now, [10, 0, 0, 2]);
    assert!(evicted(book.finish(other, theirs, limits)).is_empty());
    assert!(evicted(book.finish(ids[1], done(&[0; 30], now), limits)).is_empty());
    assert_eq!(
        evicted(book.finish(ids[2], done(&[0; 30], now), limits)),
        vec![ids[1]]
    );
    assert!(book.get(other).is_some(), "another client's result stays");
    assert!(!book.has_room(
        Some([10, 0, 0, 3].into()),
        ResultLimits {
            total: 70,
            ..limits
        }
    ));
    assert!(book.has_room(Some([10, 0, 0, 3].into()), limits));
    assert!(!book.has_room(
        Some([10, 0, 0, 2].into()),
        ResultLimits {
            per_client: 40,
            ..limits
        }
    ));
    assert_eq!(book.held_bytes(), 70);
}

#[test]
fn waiting_getters_take_the_answer() {
    let now = Instant::now();
    let mut book = book();
    let id = add(&mut book);
    book.watch(id, conn(7));
    book.watch(id, conn(8));
    book.unwatch(id, conn(7));
    match book.finish(id, done(b"x", now), ROOMY) {
        Finished::Watched(done, conns) => {
            assert_eq!(&*done.answer, b"x");
            assert_eq!(conns, vec![conn(8)]);
        }
        other => panic!("{other:?}"),
    }
    assert!(book.get(id).is_none());
}

#[test]
fn ids_are_never_handed_out_again_and_counters_continue() {
    let mut b = book();
    let (first, counter) = b.allocate_id(|_| false).unwrap();
    assert_eq!(counter, 1);
    b.continue_from(10);
    let (_, counter) = b.allocate_id(|_| false).unwrap();
    assert_eq!(counter, 10);
    b.continue_from(3);
    assert_eq!(b.next_counter(), 11);
    // An old journal's sequential id that the permutation would hit is skipped.
    let mut again = book();
    assert_ne!(again.allocate_id(|id| id == first).unwrap().0, first);
}

#[test]
fn the_failed_that_failed_last_are_listed_and_all_counted() {
    let now = Instant::now();
    let mut book = book();
    let roomy = ResultLimits {
        total: 1 << 20,
        per_client: 1 << 20,
    };
    let mut failed_ids = Vec::new();
    for i in 0..10 {
        let id = add(&mut book);
        let mut result = done(b"x", now + Duration::from_millis(i));
        result.receipt.outcome = Some(if i % 3 == 0 {
            crate::run::outcome::Outcome::Exited(0)
        } else {
            failed_ids.push(id);
            crate::run::outcome::Outcome::Exited(3)
        });
        book.finish(id, result, roomy);
    }
    add(&mut book);
    failed_ids.reverse();
    let (total, rows) = book.failed_newest(3);
    assert_eq!(total, 6);
    let listed: Vec<u64> = rows.iter().map(|r| r.id).collect();
    assert_eq!(
        listed,
        failed_ids[..3],
        "the three that failed last, newest first"
    );
    let (total, rows) = book.failed_newest(100);
    assert_eq!((total, rows.len()), (6, 6));
    assert_eq!(book.failed().len(), 6);
}
