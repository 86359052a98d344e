//! Private by default (issue 19): every file the engine creates under a temporary or new name
//! is created with O_EXCL, so a symlink planted at that name is never written through, and
//! scratch files holding disk data outside the disk's directory are 0600. Each test plants a
//! symlink at the name an operation uses, runs the operation, and requires the symlink's
//! target to be untouched and the operation to succeed safely or fail cleanly.
//! docs/decisions.md ("Files we create or replace") lists every such place.

mod common;

use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use common::*;
use vixDiskLib::chain::files::rename;
use vixDiskLib::chain::tracking::{grow_history, set_change_tracking};
use vixDiskLib::chain::{Disk, OpenOptions};
use vixDiskLib::vmdk::check::{Outcome, check_disk};
use vixDiskLib::vmdk::create::{CreateSpec, DiskKind, create, create_new_private_file};
use vixDiskLib::vmdk::geometry::Adapter;
use vixDiskLib::vmdk::grow::grow;

const VICTIM: &[u8] = b"precious bytes that belong to somebody else\n";

/// A file outside the disk's directory that a planted symlink points at.
struct Victim {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl Victim {
    fn new() -> Victim {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("victim");
        std::fs::write(&path, VICTIM).unwrap();
        Victim { _dir: dir, path }
    }

    /// Plants a symlink to the victim at `at`.
    fn plant(&self, at: &Path) {
        symlink(&self.path, at).unwrap();
    }

    fn assert_untouched(&self, what: &str) {
        let meta = std::fs::symlink_metadata(&self.path).unwrap();
        assert!(meta.file_type().is_file(), "{what}: victim replaced");
        assert_eq!(
            std::fs::read(&self.path).unwrap(),
            VICTIM,
            "{what}: wrote through the symlink"
        );
    }
}

fn spec(kind: DiskKind, mib: u64) -> CreateSpec {
    CreateSpec {
        kind,
        capacity: mib * 2048,
        adapter: Adapter::LsiLogic,
        hw_version: 7,
    }
}

/// `.<name>.tmp-new`, the temporary name of new files (`vmdk::atomic::temp_name`).
fn temp_new(path: &Path) -> PathBuf {
    let name = path.file_name().unwrap().to_string_lossy();
    path.with_file_name(format!(".{name}.tmp-new"))
}

fn writable(path: &Path) -> Disk {
    Disk::open(path, OpenOptions::default()).unwrap()
}

#[test]
fn create_and_clone_never_write_through_a_symlink_at_their_temporary_name() {
    let dir = tempfile::tempdir().unwrap();
    let victim = Victim::new();
    for (i, kind) in [
        DiskKind::MonolithicSparse,
        DiskKind::MonolithicFlat,
        DiskKind::SplitSparse,
        DiskKind::StreamOptimized,
    ]
    .into_iter()
    .enumerate()
    {
        let path = p(dir.path(), &format!("c{i}.vmdk"));
        victim.plant(&temp_new(&path));
        create(&path, &spec(kind, 4), &mut |_| {}).unwrap();
        victim.assert_untouched(&format!("create {kind:?}"));
        assert!(std::fs::symlink_metadata(temp_new(&path)).is_err());
        let src = writable(&path);
        let dst = p(dir.path(), &format!("k{i}.vmdk"));
        victim.plant(&temp_new(&dst));
        src.clone_to(&dst, &spec(kind, 4), false, 1, &mut |_| {})
            .unwrap();
        drop(src);
        victim.assert_untouched(&format!("clone {kind:?}"));
        if have_qemu() {
            assert!(qemu_check(&dst));
        }
    }
}

#[test]
fn a_symlinked_temporary_descriptor_never_makes_create_delete_what_it_names() {
    // A leftover temporary descriptor names the extents an interrupted Create made, and the
    // next Create removes them. A symlink planted there must not be read as such a list.
    let dir = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let bystander = p(dir.path(), "bystander-flat.vmdk");
    std::fs::write(&bystander, b"someone's data").unwrap();
    let fake = p(elsewhere.path(), "fake.vmdk");
    std::fs::write(
        &fake,
        "# Disk DescriptorFile\nversion=1\nCID=1\nparentCID=ffffffff\ncreateType=\"monolithicFlat\"\nRW 8 FLAT \"bystander-flat.vmdk\" 0\n",
    )
    .unwrap();
    let path = p(dir.path(), "new.vmdk");
    symlink(&fake, temp_new(&path)).unwrap();
    create(&path, &spec(DiskKind::MonolithicSparse, 4), &mut |_| {}).unwrap();
    assert_eq!(std::fs::read(&bystander).unwrap(), b"someone's data");
    assert!(fake.exists());
}

#[test]
fn new_extent_files_are_never_created_through_a_symlink() {
    let dir = tempfile::tempdir().unwrap();
    let victim = Victim::new();
    let path = p(dir.path(), "f.vmdk");
    victim.plant(&p(dir.path(), "f-flat.vmdk"));
    assert!(create(&path, &spec(DiskKind::MonolithicFlat, 4), &mut |_| {}).is_err());
    victim.assert_untouched("create over a symlinked extent name");
    assert!(
        std::fs::symlink_metadata(&path).is_err(),
        "half a disk left"
    );
    // Grow of a split disk adds extent files; a file at the next one's name is a leftover of
    // an interrupted Grow and is removed (a symlink itself, never its target).
    let split = p(dir.path(), "g.vmdk");
    create(&split, &spec(DiskKind::SplitFlat, 4), &mut |_| {}).unwrap();
    victim.plant(&p(dir.path(), "g-f002.vmdk"));
    grow(&split, 8 * 2048, true).unwrap();
    victim.assert_untouched("grow over a symlinked extent name");
    assert!(
        std::fs::symlink_metadata(p(dir.path(), "g-f002.vmdk"))
            .unwrap()
            .is_file()
    );
}

#[test]
fn shrink_and_defragment_never_write_through_a_symlink_at_their_temporary_name() {
    let dir = tempfile::tempdir().unwrap();
    let victim = Victim::new();
    let path = p(dir.path(), "s.vmdk");
    create_sparse(&path, 8);
    let mut model = vec![0u8; 8 << 20];
    let d = writable(&path);
    write_pattern(&d, &mut model, 0, 1 << 20, 0x61);
    write_pattern(&d, &mut model, 2 << 20, 65536, 0);
    let mut name = path.file_name().unwrap().to_os_string();
    name.push(".compact-tmp");
    let tmp = path.with_file_name(name);
    for drop_zeros in [true, false] {
        victim.plant(&tmp);
        d.compact(drop_zeros).unwrap();
        victim.assert_untouched("compact");
        assert!(read_all(&d) == model);
    }
    d.close().unwrap();
}

#[test]
fn check_repair_never_writes_through_a_symlink_at_its_temporary_name() {
    let dir = tempfile::tempdir().unwrap();
    let victim = Victim::new();
    let path = p(dir.path(), "r.vmdk");
    create(&path, &spec(DiskKind::MonolithicFlat, 4), &mut |_| {}).unwrap();
    // A damaged DDB line: repair rewrites the descriptor file without it.
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, format!("{text}this line is damaged\n")).unwrap();
    victim.plant(&p(dir.path(), ".r.vmdk.repair-tmp"));
    let r = check_disk(&path, true).unwrap();
    assert_eq!(r.outcome(), Outcome::Repaired, "{r:?}");
    victim.assert_untouched("CheckRepair");
    assert_eq!(check_disk(&path, false).unwrap().outcome(), Outcome::Clean);
}

