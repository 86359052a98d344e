//! One entry point per fuzz target, for the fuzz front ends.
//!
//! Why this module exists: the facade deliberately hides the on-disk formats (a Rust program
//! opens a disk; it never decodes a sparse header or a grain table itself), but fuzzing has to
//! reach each parser on its own, with bytes that no disk on a file system would hold: the
//! descriptor text, the 512-byte sparse header, and the sparse, stream, COWD and seSparse
//! extent files, then a whole chain of such files. So the engine offers each of those targets
//! here, behind one call, [`run`], and every fuzz front end uses only this module: the
//! cargo-fuzz targets (`fuzz/fuzz_targets/<target>.rs`, each one line) and the corpus replay
//! test (`tests/fuzz_corpus_replay.rs`), so the fuzzer and the test suite exercise exactly the
//! same code and neither names an engine module (`tests/layering.rs` checks that).
//!
//! Each target takes arbitrary bytes and a scratch directory, hands the bytes to one engine
//! parser or opener and uses what it returns. Errors are the expected answer to garbage; the
//! property is that nothing panics, hangs or allocates without bound. A few cheap consistency
//! checks (a header re-encodes to itself, a rendered descriptor re-parses, a repaired stream
//! checks clean) panic on failure too, since those are engine bugs as well. docs/fuzzing.md
//! lists what each target exercises and how to run the fuzzers.
//!
//! ```
//! let work = tempfile::tempdir()?;
//! for target in vixDiskLib::fuzz::TARGETS {
//!     // Garbage is refused with an error inside the target: no panic.
//!     vixDiskLib::fuzz::run(target, work.path(), b"not a disk");
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod pack;
mod targets;

use std::path::{Path, PathBuf};

pub use pack::{pack_files, unpack_files};

/// The fuzz targets, by the name used for `fuzz/fuzz_targets/<name>.rs` and
/// `fuzz/corpus/<name>/`: `descriptor`, `sparse_header`, `sparse_extent`, `stream`, `cowd`,
/// `sesparse` and `chain_open`.
///
/// ```
/// assert!(vixDiskLib::fuzz::TARGETS.contains(&"chain_open"));
/// ```
pub const TARGETS: &[&str] = &[
    "descriptor",
    "sparse_header",
    "sparse_extent",
    "stream",
    "cowd",
    "sesparse",
    "chain_open",
];

/// Silences the engine's log for the rest of the process: warnings go to stderr by default,
/// and a fuzzer that logs every rejected input slows down and buries its own output.
fn quiet() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| crate::set_log_sink(Some(Box::new(|_, _| {})), crate::LogLevel::Warning));
}

/// A per-process scratch directory for `target`, on tmpfs (`/dev/shm`) when there is one: the
/// targets write their input to files on every run. It is not created here ([`run`] creates
/// it).
///
/// ```
/// let dir = vixDiskLib::fuzz::scratch_dir("cowd");
/// assert!(dir.file_name().unwrap().to_string_lossy().starts_with("vdl-fuzz-cowd-"));
/// ```
pub fn scratch_dir(target: &str) -> PathBuf {
    let shm = Path::new("/dev/shm");
    let base = if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    };
    base.join(format!("vdl-fuzz-{target}-{}", std::process::id()))
}

/// Runs the fuzz target `target` (one of [`TARGETS`]) on `data`, with `work` as its scratch
/// directory (created if missing; the files it holds are replaced).
///
/// Returns normally whatever the bytes are; it panics only on an engine bug (a panic inside
/// the engine, or a failed consistency check) or on an unknown target name. The first call
/// sends the engine's log to a sink that drops it, for the rest of the process.
///
/// ```
/// let work = tempfile::tempdir()?;
/// let descriptor = "# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\n\
///                   createType=\"monolithicFlat\"\nRW 2048 FLAT \"disk-flat.vmdk\" 0\n";
/// vixDiskLib::fuzz::run("descriptor", work.path(), descriptor.as_bytes());
/// vixDiskLib::fuzz::run("sparse_header", work.path(), &[0xff; 512]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn run(target: &str, work: &Path, data: &[u8]) {
    quiet();
    match target {
        "descriptor" => targets::descriptor(data),
        "sparse_header" => targets::sparse_header(data),
        "sparse_extent" => targets::sparse_extent(work, data),
        "stream" => targets::stream(work, data),
        "cowd" => targets::cowd(work, data),
        "sesparse" => targets::sesparse(work, data),
        "chain_open" => targets::chain_open(work, data),
        other => panic!("unknown fuzz target {other:?}"),
    }
}
