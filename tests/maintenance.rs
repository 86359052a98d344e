//! Every disk type we create, Clone of a chain into every type, Grow, Shrink, Defragment and
//! metadata, each checked against an in-memory model and qemu-img.

mod common;

use common::*;
use vixDiskLib::chain::{Disk, OpenOptions};
use vixDiskLib::vmdk::create::{CreateSpec, DiskKind, create};
use vixDiskLib::vmdk::geometry::Adapter;
use vixDiskLib::vmdk::grow::grow;

const MIB: usize = 1 << 20;

fn spec(kind: DiskKind, mib: u64) -> CreateSpec {
    CreateSpec {
        kind,
        capacity: mib * 2048,
        adapter: Adapter::BusLogic,
        hw_version: 7,
    }
}

fn file_size(p: &std::path::Path) -> u64 {
    let (_, out) = sh(&format!(
        "du -B1 --apparent-size -c '{}'* | tail -1",
        p.with_extension("").display()
    ));
    out.split_whitespace().next().unwrap().parse().unwrap()
}

fn disk_usage(p: &std::path::Path) -> u64 {
    std::fs::metadata(p).unwrap().len()
}

fn check_type(kind: DiskKind, create_type: &str, mib: u64, qemu_reads: bool) {
    let dir = tempfile::tempdir().unwrap();
    let path = p(dir.path(), "t.vmdk");
    create(&path, &spec(kind, mib), &mut |_| {}).unwrap();
    let mut model = vec![0u8; mib as usize * MIB];
    {
        let d = open_rw(&path);
        write_pattern(&d, &mut model, 0, MIB, 0x21);
        write_pattern(&d, &mut model, 7 * 512, 512, 0x22);
        let end = mib as usize * MIB;
        write_pattern(&d, &mut model, end - 4096, 4096, 0x23);
        if mib > 2047 {
            // Straddles the 2047 MiB extent boundary of VMware-style split disks.
            write_pattern(&d, &mut model, 2047 * MIB - 64 * 1024, 128 * 1024, 0x24);
        }
        d.close().unwrap();
    }
    let d = open_ro(&path);
    let mut buf = vec![0u8; 64 * MIB];
    for (i, expected) in model.chunks(64 * MIB).enumerate() {
        let got = &mut buf[..expected.len()];
        d.read((i * 64 * 2048) as u64, got).unwrap();
        assert!(
            got == expected,
            "{create_type}: our reads differ from the model in chunk {i}"
        );
    }
    drop(d);
    if qemu_reads && have_qemu() {
        let (code, out) = sh(&format!("qemu-img info --output=json '{}'", path.display()));
        assert_eq!(code, 0, "{out}");
        assert!(
            out.contains(&format!("\"create-type\": \"{create_type}\"")),
            "{out}"
        );
        let raw = p(dir.path(), "model.raw");
        save_raw(&model, &raw);
        assert!(qemu_same(&raw, &path), "{create_type}: qemu-img compare");
        assert!(qemu_check(&path));
    }
}

#[test]
fn split_sparse_disks_use_2047_mib_extents_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = p(dir.path(), "x.vmdk");
    create(&path, &spec(DiskKind::SplitSparse, 4100), &mut |_| {}).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("RW 4192256 SPARSE \"x-s001.vmdk\""), "{text}");
    assert!(text.contains("RW 4192256 SPARSE \"x-s002.vmdk\""), "{text}");
    assert!(text.contains("RW 12288 SPARSE \"x-s003.vmdk\""), "{text}");
    check_type(DiskKind::SplitSparse, "twoGbMaxExtentSparse", 2100, true);
}

#[test]
fn split_flat_disks_read_back() {
    check_type(DiskKind::SplitFlat, "twoGbMaxExtentFlat", 2100, true);
}

#[test]
fn monolithic_flat_disks_read_back() {
    check_type(DiskKind::MonolithicFlat, "monolithicFlat", 8, true);
}

#[test]
fn vmfs_flat_disks_read_back() {
    check_type(DiskKind::VmfsFlat, "vmfs", 8, true);
}

