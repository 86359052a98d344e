//! Hostile and damaged disks: files that are not regular files (FIFOs must never block an
//! open), flat extents shorter than their extent line, NOACCESS extents, unknown compression
//! algorithms and compressed grains that inflate past one grain. Each must be refused or fail
//! the read that touches it; none may hang or return invented data.

mod common;

use std::fs::OpenOptions as FsOpen;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::*;
use vixDiskLib::chain::{Disk, OpenOptions};
use vixDiskLib::error::Error;
use vixDiskLib::vmdk::check::check_disk;
use vixDiskLib::vmdk::create::{CreateSpec, DiskKind, create};
use vixDiskLib::vmdk::extent::Mapping;
use vixDiskLib::vmdk::geometry::Adapter;
use vixDiskLib::vmdk::grow::grow;

/// Runs `f` on a thread and fails the test if it has not returned within a few seconds (a
/// blocked open must fail the test, not hang the suite).
fn within_seconds<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(10))
        .unwrap_or_else(|_| panic!("{what} blocked (still running after 10 s)"))
}

fn mkfifo(path: &Path) {
    let (rc, out) = sh(&format!("mkfifo '{}'", path.display()));
    assert_eq!(rc, 0, "mkfifo: {out}");
}

fn ro() -> OpenOptions {
    OpenOptions {
        read_only: true,
        single_link: false,
    }
}

fn rw() -> OpenOptions {
    OpenOptions::default()
}

fn open_err(path: &Path, opts: OpenOptions) -> Error {
    let path = path.to_path_buf();
    match within_seconds("open", move || Disk::open(&path, opts).map(|_| ())) {
        Ok(()) => panic!("open succeeded"),
        Err(e) => e,
    }
}

fn flat_descriptor(dir: &Path, name: &str, lines: &str) -> PathBuf {
    let d = p(dir, name);
    std::fs::write(
        &d,
        format!(
            "# Disk DescriptorFile\nversion=1\nCID=0000abcd\nparentCID=ffffffff\n\
             createType=\"monolithicFlat\"\n\n# Extent description\n{lines}\n\n\
             # The Disk Data Base\n#DDB\n\n"
        ),
    )
    .unwrap();
    d
}

#[test]
fn fifos_and_other_non_files_are_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = p(dir.path(), "pipe.vmdk");
    mkfifo(&fifo);
    for opts in [ro(), rw()] {
        let e = open_err(&fifo, opts);
        assert!(matches!(e, Error::InvalidDisk(_)), "FIFO open: {e}");
    }
    let f = fifo.clone();
    let e = within_seconds("check", move || check_disk(&f, false).map(|_| ()));
    assert!(matches!(e, Err(Error::InvalidDisk(_))), "check: {e:?}");
    let f = fifo.clone();
    let e = within_seconds("grow", move || grow(&f, 4096, false));
    assert!(e.is_err(), "grow of a FIFO succeeded");
    // A directory and a character device are not disks either.
    let e = open_err(dir.path(), ro());
    assert!(matches!(e, Error::InvalidDisk(_)), "directory: {e}");
    let e = open_err(Path::new("/dev/zero"), ro());
    assert!(matches!(e, Error::InvalidDisk(_)), "char device: {e}");
}

#[test]
fn an_extent_that_is_a_fifo_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    mkfifo(&p(dir.path(), "data.raw"));
    let d = flat_descriptor(dir.path(), "d.vmdk", "RW 2048 FLAT \"data.raw\" 0");
    for opts in [ro(), rw()] {
        let e = open_err(&d, opts);
        assert!(matches!(e, Error::InvalidDisk(_)), "FIFO extent: {e}");
    }
    let e = within_seconds("check", move || check_disk(&d, false).map(|_| ()));
    assert!(e.is_err(), "check of a disk with a FIFO extent succeeded");
}

