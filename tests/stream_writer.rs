//! The streamOptimized writer: an independent walk of the file layout, then qemu-img and libvmdk
//! (pyvmdk) as oracles, then a timing against `qemu-img convert -o subformat=streamOptimized`.

mod common;

use common::{have_qemu, qemu_raw, sh, xorshift_rng};

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::Instant;

use vixDiskLib::error::{Error, Result};
use vixDiskLib::vmdk::create::{CreateSpec, DiskKind, base_ddb, new_descriptor};
use vixDiskLib::vmdk::descriptor::Descriptor;
use vixDiskLib::vmdk::geometry::Adapter;
use vixDiskLib::vmdk::stream_writer::write_stream_optimized;

const GRAIN: usize = 65536;
const GRAIN_SECTORS: u64 = 128;

fn descriptor(capacity: u64) -> Descriptor {
    let spec = CreateSpec {
        kind: DiskKind::StreamOptimized,
        capacity,
        adapter: Adapter::LsiLogic,
        hw_version: 7,
    };
    new_descriptor("monolithicSparse", Vec::new(), base_ddb(&spec))
}

/// Compressible, text-like content (words from a small vocabulary).
fn text_fill(buf: &mut [u8], seed: u64) {
    const WORDS: [&str; 16] = [
        "disk ", "grain ", "table ", "sector ", "stream ", "vmware ", "backup ", "extent ",
        "marker ", "footer ", "header ", "zlib ", "qemu ", "clone ", "rust ", "\n",
    ];
    let mut r = xorshift_rng(seed);
    let mut i = 0;
    while i < buf.len() {
        let w = WORDS[(r() % 16) as usize].as_bytes();
        let n = w.len().min(buf.len() - i);
        buf[i..i + n].copy_from_slice(&w[..n]);
        i += n;
    }
}

fn random_fill(buf: &mut [u8], seed: u64) {
    let mut r = xorshift_rng(seed);
    for c in buf.chunks_mut(8) {
        let v = r().to_le_bytes();
        c.copy_from_slice(&v[..c.len()]);
    }
}

/// An in-memory source: its bytes plus which grains it reports as allocated.
struct Source {
    bytes: Vec<u8>,
    unallocated: Vec<u64>,
}

impl Source {
    fn read_grain(&self, g: u64, buf: &mut [u8]) -> Result<bool> {
        let start = g as usize * GRAIN;
        assert_eq!(buf.len(), GRAIN.min(self.bytes.len() - start));
        if self.unallocated.contains(&g) {
            return Ok(false);
        }
        buf.copy_from_slice(&self.bytes[start..start + buf.len()]);
        Ok(true)
    }

    /// What the disk must read as: source bytes, zeros where the source is unallocated.
    fn expected(&self) -> Vec<u8> {
        let mut e = self.bytes.clone();
        for &g in &self.unallocated {
            let s = g as usize * GRAIN;
            let end = (s + GRAIN).min(e.len());
            e[s..end].fill(0);
        }
        e
    }
}

fn write(path: &Path, src: &Source, threads: usize) -> Vec<u32> {
    let cap = (src.bytes.len() / 512) as u64;
    let mut seen = Vec::new();
    write_stream_optimized(
        path,
        cap,
        descriptor(cap),
        &|g, b| src.read_grain(g, b),
        threads,
        &mut |p| seen.push(p),
    )
    .expect("write stream");
    seen
}

fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(b[o..o + 4].try_into().unwrap())
}
fn u64_at(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(b[o..o + 8].try_into().unwrap())
}

fn inflate(data: &[u8]) -> Vec<u8> {
    assert_eq!(data[0], 0x78, "zlib header");
    let mut out = Vec::with_capacity(GRAIN);
    let mut d = flate2::Decompress::new(true);
    let st = d
        .decompress_vec(data, &mut out, flate2::FlushDecompress::Finish)
        .expect("inflate");
    assert_eq!(st, flate2::Status::StreamEnd);
    assert_eq!(
        d.total_in() as usize,
        data.len(),
        "size field covers the stream"
    );
    out
}

