//! One change id names one content (issue 15): the four silent wrong answers seen with the
//! seeds' backup algorithm, each as a regression test. An answer here is correct when it
//! covers every grain that differs between the id's content and now, or when the id is
//! refused (VIX_E_OBJECT_NOT_FOUND, "do a full backup"); `[]` for changed content is the bug.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use common::*;
use vixDiskLib::chain::Disk;
use vixDiskLib::chain::tracking::set_change_tracking;
use vixDiskLib::error::Error;
use vixDiskLib::vmdk::create::DiskKind;

/// The id `id` of content `then`, asked on `disk` whose content is `now`: refused, or an
/// answer covering every differing grain.
fn refused_or_covers(disk: &Disk, id: &str, then: &[u8], now: &[u8]) -> Option<BTreeSet<u64>> {
    match disk.changed_areas(id, 0, disk.capacity()) {
        Err(Error::ChangeIdUnknown(why)) => {
            assert!(why.contains("do a full backup"), "{why}");
            None
        }
        Err(e) => panic!("id {id}: unexpected error {e}"),
        Ok(runs) => {
            let answer = grains_of(&runs);
            let truth = differing(then, now);
            assert!(
                truth.is_subset(&answer),
                "id {id}: missed grains {:?}",
                truth.difference(&answer).collect::<Vec<_>>()
            );
            Some(answer)
        }
    }
}

fn tracked(dir: &Path, name: &str, mib: u64) -> std::path::PathBuf {
    let path = p(dir, name);
    create_sparse(&path, mib);
    set_change_tracking(&path, true).unwrap();
    path
}

/// Case 1: the frozen parent's id (taken after CreateChild) was issued again by the child
/// for its later content, and the child answered it with nothing.
#[test]
fn a_snapshot_id_is_never_issued_again_for_other_content() {
    let dir = tempfile::tempdir().unwrap();
    let base = tracked(dir.path(), "base.vmdk", 4);
    let child = p(dir.path(), "child.vmdk");
    let h = open_rw(&base);
    h.write(0, &[1u8; 4096]).unwrap();
    h.create_child(&child, DiskKind::MonolithicSparse).unwrap();
    let snap_id = h.change_id().unwrap();
    let frozen = read_all(&h);
    h.close().unwrap();
    drop(h);
    let c = open_rw(&child);
    assert_eq!(read_all(&c), frozen);
    c.write(4096, &[2u8; CHANGE_GRAIN]).unwrap();
    let child_id = c.change_id().unwrap();
    assert_ne!(
        child_id, snap_id,
        "the child's new content got the snapshot's id"
    );
    let answer = refused_or_covers(&c, &snap_id, &frozen, &read_all(&c))
        .expect("an id from before the fork stays answerable on the child");
    assert_eq!(answer, BTreeSet::from([32]), "exactly the grain written");
    // The frozen parent still answers its own id with nothing, and gives the same id again,
    // also read-only.
    c.close().unwrap();
    drop(c);
    let ro = open_ro(&base);
    assert_eq!(ro.change_id().unwrap(), snap_id);
    assert!(
        refused_or_covers(&ro, &snap_id, &frozen, &frozen)
            .unwrap()
            .is_empty()
    );
}

/// Case 2: two children of one frozen base shared one history and numbered their ids
/// independently, so one sibling's id was answered by the other as if it were its own.
#[test]
fn sibling_snapshots_never_answer_each_others_ids() {
    let dir = tempfile::tempdir().unwrap();
    let base = tracked(dir.path(), "base.vmdk", 4);
    let d = open_rw(&base);
    d.write(0, &[1u8; 512]).unwrap();
    let base_id = d.change_id().unwrap();
    d.write(128 * 9, &[9u8; 512]).unwrap();
    d.close().unwrap();
    drop(d);
    let (c1, c2) = (p(dir.path(), "c1.vmdk"), p(dir.path(), "c2.vmdk"));
    for c in [&c1, &c2] {
        let b = open_rw(&base);
        b.create_child(c, DiskKind::MonolithicSparse).unwrap();
        b.close().unwrap();
    }
    let base_then = {
        let b = open_ro(&base);
        let mut model = read_all(&b);
        model[128 * 9 * 512..128 * 9 * 512 + 512].fill(0);
        model
    };
    let d1 = open_rw(&c1);
    d1.write(3 * 128, &[3u8; 512]).unwrap();
    let id1 = d1.change_id().unwrap();
    let c1_then = read_all(&d1);
    d1.close().unwrap();
    drop(d1);
    let d2 = open_rw(&c2);
    d2.write(5 * 128, &[5u8; 512]).unwrap();
    let id2 = d2.change_id().unwrap();
    let c2_now = read_all(&d2);
    assert_ne!(
        id1, id2,
        "siblings issued the same id for different contents"
    );
    assert!(
        refused_or_covers(&d2, &id1, &c1_then, &c2_now).is_none(),
        "a sibling's id is refused"
    );
    // An id from before the fork is answered on both siblings, correctly.
    let on_c2 = refused_or_covers(&d2, &base_id, &base_then, &c2_now).unwrap();
    assert_eq!(on_c2, BTreeSet::from([5, 9]));
    d2.close().unwrap();
    drop(d2);
    let d1 = open_ro(&c1);
    assert!(refused_or_covers(&d1, &id2, &c2_now, &c1_then).is_none());
    let on_c1 = refused_or_covers(&d1, &base_id, &base_then, &c1_then).unwrap();
    assert_eq!(on_c1, BTreeSet::from([3, 9]));
}

