//! What a backup user's data depends on beyond the happy path (backup_chain.rs): disks whose
//! end is not grain-aligned, areas zeroed after the full backup, a disk grown between backups,
//! every target type of a restore, writes by another program around an id, and kill -9 of a
//! backup or a restore.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;

/// Every target type a restore can write, with the format qemu-img reads it as.
const TARGETS: &[(&str, &str, &str)] = &[
    ("raw", "raw", "raw"),
    ("monolithicSparse", "vmdk", "vmdk"),
    ("monolithicFlat", "vmdk", "vmdk"),
    ("twoGbMaxExtentSparse", "vmdk", "vmdk"),
    ("streamOptimized", "vmdk", "vmdk"),
];

fn virtual_size(path: &Path, format: &str) -> u64 {
    let info = json(&tool(
        "qemu-img",
        &["info", "--output=json", "-f", format, s(path)],
    ));
    info["virtual-size"].as_u64().unwrap()
}

/// Restores `dir` into every target type and requires each to read exactly like `disk`
/// (same size, same bytes).
fn restores_equal(dir: &Path, disk: &Path, work: &Path, tag: &str) {
    let want = virtual_size(disk, "vmdk");
    for (kind, ext, format) in TARGETS {
        let target = work.join(format!("{tag}-{kind}.{ext}"));
        ok(&["-q", "restore", "-t", kind, s(dir), s(&target)]);
        assert_eq!(virtual_size(&target, format), want, "{tag} {kind}: size");
        tool(
            "qemu-img",
            &["compare", "-f", format, "-F", "vmdk", s(&target), s(disk)],
        );
    }
}

fn manifest(dir: &Path) -> serde_json::Value {
    json(&std::fs::read_to_string(dir.join("manifest.json")).unwrap())
}

#[test]
fn unaligned_end_zeroed_areas_and_a_grown_disk_restore_exactly() {
    let d = tempfile::tempdir().unwrap();
    let p = |name: &str| -> PathBuf { d.path().join(name) };
    let disk = p("disk.vmdk");
    // Neither a multiple of 64 KiB nor of the 128-sector chunk.
    let cap = 8192 + 37;
    ok(&["create", s(&disk), &(cap * 512).to_string()]);
    ok(&["changeid", "--on", s(&disk)]);
    vm_writes(
        &disk,
        &[(0, 256, 0x11), (1000, 300, 0x12), (cap - 37, 37, 0x13)],
    );
    ok(&["-q", "backup", "full", s(&disk), s(&p("full"))]);
    restores_equal(&p("full"), &disk, d.path(), "full");

    // Zeros over data the full backup holds, in the middle and in the unaligned tail: the
    // restore must bring the zeros back, not the older data.
    vm_writes(
        &disk,
        &[
            (1000, 300, 0),
            (cap - 5, 5, 0),
            (cap - 37, 3, 0x14),
            (0, 128, 0),
        ],
    );
    ok(&[
        "-q",
        "backup",
        "incremental",
        "--base",
        s(&p("full")),
        s(&disk),
        s(&p("incr1")),
    ]);
    restores_equal(&p("incr1"), &disk, d.path(), "incr1");

    // Grown (to another unaligned size) between backups: the new sectors are changed ones.
    let cap2 = 3 * 8192 + 11;
    ok(&["-q", "grow", s(&disk), &(cap2 * 512).to_string()]);
    vm_writes(&disk, &[(cap2 - 11, 11, 0x15), (cap + 1, 2, 0x16)]);
    ok(&[
        "-q",
        "backup",
        "incremental",
        "--base",
        s(&p("incr1")),
        s(&disk),
        s(&p("incr2")),
    ]);
    assert_eq!(manifest(&p("incr2"))["capacity_sectors"], cap2);
    restores_equal(&p("incr2"), &disk, d.path(), "incr2");
    // A differential whose --base is an incremental: relative to the full backup.
    ok(&[
        "-q",
        "backup",
        "differential",
        "--base",
        s(&p("incr2")),
        s(&disk),
        s(&p("diff")),
    ]);
    assert_eq!(manifest(&p("diff"))["parent"]["dir"], "../full");
    restores_equal(&p("diff"), &disk, d.path(), "diff");
}

#[test]
fn a_foreign_write_after_an_id_issued_read_only_is_not_missed() {
    let d = tempfile::tempdir().unwrap();
    let p = |name: &str| -> PathBuf { d.path().join(name) };
    let disk = p("disk.vmdk");
    ok(&["create", s(&disk), "4M"]);
    ok(&["changeid", "--on", s(&disk)]);
    vm_writes(&disk, &[(0, 128, 1)]);
    ok(&["changeid", s(&disk)]);
    // Another program writes: the ids issued so far cannot be trusted any more. The full
    // backup (which opens the disk read-only when it can) records an id for this content.
    qemu_write(&disk, 7, 1 << 20, 65536);
    ok(&["-q", "backup", "full", s(&disk), s(&p("full"))]);
    // Another write by the other program: the id recorded above cannot tell what it changed.
    qemu_write(&disk, 9, 2 << 20, 65536);
    let out = run(&[
        "-q",
        "backup",
        "incremental",
        "--base",
        s(&p("full")),
        s(&disk),
        s(&p("incr")),
    ]);
    if out.status.success() {
        // Then it must hold that write.
        ok(&["restore", s(&p("incr")), s(&p("r.vmdk"))]);
        qemu_same(&p("r.vmdk"), "vmdk", &disk, "vmdk");
    } else {
        assert_eq!(
            out.status.code(),
            Some(6),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stderr).contains("do a full backup"));
    }
}

