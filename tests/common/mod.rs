//! Helpers shared by the integration tests: disk creation through the engine, a byte model of
//! expected content, and the qemu-img/qemu-io oracles.
#![allow(dead_code)]

use std::collections::BTreeSet;
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

/// What a grain-table entry of a hand-built seSparse file holds (see `write_sesparse`).
#[derive(Debug, Clone, Copy)]
pub enum SeGrain {
    /// Allocated: grain number `index` of the grain area, filled with `fill`.
    Data {
        /// Grain number in the grain area (stored rotated in the entry).
        index: u64,
        /// Byte the grain is filled with.
        fill: u8,
    },
    /// Zeroed grain (type 2): reads as zeros, hiding the parent.
    Zero,
    /// Unmapped (discarded) grain (type 1): reads as zeros too.
    Unmapped,
    /// Any raw entry value (hostile files).
    Raw(u64),
}

/// Writes an ESXi seSparse extent file the way ESXi lays it out: constant header at sector 0,
/// volatile header at 1, journal header and journal, grain directory, grain tables (numbered in
/// the order grains need them), free bitmap, backmap, then 4 KiB grains. `grains` maps virtual
/// grain numbers (8 sectors each) to entries. Data grains are written at their index, so a big
/// index makes a big (sparse) file.
pub fn write_sesparse(path: &Path, capacity: u64, grains: &[(u64, SeGrain)]) {
    use std::os::unix::fs::FileExt;
    let w = |h: &mut [u8], word: usize, v: u64| {
        h[word * 8..word * 8 + 8].copy_from_slice(&v.to_le_bytes())
    };
    let gd_entries = capacity.div_ceil(4096 * 8);
    let gd_sectors = (gd_entries * 8).div_ceil(512).max(1);
    let mut tables: Vec<u64> = Vec::new(); // gd index of each table, in allocation order
    for &(g, _) in grains {
        if !tables.contains(&(g / 4096)) {
            tables.push(g / 4096);
        }
    }
    let gd_off = 8;
    let gt_off = gd_off + gd_sectors;
    let gt_size = 64 * (tables.len() as u64).max(1);
    let bitmap_off = gt_off + gt_size;
    let backmap_off = bitmap_off + 1;
    let grains_off = (backmap_off + 1).next_multiple_of(8);
    let mut h = vec![0u8; 512];
    for (word, v) in [
        (0, 0xcafe_babe),
        (1, 0x2_0000_0001),
        (2, capacity),
        (3, 8),
        (4, 64),
        (10, 1),
        (11, 1),
        (12, 2),
        (13, 2),
        (14, 4),
        (15, 4),
        (16, gd_off),
        (17, gd_sectors),
        (18, gt_off),
        (19, gt_size),
        (20, bitmap_off),
        (21, 1),
        (22, backmap_off),
        (23, 1),
        (24, grains_off),
        (25, capacity),
    ] {
        w(&mut h, word, v);
    }
    let mut v = vec![0u8; 512];
    w(&mut v, 0, 0xcafe_cafe);
    w(&mut v, 1, tables.len() as u64);
    w(&mut v, 2, 1);
    let mut gd = vec![0u8; (gd_sectors * 512) as usize];
    for (n, &gdi) in tables.iter().enumerate() {
        w(&mut gd, gdi as usize, 0x1000_0000_0000_0000 | n as u64);
    }
    let mut gts = vec![0u8; (gt_size * 512) as usize];
    let f = std::fs::File::create(path).expect("create seSparse file");
    f.set_len(grains_off * 512).expect("size seSparse file");
    for &(g, grain) in grains {
        let t = tables.iter().position(|&x| x == g / 4096).unwrap();
        let entry = match grain {
            SeGrain::Data { index, fill } => {
                f.write_all_at(&[fill; 4096], (grains_off + index * 8) * 512)
                    .expect("write grain");
                0x3000_0000_0000_0000 | ((index & 0xfff) << 48) | (index >> 12)
            }
            SeGrain::Zero => 0x2000_0000_0000_0000,
            SeGrain::Unmapped => 0x1000_0000_0000_0000,
            SeGrain::Raw(e) => e,
        };
        w(&mut gts, t * 4096 + (g % 4096) as usize, entry);
    }
    f.write_all_at(&h, 0).unwrap();
    f.write_all_at(&v, 512).unwrap();
    f.write_all_at(&gd, gd_off * 512).unwrap();
    f.write_all_at(&gts, gt_off * 512).unwrap();
}

/// An ESXi-style seSparse descriptor: `createType="seSparse"`, one SESPARSE extent, and a
/// parent when `parent` names one (with its CID).
pub fn sesparse_descriptor(capacity: u64, extent: &str, parent: Option<(&str, u32)>) -> String {
    let (pcid, hint) = match parent {
        Some((name, cid)) => (
            format!("{cid:08x}"),
            format!("parentFileNameHint=\"{name}\"\n"),
        ),
        None => ("ffffffff".to_string(), String::new()),
    };
    format!(
        "# Disk DescriptorFile\nversion=1\nencoding=\"UTF-8\"\nCID=5a5e5e01\nparentCID={pcid}\ncreateType=\"seSparse\"\n{hint}\n# Extent description\nRW {capacity} SESPARSE \"{extent}\"\n\n# The Disk Data Base\n#DDB\n\nddb.adapterType = \"lsilogic\"\nddb.virtualHWVersion = \"14\"\nddb.grain = \"8\"\nddb.longContentID = \"0c8c8a5b1a7e0e7c5a5e5e01ffffffff\"\n"
    )
}

/// Change tracking granularity, in bytes: answers are checked grain by grain.
pub const CHANGE_GRAIN: usize = 64 << 10;

/// The 64 KiB grains that changed-area runs `(sector, sectors)` touch.
pub fn grains_of(runs: &[(u64, u64)]) -> BTreeSet<u64> {
    runs.iter()
        .flat_map(|&(s, n)| (s / 128)..(s + n).div_ceil(128))
        .collect()
}

/// The 64 KiB grains in which two contents differ.
pub fn differing(a: &[u8], b: &[u8]) -> BTreeSet<u64> {
    a.chunks(CHANGE_GRAIN)
        .zip(b.chunks(CHANGE_GRAIN))
        .enumerate()
        .filter(|(_, (x, y))| x != y)
        .map(|(i, _)| i as u64)
        .collect()
}

/// Polls for `path` up to 2000 times, `step_ms` apart (a child process creates it once it has
/// started); the caller asserts on `path.exists()` where it matters.
pub fn wait_for_file(path: &Path, step_ms: u64) {
    for _ in 0..2000 {
        if path.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(step_ms));
    }
}

/// qemu-img's raw reading of `vmdk` (its oracle for content), or None where qemu-img is absent.
pub fn qemu_raw(vmdk: &Path) -> Option<Vec<u8>> {
    if !have_qemu() {
        return None;
    }
    let raw = vmdk.with_extension("qemu.raw");
    let (code, out) = sh(&format!(
        "qemu-img convert -f vmdk -O raw '{}' '{}'",
        vmdk.display(),
        raw.display()
    ));
    assert_eq!(code, 0, "qemu-img convert {}: {out}", vmdk.display());
    let v = std::fs::read(&raw).unwrap();
    std::fs::remove_file(&raw).unwrap();
    Some(v)
}

/// xorshift64 seeded from `seed`: deterministic filler, the same for the same seed.
pub fn xorshift_rng(seed: u64) -> impl FnMut() -> u64 {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    }
}
