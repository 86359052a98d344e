//! Helpers for driving the `vixdisk` binary and checking results with qemu-img/qemu-io.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The binary under test.
pub fn vixdisk() -> Command {
    Command::new(env!("CARGO_BIN_EXE_vixdisk"))
}

/// Runs `vixdisk ARGS` and returns its output (not checked).
pub fn run(args: &[&str]) -> Output {
    vixdisk().args(args).output().expect("vixdisk runs")
}

fn describe(what: &str, out: &Output) -> String {
    format!(
        "{what}: status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs `vixdisk ARGS`, requires success, returns stdout.
pub fn ok(args: &[&str]) -> String {
    let out = run(args);
    assert!(out.status.success(), "{}", describe(&args.join(" "), &out));
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// Runs `vixdisk ARGS`, requires exit code `code`, returns stderr.
pub fn fails(args: &[&str], code: i32) -> String {
    let out = run(args);
    assert_eq!(
        out.status.code(),
        Some(code),
        "{}",
        describe(&args.join(" "), &out)
    );
    String::from_utf8(out.stderr).expect("utf-8 output")
}

/// Runs an external tool and requires success; returns stdout.
pub fn tool(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} runs: {e}"));
    assert!(
        out.status.success(),
        "{}",
        describe(&format!("{program} {}", args.join(" ")), &out)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// `qemu-img check` passes.
pub fn qemu_check(path: &Path) {
    tool("qemu-img", &["check", "-f", "vmdk", s(path)]);
}

/// `qemu-img compare` says the two images have the same content (formats probed).
pub fn qemu_same(a: &Path, a_fmt: &str, b: &Path, b_fmt: &str) {
    tool(
        "qemu-img",
        &["compare", "-f", a_fmt, "-F", b_fmt, s(a), s(b)],
    );
}

/// Writes `pattern` bytes over `[offset, offset + len)` with qemu-io.
pub fn qemu_write(path: &Path, pattern: u8, offset: u64, len: u64) {
    tool(
        "qemu-io",
        &[
            "-f",
            "vmdk",
            "-c",
            &format!("write -P {pattern} {offset} {len}"),
            s(path),
        ],
    );
}

/// A "VM" writing `(sector, count, byte)` runs into the disk at `path` through the engine
/// (so change tracking sees them, unlike a write by qemu-io).
pub fn vm_writes(path: &Path, writes: &[(u64, u64, u8)]) {
    let disk = vixDiskLib::chain::Disk::open(
        path,
        vixDiskLib::chain::OpenOptions {
            read_only: false,
            single_link: false,
        },
    )
    .unwrap();
    for &(sector, count, byte) in writes {
        disk.write(sector, &vec![byte; (count * 512) as usize])
            .unwrap();
    }
    disk.close().unwrap();
}

/// A path as &str (test paths are UTF-8).
pub fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// Parses JSON output.
pub fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}):\n{text}"))
}

/// A qemu-made chain in `dir`: base.vmdk (4 MiB, data at 0 and 1 MiB) and child.vmdk over it
/// (data at 1 MiB and 3 MiB). Returns the child.
pub fn qemu_chain(dir: &Path) -> PathBuf {
    let base = dir.join("base.vmdk");
    let child = dir.join("child.vmdk");
    tool("qemu-img", &["create", "-q", "-f", "vmdk", s(&base), "4M"]);
    qemu_write(&base, 1, 0, 65536);
    qemu_write(&base, 2, 1 << 20, 131072);
    tool(
        "qemu-img",
        &[
            "create",
            "-q",
            "-f",
            "vmdk",
            "-b",
            "base.vmdk",
            "-F",
            "vmdk",
            s(&child),
        ],
    );
    qemu_write(&child, 3, 1 << 20, 65536);
    qemu_write(&child, 4, 3 << 20, 65536);
    child
}

/// The entries of `dir`.
pub fn entries(dir: &Path) -> BTreeSet<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect()
}

/// Starts `vixdisk ARGS`, sends `sig` (`-INT`, `-TERM`, …) as soon as something new appears in
/// `dir` (the target being made), and checks exit code 130, the message and that `dir` is as
/// it was.
pub fn signal(dir: &Path, args: &[&str], sig: &str) {
    let before = entries(dir);
    let mut child = vixdisk()
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
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
    tool("kill", &[sig, &child.id().to_string()]);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{args:?} {sig}: {stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert_eq!(entries(dir), before, "{args:?} left files behind");
}
