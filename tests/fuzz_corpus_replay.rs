//! Replays the committed fuzz corpus (fuzz/corpus/<target>/) through the same entry point the
//! cargo-fuzz targets use (`vixDiskLib::fuzz::run`), so every seed and every reproducer of a
//! fixed bug keeps being checked by the normal test suite without cargo-fuzz or libFuzzer.
//! Like the fuzz targets, this front end uses only the crate's facade (tests/layering.rs
//! checks). See docs/fuzzing.md.
//!
//! The seeds are written by tests/fuzz_seed_corpus.rs.

use std::path::{Path, PathBuf};

use vixDiskLib::{Connection, OpenOptions, fuzz};

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
        let run = std::panic::catch_unwind(|| fuzz::run(target, work.path(), &data));
        assert!(run.is_ok(), "{target}: {} panicked", file.display());
    }
}

#[test]
fn every_target_has_a_corpus() {
    for target in fuzz::TARGETS {
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

/// True if a packed `chain_open` input opens read-only with its parents and its first sector
/// reads.
fn opens_and_reads(work: &Path, data: &[u8]) -> bool {
    let _ = std::fs::remove_dir_all(work);
    std::fs::create_dir_all(work).expect("scratch");
    let files = fuzz::unpack_files(data);
    for (name, content) in &files {
        std::fs::write(work.join(name), content).expect("write file");
    }
    let Some((first, _)) = files.first() else {
        return false;
    };
    let opts = OpenOptions {
        read_only: true,
        ..OpenOptions::default()
    };
    match Connection::local().open(work.join(first), &opts) {
        Ok(d) => {
            let mut buf = vec![0u8; 512];
            d.read(0, &mut buf).is_ok()
        }
        Err(e) => {
            eprintln!("{first}: {e}");
            false
        }
    }
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
        if opens_and_reads(work.path(), &data) {
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
        let packed = fuzz::pack_files(&[("a.vmdk", &a), ("b-flat.vmdk", &b), ("c", b"")]);
        let files = fuzz::unpack_files(&packed);
        let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["a.vmdk", "b-flat.vmdk", "c"], "len {len}");
        assert_eq!(files[0].1, &a[..], "len {len}");
        assert_eq!(files[1].1, &b[..], "len {len}");
        assert!(files[2].1.is_empty());
    }
    assert!(fuzz::unpack_files(b"../x\ndata").is_empty());
}
