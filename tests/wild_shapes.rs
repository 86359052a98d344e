//! Small disks in the shapes real products write (issue 20, part 4), generated here byte by byte
//! from what is known about each producer (see ../shared/wild-vmdk/PROVENANCE.md for the real
//! files these shapes come from; none of their bytes is copied). Each must read exactly like
//! qemu-img reads it (and like the content we put in), check clean, and, where it is writable,
//! take writes that qemu-img then reads back; the text-mode-mangled one is refused.
//!
//! Shapes: VMware's split sparse layout (redundant directory at sector 1, directory at 6);
//! a Workstation 17 descriptor in `encoding="windows-1252"` with non-ASCII bytes; VirtualBox's
//! stream (footer-only directory, `ddb.uuid.image`-style keys, `key="value"` without blanks);
//! vmdktool's stream (directory offset in the header, a table marker for every table, no DDB
//! header comment); the VMDK stream converter's stream (markers, comments between keys,
//! `RDONLY` extent); old qemu-img's 7-digit CIDs; a sparse file mangled by a text-mode transfer.

mod common;

use std::io::Write;
use std::path::Path;

use common::{have_qemu, open_ro, open_rw, p, qemu_raw, read_all};
use vixDiskLib::chain::{Disk, OpenOptions};
use vixDiskLib::ffi::codes::VIX_E_DISK_INVALIDDISK;
use vixDiskLib::ffi::errors::to_vix;
use vixDiskLib::vmdk::check::{Outcome, check_disk};

const GRAIN: u64 = 128;
const GTES: u64 = 512;
const GD_AT_END: u64 = u64::MAX;

/// A KDMV header. `gd`/`rgd` are sector offsets; the newline detector is intact.
#[allow(clippy::too_many_arguments)]
fn kdmv_header(
    version: u32,
    flags: u32,
    capacity: u64,
    desc: (u64, u64),
    rgd: u64,
    gd: u64,
    overhead: u64,
    compress: u16,
) -> Vec<u8> {
    let mut h = vec![0u8; 512];
    h[0..4].copy_from_slice(b"KDMV");
    h[4..8].copy_from_slice(&version.to_le_bytes());
    h[8..12].copy_from_slice(&flags.to_le_bytes());
    h[12..20].copy_from_slice(&capacity.to_le_bytes());
    h[20..28].copy_from_slice(&GRAIN.to_le_bytes());
    h[28..36].copy_from_slice(&desc.0.to_le_bytes());
    h[36..44].copy_from_slice(&desc.1.to_le_bytes());
    h[44..48].copy_from_slice(&(GTES as u32).to_le_bytes());
    h[48..56].copy_from_slice(&rgd.to_le_bytes());
    h[56..64].copy_from_slice(&gd.to_le_bytes());
    h[64..72].copy_from_slice(&overhead.to_le_bytes());
    h[73..77].copy_from_slice(b"\n \r\n");
    h[77..79].copy_from_slice(&compress.to_le_bytes());
    h
}

fn pad_to_sector(b: &mut Vec<u8>) {
    b.resize(b.len().div_ceil(512) * 512, 0);
}

/// Grain `g` filled with a pattern that differs per grain and per byte.
fn grain_data(g: u64, seed: u8) -> Vec<u8> {
    (0..GRAIN * 512)
        .map(|i| (i as u8).wrapping_mul(seed) ^ (g as u8))
        .collect()
}

/// The expected raw content of a disk holding `grains`.
fn model(capacity: u64, grains: &[(u64, u8)]) -> Vec<u8> {
    let mut m = vec![0u8; capacity as usize * 512];
    for &(g, seed) in grains {
        let at = (g * GRAIN * 512) as usize;
        let d = grain_data(g, seed);
        let n = d.len().min(m.len() - at);
        m[at..at + n].copy_from_slice(&d[..n]);
    }
    m
}

