//! Every command driven as a user would, results checked with qemu-img and qemu-io.

mod common;

use common::*;

#[test]
fn create_every_type_and_info_reports_it() {
    let d = tempfile::tempdir().unwrap();
    for (t, create_type, qemu_checks) in [
        ("monolithicSparse", "monolithicSparse", true),
        ("twoGbMaxExtentSparse", "twoGbMaxExtentSparse", true),
        ("monolithicFlat", "monolithicFlat", false),
        ("streamOptimized", "streamOptimized", true),
        ("vmfsThin", "vmfsThin", false),
    ] {
        let p = d.path().join(format!("{t}.vmdk"));
        ok(&["create", "-t", t, "-a", "lsilogic", s(&p), "8M"]);
        if qemu_checks {
            qemu_check(&p);
        }
        let info = json(&ok(&["info", "--json", s(&p)]));
        assert_eq!(info["type"], create_type);
        assert_eq!(info["capacity"], 8 << 20);
        assert_eq!(info["adapter"], "lsilogic");
        assert_eq!(info["change_tracking"], "off");
        assert_eq!(info["chain"].as_array().unwrap().len(), 1);
        if t != "vmfsThin" {
            // qemu-img does not open vmfsThin descriptors.
            let qemu = json(&tool("qemu-img", &["info", "--output=json", s(&p)]));
            assert_eq!(qemu["virtual-size"], 8 << 20);
        }
    }
    // Exists already, bad size, raw: refused with the documented codes.
    let p = d.path().join("monolithicSparse.vmdk");
    let err = fails(&["create", s(&p), "8M"], 1);
    assert!(err.contains("VIX_E_FILE_ALREADY_EXISTS"), "{err}");
    fails(&["create", s(&d.path().join("x.vmdk")), "1000"], 2);
    fails(
        &["create", "-t", "raw", s(&d.path().join("x.raw")), "1M"],
        2,
    );
}

#[test]
fn info_shows_the_chain_with_cids_and_hints() {
    let d = tempfile::tempdir().unwrap();
    let child = qemu_chain(d.path());
    let info = json(&ok(&["info", "--json", s(&child)]));
    let chain = info["chain"].as_array().unwrap();
    assert_eq!(chain.len(), 2);
    assert_eq!(chain[0]["parent_hint"], "base.vmdk");
    assert_eq!(chain[0]["parent_cid"], chain[1]["cid"]);
    assert!(chain[1]["parent_cid"].is_null());
    let text = ok(&["info", s(&child)]);
    assert!(text.contains("chain (2 link(s), leaf first)"), "{text}");
    assert!(text.contains("└─ "), "{text}");
    assert!(text.contains("parent hint \"base.vmdk\""), "{text}");
    assert!(text.contains("change tracking: off"), "{text}");
}

#[test]
fn map_json_equals_qemu_img_map() {
    let d = tempfile::tempdir().unwrap();
    let child = qemu_chain(d.path());
    let stream = d.path().join("stream.vmdk");
    ok(&["convert", "-t", "streamOptimized", s(&child), s(&stream)]);
    for disk in [&child, &stream] {
        let ours = json(&ok(&["map", "--json", s(disk)]));
        let qemu = json(&tool("qemu-img", &["map", "--output=json", s(disk)]));
        assert_eq!(ours, qemu, "map of {}", disk.display());
    }
    // The text form lists only allocated areas, each with its owning link.
    let text = ok(&["map", s(&child)]);
    let lines: Vec<&str> = text.lines().skip(1).collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(
        lines[0].starts_with("0x0 ") && lines[0].ends_with("base.vmdk"),
        "{text}"
    );
    assert!(
        lines[1].starts_with("0x100000 ") && lines[1].ends_with("child.vmdk"),
        "{text}"
    );
    // "*" lists the allocated areas (64 KiB grains) with their owners, as QueryChangedAreas.
    let allocated = json(&ok(&["map", "--json", "--changed-since", "*", s(&child)]));
    let areas = allocated.as_array().unwrap();
    assert!(areas.iter().all(|a| a["present"] == true), "{allocated}");
    let bytes: u64 = areas.iter().map(|a| a["length"].as_u64().unwrap()).sum();
    assert_eq!(bytes, 256 << 10, "{allocated}");
    // A chain that does not track changes cannot answer an id.
    let err = fails(&["map", "--changed-since", "x", s(&child)], 2); // malformed: bad usage
    assert!(err.contains("is not a change id"), "{err}");
    let id = "52 ab f5 21 86 ad f2 ff-5b ef c0 f2 3b 53 eb 3b/1";
    let err = fails(&["map", "--changed-since", id, s(&child)], 6);
    assert!(err.contains("do a full backup"), "{err}");
}

