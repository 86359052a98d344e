//! `vixdisk` reading NBD exports (qemu-nbd or nbdkit on a unix socket): `info` and `map`
//! checked against `qemu-img map` of the same export; `convert` and `backup full` from an
//! export checked with `qemu-img compare` against the served image; the flags and targets an
//! export cannot take refused with exit 2; Ctrl-C/SIGTERM while copying from an export.
//! Skipped (with a line on stderr) only where qemu-nbd, nbdkit or libnbd is missing.

mod common;

use std::collections::BTreeSet;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// A read-only NBD server on a socket in `dir`; killed when dropped. `.1` is its URI.
struct Server(Child, String);

impl Server {
    /// qemu-nbd serving the raw image `image`.
    fn start(dir: &Path, image: &Path) -> Server {
        Server::qemu(dir, image, "raw", &[])
    }

    /// qemu-nbd serving `image` of format `format` (`extra`: e.g. `-B BITMAP`).
    fn qemu(dir: &Path, image: &Path, format: &str, extra: &[&str]) -> Server {
        let sock = socket(dir, image);
        let mut cmd = Command::new("qemu-nbd");
        cmd.args(["-f", format, "--read-only", "--persistent", "--shared=4"])
            .args(extra)
            .arg(format!("--socket={}", sock.display()))
            .arg(image);
        Server::spawn(cmd, &sock)
    }

    /// nbdkit's file plugin serving the raw image `image` read-only (`extra`: nbdkit options).
    fn nbdkit(dir: &Path, image: &Path, extra: &[&str]) -> Server {
        let sock = socket(dir, image);
        let mut cmd = Command::new("nbdkit");
        cmd.args(["-f", "-r", "--exit-with-parent", "-U"])
            .arg(&sock)
            .args(extra)
            .arg("file")
            .arg(image);
        Server::spawn(cmd, &sock)
    }

