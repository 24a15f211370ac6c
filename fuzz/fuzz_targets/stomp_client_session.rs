#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| duplex_fuzz::stomp::client_session(data));