#[test]
fn reads_past_the_end_of_a_short_flat_extent_fail() {
    let dir = tempfile::tempdir().unwrap();
    let d = p(dir.path(), "f.vmdk");
    let spec = CreateSpec {
        kind: DiskKind::MonolithicFlat,
        capacity: 2048,
        adapter: Adapter::LsiLogic,
        hw_version: 7,
    };
    create(&d, &spec, &mut |_| {}).unwrap();
    let raw = p(dir.path(), "f-flat.vmdk");
    // Our own flat files are full length (holes read as zeros)...
    assert_eq!(std::fs::metadata(&raw).unwrap().len(), 2048 * 512);
    {
        let disk = open_rw(&d);
        disk.write(0, &[7u8; 512]).unwrap();
        let mut all = vec![1u8; 2048 * 512];
        disk.read(0, &mut all).unwrap();
        assert!(all[..512].iter().all(|&b| b == 7) && all[512..].iter().all(|&b| b == 0));
        disk.close().unwrap();
    }
    // ...a truncated one is damage beyond its end.
    FsOpen::new()
        .write(true)
        .open(&raw)
        .unwrap()
        .set_len(1024 * 512)
        .unwrap();
    let disk = open_ro(&d);
    let mut buf = vec![0u8; 512];
    disk.read(0, &mut buf).unwrap();
    assert!(
        buf.iter().all(|&b| b == 7),
        "data before the end still reads"
    );
    let mut inside = vec![1u8; 1024 * 512];
    disk.read(0, &mut inside).unwrap();
    for (start, sectors) in [(1000u64, 48u64), (1024, 1), (2047, 1)] {
        let mut b = vec![0u8; sectors as usize * 512];
        let e = disk.read(start, &mut b).unwrap_err();
        assert!(
            matches!(e, Error::Corrupt(_)),
            "read {start}+{sectors}: {e}"
        );
    }
    // A clone would have to invent the missing part: it fails instead.
    let out = p(dir.path(), "clone.vmdk");
    let clone_spec = CreateSpec {
        kind: DiskKind::MonolithicSparse,
        ..spec
    };
    assert!(
        disk.clone_to(&out, &clone_spec, false, 1, &mut |_| {})
            .is_err()
    );
    assert!(!out.exists(), "a failed clone left a target behind");
}

#[test]
fn reads_touching_a_noaccess_extent_fail() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(p(dir.path(), "a.raw"), vec![5u8; 8 * 512]).unwrap();
    std::fs::write(p(dir.path(), "b.raw"), vec![6u8; 8 * 512]).unwrap();
    let d = flat_descriptor(
        dir.path(),
        "d.vmdk",
        "RW 8 FLAT \"a.raw\" 0\nNOACCESS 8 FLAT \"b.raw\" 0",
    );
    let disk = open_ro(&d);
    let mut ok = vec![0u8; 8 * 512];
    disk.read(0, &mut ok).unwrap();
    assert!(ok.iter().all(|&b| b == 5));
    for (start, sectors) in [(8u64, 1u64), (4, 8), (15, 1)] {
        let mut b = vec![0u8; sectors as usize * 512];
        let e = disk.read(start, &mut b).unwrap_err();
        assert!(
            matches!(e, Error::AccessDenied(_)),
            "read {start}+{sectors}: {e}"
        );
    }
    drop(disk);

    // Under a child the NOACCESS part must not read as zeros either (nor fall through).
    let base = flat_descriptor(dir.path(), "base.vmdk", "NOACCESS 16 FLAT \"b2.raw\" 0");
    std::fs::write(p(dir.path(), "b2.raw"), vec![6u8; 16 * 512]).unwrap();
    let parent = open_ro(&base);
    let child = p(dir.path(), "child.vmdk");
    parent
        .create_child(&child, DiskKind::MonolithicSparse)
        .unwrap();
    drop(parent);
    let disk = open_ro(&child);
    let mut b = vec![0u8; 512];
    let e = disk.read(3, &mut b).unwrap_err();
    assert!(matches!(e, Error::AccessDenied(_)), "through a child: {e}");
}