/// How a stream producer lays out its file.
struct StreamStyle {
    /// The header's gdOffset is the real directory (vmdktool, the stream converter), not
    /// GD_AT_END (VMware, VirtualBox).
    gd_in_header: bool,
    /// A table marker and table for every directory entry, even empty ones (vmdktool).
    every_table: bool,
    /// Descriptor sectors reserved after the header.
    desc_sectors: u64,
}

/// A streamOptimized file: header, descriptor, compressed grains with markers, then table
/// markers and tables, the directory marker and directory, the footer marker and footer, and
/// the end-of-stream marker.
fn stream_file(desc: &str, capacity: u64, grains: &[(u64, u8)], style: &StreamStyle) -> Vec<u8> {
    let gd_entries = capacity.div_ceil(GRAIN * GTES);
    let flags = 1 | (1 << 16) | (1 << 17);
    let mut f = vec![0u8; 512];
    f.extend_from_slice(desc.as_bytes());
    f.resize(((1 + style.desc_sectors) * 512) as usize, 0);
    f.resize(128 * 512, 0);
    let mut gts = vec![vec![0u32; GTES as usize]; gd_entries as usize];
    for &(g, seed) in grains {
        let sector = (f.len() / 512) as u32;
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(&grain_data(g, seed)).unwrap();
        let z = z.finish().unwrap();
        f.extend_from_slice(&(g * GRAIN).to_le_bytes());
        f.extend_from_slice(&(z.len() as u32).to_le_bytes());
        f.extend_from_slice(&z);
        pad_to_sector(&mut f);
        gts[(g / GTES) as usize][(g % GTES) as usize] = sector;
    }
    let marker = |f: &mut Vec<u8>, sectors: u64, kind: u32| {
        let mut m = vec![0u8; 512];
        m[0..8].copy_from_slice(&sectors.to_le_bytes());
        m[12..16].copy_from_slice(&kind.to_le_bytes());
        f.extend_from_slice(&m);
    };
    let mut gd = vec![0u32; gd_entries as usize];
    for (i, gt) in gts.iter().enumerate() {
        if !style.every_table && gt.iter().all(|&e| e == 0) {
            continue;
        }
        marker(&mut f, 4, 1);
        gd[i] = (f.len() / 512) as u32;
        for e in gt {
            f.extend_from_slice(&e.to_le_bytes());
        }
        pad_to_sector(&mut f);
    }
    let gd_sectors = (gd_entries * 4).div_ceil(512);
    marker(&mut f, gd_sectors, 2);
    let gd_at = (f.len() / 512) as u64;
    for e in &gd {
        f.extend_from_slice(&e.to_le_bytes());
    }
    pad_to_sector(&mut f);
    let header = |gd: u64| kdmv_header(3, flags, capacity, (1, style.desc_sectors), 0, gd, 128, 1);
    marker(&mut f, 1, 3);
    f.extend_from_slice(&header(gd_at));
    f.extend_from_slice(&[0u8; 512]);
    let first = header(if style.gd_in_header { gd_at } else { GD_AT_END });
    f[..512].copy_from_slice(&first);
    f
}

/// VMware's split sparse extent: header, redundant directory at sector 1 and its tables, the
/// directory at sector 6 and its tables, grains from sector 128 on.
fn vmware_split_extent(capacity: u64, grains: &[(u64, u8)]) -> Vec<u8> {
    assert!(
        capacity <= GRAIN * GTES,
        "one table keeps the layout at gd 6 / rgd 1"
    );
    let mut f = kdmv_header(1, 3, capacity, (0, 0), 1, 6, 128, 0);
    f.resize(128 * 512, 0);
    let mut gt = vec![0u32; GTES as usize];
    for &(g, seed) in grains {
        gt[g as usize] = (f.len() / 512) as u32;
        f.extend_from_slice(&grain_data(g, seed));
    }
    for (dir, table) in [(1usize, 2u32), (6, 7)] {
        f[dir * 512..dir * 512 + 4].copy_from_slice(&table.to_le_bytes());
        for (i, e) in gt.iter().enumerate() {
            let at = table as usize * 512 + i * 4;
            f[at..at + 4].copy_from_slice(&e.to_le_bytes());
        }
    }
    f
}

