//! Change tracking for hosted disks, model-based: random writes, snapshots (CreateChild),
//! commits, grows and reopens; every answer must cover every changed grain (never a miss) and
//! stay inside the grains written since the id (granularity 64 KiB). A real process is killed
//! with SIGKILL mid-writes: the ids issued before stay answerable and correct.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use common::*;
use proptest::prelude::*;
use vixDiskLib::chain::commit::commit;
use vixDiskLib::chain::tracking::set_change_tracking;
use vixDiskLib::error::Error;
use vixDiskLib::vmdk::create::DiskKind;

/// One id and what the disk held then, plus the grains written since.
struct Issued {
    id: String,
    content: Vec<u8>,
    written_since: BTreeSet<u64>,
    /// Snapshots taken since: a history remembers 6 ancestor branches, so an id from before
    /// more forks than that may be refused (never answered wrongly).
    forks_since: usize,
}

fn check_all(disk: &vixDiskLib::chain::Disk, issued: &[Issued], now: &[u8]) {
    for (i, is) in issued.iter().enumerate() {
        let runs = match disk.changed_areas(&is.id, 0, disk.capacity()) {
            Err(Error::ChangeIdUnknown(_)) if is.forks_since >= 6 => continue,
            r => r.unwrap(),
        };
        let answer = grains_of(&runs);
        let truth = differing(&is.content, now);
        assert!(
            truth.is_subset(&answer),
            "id {i}: missed {:?}",
            truth.difference(&answer)
        );
        assert!(
            answer.is_subset(&is.written_since),
            "id {i}: extra {:?}",
            answer.difference(&is.written_since)
        );
    }
}

#[derive(Debug, Clone)]
enum Op {
    Write {
        grain: u64,
        sectors: u64,
        byte: u8,
    },
    Id,
    Reopen,
    Snapshot,
    Commit,
    /// Grow by 4 MiB (only a chain of one link: a commit needs equal capacities).
    Grow,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u64..64, 1u64..300, any::<u8>()).prop_map(|(grain, sectors, byte)| Op::Write { grain, sectors, byte }),
        2 => Just(Op::Id),
        1 => Just(Op::Reopen),
        1 => Just(Op::Snapshot),
        1 => Just(Op::Commit),
        1 => Just(Op::Grow),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    #[test]
    fn answers_cover_every_change_and_stay_within_written_grains(ops in proptest::collection::vec(op(), 1..40)) {
        let dir = tempfile::tempdir().unwrap();
        let base = p(dir.path(), "base.vmdk");
        create_sparse(&base, 4); // 64 grains
        set_change_tracking(&base, true).unwrap();
        let mut leaf = base.clone();
        let mut stack = vec![base.clone()];
        let mut disk = open_rw(&leaf);
        let mut model = vec![0u8; 4 << 20];
        let mut issued: Vec<Issued> = Vec::new();
        issued.push(Issued { id: disk.change_id().unwrap(), content: model.clone(), written_since: BTreeSet::new(), forks_since: 0 });
        for (n, op) in ops.into_iter().enumerate() {
            match op {
                Op::Write { grain, sectors, byte } => {
                    let start = grain * 128 + (n as u64 % 7);
                    let sectors = sectors.min(8192 - start);
                    write_pattern(&disk, &mut model, start as usize * 512, sectors as usize * 512, byte);
                    let touched: BTreeSet<u64> = (start / 128..(start + sectors).div_ceil(128)).collect();
                    for is in &mut issued {
                        is.written_since.extend(touched.iter().copied());
                    }
                }
                Op::Id => {
                    let id = disk.change_id().unwrap();
                    if let Some(last) = issued.last()
                        && last.content == model
                        && last.written_since.is_empty()
                    {
                        prop_assert_eq!(&id, &last.id, "no write, same id");
                    }
                    issued.push(Issued { id, content: model.clone(), written_since: BTreeSet::new(), forks_since: 0 });
                }
                Op::Reopen => {
                    disk.close().unwrap();
                    drop(disk);
                    disk = open_rw(&leaf);
                }
                Op::Snapshot => {
                    let child = p(dir.path(), &format!("c{n}.vmdk"));
                    disk.create_child(&child, DiskKind::MonolithicSparse).unwrap();
                    for is in &mut issued {
                        is.forks_since += 1;
                    }
                    disk.close().unwrap();
                    drop(disk);
                    leaf = child.clone();
                    stack.push(child);
                    disk = open_rw(&leaf);
                }
                Op::Commit if stack.len() > 1 => {
                    disk.close().unwrap();
                    drop(disk);
                    commit(&leaf, &mut |_| {}).unwrap();
                    stack.pop();
                    leaf = stack.last().unwrap().clone();
                    disk = open_rw(&leaf);
                }
                Op::Commit => {}
                Op::Grow if stack.len() == 1 && model.len() < 16 << 20 => {
                    disk.close().unwrap();
                    drop(disk);
                    let old = model.len() as u64 / 512;
                    let new = old + 8192;
                    vixDiskLib::vmdk::grow::grow(&leaf, new, false).unwrap();
                    vixDiskLib::chain::tracking::grow_history(&leaf).unwrap();
                    model.resize(new as usize * 512, 0);
                    // The grown part counts as changed since every earlier id.
                    for is in &mut issued {
                        is.written_since.extend(old / 128..new / 128);
                    }
                    disk = open_rw(&leaf);
                }
                Op::Grow => {}
            }
            check_all(&disk, &issued, &model);
        }
        prop_assert_eq!(read_all(&disk), model);
    }
}

