//! Fuzz target `chain_open`: see `vixDiskLib::fuzz` (src/api/fuzz/) for what it exercises.
#![no_main]

use vixDiskLib::fuzz;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    fuzz::run("chain_open", &fuzz::scratch_dir("chain_open"), data);
});