#[test]
fn vmfs_thin_disks_read_back() {
    // qemu does not open vmfsThin descriptors; our reader is the oracle here.
    check_type(DiskKind::VmfsThin, "vmfsThin", 8, false);
}

/// A 3-link chain with data in every link; returns (leaf path, model).
fn three_links(dir: &std::path::Path) -> (std::path::PathBuf, Vec<u8>) {
    let base = p(dir, "base.vmdk");
    create_sparse(&base, 64);
    let mut model = vec![0u8; 64 * MIB];
    let d = open_rw(&base);
    write_pattern(&d, &mut model, 0, 4 * MIB, 0x31);
    d.create_child(&p(dir, "c1.vmdk"), DiskKind::MonolithicSparse)
        .unwrap();
    drop(d);
    let c1 = open_rw(&p(dir, "c1.vmdk"));
    write_pattern(&c1, &mut model, MIB + 512, 8192, 0x32);
    write_pattern(&c1, &mut model, 33 * MIB, 64 * 1024, 0x33);
    c1.create_child(&p(dir, "c2.vmdk"), DiskKind::MonolithicSparse)
        .unwrap();
    drop(c1);
    let c2 = open_rw(&p(dir, "c2.vmdk"));
    write_pattern(&c2, &mut model, 63 * MIB, MIB, 0x34);
    c2.close().unwrap();
    (p(dir, "c2.vmdk"), model)
}

#[test]
fn clone_of_a_three_link_chain_into_every_type() {
    let dir = tempfile::tempdir().unwrap();
    let (leaf, model) = three_links(dir.path());
    let raw = p(dir.path(), "model.raw");
    save_raw(&model, &raw);
    let src = open_ro(&leaf);
    let allocated_src: u64 = src
        .allocated_chunks(0, src.capacity(), 128)
        .unwrap()
        .iter()
        .map(|b| b.1)
        .sum();
    for (kind, name, qemu) in [
        (DiskKind::MonolithicSparse, "ms", true),
        (DiskKind::MonolithicFlat, "mf", true),
        (DiskKind::SplitSparse, "ss", true),
        (DiskKind::SplitFlat, "sf", true),
        (DiskKind::VmfsFlat, "vf", true),
        (DiskKind::VmfsThin, "vt", false),
        (DiskKind::StreamOptimized, "so", true),
    ] {
        let dst = p(dir.path(), &format!("clone-{name}.vmdk"));
        let mut seen = Vec::new();
        src.clone_to(&dst, &spec(kind, 0), false, 2, &mut |pct| seen.push(pct))
            .unwrap();
        assert!(
            seen.windows(2).all(|w| w[0] <= w[1]),
            "{name}: progress not monotonic: {seen:?}"
        );
        assert_eq!(
            seen.last(),
            Some(&100),
            "{name}: progress did not reach 100"
        );
        let c = open_ro(&dst);
        assert_eq!(c.num_links(), 1);
        assert!(read_all(&c) == model, "{name}: clone content differs");
        if matches!(kind, DiskKind::MonolithicSparse | DiskKind::SplitSparse) {
            let allocated: u64 = c
                .allocated_chunks(0, c.capacity(), 128)
                .unwrap()
                .iter()
                .map(|b| b.1)
                .sum();
            assert_eq!(
                allocated, allocated_src,
                "{name}: unallocated grains must stay unallocated"
            );
            let needed = src.space_needed_for_clone(kind).unwrap();
            assert!(
                needed >= file_size(&dst),
                "{name}: SpaceNeededForClone {needed} below actual {}",
                file_size(&dst)
            );
        }
        if qemu && have_qemu() {
            assert!(qemu_same(&raw, &dst), "{name}: qemu-img compare");
            assert!(qemu_check(&dst), "{name}: qemu-img check");
        }
        drop(c);
        // overWrite FALSE refuses an existing target; TRUE replaces it.
        assert!(
            src.clone_to(&dst, &spec(kind, 0), false, 2, &mut |_| {})
                .is_err()
        );
        src.clone_to(&dst, &spec(kind, 0), true, 2, &mut |_| {})
            .unwrap();
    }
    if have_qemu() {
        let (code, out) = sh(&format!(
            "qemu-img info '{}'",
            p(dir.path(), "clone-so.vmdk").display()
        ));
        assert_eq!(code, 0, "{out}");
        assert!(
            out.contains("streamOptimized") && out.contains("compressed: true"),
            "{out}"
        );
    }
}

