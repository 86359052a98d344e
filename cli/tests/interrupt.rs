//! Ctrl-C, SIGTERM and SIGHUP during long work: the command stops with exit code 130, the
//! half-made target is removed and the source is untouched; a commit is finished, not torn.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;

/// Large enough that no command finishes between the target appearing and the signal, even on a
/// loaded machine (at 96 MiB a busy CI core could miss the window).
const SOURCE_MIB: usize = 256;

/// Starts `vixdisk ARGS`, sends SIGINT as soon as something new appears in `dir` (the target
/// being made), and checks the exit code, the message and that `dir` is as it was.
fn interrupt(dir: &Path, args: &[&str]) {
    signal(dir, args, "-INT");
}

/// `interrupt` with another signal (`-TERM`, `-HUP`).

#[test]
fn ctrl_c_removes_the_target_and_leaves_the_source_intact() {
    let d = tempfile::tempdir().unwrap();
    let raw = d.path().join("src.raw");
    // Non-zero everywhere, so every grain has to be copied.
    let mib: Vec<u8> = (0..1 << 20).map(|i| (i % 251 + 1) as u8).collect();
    std::fs::write(&raw, mib.repeat(SOURCE_MIB)).unwrap();
    let vmdk = d.path().join("src.vmdk");
    ok(&["convert", "-q", "-f", "raw", s(&raw), s(&vmdk)]);

    let out = d.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let target = |name: &str| out.join(name).to_str().unwrap().to_string();
    // Our copy loop (raw in), the engine's clone (stream out), raw out, and a backup.
    interrupt(&out, &["convert", "-f", "raw", s(&raw), &target("a.vmdk")]);
    interrupt(
        &out,
        &[
            "convert",
            "-t",
            "streamOptimized",
            s(&vmdk),
            &target("b.vmdk"),
        ],
    );
    interrupt(&out, &["convert", "-t", "raw", s(&vmdk), &target("c.raw")]);
    interrupt(&out, &["backup", "full", s(&vmdk), &target("backup")]);

    qemu_check(&vmdk);
    qemu_same(&raw, "raw", &vmdk, "vmdk");
}

/// A source of `mib` MiB that is non-zero everywhere (every grain must be copied): raw and
/// VMDK copies in `dir`.
fn full_source(dir: &Path, mib: usize) -> (PathBuf, PathBuf) {
    let raw = dir.join("src.raw");
    let pattern: Vec<u8> = (0..1 << 20).map(|i| (i % 251 + 1) as u8).collect();
    std::fs::write(&raw, pattern.repeat(mib)).unwrap();
    let vmdk = dir.join("src.vmdk");
    ok(&["convert", "-q", "-f", "raw", s(&raw), s(&vmdk)]);
    (raw, vmdk)
}

#[test]
fn sigterm_and_sighup_stop_like_ctrl_c() {
    let d = tempfile::tempdir().unwrap();
    let (raw, vmdk) = full_source(d.path(), SOURCE_MIB);
    let full = d.path().join("full");
    ok(&["backup", "full", "-q", s(&vmdk), s(&full)]);

    let out = d.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let target = |name: &str| out.join(name).to_str().unwrap().to_string();
    signal(
        &out,
        &["convert", "-f", "raw", s(&raw), &target("a.vmdk")],
        "-TERM",
    );
    signal(
        &out,
        &["backup", "full", s(&vmdk), &target("backup")],
        "-HUP",
    );
    signal(&out, &["restore", s(&full), &target("r.vmdk")], "-TERM");
    signal(
        &out,
        &["restore", "-t", "raw", s(&full), &target("r.raw")],
        "-HUP",
    );
    qemu_check(&vmdk);
    qemu_same(&raw, "raw", &vmdk, "vmdk");
}

/// A commit cannot be abandoned halfway (its parent would hold part of the child): a SIGTERM
/// while it runs lets it finish, then the tool says so and exits 0. Before, the signal killed
/// it mid-commit (exit by signal), leaving a commit to be finished by hand.
#[test]
fn sigterm_during_commit_finishes_the_commit() {
    let d = tempfile::tempdir().unwrap();
    let (raw, base) = full_source(d.path(), SOURCE_MIB);
    let child = d.path().join("child.vmdk");
    ok(&["child", s(&base), s(&child)]);
    // New data in the child over the whole disk, so the commit has SOURCE_MIB MiB to move.
    let pattern: Vec<u8> = (0..1 << 20).map(|i| (i % 241 + 7) as u8).collect();
    let expected = d.path().join("expected.raw");
    std::fs::write(&expected, pattern.repeat(SOURCE_MIB)).unwrap();
    let disk = vixDiskLib::chain::Disk::open(
        &child,
        vixDiskLib::chain::OpenOptions {
            read_only: false,
            single_link: false,
        },
    )
    .unwrap();
    for mib in 0..SOURCE_MIB as u64 {
        disk.write(mib * 2048, &pattern).unwrap();
    }
    disk.close().unwrap();
    drop(disk); // close() flushes; the lock goes with the handle
    drop(raw);

    let modified = |p: &Path| std::fs::metadata(p).unwrap().modified().unwrap();
    let before = modified(&base);
    let mut proc = vixdisk()
        .args(["commit", s(&child)])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The commit has started once the parent changes.
    let deadline = Instant::now() + Duration::from_secs(30);
    while modified(&base) == before {
        if proc.try_wait().unwrap().is_some() {
            let out = proc.wait_with_output().unwrap();
            panic!(
                "the commit ended before it touched the parent: {:?} {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        assert!(Instant::now() < deadline, "the commit never started");
        std::thread::sleep(Duration::from_millis(1));
    }
    tool("kill", &["-TERM", &proc.id().to_string()]);
    let out = proc.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("finished the commit first"), "{stderr}");
    assert!(!child.exists(), "the committed child is gone");
    qemu_check(&base);
    qemu_same(&expected, "raw", &base, "vmdk");
}
