//! Regressions for the data-losing paths of issue 19, each tried as a user would: CheckRepair
//! on a descriptor naming an extent type we do not know, a one-sector write through a
//! single-link open of a redo log, and a nonpersistent open killed during Open.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use vixDiskLib::chain::{Disk, OpenOptions as DiskOptions};
use vixDiskLib::error::Error;
use vixDiskLib::vmdk::check::{Outcome, check_disk};

const MIB: usize = 1 << 20;

/// A descriptor file whose first extent is a good 64 MiB sparse extent (made by the engine) and
/// whose other lines are `more` (extent lines, each naming a file that is created with 1 MiB of
/// bytes). Returns the descriptor and every file it names.
fn split_disk(dir: &Path, more: &[&str]) -> (PathBuf, Vec<PathBuf>) {
    let extent = p(dir, "a-s001.vmdk");
    create_sparse(&extent, 64);
    let d = open_rw(&extent);
    d.write(0, &vec![0x5a; 64 * 1024]).unwrap();
    d.close().unwrap();
    let mut files = vec![extent];
    let mut lines = String::from("RW 131072 SPARSE \"a-s001.vmdk\"\n");
    for line in more {
        lines.push_str(line);
        lines.push('\n');
        if let Some(name) = line.split('"').nth(1) {
            let f = p(dir, name);
            std::fs::write(&f, vec![0xa5u8; MIB]).unwrap();
            files.push(f);
        }
    }
    let desc = p(dir, "a.vmdk");
    std::fs::write(
        &desc,
        format!(
            "# Disk DescriptorFile\nversion=1\nCID=1234abcd\nparentCID=ffffffff\ncreateType=\"twoGbMaxExtentSparse\"\n\n# Extent description\n{lines}\n# The Disk Data Base\n#DDB\n\nddb.adapterType = \"lsilogic\"\n"
        ),
    )
    .unwrap();
    files.insert(0, desc.clone());
    (desc, files)
}

fn hashes(files: &[PathBuf]) -> Vec<String> {
    files.iter().map(|f| sha256(f)).collect()
}

/// Check and CheckRepair of `desc` both fail with an error `expected` accepts, and leave every
/// file in `files` as it was.
fn refused_untouched(desc: &Path, files: &[PathBuf], expected: fn(&Error) -> bool) {
    let before = hashes(files);
    for repair in [false, true] {
        let r = check_disk(desc, repair);
        assert!(r.as_ref().is_err_and(expected), "repair={repair}: {r:?}");
        assert_eq!(hashes(files), before, "repair={repair} changed the disk");
    }
}

/// Check and CheckRepair of `desc` both run and answer CantRepair without repairing anything,
/// and leave every file in `files` as it was. `what` names the case in messages.
fn cant_repair_untouched(desc: &Path, files: &[PathBuf], what: &str) {
    let before = hashes(files);
    for repair in [false, true] {
        let r = check_disk(desc, repair).expect("check runs");
        assert_eq!(
            r.outcome(),
            Outcome::CantRepair,
            "{what} repair={repair}: {r:?}"
        );
        assert!(r.repaired.is_empty());
        assert_eq!(
            hashes(files),
            before,
            "{what} repair={repair} changed the disk"
        );
    }
}

#[test]
fn an_unknown_extent_type_is_not_supported_and_never_repaired_away() {
    let dir = tempfile::tempdir().unwrap();
    let (desc, files) = split_disk(dir.path(), &["RW 2048 FOOSPARSE \"a-s002.vmdk\""]);
    let before = hashes(&files);
    for repair in [false, true] {
        match check_disk(&desc, repair) {
            Err(Error::NotSupported(m)) => assert!(m.contains("FOOSPARSE"), "{m}"),
            other => panic!("repair={repair}: expected NotSupported, got {other:?}"),
        }
        assert_eq!(hashes(&files), before, "repair={repair} changed the disk");
    }
    match Disk::open(&desc, DiskOptions::default()) {
        Err(Error::NotSupported(m)) => assert!(m.contains("FOOSPARSE"), "{m}"),
        other => panic!("open: expected NotSupported, got {:?}", other.map(|_| ())),
    }
    // The same through the C API: Open and CheckRepair (with repair) give VIX_E_NOT_SUPPORTED.
    use vixDiskLib::ffi::codes::{VIX_E_NOT_SUPPORTED, VIX_OK};
    use vixDiskLib::ffi::types::{VixDiskLibConnection, VixDiskLibHandle};
    use vixDiskLib::ffi::{connect::*, disk::*, maintenance::VixDiskLib_CheckRepair};
    ffi_init();
    let c = std::ffi::CString::new(desc.to_str().unwrap()).unwrap();
    let mut conn: VixDiskLibConnection = std::ptr::null_mut();
    assert_eq!(VixDiskLib_Connect(std::ptr::null(), &mut conn), VIX_OK);
    let mut h: VixDiskLibHandle = std::ptr::null_mut();
    assert_eq!(
        VixDiskLib_Open(conn, c.as_ptr(), 0, &mut h),
        VIX_E_NOT_SUPPORTED
    );
    assert_eq!(
        VixDiskLib_CheckRepair(conn, c.as_ptr(), 1),
        VIX_E_NOT_SUPPORTED
    );
    assert_eq!(VixDiskLib_Disconnect(conn), VIX_OK);
    assert_eq!(hashes(&files), before, "the C API changed the disk");
}

