//! The properties the fuzz targets check (`fuzz/`), shared with the test
//! that replays their corpus and regression inputs on every `cargo test`,
//! so that what a fuzzing run found stays fixed without a fuzzer.

use crate::journal::frame::{decode_all, Salt};
use crate::journal::replay::replay_bytes;
use crate::net::protocol::{classify, split_datagram, Control, Head};

/// Any bytes as a TCP request (complete or not) or a datagram: no panic,
/// routing indexes stay in bounds, names stay clean.
pub fn protocol(data: &[u8]) {
    for complete in [false, true] {
        match classify(data, complete) {
            Head::Incomplete => {
                assert!(!complete || data.is_empty() || data.starts_with(b"queue:"))
            }
            Head::Module { name, body_start } => {
                assert!(body_start <= data.len());
                assert!(name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
            }
            Head::Control(Control::QueueAdd {
                module,
                data_start,
                options,
            }) => {
                assert!(options.is_none_or(|o| o.start <= o.end && o.end <= data_start));
                assert!(data_start <= data.len());
                assert!(module
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
            }
            Head::Control(_) => {}
        }
    }
    let (name, rest) = split_datagram(data);
    assert!(rest.len() <= data.len());
    assert!(name.len() <= data.len());
}

/// Any bytes as a journal file: no panic, and what decodes re-encodes and
/// decodes to the same records.
pub fn journal(data: &[u8]) {
    let decoded = decode_all(data);
    assert!(decoded.skipped_bytes <= data.len());
    let salt = Salt([1; 16]);
    let mut again = salt.header();
    for record in &decoded.records {
        salt.encode(record, &mut again);
    }
    let redecoded = decode_all(&again);
    assert_eq!(redecoded.records, decoded.records);
    assert_eq!(redecoded.bad_spots, 0);
}

/// Any bytes as a journal read by the streaming reader that recovery uses
/// (`journal/replay.rs`): no panic and no error, and the same records,
/// damage and header verdict as the whole-file decoder.
pub fn journal_replay(data: &[u8]) {
    let mut records = Vec::new();
    let damage = replay_bytes(data, |r| records.push(r)).expect("reading memory cannot fail");
    let whole = decode_all(data);
    assert_eq!(records, whole.records);
    assert_eq!(damage.records as usize, records.len());
    assert_eq!(damage.skipped_bytes, whole.skipped_bytes as u64);
    assert_eq!(damage.bad_spots, whole.bad_spots);
    assert_eq!(damage.format, whole.format);
    assert_eq!(damage.header, whole.header);
    assert!(damage.skipped_bytes <= data.len() as u64);
}

/// Any bytes from a warm worker: no panic, and every reply consumes input.
pub fn worker_replies(data: &[u8]) {
    let mut buf = data.to_vec();
    let mut guard = data.len() + 1;
    while let Some(_reply) = crate::node::framing::next_reply(&mut buf) {
        guard -= 1;
        assert!(guard > 0, "a reply that consumes nothing");
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// Replays every corpus and regression input of the fuzz targets.
    #[test]
    fn fuzz_corpus_and_regressions_still_pass() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
        let mut replayed = 0;
        for (target, check) in [
            ("protocol", super::protocol as fn(&[u8])),
            ("journal", super::journal),
            ("journal_replay", super::journal_replay),
            ("worker_replies", super::worker_replies),
        ] {
            for folder in ["corpus", "regressions"] {
                let Ok(entries) = std::fs::read_dir(root.join(folder).join(target)) else {
                    continue;
                };
                for entry in entries.flatten() {
                    check(&std::fs::read(entry.path()).unwrap());
                    replayed += 1;
                }
            }
        }
        assert!(replayed >= 3, "the seed corpus is there");
    }
}
