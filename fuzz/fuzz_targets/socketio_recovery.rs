//! libFuzzer entry point of the `socketio_recovery` target; its body and invariants are in the duplex-fuzz library (see `duplex_fuzz::TARGETS`).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| duplex_fuzz::recovery::server(data));