#[test]
fn an_unknown_extent_type_inside_a_damaged_descriptor_is_still_not_supported() {
    // A damaged line makes the parse fail first; the salvage must not drop the unknown line.
    let dir = tempfile::tempdir().unwrap();
    let (desc, files) = split_disk(
        dir.path(),
        &[
            "RW 2048 FOOSPARSE \"a-s002.vmdk\"",
            "garbled line without an equals sign",
        ],
    );
    refused_untouched(&desc, &files, |e| matches!(e, Error::NotSupported(_)));
}

#[test]
fn a_damaged_middle_extent_line_is_never_dropped() {
    // Dropping the middle line would shift the third extent's offsets and shrink the disk.
    let dir = tempfile::tempdir().unwrap();
    let (desc, files) = split_disk(
        dir.path(),
        &["RW 2048 SPARSE", "RW 2048 FLAT \"a-f003.vmdk\" 0"],
    );
    cant_repair_untouched(&desc, &files, "");
}

#[test]
fn a_newer_descriptor_version_is_unsupported_not_rewritten_as_version_1() {
    let dir = tempfile::tempdir().unwrap();
    let (desc, files) = split_disk(dir.path(), &[]);
    let text = std::fs::read_to_string(&desc).unwrap();
    std::fs::write(&desc, text.replace("version=1", "version=4")).unwrap();
    refused_untouched(&desc, &files, |e| matches!(e, Error::UnsupportedVersion(_)));
}

#[test]
fn a_newer_sparse_header_version_is_unsupported_not_damaged() {
    let dir = tempfile::tempdir().unwrap();
    let path = p(dir.path(), "v.vmdk");
    create_sparse(&path, 8);
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&f, &4u32.to_le_bytes(), 4).unwrap();
    drop(f);
    refused_untouched(&path, std::slice::from_ref(&path), |e| {
        matches!(e, Error::UnsupportedVersion(_))
    });
}

#[test]
fn a_capacity_mismatch_within_one_layout_keeps_the_larger_capacity() {
    // Header one grain smaller than the descriptor, same number of grain tables: both values
    // explain the layout. Taking the header's would cut off the last grain, which holds data.
    let dir = tempfile::tempdir().unwrap();
    let path = p(dir.path(), "m.vmdk");
    create_sparse(&path, 64);
    let mut model = vec![0u8; 64 * MIB];
    {
        let d = open_rw(&path);
        write_pattern(&d, &mut model, 64 * MIB - 64 * 1024, 64 * 1024, 0x77);
        d.close().unwrap();
    }
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&f, &(131_072u64 - 128).to_le_bytes(), 12).unwrap();
    drop(f);
    let r = check_disk(&path, true).expect("check runs");
    assert_eq!(r.outcome(), Outcome::Repaired, "{r:?}");
    let d = open_single(&path, false);
    assert_eq!(d.capacity(), 131_072);
    assert!(read_all(&d) == model, "the last grain's data is gone");
    d.close().unwrap();
    if have_qemu() {
        let raw = p(dir.path(), "m.raw");
        save_raw(&model, &raw);
        assert!(qemu_same(&raw, &path));
    }
}

/// A 4 MiB base filled with 0x11 by qemu-io and a qemu-made redo log over it.
fn qemu_chain(dir: &Path) -> (PathBuf, PathBuf) {
    let base = p(dir, "base.vmdk");
    let child = p(dir, "child.vmdk");
    let (code, out) = sh(&format!(
        "qemu-img create -q -f vmdk '{b}' 4M && qemu-io -f vmdk -c 'write -P 0x11 0 4M' '{b}' >/dev/null && \
         qemu-img create -q -f vmdk -b base.vmdk -F vmdk '{c}'",
        b = base.display(),
        c = child.display()
    ));
    assert_eq!(code, 0, "{out}");
    (base, child)
}