#[test]
fn convert_between_all_types_and_raw() {
    let d = tempfile::tempdir().unwrap();
    let child = qemu_chain(d.path());
    for t in [
        "monolithicSparse",
        "twoGbMaxExtentSparse",
        "monolithicFlat",
        "twoGbMaxExtentFlat",
        "streamOptimized",
        "vmfs",
    ] {
        let out = d.path().join(format!("{t}.vmdk"));
        ok(&["convert", "-t", t, s(&child), s(&out)]);
        qemu_same(&child, "vmdk", &out, "vmdk");
        if !t.contains("Flat") && t != "vmfs" {
            qemu_check(&out);
        }
    }
    // Out to raw, and raw back in to a sparse disk and a stream.
    let raw = d.path().join("disk.raw");
    ok(&["clone", "-t", "raw", s(&child), s(&raw)]);
    assert_eq!(std::fs::metadata(&raw).unwrap().len(), 4 << 20);
    qemu_same(&child, "vmdk", &raw, "raw");
    for t in ["monolithicSparse", "streamOptimized"] {
        let back = d.path().join(format!("from-raw-{t}.vmdk"));
        ok(&["convert", "-f", "raw", "-t", t, s(&raw), s(&back)]);
        qemu_same(&raw, "raw", &back, "vmdk");
        qemu_check(&back);
        // Zero areas of the raw image stay unallocated.
        let map = json(&tool("qemu-img", &["map", "--output=json", s(&back)]));
        let data: u64 = map
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["data"] == true)
            .map(|a| a["length"].as_u64().unwrap())
            .sum();
        assert_eq!(data, 4 * 65536, "{map}");
    }
    // Refuses an existing target unless --overwrite.
    let target = d.path().join("monolithicSparse.vmdk");
    let err = fails(&["convert", s(&child), s(&target)], 1);
    assert!(err.contains("VIX_E_FILE_ALREADY_EXISTS"), "{err}");
    ok(&["convert", "--overwrite", "-f", "raw", s(&raw), s(&target)]);
    qemu_same(&raw, "raw", &target, "vmdk");
    // Progress bars stay off when stderr is not a terminal.
    let out = run(&["convert", s(&child), s(&d.path().join("quiet.vmdk"))]);
    assert!(out.status.success() && out.stderr.is_empty());
}

#[test]
fn child_attach_and_discard_redo_logs() {
    let d = tempfile::tempdir().unwrap();
    let base = d.path().join("base.vmdk");
    ok(&["create", s(&base), "4M"]);
    qemu_write(&base, 7, 0, 1 << 20);
    let before = d.path().join("before.raw");
    tool("qemu-img", &["convert", "-O", "raw", s(&base), s(&before)]);

    let redo = d.path().join("redo.vmdk");
    ok(&["child", s(&base), s(&redo)]);
    qemu_write(&redo, 9, 65536, 65536);
    qemu_check(&redo);
    let backing = json(&tool("qemu-img", &["info", "--output=json", s(&redo)]));
    assert_eq!(backing["backing-filename"], "base.vmdk");
    // The parent did not change; discarding the redo log drops its writes.
    qemu_same(&base, "vmdk", &before, "raw");
    ok(&["discard", s(&redo)]);
    assert!(!redo.exists());
    qemu_same(&base, "vmdk", &before, "raw");
    // A disk without a parent is not a redo log.
    let err = fails(&["discard", s(&base)], 2);
    assert!(err.contains("has no parent"), "{err}");
    assert!(base.exists());

    // Attach an empty stand-alone disk on top of the base: it then reads as the base.
    let top = d.path().join("top.vmdk");
    ok(&["create", s(&top), "4M"]);
    ok(&["attach", s(&base), s(&top)]);
    qemu_same(&top, "vmdk", &before, "raw");
    let info = json(&ok(&["info", "--json", s(&top)]));
    assert_eq!(info["chain"].as_array().unwrap().len(), 2);
    let other = d.path().join("other.vmdk");
    ok(&["create", s(&other), "8M"]);
    let err = fails(&["attach", s(&base), s(&other)], 1);
    assert!(err.contains("VIX_E_DISK_CAPACITY_MISMATCH"), "{err}");
    let err = fails(&["child", "-t", "monolithicFlat", s(&base), s(&other)], 2);
    assert!(
        err.contains("monolithicSparse or twoGbMaxExtentSparse"),
        "{err}"
    );
}