/// Reads `path` with the library and qemu-img; both must equal `expected`, and the link must
/// check clean.
fn reads_like_qemu(path: &Path, expected: &[u8]) {
    let ours = read_all(&open_ro(path));
    let first = ours.iter().zip(expected).position(|(a, b)| a != b);
    assert!(
        ours.len() == expected.len() && first.is_none(),
        "{}: our read differs from the content at byte {first:?}",
        path.display()
    );
    if let Some(q) = qemu_raw(path) {
        assert!(
            q == ours,
            "{}: qemu-img reads it differently",
            path.display()
        );
    }
    match check_disk(path, false) {
        Ok(report) => assert_eq!(
            report.outcome(),
            Outcome::Clean,
            "{}: {report:?}",
            path.display()
        ),
        Err(e) => panic!("{}: CheckRepair failed: {e}", path.display()),
    }
}

#[test]
fn vmware_split_sparse_with_gd_6_and_rgd_1() {
    let dir = tempfile::tempdir().unwrap();
    let capacity = 20480;
    let grains = [(0, 3), (1, 5), (77, 7), (159, 9)];
    std::fs::write(
        p(dir.path(), "vm-s001.vmdk"),
        vmware_split_extent(capacity, &grains),
    )
    .unwrap();
    // VMware's descriptor: isNativeSnapshot, a blank after "Data Base", DDB in its order.
    let desc = format!(
        "# Disk DescriptorFile\nversion=1\nCID=00000000\nparentCID=ffffffff\nisNativeSnapshot=\"no\"\ncreateType=\"twoGbMaxExtentSparse\"\n\n# Extent description\nRW {capacity} SPARSE \"vm-s001.vmdk\"\n\n# The Disk Data Base \n#DDB\n\nddb.adapterType = \"buslogic\"\nddb.geometry.sectors = \"17\"\nddb.geometry.heads = \"4\"\nddb.geometry.cylinders = \"301\"\nddb.uuid = \"60 00 C2 1d 9e 7a 44 03-b1 2c 6e 0d 55 0a 73 e2\"\nddb.longContentID = \"3c5a0f3e6b1d4c2a9e8f7d6c00000000\"\nddb.encoding = \"UTF-8\"\nddb.toolsVersion = \"1\"\nddb.virtualHWVersion = \"7\"\nddb.deletable = \"true\"\n"
    );
    let path = p(dir.path(), "vm.vmdk");
    std::fs::write(&path, &desc).unwrap();
    let mut expected = model(capacity, &grains);
    reads_like_qemu(&path, &expected);
    // Writes land in the layout too (both directories' tables), and qemu-img agrees.
    let d = open_rw(&path);
    common::write_pattern(&d, &mut expected, 2 * 65536 + 512, 4096, 0xd1);
    common::write_pattern(&d, &mut expected, 1024 * 512, 512, 0xd2);
    d.close().unwrap();
    drop(d);
    reads_like_qemu(&path, &expected);
    if have_qemu() {
        assert!(common::qemu_check(&path));
    }
}

