//! Fuzz target: see `kiln_integration_tests::fuzz_entry::pickle`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _accepted = kiln_integration_tests::fuzz_entry::pickle(data);
});
