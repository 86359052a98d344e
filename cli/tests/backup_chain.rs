//! The seeds' backup and recovery through `vixdisk`: a full backup, two incrementals and a
//! differential of a change-tracked disk with writes between them (each backup under a
//! snapshot the "VM" keeps writing to, deleted by commit), then restores newest first,
//! checked with `qemu-img compare` against the disk as it was. The "VM" writes through the
//! engine (a write by another program, qemu-io, would end the tracking history, which one
//! test below shows).

mod common;

use std::path::{Path, PathBuf};

use common::*;

const GRAIN: u64 = 128;
const CAPACITY: u64 = 16 * 2048; // 16 MiB

/// Grains (64 KiB) the writes touch, counted once.
fn grains(writes: &[&[(u64, u64, u8)]]) -> u64 {
    let mut set = std::collections::BTreeSet::new();
    for w in writes {
        for &(s, n, _) in *w {
            set.extend(s / GRAIN..(s + n).div_ceil(GRAIN));
        }
    }
    set.len() as u64
}

/// The bytes a backup stored, from its manifest.
fn stored(dir: &Path) -> u64 {
    let m = json(&std::fs::read_to_string(dir.join("manifest.json")).unwrap());
    assert_eq!(
        std::fs::metadata(dir.join("data.bin")).unwrap().len(),
        m["copied_sectors"].as_u64().unwrap() * 512
    );
    m["copied_sectors"].as_u64().unwrap() * 512
}

fn manifest(dir: &Path) -> serde_json::Value {
    json(&std::fs::read_to_string(dir.join("manifest.json")).unwrap())
}

/// A flat copy of what the disk at `path` reads now.
fn freeze(path: &Path, raw: &Path) {
    tool(
        "qemu-img",
        &["convert", "-f", "vmdk", "-O", "raw", s(path), s(raw)],
    );
}

#[test]
fn full_incrementals_and_differential_restore_newest_first() {
    cycle(false);
}

/// The seeds' order: snapshot first, then the id from a read-only open of the frozen disk.
#[test]
fn the_same_with_ids_taken_after_the_snapshot_read_only() {
    cycle(true);
}

/// Runs `vixdisk args`, with `--id-after-snapshot` after `--snapshot CHILD` when `id_after`.
fn with_order(args: &[&str], id_after: bool) -> String {
    let mut all: Vec<&str> = args.to_vec();
    if id_after && let Some(i) = all.iter().position(|a| *a == "--snapshot") {
        all.insert(i + 2, "--id-after-snapshot");
    }
    ok(&all)
}

