#![no_main]
// The warm workers' reply framing: any bytes from a worker's stdout.
libfuzzer_sys::fuzz_target!(|data: &[u8]| bgjob::fuzz_checks::worker_replies(data));