#[test]
fn a_one_sector_write_through_a_single_link_open_keeps_the_parents_data_around_it() {
    if !have_qemu() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (base, child) = qemu_chain(dir.path());
    let d = open_single(&child, true);
    d.write(1000, &[0x22; 512]).unwrap(); // sector 1000: in the middle of grain 7
    d.close().unwrap();
    drop(d);
    // The chain as qemu reads it: the written sector, and the parent's data around it.
    let mut model = vec![0x11u8; 4 * MIB];
    model[1000 * 512..1001 * 512].fill(0x22);
    let raw = p(dir.path(), "model.raw");
    save_raw(&model, &raw);
    assert!(qemu_check(&child));
    assert!(
        qemu_same(&raw, &child),
        "the chain shows something nobody wrote"
    );
    let (code, out) = sh(&format!(
        "qemu-io -f vmdk -c 'read -P 0x11 {} 512' -c 'read -P 0x11 {} 512' '{}'",
        999 * 512,
        1001 * 512,
        child.display()
    ));
    assert!(code == 0 && !out.contains("fail"), "{out}");
    // A commit of that chain leaves the base holding the same content.
    let (code, out) = sh(&format!("qemu-img commit -q '{}'", child.display()));
    assert_eq!(code, 0, "{out}");
    assert!(qemu_same(&raw, &base), "commit wrote zeros into the parent");
}

#[test]
fn a_partial_grain_write_is_refused_untouched_when_the_parent_is_gone() {
    if !have_qemu() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (base, child) = qemu_chain(dir.path());
    std::fs::rename(&base, p(dir.path(), "moved.vmdk")).unwrap();
    let before = sha256(&child);
    let d = open_single(&child, true);
    let e = d.write(1000, &[0x22; 512]).unwrap_err();
    assert!(matches!(e, Error::OpenParent { .. }), "{e:?}");
    d.close().unwrap();
    drop(d);
    assert_eq!(
        sha256(&child),
        before,
        "a refused write changed the redo log"
    );
}

/// Env var naming the base disk for `nonpersistent_open_loop_child`.
const NP_BASE: &str = "DATA_LOSS_NP_BASE";
/// Env var naming the scratch directory for `nonpersistent_open_loop_child`.
const NP_SCRATCH: &str = "DATA_LOSS_NP_SCRATCH";

/// Not a test: the child process `killed_nonpersistent_opens_leave_nothing_behind` starts and
/// kills. It opens the disk nonpersistent and closes it again, forever.
#[test]
#[ignore = "child process of killed_nonpersistent_opens_leave_nothing_behind"]
fn nonpersistent_open_loop_child() {
    let (Ok(base), Ok(scratch)) = (std::env::var(NP_BASE), std::env::var(NP_SCRATCH)) else {
        return;
    };
    println!("ready");
    loop {
        let d = Disk::open_nonpersistent(Path::new(&base), false, Path::new(&scratch)).unwrap();
        d.close().unwrap();
    }
}

/// The pid of a process that has exited.
fn dead_pid() -> u32 {
    let mut c = std::process::Command::new("true").spawn().unwrap();
    let pid = c.id();
    c.wait().unwrap();
    pid
}

