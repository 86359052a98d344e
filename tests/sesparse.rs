//! ESXi seSparse snapshot extents (issue 20, part 1): read-only reads, allocation queries and
//! GetInfo, as the child of a vmfs/flat base and of another seSparse link, checked against
//! qemu-img (which reads seSparse too); writes refused; a hosted child over a seSparse link;
//! hostile headers and tables refused with clear errors.

mod common;

use std::path::Path;

use common::{
    SeGrain, open_ro, open_rw, open_single, p, qemu_raw, read_all, sesparse_descriptor,
    write_sesparse,
};
use vixDiskLib::chain::{Disk, OpenOptions};
use vixDiskLib::error::Error;
use vixDiskLib::ffi::codes::{VIX_E_DISK_NEEDSREPAIR, VIX_E_NOT_SUPPORTED};
use vixDiskLib::ffi::errors::to_vix;
use vixDiskLib::vmdk::check::{Outcome, check_disk};
use vixDiskLib::vmdk::create::{CreateSpec, DiskKind, create};
use vixDiskLib::vmdk::geometry::Adapter;
use vixDiskLib::vmdk::sesparse::SeSparseExtent;

/// 40 MiB: three grain tables' worth (16 MiB each), the last one partial.
const CAP: u64 = 40 * 2048;
const GRAIN: usize = 4096;

/// A vmfs (descriptor + -flat) base filled with 0x11, and its CID.
fn vmfs_base(dir: &Path) -> u32 {
    let base = p(dir, "base.vmdk");
    let spec = CreateSpec {
        kind: DiskKind::VmfsFlat,
        capacity: CAP,
        adapter: Adapter::LsiLogic,
        hw_version: 14,
    };
    create(&base, &spec, &mut |_| {}).expect("create vmfs base");
    let d = open_rw(&base);
    d.write(0, &vec![0x11u8; CAP as usize * 512]).unwrap();
    d.close().unwrap();
    drop(d);
    let text = std::fs::read_to_string(&base).unwrap();
    let cid = text
        .lines()
        .find_map(|l| l.strip_prefix("CID="))
        .expect("CID line");
    u32::from_str_radix(cid, 16).unwrap()
}

/// The grains of the first snapshot: data at grain-area indexes that exercise both halves of
/// the rotated entry (0, 1, 4097, 5000), a zeroed and an unmapped grain, and a grain in the
/// second table; everything else falls through to the parent.
fn first_snapshot_grains() -> Vec<(u64, SeGrain)> {
    vec![
        (
            0,
            SeGrain::Data {
                index: 5000,
                fill: 0xa1,
            },
        ),
        (
            1,
            SeGrain::Data {
                index: 1,
                fill: 0xa2,
            },
        ),
        (2, SeGrain::Zero),
        (3, SeGrain::Unmapped),
        (
            4,
            SeGrain::Data {
                index: 4097,
                fill: 0xa4,
            },
        ),
        (
            4096 + 7,
            SeGrain::Data {
                index: 0,
                fill: 0xa3,
            },
        ),
    ]
}

/// Applies seSparse grains to a byte model of the disk.
fn apply(model: &mut [u8], grains: &[(u64, SeGrain)]) {
    for &(g, grain) in grains {
        let at = g as usize * GRAIN;
        let fill = match grain {
            SeGrain::Data { fill, .. } => fill,
            SeGrain::Zero | SeGrain::Unmapped => 0,
            SeGrain::Raw(_) => panic!("no model for raw entries"),
        };
        model[at..at + GRAIN].fill(fill);
    }
}

/// Builds base.vmdk (vmfs) ← snap1.vmdk (seSparse); returns the expected content.
fn snapshot_over_vmfs(dir: &Path) -> Vec<u8> {
    let cid = vmfs_base(dir);
    write_sesparse(
        &p(dir, "snap1-sesparse.vmdk"),
        CAP,
        &first_snapshot_grains(),
    );
    std::fs::write(
        p(dir, "snap1.vmdk"),
        sesparse_descriptor(CAP, "snap1-sesparse.vmdk", Some(("base.vmdk", cid))),
    )
    .unwrap();
    let mut model = vec![0x11u8; CAP as usize * 512];
    apply(&mut model, &first_snapshot_grains());
    model
}

