//! Power-cut safety (issue 19): every workload runs under the I/O recorder, and every crash
//! state the explorer builds from the recording (see tests/crash/) must open (or be repaired
//! by CheckRepair), pass `qemu-img check` (first state of each shape), hold every sector
//! written before the last completed Flush/Close, hold old or new content everywhere else,
//! answer every change id issued before the crash with a superset (or refuse it), and show a
//! Commit or Clone as done or not started. `scripts/crash_states.sh` runs a longer soak.

mod common;
mod crash;

use crash::State;
use crash::checks::*;
use vixDiskLib::chain::{Disk, OpenOptions};
use vixDiskLib::vmdk::check::check_disk;
use vixDiskLib::vmdk::create::{DiskKind, create};

fn create_workload(kind: DiskKind, name: &str) {
    let cap = 4 * MIB;
    run(
        name,
        |_| {},
        |dir, rec| {
            let mut ex = Expect::new(vec![(0, cap)]);
            create(&dir.join("d.vmdk"), &spec(kind, cap), &mut |_| {}).unwrap();
            ex.step(rec);
            ex
        },
        |s, ex| {
            let path = s.dir.join("d.vmdk");
            if s.phase == 0 && !path.exists() {
                // Not created yet: a new Create of the name must work (leftovers go).
                create(&path, &spec(kind, cap), &mut |_| {})
                    .map_err(|e| format!("Create after a crash in Create: {e}"))?;
            }
            disk_holds(s, "d.vmdk", ex)
        },
    );
}

#[test]
fn create_monolithic_sparse() {
    create_workload(DiskKind::MonolithicSparse, "create monolithicSparse");
}
#[test]
fn create_monolithic_flat() {
    create_workload(DiskKind::MonolithicFlat, "create monolithicFlat");
}
#[test]
fn create_split_sparse() {
    create_workload(DiskKind::SplitSparse, "create twoGbMaxExtentSparse");
}
#[test]
fn create_split_flat() {
    create_workload(DiskKind::SplitFlat, "create twoGbMaxExtentFlat");
}
#[test]
fn create_vmfs_flat() {
    create_workload(DiskKind::VmfsFlat, "create vmfs");
}
#[test]
fn create_vmfs_thin() {
    // qemu-img reads no vmfsThin descriptors: our own checks only.
    create_workload(DiskKind::VmfsThin, "create vmfsThin");
}
#[test]
fn create_stream_optimized() {
    create_workload(DiskKind::StreamOptimized, "create streamOptimized");
}

/// Writes (new grains, rewrites, partial grains), Flush, more writes, Close.
fn write_flush_workload(kind: DiskKind, name: &str, cap: u64, ranges: Vec<(u64, u64)>) {
    let at: Vec<u64> = ranges.iter().map(|r| r.0).collect();
    // New grains away from the first writes (in the second range when there is one).
    let far = if at.len() > 1 { at[1] + 1 } else { 1001 };
    run(
        name,
        |dir| {
            create(&dir.join("d.vmdk"), &spec(kind, cap), &mut |_| {}).unwrap();
            let d = Disk::open(&dir.join("d.vmdk"), OpenOptions::default()).unwrap();
            d.write(at[0], &pattern(1, 128)).unwrap();
            d.close().unwrap();
        },
        |dir, rec| {
            let mut ex = Expect::new(ranges.clone());
            ex.note(at[0], &pattern(1, 128));
            ex.imgs[0] = ex.cur.clone();
            let d = Disk::open(&dir.join("d.vmdk"), OpenOptions::default()).unwrap();
            ex.write(&d, at[0] + 8, &pattern(2, 16)); // over an allocated grain
            ex.write(&d, at[0] + 200, &pattern(3, 8)); // part of a new grain
            ex.write(&d, far, &pattern(4, 130)); // new grains
            d.flush().unwrap();
            ex.step(rec);
            ex.write(&d, at[0] + 300, &pattern(5, 1));
            ex.write(&d, at[0] + 16, &pattern(6, 4));
            d.close().unwrap();
            ex.step(rec);
            ex
        },
        |s, ex| disk_holds(s, "d.vmdk", ex),
    );
}

#[test]
fn writes_monolithic_sparse() {
    write_flush_workload(
        DiskKind::MonolithicSparse,
        "writes monolithicSparse",
        4 * MIB,
        vec![(0, 4 * MIB)],
    );
}

#[test]
fn writes_monolithic_flat() {
    write_flush_workload(
        DiskKind::MonolithicFlat,
        "writes monolithicFlat",
        4 * MIB,
        vec![(0, 4 * MIB)],
    );
}