/// Reads the stream the way both kinds of reader do (directory lookup and a sequential walk of
/// the markers) and checks every layout rule; returns the disk content.
fn decode_and_check(path: &Path, capacity: u64) -> Vec<u8> {
    let f = std::fs::read(path).unwrap();
    let len = f.len();
    assert_eq!(len % 512, 0);
    // Header.
    assert_eq!(&f[0..4], b"KDMV");
    assert_eq!(u32_at(&f, 4), 3, "version");
    assert_eq!(u32_at(&f, 8), 0x30001, "flags");
    assert_eq!(u64_at(&f, 12), capacity);
    assert_eq!(u64_at(&f, 20), 128, "grain");
    assert_eq!(u64_at(&f, 28), 1, "descriptorOffset");
    assert_eq!(u64_at(&f, 36), 20, "descriptorSize");
    assert_eq!(u32_at(&f, 44), 512, "GTEs per GT");
    assert_eq!(u64_at(&f, 48), 0, "rgdOffset");
    assert_eq!(u64_at(&f, 56), u64::MAX, "gdOffset = GD_AT_END");
    assert_eq!(u64_at(&f, 64), 128, "overHead");
    assert_eq!(&f[73..77], b"\n \r\n");
    assert_eq!(u16::from_le_bytes([f[77], f[78]]), 1, "deflate");
    let desc = String::from_utf8_lossy(&f[512..512 * 21]);
    let desc = desc.trim_end_matches('\0');
    assert!(desc.contains("createType=\"streamOptimized\""), "{desc}");
    let name = path.file_name().unwrap().to_string_lossy();
    assert!(
        desc.contains(&format!("RW {capacity} SPARSE \"{name}\"\n")),
        "{desc}"
    );
    assert!(f[512 * 21..512 * 128].iter().all(|&b| b == 0));

    // Tail: footer marker, footer, EOS, and nothing after.
    let fm = &f[len - 1536..len - 1024];
    assert_eq!((u64_at(fm, 0), u32_at(fm, 8), u32_at(fm, 12)), (1, 0, 3));
    assert!(fm[16..].iter().all(|&b| b == 0));
    let footer = &f[len - 1024..len - 512];
    assert_eq!(&footer[0..56], &f[0..56], "footer repeats the header");
    assert_eq!(&footer[64..512], &f[64..512]);
    assert!(f[len - 512..].iter().all(|&b| b == 0), "EOS");
    let gd_off = u64_at(footer, 56) as usize;
    let gd_entries = capacity.div_ceil(128 * 512) as usize;
    let gd_sectors = (gd_entries * 4).div_ceil(512);
    let gm = &f[(gd_off - 1) * 512..gd_off * 512];
    assert_eq!(
        (u64_at(gm, 0), u32_at(gm, 8), u32_at(gm, 12)),
        (gd_sectors as u64, 0, 2)
    );
    assert_eq!(
        gd_off + gd_sectors,
        len / 512 - 3,
        "GD right before the footer"
    );

    // Directory lookup.
    let mut disk = vec![0u8; capacity as usize * 512];
    let mut grain_markers = Vec::new();
    for i in 0..gd_entries {
        let gt_off = u32_at(&f, gd_off * 512 + i * 4) as usize;
        if gt_off == 0 {
            continue;
        }
        let m = &f[(gt_off - 1) * 512..gt_off * 512];
        assert_eq!((u64_at(m, 0), u32_at(m, 8), u32_at(m, 12)), (4, 0, 1));
        let mut any = false;
        for j in 0..512 {
            let gte = u32_at(&f, gt_off * 512 + j * 4) as usize;
            let g = (i * 512 + j) as u64;
            if gte == 0 {
                continue;
            }
            any = true;
            assert!(g * GRAIN_SECTORS < capacity, "GTE beyond capacity");
            assert!(gte < gt_off, "grains come before their table");
            let lba = u64_at(&f, gte * 512);
            assert_eq!(lba, g * GRAIN_SECTORS);
            let size = u32_at(&f, gte * 512 + 8) as usize;
            assert!(size > 0);
            let data = inflate(&f[gte * 512 + 12..gte * 512 + 12 + size]);
            let start = lba as usize * 512;
            let want = GRAIN.min(disk.len() - start);
            assert_eq!(data.len(), want, "short last grain compressed short");
            disk[start..start + want].copy_from_slice(&data);
            grain_markers.push(gte);
        }
        assert!(any, "all-zero grain tables are omitted");
    }

    // Sequential walk from overHead: ascending grains, GT markers, GD, footer, EOS at the end.
    let mut s = 128usize;
    let mut last_lba = None;
    let mut walked = Vec::new();
    loop {
        let m = &f[s * 512..s * 512 + 512];
        let size = u32_at(m, 8) as usize;
        if size != 0 {
            let lba = u64_at(m, 0);
            assert!(
                last_lba.is_none_or(|l| lba > l),
                "grains in ascending LBA order"
            );
            last_lba = Some(lba);
            walked.push(s);
            s += (12 + size).div_ceil(512);
            continue;
        }
        let (n, kind) = (u64_at(m, 0) as usize, u32_at(m, 12));
        if kind == 0 && n == 0 {
            assert_eq!(s, len / 512 - 1, "EOS is the last sector");
            break;
        }
        assert!((1..=3).contains(&kind), "marker type {kind}");
        s += 1 + n;
    }
    walked.sort_unstable();
    grain_markers.sort_unstable();
    assert_eq!(
        walked, grain_markers,
        "every grain marker is referenced once"
    );
    disk
}