/// The grains (as sector runs) the named link answers for, merged.
fn own_allocation(path: &Path) -> Vec<(u64, u64)> {
    let d = open_single(path, false);
    d.allocated_chunks(0, d.capacity(), 128).unwrap()
}

/// The sector runs the seSparse extent itself answers for (data, zeroed and unmapped grains).
fn extent_allocation(path: &Path) -> Vec<(u64, u64)> {
    let file = std::fs::File::open(path).unwrap();
    let se = SeSparseExtent::open(path, file).unwrap();
    let mut runs: Vec<(u64, u64)> = Vec::new();
    se.for_each_allocated(0, se.capacity(), &mut |s, n| match runs.last_mut() {
        Some(last) if last.0 + last.1 == s => last.1 += n,
        _ => runs.push((s, n)),
    })
    .unwrap();
    runs
}

#[test]
fn a_sesparse_snapshot_of_a_vmfs_base_reads_like_qemu_img() {
    let dir = tempfile::tempdir().unwrap();
    let model = snapshot_over_vmfs(dir.path());
    let snap = p(dir.path(), "snap1.vmdk");
    let d = open_ro(&snap);
    let info = d.info();
    assert_eq!(info.capacity, CAP);
    assert_eq!(info.num_links, 2);
    assert_eq!(info.parent_hint.as_deref(), Some("base.vmdk"));
    let ours = read_all(&d);
    assert!(ours == model, "our read differs from the expected content");
    if let Some(q) = qemu_raw(&snap) {
        assert!(ours == q, "our read differs from qemu-img's");
    }
    // Unaligned reads across grain and table boundaries.
    for (sector, n) in [(3u64, 20usize), (4096 * 8 - 5, 16), (4103 * 8 + 7, 9)] {
        let mut buf = vec![0u8; n * 512];
        d.read(sector, &mut buf).unwrap();
        let at = sector as usize * 512;
        assert!(buf == model[at..at + buf.len()], "read at {sector}");
    }
    // The snapshot answers for its data, zeroed and unmapped grains; nothing else.
    let extent = p(dir.path(), "snap1-sesparse.vmdk");
    assert_eq!(extent_allocation(&extent), vec![(0, 40), (4103 * 8, 8)]);
    // QueryAllocatedBlocks of the link alone, in 128-sector chunks.
    assert_eq!(
        own_allocation(&snap),
        vec![(0, 128), (4103 * 8 / 128 * 128, 128)]
    );
    if common::have_qemu() {
        let mut mine: Vec<(u64, u64)> = Vec::new();
        for r in common::qemu_map(&snap)
            .iter()
            .filter(|r| r.depth == 0 && r.data)
        {
            match mine.last_mut() {
                Some(last) if last.0 + last.1 == r.start / 512 => last.1 += r.length / 512,
                _ => mine.push((r.start / 512, r.length / 512)),
            }
        }
        // qemu reports zeroed and unmapped grains as zero, not data.
        assert_eq!(mine, vec![(0, 16), (32, 8), (4103 * 8, 8)]);
    }
}

#[test]
fn a_sesparse_snapshot_of_a_sesparse_snapshot_reads_like_qemu_img() {
    let dir = tempfile::tempdir().unwrap();
    let mut model = snapshot_over_vmfs(dir.path());
    let second = vec![
        (
            1,
            SeGrain::Data {
                index: 3,
                fill: 0xb1,
            },
        ),
        (4, SeGrain::Zero),
        (
            8192 + 2,
            SeGrain::Data {
                index: 0,
                fill: 0xb2,
            },
        ),
    ];
    write_sesparse(&p(dir.path(), "snap2-sesparse.vmdk"), CAP, &second);
    std::fs::write(
        p(dir.path(), "snap2.vmdk"),
        sesparse_descriptor(CAP, "snap2-sesparse.vmdk", Some(("snap1.vmdk", 0x5a5e5e01))),
    )
    .unwrap();
    apply(&mut model, &second);
    let snap2 = p(dir.path(), "snap2.vmdk");
    let d = open_ro(&snap2);
    assert_eq!(d.info().num_links, 3);
    let ours = read_all(&d);
    assert!(ours == model, "our read differs from the expected content");
    if let Some(q) = qemu_raw(&snap2) {
        assert!(ours == q, "our read differs from qemu-img's");
    }
}

