//! Fuzz target `sparse_extent`: see `vixDiskLib::fuzz` (src/api/fuzz/) for what it exercises.
#![no_main]

use vixDiskLib::fuzz;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    fuzz::run("sparse_extent", &fuzz::scratch_dir("sparse_extent"), data);
});
