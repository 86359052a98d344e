//! The tool behaves like a Unix tool (issue 16): exit codes per docs/cli.md, error text that
//! names the user's paths and the lock holder, `--force-share`, progress that shows bytes, one
//! default adapter, and man pages and completions generated from the same definitions.

mod common;

use std::path::Path;

use common::*;
use vixDiskLib::chain::{Disk, OpenOptions};

fn writer(path: &Path) -> Disk {
    Disk::open(
        path,
        OpenOptions {
            read_only: false,
            single_link: false,
        },
    )
    .unwrap()
}

#[test]
fn malformed_change_ids_and_commit_without_parent_are_usage_errors() {
    let d = tempfile::tempdir().unwrap();
    let disk = d.path().join("d.vmdk");
    ok(&["create", "-q", s(&disk), "4M"]);
    ok(&["changeid", "--on", s(&disk)]);
    let err = fails(&["map", "--changed-since", "garbage", s(&disk)], 2);
    assert!(err.contains("is not a change id"), "{err}");
    let before = std::fs::read(&disk).unwrap();
    let err = fails(&["commit", s(&disk)], 2);
    assert!(err.contains("has no parent"), "{err}");
    assert_eq!(
        std::fs::read(&disk).unwrap(),
        before,
        "commit changed the disk"
    );
    // A well-formed id of the disk still works.
    let id = ok(&["changeid", s(&disk)]);
    ok(&["map", "--changed-since", id.trim(), s(&disk)]);
}

#[test]
fn a_missing_directory_is_reported_with_the_users_path() {
    let d = tempfile::tempdir().unwrap();
    let disk = d.path().join("d.vmdk");
    ok(&["create", "-q", s(&disk), "4M"]);
    let raw = d.path().join("d.raw");
    std::fs::write(&raw, vec![1u8; 1 << 20]).unwrap();
    let backup = d.path().join("bk");
    ok(&["backup", "full", "-q", s(&disk), s(&backup)]);
    let missing = d.path().join("no/such/dir");
    let target = |name: &str| missing.join(name).to_str().unwrap().to_string();
    for args in [
        vec!["create", &target("a.vmdk"), "1M"],
        vec!["child", s(&disk), &target("b.vmdk")],
        vec!["convert", s(&disk), &target("c.vmdk")],
        vec![
            "convert",
            "-t",
            "streamOptimized",
            s(&disk),
            &target("c.vmdk"),
        ],
        vec!["convert", "-t", "raw", s(&disk), &target("c.raw")],
        vec!["convert", "-f", "raw", s(&raw), &target("c.vmdk")],
        vec!["restore", s(&backup), &target("r.vmdk")],
        vec!["rename", s(&disk), &target("m.vmdk")],
    ] {
        let err = fails(&args, 1);
        assert!(err.contains("VIX_E_FILE_NOT_FOUND"), "{args:?}: {err}");
        assert!(
            err.contains(args[args.len() - 1]) || err.contains(&target("")),
            "{err}"
        );
        assert!(
            !err.contains("tmp-new") && !err.contains("partial"),
            "{args:?} names an internal file: {err}"
        );
    }
    assert!(!d.path().join("no").exists());
    assert!(disk.exists());
    // Something in the way of the temporary file: the message starts with the user's target.
    std::fs::create_dir(d.path().join(".r.raw.vixdisk-partial")).unwrap();
    let target = d.path().join("r.raw");
    let err = fails(&["convert", "-t", "raw", s(&disk), s(&target)], 1);
    assert!(
        err.starts_with(&format!("vixdisk: VIX_E_FILE_ERROR: {}: ", s(&target))),
        "{err}"
    );
}