/// A disk with `mib` MiB of non-zero data (every grain must be copied).
fn big_disk(dir: &Path, mib: usize) -> PathBuf {
    let raw = dir.join("src.raw");
    let one: Vec<u8> = (0..1 << 20).map(|i| (i % 251 + 1) as u8).collect();
    std::fs::write(&raw, one.repeat(mib)).unwrap();
    let vmdk = dir.join("src.vmdk");
    ok(&["convert", "-q", "-f", "raw", s(&raw), s(&vmdk)]);
    std::fs::remove_file(&raw).unwrap();
    vmdk
}

/// Starts `vixdisk ARGS` and kills it with SIGKILL once `ready()` says it is midway.
fn kill_midway(args: &[&str], ready: &dyn Fn() -> bool) {
    let mut child = vixdisk()
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ready() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "{args:?} ended before it could be killed midway"
        );
        assert!(Instant::now() < deadline, "{args:?} never got midway");
        std::thread::sleep(Duration::from_millis(1));
    }
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9),
        "{args:?} finished before the kill"
    );
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

#[test]
fn a_killed_backup_is_refused_and_a_killed_restore_leaves_no_target() {
    let d = tempfile::tempdir().unwrap();
    let p = |name: &str| -> PathBuf { d.path().join(name) };
    let disk = big_disk(d.path(), 64);
    ok(&["changeid", "--on", s(&disk)]);
    ok(&["-q", "backup", "full", s(&disk), s(&p("full"))]);
    vm_writes(&disk, &[(0, 64 * 2048, 0x5a)]);

    // kill -9 in the middle of copying the blocks.
    let half = p("half");
    let data = half.join("data.bin");
    kill_midway(
        &[
            "backup",
            "incremental",
            "--base",
            s(&p("full")),
            s(&disk),
            s(&half),
        ],
        &|| file_len(&data) > 0,
    );
    assert!(file_len(&data) < 64 << 20, "the backup had finished");
    // Neither a restore nor a later backup takes it for a finished one.
    let err = fails(&["restore", s(&half), s(&p("r.vmdk"))], 1);
    assert!(err.contains("unfinished backup"), "{err}");
    assert!(!p("r.vmdk").exists());
    let err = fails(
        &[
            "backup",
            "incremental",
            "--base",
            s(&half),
            s(&disk),
            s(&p("next")),
        ],
        1,
    );
    assert!(err.contains("unfinished backup"), "{err}");
    assert!(!p("next").exists());
    // The disk's history is intact: a new incremental from the full backup still works.
    ok(&[
        "-q",
        "backup",
        "incremental",
        "--base",
        s(&p("full")),
        s(&disk),
        s(&p("incr")),
    ]);

    // kill -9 of a restore, for each way a target is written: no target appears, and the
    // restore can be run again.
    for (kind, name) in [
        ("monolithicSparse", "r.vmdk"),
        ("monolithicFlat", "f.vmdk"),
        ("raw", "r.raw"),
    ] {
        let out = p(&format!("out-{kind}"));
        std::fs::create_dir(&out).unwrap();
        let target = out.join(name);
        let busy = out.clone();
        kill_midway(&["restore", "-t", kind, s(&p("incr")), s(&target)], &|| {
            std::fs::read_dir(&busy)
                .unwrap()
                .filter_map(|e| e.ok())
                .any(|e| e.metadata().is_ok_and(|m| m.len() > 1 << 20))
        });
        assert!(!target.exists(), "{kind}: a killed restore left {name}");
        ok(&["-q", "restore", "-t", kind, s(&p("incr")), s(&target)]);
        let format = if kind == "raw" { "raw" } else { "vmdk" };
        qemu_same(&target, format, &disk, "vmdk");
    }
}