#[test]
fn unanswerable_ids_are_refused_with_a_full_backup_hint() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (p(dir.path(), "a.vmdk"), p(dir.path(), "b.vmdk"));
    create_sparse(&a, 4);
    create_sparse(&b, 4);
    set_change_tracking(&a, true).unwrap();
    set_change_tracking(&b, true).unwrap();
    let da = open_rw(&a);
    let id_a = da.change_id().unwrap();
    da.write(0, &[1u8; 512]).unwrap();
    let id_a2 = da.change_id().unwrap();
    assert_ne!(id_a, id_a2);
    assert_eq!(da.change_id().unwrap(), id_a2, "no write: same id");
    let db = open_rw(&b);
    // Another disk's id; an id from the future; garbage.
    assert!(matches!(
        db.changed_areas(&id_a, 0, 8192),
        Err(Error::ChangeIdUnknown(_))
    ));
    let (uuid, seq) = id_a2.rsplit_once('/').unwrap();
    let future = format!("{uuid}/{}", seq.parse::<u64>().unwrap() + 5);
    assert!(matches!(
        da.changed_areas(&future, 0, 8192),
        Err(Error::ChangeIdUnknown(_))
    ));
    assert!(matches!(
        da.changed_areas("nonsense", 0, 8192),
        Err(Error::InvalidArg(_))
    ));
    assert!(matches!(
        da.changed_areas(&id_a, 8192, 8192),
        Err(Error::InvalidArg(_))
    ));
    da.close().unwrap();
    drop(da);
    // Turned off and on: a new history.
    set_change_tracking(&a, false).unwrap();
    assert!(!Path::new(&format!("{}.vdltrack", a.display())).exists());
    set_change_tracking(&a, true).unwrap();
    let da = open_rw(&a);
    assert!(matches!(
        da.changed_areas(&id_a2, 0, 8192),
        Err(Error::ChangeIdUnknown(_))
    ));
    da.close().unwrap();
    drop(da);
    // Written by a program that does not track (qemu-io): older ids cannot be answered.
    let da = open_rw(&a);
    let before = da.change_id().unwrap();
    da.close().unwrap();
    drop(da);
    if have_qemu() {
        let (code, out) = sh(&format!(
            "qemu-io -f vmdk -c 'write -P 7 0 4k' '{}'",
            a.display()
        ));
        assert_eq!(code, 0, "{out}");
        let da = open_rw(&a);
        assert!(matches!(
            da.changed_areas(&before, 0, 8192),
            Err(Error::ChangeIdUnknown(_))
        ));
        // New ids work again.
        let fresh = da.change_id().unwrap();
        da.write(128, &[2u8; 512]).unwrap();
        assert_eq!(
            grains_of(&da.changed_areas(&fresh, 0, 8192).unwrap()),
            BTreeSet::from([1])
        );
    }
    // "*" answers the allocated areas; an untracked disk refuses ids.
    let c = p(dir.path(), "c.vmdk");
    create_sparse(&c, 4);
    let dc = open_rw(&c);
    dc.write(300, &[3u8; 512]).unwrap();
    assert_eq!(dc.changed_areas("*", 0, 8192).unwrap(), vec![(256, 128)]);
    assert!(matches!(dc.change_id(), Err(Error::NotTracked(_))));
}

/// A closed 4 MiB tracked disk `a.vmdk` with grain 0 written, and the id taken after it.
fn tracked_disk_with_an_id(dir: &Path) -> (std::path::PathBuf, String) {
    let a = p(dir, "a.vmdk");
    create_sparse(&a, 4);
    set_change_tracking(&a, true).unwrap();
    let d = open_rw(&a);
    d.write(0, &[1u8; 512]).unwrap();
    let id = d.change_id().unwrap();
    d.close().unwrap();
    (a, id)
}