#[test]
fn writes_split_sparse() {
    // Two extents: the writes land in both (the second range starts in the second extent).
    let split = 2047 * MIB;
    write_flush_workload(
        DiskKind::SplitSparse,
        "writes twoGbMaxExtentSparse",
        split + 4 * MIB,
        vec![(0, 1024), (split - 256, 1024)],
    );
}

#[test]
fn writes_stream_optimized() {
    let cap = 4 * MIB;
    run(
        "writes streamOptimized",
        |dir| {
            create(
                &dir.join("d.vmdk"),
                &spec(DiskKind::StreamOptimized, cap),
                &mut |_| {},
            )
            .unwrap()
        },
        |dir, rec| {
            let mut ex = Expect::new(vec![(0, cap)]);
            let d = Disk::open(&dir.join("d.vmdk"), OpenOptions::default()).unwrap();
            ex.write(&d, 0, &pattern(1, 256));
            d.flush().unwrap();
            ex.step(rec);
            ex.write(&d, 256, &pattern(2, 384));
            ex.write(&d, 1024, &pattern(3, 128));
            d.close().unwrap();
            ex.step(rec);
            ex
        },
        |s, ex| disk_holds(s, "d.vmdk", ex),
    );
}

#[test]
fn create_child() {
    let cap = 4 * MIB;
    run(
        "CreateChild",
        |dir| disk_with_data(dir, "base.vmdk", DiskKind::MonolithicSparse, cap),
        |dir, rec| {
            let mut ex = expect_data(cap, &[]);
            let d = Disk::open(&dir.join("base.vmdk"), OpenOptions::default()).unwrap();
            ex.write(&d, 400, &pattern(2, 8));
            d.create_child(&dir.join("child.vmdk"), DiskKind::MonolithicSparse)
                .unwrap();
            ex.step(rec);
            d.close().unwrap();
            drop(d);
            let c = Disk::open(&dir.join("child.vmdk"), OpenOptions::default()).unwrap();
            ex.write(&c, 100, &pattern(3, 200));
            c.close().unwrap();
            ex.step(rec);
            ex
        },
        |s, ex| {
            let child = s.dir.join("child.vmdk");
            if s.phase == 0 && !child.exists() {
                return disk_holds(s, "base.vmdk", ex);
            }
            disk_holds(s, "child.vmdk", ex)
        },
    );
}

#[test]
fn commit() {
    let cap = 4 * MIB;
    run(
        "Commit",
        |dir| base_and_child(dir, cap),
        |dir, rec| {
            let mut ex = expect_data(cap, &[(200, pattern(2, 300))]);
            vixDiskLib::chain::commit::commit(&dir.join("child.vmdk"), &mut |_| {}).unwrap();
            ex.step(rec);
            ex
        },
        |s, ex| {
            // Done (the child is gone and the base holds everything) or, while the child
            // exists, the chain through it reads as before.
            let child = s.dir.join("child.vmdk");
            if s.phase == 1 && child.exists() {
                return Err("Commit returned but the child is still there".into());
            }
            if child.exists() {
                let d = open_or_repair(&child)?;
                ex.check(&d, s.phase)?;
                drop(d);
                if s.deep {
                    // Finishing the interrupted commit is the user's repair; then the base
                    // alone must hold everything.
                    vixDiskLib::chain::commit::commit(&child, &mut |_| {})
                        .map_err(|e| format!("second Commit: {e}"))?;
                    return disk_holds(&State { phase: 1, ..*s }, "base.vmdk", ex);
                }
                return Ok(());
            }
            disk_holds(s, "base.vmdk", ex)
        },
    );
}

fn clone_workload(kind: DiskKind, name: &str) {
    let cap = 4 * MIB;
    run(
        name,
        |dir| base_and_child(dir, cap),
        |dir, rec| {
            // Step 0 is "no target", step 1 the source's content: a target that exists at all
            // must be complete.
            let mut ex = expect_data(cap, &[(200, pattern(2, 300))]);
            let d = Disk::open(&dir.join("child.vmdk"), ro()).unwrap();
            d.clone_to(
                &dir.join("copy.vmdk"),
                &spec(kind, cap),
                false,
                1,
                &mut |_| {},
            )
            .unwrap();
            ex.step(rec);
            ex
        },
        |s, ex| {
            let copy = s.dir.join("copy.vmdk");
            disk_holds(s, "child.vmdk", ex)?;
            if !copy.exists() {
                return match s.phase {
                    0 => Ok(()),
                    _ => Err("Clone returned but its target is missing".into()),
                };
            }
            disk_holds(&State { phase: 1, ..*s }, "copy.vmdk", ex)
        },
    );
}