fn qemu_checks(dir: &Path, vmdk: &Path, expected: &[u8]) {
    let raw = dir.join("model.raw");
    std::fs::write(&raw, expected).unwrap();
    let (code, info) = sh(&format!("qemu-img info --output=json '{}'", vmdk.display()));
    assert_eq!(code, 0, "{info}");
    let compact: String = info.split_whitespace().collect();
    assert!(
        compact.contains("\"create-type\":\"streamOptimized\""),
        "{info}"
    );
    assert!(compact.contains("\"compressed\":true"), "{info}");
    assert!(
        compact.contains(&format!("\"virtual-size\":{}", expected.len())),
        "{info}"
    );
    let (code, out) = sh(&format!("qemu-img check '{}'", vmdk.display()));
    assert_eq!(code, 0, "qemu-img check: {out}");
    let (code, out) = sh(&format!(
        "qemu-img compare -f raw -F vmdk '{}' '{}'",
        raw.display(),
        vmdk.display()
    ));
    assert_eq!(code, 0, "qemu-img compare: {out}");
    assert!(
        qemu_raw(vmdk).expect("qemu-img") == expected,
        "qemu-img convert differs"
    );
    check_pyvmdk(vmdk, &raw);
}

/// True if `import pyvmdk` works, installing `libvmdk-python` once if needed.
fn have_pyvmdk() -> bool {
    static ONCE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ONCE.get_or_init(|| {
        if sh("python3 -c 'import pyvmdk'").0 == 0 {
            return true;
        }
        let _ = sh("python3 -m pip install -q libvmdk-python");
        let ok = sh("python3 -c 'import pyvmdk'").0 == 0;
        if !ok {
            eprintln!("pyvmdk not importable: skipping the libvmdk oracle");
        }
        ok
    })
}

