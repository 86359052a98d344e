//! Fuzz target `descriptor`: see `vixDiskLib::fuzz` (src/api/fuzz/) for what it exercises.
#![no_main]

use vixDiskLib::fuzz;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    fuzz::run("descriptor", &fuzz::scratch_dir("descriptor"), data);
});