#[test]
fn clone_monolithic_sparse() {
    clone_workload(DiskKind::MonolithicSparse, "Clone to monolithicSparse");
}

#[test]
fn clone_monolithic_flat() {
    clone_workload(DiskKind::MonolithicFlat, "Clone to monolithicFlat");
}

#[test]
fn clone_stream_optimized() {
    clone_workload(DiskKind::StreamOptimized, "Clone to streamOptimized");
}

fn grow_workload(kind: DiskKind, name: &str) {
    let (cap, grown) = (4 * MIB, 6 * MIB);
    run(
        name,
        |dir| disk_with_data(dir, "d.vmdk", kind, cap),
        |dir, rec| {
            let mut ex = Expect::new(vec![(0, grown)]);
            ex.note(0, &pattern(1, 300));
            ex.imgs[0] = ex.cur.clone();
            let path = dir.join("d.vmdk");
            vixDiskLib::vmdk::grow::grow(&path, grown, false).unwrap();
            vixDiskLib::chain::tracking::grow_history(&path).unwrap();
            ex.step(rec);
            ex
        },
        |s, ex| {
            let d = open_or_repair(&s.dir.join("d.vmdk"))?;
            if d.capacity() != grown && (s.phase == 1 || d.capacity() != cap) {
                return Err(format!("capacity {} after a Grow to {grown}", d.capacity()));
            }
            drop(d);
            disk_holds(s, "d.vmdk", ex)
        },
    );
}

#[test]
fn grow_monolithic_sparse() {
    grow_workload(DiskKind::MonolithicSparse, "Grow monolithicSparse");
}

#[test]
fn grow_monolithic_flat() {
    grow_workload(DiskKind::MonolithicFlat, "Grow monolithicFlat");
}

#[test]
fn grow_split_sparse() {
    grow_workload(DiskKind::SplitSparse, "Grow twoGbMaxExtentSparse");
}

fn compact_workload(drop_zeros: bool, name: &str) {
    let cap = 4 * MIB;
    run(
        name,
        |dir| {
            disk_with_data(dir, "d.vmdk", DiskKind::MonolithicSparse, cap);
            // Zeroed and rewritten grains give Shrink something to drop and Defragment
            // something to move.
            let d = Disk::open(&dir.join("d.vmdk"), OpenOptions::default()).unwrap();
            d.write(1024, &vec![0u8; 256 * 512]).unwrap();
            d.write(2048, &pattern(3, 128)).unwrap();
            d.write(0, &pattern(4, 64)).unwrap();
            d.close().unwrap();
        },
        |dir, rec| {
            let ex = expect_data(cap, &[(2048, pattern(3, 128)), (0, pattern(4, 64))]);
            let mut ex = ex;
            let d = Disk::open(&dir.join("d.vmdk"), OpenOptions::default()).unwrap();
            d.compact(drop_zeros).unwrap();
            d.close().unwrap();
            ex.step(rec);
            ex
        },
        |s, ex| disk_holds(s, "d.vmdk", ex),
    );
}

#[test]
fn shrink() {
    compact_workload(true, "Shrink");
}

#[test]
fn defragment() {
    compact_workload(false, "Defragment");
}

fn rename_workload(kind: DiskKind, name: &str) {
    let cap = 4 * MIB;
    run(
        name,
        |dir| disk_with_data(dir, "a.vmdk", kind, cap),
        |dir, rec| {
            let mut ex = expect_data(cap, &[]);
            vixDiskLib::chain::files::rename(&dir.join("a.vmdk"), &dir.join("b.vmdk")).unwrap();
            ex.step(rec);
            ex
        },
        |s, ex| {
            // At least one of the names holds the whole disk; after Rename returned, the new.
            let (a, b) = (s.dir.join("a.vmdk"), s.dir.join("b.vmdk"));
            if s.phase == 1 || !a.exists() {
                disk_holds(s, "b.vmdk", ex)
            } else if b.exists() && disk_holds(s, "b.vmdk", ex).is_ok() {
                Ok(())
            } else {
                disk_holds(s, "a.vmdk", ex)
            }
        },
    );
}

#[test]
fn rename_monolithic_sparse() {
    rename_workload(DiskKind::MonolithicSparse, "Rename monolithicSparse");
}

#[test]
fn rename_monolithic_flat() {
    rename_workload(DiskKind::MonolithicFlat, "Rename monolithicFlat");
}