#[test]
fn killed_nonpersistent_opens_leave_nothing_behind() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    // 256 GiB: the scratch redo log's grain tables are 16 MiB, so a kill usually lands while
    // they are being written.
    let base = p(dir.path(), "big.vmdk");
    vixDiskLib::vmdk::create::create(
        &base,
        &vixDiskLib::vmdk::create::CreateSpec {
            kind: vixDiskLib::vmdk::create::DiskKind::MonolithicSparse,
            capacity: 256 << 21,
            adapter: vixDiskLib::vmdk::geometry::Adapter::LsiLogic,
            hw_version: 7,
        },
        &mut |_| {},
    )
    .unwrap();
    let scratch = p(dir.path(), "scratch");
    std::fs::create_dir(&scratch).unwrap();
    let delays_ms = [15u64, 40, 5, 70, 25, 55];
    for ms in delays_ms {
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "nonpersistent_open_loop_child",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(NP_BASE, &base)
            .env(NP_SCRATCH, &scratch)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        while !line.contains("ready") {
            line.clear();
            assert!(out.read_line(&mut line).unwrap() > 0, "child died");
        }
        std::thread::sleep(std::time::Duration::from_millis(ms));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
    }
    let left: Vec<String> = std::fs::read_dir(&scratch)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    eprintln!(
        "{} kills left {} scratch file(s): {left:?}",
        delays_ms.len(),
        left.len()
    );
    // Leftovers of a dead process in every form an interrupted open can leave (a symlink at
    // such a name is removed, never followed), and a live process's file, which must stay.
    let dead = dead_pid();
    let victim = p(dir.path(), "victim");
    std::fs::write(&victim, b"keep").unwrap();
    for name in [
        format!("vixdisklib-nonpersistent-{dead}-00000000000000aa.vmdk"),
        format!(".vixdisklib-nonpersistent-{dead}-00000000000000bb.vmdk"),
        format!(".vixdisklib-nonpersistent-{dead}-00000000000000cc.vmdk.tmp-new"),
    ] {
        std::fs::write(scratch.join(name), vec![0u8; 4096]).unwrap();
    }
    std::os::unix::fs::symlink(
        &victim,
        scratch.join(format!(
            ".vixdisklib-nonpersistent-{dead}-00000000000000dd.vmdk.tmp-new"
        )),
    )
    .unwrap();
    let live = format!(
        ".vixdisklib-nonpersistent-{}-00000000000000ee.vmdk.tmp-new",
        std::process::id()
    );
    std::fs::write(scratch.join(&live), b"in use").unwrap();
    // The next nonpersistent open sweeps every leftover of a dead process.
    let d = Disk::open_nonpersistent(&base, false, &scratch).unwrap();
    d.close().unwrap();
    drop(d);
    let left: Vec<String> = std::fs::read_dir(&scratch)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        left,
        vec![live],
        "leftovers not swept (or a live one swept)"
    );
    assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
}

#[test]
fn a_read_only_single_link_open_of_a_redo_log_still_refuses_writes_as_read_only() {
    if !have_qemu() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (base, child) = qemu_chain(dir.path());
    std::fs::remove_file(&base).unwrap();
    let d = open_single(&child, false);
    let e = d.write(1000, &[0x22; 512]).unwrap_err();
    assert!(matches!(e, Error::ReadOnly(_)), "{e:?}");
}

#[test]
fn an_extent_line_past_the_largest_disk_is_unrepairable_not_a_crash() {
    // offset + sectors overflows (or passes what Open accepts): check panicked on the sum;
    // in a release build it wrapped and the line passed as clean.
    for mid in [
        "RW 2048 FLAT \"a-s002.vmdk\" 18446744073709551615",
        "RW 99999999999999999 FLAT \"a-s002.vmdk\" 0",
    ] {
        let dir = tempfile::tempdir().unwrap();
        let (desc, files) = split_disk(dir.path(), &[mid, "RW 2048 FLAT \"a-f003.vmdk\" 0"]);
        cant_repair_untouched(&desc, &files, mid);
    }
}

#[test]
fn check_repair_never_touches_a_file_outside_the_disks_directory() {
    // Open refuses an extent name that leaves the descriptor's directory; CheckRepair followed
    // it and "repaired" that file (a short flat extent was extended with zeros, wherever it was).
    let outside = tempfile::tempdir().unwrap();
    let victim = p(outside.path(), "victim.txt");
    std::fs::write(&victim, b"not a disk").unwrap();
    let rel = format!(
        "../{}/victim.txt",
        outside.path().file_name().unwrap().to_string_lossy()
    );
    for name in [rel.as_str(), victim.to_str().unwrap()] {
        let line = format!("RW 2048 FLAT \"{name}\" 0");
        let dir = tempfile::tempdir().unwrap();
        let (desc, files) = split_disk(dir.path(), &[]);
        let text = std::fs::read_to_string(&desc).unwrap();
        std::fs::write(
            &desc,
            text.replace("\n\n# The Disk", &format!("\n{line}\n\n# The Disk")),
        )
        .unwrap();
        let before = hashes(&files);
        for repair in [false, true] {
            let r = check_disk(&desc, repair).expect("check runs");
            assert_eq!(
                r.outcome(),
                Outcome::CantRepair,
                "{line} repair={repair}: {r:?}"
            );
            assert_eq!(
                std::fs::read(&victim).unwrap(),
                b"not a disk",
                "{line}: wrote outside"
            );
            assert_eq!(hashes(&files), before);
        }
        assert!(Disk::open(&desc, DiskOptions::default()).is_err());
    }
}