#[test]
fn writes_to_a_sesparse_link_are_refused_and_a_hosted_child_over_it_works() {
    let dir = tempfile::tempdir().unwrap();
    let mut model = snapshot_over_vmfs(dir.path());
    let snap = p(dir.path(), "snap1.vmdk");
    let before = std::fs::read(p(dir.path(), "snap1-sesparse.vmdk")).unwrap();
    let desc_before = std::fs::read(&snap).unwrap();
    let d = open_rw(&snap);
    let err = d.write(0, &[0x55u8; 512]).unwrap_err();
    assert_eq!(to_vix(&err), VIX_E_NOT_SUPPORTED, "{err}");
    assert!(err.to_string().contains("seSparse"), "{err}");
    let child = p(dir.path(), "child.vmdk");
    d.create_child(&child, DiskKind::MonolithicSparse).unwrap();
    drop(d);
    assert_eq!(
        std::fs::read(p(dir.path(), "snap1-sesparse.vmdk")).unwrap(),
        before
    );
    assert_eq!(std::fs::read(&snap).unwrap(), desc_before);
    let c = open_rw(&child);
    common::write_pattern(&c, &mut model, 512 * 3, 4096, 0xcc);
    common::write_pattern(&c, &mut model, 4103 * 4096 + 100 * 512, 1024, 0xcd);
    c.close().unwrap();
    drop(c);
    let c = open_ro(&child);
    let got = read_all(&c);
    let first = got.iter().zip(&model).position(|(a, b)| a != b);
    assert!(first.is_none(), "child differs at byte {first:?}");
    if let Some(q) = qemu_raw(&child) {
        assert!(
            q == model,
            "qemu-img reads the child over seSparse differently"
        );
    }
}

#[test]
fn check_repair_passes_a_sound_sesparse_link_and_reports_damage_without_writing() {
    let dir = tempfile::tempdir().unwrap();
    snapshot_over_vmfs(dir.path());
    let snap = p(dir.path(), "snap1.vmdk");
    assert_eq!(check_disk(&snap, false).unwrap().outcome(), Outcome::Clean);
    assert_eq!(check_disk(&snap, true).unwrap().outcome(), Outcome::Clean);
    // A table entry of an unknown type (4): damage nobody can repair here.
    let mut grains = first_snapshot_grains();
    grains.push((9, SeGrain::Raw(0x4000_0000_0000_0000)));
    let bad = p(dir.path(), "snap1-sesparse.vmdk");
    write_sesparse(&bad, CAP, &grains);
    let image = std::fs::read(&bad).unwrap();
    let report = check_disk(&snap, true).unwrap();
    assert_eq!(report.outcome(), Outcome::CantRepair, "{report:?}");
    assert_eq!(
        std::fs::read(&bad).unwrap(),
        image,
        "check wrote to a seSparse file"
    );
    // Opening reads the damaged table lazily: the read that reaches it fails with NEEDSREPAIR.
    let d = open_ro(&snap);
    let err = d.read(0, &mut [0u8; 512]).unwrap_err();
    assert_eq!(to_vix(&err), VIX_E_DISK_NEEDSREPAIR, "{err}");
}

/// Opens `snap1.vmdk` after `damage` changed its seSparse file; returns the error.
fn open_damaged(dir: &Path, damage: impl FnOnce(&mut Vec<u8>)) -> Error {
    let file = p(dir, "snap1-sesparse.vmdk");
    write_sesparse(&file, CAP, &first_snapshot_grains());
    let mut bytes = std::fs::read(&file).unwrap();
    damage(&mut bytes);
    std::fs::write(&file, &bytes).unwrap();
    let snap = p(dir, "snap1.vmdk");
    match Disk::open(&snap, OpenOptions::default()).and_then(|d| {
        let mut buf = vec![0u8; 64 * 512];
        for s in (0..CAP).step_by(4096 * 8) {
            d.read(s, &mut buf)?;
        }
        Ok(())
    }) {
        Ok(()) => panic!("damaged seSparse file was accepted"),
        Err(e) => e,
    }
}

