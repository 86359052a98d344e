//! The fuzz harness, shared by the cargo-fuzz targets (fuzz/fuzz_targets/) and by the corpus
//! replay test (tests/fuzz_corpus_replay.rs), so both exercise exactly the same code.
//!
//! Each target takes arbitrary bytes and a scratch directory, hands the bytes to one engine
//! parser or opener and uses what it returns. Errors are the expected answer to garbage; the
//! property is that nothing panics, hangs or allocates without bound. A few cheap consistency
//! checks (a header re-encodes to itself, a rendered descriptor re-parses) also panic on
//! failure, since they are engine bugs too.
#![allow(dead_code)]

use std::fs::File;
use std::path::{Path, PathBuf};

use vixDiskLib::chain::{Disk, OpenOptions};
use vixDiskLib::vmdk::check::{Outcome, check_disk};
use vixDiskLib::vmdk::cowd::CowdExtent;
use vixDiskLib::vmdk::descriptor::Descriptor;
use vixDiskLib::vmdk::header::SparseHeader;
use vixDiskLib::vmdk::sesparse::SeSparseExtent;
use vixDiskLib::vmdk::sparse::{GrainMap, SparseExtent};
use vixDiskLib::vmdk::stream_read::inflate_grain;

/// The fuzz targets, by the name used for `fuzz/fuzz_targets/<name>.rs` and
/// `fuzz/corpus/<name>/`.
pub const TARGETS: &[&str] = &[
    "descriptor",
    "sparse_header",
    "sparse_extent",
    "stream",
    "cowd",
    "sesparse",
    "chain_open",
];

/// Separates the files packed into one `chain_open` input (see `unpack_files`).
pub const FILE_SEPARATOR: &[u8] = b"\n@@VDLFILE@@";
/// Most files one `chain_open` input may unpack into.
const MAX_FILES: usize = 6;
/// Longest file name accepted in a packed input.
const MAX_NAME: usize = 40;
/// Sectors a target reads per request: enough to cross grain boundaries, small enough to stay
/// fast.
const READ_SECTORS: u64 = 16;

/// Silences the engine's log (warnings go to stderr by default, which would slow the fuzzer
/// and bury its output). Cheap to call every time.
pub fn quiet() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        vixDiskLib::log::configure(Some(Box::new(|_, _| {})), vixDiskLib::log::Level::Warning)
    });
}

/// A per-process scratch directory for `target` on tmpfs when there is one (the targets write
/// their input to files on every run).
pub fn scratch_dir(target: &str) -> PathBuf {
    let shm = Path::new("/dev/shm");
    let base = if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    };
    base.join(format!("vdl-fuzz-{target}-{}", std::process::id()))
}

/// Runs `target` on `data` with `work` as scratch directory (created if missing; its content
/// is replaced). Panics on an unknown target name.
pub fn run(target: &str, work: &Path, data: &[u8]) {
    quiet();
    match target {
        "descriptor" => descriptor(data),
        "sparse_header" => sparse_header(data),
        "sparse_extent" => sparse_extent(work, data),
        "stream" => stream(work, data),
        "cowd" => cowd(work, data),
        "sesparse" => sesparse(work, data),
        "chain_open" => chain_open(work, data),
        other => panic!("unknown fuzz target {other:?}"),
    }
}

/// Descriptor text: parse; a parsed descriptor must render to text that parses again and
/// renders identically (rewrites of a descriptor must never lose or corrupt it).
pub fn descriptor(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let Ok(d) = Descriptor::parse(&text) else {
        return;
    };
    let _ = (d.capacity(), d.ddb_get("uuid"));
    let rendered = d.render();
    let again = Descriptor::parse(&rendered)
        .unwrap_or_else(|e| panic!("rendered descriptor does not parse: {e}\n{rendered}"));
    assert_eq!(again.render(), rendered, "rendering is not stable");
}