#[test]
fn check_repair() {
    let cap = 4 * MIB;
    run(
        "CheckRepair",
        |dir| {
            disk_with_data(dir, "d.vmdk", DiskKind::MonolithicSparse, cap);
            // Damage the redundant grain directory's first entry (the primary is intact).
            let path = dir.join("d.vmdk");
            let mut b = std::fs::read(&path).unwrap();
            let rgd = u32::from_le_bytes(b[48..52].try_into().unwrap()) as usize * 512;
            b[rgd..rgd + 4].copy_from_slice(&0x7fff_ff00u32.to_le_bytes());
            b[72] = 1; // and the unclean flag set
            std::fs::write(&path, &b).unwrap();
        },
        |dir, rec| {
            let mut ex = expect_data(cap, &[]);
            let report = check_disk(&dir.join("d.vmdk"), true).unwrap();
            assert!(report.is_damaged(), "the setup must damage the disk");
            ex.step(rec);
            ex
        },
        |s, ex| {
            disk_holds(s, "d.vmdk", ex)?;
            let report = check_disk(&s.dir.join("d.vmdk"), true).map_err(|e| e.to_string())?;
            if s.phase == 1 && report.is_damaged() {
                return Err("damaged again after CheckRepair returned".into());
            }
            Ok(())
        },
    );
}

#[test]
fn nonpersistent_open() {
    let cap = 4 * MIB;
    run(
        "nonpersistent open",
        |dir| {
            disk_with_data(dir, "d.vmdk", DiskKind::MonolithicSparse, cap);
            std::fs::create_dir(dir.join("scratch")).unwrap();
        },
        |dir, rec| {
            let mut ex = expect_data(cap, &[]);
            let d =
                Disk::open_nonpersistent(&dir.join("d.vmdk"), false, &dir.join("scratch")).unwrap();
            d.write(0, &pattern(9, 200)).unwrap();
            d.flush().unwrap();
            d.close().unwrap();
            ex.step(rec);
            ex
        },
        // The disk itself never changes.
        |s, ex| disk_holds(s, "d.vmdk", ex),
    );
}

/// WriteMetadata on a descriptor file that grows past one sector (so its rewrite can tear),
/// then a shorter one (padded, then cut).
#[test]
fn write_metadata() {
    let cap = 4 * MIB;
    let long = "x".repeat(700);
    run(
        "WriteMetadata monolithicFlat",
        |dir| disk_with_data(dir, "d.vmdk", DiskKind::MonolithicFlat, cap),
        |dir, rec| {
            let mut ex = expect_data(cap, &[]);
            let d = Disk::open(&dir.join("d.vmdk"), OpenOptions::default()).unwrap();
            d.ddb_set("vdl.crash.long", &long).unwrap();
            ex.step(rec);
            d.ddb_set("vdl.crash.long", "short").unwrap();
            ex.step(rec);
            d.close().unwrap();
            ex.step(rec);
            ex
        },
        |s, ex| {
            disk_holds(s, "d.vmdk", ex)?;
            let d = open_or_repair(&s.dir.join("d.vmdk"))?;
            let v = d.ddb_lookup("vdl.crash.long");
            let allowed: &[Option<&str>] = match s.phase {
                0 => &[None, Some(&long)],
                1 => &[Some(&long), Some("short")],
                _ => &[Some("short")],
            };
            if !allowed.contains(&v.as_deref()) {
                return Err(format!("metadata key reads {v:?}"));
            }
            Ok(())
        },
    );
}

#[test]
fn check_repair_salvages_a_cut_stream() {
    let cap = 4 * MIB;
    run(
        "CheckRepair salvage of a stream",
        |dir| {
            disk_with_data(dir, "d.vmdk", DiskKind::StreamOptimized, cap);
            // Cut inside the tail: every grain is whole, the directory and footer are gone.
            let path = dir.join("d.vmdk");
            let b = std::fs::read(&path).unwrap();
            std::fs::write(&path, &b[..b.len() - 1000]).unwrap();
        },
        |dir, rec| {
            let mut ex = expect_data(cap, &[]);
            let report = check_disk(&dir.join("d.vmdk"), true).unwrap();
            assert!(report.salvage.is_some(), "the setup must cut the stream");
            ex.step(rec);
            ex
        },
        |s, ex| {
            // Before the salvage's rename the cut stream is there (and is salvaged here).
            disk_holds(s, "d.vmdk", ex)?;
            let report = check_disk(&s.dir.join("d.vmdk"), false).map_err(|e| e.to_string())?;
            if report.is_damaged() {
                return Err(format!("damaged after salvage: {:?}", report.problems));
            }
            Ok(())
        },
    );
}
