//! Unit tests of the journal's records: each kind reads back, and records
//! written before a field existed read with its default.

use super::*;
use crate::queue::options::Priority;
use crate::run::outcome::Outcome;
use std::time::Duration;

fn added(options: JobOptions) -> Record {
    Record::Added(Added {
        id: 7,
        counter: 3,
        owner: "main".into(),
        transport: Transport::Queue,
        peer: "10.0.0.1".into(),
        module: "render".into(),
        data: Rc::from(&b"{}"[..]),
        at_ms: 1000,
        options,
    })
}

fn round_trip(record: &Record) -> Option<Record> {
    let mut body = Vec::new();
    record.encode_body(&mut body);
    Record::decode_body(&body, Format::V2)
}

#[test]
fn an_add_keeps_its_options_and_an_older_add_reads_as_the_defaults() {
    let options = JobOptions {
        run_at_ms: Some(5000),
        priority: Some(Priority::Low),
        retries: Some(3),
        key: Some(b"invoice-1".to_vec()),
        timeout_ms: Some(1500),
    };
    let record = added(options);
    assert_eq!(round_trip(&record), Some(record.clone()));
    let plain = added(JobOptions::default());
    assert_eq!(round_trip(&plain), Some(plain.clone()));
    // A body written before options existed ends after the time.
    let mut body = Vec::new();
    record.encode_body(&mut body);
    let old_len = body.len() - (8 + 1 + 4 + 1 + 4 + 9 + 8);
    let old = Record::decode_body(&body[..old_len], Format::V2);
    assert_eq!(old, Some(plain));
    assert_eq!(Record::decode_body(&body[..old_len + 3], Format::V2), None);
}

#[test]
fn attempts_and_a_failed_result_round_trip_and_older_results_read_without() {
    let attempt = Attempt {
        number: 2,
        outcome: Outcome::Exited(3),
        wall: Duration::from_micros(120_000),
        stderr: "no such invoice".into(),
        retry_at_ms: Some(99_000),
    };
    let record = Record::Attempt {
        id: 7,
        attempt: attempt.clone(),
    };
    assert_eq!(round_trip(&record), Some(record.clone()));
    let finished = |tries: Vec<Attempt>, again: Option<Box<Again>>| {
        Record::Finished(Finished {
            id: 7,
            owner: "main".into(),
            peer: String::new(),
            module: "render".into(),
            answer: Rc::from(&b"500: failed"[..]),
            receipt: Receipt::default(),
            at_ms: 2000,
            tries,
            again,
            key: Some(b"k".to_vec()),
        })
    };
    let again = Box::new(Again {
        data: Rc::from(&b"{}"[..]),
        options: JobOptions {
            retries: Some(2),
            ..JobOptions::default()
        },
    });
    let failed = finished(vec![attempt.clone(), attempt], Some(again));
    assert_eq!(round_trip(&failed), Some(failed.clone()));
    let mut body = Vec::new();
    let plain = finished(Vec::new(), None);
    plain.encode_body(&mut body);
    // Written before attempts: no count, no flag.
    let old = Record::decode_body(&body[..body.len() - 5 - 6], Format::V2);
    let Some(Record::Finished(mut old)) = old else {
        panic!("an older result does not decode");
    };
    assert_eq!(old.key.take(), None);
    old.key = Some(b"k".to_vec());
    assert_eq!(Record::Finished(old), plain);
}

#[test]
fn a_pause_record_reads_back_and_a_bad_one_does_not() {
    for paused in [true, false] {
        let record = Record::Paused {
            module: "render".into(),
            paused,
        };
        let mut body = Vec::new();
        record.encode_body(&mut body);
        assert_eq!(body[0], 7);
        assert_eq!(Record::decode_body(&body, Format::V2), Some(record));
        let mut longer = body.clone();
        longer.push(0);
        assert_eq!(Record::decode_body(&longer, Format::V2), None, "trailing");
        body.pop();
        assert_eq!(Record::decode_body(&body, Format::V2), None, "cut");
        body.push(2);
        assert_eq!(Record::decode_body(&body, Format::V2), None, "neither");
    }
}