#[test]
fn change_tracking_files_are_never_written_through_a_symlink() {
    let dir = tempfile::tempdir().unwrap();
    let victim = Victim::new();
    let path = p(dir.path(), "t.vmdk");
    create_sparse(&path, 4);
    let tmp = p(dir.path(), ".t.vmdk.vdltrack.tmp-new");
    // Turning tracking on writes the new tracking file under its temporary name.
    victim.plant(&tmp);
    set_change_tracking(&path, true).unwrap();
    victim.assert_untouched("SetChangeTracking");
    assert!(p(dir.path(), "t.vmdk.vdltrack").is_file());
    // Grow rewrites the whole tracking file the same way.
    victim.plant(&tmp);
    grow(&path, 8 * 2048, true).unwrap();
    grow_history(&path).unwrap();
    victim.assert_untouched("Grow's tracking rewrite");
    let d = writable(&path);
    assert!(d.change_id().is_ok());
    d.close().unwrap();
}

#[test]
fn rename_never_replaces_a_symlink_at_a_target_name() {
    let dir = tempfile::tempdir().unwrap();
    let victim = Victim::new();
    let src = p(dir.path(), "a.vmdk");
    create(&src, &spec(DiskKind::MonolithicFlat, 4), &mut |_| {}).unwrap();
    let before = sha256(&p(dir.path(), "a-flat.vmdk"));
    // A dangling symlink at the new extent name counts as a file there.
    symlink(p(dir.path(), "nowhere"), p(dir.path(), "b-flat.vmdk")).unwrap();
    assert!(rename(&src, &p(dir.path(), "b.vmdk")).is_err());
    victim.plant(&p(dir.path(), "c.vmdk"));
    assert!(rename(&src, &p(dir.path(), "c.vmdk")).is_err());
    victim.assert_untouched("rename onto a symlink");
    assert_eq!(sha256(&p(dir.path(), "a-flat.vmdk")), before);
    assert!(check_disk(&src, false).unwrap().outcome().is_ok());
    // A monolithic tracked disk: its tracking file's new name is checked before anything moves.
    let m = p(dir.path(), "m.vmdk");
    create_sparse(&m, 4);
    set_change_tracking(&m, true).unwrap();
    victim.plant(&p(dir.path(), "n.vmdk.vdltrack"));
    assert!(rename(&m, &p(dir.path(), "n.vmdk")).is_err());
    victim.assert_untouched("rename of a tracking file onto a symlink");
    assert!(m.exists() && p(dir.path(), "m.vmdk.vdltrack").exists());
}

#[test]
fn scratch_files_are_private_and_never_created_through_a_symlink() {
    let dir = tempfile::tempdir().unwrap();
    let victim = Victim::new();
    let at = p(dir.path(), "scratch");
    let f = create_new_private_file(&at).unwrap();
    let mode = f.metadata().unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "scratch file mode {mode:o}");
    let planted = p(dir.path(), "planted");
    victim.plant(&planted);
    assert!(create_new_private_file(&planted).is_err());
    victim.assert_untouched("private scratch file");
    // A nonpersistent open's scratch redo log never shows up in its directory at all.
    let base = p(dir.path(), "base.vmdk");
    create_sparse(&base, 4);
    let scratch_dir = p(dir.path(), "tmp");
    std::fs::create_dir(&scratch_dir).unwrap();
    let d = Disk::open_nonpersistent(&base, false, &scratch_dir).unwrap();
    d.write(0, &[7u8; 4096]).unwrap();
    assert_eq!(std::fs::read_dir(&scratch_dir).unwrap().count(), 0);
    d.close().unwrap();
}