#[test]
fn workstation_windows_1252_descriptor_keeps_its_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let capacity = 8192;
    let grains = [(0, 11), (40, 13)];
    // A Workstation 17 split disk whose DDB carries windows-1252 bytes (é = 0xE9, the euro
    // sign = 0x80; not UTF-8).
    std::fs::write(
        p(dir.path(), "Win10 Pro-s001.vmdk"),
        vmware_split_extent(capacity, &grains),
    )
    .unwrap();
    let desc = b"# Disk DescriptorFile\nversion=1\nencoding=\"windows-1252\"\nCID=5b0e7a21\nparentCID=ffffffff\ncreateType=\"twoGbMaxExtentSparse\"\n\n# Extent description\nRW 8192 SPARSE \"Win10 Pro-s001.vmdk\"\n\n# The Disk Data Base \n#DDB\n\nddb.adapterType = \"lsilogic\"\nddb.comment = \"Caf\xe9 \x80 10\"\nddb.geometry.cylinders = \"8\"\nddb.geometry.heads = \"16\"\nddb.geometry.sectors = \"63\"\nddb.longContentID = \"d1e2f3a4b5c6d7e8f9a0b1c25b0e7a21\"\nddb.toolsInstallType = \"4\"\nddb.toolsVersion = \"12352\"\nddb.uuid = \"60 00 C2 92 11 3a 6c 4d-80 1e 2b 7c 9d 44 05 6f\"\nddb.virtualHWVersion = \"19\"\n".to_vec();
    let path = p(dir.path(), "ws.vmdk");
    std::fs::write(&path, &desc).unwrap();
    let mut expected = model(capacity, &grains);
    reads_like_qemu(&path, &expected);
    // The first write gives the descriptor a new CID (and our comment lines): every key line
    // keeps its bytes.
    let d = open_rw(&path);
    common::write_pattern(&d, &mut expected, 4096 * 512, 512, 0xe1);
    d.close().unwrap();
    drop(d);
    let after = std::fs::read(&path).unwrap();
    let without_cid = |b: &[u8]| -> Vec<u8> {
        let text: Vec<&[u8]> = b
            .split(|&c| c == b'\n')
            .filter(|l| !l.starts_with(b"CID=") && !l.starts_with(b"#") && !l.is_empty())
            .collect();
        text.concat()
    };
    assert_eq!(
        without_cid(&after),
        without_cid(&desc),
        "descriptor bytes changed: {}",
        String::from_utf8_lossy(&after)
    );
    reads_like_qemu(&path, &expected);
}

/// Builds the stream at `dir/name` and checks it reads like qemu-img and the model, and that
/// writes to it are refused without changing it.
fn stream_reads_like_qemu(dir: &Path, name: &str, bytes: &[u8], expected: &[u8]) {
    let path = p(dir, name);
    std::fs::write(&path, bytes).unwrap();
    reads_like_qemu(&path, expected);
    let d = Disk::open(&path, OpenOptions::default()).unwrap();
    assert!(
        d.write(0, &[1u8; 512]).is_err(),
        "{name}: a write was accepted"
    );
    drop(d);
    assert_eq!(std::fs::read(&path).unwrap(), bytes, "{name} changed");
}

#[test]
fn virtualbox_stream_with_its_ddb_keys() {
    let dir = tempfile::tempdir().unwrap();
    let capacity = 8192 * 16;
    let grains = [(0, 21), (3, 23), (600, 25)];
    let desc = "# Disk DescriptorFile\nversion=1\nCID=e4a19e81\nparentCID=ffffffff\ncreateType=\"streamOptimized\"\n\n# Extent description\nRDONLY 131072 SPARSE \"exported-disk1.vmdk\"\n\n# The disk Data Base \n#DDB\n\nddb.virtualHWVersion = \"4\"\nddb.adapterType=\"ide\"\nddb.geometry.cylinders=\"130\"\nddb.geometry.heads=\"16\"\nddb.geometry.sectors=\"63\"\nddb.uuid.image=\"6f0a1c2e-3b4d-4e5f-8a9b-0c1d2e3f4a5b\"\nddb.uuid.parent=\"00000000-0000-0000-0000-000000000000\"\nddb.uuid.modification=\"00000000-0000-0000-0000-000000000000\"\nddb.uuid.parentmodification=\"00000000-0000-0000-0000-000000000000\"\nddb.comment=\"\"\n";
    let style = StreamStyle {
        gd_in_header: false,
        every_table: false,
        desc_sectors: 2,
    };
    let bytes = stream_file(desc, capacity, &grains, &style);
    stream_reads_like_qemu(dir.path(), "vbox.vmdk", &bytes, &model(capacity, &grains));
    // The DDB keys come through GetInfo's source as they are.
    let d = open_ro(&p(dir.path(), "vbox.vmdk"));
    assert_eq!(
        d.info().adapter,
        Some(vixDiskLib::vmdk::geometry::Adapter::Ide)
    );
}