fn grow_and_compare(kind: DiskKind, mib: u64, new_mib: u64) {
    let dir = tempfile::tempdir().unwrap();
    let path = p(dir.path(), "g.vmdk");
    create(&path, &spec(kind, mib), &mut |_| {}).unwrap();
    let mut model = vec![0u8; new_mib as usize * MIB];
    {
        let d = open_rw(&path);
        write_pattern(&d, &mut model, 0, MIB, 0x41);
        write_pattern(&d, &mut model, mib as usize * MIB - 512, 512, 0x42);
        d.close().unwrap();
    }
    grow(&path, new_mib * 2048, true).unwrap();
    {
        let d = open_rw(&path);
        assert_eq!(d.capacity(), new_mib * 2048);
        write_pattern(&d, &mut model, new_mib as usize * MIB - 4096, 4096, 0x43);
        write_pattern(&d, &mut model, mib as usize * MIB, 64 * 1024, 0x44);
        assert!(read_all(&d) == model);
        assert_eq!(
            d.info().geometry.cylinders,
            (new_mib * 2048 / (64 * 32)) as u32
        );
        d.close().unwrap();
    }
    if have_qemu() {
        let raw = p(dir.path(), "m.raw");
        save_raw(&model, &raw);
        assert!(qemu_same(&raw, &path), "{kind:?} grow: qemu-img compare");
        assert!(qemu_check(&path));
    }
}

#[test]
fn grow_monolithic_sparse_keeps_content() {
    grow_and_compare(DiskKind::MonolithicSparse, 40, 100);
}

#[test]
fn grow_monolithic_flat_keeps_content() {
    grow_and_compare(DiskKind::MonolithicFlat, 8, 20);
}

#[test]
fn grow_split_sparse_adds_extents() {
    grow_and_compare(DiskKind::SplitSparse, 16, 48);
}

#[test]
fn grow_refuses_smaller_capacity() {
    let dir = tempfile::tempdir().unwrap();
    let path = p(dir.path(), "g.vmdk");
    create_sparse(&path, 8);
    assert!(grow(&path, 8 * 2048, false).is_err());
}

#[test]
fn shrink_releases_zero_grains_and_keeps_content() {
    let dir = tempfile::tempdir().unwrap();
    let path = p(dir.path(), "s.vmdk");
    create_sparse(&path, 64);
    let mut model = vec![0u8; 64 * MIB];
    let d = open_rw(&path);
    write_pattern(&d, &mut model, 0, 8 * MIB, 0x51);
    write_pattern(&d, &mut model, MIB, 4 * MIB, 0x00);
    write_pattern(&d, &mut model, 40 * MIB, 1024, 0x52);
    d.close().unwrap();
    let before = disk_usage(&path);
    let released = d.compact(true).unwrap();
    assert_eq!(released, 64, "4 MiB of zero grains");
    assert!(read_all(&d) == model);
    d.close().unwrap();
    drop(d);
    assert!(
        disk_usage(&path) + 4 * MIB as u64 <= before,
        "file did not get smaller"
    );
    assert!(read_all(&open_ro(&path)) == model);
    if have_qemu() {
        let raw = p(dir.path(), "m.raw");
        save_raw(&model, &raw);
        assert!(qemu_same(&raw, &path));
        assert!(qemu_check(&path));
    }
}

#[test]
fn shrink_of_a_child_keeps_zero_grains_that_hide_parent_data() {
    let dir = tempfile::tempdir().unwrap();
    let base = p(dir.path(), "b.vmdk");
    create_sparse(&base, 8);
    let mut model = vec![0u8; 8 * MIB];
    let d = open_rw(&base);
    write_pattern(&d, &mut model, 0, MIB, 0x61);
    d.create_child(&p(dir.path(), "c.vmdk"), DiskKind::MonolithicSparse)
        .unwrap();
    drop(d);
    let c = open_rw(&p(dir.path(), "c.vmdk"));
    write_pattern(&c, &mut model, 0, 64 * 1024, 0x00); // hides parent data: must stay
    write_pattern(&c, &mut model, 4 * MIB, 64 * 1024, 0x00); // parent reads zeros: released
    assert_eq!(c.compact(true).unwrap(), 1);
    assert!(read_all(&c) == model);
}