fn set_word(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

#[test]
fn hostile_sesparse_headers_and_tables_are_refused_with_clear_errors() {
    use vixDiskLib::ffi::codes::{VIX_E_DISK_INVALIDDISK, VIX_E_DISK_UNSUPPORTEDDISKVERSION};
    let dir = tempfile::tempdir().unwrap();
    snapshot_over_vmfs(dir.path());
    type Damage = fn(&mut Vec<u8>);
    let cases: &[(&str, Damage, i64)] = &[
        ("magic", |b| b[0] = 0xbf, VIX_E_DISK_INVALIDDISK as i64),
        (
            "version",
            |b| set_word(b, 8, 0x3_0000_0001),
            VIX_E_DISK_UNSUPPORTEDDISKVERSION as i64,
        ),
        (
            "grain size",
            |b| set_word(b, 24, 16),
            VIX_E_NOT_SUPPORTED as i64,
        ),
        (
            "table size",
            |b| set_word(b, 32, 128),
            VIX_E_NOT_SUPPORTED as i64,
        ),
        ("flags", |b| set_word(b, 40, 1), VIX_E_NOT_SUPPORTED as i64),
        (
            "reserved",
            |b| set_word(b, 56, 1),
            VIX_E_NOT_SUPPORTED as i64,
        ),
        ("padding", |b| b[300] = 1, VIX_E_NOT_SUPPORTED as i64),
        (
            "zero capacity",
            |b| set_word(b, 16, 0),
            VIX_E_DISK_INVALIDDISK as i64,
        ),
        (
            "huge capacity",
            |b| set_word(b, 16, u64::MAX),
            VIX_E_DISK_INVALIDDISK as i64,
        ),
        (
            "directory too small",
            |b| set_word(b, 136, 0),
            VIX_E_DISK_INVALIDDISK as i64,
        ),
        (
            "directory past the end",
            |b| set_word(b, 128, 1 << 40),
            VIX_E_DISK_INVALIDDISK as i64,
        ),
        (
            "volatile past the end",
            |b| set_word(b, 80, u64::MAX / 2),
            VIX_E_DISK_INVALIDDISK as i64,
        ),
        (
            "volatile magic",
            |b| b[512] = 0,
            VIX_E_DISK_INVALIDDISK as i64,
        ),
        (
            "journal to replay",
            |b| set_word(b, 512 + 24, 1),
            VIX_E_NOT_SUPPORTED as i64,
        ),
        (
            "directory entry type",
            |b| set_word(b, 8 * 512, 0x2000_0000_0000_0000),
            VIX_E_DISK_NEEDSREPAIR as i64,
        ),
        (
            "directory entry middle bits",
            |b| set_word(b, 8 * 512, 0x1000_0001_0000_0000),
            VIX_E_DISK_NEEDSREPAIR as i64,
        ),
        (
            "table past the end",
            |b| set_word(b, 8 * 512, 0x1000_0000_ffff_ffff),
            VIX_E_DISK_NEEDSREPAIR as i64,
        ),
        (
            "grain past the end",
            |b| set_word(b, 9 * 512, 0x3000_ffff_ffff_ffff),
            VIX_E_DISK_NEEDSREPAIR as i64,
        ),
        (
            "grain index overflow",
            |b| set_word(b, 9 * 512, 0x3fff_ffff_ffff_ffff),
            VIX_E_DISK_NEEDSREPAIR as i64,
        ),
        (
            "unallocated with bits",
            |b| set_word(b, 9 * 512 + 8 * 100, 0x0000_0000_0000_0001),
            VIX_E_DISK_NEEDSREPAIR as i64,
        ),
        (
            "table entry type",
            |b| set_word(b, 9 * 512, 0x7000_0000_0000_0000),
            VIX_E_DISK_NEEDSREPAIR as i64,
        ),
        (
            "truncated",
            |b| b.truncate(300),
            VIX_E_DISK_INVALIDDISK as i64,
        ),
    ];
    for (what, damage, code) in cases {
        let err = open_damaged(dir.path(), damage);
        assert_eq!(to_vix(&err) as i64, *code, "{what}: {err}");
        assert!(
            err.to_string().contains("seSparse") || matches!(err, Error::InvalidDisk(_)),
            "{what}: {err}"
        );
    }
}

#[test]
fn a_sesparse_extent_opened_directly_is_not_supported() {
    let dir = tempfile::tempdir().unwrap();
    let file = p(dir.path(), "x-sesparse.vmdk");
    write_sesparse(&file, CAP, &first_snapshot_grains());
    let err = Disk::open(&file, OpenOptions::default()).err().unwrap();
    assert_eq!(to_vix(&err), VIX_E_NOT_SUPPORTED, "{err}");
}