/// Sets the sparse header's uncleanShutdown byte, as a crash while writing would.
fn mark_unclean(path: &std::path::Path) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.write_all_at(&[1], 72).unwrap();
}

/// Points the first redundant grain-directory entry past the end of the file.
fn damage_redundant_directory(path: &std::path::Path) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut rgd = [0u8; 8];
    f.read_exact_at(&mut rgd, 48).unwrap();
    let at = u64::from_le_bytes(rgd) * 512;
    f.write_all_at(&0xffffu32.to_le_bytes(), at).unwrap();
}

#[test]
fn check_and_repair_exit_codes() {
    let d = tempfile::tempdir().unwrap();
    let disk = d.path().join("d.vmdk");
    ok(&["create", s(&disk), "4M"]);
    qemu_write(&disk, 5, 0, 65536);
    assert!(ok(&["check", s(&disk)]).contains("no problems found"));
    // The unclean flag alone is a note (the metadata is consistent); repair clears it.
    mark_unclean(&disk);
    let out = ok(&["check", "--json", s(&disk)]);
    let report = json(&out);
    assert_eq!(report["outcome"], "clean");
    assert_eq!(report["problems"][0]["kind"], "UncleanShutdown");
    ok(&["check", "--repair", s(&disk)]);
    assert_eq!(
        json(&ok(&["check", "--json", s(&disk)]))["problems"],
        serde_json::json!([])
    );
    damage_redundant_directory(&disk);
    let err = fails(&["check", s(&disk)], 3);
    assert!(err.contains("VIX_E_DISK_NEEDSREPAIR"), "{err}");
    let report = vixdisk()
        .args(["check", "--json", s(&disk)])
        .output()
        .unwrap();
    assert_eq!(report.status.code(), Some(3));
    let report = json(&String::from_utf8_lossy(&report.stdout));
    assert_eq!(report["outcome"], "needs-repair");
    let out = ok(&["check", "--repair", s(&disk)]);
    assert!(out.contains("repaired"), "{out}");
    ok(&["check", s(&disk)]);
    qemu_check(&disk);
    // A file that is not a disk is an error of the check itself.
    let junk = d.path().join("junk.vmdk");
    std::fs::write(&junk, vec![0x55u8; 4096]).unwrap();
    let err = run(&["check", s(&junk)]);
    assert_ne!(err.status.code(), Some(0));
}

