//! Replays the committed fuzz corpus (fuzz/corpus/<target>/) through the same harness the
//! cargo-fuzz targets use, so every seed and every reproducer of a fixed bug keeps being
//! checked by the normal test suite without cargo-fuzz or libFuzzer. See docs/fuzzing.md.
//!
//! `cargo test --test fuzz_corpus_replay -- --ignored write_seed_corpus` regenerates the seeds
//! (engine- and qemu-made disks plus hand-built ones); reproducers (`crash-*`, `oom-*`,
//! `timeout-*`) are kept as they are.

mod common;
#[path = "support/fuzz_harness.rs"]
mod fuzz_harness;
#[path = "support/fuzz_seeds.rs"]
mod fuzz_seeds;

use std::path::{Path, PathBuf};

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target)
}

fn replay(target: &str) {
    let dir = corpus_dir(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .collect();
    files.sort();
    assert!(
        files.len() >= 5,
        "{}: only {} seeds; the corpus is missing",
        dir.display(),
        files.len()
    );
    let work = tempfile::tempdir().expect("scratch directory");
    for file in &files {
        let data = std::fs::read(file).expect("read seed");
        let run = std::panic::catch_unwind(|| fuzz_harness::run(target, work.path(), &data));
        assert!(run.is_ok(), "{target}: {} panicked", file.display());
    }
}

#[test]
fn every_target_has_a_corpus() {
    for target in fuzz_harness::TARGETS {
        assert!(corpus_dir(target).is_dir(), "no corpus for {target}");
    }
}

#[test]
fn descriptor_corpus() {
    replay("descriptor");
}

#[test]
fn sparse_header_corpus() {
    replay("sparse_header");
}

#[test]
fn sparse_extent_corpus() {
    replay("sparse_extent");
}

#[test]
fn stream_corpus() {
    replay("stream");
}

#[test]
fn cowd_corpus() {
    replay("cowd");
}

#[test]
fn sesparse_corpus() {
    replay("sesparse");
}

#[test]
fn chain_open_corpus() {
    replay("chain_open");
}

/// The seeds open as real disks: a harness that refused everything would still "pass" the
/// replay, so check that the chain seeds made from real disks open and read.
#[test]
fn chain_seeds_open_as_disks() {
    let dir = corpus_dir("chain_open");
    let work = tempfile::tempdir().expect("scratch directory");
    let mut opened = 0;
    for entry in std::fs::read_dir(&dir).expect("corpus") {
        let path = entry.expect("entry").path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.starts_with("seed-") {
            continue;
        }
        let data = std::fs::read(&path).expect("read seed");
        if fuzz_seeds::opens_and_reads(work.path(), &data) {
            opened += 1;
        } else {
            panic!("seed {name} does not open as a disk");
        }
    }
    assert!(opened >= 5, "only {opened} chain seeds open");
}

/// Packed inputs split back into the same files wherever the separators fall (the splitter
/// skips 64 bytes at a time, so boundaries around a block matter).
#[test]
fn packed_files_unpack_to_the_same_files() {
    for len in [0usize, 1, 62, 63, 64, 65, 127, 128, 200, 1000] {
        let a: Vec<u8> = (0..len).map(|i| (i % 7) as u8).collect();
        let b: Vec<u8> = (0..len)
            .map(|i| if i % 50 == 49 { b'\n' } else { 0 })
            .collect();
        let packed = fuzz_harness::pack_files(&[("a.vmdk", &a), ("b-flat.vmdk", &b), ("c", b"")]);
        let files = fuzz_harness::unpack_files(&packed);
        let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["a.vmdk", "b-flat.vmdk", "c"], "len {len}");
        assert_eq!(files[0].1, &a[..], "len {len}");
        assert_eq!(files[1].1, &b[..], "len {len}");
        assert!(files[2].1.is_empty());
    }
    assert!(fuzz_harness::unpack_files(b"../x\ndata").is_empty());
}

#[test]
#[ignore = "regenerates fuzz/corpus seeds; run by hand"]
fn write_seed_corpus() {
    let dir = std::env::var_os("VDL_SEED_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus"),
        PathBuf::from,
    );
    fuzz_seeds::write_all(&dir);
}
