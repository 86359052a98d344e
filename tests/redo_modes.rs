//! Workstation's disk modes on hosted disks: nonpersistent opens (private, vanishing redo
//! logs over a shared read-only base), Workstation redo-log names, and legacy COWD `.REDO`
//! files (Workstation 3 / GSX 2) read as links of a chain over their parent.

mod common;

use std::path::Path;

use common::*;
use vixDiskLib::chain::commit::commit;
use vixDiskLib::chain::{Disk, OpenOptions};
use vixDiskLib::error::Error;
use vixDiskLib::vmdk::create::DiskKind;

fn scratch_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn nonpersistent_opens_share_a_base_and_leave_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let scratch = p(dir.path(), "scratch");
    std::fs::create_dir(&scratch).unwrap();
    let base = p(dir.path(), "mydisk.vmdk");
    create_sparse(&base, 4);
    let mut model = vec![0u8; 4 << 20];
    {
        let d = open_rw(&base);
        write_pattern(&d, &mut model, 0, 1 << 20, 0x5a);
        d.close().unwrap();
    }
    let before = sha256(&base);
    let a = Disk::open_nonpersistent(&base, false, &scratch).unwrap();
    let b = Disk::open_nonpersistent(&base, false, &scratch).unwrap();
    let reader = open_ro(&base);
    assert!(a.is_nonpersistent() && b.is_nonpersistent());
    assert!(
        scratch_files(&scratch).is_empty(),
        "scratch logs are unlinked at once"
    );
    let (mut ma, mut mb) = (model.clone(), model.clone());
    write_pattern(&a, &mut ma, 4096, 8192, 0xaa);
    write_pattern(&b, &mut mb, 4096, 100 << 10, 0xbb);
    write_pattern(&b, &mut mb, 3 << 20, 512, 0xbc);
    assert_eq!(read_all(&a), ma);
    assert_eq!(read_all(&b), mb);
    assert_eq!(read_all(&reader), model);
    a.flush().unwrap();
    // A persistent writer is refused while they share it; so are children of the private log.
    assert!(matches!(
        Disk::open(&base, OpenOptions::default()),
        Err(Error::Locked(_))
    ));
    assert!(matches!(
        a.create_child(&p(dir.path(), "c.vmdk"), DiskKind::MonolithicSparse),
        Err(Error::NotSupported(_))
    ));
    assert!(matches!(a.compact(false), Err(Error::NotSupported(_))));
    a.close().unwrap();
    drop((a, b, reader));
    assert_eq!(sha256(&base), before);
    assert!(scratch_files(&scratch).is_empty());
    // A log left by a process that died between creating and unlinking it is swept.
    let stale = p(
        &scratch,
        "vixdisklib-nonpersistent-999999999-0123456789abcdef.vmdk",
    );
    std::fs::write(&stale, b"x").unwrap();
    let c = Disk::open_nonpersistent(&base, false, &scratch).unwrap();
    assert!(!stale.exists());
    assert_eq!(read_all(&c), model);
}