/// The 512-byte sparse header: decode against a file length taken from the input; a decoded
/// header must encode back to a header that decodes to the same values.
pub fn sparse_header(data: &[u8]) {
    if data.len() < 512 {
        return;
    }
    // Bytes 79..87 are unused padding in a real header: the fuzzer picks the file length there.
    let file_sectors = u64::from_le_bytes(data[79..87].try_into().expect("8 bytes")) >> 16;
    let Ok(h) = SparseHeader::decode(&data[..512], file_sectors) else {
        return;
    };
    let _ = (
        h.gd_entries(),
        h.gd_sectors(),
        h.gt_sectors(),
        h.gt_coverage(),
    );
    let back = SparseHeader::decode(&h.encode(), file_sectors)
        .unwrap_or_else(|e| panic!("re-encoded header refused: {e}: {h:?}"));
    assert_eq!(back, h, "header does not survive encode/decode");
}

/// Writes `data` as the single file `name` in `work` and opens it read-only.
fn single_file(work: &Path, name: &str, data: &[u8]) -> Option<(PathBuf, File)> {
    std::fs::create_dir_all(work).ok()?;
    let path = work.join(name);
    std::fs::write(&path, data).ok()?;
    let file = File::open(&path).ok()?;
    Some((path, file))
}

/// Virtual sectors worth probing in an extent of `capacity` sectors: the start, a point picked
/// by the input, and the end.
fn probe_points(capacity: u64, pick: u64) -> [u64; 3] {
    let last = capacity.saturating_sub(1);
    [
        0,
        pick % capacity.max(1),
        last.saturating_sub(READ_SECTORS - 1),
    ]
}

/// Reads up to `READ_SECTORS` sectors at `sector` of a sparse extent the way a link does:
/// map, then read plain data or inflate a compressed grain.
fn read_sparse(sp: &SparseExtent, sector: u64) {
    let capacity = sp.header().capacity;
    if sector >= capacity {
        return;
    }
    let max = READ_SECTORS.min(capacity - sector);
    let Ok((map, len)) = sp.map(sector, max) else {
        return;
    };
    assert!(
        len >= 1 && len <= max,
        "map returned {len} sectors for at most {max}"
    );
    match map {
        GrainMap::Data(offset) => {
            let mut buf = vec![0u8; (len * 512) as usize];
            let _ = sp.read_data(&mut buf, offset);
        }
        GrainMap::Compressed(marker) => {
            let mut grain = vec![0u8; sp.grain_bytes()];
            let _ = sp.read_compressed(marker, &mut grain);
        }
        GrainMap::Zero | GrainMap::Unallocated => {}
    }
}

/// Visits the allocated grains of the first and last stretch of an extent (bounded so a huge
/// capacity cannot make the walk itself slow).
fn walk_allocated(capacity: u64, walk: &mut dyn FnMut(u64, u64)) {
    const SPAN: u64 = 1 << 16;
    walk(0, SPAN.min(capacity));
    walk(capacity.saturating_sub(SPAN), capacity);
}

fn pick_of(data: &[u8]) -> u64 {
    // The last 8 bytes: rarely meaningful in a disk file, so mutating them steers the probe
    // without breaking the structure.
    let tail = &data[data.len().saturating_sub(8)..];
    tail.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b))
}

/// A hosted sparse extent file: header, grain directories and tables, then reads and an
/// allocation walk.
pub fn sparse_extent(work: &Path, data: &[u8]) {
    if data.len() < 512 {
        return;
    }
    let Some((path, file)) = single_file(work, "sparse.vmdk", data) else {
        return;
    };
    let Ok(sp) = SparseExtent::open(
        vixDiskLib::vmdk::fd_cache::CachedFile::pinned(std::sync::Arc::new(file), &path, false),
        &data[..512],
    ) else {
        return;
    };
    let capacity = sp.header().capacity;
    for sector in probe_points(capacity, pick_of(data)) {
        read_sparse(&sp, sector);
    }
    walk_allocated(capacity, &mut |start, end| {
        let _ = sp.for_each_allocated(start, end, &mut |s, n| {
            assert!(
                n > 0 && s + n <= capacity,
                "allocated run {s}+{n} past {capacity}"
            );
        });
    });
}

