//! Helpers shared by the integration tests: disk creation through the engine, a byte model of
//! expected content, and the qemu-img/qemu-io oracles.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use vixDiskLib::chain::{Disk, OpenOptions};
use vixDiskLib::vmdk::create::{CreateSpec, DiskKind, create};
use vixDiskLib::vmdk::geometry::Adapter;

/// True if qemu-img and qemu-io can run here; tests that need them return early otherwise.
pub fn have_qemu() -> bool {
    let ok = Command::new("qemu-img")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("qemu-img not available: skipping the qemu oracle");
    }
    ok
}

/// Runs a shell command, returning (status code, stdout+stderr).
pub fn sh(cmd: &str) -> (i32, String) {
    let out = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .output()
        .expect("run sh");
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

/// Creates a monolithic sparse disk of `mib` MiB.
pub fn create_sparse(path: &Path, mib: u64) {
    let spec = CreateSpec {
        kind: DiskKind::MonolithicSparse,
        capacity: mib * 2048,
        adapter: Adapter::LsiLogic,
        hw_version: 7,
    };
    create(path, &spec, &mut |_| {}).expect("create");
}

/// Opens read-write (whole chain).
pub fn open_rw(path: &Path) -> Disk {
    Disk::open(path, OpenOptions::default()).expect("open rw")
}

/// Opens read-only (whole chain).
pub fn open_ro(path: &Path) -> Disk {
    Disk::open(
        path,
        OpenOptions {
            read_only: true,
            single_link: false,
        },
    )
    .expect("open ro")
}

/// Reads the whole disk.
pub fn read_all(d: &Disk) -> Vec<u8> {
    let mut buf = vec![0u8; d.capacity() as usize * 512];
    d.read(0, &mut buf).expect("read all");
    buf
}

/// Writes `len` bytes of `pattern` at byte `offset` to the disk and the model.
pub fn write_pattern(d: &Disk, model: &mut [u8], offset: usize, len: usize, pattern: u8) {
    let data = vec![pattern; len];
    d.write((offset / 512) as u64, &data).expect("write");
    model[offset..offset + len].copy_from_slice(&data);
}

/// Saves the model as a raw image for qemu-img compare.
pub fn save_raw(model: &[u8], path: &Path) {
    std::fs::write(path, model).expect("write raw");
}

/// `qemu-img compare` of a raw image and a vmdk: true if identical.
pub fn qemu_same(raw: &Path, vmdk: &Path) -> bool {
    let (code, out) = sh(&format!(
        "qemu-img compare -f raw -F vmdk '{}' '{}'",
        raw.display(),
        vmdk.display()
    ));
    if code != 0 {
        eprintln!("{out}");
    }
    code == 0
}

/// `qemu-img check` passes.
pub fn qemu_check(vmdk: &Path) -> bool {
    let (code, out) = sh(&format!("qemu-img check '{}'", vmdk.display()));
    if code != 0 {
        eprintln!("{out}");
    }
    code == 0
}

/// sha256 of a file.
pub fn sha256(path: &Path) -> String {
    let (code, out) = sh(&format!("sha256sum '{}'", path.display()));
    assert_eq!(code, 0, "{out}");
    out.split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// Path inside a temp dir.
pub fn p(dir: &Path, name: &str) -> PathBuf {
    dir.join(name)
}

/// One range of `qemu-img map --output=json`.
#[derive(Debug, Clone, Copy)]
pub struct MapRange {
    /// First byte.
    pub start: u64,
    /// Bytes.
    pub length: u64,
    /// Link the data comes from (0 = the named image).
    pub depth: u64,
    /// The range holds data (not zeros/unallocated).
    pub data: bool,
    /// Byte offset in the image file, when qemu reports one.
    pub offset: Option<u64>,
}

/// Runs `qemu-img map --output=json` on `path` and parses its ranges.
pub fn qemu_map(path: &Path) -> Vec<MapRange> {
    let (code, out) = sh(&format!("qemu-img map --output=json '{}'", path.display()));
    assert_eq!(code, 0, "{out}");
    let field = |line: &str, key: &str| -> Option<String> {
        let at = line.find(&format!("\"{key}\":"))? + key.len() + 3;
        Some(
            line[at..]
                .trim_start()
                .split([',', '}'])
                .next()?
                .trim()
                .to_string(),
        )
    };
    out.lines()
        .filter(|l| l.contains("\"start\""))
        .map(|l| MapRange {
            start: field(l, "start").unwrap().parse().unwrap(),
            length: field(l, "length").unwrap().parse().unwrap(),
            depth: field(l, "depth").unwrap().parse().unwrap(),
            data: field(l, "data").as_deref() == Some("true"),
            offset: field(l, "offset").and_then(|v| v.parse().ok()),
        })
        .collect()
}

/// Builds `dir/l0.vmdk` (1 MiB) and children `l1.vmdk` … `l{children}.vmdk`, each over the
/// previous one (opened single-link, so building stays linear); returns the last path.
pub fn build_deep_chain(dir: &Path, children: usize) -> PathBuf {
    let mut leaf = p(dir, "l0.vmdk");
    create_sparse(&leaf, 1);
    for i in 1..=children {
        let next = p(dir, &format!("l{i}.vmdk"));
        Disk::open(
            &leaf,
            OpenOptions {
                read_only: true,
                single_link: true,
            },
        )
        .expect("open link")
        .create_child(&next, vixDiskLib::vmdk::create::DiskKind::MonolithicSparse)
        .expect("create child");
        leaf = next;
    }
    leaf
}

/// Opens only the named link (VIXDISKLIB_FLAG_OPEN_SINGLE_LINK), read-write or read-only.
pub fn open_single(path: &Path, writable: bool) -> Disk {
    Disk::open(
        path,
        OpenOptions {
            read_only: !writable,
            single_link: true,
        },
    )
    .expect("open single link")
}

/// Initialises the library for tests that call the C API in-process (InitEx is required before
/// any disk call; repeated calls are harmless). Tests in one binary share the state, so none of
/// them may call Exit.
pub fn ffi_init() {
    use vixDiskLib::ffi::library::VixDiskLib_InitEx;
    let null = std::ptr::null_mut();
    let code = VixDiskLib_InitEx(6, 5, null, null, null, std::ptr::null(), std::ptr::null());
    assert_eq!(code, 0, "InitEx");
}

/// The bytes of a COWD (vmfsSparse) file as ESX and Workstation 3 wrote it: 2048-byte header,
/// directory at sector 4, 4096-entry tables allocated as grains need them, then the grains
/// (`data`: grain number and fill byte). `parent` makes it a legacy redo log naming its parent.
pub fn cowd_file(sectors: u32, grain: u32, parent: Option<&str>, data: &[(u32, u8)]) -> Vec<u8> {
    let gd_entries = sectors.div_ceil(4096 * grain);
    let gd_sectors = (gd_entries * 4).div_ceil(512);
    let mut h = vec![0u8; 2048];
    h[0..4].copy_from_slice(b"COWD");
    h[4..8].copy_from_slice(&1u32.to_le_bytes());
    let flags: u32 = if parent.is_some() { 2 } else { 3 };
    h[8..12].copy_from_slice(&flags.to_le_bytes());
    h[12..16].copy_from_slice(&sectors.to_le_bytes());
    h[16..20].copy_from_slice(&grain.to_le_bytes());
    h[20..24].copy_from_slice(&4u32.to_le_bytes());
    h[24..28].copy_from_slice(&gd_entries.to_le_bytes());
    match parent {
        Some(name) => h[32..32 + name.len()].copy_from_slice(name.as_bytes()),
        None => {
            h[32..36].copy_from_slice(&16u32.to_le_bytes());
            h[36..40].copy_from_slice(&16u32.to_le_bytes());
            h[40..44].copy_from_slice(&63u32.to_le_bytes());
        }
    }
    let mut file = h;
    file.resize(((4 + gd_sectors) * 512) as usize, 0);
    let mut gd = vec![0u32; gd_entries as usize];
    for &(g, byte) in data {
        let t = (g / 4096) as usize;
        if gd[t] == 0 {
            gd[t] = (file.len() / 512) as u32;
            file.resize(file.len() + 4096 * 4, 0);
            let at = 2048 + t * 4;
            file[at..at + 4].copy_from_slice(&gd[t].to_le_bytes());
        }
        let sector = (file.len() / 512) as u32;
        file.resize(file.len() + grain as usize * 512, byte);
        let at = gd[t] as usize * 512 + (g % 4096) as usize * 4;
        file[at..at + 4].copy_from_slice(&sector.to_le_bytes());
    }
    let free = (file.len() / 512) as u32;
    file[28..32].copy_from_slice(&free.to_le_bytes());
    file
}