#[test]
fn grow_and_rename_keep_the_history() {
    let dir = tempfile::tempdir().unwrap();
    let (a, id) = tracked_disk_with_an_id(dir.path());
    vixDiskLib::vmdk::grow::grow(&a, 16384, false).unwrap();
    vixDiskLib::chain::tracking::grow_history(&a).unwrap();
    let b = p(dir.path(), "b.vmdk");
    vixDiskLib::chain::files::rename(&a, &b).unwrap();
    assert!(Path::new(&format!("{}.vdltrack", b.display())).exists());
    let d = open_rw(&b);
    d.write(128, &[2u8; 512]).unwrap();
    let g = grains_of(&d.changed_areas(&id, 0, 16384).unwrap());
    assert!(g.contains(&1) && !g.contains(&0), "{g:?}");
    assert!(
        (64..128).all(|x| g.contains(&x)),
        "the grown part counts as changed"
    );
}

/// Writes random grains forever (until killed), flushing now and then.
#[test]
#[ignore = "helper process for the kill test"]
fn tracking_kill_worker() {
    let Ok(path) = std::env::var("VDL_TRACK_DISK") else {
        return;
    };
    let d = open_rw(Path::new(&path));
    let mut x: u64 = std::process::id() as u64 | 1;
    let mut n = 0u64;
    loop {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let sector = x % (8192 - 64);
        d.write(sector, &vec![(x >> 56) as u8 | 1; 64 * 512])
            .unwrap();
        n += 1;
        if n == 1
            && let Ok(started) = std::env::var("VDL_TRACK_STARTED")
        {
            std::fs::write(started, b"").unwrap();
        }
        if x.is_multiple_of(17) {
            d.flush().unwrap();
        }
    }
}

#[test]
fn ids_survive_kill_9_mid_writes() {
    let dir = tempfile::tempdir().unwrap();
    let a = p(dir.path(), "a.vmdk");
    create_sparse(&a, 4);
    set_change_tracking(&a, true).unwrap();
    for round in 0..6 {
        let d = open_rw(&a);
        let id = d.change_id().unwrap();
        let before = read_all(&d);
        d.close().unwrap();
        drop(d);
        let started = dir.path().join("started");
        let _ = std::fs::remove_file(&started);
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--ignored", "--exact", "tracking_kill_worker"])
            .env("VDL_TRACK_DISK", &a)
            .env("VDL_TRACK_STARTED", &started)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // The kill lands a while after the first write, however loaded the machine is.
        wait_for_file(&started, 5);
        std::thread::sleep(std::time::Duration::from_millis(60 + 40 * round));
        child.kill().unwrap();
        child.wait().unwrap();
        let d = open_rw(&a);
        let now = read_all(&d);
        let answer = grains_of(&d.changed_areas(&id, 0, 8192).unwrap());
        let truth = differing(&before, &now);
        assert!(
            truth.is_subset(&answer),
            "round {round}: missed {:?}",
            truth.difference(&answer)
        );
        assert!(!truth.is_empty(), "round {round}: the worker wrote nothing");
        assert_ne!(d.change_id().unwrap(), id, "content changed: a new id");
        d.close().unwrap();
        assert!(qemu_check(&a));
    }
}