/// Stream (compressed) extents: one grain marker and its deflate data inflated directly (the
/// input starts with the marker; its first byte, part of the marker's unused LBA high bits
/// here, picks the grain size), then the whole input opened as a stream extent (footer,
/// tables, markers) and read.
pub fn stream(work: &Path, data: &[u8]) {
    if data.is_empty() {
        return;
    }
    let Some((path, file)) = single_file(work, "stream.vmdk", data) else {
        return;
    };
    let grain_sectors = 8usize << (data[0] % 6);
    let mut grain = vec![0u8; grain_sectors * 512];
    let _ = inflate_grain(&file, &path, 0, &mut grain);
    if data.len() < 512 || !SparseHeader::has_magic(data) {
        return;
    }
    if let Ok(sp) = SparseExtent::open(
        vixDiskLib::vmdk::fd_cache::CachedFile::pinned(std::sync::Arc::new(file), &path, false),
        &data[..512],
    ) {
        let capacity = sp.header().capacity;
        for sector in probe_points(capacity, pick_of(data)) {
            read_sparse(&sp, sector);
        }
    }
    check_stream(&path);
}

/// CheckRepair on a stream: whatever repair accepts must check clean afterwards.
fn check_stream(path: &Path) {
    let Ok(first) = check_disk(path, false) else {
        return;
    };
    if first.outcome() != Outcome::NeedsRepair {
        return;
    }
    let Ok(r) = check_disk(path, true) else {
        return;
    };
    if r.outcome() == Outcome::Repaired {
        let again = check_disk(path, false).expect("a salvaged stream checks");
        assert!(!again.is_damaged(), "after repair: {:?}", again.problems);
    }
}

/// An ESX COWD (vmfsSparse) extent: header, directory, tables, reads and an allocation walk.
pub fn cowd(work: &Path, data: &[u8]) {
    let Some((path, file)) = single_file(work, "cowd.vmdk", data) else {
        return;
    };
    let Ok(c) = CowdExtent::open(vixDiskLib::vmdk::fd_cache::CachedFile::pinned(
        std::sync::Arc::new(file),
        &path,
        false,
    )) else {
        return;
    };
    let _ = c.legacy_parent_name();
    let capacity = c.capacity();
    for sector in probe_points(capacity, pick_of(data)) {
        if sector >= capacity {
            continue;
        }
        let max = READ_SECTORS.min(capacity - sector);
        if let Ok((map, len)) = c.map(sector, max) {
            assert!(len >= 1 && len <= max, "COWD map gave {len} of {max}");
            if let GrainMap::Data(offset) = map {
                let mut buf = vec![0u8; (len * 512) as usize];
                let _ = c.read_data(&mut buf, offset);
            }
        }
    }
    walk_allocated(capacity, &mut |start, end| {
        let _ = c.for_each_allocated(start, end, &mut |s, n| {
            assert!(
                n > 0 && s + n <= capacity,
                "COWD run {s}+{n} past {capacity}"
            );
        });
    });
}

/// An ESXi seSparse extent: both headers, the directory, tables (every entry checked), reads
/// and an allocation walk.
pub fn sesparse(work: &Path, data: &[u8]) {
    let Some((path, file)) = single_file(work, "sesparse.vmdk", data) else {
        return;
    };
    let Ok(se) = SeSparseExtent::open(&path, file) else {
        return;
    };
    let capacity = se.capacity();
    for sector in probe_points(capacity, pick_of(data)) {
        if sector >= capacity {
            continue;
        }
        let max = READ_SECTORS.min(capacity - sector);
        if let Ok((map, len)) = se.map(sector, max) {
            assert!(len >= 1 && len <= max, "seSparse map gave {len} of {max}");
            if let GrainMap::Data(offset) = map {
                let mut buf = vec![0u8; (len * 512) as usize];
                let _ = se.read_data(&mut buf, offset);
            }
        }
    }
    walk_allocated(capacity, &mut |start, end| {
        let _ = se.for_each_allocated(start, end, &mut |s, n| {
            assert!(
                n > 0 && s + n <= capacity,
                "seSparse run {s}+{n} past {capacity}"
            );
        });
    });
    let _ = se.check_all();
}

