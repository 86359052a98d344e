//! VixDiskLibExt_Commit through the engine: every child kind over every parent kind we write,
//! nested redo logs, each refusal (nothing changes), and kill -9 at random moments of a real
//! committing process, checked with qemu-img.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use vixDiskLib::chain::commit::commit;
use vixDiskLib::chain::{Disk, OpenOptions};
use vixDiskLib::error::Error;
use vixDiskLib::vmdk::create::{CreateSpec, DiskKind, create};
use vixDiskLib::vmdk::geometry::Adapter;
use vixDiskLib::vmdk::link::Link;

fn create_kind(path: &Path, kind: DiskKind, mib: u64) {
    let spec = CreateSpec {
        kind,
        capacity: mib * 2048,
        adapter: Adapter::LsiLogic,
        hw_version: 7,
    };
    create(path, &spec, &mut |_| {}).expect("create");
}

fn cid_of(path: &Path) -> u32 {
    Link::open(path, false).expect("open link").descriptor().cid
}

/// A base of `kind` with some data, and a child (`child_kind`) with writes that overlap the
/// base's grains, fill holes, cover partial grains and zero some base data. Returns the
/// content the child-over-base chain shows.
fn base_and_child(base: &Path, kind: DiskKind, child: &Path, child_kind: DiskKind) -> Vec<u8> {
    create_kind(base, kind, 8);
    let cap = 8 << 20;
    let mut model = vec![0u8; cap];
    {
        let d = open_rw(base);
        write_pattern(&d, &mut model, 0, 256 << 10, 0x11);
        write_pattern(&d, &mut model, 3 << 20, 1 << 20, 0x22);
        write_pattern(&d, &mut model, 7 << 20, 64 << 10, 0x33);
        d.close().unwrap();
    }
    open_rw(base)
        .create_child(child, child_kind)
        .expect("child");
    let d = open_rw(child);
    write_pattern(&d, &mut model, 64 << 10, 128 << 10, 0xa1); // over base data
    write_pattern(&d, &mut model, 1 << 20, 512, 0xa2); // partial grain in a hole
    write_pattern(&d, &mut model, (3 << 20) + 4096, 8192, 0xa3); // partial over base data
    write_pattern(&d, &mut model, 5 << 20, 2 << 20, 0xa4); // whole grains in holes
    write_pattern(&d, &mut model, 7 << 20, 64 << 10, 0x00); // zeros over base data
    d.close().unwrap();
    drop(d);
    assert_eq!(read_all(&open_ro(child)), model, "chain before commit");
    model
}

fn files_of(path: &Path) -> Vec<PathBuf> {
    Link::open(path, false).expect("open").files()
}

fn check_committed(dir: &Path, base: &Path, child_files: &[PathBuf], model: &[u8], old: u32) {
    for f in child_files {
        assert!(!f.exists(), "{} survived the commit", f.display());
    }
    assert_ne!(cid_of(base), old, "the base kept its CID");
    assert_eq!(read_all(&open_ro(base)), model);
    let thin_flat = p(dir, "base-flat.vmdk");
    if std::fs::read_to_string(base).is_ok_and(|t| t.contains("vmfsThin")) {
        // qemu has no vmfsThin: the flat file itself must hold the content.
        assert_eq!(std::fs::read(&thin_flat).unwrap(), model);
    } else if have_qemu() {
        let raw = p(dir, "expected.raw");
        save_raw(model, &raw);
        assert!(qemu_same(&raw, base), "{}", base.display());
        assert!(qemu_check(base) || is_flat(base));
    }
}

fn is_flat(path: &Path) -> bool {
    let (_, out) = sh(&format!("qemu-img check '{}'", path.display()));
    out.contains("does not support checks")
}

#[test]
fn commit_every_child_kind_into_every_parent_kind() {
    for (kind, child_kind) in [
        (DiskKind::MonolithicSparse, DiskKind::MonolithicSparse),
        (DiskKind::SplitSparse, DiskKind::SplitSparse),
        (DiskKind::MonolithicFlat, DiskKind::MonolithicSparse),
        (DiskKind::SplitFlat, DiskKind::SplitSparse),
        (DiskKind::MonolithicSparse, DiskKind::SplitSparse),
        (DiskKind::VmfsThin, DiskKind::MonolithicSparse),
    ] {
        eprintln!("{child_kind:?} into {kind:?}");
        let dir = tempfile::tempdir().unwrap();
        let (base, child) = (p(dir.path(), "base.vmdk"), p(dir.path(), "base.vmdk.REDO"));
        let model = base_and_child(&base, kind, &child, child_kind);
        let old = cid_of(&base);
        let child_files = files_of(&child);
        let mut seen = Vec::new();
        commit(&child, &mut |pct| seen.push(pct)).unwrap_or_else(|e| {
            panic!("commit {child_kind:?} into {kind:?}: {e}");
        });
        assert!(seen.windows(2).all(|w| w[0] <= w[1]), "{seen:?}");
        assert_eq!(seen.last(), Some(&100));
        check_committed(dir.path(), &base, &child_files, &model, old);
    }
}

