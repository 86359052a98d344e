//! The seeds' chain scenarios through the engine, checked against an in-memory model and
//! qemu-img: nightly redo logs, re-creating a day with Attach, a frozen read-only base, CID
//! mismatch detection at open, and qemu-made chains.

mod common;

use common::*;
use vixDiskLib::chain::{Disk, OpenOptions};
use vixDiskLib::error::Error;
use vixDiskLib::vmdk::create::DiskKind;

const MIB: usize = 1 << 20;

/// Base + 7 nightly children; each night writes different (partly overlapping, partly
/// sub-grain) sectors. Returns the generation paths and the model of each day.
fn nightly_chain(dir: &std::path::Path) -> (Vec<std::path::PathBuf>, Vec<Vec<u8>>) {
    let base = p(dir, "base.vmdk");
    create_sparse(&base, 64);
    let mut model = vec![0u8; 64 * MIB];
    {
        let d = open_rw(&base);
        write_pattern(&d, &mut model, 0, 2 * MIB, 0x10);
        write_pattern(&d, &mut model, 40 * MIB, 64 * 1024, 0x11);
        d.close().unwrap();
    }
    let mut gens = vec![base];
    let mut models = vec![model.clone()];
    for day in 1..=7u8 {
        let parent = gens.last().unwrap().clone();
        let child = p(dir, &format!("day{day}.vmdk"));
        {
            let d = open_rw(&parent);
            d.create_child(&child, DiskKind::MonolithicSparse).unwrap();
            d.close().unwrap();
        }
        let d = open_rw(&child);
        let day_us = day as usize;
        // A whole grain, a sub-grain write into parent data (copy-on-write), and a new area.
        write_pattern(&d, &mut model, day_us * 3 * MIB, 64 * 1024, 0x20 + day);
        write_pattern(&d, &mut model, day_us * 4096 + 512, 1024, 0x40 + day);
        write_pattern(
            &d,
            &mut model,
            50 * MIB + day_us * 100_000 / 512 * 512,
            3 * 512,
            0x60 + day,
        );
        d.close().unwrap();
        gens.push(child);
        models.push(model.clone());
    }
    (gens, models)
}

#[test]
fn every_nightly_generation_reads_as_that_day() {
    let dir = tempfile::tempdir().unwrap();
    let (gens, models) = nightly_chain(dir.path());
    for (k, gen_path) in gens.iter().enumerate() {
        let d = open_ro(gen_path);
        assert_eq!(d.num_links(), k + 1, "generation {k} link count");
        assert!(
            read_all(&d) == models[k],
            "generation {k} content differs from the model"
        );
    }
    if have_qemu() {
        let raw = p(dir.path(), "day7.raw");
        save_raw(&models[7], &raw);
        assert!(
            qemu_same(&raw, &gens[7]),
            "qemu-img disagrees with our day-7 chain"
        );
        assert!(qemu_check(&gens[7]));
        let (code, out) = sh(&format!(
            "qemu-img info --backing-chain '{}'",
            gens[7].display()
        ));
        assert_eq!(code, 0, "{out}");
        assert_eq!(out.matches("image: ").count(), 8, "{out}");
    }
}

#[test]
fn recreate_any_day_with_attach_leaves_that_day_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let (gens, models) = nightly_chain(dir.path());
    let k = 3;
    let before: Vec<String> = gens[..=k].iter().map(|g| sha256(g)).collect();
    let redo = p(dir.path(), "redo.vmdk");
    create_sparse(&redo, 64);
    let mut expected = models[k].clone();
    {
        let parent = open_ro(&gens[k]);
        let child = open_single(&redo, true);
        parent.attach_under(&child).unwrap();
        assert_eq!(child.num_links(), k + 2);
        write_pattern(&child, &mut expected, 5 * MIB + 512, 4096, 0x99);
        assert!(read_all(&child) == expected);
        child.close().unwrap();
    }
    let after: Vec<String> = gens[..=k].iter().map(|g| sha256(g)).collect();
    assert_eq!(
        before, after,
        "attaching and writing changed an older generation"
    );
    // The link is persisted: reopening the redo log alone gives the same chain.
    let again = open_ro(&redo);
    assert_eq!(again.num_links(), k + 2);
    assert!(read_all(&again) == expected);
    if have_qemu() {
        let raw = p(dir.path(), "redo.raw");
        save_raw(&expected, &raw);
        assert!(qemu_same(&raw, &redo));
    }
}

#[test]
fn a_frozen_base_is_unchanged_by_writes_through_its_child() {
    let dir = tempfile::tempdir().unwrap();
    let base = p(dir.path(), "w2k.vmdk");
    create_sparse(&base, 16);
    let mut model = vec![0u8; 16 * MIB];
    {
        let d = open_rw(&base);
        write_pattern(&d, &mut model, 0, MIB, 0x77);
        d.close().unwrap();
    }
    let base_sum = sha256(&base);
    {
        let d = open_ro(&base);
        d.create_child(&p(dir.path(), "ro.vmdk"), DiskKind::MonolithicSparse)
            .unwrap();
        assert!(matches!(d.write(0, &[0u8; 512]), Err(Error::ReadOnly(_))));
    }
    let child = open_rw(&p(dir.path(), "ro.vmdk"));
    write_pattern(&child, &mut model, 512, 512, 0x01);
    write_pattern(&child, &mut model, 8 * MIB, 3 * MIB, 0x02);
    assert!(read_all(&child) == model);
    child.close().unwrap();
    assert_eq!(sha256(&base), base_sum);
}

