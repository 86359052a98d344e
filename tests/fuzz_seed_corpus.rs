//! Writes the seeds of the fuzz corpus (fuzz/corpus/<target>/seed-*): engine- and qemu-made
//! disks plus hand-built ones (tests/support/fuzz_seeds.rs). Reproducers (`repro-*`) are kept
//! as they are. Run by hand:
//! `cargo test --test fuzz_seed_corpus -- --ignored write_seed_corpus` (`VDL_SEED_DIR` writes
//! elsewhere). Unlike the replay test, this is not a front end: hand-building malformed
//! extents takes the engine's format modules, as the other integration tests of the layers do.

mod common;
#[path = "support/fuzz_seeds.rs"]
mod fuzz_seeds;

use std::path::{Path, PathBuf};

#[test]
#[ignore = "regenerates fuzz/corpus seeds; run by hand"]
fn write_seed_corpus() {
    let dir = std::env::var_os("VDL_SEED_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus"),
        PathBuf::from,
    );
    fuzz_seeds::write_all(&dir);
}