#[test]
fn nested_redo_logs_commit_into_the_next_level_and_are_re_pointed() {
    let dir = tempfile::tempdir().unwrap();
    let redo_dir = p(dir.path(), "vm2");
    std::fs::create_dir(&redo_dir).unwrap();
    let base = p(dir.path(), "mydisk.vmdk");
    let r1 = p(&redo_dir, "mydisk.vmdk.REDO_a01000");
    let r2 = p(&redo_dir, "mydisk.vmdk.REDO_a01000.REDO_b02000");
    let mut model = base_and_child(
        &base,
        DiskKind::MonolithicSparse,
        &r1,
        DiskKind::MonolithicSparse,
    );
    open_rw(&r1)
        .create_child(&r2, DiskKind::MonolithicSparse)
        .unwrap();
    {
        let d = open_rw(&r2);
        write_pattern(&d, &mut model, 2 << 20, 96 << 10, 0xb1);
        write_pattern(&d, &mut model, 5 << 20, 4096, 0xb2);
        d.close().unwrap();
    }
    let base_sum = sha256(&base);
    // The nested log commits into its own parent, never the base.
    let r1_cid = cid_of(&r1);
    commit(&r2, &mut |_| {}).unwrap();
    assert!(!r2.exists());
    assert_eq!(sha256(&base), base_sum, "the base changed");
    assert_ne!(cid_of(&r1), r1_cid);
    assert_eq!(read_all(&open_ro(&r1)), model);
    // A new nested log on r1, then r1 commits into the base: the nested log is re-pointed.
    let r3 = p(&redo_dir, "mydisk.vmdk.REDO_a01000.REDO_c03000");
    open_rw(&r1)
        .create_child(&r3, DiskKind::MonolithicSparse)
        .unwrap();
    {
        let d = open_rw(&r3);
        write_pattern(&d, &mut model, 6 << 20, 64 << 10, 0xc1);
        d.close().unwrap();
    }
    commit(&r1, &mut |_| {}).unwrap();
    assert!(!r1.exists());
    let d = Link::open(&r3, false).unwrap().descriptor();
    assert_eq!(d.parent_cid, cid_of(&base));
    assert_eq!(d.parent_hint.as_deref(), Some("../mydisk.vmdk"));
    assert_eq!(read_all(&open_ro(&r3)), model);
    if have_qemu() {
        let raw = p(dir.path(), "expected.raw");
        save_raw(&model, &raw);
        assert!(
            qemu_same(&raw, &r3),
            "qemu reads the re-pointed log differently"
        );
        assert!(qemu_check(&r3) && qemu_check(&base));
    }
}

fn expect_refused(child: &Path, base: &Path, what: &str, check: impl Fn(&Error) -> bool) {
    let (b, c) = (sha256(base), sha256(child));
    match commit(child, &mut |_| {}) {
        Ok(()) => panic!("{what}: commit succeeded"),
        Err(e) => assert!(check(&e), "{what}: unexpected error {e}"),
    }
    assert_eq!(sha256(base), b, "{what}: the base changed");
    assert_eq!(sha256(child), c, "{what}: the child changed");
}

#[test]
fn refusals_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (base, child) = (p(dir.path(), "base.vmdk"), p(dir.path(), "child.vmdk"));
    let model = base_and_child(
        &base,
        DiskKind::MonolithicSparse,
        &child,
        DiskKind::MonolithicSparse,
    );

    // The parent is open somewhere (here read-only; a reader holds a shared lock).
    let reader = open_ro(&base);
    expect_refused(&child, &base, "parent open", |e| {
        matches!(e, Error::Locked(_))
    });
    drop(reader);
    // The child is open.
    let user = open_rw(&child);
    expect_refused(&child, &base, "child open", |e| {
        matches!(e, Error::Locked(_))
    });
    drop(user);
    // The parent is protected by its mode bits (we are often root: opening would succeed).
    std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o444)).unwrap();
    expect_refused(&child, &base, "mode 0444", |e| {
        matches!(e, Error::ReadOnly(_))
    });
    std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o644)).unwrap();
    // Another disk in the parent's directory depends on the parent.
    let sibling = p(dir.path(), "other-vm.vmdk");
    Disk::open(
        &base,
        OpenOptions {
            read_only: true,
            single_link: false,
        },
    )
    .unwrap()
    .create_child(&sibling, DiskKind::MonolithicSparse)
    .unwrap();
    expect_refused(
        &child,
        &base,
        "shared base",
        |e| matches!(e, Error::InUse(m) if m.contains("other-vm.vmdk")),
    );
    std::fs::remove_file(&sibling).unwrap();
    // A disk without a parent is not a redo log.
    expect_refused(&base, &child, "base", |e| matches!(e, Error::InvalidArg(_)));
    // Nothing changed: the chain still reads as before, and the commit works now.
    assert_eq!(read_all(&open_ro(&child)), model);
    commit(&child, &mut |_| {}).unwrap();
    assert_eq!(read_all(&open_ro(&base)), model);
}