#[test]
fn binary_files_are_not_quoted_as_descriptor_lines() {
    let d = tempfile::tempdir().unwrap();
    let junk = d.path().join("junk.vmdk");
    let mut elf = b"\x7fELF\x02\x01\x01\0".to_vec();
    elf.extend((0..4096u32).map(|i| (i * 7919 % 256) as u8));
    let zeros_first: Vec<u8> = (0..4096u32).map(|i| (i * 7919 % 256) as u8).collect();
    for bytes in [elf, zeros_first] {
        std::fs::write(&junk, bytes).unwrap();
        let err = fails(&["info", s(&junk)], 1);
        assert!(
            err.contains("not a VMDK: binary data where a descriptor was expected"),
            "{err}"
        );
        assert!(
            !err.contains("descriptor line") && !err.contains("unexpected line"),
            "{err}"
        );
        assert!(
            !err.chars().any(|c| c.is_control() && c != '\n'),
            "control characters in {err:?}"
        );
    }
}

#[test]
fn a_held_disk_names_the_process_and_force_share_reads_it_anyway() {
    let d = tempfile::tempdir().unwrap();
    let disk = d.path().join("d.vmdk");
    ok(&["create", "-q", s(&disk), "4M"]);
    qemu_write(&disk, 9, 0, 65536);
    let held = writer(&disk);
    held.write(256, &[7u8; 512]).unwrap();
    let pid = std::process::id();
    for args in [
        vec!["info", s(&disk)],
        vec!["map", s(&disk)],
        vec!["check", s(&disk)],
    ] {
        let err = fails(&args, 1);
        assert!(
            err.contains(&format!("locked by another process (pid {pid})")),
            "{args:?}: {err}"
        );
        assert!(!err.contains("another user"), "{err}");
    }
    for cmd in ["info", "map", "check"] {
        for flag in ["--force-share", "-U"] {
            let out = vixdisk().args([cmd, flag, s(&disk)]).output().unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(0), "{cmd} {flag}: {stderr}");
            assert!(stderr.contains("may be stale"), "{cmd} {flag}: {stderr}");
        }
    }
    let map = json(&ok(&["map", "-U", "--json", s(&disk)]));
    assert_eq!(map[0]["start"], 0);
    assert_eq!(map[0]["data"], true);
    // --repair writes: never without the lock.
    fails(&["check", "--repair", "-U", s(&disk)], 2);
    held.close().unwrap();
    drop(held);
    qemu_check(&disk);
}

#[test]
fn check_prints_each_problem_once_and_names_the_option() {
    use std::os::unix::fs::FileExt;
    let d = tempfile::tempdir().unwrap();
    let disk = d.path().join("d.vmdk");
    ok(&["create", "-q", s(&disk), "4M"]);
    qemu_write(&disk, 5, 0, 65536);
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&disk)
        .unwrap();
    let mut gd = [0u8; 8];
    f.read_exact_at(&mut gd, 56).unwrap();
    f.write_all_at(&0xff_ffffu32.to_le_bytes(), u64::from_le_bytes(gd) * 512)
        .unwrap();
    let out = run(&["check", s(&disk)]);
    assert_eq!(out.status.code(), Some(3));
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let problem = "grain directory entry 0 points at sector 16777215";
    assert_eq!(all.matches(problem).count(), 1, "{all}");
    assert!(all.contains("--repair"), "{all}");
    assert!(!all.contains("CheckRepair"), "{all}");
}

#[test]
fn backup_into_a_used_directory_fails_before_printing_anything() {
    let d = tempfile::tempdir().unwrap();
    let disk = d.path().join("d.vmdk");
    ok(&["create", "-q", s(&disk), "4M"]);
    ok(&["changeid", "--on", s(&disk)]);
    let dir = d.path().join("bk");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("keep"), b"x").unwrap();
    let snap = d.path().join("snap.vmdk");
    let out = run(&["backup", "full", "--snapshot", s(&snap), s(&disk), s(&dir)]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("VIX_E_FILE_ALREADY_EXISTS"));
    assert!(
        !snap.exists(),
        "a snapshot was taken for a backup that cannot be written"
    );
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
}

