//! Fuzz target: see `kiln_integration_tests::fuzz_entry::pickle_repeat` (deep inputs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _accepted = kiln_integration_tests::fuzz_entry::pickle_repeat(data);
});
