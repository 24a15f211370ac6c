//! libFuzzer entry point of the `engineio_server` target; its body and invariants are in the duplex-fuzz library (see `duplex_fuzz::TARGETS`).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| duplex_fuzz::engineio::server(data));