/// Writes into the first 4 MiB until killed; creates `$VDL_IDS_STARTED` once a write and a
/// flush are done (so the kill lands inside an open session).
#[test]
#[ignore = "helper process for the crash test"]
fn change_ids_kill_worker() {
    let Ok(path) = std::env::var("VDL_IDS_DISK") else {
        return;
    };
    let d = open_rw(Path::new(&path));
    let mut x: u64 = u64::from(std::process::id()) | 1;
    let mut n = 0u64;
    loop {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        d.write(x % (8192 - 64), &vec![(x >> 56) as u8 | 1; 64 * 512])
            .unwrap();
        n += 1;
        if n == 4 {
            d.flush().unwrap();
            d.write(x % 64, &[0xee; 512]).unwrap();
            std::fs::write(std::env::var("VDL_IDS_STARTED").unwrap(), b"").unwrap();
        }
    }
}

/// Case 3: a writer killed with its session open, then another program writes the closed
/// disk far from the crashed session's regions: the next answer missed that write.
#[test]
fn a_foreign_write_after_a_crashed_session_is_not_missed() {
    if !have_qemu() {
        eprintln!("qemu-io not installed: skipped");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let disk = tracked(dir.path(), "a.vmdk", 1024);
    let d = open_rw(&disk);
    d.write(0, &[1u8; 512]).unwrap();
    let id = d.change_id().unwrap();
    let mut before = vec![0u8; 4 << 20];
    d.read(0, &mut before).unwrap();
    d.close().unwrap();
    drop(d);
    let started = dir.path().join("started");
    let mut worker = Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", "change_ids_kill_worker"])
        .env("VDL_IDS_DISK", &disk)
        .env("VDL_IDS_STARTED", &started)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for_file(&started, 5);
    worker.kill().unwrap();
    worker.wait().unwrap();
    assert!(started.exists(), "the worker never wrote");
    // Another program writes 64 KiB at 700 MiB while no session of ours is open.
    let (code, out) = sh(&format!(
        "qemu-io -f vmdk -c 'write -P 0x5a 700M 64k' '{}'",
        disk.display()
    ));
    assert_eq!(code, 0, "{out}");
    let d = open_rw(&disk);
    let mut now = vec![0u8; 4 << 20];
    d.read(0, &mut now).unwrap();
    match d.changed_areas(&id, 0, d.capacity()) {
        Err(Error::ChangeIdUnknown(why)) => assert!(why.contains("do a full backup")),
        Err(e) => panic!("unexpected error {e}"),
        Ok(runs) => {
            let answer = grains_of(&runs);
            assert!(
                answer.contains(&(700 * 16)),
                "the foreign write at 700 MiB is missed"
            );
            assert!(differing(&before, &now).is_subset(&answer));
        }
    }
    // New ids work again and are exact.
    let fresh = d.change_id().unwrap();
    d.write(128, &[2u8; 512]).unwrap();
    assert_eq!(
        grains_of(&d.changed_areas(&fresh, 0, d.capacity()).unwrap()),
        BTreeSet::from([1])
    );
}

/// Case 4: the seeds' algorithm — snapshot, open the frozen disk read-only, GetChangeId —
/// failed with VIX_E_FILE_READ_ONLY whenever something was written since the last id.
#[test]
fn read_only_handles_issue_ids_and_readers_agree() {
    let dir = tempfile::tempdir().unwrap();
    // After CreateChild: the frozen parent opened read-only.
    let base = tracked(dir.path(), "base.vmdk", 4);
    let h = open_rw(&base);
    let first = h.change_id().unwrap();
    h.write(0, &[1u8; 512]).unwrap();
    h.create_child(&p(dir.path(), "snap.vmdk"), DiskKind::MonolithicSparse)
        .unwrap();
    h.close().unwrap();
    drop(h);
    let ro = open_ro(&base);
    let snap_id = ro
        .change_id()
        .expect("a read-only handle of the snapshot gives its id");
    assert_ne!(snap_id, first);
    assert_eq!(
        grains_of(&ro.changed_areas(&first, 0, 8192).unwrap()),
        BTreeSet::from([0])
    );
    drop(ro);
    // Without a snapshot: written and closed, then two readers at once get one id.
    let other = tracked(dir.path(), "other.vmdk", 4);
    let w = open_rw(&other);
    let before = w.change_id().unwrap();
    let then = read_all(&w);
    w.write(7 * 128, &[7u8; 512]).unwrap();
    w.close().unwrap();
    drop(w);
    let (r1, r2) = (open_ro(&other), open_ro(&other));
    let id1 = r1.change_id().unwrap();
    let id2 = r2.change_id().unwrap();
    assert_eq!(id1, id2, "readers of one content get one id");
    assert_ne!(id1, before);
    assert_eq!(r1.change_id().unwrap(), id1);
    assert_eq!(
        grains_of(&r2.changed_areas(&before, 0, 8192).unwrap()),
        BTreeSet::from([7])
    );
    let at_id1 = read_all(&r1);
    assert_ne!(at_id1, then);
    drop((r1, r2));
    // The id stays the content's: the next writer's content gets another one, and the
    // reader's id is answered with what the writer changed.
    let w = open_rw(&other);
    assert_eq!(w.change_id().unwrap(), id1);
    w.write(2 * 128, &[2u8; 512]).unwrap();
    assert_ne!(w.change_id().unwrap(), id1);
    let answer = refused_or_covers(&w, &id1, &at_id1, &read_all(&w)).unwrap();
    assert_eq!(answer, BTreeSet::from([2]));
}

/// A copy of a tracked disk (its directory copied, or restored from a backup) must not go on
/// issuing the original's ids for its own, different contents.
#[test]
fn a_copied_disk_never_shares_ids_with_its_original() {
    let dir = tempfile::tempdir().unwrap();
    let a = tracked(dir.path(), "a.vmdk", 4);
    let d = open_rw(&a);
    d.write(0, &[1u8; 512]).unwrap();
    let id0 = d.change_id().unwrap();
    let at_id0 = read_all(&d);
    d.write(128, &[1u8; 512]).unwrap(); // written after id0, before the copy: no id yet
    d.close().unwrap();
    drop(d);
    let copy_dir = dir.path().join("copy");
    std::fs::create_dir(&copy_dir).unwrap();
    for f in ["a.vmdk", "a.vmdk.vdltrack"] {
        std::fs::copy(dir.path().join(f), copy_dir.join(f)).unwrap();
    }
    let b = copy_dir.join("a.vmdk");
    let da = open_rw(&a);
    da.write(2 * 128, &[2u8; 512]).unwrap();
    let id_a = da.change_id().unwrap();
    let a_now = read_all(&da);
    da.close().unwrap();
    drop(da);
    let db = open_rw(&b);
    db.write(3 * 128, &[3u8; 512]).unwrap();
    let id_b = db.change_id().unwrap();
    let b_now = read_all(&db);
    assert_ne!(
        id_a, id_b,
        "the copy issued the original's id for other content"
    );
    assert!(refused_or_covers(&db, &id_a, &a_now, &b_now).is_none());
    let on_b = refused_or_covers(&db, &id0, &at_id0, &b_now).expect("ids from before the copy");
    assert_eq!(on_b, BTreeSet::from([1, 3]));
    db.close().unwrap();
    drop(db);
    let da = open_ro(&a);
    assert!(refused_or_covers(&da, &id_b, &b_now, &a_now).is_none());
    assert_eq!(da.change_id().unwrap(), id_a);
}

/// The seeds' cycle (snapshot, back up the frozen disk, the VM writes to the snapshot,
/// Commit) repeated more often than a history remembers ancestor branches: the full
/// backup's id stays answerable (a differential since it), exactly.
#[test]
fn many_backup_cycles_keep_the_full_backups_id_answerable() {
    let dir = tempfile::tempdir().unwrap();
    let base = tracked(dir.path(), "base.vmdk", 4);
    let mut full_id = String::new();
    let mut written = BTreeSet::new();
    for cycle in 0..10u64 {
        let snap = p(dir.path(), &format!("snap{cycle}.vmdk"));
        let h = open_rw(&base);
        h.create_child(&snap, DiskKind::MonolithicSparse).unwrap();
        h.close().unwrap();
        drop(h);
        let frozen = open_ro(&base);
        let id = frozen.change_id().unwrap();
        if cycle == 0 {
            full_id = id;
        } else {
            let answer = grains_of(&frozen.changed_areas(&full_id, 0, 8192).unwrap());
            assert_eq!(answer, written, "cycle {cycle}");
        }
        drop(frozen);
        let vm = open_rw(&snap);
        vm.write(cycle * 3 * 128, &[cycle as u8 + 1; 512]).unwrap();
        written.insert(cycle * 3);
        vm.close().unwrap();
        drop(vm);
        vixDiskLib::chain::commit::commit(&snap, &mut |_| {}).unwrap();
    }
}