#[test]
fn grow_shrink_defragment_rename_and_meta() {
    let d = tempfile::tempdir().unwrap();
    let disk = d.path().join("d.vmdk");
    ok(&["create", s(&disk), "4M"]);
    // Grains written backwards, and one grain of zeros that shrink releases.
    qemu_write(&disk, 3, 2 << 20, 65536);
    qemu_write(&disk, 0, 1 << 20, 65536);
    qemu_write(&disk, 1, 0, 65536);
    let reference = d.path().join("ref.raw");
    tool(
        "qemu-img",
        &["convert", "-O", "raw", s(&disk), s(&reference)],
    );

    let out = ok(&["shrink", s(&disk)]);
    assert!(out.contains("released 1 grain(s)"), "{out}");
    ok(&["defragment", s(&disk)]);
    qemu_check(&disk);
    qemu_same(&disk, "vmdk", &reference, "raw");
    let map = json(&tool("qemu-img", &["map", "--output=json", s(&disk)]));
    let offsets: Vec<u64> = map
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["offset"].as_u64())
        .collect();
    assert!(offsets.windows(2).all(|w| w[0] < w[1]), "{map}");

    ok(&["grow", s(&disk), "8M"]);
    let info = json(&tool("qemu-img", &["info", "--output=json", s(&disk)]));
    assert_eq!(info["virtual-size"], 8 << 20);
    qemu_check(&disk);
    fails(&["grow", s(&disk), "1M"], 1);

    let moved = d.path().join("moved.vmdk");
    ok(&["rename", s(&disk), s(&moved)]);
    assert!(!disk.exists());
    qemu_check(&moved);

    ok(&["meta", "set", s(&moved), "toolsVersion", "12345"]);
    assert_eq!(ok(&["meta", "get", s(&moved), "toolsVersion"]), "12345\n");
    let list = ok(&["meta", "list", s(&moved)]);
    assert!(list.contains("toolsVersion = \"12345\""), "{list}");
    assert!(list.contains("adapterType = \"lsilogic\""), "{list}");
    let err = fails(&["meta", "get", s(&moved), "nope"], 1);
    assert!(err.contains("VIX_E_DISK_KEY_NOTFOUND"), "{err}");
    qemu_check(&moved);
}

#[test]
fn full_backup_and_restore() {
    let d = tempfile::tempdir().unwrap();
    let child = qemu_chain(d.path());
    let bk = d.path().join("backup");
    let out = ok(&["backup", "full", s(&child), s(&bk)]);
    assert!(out.contains("512 of 8192 sectors"), "{out}");
    // Only the allocated blocks were copied.
    assert_eq!(
        std::fs::metadata(bk.join("data.bin")).unwrap().len(),
        512 * 512
    );
    let manifest = json(&std::fs::read_to_string(bk.join("manifest.json")).unwrap());
    assert_eq!(manifest["kind"], "full");
    assert_eq!(manifest["capacity_sectors"], 8192);
    assert_eq!(manifest["source"]["links"], 2);

    for (t, name, fmt) in [
        ("monolithicSparse", "r.vmdk", "vmdk"),
        ("streamOptimized", "r-stream.vmdk", "vmdk"),
        ("raw", "r.raw", "raw"),
    ] {
        let target = d.path().join(name);
        ok(&["restore", "-t", t, s(&bk), s(&target)]);
        qemu_same(&child, "vmdk", &target, fmt);
        if fmt == "vmdk" {
            qemu_check(&target);
        }
    }
    // A backup directory must be new or empty.
    let err = fails(&["backup", "full", s(&child), s(&bk)], 1);
    assert!(err.contains("VIX_E_FILE_ALREADY_EXISTS"), "{err}");
    // A damaged block is caught before anything is written.
    {
        use std::os::unix::fs::FileExt;
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(bk.join("data.bin"))
            .unwrap();
        f.write_all_at(&[0xee], 70000).unwrap();
    }
    let target = d.path().join("bad.vmdk");
    let err = fails(&["restore", s(&bk), s(&target)], 1);
    assert!(err.contains("CRC-32"), "{err}");
    assert!(!target.exists());
    // Without a manifest the directory is not a backup: its data file says an unfinished one.
    std::fs::remove_file(bk.join("manifest.json")).unwrap();
    let err = fails(&["restore", s(&bk), s(&target)], 1);
    assert!(err.contains("unfinished backup"), "{err}");
    let err = fails(&["restore", s(d.path()), s(&target)], 1);
    assert!(err.contains("VIX_E_FILE_NOT_FOUND"), "{err}");
    // A damaged manifest is no base for an incremental backup.
    std::fs::write(bk.join("manifest.json"), b"").unwrap();
    let err = fails(
        &["backup", "incremental", "--base", s(&bk), s(&child), "x"],
        1,
    );
    assert!(err.contains("not a usable backup"), "{err}");
}

