#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| spindrive_fuzzing::client_addresses(data));
