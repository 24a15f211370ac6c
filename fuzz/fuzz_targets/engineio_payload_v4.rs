#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| duplex_fuzz::engineio::payload_v4(data));
