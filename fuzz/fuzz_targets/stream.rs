//! Fuzz target `stream`: see `vixDiskLib::fuzz` (src/api/fuzz/) for what it exercises.
#![no_main]

use vixDiskLib::fuzz;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    fuzz::run("stream", &fuzz::scratch_dir("stream"), data);
});