#[test]
fn a_stream_parent_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (base, child) = (p(dir.path(), "s.vmdk"), p(dir.path(), "s.vmdk.REDO"));
    create_kind(&base, DiskKind::StreamOptimized, 4);
    open_ro(&base)
        .create_child(&child, DiskKind::MonolithicSparse)
        .unwrap();
    open_rw(&child).write(0, &[7u8; 512]).unwrap();
    expect_refused(&child, &base, "stream parent", |e| {
        matches!(e, Error::NotSupported(_))
    });
}

/// Run by `interrupted_commits_leave_a_readable_chain_and_finish_on_retry` in a child
/// process that it kills.
#[test]
#[ignore = "helper process for the kill test"]
fn commit_worker() {
    if let Ok(path) = std::env::var("VDL_COMMIT_CHILD") {
        commit(Path::new(&path), &mut |_| {}).expect("commit");
    }
}

fn spawn_commit(child: &Path) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", "commit_worker", "--test-threads=1"])
        .env("VDL_COMMIT_CHILD", child)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn worker")
}

#[test]
fn interrupted_commits_leave_a_readable_chain_and_finish_on_retry() {
    let dir = tempfile::tempdir().unwrap();
    let template = p(dir.path(), "template");
    std::fs::create_dir(&template).unwrap();
    let (tb, tc) = (p(&template, "base.vmdk"), p(&template, "base.vmdk.REDO"));
    create_sparse(&tb, 64);
    let mut model = vec![0u8; 64 << 20];
    {
        let d = open_rw(&tb);
        for i in 0..32 {
            write_pattern(&d, &mut model, i * (2 << 20), 64 << 10, 0x40 + i as u8);
        }
        d.close().unwrap();
    }
    open_rw(&tb)
        .create_child(&tc, DiskKind::MonolithicSparse)
        .unwrap();
    {
        let d = open_rw(&tc);
        for i in 0..48 {
            write_pattern(
                &d,
                &mut model,
                i * (1 << 20) + 4096,
                600 << 10,
                0x80 + i as u8,
            );
        }
        d.close().unwrap();
    }
    // How long an uninterrupted commit takes, to spread the kills over it.
    let timed = p(dir.path(), "timed");
    std::fs::create_dir(&timed).unwrap();
    sh(&format!(
        "cp -a '{}'/. '{}'",
        template.display(),
        timed.display()
    ));
    let t = Instant::now();
    assert!(
        spawn_commit(&p(&timed, "base.vmdk.REDO"))
            .wait()
            .unwrap()
            .success()
    );
    let full = t.elapsed().max(Duration::from_millis(20));
    let raw = p(dir.path(), "expected.raw");
    save_raw(&model, &raw);
    let rounds = 12;
    let mut killed_mid = 0;
    for round in 0..rounds {
        let work = p(dir.path(), &format!("r{round}"));
        std::fs::create_dir(&work).unwrap();
        sh(&format!(
            "cp -a '{}'/. '{}'",
            template.display(),
            work.display()
        ));
        let (base, child) = (p(&work, "base.vmdk"), p(&work, "base.vmdk.REDO"));
        let mut proc = spawn_commit(&child);
        // Spread over the run, including the process start-up.
        std::thread::sleep(full.mul_f64(0.2 + 1.2 * round as f64 / rounds as f64));
        let _ = proc.kill();
        let finished = proc.wait().unwrap().success();
        if !finished {
            killed_mid += 1;
        }
        if child.exists() {
            // Killed before the end: the chain opens and reads exactly as before.
            assert_eq!(read_all(&open_ro(&child)), model, "round {round}: chain");
            assert!(qemu_check(&child), "round {round}: child check");
            let journaled = Link::open(&child, false)
                .unwrap()
                .descriptor()
                .ddb_get(vixDiskLib::vmdk::link::COMMIT_JOURNAL_KEY)
                .is_some();
            if !journaled
                || cid_of(&base) != {
                    let d = Link::open(&child, false).unwrap().descriptor();
                    vixDiskLib::vmdk::link::commit_journal(&d).unwrap()
                }
            {
                // Before the commit point qemu reads the same chain too.
                assert!(qemu_same(&raw, &child), "round {round}: qemu chain");
            }
            // Calling Commit again finishes the job.
            commit(&child, &mut |_| {}).expect("retry");
        }
        assert!(!child.exists());
        assert!(qemu_check(&base), "round {round}: base check");
        assert!(qemu_same(&raw, &base), "round {round}: base content");
    }
    eprintln!("{killed_mid}/{rounds} commits killed mid-way");
    assert!(killed_mid > 0, "no kill landed during a commit");
}
