//! Headers: every byte of a header damaged, old formats, what cannot be read.

use super::*;
use crate::journal::frame::{decode_all, Salt};
use crate::journal::record::{Format, Record};

const SALT: Salt = Salt([
    0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xf0, 0x01,
]);

fn records() -> Vec<Record> {
    (1..=5).map(|n| Record::NextId(n * 10)).collect()
}

fn file() -> Vec<u8> {
    let mut file = SALT.header();
    for r in records() {
        SALT.encode(&r, &mut file);
    }
    file
}

#[test]
fn an_intact_header_is_intact() {
    let decoded = decode_all(&file());
    assert_eq!(decoded.header, HeaderState::Intact);
    assert_eq!(decoded.records, records());
}

#[test]
fn any_flipped_bit_of_the_header_costs_no_record() {
    let good = file();
    for offset in 0..HEADER_LEN {
        for bit in 0..8 {
            let mut bad = good.clone();
            bad[offset] ^= 1 << bit;
            let decoded = decode_all(&bad);
            assert_eq!(decoded.records, records(), "bit {bit} of byte {offset}");
            assert_eq!(decoded.header, HeaderState::Rebuilt, "byte {offset}");
            assert_eq!(decoded.format, Some(Format::V2));
            assert_eq!(decoded.bad_spots, 0);
        }
    }
}

#[test]
fn any_byte_of_the_salt_replaced_costs_no_record() {
    let good = file();
    for offset in 8..HEADER_LEN {
        for value in [0u8, 0xff, 0x5a] {
            let mut bad = good.clone();
            if bad[offset] == value {
                continue;
            }
            bad[offset] = value;
            assert_eq!(decode_all(&bad).records, records(), "byte {offset}");
        }
    }
}

#[test]
fn a_damaged_first_frame_leaves_the_header_trusted() {
    let mut bad = file();
    bad[HEADER_LEN + 17] ^= 4;
    let decoded = decode_all(&bad);
    assert_eq!(decoded.header, HeaderState::Intact);
    assert_eq!(decoded.records, records()[1..]);
    assert_eq!(decoded.bad_spots, 1);
}

#[test]
fn a_header_without_magic_or_salt_is_unreadable() {
    let mut bad = file();
    bad[0] ^= 1;
    bad[17] ^= 1;
    bad[20] ^= 1;
    let decoded = decode_all(&bad);
    assert_eq!(decoded.header, HeaderState::Unreadable);
    assert!(decoded.records.is_empty());
    assert_eq!(decoded.skipped_bytes, bad.len());
    assert_eq!(decode_all(&bad[..10]).header, HeaderState::Unreadable);
    assert_eq!(decode_all(b"").header, HeaderState::Missing);
}

#[test]
fn a_damaged_magic_of_the_first_format_is_read_as_it() {
    let mut file = MAGIC_V1.to_vec();
    crate::journal::frame::tests::v1_frame(&[1, 40, 0, 0, 0, 0, 0, 0, 0], &mut file);
    assert_eq!(decode_all(&file).records, vec![Record::NextId(40)]);
    file[3] ^= 0x20;
    let decoded = decode_all(&file);
    assert_eq!(decoded.format, Some(Format::V1));
    assert_eq!(decoded.records, vec![Record::NextId(40)]);
}

#[test]
fn a_magic_damaged_into_the_first_formats_is_still_read_as_salted() {
    let mut bad = file();
    bad[6] = b'1';
    assert!(bad.starts_with(MAGIC_V1));
    let decoded = decode_all(&bad);
    assert_eq!(decoded.format, Some(Format::V2));
    assert_eq!(decoded.records, records());
}