#[test]
fn vmdktool_stream_with_every_table() {
    let dir = tempfile::tempdir().unwrap();
    let capacity = 65536 * 5 + 1000; // a partial last table
    let grains = [(1, 31), (512, 33), (2559, 35), (2567, 37)];
    let desc = "# Disk DescriptorFile\nversion=1\nCID=278f54ff\nparentCID=ffffffff\ncreateType=\"streamOptimized\"\n\n\n# Extent description\nRDONLY 328680 SPARSE \"generated-stream.vmdk\"\n\n#DDB\nddb.virtualHWVersion = \"4\"\nddb.geometry.cylinders = \"20\"\nddb.geometry.heads = \"255\"\nddb.geometry.sectors = \"63\"\nddb.adapterType = \"lsilogic\"\nddb.toolsVersion = \"6532\"\n";
    let style = StreamStyle {
        gd_in_header: true,
        every_table: true,
        desc_sectors: 1,
    };
    let bytes = stream_file(desc, capacity, &grains, &style);
    stream_reads_like_qemu(dir.path(), "tool.vmdk", &bytes, &model(capacity, &grains));
    // vmdktool's empty disk: every table present and empty.
    let bytes = stream_file(desc, capacity, &[], &style);
    stream_reads_like_qemu(dir.path(), "blank.vmdk", &bytes, &model(capacity, &[]));
}

#[test]
fn stream_converter_stream_with_markers_and_an_rdonly_extent() {
    let dir = tempfile::tempdir().unwrap();
    let capacity = 2048;
    let grains: Vec<(u64, u8)> = (0..16).map(|g| (g, 41 + g as u8)).collect();
    let desc = "# Description file created by VMDK stream converter\nversion=1\n# Believe this is random\nCID=7e5b80a7\n# Indicates no parent\nparentCID=ffffffff\ncreateType=\"streamOptimized\"\n\n# Extent description\nRDONLY 2048 SPARSE \"call-me-stream.vmdk\"\n\n# The Disk Data Base\n#DDB\n\nddb.adapterType = \"lsilogic\"\n# 2048 / 63 / 255 rounded up\nddb.geometry.cylinders = \"1\"\nddb.geometry.heads = \"255\"\nddb.geometry.sectors = \"63\"\n# Believe this is random\nddb.longContentID = \"8f15b3d0009d9a3f456ff7b28d324d2a\"\nddb.virtualHWVersion = \"11\"";
    let style = StreamStyle {
        gd_in_header: true,
        every_table: false,
        desc_sectors: 1,
    };
    let bytes = stream_file(desc, capacity, &grains, &style);
    stream_reads_like_qemu(dir.path(), "conv.vmdk", &bytes, &model(capacity, &grains));
}