fn check_pyvmdk(vmdk: &Path, raw: &Path) {
    if !have_pyvmdk() {
        return;
    }
    let script = r#"
import sys, pyvmdk
h = pyvmdk.handle()
h.open(sys.argv[1])
h.open_extent_data_files()
want = open(sys.argv[2], 'rb').read()
size = h.get_media_size()
assert size == len(want), (size, len(want))
off = 0
while off < size:
    n = min(1 << 20, size - off)
    got = h.read_buffer_at_offset(n, off)
    if got != want[off:off + n]:
        i = next(i for i in range(n) if got[i] != want[off + i])
        sys.exit('differs at byte %d' % (off + i))
    off += n
print('pyvmdk ok', h.get_disk_type())
"#;
    let py = vmdk.with_extension("py");
    std::fs::write(&py, script).unwrap();
    let (code, out) = sh(&format!(
        "python3 '{}' '{}' '{}'",
        py.display(),
        vmdk.display(),
        raw.display()
    ));
    assert_eq!(code, 0, "pyvmdk: {out}");
    assert!(out.contains("pyvmdk ok 8"), "libvmdk disk type: {out}");
}

/// 96 MiB + 72 sectors: four grain tables, the second all zero, a short last grain, patterns,
/// random (incompressible) grains, allocated-but-zero grains and unallocated grains.
fn mixed_source() -> Source {
    let cap = 3 * 65536 + 128 + 72;
    let mut bytes = vec![0u8; cap * 512];
    let mut unallocated = Vec::new();
    let grains = cap.div_ceil(128);
    for g in 0..grains {
        let s = g * GRAIN;
        let e = (s + GRAIN).min(bytes.len());
        let b = &mut bytes[s..e];
        match g {
            0 | 5 | 511 | 1024 => b.fill(0xab),
            7 => text_fill(b, 7),
            // Second table: unallocated grains that hold data in the source must not appear.
            520 | 700 => {
                b.fill(0xee);
                unallocated.push(g as u64);
            }
            1100..=1110 => random_fill(b, g as u64),
            1200 => b[4095] = 1,
            1500 => b[..512].fill(0x11),
            _ if g == grains - 1 => text_fill(b, 99),
            _ => {}
        }
    }
    Source { bytes, unallocated }
}

#[test]
fn mixed_disk_with_short_last_grain_reads_back_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let src = mixed_source();
    let vmdk = dir.path().join("ours.vmdk");
    let seen = write(&vmdk, &src, 3);
    assert_eq!(seen.first(), Some(&0));
    assert_eq!(seen.last(), Some(&100));
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "progress {seen:?}");
    let expected = src.expected();
    let cap = (expected.len() / 512) as u64;
    let disk = decode_and_check(&vmdk, cap);
    assert!(disk == expected, "decoded content differs");
    // GD entry of the second (all-zero) table is 0; the other three are present.
    let f = std::fs::read(&vmdk).unwrap();
    let gd = u64_at(&f[f.len() - 1024..], 56) as usize * 512;
    let entries: Vec<u32> = (0..4).map(|i| u32_at(&f, gd + i * 4)).collect();
    assert!(entries[0] != 0 && entries[1] == 0 && entries[2] != 0 && entries[3] != 0);
    if have_qemu() {
        qemu_checks(dir.path(), &vmdk, &expected);
    }
}

#[test]
fn output_does_not_depend_on_thread_count() {
    let dir = tempfile::tempdir().unwrap();
    let src = mixed_source();
    let cap = (src.bytes.len() / 512) as u64;
    let d = descriptor(cap);
    let mut files = Vec::new();
    for t in [1, 2, 8] {
        let sub = dir.path().join(format!("t{t}"));
        std::fs::create_dir(&sub).unwrap();
        let p = sub.join("same.vmdk");
        write_stream_optimized(
            &p,
            cap,
            d.clone(),
            &|g, b| src.read_grain(g, b),
            t,
            &mut |_| {},
        )
        .unwrap();
        files.push(std::fs::read(&p).unwrap());
    }
    assert!(files[0] == files[1] && files[1] == files[2]);
}

