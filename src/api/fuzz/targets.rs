//! The targets behind [`super::run`], one function per parser or opener. Each feeds the bytes
//! to the engine, then uses what came back (maps, reads, allocation walks) so that a bad table
//! or offset the parser let through is found as well.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::pack::unpack_files;
use crate::chain::{Disk, OpenOptions};
use crate::vmdk::check::{Outcome, check_disk};
use crate::vmdk::cowd::CowdExtent;
use crate::vmdk::descriptor::Descriptor;
use crate::vmdk::fd_cache::CachedFile;
use crate::vmdk::header::SparseHeader;
use crate::vmdk::sesparse::SeSparseExtent;
use crate::vmdk::sparse::{GrainMap, SparseExtent};
use crate::vmdk::stream_read::inflate_grain;

/// Sectors a target reads per request: enough to cross grain boundaries, small enough to stay
/// fast.
const READ_SECTORS: u64 = 16;

/// Descriptor text: parse; a parsed descriptor must render to text that parses again and
/// renders identically (rewrites of a descriptor must never lose or corrupt it).
pub(super) fn descriptor(data: &[u8]) {
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
pub(super) fn sparse_header(data: &[u8]) {
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
pub(super) fn sparse_extent(work: &Path, data: &[u8]) {
    if data.len() < 512 {
        return;
    }
    let Some((path, file)) = single_file(work, "sparse.vmdk", data) else {
        return;
    };
    let Ok(sp) = SparseExtent::open(
        CachedFile::pinned(Arc::new(file), &path, false),
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
pub(super) fn stream(work: &Path, data: &[u8]) {
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
        CachedFile::pinned(Arc::new(file), &path, false),
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
pub(super) fn cowd(work: &Path, data: &[u8]) {
    let Some((path, file)) = single_file(work, "cowd.vmdk", data) else {
        return;
    };
    let Ok(c) = CowdExtent::open(CachedFile::pinned(Arc::new(file), &path, false)) else {
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
pub(super) fn sesparse(work: &Path, data: &[u8]) {
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

/// A whole disk from several files (descriptor, extents, parents): unpack them into `work`,
/// open the first read-only with its chain, read the start, the end and a picked sector, and
/// ask which chunks are allocated.
pub(super) fn chain_open(work: &Path, data: &[u8]) {
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