#[test]
fn damaged_backups_are_refused_before_a_target_is_made() {
    let d = tempfile::tempdir().unwrap();
    let p = |name: &str| -> PathBuf { d.path().join(name) };
    let disk = p("disk.vmdk");
    ok(&["create", s(&disk), "4M"]);
    ok(&["changeid", "--on", s(&disk)]);
    vm_writes(&disk, &[(0, 4096, 1)]);
    ok(&["-q", "backup", "full", s(&disk), s(&p("full"))]);
    vm_writes(&disk, &[(1024, 128, 2)]);
    ok(&[
        "-q",
        "backup",
        "incremental",
        "--base",
        s(&p("full")),
        s(&disk),
        s(&p("incr")),
    ]);
    let incr = p("incr");
    let (manifest_path, data_path) = (incr.join("manifest.json"), incr.join("data.bin"));
    let (good_manifest, good_data) = (
        std::fs::read(&manifest_path).unwrap(),
        std::fs::read(&data_path).unwrap(),
    );
    let refused = |what: &str, why: &str| {
        let target = p("r.vmdk");
        let err = fails(&["restore", s(&incr), s(&target)], 1);
        assert!(err.contains(why), "{what}: {err}");
        assert!(!target.exists(), "{what}: a target was made");
        std::fs::write(&manifest_path, &good_manifest).unwrap();
        std::fs::write(&data_path, &good_data).unwrap();
    };

    // The manifest's own damage: its one block moved elsewhere (valid JSON, in range).
    let mut m = manifest(&incr);
    assert_eq!(m["blocks"].as_array().unwrap().len(), 1);
    assert_eq!(m["blocks"][0]["start"], 1024);
    m["blocks"][0]["start"] = 2048.into();
    std::fs::write(&manifest_path, serde_json::to_string_pretty(&m).unwrap()).unwrap();
    refused("a moved block", "CRC-32");
    // The data file: a flipped byte, cut short, or longer than its blocks.
    let mut bad = good_data.clone();
    bad[1000] ^= 0x40;
    std::fs::write(&data_path, &bad).unwrap();
    refused("a flipped byte", "CRC-32");
    std::fs::write(&data_path, &good_data[..good_data.len() - 512]).unwrap();
    refused("a short data file", "data file");
    let mut long = good_data.clone();
    long.extend_from_slice(&[0u8; 512]);
    std::fs::write(&data_path, &long).unwrap();
    refused("a long data file", "data file");
    // Undamaged, it restores.
    ok(&["-q", "restore", s(&incr), s(&p("r.vmdk"))]);
    qemu_same(&p("r.vmdk"), "vmdk", &disk, "vmdk");
}

#[test]
fn quiet_backups_and_restores_print_only_their_summary() {
    let d = tempfile::tempdir().unwrap();
    let p = |name: &str| -> PathBuf { d.path().join(name) };
    let disk = p("disk.vmdk");
    ok(&["create", s(&disk), "4M"]);
    ok(&["changeid", "--on", s(&disk)]);
    vm_writes(&disk, &[(0, 128, 1)]);
    let lines = |out: String| {
        assert_eq!(out.lines().count(), 1, "-q: only the summary\n{out}");
    };
    let snap = p("snap.vmdk");
    lines(ok(&[
        "-q",
        "backup",
        "full",
        "--snapshot",
        s(&snap),
        s(&disk),
        s(&p("full")),
    ]));
    vm_writes(&snap, &[(512, 128, 2)]);
    ok(&["-q", "commit", s(&snap)]);
    lines(ok(&[
        "-q",
        "backup",
        "differential",
        "--snapshot",
        s(&snap),
        "--base",
        s(&p("full")),
        s(&disk),
        s(&p("diff")),
    ]));
    lines(ok(&["-q", "restore", s(&p("diff")), s(&p("r.vmdk"))]));
    qemu_same(&p("r.vmdk"), "vmdk", &disk, "vmdk");
}

/// Private by default (issue 19): the manifest's and a restore target's temporary names are
/// created with O_EXCL, so a symlink planted there is never written through.
#[test]
fn backup_and_restore_never_write_through_a_symlink_at_their_temporary_names() {
    let d = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let p = |name: &str| -> PathBuf { d.path().join(name) };
    let victim = elsewhere.path().join("victim");
    std::fs::write(&victim, b"keep me").unwrap();
    let disk = p("disk.vmdk");
    ok(&["create", s(&disk), "4M"]);
    vm_writes(&disk, &[(0, 128, 0x5a), (3000, 8, 0x5b)]);
    // A backup directory holding anything (here the planted name) is refused before writing.
    let planted = p("bk");
    std::fs::create_dir(&planted).unwrap();
    std::os::unix::fs::symlink(&victim, planted.join("manifest.json.partial")).unwrap();
    assert!(
        !run(&["-q", "backup", "full", s(&disk), s(&planted)])
            .status
            .success()
    );
    assert_eq!(std::fs::read(&victim).unwrap(), b"keep me");
    ok(&["-q", "backup", "full", s(&disk), s(&p("full"))]);
    // A restore's partial target: a stale name is removed (the symlink itself), then O_EXCL.
    let target = p("r.raw");
    std::os::unix::fs::symlink(&victim, p(".r.raw.vixdisk-partial")).unwrap();
    ok(&["-q", "restore", "-t", "raw", s(&p("full")), s(&target)]);
    assert_eq!(std::fs::read(&victim).unwrap(), b"keep me");
    qemu_same(&target, "raw", &disk, "vmdk");
}
