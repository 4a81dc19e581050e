//! Cross-crate integration tests live beside this file; see `parity.rs`.
//!
//! The library part holds what the tests share with the fuzzers in `fuzz/`: the
//! [`fuzz_entry`] points, which the fuzz targets call with arbitrary bytes and
//! `fuzz_regressions.rs` calls with every input a fuzzer ever found.

pub mod fuzz_entry;
