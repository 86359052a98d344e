//! Regressions for defects an independent review found: oversized capacities, unsound buffer
//! lengths, refused writes that still changed the CID, Attach past 255 links, clones that
//! allocated zeros, compaction of non-standard grains, and Free* of the wrong kind.

mod common;

use std::ffi::CString;

use common::*;
use vixDiskLib::chain::{Disk, OpenOptions};
use vixDiskLib::error::Error;
use vixDiskLib::ffi::codes::*;
use vixDiskLib::ffi::types::*;
use vixDiskLib::vmdk::create::{CreateSpec, DiskKind, create};
use vixDiskLib::vmdk::geometry::Adapter;
use vixDiskLib::vmdk::grow::grow;

fn spec(kind: DiskKind, capacity: u64) -> CreateSpec {
    CreateSpec {
        kind,
        capacity,
        adapter: Adapter::LsiLogic,
        hw_version: 7,
    }
}

#[test]
fn absurd_capacities_are_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let flat = p(dir.path(), "f.vmdk");
    assert!(create(&flat, &spec(DiskKind::MonolithicFlat, 1 << 55), &mut |_| {}).is_err());
    assert!(!flat.exists(), "a refused create left a descriptor behind");
    assert!(
        create(
            &flat,
            &spec(DiskKind::MonolithicSparse, (1 << 32) + 1),
            &mut |_| {}
        )
        .is_err()
    );
    create(&flat, &spec(DiskKind::MonolithicFlat, 2048), &mut |_| {}).unwrap();
    let before = sha256(&p(dir.path(), "f-flat.vmdk"));
    assert!(grow(&flat, 1 << 55, false).is_err());
    assert_eq!(sha256(&p(dir.path(), "f-flat.vmdk")), before);
    assert_eq!(open_ro(&flat).capacity(), 2048);
}

#[test]
fn huge_sector_counts_through_the_c_api_are_out_of_range_not_undefined() {
    let dir = tempfile::tempdir().unwrap();
    let path = p(dir.path(), "d.vmdk");
    create_sparse(&path, 1);
    let c = CString::new(path.to_str().unwrap()).unwrap();
    let mut h: VixDiskLibHandle = std::ptr::null_mut();
    let mut conn: VixDiskLibConnection = std::ptr::null_mut();
    use vixDiskLib::ffi::{connect::*, disk::*, io::*};
    ffi_init();
    assert_eq!(VixDiskLib_Connect(std::ptr::null(), &mut conn), VIX_OK);
    assert_eq!(VixDiskLib_Open(conn, c.as_ptr(), 0, &mut h), VIX_OK);
    let mut small = [0u8; 512];
    assert_eq!(
        VixDiskLib_Read(h, 0, 1 << 54, small.as_mut_ptr()),
        VIX_E_DISK_OUTOFRANGE
    );
    assert_eq!(
        VixDiskLib_Write(h, u64::MAX, 2, small.as_ptr()),
        VIX_E_DISK_OUTOFRANGE
    );
    assert_eq!(VixDiskLib_Close(h), VIX_OK);
    assert_eq!(VixDiskLib_Disconnect(conn), VIX_OK);
}

#[test]
fn free_of_the_wrong_kind_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let path = p(dir.path(), "d.vmdk");
    create_sparse(&path, 1);
    let c = CString::new(path.to_str().unwrap()).unwrap();
    use vixDiskLib::ffi::{blocks::*, connect::*, disk::*};
    ffi_init();
    let mut conn: VixDiskLibConnection = std::ptr::null_mut();
    assert_eq!(VixDiskLib_Connect(std::ptr::null(), &mut conn), VIX_OK);
    let mut h: VixDiskLibHandle = std::ptr::null_mut();
    assert_eq!(
        VixDiskLib_Open(conn, c.as_ptr(), VIXDISKLIB_FLAG_OPEN_READ_ONLY, &mut h),
        VIX_OK
    );
    let mut list: *mut VixDiskLibBlockList = std::ptr::null_mut();
    assert_eq!(
        VixDiskLib_QueryAllocatedBlocks(h, 0, 2048, 128, &mut list),
        VIX_OK
    );
    // A block list handed to FreeInfo must be left alone (and still be freeable as a list).
    VixDiskLib_FreeInfo(list.cast());
    assert_eq!(VixDiskLib_FreeBlockList(list), VIX_OK);
    assert_eq!(
        VixDiskLib_FreeBlockList(list),
        VIX_E_INVALID_ARG,
        "double free refused"
    );
    assert_eq!(VixDiskLib_Close(h), VIX_OK);
    assert_eq!(VixDiskLib_Disconnect(conn), VIX_OK);
}