fn cycle(id_after: bool) {
    let d = tempfile::tempdir().unwrap();
    let p = |name: &str| -> PathBuf { d.path().join(name) };
    let base = p("base.vmdk");
    ok(&["create", "-a", "lsilogic", s(&base), "16M"]);
    ok(&["changeid", "--on", s(&base)]);
    // Before T1, between T1 and T2, between T2 and T3, after T3.
    let w0: &[(u64, u64, u8)] = &[(0, 2048, 0x10), (9000, 100, 0x11), (CAPACITY - 8, 8, 0x12)];
    let w1: &[(u64, u64, u8)] = &[(4096, 300, 0x21), (10, 5, 0x22), (20000, 1, 0x23)];
    let w2: &[(u64, u64, u8)] = &[(4100, 50, 0x31), (25000, 256, 0x32)];
    let w3: &[(u64, u64, u8)] = &[(15000, 64, 0x41), (0, 1, 0x42)];
    vm_writes(&base, w0);

    // T1: snapshot, full backup of the frozen base, the VM writes on, snapshot deleted.
    let out = with_order(
        &[
            "backup",
            "full",
            "--snapshot",
            s(&p("snap1.vmdk")),
            s(&base),
            s(&p("full")),
        ],
        id_after,
    );
    assert!(out.contains("change id: "), "{out}");
    assert!(out.contains("wrote 1245184 bytes to"), "{out}");
    assert_eq!(stored(&p("full")), grains(&[w0]) * GRAIN * 512);
    let id_t1 = manifest(&p("full"))["change_id"]
        .as_str()
        .unwrap()
        .to_string();
    freeze(&base, &p("t1.raw"));
    vm_writes(&p("snap1.vmdk"), w1);
    ok(&["commit", s(&p("snap1.vmdk"))]);

    // The changes since T1, as map --changed-since lists them.
    let changed = json(&ok(&["map", "--json", "--changed-since", &id_t1, s(&base)]));
    let changed_bytes: u64 = changed
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["length"].as_u64().unwrap())
        .sum();
    assert_eq!(changed_bytes, grains(&[w1]) * GRAIN * 512, "{changed}");
    let text = ok(&["map", "--changed-since", &id_t1, s(&base)]);
    assert_eq!(text.lines().count(), 1 + 3, "{text}");

    // T2: incremental since T1.
    with_order(
        &[
            "backup",
            "incremental",
            "--snapshot",
            s(&p("snap2.vmdk")),
            "--base",
            s(&p("full")),
            s(&base),
            s(&p("incr2")),
        ],
        id_after,
    );
    assert_eq!(stored(&p("incr2")), grains(&[w1]) * GRAIN * 512);
    freeze(&base, &p("t2.raw"));
    vm_writes(&p("snap2.vmdk"), w2);
    ok(&["commit", s(&p("snap2.vmdk"))]);

    // T3: incremental since T2 and differential since T1; the snapshot stays, the VM writes
    // on it, and the base is the disk at T3.
    with_order(
        &[
            "backup",
            "incremental",
            "--snapshot",
            s(&p("snap3.vmdk")),
            "--base",
            s(&p("incr2")),
            s(&base),
            s(&p("incr3")),
        ],
        id_after,
    );
    assert_eq!(stored(&p("incr3")), grains(&[w2]) * GRAIN * 512);
    // --base may name any backup built on the full one.
    let out = ok(&[
        "backup",
        "differential",
        "--base",
        s(&p("incr3")),
        s(&base),
        s(&p("diff3")),
    ]);
    assert!(out.contains("differential since the full backup"), "{out}");
    assert_eq!(stored(&p("diff3")), grains(&[w1, w2]) * GRAIN * 512);
    assert_eq!(manifest(&p("diff3"))["parent"]["dir"], "../full");
    assert_eq!(manifest(&p("incr3"))["parent"]["dir"], "../incr2");
    vm_writes(&p("snap3.vmdk"), w3);

    // T4: restores, newest first, each compared with the disk as it was.
    let out = ok(&["restore", s(&p("incr3")), s(&p("r-incr.vmdk"))]);
    let steps: Vec<&str> = out.lines().filter(|l| l.starts_with("step ")).collect();
    assert_eq!(steps.len(), 3, "{out}");
    assert!(steps[0].contains("incr3 (incremental"), "{out}");
    assert!(steps[2].contains("full (full"), "{out}");
    // Each sector once, from the newest backup: T2 skips the grain T3 rewrote, the full
    // backup skips the grain T2 rewrote (grain 0).
    let moved = |grains: u64, stored: u64| {
        format!(
            "read {} of {} bytes stored, wrote {} bytes",
            grains * 65536,
            stored * 65536,
            grains * 65536
        )
    };
    assert!(steps[0].ends_with(&moved(4, 4)), "{out}");
    assert!(steps[1].ends_with(&moved(4, 5)), "{out}");
    assert!(steps[2].ends_with(&moved(18, 19)), "{out}");
    qemu_same(&p("r-incr.vmdk"), "vmdk", &base, "vmdk");
    qemu_check(&p("r-incr.vmdk"));
    let out = ok(&["restore", "-t", "raw", s(&p("diff3")), s(&p("r-diff.raw"))]);
    assert_eq!(
        out.lines().filter(|l| l.starts_with("step ")).count(),
        2,
        "{out}"
    );
    qemu_same(&p("r-diff.raw"), "raw", &base, "vmdk");
    let out = ok(&[
        "restore",
        "-t",
        "streamOptimized",
        s(&p("diff3")),
        s(&p("r-diff.vmdk")),
    ]);
    assert!(out.contains("from 2 backup(s)"), "{out}");
    qemu_same(&p("r-diff.vmdk"), "vmdk", &base, "vmdk");
    // An older point in time: T2's incremental over the full.
    let quiet = ok(&["-q", "restore", s(&p("incr2")), s(&p("r-t2.vmdk"))]);
    assert_eq!(quiet.lines().count(), 1, "-q: only the summary\n{quiet}");
    qemu_same(&p("r-t2.vmdk"), "vmdk", &p("t2.raw"), "raw");
    ok(&["restore", s(&p("full")), s(&p("r-t1.vmdk"))]);
    qemu_same(&p("r-t1.vmdk"), "vmdk", &p("t1.raw"), "raw");
    // The restores do not equal the disk now (the VM wrote after T3).
    let now = std::process::Command::new("qemu-img")
        .args(["compare", "-q", s(&p("r-incr.vmdk")), s(&p("snap3.vmdk"))])
        .status()
        .unwrap();
    assert_eq!(now.code(), Some(1));
}

