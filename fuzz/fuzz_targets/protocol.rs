#![no_main]
// The request parser: any bytes as a TCP request or a UDP datagram.
libfuzzer_sys::fuzz_target!(|data: &[u8]| bgjob::fuzz_checks::protocol(data));