#[test]
fn workstation_redo_names_work_for_split_and_monolithic_logs() {
    let dir = tempfile::tempdir().unwrap();
    let base = p(dir.path(), "mydisk.vmdk");
    create_sparse(&base, 8);
    let mut model = vec![0u8; 8 << 20];
    {
        let d = open_rw(&base);
        write_pattern(&d, &mut model, 0, 2 << 20, 0x10);
        d.close().unwrap();
    }
    let redo = p(dir.path(), "mydisk.vmdk.REDO");
    open_rw(&base)
        .create_child(&redo, DiskKind::SplitSparse)
        .unwrap();
    {
        let d = open_rw(&redo);
        write_pattern(&d, &mut model, 1 << 20, 64 << 10, 0x20);
        d.close().unwrap();
    }
    let nested = p(dir.path(), "mydisk.vmdk.REDO.REDO");
    open_rw(&redo)
        .create_child(&nested, DiskKind::MonolithicSparse)
        .unwrap();
    {
        let d = open_rw(&nested);
        write_pattern(&d, &mut model, 5 << 20, 4096, 0x30);
        d.close().unwrap();
    }
    assert_eq!(open_ro(&nested).num_links(), 3);
    assert_eq!(read_all(&open_ro(&nested)), model);
    if have_qemu() {
        let raw = p(dir.path(), "m.raw");
        save_raw(&model, &raw);
        assert!(qemu_same(&raw, &nested));
    }
    // Commit the nested log into the next level (the redo log), never the base.
    let base_sum = sha256(&base);
    commit(&nested, &mut |_| {}).unwrap();
    assert_eq!(sha256(&base), base_sum);
    assert_eq!(read_all(&open_ro(&redo)), model);
    // Discard = unlink the redo log.
    vixDiskLib::chain::files::unlink(&redo).unwrap();
    let leftovers: Vec<String> = scratch_files(dir.path())
        .into_iter()
        .filter(|n| n.contains("REDO"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// A descriptor-less COWD file as Workstation 3 wrote it (see `common::cowd_file`).
fn write_cowd(path: &Path, sectors: u32, grain: u32, parent: Option<&str>, data: &[(u32, u8)]) {
    std::fs::write(path, cowd_file(sectors, grain, parent, data)).unwrap();
}

#[test]
fn legacy_cowd_redo_logs_open_read_only_over_their_parent() {
    let dir = tempfile::tempdir().unwrap();
    let sectors = 8192u32; // 4 MiB
    let grain = 16u32; // 8 KiB grains
    // A legacy root disk and a .REDO over it, then a .REDO.REDO over that.
    let base = p(dir.path(), "mydisk.vmdk");
    write_cowd(
        &base,
        sectors,
        grain,
        None,
        &[(0, 0x11), (3, 0x12), (300, 0x13)],
    );
    let redo = p(dir.path(), "mydisk.vmdk.REDO");
    write_cowd(
        &redo,
        sectors,
        grain,
        Some("mydisk.vmdk"),
        &[(3, 0x21), (511, 0x22)],
    );
    let redo2 = p(dir.path(), "mydisk.vmdk.REDO.REDO");
    write_cowd(
        &redo2,
        sectors,
        grain,
        Some("mydisk.vmdk.REDO"),
        &[(0, 0x31)],
    );
    let mut model = vec![0u8; sectors as usize * 512];
    let g = grain as usize * 512;
    for (grain_no, byte) in [(0, 0x31u8), (3, 0x21), (300, 0x13), (511, 0x22)] {
        model[grain_no * g..(grain_no + 1) * g].fill(byte);
    }
    let d = open_ro(&redo2);
    assert_eq!(d.num_links(), 3);
    assert_eq!(read_all(&d), model);
    assert_eq!(d.info().parent_hint.as_deref(), Some("mydisk.vmdk.REDO"));
    drop(d);
    // Writable opens work but writes are refused before anything changes.
    let sum = sha256(&redo2);
    let w = open_rw(&redo2);
    assert!(matches!(
        w.write(0, &[1u8; 512]),
        Err(Error::NotSupported(_))
    ));
    drop(w);
    assert_eq!(sha256(&redo2), sum);
    // A legacy log over a modern base: the parent name is all there is (no CIDs to check).
    let modern = p(dir.path(), "new.vmdk");
    create_sparse(&modern, 4);
    let modern_redo = p(dir.path(), "new.vmdk.REDO");
    write_cowd(&modern_redo, sectors, grain, Some("new.vmdk"), &[(1, 0x44)]);
    let d = open_ro(&modern_redo);
    assert_eq!(d.num_links(), 2);
    let mut buf = vec![0u8; g * 3];
    d.read(0, &mut buf).unwrap();
    assert!(buf[..g].iter().all(|&b| b == 0) && buf[g..2 * g].iter().all(|&b| b == 0x44));
    drop(d);
    // Committing a legacy log is refused (we do not write COWD).
    assert!(matches!(
        commit(&modern_redo, &mut |_| {}),
        Err(Error::NotSupported(_))
    ));
}