#[test]
fn old_qemu_seven_digit_cids_read_and_chain() {
    let dir = tempfile::tempdir().unwrap();
    let base = p(dir.path(), "old.vmdk");
    let capacity = 4096;
    let grains = [(2, 51), (31, 53)];
    // Old qemu-img: one file, descriptor embedded at sector 1, CID without its leading zero.
    let desc = "# Disk DescriptorFile\nversion=1\nCID=77161c8\nparentCID=ffffffff\ncreateType=\"monolithicSparse\"\n\n# Extent description\nRW 4096 SPARSE \"old.vmdk\"\n\n# The Disk Data Base \n#DDB\n\nddb.virtualHWVersion = \"4\"\nddb.geometry.cylinders = \"4\"\nddb.geometry.heads = \"16\"\nddb.geometry.sectors = \"63\"\nddb.adapterType = \"ide\"\n";
    let mut f = kdmv_header(1, 3, capacity, (1, 20), 21, 26, 128, 0);
    f.extend_from_slice(desc.as_bytes());
    f.resize(128 * 512, 0);
    let mut gt = vec![0u32; GTES as usize];
    for &(g, seed) in &grains {
        gt[g as usize] = (f.len() / 512) as u32;
        f.extend_from_slice(&grain_data(g, seed));
    }
    for (dir_at, table) in [(21usize, 22u32), (26, 27)] {
        f[dir_at * 512..dir_at * 512 + 4].copy_from_slice(&table.to_le_bytes());
        for (i, e) in gt.iter().enumerate().take(128) {
            let at = table as usize * 512 + i * 4;
            f[at..at + 4].copy_from_slice(&e.to_le_bytes());
        }
    }
    std::fs::write(&base, &f).unwrap();
    let mut expected = model(capacity, &grains);
    reads_like_qemu(&base, &expected);
    // A child made over it records the parent's CID as it is (0x077161c8) and reads through.
    let child = p(dir.path(), "child.vmdk");
    open_ro(&base)
        .create_child(&child, vixDiskLib::vmdk::create::DiskKind::MonolithicSparse)
        .unwrap();
    let text = String::from_utf8_lossy(&std::fs::read(&child).unwrap()).into_owned();
    assert!(text.contains("parentCID=077161c8"), "{text}");
    let d = open_rw(&child);
    common::write_pattern(&d, &mut expected, 512 * 3, 512, 0x77);
    d.close().unwrap();
    drop(d);
    reads_like_qemu(&child, &expected);
}

#[test]
fn a_text_mode_mangled_sparse_file_is_refused_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let clean = p(dir.path(), "clean.vmdk");
    common::create_sparse(&clean, 2);
    let d = open_rw(&clean);
    d.write(0, &(0..=255u8).cycle().take(65536).collect::<Vec<u8>>())
        .unwrap();
    d.close().unwrap();
    drop(d);
    // What a text tool on the way into git does: CRLF becomes LF, every byte >= 0x80 becomes
    // U+FFFD (EF BF BD).
    let bytes = std::fs::read(&clean).unwrap();
    let mut mangled = Vec::with_capacity(bytes.len() * 2);
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\r' if bytes.get(i + 1) == Some(&b'\n') => {}
            b if b >= 0x80 => mangled.extend_from_slice(&[0xef, 0xbf, 0xbd]),
            b => mangled.push(b),
        }
        i += 1;
    }
    let path = p(dir.path(), "mangled.vmdk");
    std::fs::write(&path, &mangled).unwrap();
    let err = Disk::open(&path, OpenOptions::default()).err().unwrap();
    assert_eq!(to_vix(&err), VIX_E_DISK_INVALIDDISK, "{err}");
    assert!(err.to_string().contains("text-mode transfer?"), "{err}");
    let report = check_disk(&path, true).unwrap();
    assert!(!report.outcome().is_ok(), "{report:?}");
    assert_eq!(std::fs::read(&path).unwrap(), mangled, "repair wrote to it");
}

#[test]
fn a_windows_1252_extent_name_finds_the_file_copied_to_linux() {
    // Workstation on Windows wrote "café" in windows-1252; copied to Linux the file is named
    // in UTF-8.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(p(dir.path(), "caf\u{e9}-flat.vmdk"), vec![0x5cu8; 1 << 20]).unwrap();
    let path = p(dir.path(), "d.vmdk");
    std::fs::write(
        &path,
        b"version=1\nencoding=\"windows-1252\"\nCID=1\nparentCID=ffffffff\ncreateType=\"monolithicFlat\"\nRW 2048 FLAT \"caf\xe9-flat.vmdk\" 0\n",
    )
    .unwrap();
    assert!(read_all(&open_ro(&path)) == vec![0x5cu8; 1 << 20]);
}