/// A one-grain streamOptimized disk written by the engine, its path and its grain's marker.
fn one_grain_stream(dir: &Path, fill: u8) -> (PathBuf, u64) {
    let path = p(dir, "s.vmdk");
    let spec = CreateSpec {
        kind: DiskKind::StreamOptimized,
        capacity: 2048,
        adapter: Adapter::LsiLogic,
        hw_version: 7,
    };
    create(&path, &spec, &mut |_| {}).unwrap();
    let disk = Disk::open(&path, rw()).unwrap();
    // Incompressible data, so the grain's slot has room for the hostile streams below.
    let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ u64::from(fill);
    let grain: Vec<u8> = (0..65536)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    disk.write(0, &grain).unwrap();
    disk.close().unwrap();
    drop(disk);
    let disk = open_ro(&path);
    let mapped = disk.chain().links[0].map(0, 128).unwrap().0;
    let Mapping::Compressed { marker, .. } = mapped else {
        panic!("grain 0 is not compressed: {mapped:?}");
    };
    (path, marker)
}

fn zlib(data: &[u8]) -> Vec<u8> {
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    z.write_all(data).unwrap();
    z.finish().unwrap()
}

fn replace_grain_stream(path: &Path, marker: u64, packed: &[u8]) {
    let f = FsOpen::new().write(true).open(path).unwrap();
    f.write_all_at(&(packed.len() as u32).to_le_bytes(), marker * 512 + 8)
        .unwrap();
    f.write_all_at(packed, marker * 512 + 12).unwrap();
}

#[test]
fn a_grain_that_inflates_past_one_grain_is_corruption_in_bounded_time() {
    let dir = tempfile::tempdir().unwrap();
    let (path, marker) = one_grain_stream(dir.path(), 1);
    let mut good = vec![0u8; 65536];
    open_ro(&path).read(0, &mut good).unwrap();

    // Exactly one grain: still fine.
    let one = vec![3u8; 65536];
    replace_grain_stream(&path, marker, &zlib(&one));
    let mut b = vec![0u8; 65536];
    open_ro(&path).read(0, &mut b).unwrap();
    assert_eq!(b, one);

    // One byte more, and a 32 MiB "bomb" that fits in one grain's slot.
    for len in [65537usize, 32 << 20] {
        let packed = zlib(&vec![0u8; len]);
        assert!(packed.len() < 60000, "bomb too large for the slot");
        replace_grain_stream(&path, marker, &packed);
        let disk = open_ro(&path);
        let started = Instant::now();
        let e = disk.read(0, &mut b).unwrap_err();
        assert!(matches!(e, Error::Corrupt(_)), "{len} bytes: {e}");
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "took {:?}",
            started.elapsed()
        );
    }
}

#[test]
fn an_unknown_compression_algorithm_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = one_grain_stream(dir.path(), 2);
    let f = FsOpen::new().write(true).open(&path).unwrap();
    for algorithm in [2u16, 0xffff, 0] {
        f.write_all_at(&algorithm.to_le_bytes(), 77).unwrap();
        let e = open_err(&path, ro());
        assert!(
            matches!(e, Error::UnsupportedVersion(_)),
            "algorithm {algorithm}: {e}"
        );
    }
    f.write_all_at(&1u16.to_le_bytes(), 77).unwrap();
    open_ro(&path);
    if have_qemu() {
        assert!(qemu_check(&path));
    }
}