/// The progress bar is drawn only on a terminal: `script` gives the command one.
#[test]
fn convert_progress_shows_bytes_rate_and_eta() {
    let d = tempfile::tempdir().unwrap();
    let disk = d.path().join("d.vmdk");
    ok(&["create", "-q", s(&disk), "64M"]);
    qemu_write(&disk, 5, 0, 1 << 20);
    let target = d.path().join("t.vmdk");
    let command = format!(
        "{} convert -t streamOptimized {} {}",
        env!("CARGO_BIN_EXE_vixdisk"),
        s(&disk),
        s(&target)
    );
    let out = tool("script", &["-qec", &command, "/dev/null"]);
    // indicatif's {bytes}/{total_bytes} ({bytes_per_sec}, {eta}).
    assert!(out.contains("/64.00 MiB ("), "{out:?}");
    assert!(out.contains("B/s, "), "{out:?}");
    assert!(!out.contains('%'), "{out:?}");
    qemu_same(&disk, "vmdk", &target, "vmdk");
}

#[test]
fn one_default_adapter_and_create_help_has_no_source() {
    let help = ok(&["create", "--help"]);
    let help = help.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(!help.contains("source"), "{help}");
    assert!(help.contains("[default: lsilogic]"), "{help}");
    let d = tempfile::tempdir().unwrap();
    let disk = d.path().join("d.vmdk");
    ok(&["create", "-q", s(&disk), "4M"]);
    assert_eq!(
        json(&ok(&["info", "--json", s(&disk)]))["adapter"],
        "lsilogic"
    );
    let raw = d.path().join("d.raw");
    std::fs::write(&raw, vec![0u8; 1 << 20]).unwrap();
    let converted = d.path().join("c.vmdk");
    ok(&["convert", "-q", "-f", "raw", s(&raw), s(&converted)]);
    assert_eq!(
        json(&ok(&["info", "--json", s(&converted)]))["adapter"],
        "lsilogic"
    );
    // The documented default is the one the tool uses.
    let docs =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/cli.md")).unwrap();
    assert!(
        docs.contains("else `lsilogic`"),
        "docs/cli.md states another default"
    );
}

#[test]
fn man_pages_and_completions_come_from_the_command_definitions() {
    let d = tempfile::tempdir().unwrap();
    ok(&["generate-docs", s(d.path())]);
    let man = std::fs::read_to_string(d.path().join("man/man1/vixdisk.1")).unwrap();
    assert!(man.contains(".TH vixdisk 1"), "{man}");
    let backup = std::fs::read_to_string(d.path().join("man/man1/vixdisk-backup-full.1")).unwrap();
    assert!(backup.contains("snapshot"), "{backup}");
    assert!(!d.path().join("man/man1/vixdisk-generate-docs.1").exists());
    for (file, needle) in [
        ("bash-completion/completions/vixdisk", "--force-share"),
        ("zsh/site-functions/_vixdisk", "#compdef vixdisk"),
        (
            "fish/vendor_completions.d/vixdisk.fish",
            "complete -c vixdisk",
        ),
    ] {
        let text = std::fs::read_to_string(d.path().join(file)).unwrap();
        assert!(text.contains(needle), "{file}: {needle} missing");
    }
    // bash accepts its completion script.
    tool(
        "bash",
        &[
            "-n",
            s(&d.path().join("bash-completion/completions/vixdisk")),
        ],
    );
}

/// docs/cli.md's `info` row lists the change tracking values the tool prints.
#[test]
fn the_info_row_in_the_docs_lists_what_info_prints() {
    let docs =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/cli.md")).unwrap();
    let row = docs
        .lines()
        .find(|l| l.starts_with("| `info "))
        .expect("docs/cli.md has an info row");
    let d = tempfile::tempdir().unwrap();
    let disk = d.path().join("d.vmdk");
    ok(&["create", "-q", s(&disk), "4M"]);
    let mut seen = Vec::new();
    for on in [false, true] {
        if on {
            ok(&["changeid", "--on", s(&disk)]);
        }
        let text = ok(&["info", s(&disk)]);
        let value = text
            .lines()
            .find_map(|l| l.strip_prefix("change tracking: "))
            .expect("info prints change tracking")
            .to_string();
        let json_value = json(&ok(&["info", "--json", s(&disk)]))["change_tracking"].clone();
        assert_eq!(json_value, value.as_str());
        assert!(
            row.contains(&format!("`{value}`")),
            "docs lack `{value}`: {row}"
        );
        seen.push(value);
    }
    assert_eq!(seen, ["off", "on"]);
}