#[test]
fn tiny_and_unaligned_capacities() {
    for (cap, fill) in [
        (1u64, true),
        (7, true),
        (128, true),
        (129, false),
        (300, true),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut bytes = vec![0u8; cap as usize * 512];
        if fill {
            text_fill(&mut bytes, cap);
        } else {
            bytes[cap as usize * 512 - 1] = 0x5a;
        }
        let src = Source {
            bytes,
            unallocated: Vec::new(),
        };
        let vmdk = dir.path().join("tiny.vmdk");
        write(&vmdk, &src, 2);
        let disk = decode_and_check(&vmdk, cap);
        assert!(disk == src.bytes, "capacity {cap}");
        if have_qemu() {
            qemu_checks(dir.path(), &vmdk, &src.bytes);
        }
    }
}

#[test]
fn empty_source_has_no_grain_tables() {
    let dir = tempfile::tempdir().unwrap();
    let cap = 100 * 2048u64;
    let src = Source {
        bytes: vec![0u8; cap as usize * 512],
        unallocated: (0..cap / 128).filter(|g| g % 2 == 0).collect(),
    };
    let vmdk = dir.path().join("empty.vmdk");
    write(&vmdk, &src, 4);
    // header + descriptor area, GD marker + GD, footer marker + footer, EOS.
    assert_eq!(std::fs::metadata(&vmdk).unwrap().len(), (128 + 2 + 3) * 512);
    decode_and_check(&vmdk, cap);
    if have_qemu() {
        qemu_checks(dir.path(), &vmdk, &src.bytes);
    }
}

#[test]
fn refuses_existing_file_and_removes_file_on_source_error() {
    let dir = tempfile::tempdir().unwrap();
    let cap = 64 * 2048u64;
    let existing = dir.path().join("exists.vmdk");
    std::fs::write(&existing, b"keep me").unwrap();
    let r = write_stream_optimized(
        &existing,
        cap,
        descriptor(cap),
        &|_, _| Ok(false),
        2,
        &mut |_| {},
    );
    assert!(matches!(r, Err(Error::FileExists(_))), "{r:?}");
    assert_eq!(std::fs::read(&existing).unwrap(), b"keep me");

    let failing = dir.path().join("fails.vmdk");
    let r = write_stream_optimized(
        &failing,
        cap,
        descriptor(cap),
        &|g, b: &mut [u8]| {
            if g == 700 {
                return Err(Error::InvalidArg("source read failed".into()));
            }
            b.fill(g as u8 | 1);
            Ok(true)
        },
        4,
        &mut |_| {},
    );
    assert!(matches!(r, Err(Error::InvalidArg(_))), "{r:?}");
    assert!(!failing.exists(), "partial stream removed");

    let zero = dir.path().join("zero.vmdk");
    let r = write_stream_optimized(&zero, 0, descriptor(1), &|_, _| Ok(false), 1, &mut |_| {});
    assert!(matches!(r, Err(Error::InvalidArg(_))));
    assert!(!zero.exists());
}

#[test]
fn a_panicking_source_neither_hangs_nor_leaves_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let cap = 64 * 2048u64;
    let path = dir.path().join("panics.vmdk");
    let r = std::panic::catch_unwind(|| {
        write_stream_optimized(
            &path,
            cap,
            descriptor(cap),
            &|g, b: &mut [u8]| {
                assert!(g != 300, "source blew up on purpose");
                b.fill(7);
                Ok(true)
            },
            3,
            &mut |_| {},
        )
    });
    assert!(r.is_err(), "the panic reaches the caller");
    assert!(!path.exists());
}