#[test]
fn defragment_orders_grains_by_lba_and_keeps_content() {
    let dir = tempfile::tempdir().unwrap();
    let path = p(dir.path(), "d.vmdk");
    create_sparse(&path, 16);
    let mut model = vec![0u8; 16 * MIB];
    let d = open_rw(&path);
    for i in (0..16).rev() {
        write_pattern(&d, &mut model, i * MIB, 64 * 1024, 0x70 + i as u8);
    }
    d.compact(false).unwrap();
    assert!(read_all(&d) == model);
    d.close().unwrap();
    drop(d);
    if have_qemu() {
        let offsets: Vec<u64> = qemu_map(&path)
            .iter()
            .filter(|r| r.data)
            .filter_map(|r| r.offset)
            .collect();
        assert_eq!(offsets.len(), 16);
        assert!(
            offsets.windows(2).all(|w| w[0] < w[1]),
            "grains not in LBA order: {offsets:?}"
        );
        let raw = p(dir.path(), "m.raw");
        save_raw(&model, &raw);
        assert!(qemu_same(&raw, &path));
    }
}

#[test]
fn metadata_round_trips_and_unknown_ddb_keys_survive_rewrites() {
    let dir = tempfile::tempdir().unwrap();
    let path = p(dir.path(), "m.vmdk");
    create_sparse(&path, 4);
    {
        let d = open_rw(&path);
        d.chain().links[0]
            .update_descriptor(|desc| desc.ddb_set("vendor.custom", "kept as is"))
            .unwrap();
        d.ddb_set("backup.changeId", "52 ab/7").unwrap();
        d.write(0, &[9u8; 512]).unwrap();
        d.close().unwrap();
    }
    let d = Disk::open(
        &path,
        OpenOptions {
            read_only: true,
            single_link: false,
        },
    )
    .unwrap();
    assert_eq!(d.ddb_lookup("backup.changeId").as_deref(), Some("52 ab/7"));
    assert_eq!(d.ddb_lookup("vendor.custom").as_deref(), Some("kept as is"));
    assert!(d.ddb_keys().iter().any(|k| k == "adapterType"));
    assert!(
        d.ddb_set("x", "y").is_err(),
        "read-only handles cannot write metadata"
    );
    assert!(open_rw_fails_with_quote(&path));
}

fn open_rw_fails_with_quote(path: &std::path::Path) -> bool {
    // A second (read-only) open is allowed while the first is read-only as well.
    let d = open_ro(path);
    d.ddb_lookup("adapterType").is_some()
}

#[test]
fn cancelled_clone_leaves_no_target() {
    let dir = tempfile::tempdir().unwrap();
    let src_path = p(dir.path(), "src.vmdk");
    create_sparse(&src_path, 4);
    let mut model = vec![0u8; 4 * MIB];
    {
        let d = open_rw(&src_path);
        write_pattern(&d, &mut model, 0, 2 * MIB, 0x5a);
        d.close().unwrap();
    }
    let src = open_ro(&src_path);
    for (kind, name) in [
        (DiskKind::MonolithicSparse, "ms"),
        (DiskKind::SplitFlat, "sf"),
        (DiskKind::StreamOptimized, "so"),
    ] {
        let dst = p(dir.path(), &format!("cancelled-{name}.vmdk"));
        let err = src
            .clone_to_cancellable(&dst, &spec(kind, 0), false, 2, &mut |_| {}, &|| true)
            .unwrap_err();
        assert!(err.to_string().contains("cancelled"), "{name}: {err}");
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|n| n.to_string_lossy().starts_with("cancelled"))
            .collect();
        assert!(left.is_empty(), "{name}: left {left:?}");
    }
    assert!(read_all(&src) == model);
}