#[test]
fn partial_grain_write_copies_the_rest_of_the_grain_from_the_parent() {
    let dir = tempfile::tempdir().unwrap();
    let base = p(dir.path(), "b.vmdk");
    create_sparse(&base, 4);
    let mut model = vec![0u8; 4 * MIB];
    {
        let d = open_rw(&base);
        write_pattern(&d, &mut model, 0, 128 * 1024, 0xaa);
        d.create_child(&p(dir.path(), "c.vmdk"), DiskKind::MonolithicSparse)
            .unwrap();
        d.close().unwrap();
    }
    {
        let c = open_rw(&p(dir.path(), "c.vmdk"));
        write_pattern(&c, &mut model, 1024, 512, 0xbb);
        c.close().unwrap();
    }
    // The child alone (SINGLE_LINK) holds the whole first grain: parent data around our sector.
    let single = open_single(&p(dir.path(), "c.vmdk"), false);
    assert_eq!(single.num_links(), 1);
    let mut grain = vec![0u8; 65536];
    single.read(0, &mut grain).unwrap();
    assert!(grain == model[..65536]);
    let mut second = vec![1u8; 65536];
    single.read(128, &mut second).unwrap();
    assert!(
        second.iter().all(|&b| b == 0),
        "an untouched grain must not be in the child"
    );
}

#[test]
fn parent_written_behind_the_childs_back_is_refused_at_open() {
    if !have_qemu() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let base = p(dir.path(), "b.vmdk");
    create_sparse(&base, 4);
    {
        let d = open_rw(&base);
        d.create_child(&p(dir.path(), "c.vmdk"), DiskKind::MonolithicSparse)
            .unwrap();
    }
    let (code, out) = sh(&format!(
        "qemu-io -f vmdk -c 'write -P 0x77 1M 4k' '{}'",
        base.display()
    ));
    assert_eq!(code, 0, "{out}");
    match Disk::open(&p(dir.path(), "c.vmdk"), OpenOptions::default()) {
        Err(Error::CidMismatch { .. }) => {}
        other => panic!("expected a CID mismatch, got {:?}", other.err()),
    }
}

#[test]
fn missing_parent_capacity_mismatch_and_loops_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let base = p(dir.path(), "b.vmdk");
    create_sparse(&base, 4);
    let child = p(dir.path(), "c.vmdk");
    open_rw(&base)
        .create_child(&child, DiskKind::MonolithicSparse)
        .unwrap();
    std::fs::rename(&base, p(dir.path(), "moved.vmdk")).unwrap();
    assert!(matches!(
        Disk::open(&child, OpenOptions::default()),
        Err(Error::OpenParent { .. })
    ));
    std::fs::rename(p(dir.path(), "moved.vmdk"), &base).unwrap();
    assert!(Disk::open(&child, OpenOptions::default()).is_ok());

    let small = p(dir.path(), "small.vmdk");
    create_sparse(&small, 2);
    let redo = open_single(&small, true);
    let parent = open_ro(&base);
    assert!(matches!(
        parent.check_attach(&redo),
        Err(Error::CapacityMismatch(_))
    ));

    // A link whose parent hint points at itself.
    let me = p(dir.path(), "loop.vmdk");
    create_sparse(&me, 4);
    {
        let l = open_single(&me, true);
        let cid = l.chain().links[0].descriptor().cid;
        l.chain().links[0]
            .update_descriptor(|d| {
                d.parent_cid = cid;
                d.parent_hint = Some("loop.vmdk".into());
            })
            .unwrap();
    }
    assert!(matches!(
        Disk::open(
            &me,
            OpenOptions {
                read_only: true,
                single_link: false
            }
        ),
        Err(Error::TooManyLinks(_))
    ));
}

#[test]
fn chains_made_by_qemu_read_the_same_through_us() {
    if !have_qemu() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    let script = format!(
        "set -e; cd '{d}'; mkdir -p base snaps
         qemu-img create -q -f vmdk base/base.vmdk 64M
         qemu-io -f vmdk -c 'write -P 0xab 0 1M' -c 'write -P 0xcd 33M 64k' base/base.vmdk >/dev/null
         qemu-img create -q -f vmdk -b ../base/base.vmdk -F vmdk snaps/s1.vmdk
         qemu-io -f vmdk -c 'write -P 0x12 512k 64k' -c 'write -P 0x13 1000k 3k' snaps/s1.vmdk >/dev/null
         qemu-img create -q -f vmdk -b \"$PWD/snaps/s1.vmdk\" -F vmdk snaps/s2.vmdk
         qemu-io -f vmdk -c 'write -P 0x14 40M 100k' snaps/s2.vmdk >/dev/null
         qemu-img convert -O raw snaps/s2.vmdk expected.raw"
    );
    let (code, out) = sh(&script);
    assert_eq!(code, 0, "{out}");
    let ours = open_ro(&dir.path().join("snaps/s2.vmdk"));
    assert_eq!(ours.num_links(), 3);
    let expected = std::fs::read(dir.path().join("expected.raw")).unwrap();
    assert!(read_all(&ours) == expected);
}

