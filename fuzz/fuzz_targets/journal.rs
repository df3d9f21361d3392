#![no_main]
// The journal reader: any bytes as a journal file.
libfuzzer_sys::fuzz_target!(|data: &[u8]| bgjob::fuzz_checks::journal(data));
