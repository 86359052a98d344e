//! Power-cut safety of change tracking (issue 19; the explorer and its rules are in
//! tests/crash/ and tests/crash_states.rs): every change id issued before a crash must still
//! be answered with a superset of the sectors changed since, or refused.

mod common;
mod crash;

use crash::checks::*;
use vixDiskLib::chain::{Disk, OpenOptions};
use vixDiskLib::vmdk::create::DiskKind;

#[test]
fn change_tracking() {
    let cap = 4 * MIB;
    use std::sync::Mutex;
    // (step at which the id was issued, id, content then)
    let ids: Mutex<Vec<(usize, String, Vec<u8>)>> = Mutex::new(Vec::new());
    run(
        "change tracking",
        |dir| {
            disk_with_data(dir, "d.vmdk", DiskKind::MonolithicSparse, cap);
            vixDiskLib::chain::tracking::set_change_tracking(&dir.join("d.vmdk"), true).unwrap();
        },
        |dir, rec| {
            let mut ex = expect_data(cap, &[]);
            let d = Disk::open(&dir.join("d.vmdk"), OpenOptions::default()).unwrap();
            let id0 = d.change_id().unwrap();
            ids.lock().unwrap().push((0, id0, ex.cur.clone()));
            ex.write(&d, 600, &pattern(2, 64));
            d.flush().unwrap();
            let id1 = d.change_id().unwrap();
            ex.step(rec);
            ids.lock().unwrap().push((1, id1, ex.cur.clone()));
            ex.write(&d, 2000, &pattern(3, 300));
            ex.write(&d, 10, &pattern(4, 2));
            d.flush().unwrap();
            let id2 = d.change_id().unwrap();
            ex.step(rec);
            ids.lock().unwrap().push((2, id2, ex.cur.clone()));
            ex.write(&d, 5000, &pattern(5, 8));
            d.close().unwrap();
            ex.step(rec);
            ex
        },
        |s, ex| {
            disk_holds(s, "d.vmdk", ex)?;
            let d = open_or_repair(&s.dir.join("d.vmdk"))?;
            ids_answered(&d, &ids.lock().unwrap(), s.phase)
        },
    );
}

/// Tracking through the chain: CreateChild copies the history to the child, writes go on
/// there, Commit hands it back to the base. Ids issued on the base before the snapshot must
/// stay answerable (or be refused) on whichever link holds the disk.
#[test]
fn tracked_child_and_commit() {
    let cap = 4 * MIB;
    use std::sync::Mutex;
    let ids: Mutex<Vec<(usize, String, Vec<u8>)>> = Mutex::new(Vec::new());
    run(
        "tracked CreateChild + Commit",
        |dir| {
            disk_with_data(dir, "base.vmdk", DiskKind::MonolithicSparse, cap);
            vixDiskLib::chain::tracking::set_change_tracking(&dir.join("base.vmdk"), true).unwrap();
        },
        |dir, rec| {
            let mut ex = expect_data(cap, &[]);
            let d = Disk::open(&dir.join("base.vmdk"), OpenOptions::default()).unwrap();
            ex.write(&d, 700, &pattern(2, 16));
            d.flush().unwrap();
            let id = d.change_id().unwrap();
            ex.step(rec);
            ids.lock().unwrap().push((1, id, ex.cur.clone()));
            d.create_child(&dir.join("child.vmdk"), DiskKind::MonolithicSparse)
                .unwrap();
            d.close().unwrap();
            drop(d);
            ex.step(rec);
            let c = Disk::open(&dir.join("child.vmdk"), OpenOptions::default()).unwrap();
            ex.write(&c, 100, &pattern(3, 300));
            c.close().unwrap();
            drop(c);
            ex.step(rec);
            vixDiskLib::chain::commit::commit(&dir.join("child.vmdk"), &mut |_| {}).unwrap();
            ex.step(rec);
            ex
        },
        |s, ex| {
            let child = s.dir.join("child.vmdk");
            let leaf = if child.exists() && (s.phase >= 2 || open_or_repair(&child).is_ok()) {
                "child.vmdk"
            } else {
                "base.vmdk"
            };
            if s.phase == 4 && leaf == "child.vmdk" {
                return Err("Commit returned but the child is still there".into());
            }
            let d = open_or_repair(&s.dir.join(leaf))?;
            ex.check(&d, s.phase)?;
            ids_answered(&d, &ids.lock().unwrap(), s.phase).map_err(|e| format!("{leaf}: {e}"))
        },
    );
}

/// Turning change tracking on: the tracking file appears complete, then the descriptor
/// names it.
#[test]
fn set_change_tracking() {
    let cap = 4 * MIB;
    run(
        "SetChangeTracking",
        |dir| disk_with_data(dir, "d.vmdk", DiskKind::MonolithicFlat, cap),
        |dir, rec| {
            let mut ex = expect_data(cap, &[]);
            vixDiskLib::chain::tracking::set_change_tracking(&dir.join("d.vmdk"), true).unwrap();
            ex.step(rec);
            ex
        },
        |s, ex| {
            disk_holds(s, "d.vmdk", ex)?;
            let d = open_or_repair(&s.dir.join("d.vmdk"))?;
            match d.change_id() {
                Ok(_) => Ok(()),
                Err(e) if s.phase == 0 => {
                    let _ = e;
                    Ok(())
                }
                Err(e) => Err(format!("tracking turned on but no change id: {e}")),
            }
        },
    );
}

/// Rename of a tracked disk: the tracking file moves with it. Under whichever name holds the
/// disk, an id issued before must be answered with a superset or refused.
fn tracked_rename(kind: DiskKind, name: &str) {
    let cap = 4 * MIB;
    use std::sync::Mutex;
    let ids: Mutex<Vec<(usize, String, Vec<u8>)>> = Mutex::new(Vec::new());
    run(
        name,
        |dir| {
            disk_with_data(dir, "a.vmdk", kind, cap);
            vixDiskLib::chain::tracking::set_change_tracking(&dir.join("a.vmdk"), true).unwrap();
            let d = Disk::open(&dir.join("a.vmdk"), OpenOptions::default()).unwrap();
            d.change_id().unwrap();
            d.write(900, &pattern(7, 16)).unwrap();
            d.close().unwrap();
        },
        |dir, rec| {
            let mut ex = expect_data(cap, &[(900, pattern(7, 16))]);
            let d = Disk::open(&dir.join("a.vmdk"), OpenOptions::default()).unwrap();
            let id = d.change_id().unwrap();
            d.close().unwrap();
            drop(d);
            ids.lock().unwrap().push((0, id, ex.cur.clone()));
            vixDiskLib::chain::files::rename(&dir.join("a.vmdk"), &dir.join("b.vmdk")).unwrap();
            ex.step(rec);
            ex
        },
        |s, ex| {
            let (a, b) = (s.dir.join("a.vmdk"), s.dir.join("b.vmdk"));
            let name = if s.phase == 1 || !a.exists() || open_or_repair(&b).is_ok() {
                "b.vmdk"
            } else {
                "a.vmdk"
            };
            disk_holds(s, name, ex)?;
            let d = open_or_repair(&s.dir.join(name))?;
            ids_answered(&d, &ids.lock().unwrap(), s.phase).map_err(|e| format!("{name}: {e}"))
        },
    );
}

#[test]
fn rename_tracked_monolithic_sparse() {
    tracked_rename(
        DiskKind::MonolithicSparse,
        "Rename tracked monolithicSparse",
    );
}

#[test]
fn rename_tracked_monolithic_flat() {
    tracked_rename(DiskKind::MonolithicFlat, "Rename tracked monolithicFlat");
}