#[test]
fn shrink_defragment_clone_and_attach_follow_the_history() {
    let dir = tempfile::tempdir().unwrap();
    let a = p(dir.path(), "a.vmdk");
    create_sparse(&a, 4);
    set_change_tracking(&a, true).unwrap();
    let d = open_rw(&a);
    d.write(0, &[1u8; 512]).unwrap();
    d.write(2 * 128, &[2u8; 512]).unwrap();
    let id = d.change_id().unwrap();
    d.write(5 * 128, &[5u8; 512]).unwrap();
    d.write(7 * 128, &[0u8; 512]).unwrap(); // a zero grain Shrink drops: still written since
    d.close().unwrap();
    drop(d);
    let since_id = BTreeSet::from([5, 7]);
    // Shrink and Defragment keep content and CID: the id stays answerable, same answer.
    for drop_zeros in [true, false] {
        let d = open_rw(&a);
        d.compact(drop_zeros).unwrap();
        assert_eq!(grains_of(&d.changed_areas(&id, 0, 8192).unwrap()), since_id);
        d.close().unwrap();
        drop(d);
        let d = open_rw(&a);
        assert_eq!(grains_of(&d.changed_areas(&id, 0, 8192).unwrap()), since_id);
        d.close().unwrap();
    }
    assert!(qemu_check(&a));
    // Clone starts a new history: the copy tracks changes, and the source's ids are not its.
    let c = p(dir.path(), "clone.vmdk");
    let spec = vixDiskLib::vmdk::create::CreateSpec {
        kind: DiskKind::MonolithicSparse,
        capacity: 8192,
        adapter: vixDiskLib::vmdk::geometry::Adapter::LsiLogic,
        hw_version: 7,
    };
    open_ro(&a)
        .clone_to(&c, &spec, false, 1, &mut |_| {})
        .unwrap();
    assert!(Path::new(&format!("{}.vdltrack", c.display())).exists());
    let dc = open_rw(&c);
    assert!(matches!(
        dc.changed_areas(&id, 0, 8192),
        Err(Error::ChangeIdUnknown(_))
    ));
    let fresh = dc.change_id().unwrap();
    dc.write(4 * 128, &[4u8; 512]).unwrap();
    assert_eq!(
        grains_of(&dc.changed_areas(&fresh, 0, 8192).unwrap()),
        BTreeSet::from([4])
    );
    dc.close().unwrap();
    drop(dc);
    // An untracked source gives an untracked clone.
    let plain = p(dir.path(), "plain.vmdk");
    create_sparse(&plain, 4);
    let c2 = p(dir.path(), "clone2.vmdk");
    open_ro(&plain)
        .clone_to(&c2, &spec, false, 1, &mut |_| {})
        .unwrap();
    assert!(matches!(
        open_rw(&c2).change_id(),
        Err(Error::NotTracked(_))
    ));
    // Attach: a tracked child sees the new parent's data as changed where it has none itself.
    let (parent, child) = (p(dir.path(), "parent.vmdk"), p(dir.path(), "child.vmdk"));
    create_sparse(&parent, 4);
    create_sparse(&child, 4);
    let pd = open_rw(&parent);
    pd.write(3 * 128, &[3u8; 512]).unwrap();
    pd.write(9 * 128, &[9u8; 512]).unwrap();
    pd.close().unwrap();
    drop(pd);
    set_change_tracking(&child, true).unwrap();
    let cd = open_single(&child, true);
    cd.write(9 * 128, &[4u8; 512]).unwrap();
    let before = cd.change_id().unwrap();
    let pd = open_rw(&parent);
    pd.attach_under(&cd).unwrap();
    assert_eq!(
        grains_of(&cd.changed_areas(&before, 0, 8192).unwrap()),
        BTreeSet::from([3]),
        "the parent's grain 3 shows through; the child's own grain 9 hides the parent's"
    );
}

#[test]
fn grow_settles_a_crashed_session_and_a_foreign_write_first() {
    use vixDiskLib::vmdk::track::TrackFile;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.vdltrack");
    // A session that wrote grain 5 and died before Flush: only its intent is durable.
    TrackFile::create(&path, 1024, [1; 16], 7).unwrap();
    let mut t = TrackFile::open(&path, true, 1024, 7).unwrap();
    let id = t.current_id().unwrap();
    t.before_write(5 * 128, 128, 7).unwrap();
    drop(t); // no close: as after kill -9
    TrackFile::grow(&path, 2048, 7).unwrap();
    let mut t = TrackFile::open(&path, true, 2048, 7).unwrap();
    let runs = t.changed_since(id.seq, 0, 2048).unwrap();
    assert!(
        runs.iter().any(|&(s, n)| s <= 5 && 5 < s + n),
        "the crashed write is still reported after Grow: {runs:?}"
    );
    let id2 = t.current_id().unwrap();
    t.close(7).unwrap();
    // Another program wrote the disk (CID 7 -> 8) before the Grow: older ids are refused.
    TrackFile::grow(&path, 4096, 8).unwrap();
    let mut t = TrackFile::open(&path, true, 4096, 8).unwrap();
    assert!(matches!(t.check_id(&id2), Err(Error::ChangeIdUnknown(_))));
}

#[test]
fn a_grow_killed_before_its_history_update_is_finished_by_the_next_open() {
    let dir = tempfile::tempdir().unwrap();
    let (a, id) = tracked_disk_with_an_id(dir.path());
    // The disk grew; the process died before `grow_history`.
    vixDiskLib::vmdk::grow::grow(&a, 16384, false).unwrap();
    let d = open_rw(&a);
    assert!(d.is_tracked());
    d.write(128, &[2u8; 512]).unwrap();
    let g = grains_of(&d.changed_areas(&id, 0, 16384).unwrap());
    assert!(g.contains(&1) && !g.contains(&0), "{g:?}");
    assert!(
        (64..128).all(|x| g.contains(&x)),
        "the grown part counts as changed"
    );
}