/// About 1 GiB of virtual disk with a quarter of it data (machine code, text, some random), read from a
/// sparse raw file by pread, against qemu-img convert of the same raw file. Informational only.
/// Run with `cargo test --release --test stream_writer -- --nocapture timing` for real numbers.
#[test]
fn timing_against_qemu_img_convert() {
    let dir = tempfile::tempdir().unwrap();
    let mib: u64 = if cfg!(debug_assertions) { 128 } else { 1024 };
    let cap = mib * 2048 + 40; // not grain aligned on purpose
    let grains = cap.div_ceil(128);
    let raw = dir.path().join("source.raw");
    let f = File::create(&raw).unwrap();
    f.set_len(cap * 512).unwrap();
    let mut allocated = vec![false; grains as usize];
    let exe = std::fs::read(std::env::current_exe().unwrap()).unwrap();
    assert!(exe.len() > 2 * GRAIN);
    let mut buf = vec![0u8; GRAIN];
    let mut data_bytes = 0u64;
    for g in 0..grains {
        // Runs of 16 allocated grains out of every 64 (one 1 MiB run per 4 MiB).
        if g % 64 >= 16 {
            continue;
        }
        let len = GRAIN.min((cap * 512 - g * GRAIN as u64) as usize);
        match g % 16 {
            3 => random_fill(&mut buf[..len], g),
            5 | 9 => text_fill(&mut buf[..len], g),
            _ => {
                // Machine code and data: this test's own executable.
                let s = (g as usize * 4099 * 16) % (exe.len() - GRAIN);
                buf[..len].copy_from_slice(&exe[s..s + len]);
            }
        }
        f.write_all_at(&buf[..len], g * GRAIN as u64).unwrap();
        allocated[g as usize] = true;
        data_bytes += len as u64;
    }
    f.sync_all().unwrap();
    drop(f);
    let src = File::open(&raw).unwrap();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());

    let ours = dir.path().join("ours.vmdk");
    let t = Instant::now();
    write_stream_optimized(
        &ours,
        cap,
        descriptor(cap),
        &|g, b: &mut [u8]| {
            if !allocated[g as usize] {
                return Ok(false);
            }
            src.read_exact_at(b, g * GRAIN as u64)
                .map_err(|e| Error::io(&raw, e))?;
            Ok(true)
        },
        threads,
        &mut |_| {},
    )
    .unwrap();
    let ours_s = t.elapsed().as_secs_f64();
    let ours_len = std::fs::metadata(&ours).unwrap().len();
    let data_mib = data_bytes as f64 / (1 << 20) as f64;
    let build = if cfg!(debug_assertions) {
        "debug build: numbers are not representative"
    } else {
        "release build"
    };
    println!(
        "stream writer ({build}, {threads} threads): {mib} MiB virtual, {data_mib:.0} MiB data -> {:.1} MiB file in {ours_s:.2} s = {:.0} MiB/s data, {:.0} MiB/s virtual",
        ours_len as f64 / (1 << 20) as f64,
        data_mib / ours_s,
        mib as f64 / ours_s
    );

    if !have_qemu() {
        return;
    }
    let theirs = dir.path().join("qemu.vmdk");
    let t = Instant::now();
    let (code, out) = sh(&format!(
        "qemu-img convert -f raw -O vmdk -o subformat=streamOptimized '{}' '{}'",
        raw.display(),
        theirs.display()
    ));
    let qemu_s = t.elapsed().as_secs_f64();
    assert_eq!(code, 0, "{out}");
    let qemu_len = std::fs::metadata(&theirs).unwrap().len();
    println!(
        "qemu-img convert streamOptimized: {:.1} MiB file in {qemu_s:.2} s = {:.0} MiB/s data; ours is {:.2}x qemu's speed",
        qemu_len as f64 / (1 << 20) as f64,
        data_mib / qemu_s,
        qemu_s / ours_s
    );
    let (code, out) = sh(&format!(
        "qemu-img compare -f raw -F vmdk '{}' '{}'",
        raw.display(),
        ours.display()
    ));
    assert_eq!(code, 0, "qemu-img compare: {out}");
}