#[test]
fn unanswerable_change_ids_ask_for_a_full_backup() {
    let d = tempfile::tempdir().unwrap();
    let p = |name: &str| -> PathBuf { d.path().join(name) };
    let (disk, other) = (p("disk.vmdk"), p("other.vmdk"));
    for path in [&disk, &other] {
        ok(&["create", s(path), "4M"]);
        ok(&["changeid", "--on", s(path)]);
        vm_writes(path, &[(0, 128, 1)]);
    }
    ok(&["-q", "backup", "full", s(&disk), s(&p("full"))]);
    let id = manifest(&p("full"))["change_id"]
        .as_str()
        .unwrap()
        .to_string();
    // Another disk's id.
    let err = fails(
        &[
            "backup",
            "incremental",
            "--base",
            s(&p("full")),
            s(&other),
            s(&p("x")),
        ],
        6,
    );
    assert!(err.contains("do a full backup"), "{err}");
    assert!(err.contains("VIX_E_OBJECT_NOT_FOUND"), "{err}");
    assert!(!p("x").exists(), "a refused backup leaves no directory");
    let err = fails(&["map", "--changed-since", &id, s(&other)], 6);
    assert!(err.contains("do a full backup"), "{err}");
    // An id this disk never issued, and a malformed one.
    let (uuid, _) = id.rsplit_once('/').unwrap();
    let err = fails(
        &["map", "--changed-since", &format!("{uuid}/99"), s(&disk)],
        6,
    );
    assert!(err.contains("do a full backup"), "{err}");
    fails(&["map", "--changed-since", "garbage", s(&disk)], 2); // bad usage (issue 16)
    // A write by another program ends the history: older ids are refused.
    qemu_write(&disk, 7, 1 << 20, 4096);
    let err = fails(
        &[
            "backup",
            "differential",
            "--base",
            s(&p("full")),
            s(&disk),
            s(&p("x")),
        ],
        6,
    );
    assert!(err.contains("do a full backup"), "{err}");
    // Tracking turned off: nothing can be answered; a full backup still works.
    ok(&["changeid", "--off", s(&disk)]);
    let err = fails(
        &[
            "backup",
            "incremental",
            "--base",
            s(&p("full")),
            s(&disk),
            s(&p("x")),
        ],
        6,
    );
    assert!(err.contains("do a full backup"), "{err}");
    ok(&["backup", "full", s(&disk), s(&p("untracked"))]);
    assert!(manifest(&p("untracked"))["change_id"].is_null());
    let err = fails(
        &[
            "backup",
            "incremental",
            "--base",
            s(&p("untracked")),
            s(&disk),
            s(&p("x")),
        ],
        6,
    );
    assert!(err.contains("recorded no change id"), "{err}");
    // The chain a restore follows must be intact.
    ok(&["changeid", "--on", s(&other)]);
    ok(&["-q", "backup", "full", s(&other), s(&p("ofull"))]);
    vm_writes(&other, &[(512, 128, 2)]);
    ok(&[
        "-q",
        "backup",
        "incremental",
        "--base",
        s(&p("ofull")),
        s(&other),
        s(&p("oincr")),
    ]);
    std::fs::rename(p("ofull"), p("moved")).unwrap();
    let err = fails(&["restore", s(&p("oincr")), s(&p("r.vmdk"))], 1);
    assert!(err.contains("VIX_E_FILE_NOT_FOUND"), "{err}");
    assert!(!p("r.vmdk").exists());
}