    fn spawn(mut cmd: Command, sock: &Path) -> Server {
        let child = cmd
            .stdout(Stdio::null())
            .spawn()
            .expect("the NBD server runs (scripts/setup.sh installs it)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !sock.exists() {
            assert!(Instant::now() < deadline, "the NBD server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Server(child, format!("nbd+unix:///?socket={}", sock.display()))
    }
}

/// The socket for serving `image` (one per image, so a test can run several servers).
fn socket(dir: &Path, image: &Path) -> PathBuf {
    let name = image.file_name().unwrap().to_string_lossy();
    dir.join(format!("{name}.sock"))
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// True (and a line on stderr) when `tools` or libnbd are missing: the test is skipped.
fn missing(tools: &[&str]) -> bool {
    let mut absent: Vec<String> = tools
        .iter()
        .filter(|t| Command::new(t).arg("--version").output().is_err())
        .map(|t| t.to_string())
        .collect();
    // The CLI loads libnbd when it connects; the facade's NBD connection does the same.
    if vixDiskLib::Connection::nbd("nbd+unix:///?socket=/nonexistent.sock").is_err() {
        absent.push("libnbd.so.0".into());
    }
    if absent.is_empty() {
        return false;
    }
    eprintln!(
        "skipped: {} not installed (scripts/setup.sh installs them)",
        absent.join(", ")
    );
    true
}

/// (start, length) of the areas holding data in a qemu-img-shaped JSON map.
fn data_areas(map: &serde_json::Value) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    for a in map.as_array().expect("a JSON array") {
        if a["data"] != true {
            continue;
        }
        let (start, len) = (a["start"].as_u64().unwrap(), a["length"].as_u64().unwrap());
        match out.last_mut() {
            Some(last) if last.0 + last.1 == start => last.1 += len,
            _ => out.push((start, len)),
        }
    }
    out
}

#[test]
fn info_and_map_read_an_nbd_export() {
    if missing(&["qemu-nbd"]) {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let image = d.path().join("d.raw");
    tool("qemu-img", &["create", "-q", "-f", "raw", s(&image), "16M"]);
    tool(
        "qemu-io",
        &[
            "-f",
            "raw",
            "-c",
            "write -P 0x5a 1M 512K",
            "-c",
            "write -P 0x33 9M 64K",
            s(&image),
        ],
    );
    let server = Server::start(d.path(), &image);
    let uri = server.1.as_str();

    let info = json(&ok(&["info", "--json", uri]));
    assert_eq!(info["capacity"], 16 << 20);
    assert_eq!(info["transport"], "nbd");
    assert!(ok(&["info", uri]).contains("capacity: 16.0 MiB"));

    let ours = data_areas(&json(&ok(&["map", "--json", uri])));
    let qemu = data_areas(&json(&tool("qemu-img", &["map", "--output=json", uri])));
    assert_eq!(ours, qemu);
    assert!(
        ours.iter()
            .any(|&(s, l)| s <= 1 << 20 && s + l >= (1 << 20) + (512 << 10)),
        "the written area is mapped: {ours:?}"
    );
    let text = ok(&["map", uri]);
    assert!(text.contains("0x100000"), "{text}");

    // No server at the socket: the failure names the export and its VixError.
    let gone = format!(
        "nbd+unix:///?socket={}",
        d.path().join("none.sock").display()
    );
    let err = fails(&["info", &gone], 1);
    assert!(err.contains("VIX_E_HOST_NETWORK_CONN_REFUSED"), "{err}");
}

/// `map --changed-since NAME` of an export lists the dirty areas of the qemu bitmap NAME; a
/// bitmap the server does not export is an unanswerable change id (exit 6). Before, the
/// name was refused as a malformed change id (exit 2) although docs/cli.md offers it.
#[test]
fn map_changed_since_names_a_dirty_bitmap() {
    if missing(&["qemu-nbd"]) {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let image = d.path().join("d.qcow2");
    tool(
        "qemu-img",
        &["create", "-q", "-f", "qcow2", s(&image), "8M"],
    );
    tool(
        "qemu-io",
        &["-f", "qcow2", "-c", "write -P 1 0 64K", s(&image)],
    );
    tool(
        "qemu-img",
        &["bitmap", "--add", "--granularity", "65536", s(&image), "b0"],
    );
    // Written after the bitmap was added: dirty.
    tool(
        "qemu-io",
        &["-f", "qcow2", "-c", "write -P 2 2M 128K", s(&image)],
    );
    let server = Server::qemu(d.path(), &image, "qcow2", &["-B", "b0"]);
    let uri = server.1.as_str();

    let dirty = data_areas(&json(&ok(&["map", "--json", "--changed-since", "b0", uri])));
    assert_eq!(dirty, vec![(2 << 20, 128 << 10)]);
    let err = fails(&["map", "--changed-since", "nosuch", uri], 6);
    assert!(err.contains("qemu:dirty-bitmap:nosuch"), "{err}");
    assert!(err.contains("do a full backup"), "{err}");
}

/// A monolithicSparse VMDK made by qemu-img: data in whole and partial grains, at the start,
/// in the middle and in the last grain.
fn served_vmdk(dir: &Path) -> PathBuf {
    let vmdk = dir.join("src.vmdk");
    tool("qemu-img", &["create", "-q", "-f", "vmdk", s(&vmdk), "16M"]);
    qemu_write(&vmdk, 0x11, 0, 4096);
    qemu_write(&vmdk, 0x5a, 1 << 20, 512 << 10);
    qemu_write(&vmdk, 0x33, (9 << 20) + 4096, 60 << 10);
    qemu_write(&vmdk, 0x77, (16 << 20) - 512, 512);
    vmdk
}

/// `qemu-img map` of a VMDK: where it holds data.
fn vmdk_data(path: &Path) -> Vec<(u64, u64)> {
    data_areas(&json(&tool(
        "qemu-img",
        &["map", "--output=json", "-f", "vmdk", s(path)],
    )))
}

#[test]
fn convert_copies_an_export_into_a_new_disk_of_any_type() {
    if missing(&["qemu-nbd"]) {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let src = served_vmdk(d.path());
    let server = Server::qemu(d.path(), &src, "vmdk", &[]);
    let uri = server.1.as_str();

    let sparse = d.path().join("sparse.vmdk");
    let out = ok(&["convert", uri, s(&sparse)]);
    assert!(out.contains("converted nbd+unix://"), "{out}");
    qemu_check(&sparse);
    qemu_same(&src, "vmdk", &sparse, "vmdk");
    // Only what the export allocated is allocated in the copy, grain for grain.
    assert_eq!(vmdk_data(&sparse), vmdk_data(&src));

    let stream = d.path().join("stream.vmdk");
    ok(&[
        "convert",
        "-t",
        "streamOptimized",
        "-a",
        "ide",
        uri,
        s(&stream),
    ]);
    qemu_check(&stream);
    qemu_same(&src, "vmdk", &stream, "vmdk");
    assert_eq!(vmdk_data(&stream), vmdk_data(&src));
    let info = json(&ok(&["info", "--json", s(&stream)]));
    assert_eq!(info["adapter"], "ide", "{info}");

    let raw = d.path().join("copy.raw");
    ok(&["convert", "-t", "raw", uri, s(&raw)]);
    qemu_same(&src, "vmdk", &raw, "raw");

    // An existing target needs --overwrite, as for a local source.
    let err = fails(&["convert", uri, s(&sparse)], 1);
    assert!(err.contains("VIX_E_FILE_ALREADY_EXISTS"), "{err}");
    ok(&[
        "convert",
        "--overwrite",
        "-t",
        "monolithicFlat",
        uri,
        s(&sparse),
    ]);
    qemu_same(&src, "vmdk", &sparse, "vmdk");
}

/// Runs `vixdisk ARGS` and requires success within `limit`.
fn ok_within(limit: Duration, args: &[&str]) {
    let mut child = vixdisk().args(args).stdout(Stdio::null()).spawn().unwrap();
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "{args:?}: {status}");
            return;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{args:?} took over {limit:?}: it read the unallocated areas too");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A 64 GiB export holding 3 MiB: the copy reads the areas the server reports allocated
/// (block status), not the 64 GiB (which would take minutes over the socket).
#[test]
fn convert_and_backup_read_only_what_the_export_allocated() {
    if missing(&["qemu-nbd"]) {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let image = d.path().join("big.raw");
    let file = std::fs::File::create(&image).unwrap();
    file.set_len(64 << 30).unwrap();
    let written = [
        (0u64, 1u64 << 20),
        (20 << 30, 1 << 20),
        ((64 << 30) - (1 << 20), 1 << 20),
    ];
    for (i, &(at, len)) in written.iter().enumerate() {
        file.write_all_at(&vec![i as u8 + 1; len as usize], at)
            .unwrap();
    }
    drop(file);
    let server = Server::start(d.path(), &image);
    let uri = server.1.as_str();

    let copy = d.path().join("copy.vmdk");
    ok_within(Duration::from_secs(30), &["convert", "-q", uri, s(&copy)]);
    assert_eq!(vmdk_data(&copy), written);
    qemu_same(&image, "raw", &copy, "vmdk");

    let full = d.path().join("full");
    ok_within(
        Duration::from_secs(30),
        &["backup", "full", "-q", uri, s(&full)],
    );
    let manifest = json(&std::fs::read_to_string(full.join("manifest.json")).unwrap());
    assert_eq!(manifest["copied_sectors"], 3 * 2048, "{manifest}");
}

/// nbdkit without structured replies answers no block status: every area counts as
/// allocated, so everything is read, and all-zero grains are still left out of the copy.
#[test]
fn convert_reads_everything_when_the_server_has_no_map() {
    if missing(&["qemu-nbd", "nbdkit"]) {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let src = served_vmdk(d.path());
    let image = d.path().join("src.raw");
    tool(
        "qemu-img",
        &["convert", "-f", "vmdk", "-O", "raw", s(&src), s(&image)],
    );
    let server = Server::nbdkit(d.path(), &image, &["--no-sr"]);
    let uri = server.1.as_str();

    let map = json(&ok(&["map", "--json", uri]));
    assert_eq!(
        data_areas(&map),
        vec![(0, 16 << 20)],
        "no map: all allocated"
    );
    let copy = d.path().join("copy.vmdk");
    ok(&["convert", uri, s(&copy)]);
    qemu_check(&copy);
    qemu_same(&src, "vmdk", &copy, "vmdk");
    assert_eq!(vmdk_data(&copy), vmdk_data(&src));
}

/// An export whose size ends in a partial sector (nbdkit serves a file's exact size) cannot
/// be copied whole: convert and backup refuse it (exit 1) and make nothing, rather than
/// dropping its last bytes.
#[test]
fn an_export_ending_in_a_partial_sector_is_not_copied() {
    if missing(&["nbdkit"]) {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let image = d.path().join("odd.raw");
    std::fs::write(&image, vec![0x42u8; (1 << 20) + 100]).unwrap();
    let server = Server::nbdkit(d.path(), &image, &[]);
    let uri = server.1.as_str();
    let out = d.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let err = fails(&["convert", uri, s(&out.join("c.vmdk"))], 1);
    assert!(err.contains("VIX_E_NOT_SUPPORTED"), "{err}");
    assert!(err.contains("its last 100 bytes cannot be read"), "{err}");
    let err = fails(&["backup", "full", uri, s(&out.join("bk"))], 1);
    assert!(err.contains("its last 100 bytes cannot be read"), "{err}");
    assert_eq!(entries(&out), BTreeSet::new(), "nothing was made");
}

#[test]
fn a_full_backup_of_an_export_restores_byte_exact() {
    if missing(&["qemu-nbd"]) {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let src = served_vmdk(d.path());
    let server = Server::qemu(d.path(), &src, "vmdk", &[]);
    let uri = server.1.as_str();

    let full = d.path().join("full");
    let out = ok(&["backup", "full", uri, s(&full)]);
    assert!(
        out.contains("change id: none (an NBD export has no change ids)"),
        "{out}"
    );
    let manifest = json(&std::fs::read_to_string(full.join("manifest.json")).unwrap());
    assert_eq!(manifest["source"]["path"], uri);
    assert_eq!(manifest["source"]["type"], "nbd export");
    assert_eq!(manifest["change_id"], serde_json::Value::Null);
    assert_eq!(manifest["capacity_sectors"], 32768);
    // The allocated 64 KiB chunks, as the export's block status reports them.
    let allocated: u64 = vmdk_data(&src).iter().map(|a| a.1).sum();
    assert_eq!(manifest["copied_sectors"], allocated / 512, "{manifest}");

    let restored = d.path().join("restored.vmdk");
    ok(&["restore", s(&full), s(&restored)]);
    qemu_check(&restored);
    qemu_same(&src, "vmdk", &restored, "vmdk");
    let raw = d.path().join("restored.raw");
    ok(&["restore", "-t", "raw", s(&full), s(&raw)]);
    qemu_same(&src, "vmdk", &raw, "raw");

    // The backup recorded no change id: nothing can build on it (exit 6, as for a local
    // disk that does not track changes).
    let local = d.path().join("local.vmdk");
    ok(&["convert", "-q", s(&src), s(&local)]);
    let err = fails(
        &[
            "backup",
            "incremental",
            "--base",
            s(&full),
            s(&local),
            s(&d.path().join("inc")),
        ],
        6,
    );
    assert!(err.contains("recorded no change id"), "{err}");
}

/// What an export cannot do is bad usage (exit 2) with a message naming why, checked before
/// anything is connected to or made; nothing is silently ignored.
#[test]
fn flags_and_targets_an_export_cannot_take_are_refused() {
    let d = tempfile::tempdir().unwrap();
    let uri = format!(
        "nbd+unix:///?socket={}",
        d.path().join("nobody.sock").display()
    );
    let uri = uri.as_str();
    let dir = |n: &str| d.path().join(n).to_str().unwrap().to_string();
    let local = d.path().join("l.vmdk");
    ok(&["create", s(&local), "1M"]);

    for kind in ["incremental", "differential"] {
        let err = fails(&["backup", kind, "--base", &dir("full"), uri, &dir("b")], 2);
        assert!(
            err.contains(&format!("{kind} backups cannot be taken of the NBD export"))
                && err.contains("no change ids"),
            "{err}"
        );
    }
    let err = fails(
        &[
            "backup",
            "full",
            "--snapshot",
            &dir("s.vmdk"),
            uri,
            &dir("b"),
        ],
        2,
    );
    assert!(
        err.contains("--snapshot cannot be used with the NBD export"),
        "{err}"
    );
    fails(
        &[
            "backup",
            "full",
            "--snapshot",
            &dir("s.vmdk"),
            "--id-after-snapshot",
            uri,
            &dir("b"),
        ],
        2,
    );
    for format in ["raw", "vmdk"] {
        let err = fails(&["convert", "-f", format, uri, &dir("c.vmdk")], 2);
        assert!(err.contains("-f/--source-format cannot be used"), "{err}");
    }
    for cmd in ["info", "map"] {
        let err = fails(&[cmd, "-U", uri], 2);
        assert!(
            err.contains("--force-share cannot be used with the NBD export"),
            "{err}"
        );
    }
    // Exports are never written: a URI as a target is refused.
    let err = fails(&["convert", s(&local), uri], 2);
    assert!(
        err.contains("the convert target must be a local path"),
        "{err}"
    );
    let err = fails(&["restore", &dir("full"), uri], 2);
    assert!(
        err.contains("the restore target must be a local path"),
        "{err}"
    );
    let err = fails(&["backup", "full", s(&local), uri], 2);
    assert!(
        err.contains("the backup directory must be a local path"),
        "{err}"
    );

    let left: BTreeSet<PathBuf> = std::fs::read_dir(d.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(left, BTreeSet::from([local]), "nothing was made");
}

/// Ctrl-C or SIGTERM while copying from an export: exit 130, no half-made target.
#[test]
fn signals_while_reading_an_export_leave_no_target() {
    if missing(&["qemu-nbd"]) {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let image = d.path().join("full.raw");
    // Non-zero everywhere, so every grain is read and written.
    let pattern: Vec<u8> = (0..1 << 20).map(|i| (i % 251 + 1) as u8).collect();
    std::fs::write(&image, pattern.repeat(128)).unwrap();
    let server = Server::start(d.path(), &image);
    let uri = server.1.as_str();

    let out = d.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let target = |name: &str| out.join(name).to_str().unwrap().to_string();
    signal(&out, &["convert", uri, &target("a.vmdk")], "-TERM");
    signal(
        &out,
        &["convert", "-t", "streamOptimized", uri, &target("b.vmdk")],
        "-INT",
    );
    signal(&out, &["backup", "full", uri, &target("backup")], "-INT");
}