#[test]
fn errors_name_the_vix_error_the_file_and_the_cause() {
    let d = tempfile::tempdir().unwrap();
    let missing = d.path().join("missing.vmdk");
    let err = fails(&["info", s(&missing)], 1);
    assert!(err.starts_with("vixdisk: VIX_E_FILE_NOT_FOUND: "), "{err}");
    assert!(err.contains(s(&missing)), "{err}");
    let junk = d.path().join("junk.vmdk");
    std::fs::write(&junk, b"not a disk at all\n").unwrap();
    let err = fails(&["map", s(&junk)], 1);
    assert!(err.contains("VIX_E_DISK_INVALIDDISK"), "{err}");
    // A chain whose parent was changed after the child was made.
    let child = qemu_chain(d.path());
    let base = d.path().join("base.vmdk");
    tool("qemu-img", &["create", "-q", "-f", "vmdk", s(&base), "4M"]);
    let err = fails(&["info", s(&child)], 1);
    assert!(err.contains("VIX_E_DISK_CID_MISMATCH"), "{err}");
    assert!(err.contains("child.vmdk"), "{err}");
    fails(&["frobnicate"], 2);
    fails(&["convert", "-t", "qcow2", "a", "b"], 2);
}

#[test]
fn every_subcommand_has_help() {
    let top = ok(&["--help"]);
    for cmd in [
        "info",
        "map",
        "check",
        "create",
        "child",
        "discard",
        "attach",
        "convert",
        "clone",
        "grow",
        "shrink",
        "defragment",
        "rename",
        "meta",
        "backup",
        "restore",
        "commit",
        "changeid",
    ] {
        if cmd != "clone" {
            assert!(top.contains(cmd), "{cmd} missing from --help");
        }
        let help = ok(&[cmd, "--help"]);
        assert!(help.contains("Usage: vixdisk"), "{cmd}: {help}");
    }
    for sub in [
        ["meta", "get"],
        ["meta", "set"],
        ["meta", "list"],
        ["backup", "full"],
        ["backup", "incremental"],
        ["backup", "differential"],
    ] {
        ok(&[sub[0], sub[1], "--help"]);
    }
    assert!(top.contains("130 interrupted"), "{top}");
}

#[test]
fn a_reader_that_goes_away_is_not_an_error() {
    let d = tempfile::tempdir().unwrap();
    let child = qemu_chain(d.path());
    for args in [&["map", s(&child)][..], &["info", "--json", s(&child)]] {
        let mut p = vixdisk()
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Close the read end before anything is written: every write gets EPIPE.
        drop(p.stdout.take());
        let out = p.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(stderr.is_empty(), "{args:?}: {stderr}");
    }
}

#[test]
fn commit_folds_a_redo_log_and_changeid_tracks_writes() {
    let d = tempfile::tempdir().unwrap();
    let (base, redo) = (d.path().join("b.vmdk"), d.path().join("b.vmdk.REDO"));
    ok(&["create", s(&base), "8M"]);
    qemu_write(&base, 0x11, 0, 1 << 20);
    ok(&["child", s(&base), s(&redo)]);
    qemu_write(&redo, 0x22, 512 << 10, 1 << 20);
    let flat = d.path().join("chain.raw");
    tool("qemu-img", &["convert", "-O", "raw", s(&redo), s(&flat)]);
    ok(&["commit", s(&redo)]);
    assert!(!redo.exists());
    qemu_check(&base);
    qemu_same(&flat, "raw", &base, "vmdk");
    // A disk without a parent is not a redo log.
    fails(&["commit", s(&base)], 2); // bad usage, as for discard
    // Change ids: off until turned on; stable without writes; new after one.
    fails(&["changeid", s(&base)], 1);
    let first = ok(&["changeid", "--on", s(&base)]);
    assert_eq!(ok(&["changeid", s(&base)]), first);
    assert_eq!(
        json(&ok(&["info", "--json", s(&base)]))["change_tracking"],
        "on"
    );
    ok(&[
        "convert",
        "-f",
        "raw",
        s(&flat),
        s(&d.path().join("copy.vmdk")),
    ]);
    tool(
        "sh",
        &[
            "-c",
            &format!(
                "printf x | dd of={} bs=1 seek=0 conv=notrunc 2>/dev/null",
                s(&flat)
            ),
        ],
    );
    assert_eq!(ok(&["changeid", s(&base)]), first, "nothing wrote the disk");
    ok(&["changeid", "--off", s(&base)]);
    fails(&["changeid", s(&base)], 1);
}
