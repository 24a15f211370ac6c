#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| duplex_fuzz::engineio::payload_v3_string(data));