#[test]
fn a_write_refused_by_a_read_only_extent_keeps_the_cid() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(p(dir.path(), "a.raw"), vec![1u8; 4096]).unwrap();
    let d = p(dir.path(), "ro.vmdk");
    std::fs::write(&d, "# Disk DescriptorFile\nversion=1\nCID=0000abcd\nparentCID=ffffffff\ncreateType=\"monolithicFlat\"\n\n# Extent description\nRDONLY 8 FLAT \"a.raw\" 0\n\n# The Disk Data Base\n#DDB\n\n").unwrap();
    let before = std::fs::read(&d).unwrap();
    let disk = open_rw(&d);
    assert!(matches!(
        disk.write(0, &[0u8; 512]),
        Err(Error::ReadOnly(_))
    ));
    disk.close().unwrap();
    drop(disk);
    assert_eq!(
        std::fs::read(&d).unwrap(),
        before,
        "the refused write renewed the CID"
    );
}

#[test]
fn attach_refuses_to_pass_255_links() {
    let dir = tempfile::tempdir().unwrap();
    let leaf = build_deep_chain(dir.path(), 254);
    let parent = open_ro(&leaf);
    assert_eq!(parent.num_links(), 255);
    let redo = p(dir.path(), "redo.vmdk");
    create_sparse(&redo, 1);
    let child = open_single(&redo, true);
    assert!(matches!(
        parent.attach_under(&child),
        Err(Error::TooManyLinks(_))
    ));
}

#[test]
fn clone_of_a_flat_disk_keeps_zero_grains_unallocated() {
    let dir = tempfile::tempdir().unwrap();
    let flat = p(dir.path(), "f.vmdk");
    create(
        &flat,
        &spec(DiskKind::MonolithicFlat, 64 * 2048),
        &mut |_| {},
    )
    .unwrap();
    {
        let d = open_rw(&flat);
        d.write(4096, &[7u8; 512]).unwrap();
        d.close().unwrap();
    }
    let dst = p(dir.path(), "s.vmdk");
    open_ro(&flat)
        .clone_to(
            &dst,
            &spec(DiskKind::MonolithicSparse, 0),
            false,
            2,
            &mut |_| {},
        )
        .unwrap();
    let c = open_ro(&dst);
    let blocks = c.allocated_chunks(0, c.capacity(), 128).unwrap();
    assert_eq!(
        blocks,
        vec![(4096, 128)],
        "only the one grain with data is allocated"
    );
    assert!(std::fs::metadata(&dst).unwrap().len() < 1 << 20);
}

#[test]
fn compaction_refuses_non_standard_grains_instead_of_corrupting() {
    if !have_qemu() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = p(dir.path(), "g.vmdk");
    // A qemu-made disk patched to 256 entries per grain table: a geometry readers accept,
    // but not the standard one the compactor writes. It must refuse and change nothing.
    let (code, out) = sh(&format!(
        "qemu-img create -q -f vmdk '{}' 16M && qemu-io -f vmdk -c 'write -P 0x42 0 1M' '{}' >/dev/null",
        path.display(),
        path.display()
    ));
    assert_eq!(code, 0, "{out}");
    let mut bytes = std::fs::read(&path).unwrap();
    // 512 entries per table -> 256: same directory size for a 16 MiB disk, different geometry.
    bytes[44..48].copy_from_slice(&256u32.to_le_bytes());
    std::fs::write(&path, &bytes).unwrap();
    let before = sha256(&path);
    let d = Disk::open(&path, OpenOptions::default()).expect("the patched disk still opens");
    assert!(matches!(d.compact(false), Err(Error::NotSupported(_))));
    drop(d);
    assert_eq!(sha256(&path), before);
}
