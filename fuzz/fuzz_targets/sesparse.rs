//! Fuzz target `sesparse`: see `tests/support/fuzz_harness.rs` for what it exercises.
#![no_main]

#[path = "../../tests/support/fuzz_harness.rs"]
mod fuzz_harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    fuzz_harness::run("sesparse", &fuzz_harness::scratch_dir("sesparse"), data);
});