/// Splits a `chain_open` input into files: parts separated by `FILE_SEPARATOR`, each
/// `name\n` then the content. Names are plain file names (letters, digits, `.`, `-`, `_`);
/// parts with any other name are skipped. The first valid part is the disk to open.
pub fn unpack_files(data: &[u8]) -> Vec<(String, &[u8])> {
    let mut out: Vec<(String, &[u8])> = Vec::new();
    let mut rest = data;
    while out.len() < MAX_FILES {
        let (part, next) = match find(rest, FILE_SEPARATOR) {
            Some(at) => (&rest[..at], Some(&rest[at + FILE_SEPARATOR.len()..])),
            None => (rest, None),
        };
        if let Some(nl) = find_newline(part) {
            let name = &part[..nl];
            let ok = !name.is_empty()
                && name.len() <= MAX_NAME
                && name != b"."
                && name != b".."
                && name
                    .iter()
                    .all(|&b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
            if ok {
                let name = String::from_utf8_lossy(name).into_owned();
                out.retain(|(n, _)| *n != name);
                out.push((name, &part[nl + 1..]));
            }
        }
        match next {
            Some(n) => rest = n,
            None => break,
        }
    }
    out
}

/// Packs files into one `chain_open` input (the inverse of `unpack_files`), for making seeds.
pub fn pack_files(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, (name, content)) in files.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(FILE_SEPARATOR);
        }
        out.extend_from_slice(name.as_bytes());
        out.push(b'\n');
        out.extend_from_slice(content);
    }
    out
}

/// Where `needle` (which starts with a newline) first occurs in `hay`.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(nl) = find_newline(&hay[from..]) {
        let at = from + nl;
        if hay[at..].starts_with(needle) {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

/// Position of the first newline. Tests 64 bytes per step with word arithmetic: the fuzzer
/// records every comparison, and one per byte made packed inputs of 100+ KiB (mostly zeros)
/// spend most of their time just being split.
fn find_newline(hay: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let mut at = 0;
    while let Some(block) = hay.get(at..at + 64) {
        let mut hit = 0u64;
        for word in block.chunks_exact(8) {
            let x =
                u64::from_ne_bytes(word.try_into().expect("8 bytes")) ^ (ONES * u64::from(b'\n'));
            hit |= x.wrapping_sub(ONES) & !x & HIGHS;
        }
        if hit != 0 {
            break;
        }
        at += 64;
    }
    hay[at..].iter().position(|&b| b == b'\n').map(|p| at + p)
}

/// A whole disk from several files (descriptor, extents, parents): unpack them into `work`,
/// open the first read-only with its chain, read the start, the end and a picked sector, and
/// ask which chunks are allocated.
pub fn chain_open(work: &Path, data: &[u8]) {
    let files = unpack_files(data);
    let Some((first, _)) = files.first() else {
        return;
    };
    if std::fs::create_dir_all(work).is_err() {
        return;
    }
    // Start from an empty directory: leftovers of the previous input must not take part.
    if let Ok(entries) = std::fs::read_dir(work) {
        for entry in entries.flatten() {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    for (name, content) in &files {
        if std::fs::write(work.join(name), content).is_err() {
            return;
        }
    }
    let opts = OpenOptions {
        read_only: true,
        single_link: false,
    };
    let Ok(disk) = Disk::open(&work.join(first), opts) else {
        return;
    };
    let _ = (disk.info(), disk.ddb_keys());
    let capacity = disk.capacity();
    let mut buf = vec![0u8; (READ_SECTORS * 512) as usize];
    // Also across the first 32 MiB boundary, where the chain's owner index starts a new span.
    let boundary = (1u64 << 16) - READ_SECTORS / 2;
    let probes = probe_points(capacity, pick_of(data));
    for sector in probes.into_iter().chain([boundary]) {
        let n = READ_SECTORS.min(capacity.saturating_sub(sector));
        if n > 0 {
            let _ = disk.read(sector, &mut buf[..(n * 512) as usize]);
        }
    }
    // A bounded query: 64 chunks of 64 KiB at the start, or less on a small disk.
    let chunk = 128;
    let count = (capacity / chunk).min(64) * chunk;
    if count > 0 {
        let _ = disk.allocated_chunks(0, count, chunk);
    }
    let _ = disk.close();
}