/// Found by the chain_open fuzz target: a chain whose descriptors claim 2^48 sectors made the
/// first read size the owner index for the whole disk (64 GiB) and abort. Reads of such a chain
/// must cost memory for what they touch only.
#[test]
fn a_chain_claiming_an_enormous_capacity_reads_without_a_huge_allocation() {
    let dir = tempfile::tempdir().unwrap();
    let capacity = 1u64 << 48;
    let base = p(dir.path(), "base.vmdk");
    std::fs::write(
        &base,
        format!("version=1\nCID=00000001\nparentCID=ffffffff\ncreateType=\"custom\"\nRW {capacity} ZERO\n"),
    )
    .unwrap();
    let child = p(dir.path(), "child.vmdk");
    std::fs::write(
        &child,
        format!(
            "version=1\nCID=00000002\nparentCID=00000001\ncreateType=\"custom\"\n\
             parentFileNameHint=\"base.vmdk\"\nRW {capacity} ZERO\n"
        ),
    )
    .unwrap();
    let disk = Disk::open(&child, ro()).unwrap();
    assert_eq!(disk.num_links(), 2);
    let mut buf = vec![0xffu8; 4096];
    disk.read(0, &mut buf).unwrap();
    assert!(buf.iter().all(|&b| b == 0));
    buf.fill(0xff);
    disk.read(capacity - 8, &mut buf).unwrap();
    assert!(buf.iter().all(|&b| b == 0));
}

/// Found by the chain_open fuzz target: in a chain, a grain that begins before a 32 MiB
/// boundary of the disk (its extent starts 4 sectors in) made the owner index subtract past
/// zero (a panic in debug builds, a slice-index panic in release). Reads across the boundary
/// must return the grain and the parent's zeros around it.
#[test]
fn a_grain_straddling_an_index_span_in_a_chain_reads_correctly() {
    use vixDiskLib::vmdk::header::SparseHeader;
    let dir = tempfile::tempdir().unwrap();
    // A sparse extent with 8-sector grains, one table (index 15) and grain 8191 stored.
    let capacity = 69632u64;
    let header = SparseHeader {
        version: 1,
        flags: 0,
        capacity,
        grain_sectors: 8,
        descriptor_offset: 0,
        descriptor_size: 0,
        gtes_per_gt: 512,
        rgd_offset: 0,
        gd_offset: 1,
        overhead: 8,
        unclean_shutdown: false,
        compress_algorithm: 0,
    };
    let mut file = vec![0u8; 16 * 512];
    file[..512].copy_from_slice(&header.encode());
    file[512 + 15 * 4..512 + 16 * 4].copy_from_slice(&2u32.to_le_bytes());
    file[2 * 512 + 511 * 4..2 * 512 + 512 * 4].copy_from_slice(&8u32.to_le_bytes());
    file[8 * 512..].fill(0x5a);
    std::fs::write(p(dir.path(), "s.vmdk"), &file).unwrap();
    let total = capacity + 4;
    std::fs::write(
        p(dir.path(), "base.vmdk"),
        format!(
            "version=1\nCID=00000001\nparentCID=ffffffff\ncreateType=\"custom\"\nRW {total} ZERO\n"
        ),
    )
    .unwrap();
    let child = p(dir.path(), "child.vmdk");
    std::fs::write(
        &child,
        format!(
            "version=1\nCID=00000002\nparentCID=00000001\ncreateType=\"custom\"\n\
             parentFileNameHint=\"base.vmdk\"\nRW 4 ZERO\nRW {capacity} SPARSE \"s.vmdk\"\n"
        ),
    )
    .unwrap();
    let disk = Disk::open(&child, ro()).unwrap();
    // Grain 8191 of the extent is virtual sectors 65532..65540; span 1 starts at 65536.
    let mut buf = vec![0xffu8; 16 * 512];
    disk.read(65528, &mut buf).unwrap();
    assert!(buf[..4 * 512].iter().all(|&b| b == 0));
    assert!(buf[4 * 512..12 * 512].iter().all(|&b| b == 0x5a));
    assert!(buf[12 * 512..].iter().all(|&b| b == 0));
    let runs = disk.allocated_chunks(65408, 256, 128).unwrap();
    assert_eq!(runs, vec![(65408, 256)]);
}
