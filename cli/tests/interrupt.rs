//! Ctrl-C during long work: the command stops with exit code 130, the half-made target is
//! removed and the source is untouched.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;

const SOURCE_MIB: usize = 96;

fn entries(dir: &Path) -> BTreeSet<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect()
}

/// Starts `vixdisk ARGS`, sends SIGINT as soon as something new appears in `dir` (the target
/// being made), and checks the exit code, the message and that `dir` is as it was.
fn interrupt(dir: &Path, args: &[&str]) {
    let before = entries(dir);
    let mut child = vixdisk()
        .args(args)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while entries(dir) == before {
        assert!(
            child.try_wait().unwrap().is_none(),
            "{args:?} ended before making its target"
        );
        assert!(Instant::now() < deadline, "{args:?} never made its target");
        std::thread::sleep(Duration::from_millis(1));
    }
    tool("kill", &["-INT", &child.id().to_string()]);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{args:?}: {stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert_eq!(entries(dir), before, "{args:?} left files behind");
}

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
