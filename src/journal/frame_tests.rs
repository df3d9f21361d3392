//! Frames: round trips, damage, forgery, the first format.

use super::*;
use crate::journal::record::{Added, Finished, MAX_COUNTER};
use crate::queue::store::Removal;
use crate::run::outcome::{Outcome, Usage};
use crate::run::receipt::Receipt;
use std::rc::Rc;
use std::time::{Duration, Instant};

#[test]
fn frames_use_the_standard_crc32() {
    // The polynomial of every journal written so far: old files stay readable.
    assert_eq!(crc32fast::hash(b"123456789"), 0xCBF4_3926);
}

fn finished(id: u64, answer: &[u8]) -> Record {
    Record::Finished(Finished {
        id,
        owner: "main@127.0.0.1:0".into(),
        peer: "127.0.0.1".into(),
        module: "upper".into(),
        answer: Rc::from(answer),
        receipt: Receipt {
            attempts: 2,
            outcome: Some(Outcome::Signaled(9)),
            wall: Duration::from_millis(15),
            usage: Usage {
                user: Duration::from_micros(300),
                system: Duration::from_micros(200),
                max_rss_kib: 1234,
            },
            bytes_in: 256,
            bytes_out: 4,
            output_cut: true,
            module_sha256: "ab".repeat(32),
        },
        at_ms: 1_700_000_000_100,
        tries: Vec::new(),
        again: None,
        key: None,
    })
}

fn samples() -> Vec<Record> {
    vec![
        Record::NextId(7),
        Record::Added(Added {
            id: 7_000_123,
            counter: 7,
            owner: "main@127.0.0.1:0".into(),
            transport: Transport::Queue,
            peer: "127.0.0.1".into(),
            module: "upper".into(),
            data: (0..=255).collect::<Vec<u8>>().into(),
            at_ms: 1_700_000_000_000,
            options: Default::default(),
        }),
        Record::Started {
            id: 7_000_123,
            attempt: 2,
        },
        finished(7_000_123, b"DONE"),
        Record::Removed {
            id: 7_000_123,
            why: Removal::Fetched,
        },
    ]
}

use crate::journal::record::Transport;

const SALT: Salt = Salt([7; 16]);

fn file_of(records: &[Record]) -> Vec<u8> {
    let mut file = SALT.header();
    for r in records {
        SALT.encode(r, &mut file);
    }
    file
}

fn frame_len(r: &Record) -> usize {
    let mut v = Vec::new();
    SALT.encode(r, &mut v);
    v.len()
}

#[test]
fn records_round_trip() {
    let records = samples();
    let decoded = decode_all(&file_of(&records));
    assert_eq!(decoded.records, records);
    assert_eq!((decoded.skipped_bytes, decoded.bad_spots), (0, 0));
    assert_eq!(decoded.format, Some(Format::V2));
}

#[test]
fn a_torn_last_record_is_ignored() {
    let records = samples();
    let file = file_of(&records);
    for cut in 1..frame_len(records.last().unwrap()) {
        let decoded = decode_all(&file[..file.len() - cut]);
        assert_eq!(decoded.records, records[..records.len() - 1], "cut {cut}");
        assert_eq!(decoded.bad_spots, 1);
    }
}

#[test]
fn a_flipped_bit_loses_only_its_record() {
    let records = samples();
    let file = file_of(&records);
    let third = HEADER_LEN + frame_len(&records[0]) + frame_len(&records[1]);
    for offset in [third, third + 3, third + 9, third + 13, third + 17] {
        let mut bad = file.clone();
        bad[offset] ^= 0x10;
        let decoded = decode_all(&bad);
        let mut expected = records.clone();
        expected.remove(2);
        assert_eq!(decoded.records, expected, "flip at {offset}");
        assert_eq!(decoded.bad_spots, 1);
    }
}

#[test]
fn garbage_yields_no_records() {
    let decoded = decode_all(b"this is not a journal at all, not even close");
    assert!(decoded.records.is_empty());
    assert_eq!(decoded.bad_spots, 1);
}

#[test]
fn a_frame_of_another_salt_inside_client_data_is_never_read() {
    // A client's data holds a whole frame, as it would be if the client
    // knew everything but the salt; the add is torn inside that data.
    let mut forged = Vec::new();
    Salt([9; 16]).encode(&finished(5, b"FORGED"), &mut forged);
    let mut data = forged.clone();
    data.extend_from_slice(&[0; 64]);
    let add = Record::Added(Added {
        id: 6,
        counter: 6,
        owner: String::new(),
        transport: Transport::Queue,
        peer: String::new(),
        module: "test".into(),
        data: data.into(),
        at_ms: 0,
        options: Default::default(),
    });
    let mut file = file_of(&[finished(5, b"REAL")]);
    let before = file.len();
    SALT.encode(&add, &mut file);
    let cut = before + 60;
    let decoded = decode_all(&file[..cut]);
    assert_eq!(decoded.records, vec![finished(5, b"REAL")]);
}

#[test]
fn counters_past_the_id_space_are_damage() {
    let decoded = decode_all(&file_of(&[Record::NextId(u64::MAX)]));
    assert!(decoded.records.is_empty());
    assert_eq!(decoded.bad_spots, 1);
    let ok = decode_all(&file_of(&[Record::NextId(MAX_COUNTER)]));
    assert_eq!(ok.records.len(), 1);
}

#[test]
fn resynchronising_after_large_damage_is_linear() {
    // 4 MiB of bytes that each claim a long frame: only salt markers are
    // checked, so this takes milliseconds, not minutes.
    let mut file = file_of(&samples()[..1]);
    let damage: Vec<u8> = (0..4 << 20)
        .map(|i| if i % 4 == 0 { 0x7f } else { 0xff })
        .collect();
    file.extend_from_slice(&damage);
    SALT.encode(&Record::NextId(9), &mut file);
    let start = Instant::now();
    let decoded = decode_all(&file);
    assert!(start.elapsed() < Duration::from_secs(2));
    assert_eq!(decoded.records, vec![Record::NextId(7), Record::NextId(9)]);
    assert_eq!(decoded.bad_spots, 1);
}

/// A frame of the first format, as journals were written before the salt.
pub fn v1_frame(body: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(body).to_le_bytes());
    out.extend_from_slice(body);
}

#[test]
fn journals_of_the_first_format_are_read() {
    let mut file = MAGIC_V1.to_vec();
    v1_frame(&[1, 40, 0, 0, 0, 0, 0, 0, 0], &mut file);
    let mut added = vec![2];
    added.extend_from_slice(&41u64.to_le_bytes());
    added.push(1);
    added.extend_from_slice(&0u32.to_le_bytes());
    added.extend_from_slice(&4u32.to_le_bytes());
    added.extend_from_slice(b"test");
    added.extend_from_slice(&2u32.to_le_bytes());
    added.extend_from_slice(b"hi");
    added.extend_from_slice(&5u64.to_le_bytes());
    v1_frame(&added, &mut file);
    let decoded = decode_all(&file);
    assert_eq!(decoded.format, Some(Format::V1));
    assert_eq!(
        decoded.records,
        vec![
            Record::NextId(40),
            Record::Added(Added {
                id: 41,
                counter: 41,
                owner: String::new(),
                transport: Transport::Queue,
                peer: String::new(),
                module: "test".into(),
                data: Rc::from(&b"hi"[..]),
                at_ms: 5,
                options: Default::default(),
            })
        ]
    );
}
