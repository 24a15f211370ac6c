//! libFuzzer entry point of the `engineio_payload_v4` target; its body and invariants are in the duplex-fuzz library (see `duplex_fuzz::TARGETS`).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| duplex_fuzz::engineio::payload_v4(data));
