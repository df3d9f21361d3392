#![no_main]
// The streaming journal reader that recovery uses: any bytes as a journal file.
libfuzzer_sys::fuzz_target!(|data: &[u8]| bgjob::fuzz_checks::journal_replay(data));