#[test]
fn allocated_blocks_match_qemu_img_map() {
    if !have_qemu() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (gens, _) = nightly_chain(dir.path());
    let d = open_ro(&gens[7]);
    let ours = d.allocated_chunks(0, d.capacity(), 128).unwrap();
    // Rebuild qemu's data ranges as 64 KiB chunks, merged.
    let mut theirs: Vec<(u64, u64)> = Vec::new();
    for r in qemu_map(&gens[7]).into_iter().filter(|r| r.data) {
        let (start, length) = (r.start / 512, r.length / 512);
        let s = start / 128 * 128;
        let e = (start + length).div_ceil(128) * 128;
        match theirs.last_mut() {
            Some((ls, ll)) if *ls + *ll >= s => *ll = (*ll).max(e - *ls),
            _ => theirs.push((s, e - s)),
        }
    }
    assert_eq!(ours, theirs);
    // Single-link counts only the leaf.
    let leaf = open_single(&gens[7], false);
    let leaf_blocks = leaf.allocated_chunks(0, leaf.capacity(), 128).unwrap();
    let total: u64 = leaf_blocks.iter().map(|b| b.1).sum();
    assert!(total > 0 && total < ours.iter().map(|b| b.1).sum::<u64>());
}

#[test]
fn allocated_blocks_enforce_vddk_argument_rules() {
    let dir = tempfile::tempdir().unwrap();
    let base = p(dir.path(), "b.vmdk");
    create_sparse(&base, 1);
    let d = open_ro(&base);
    assert!(d.allocated_chunks(0, 2048, 64).is_err(), "chunk below 128");
    assert!(
        d.allocated_chunks(0, 2048, 262144).is_err(),
        "chunk above 131072"
    );
    assert!(
        d.allocated_chunks(100, 128, 128).is_err(),
        "unaligned start"
    );
    assert!(
        d.allocated_chunks(0, 2048 + 128, 128).is_err(),
        "past the end"
    );
    assert_eq!(d.allocated_chunks(0, 2048, 128).unwrap(), vec![]);
}

#[test]
fn split_sparse_children_chain_like_monolithic_ones_and_qemu_sees_the_depths() {
    let dir = tempfile::tempdir().unwrap();
    let base = p(dir.path(), "base.vmdk");
    create_sparse(&base, 64);
    let mut model = vec![0u8; 64 * MIB];
    let d = open_rw(&base);
    write_pattern(&d, &mut model, 0, MIB, 0x10);
    d.create_child(&p(dir.path(), "snap.vmdk"), DiskKind::SplitSparse)
        .unwrap();
    drop(d);
    let text = std::fs::read_to_string(p(dir.path(), "snap.vmdk")).unwrap();
    assert!(
        text.contains("createType=\"twoGbMaxExtentSparse\"")
            && text.contains("parentFileNameHint=\"base.vmdk\""),
        "{text}"
    );
    let c = open_rw(&p(dir.path(), "snap.vmdk"));
    assert_eq!(c.num_links(), 2);
    write_pattern(&c, &mut model, 8 * MIB, 64 * 1024, 0x20);
    write_pattern(&c, &mut model, 512, 512, 0x21);
    assert!(read_all(&c) == model);
    c.close().unwrap();
    drop(c);
    if have_qemu() {
        let raw = p(dir.path(), "m.raw");
        save_raw(&model, &raw);
        assert!(qemu_same(&raw, &p(dir.path(), "snap.vmdk")));
        let map = qemu_map(&p(dir.path(), "snap.vmdk"));
        let depth_at = |byte: u64| -> u64 {
            map.iter()
                .find(|r| r.start <= byte && byte < r.start + r.length)
                .map(|r| r.depth)
                .unwrap()
        };
        assert_eq!(
            depth_at(8 * MIB as u64),
            0,
            "child data is at depth 0: {map:?}"
        );
        assert_eq!(depth_at(0), 0, "the copied-up first grain is the child's");
        assert_eq!(
            depth_at(512 * 1024),
            1,
            "base-only data is at depth 1: {map:?}"
        );
    }
}

#[test]
fn a_chain_deeper_than_255_links_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let leaf = build_deep_chain(dir.path(), 256);
    let ok = p(dir.path(), "l254.vmdk");
    assert_eq!(open_ro(&ok).num_links(), 255);
    assert!(matches!(
        Disk::open(
            &leaf,
            OpenOptions {
                read_only: true,
                single_link: false
            }
        ),
        Err(Error::TooManyLinks(_))
    ));
}
