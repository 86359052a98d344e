//! Seeds for the fuzz corpus (fuzz/corpus/<target>/seed-*): small real disks made by the
//! engine and by qemu-img, plus hand-built files for what neither makes (COWD, tiny grains,
//! odd descriptors). Every target gets the parts of these disks it parses. Written by the
//! ignored test `write_seed_corpus` in tests/fuzz_seed_corpus.rs.
#![allow(dead_code)]

use std::path::Path;

use vixDiskLib::chain::{Disk, OpenOptions};
use vixDiskLib::fuzz::{TARGETS, pack_files};
use vixDiskLib::vmdk::cowd::CowdExtent;
use vixDiskLib::vmdk::create::{CreateSpec, DiskKind, create};
use vixDiskLib::vmdk::descriptor::Descriptor;
use vixDiskLib::vmdk::geometry::Adapter;
use vixDiskLib::vmdk::header::SparseHeader;
use vixDiskLib::vmdk::sesparse::SeSparseHeader;
use vixDiskLib::vmdk::sparse::{GrainMap, SparseExtent};

use crate::common::{SeGrain, cowd_file, have_qemu, sesparse_descriptor, sh, write_sesparse};

/// The files of one disk (name, bytes); the first is the one to open.
type DiskFiles = Vec<(String, Vec<u8>)>;

/// Reads every file of `dir` (sorted, `first` first) into a disk file set.
fn collect(dir: &Path, first: &str) -> DiskFiles {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with(".lck"))
        .collect();
    names.sort();
    names.retain(|n| n != first);
    names.insert(0, first.to_string());
    names
        .into_iter()
        .map(|n| {
            let bytes = std::fs::read(dir.join(&n)).expect("read file");
            (n, bytes)
        })
        .collect()
}

fn spec(kind: DiskKind, capacity: u64) -> CreateSpec {
    CreateSpec {
        kind,
        capacity,
        adapter: Adapter::LsiLogic,
        hw_version: 7,
    }
}

fn rw() -> OpenOptions {
    OpenOptions::default()
}

/// Disks made by the engine, each in its own directory.
fn engine_disks(root: &Path) -> Vec<(String, DiskFiles)> {
    let mut out = Vec::new();
    let kinds = [
        ("monosparse", DiskKind::MonolithicSparse, 128),
        ("monoflat", DiskKind::MonolithicFlat, 16),
        ("splitsparse", DiskKind::SplitSparse, 128),
        ("splitflat", DiskKind::SplitFlat, 16),
        ("vmfsflat", DiskKind::VmfsFlat, 16),
        ("vmfsthin", DiskKind::VmfsThin, 16),
        ("stream", DiskKind::StreamOptimized, 384),
    ];
    for (label, kind, capacity) in kinds {
        let dir = root.join(format!("engine-{label}"));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("d.vmdk");
        create(&path, &spec(kind, capacity), &mut |_| {}).unwrap();
        let disk = Disk::open(&path, rw()).unwrap();
        disk.write(0, &[0x5a; 512 * 8]).unwrap();
        if kind == DiskKind::StreamOptimized {
            disk.write(128, &vec![0xa5; 512 * 128]).unwrap();
        }
        disk.close().unwrap();
        drop(disk);
        out.push((format!("engine-{label}"), collect(&dir, "d.vmdk")));
    }
    // A child over a flat base, and change tracking on a sparse disk.
    let dir = root.join("engine-child");
    std::fs::create_dir_all(&dir).unwrap();
    let base = dir.join("base.vmdk");
    create(&base, &spec(DiskKind::MonolithicFlat, 16), &mut |_| {}).unwrap();
    let disk = Disk::open(&base, rw()).unwrap();
    disk.write(0, &[0x11; 512 * 16]).unwrap();
    disk.create_child(&dir.join("c.vmdk"), DiskKind::MonolithicSparse)
        .unwrap();
    disk.close().unwrap();
    drop(disk);
    let child = Disk::open(&dir.join("c.vmdk"), rw()).unwrap();
    child.write(8, &[0x22; 512 * 4]).unwrap();
    child.close().unwrap();
    drop(child);
    out.push(("engine-child".into(), collect(&dir, "c.vmdk")));

    let dir = root.join("engine-tracked");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("t.vmdk");
    create(&path, &spec(DiskKind::MonolithicFlat, 16), &mut |_| {}).unwrap();
    vixDiskLib::chain::tracking::set_change_tracking(&path, true).unwrap();
    let disk = Disk::open(&path, rw()).unwrap();
    disk.write(0, &[0x33; 512]).unwrap();
    disk.close().unwrap();
    drop(disk);
    out.push(("engine-tracked".into(), collect(&dir, "t.vmdk")));
    out
}

/// Disks made by qemu-img (and written with qemu-io), each in its own directory.
fn qemu_disks(root: &Path) -> Vec<(String, DiskFiles)> {
    if !have_qemu() {
        return Vec::new();
    }
    let mut out = Vec::new();
    let run = |cmd: String| {
        let (rc, text) = sh(&cmd);
        assert_eq!(rc, 0, "{cmd}: {text}");
    };
    let made = [
        ("monoflat", "subformat=monolithicFlat", "8K"),
        ("splitflat", "subformat=twoGbMaxExtentFlat", "8K"),
        ("monosparse", "subformat=monolithicSparse", "128K"),
        ("splitsparse", "subformat=twoGbMaxExtentSparse", "128K"),
        (
            "zeroed",
            "subformat=monolithicSparse,zeroed_grain=on",
            "128K",
        ),
    ];
    for (label, opts, size) in made {
        let dir = root.join(format!("qemu-{label}"));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("q.vmdk");
        run(format!(
            "qemu-img create -q -f vmdk -o {opts} '{}' {size}",
            path.display()
        ));
        run(format!(
            "qemu-io -f vmdk -c 'write -P 0x5a 0 4k' '{}'",
            path.display()
        ));
        if label == "zeroed" {
            run(format!(
                "qemu-io -f vmdk -c 'write -z 64k 64k' '{}'",
                path.display()
            ));
        }
        out.push((format!("qemu-{label}"), collect(&dir, "q.vmdk")));
    }
    // streamOptimized, converted from a raw file with some data.
    let dir = root.join("qemu-stream");
    std::fs::create_dir_all(&dir).unwrap();
    let raw = root.join("stream-src.raw");
    let mut content = vec![0u8; 128 * 1024];
    for (i, b) in content[60 * 1024..68 * 1024].iter_mut().enumerate() {
        *b = (i % 251) as u8;
    }
    std::fs::write(&raw, &content).unwrap();
    run(format!(
        "qemu-img convert -q -f raw -O vmdk -o subformat=streamOptimized '{}' '{}'",
        raw.display(),
        dir.join("s.vmdk").display()
    ));
    out.push(("qemu-stream".into(), collect(&dir, "s.vmdk")));
    // A qemu child over a qemu flat base.
    let dir = root.join("qemu-child");
    std::fs::create_dir_all(&dir).unwrap();
    run(format!(
        "qemu-img create -q -f vmdk -o subformat=monolithicFlat '{}' 8K",
        dir.join("b.vmdk").display()
    ));
    run(format!(
        "cd '{}' && qemu-img create -q -f vmdk -b b.vmdk -F vmdk c.vmdk && qemu-io -f vmdk -c 'write -P 0x77 0 512' c.vmdk",
        dir.display()
    ));
    out.push(("qemu-child".into(), collect(&dir, "c.vmdk")));
    out
}

/// A hosted sparse extent with tiny grains and tables (8-sector grains, 16 entries per table),
/// optionally with an embedded descriptor, so the fuzzer's inputs stay a few KiB.
fn tiny_sparse(capacity: u64, descriptor: Option<&str>, grains: &[(u64, u8)]) -> Vec<u8> {
    let desc_sectors = descriptor.map_or(0, |d| (d.len() as u64).div_ceil(512));
    let gs = 8u64;
    let per = 16u32;
    let gd_entries = capacity.div_ceil(gs * u64::from(per));
    let gd_sectors = (gd_entries * 4).div_ceil(512);
    let gt_sectors = 1u64;
    let rgd = 1 + desc_sectors;
    let rgt = rgd + gd_sectors;
    let gd = rgt + gd_entries * gt_sectors;
    let gt = gd + gd_sectors;
    let overhead = (gt + gd_entries * gt_sectors).next_multiple_of(gs);
    let h = SparseHeader {
        version: 1,
        flags: 0b11,
        capacity,
        grain_sectors: gs,
        descriptor_offset: if desc_sectors > 0 { 1 } else { 0 },
        descriptor_size: desc_sectors,
        gtes_per_gt: per,
        rgd_offset: rgd,
        gd_offset: gd,
        overhead,
        unclean_shutdown: false,
        compress_algorithm: 0,
    };
    let mut file = vec![0u8; (overhead * 512) as usize];
    file[..512].copy_from_slice(&h.encode());
    if let Some(d) = descriptor {
        file[512..512 + d.len()].copy_from_slice(d.as_bytes());
    }
    let put = |file: &mut Vec<u8>, sector: u64, index: u64, value: u32| {
        let at = (sector * 512 + index * 4) as usize;
        file[at..at + 4].copy_from_slice(&value.to_le_bytes());
    };
    for t in 0..gd_entries {
        put(&mut file, rgd, t, (rgt + t) as u32);
        put(&mut file, gd, t, (gt + t) as u32);
    }
    for &(g, byte) in grains {
        let at = file.len() as u64 / 512;
        file.resize(file.len() + (gs * 512) as usize, byte);
        let (t, i) = (g / u64::from(per), g % u64::from(per));
        put(&mut file, rgt + t, i, at as u32);
        put(&mut file, gt + t, i, at as u32);
    }
    file
}

fn descriptor_text(cid: u32, parent: Option<(u32, &str)>, kind: &str, extents: &str) -> String {
    let (pcid, hint) = match parent {
        Some((c, h)) => (format!("{c:08x}"), format!("parentFileNameHint=\"{h}\"\n")),
        None => ("ffffffff".into(), String::new()),
    };
    format!(
        "# Disk DescriptorFile\nversion=1\nCID={cid:08x}\nparentCID={pcid}\ncreateType=\"{kind}\"\n{hint}\n# Extent description\n{extents}\n# The Disk Data Base\n#DDB\n\nddb.virtualHWVersion = \"4\"\nddb.adapterType = \"ide\"\n"
    )
}

/// Hand-built disks: tiny-grain sparse files, COWD files and chains, mixed extents.
fn hand_disks() -> Vec<(String, DiskFiles)> {
    let f = |n: &str, b: Vec<u8>| (n.to_string(), b);
    let tiny_desc = descriptor_text(1, None, "monolithicSparse", "RW 512 SPARSE \"t.vmdk\"");
    let child_desc = descriptor_text(
        2,
        Some((1, "t.vmdk")),
        "monolithicSparse",
        "RW 512 SPARSE \"u.vmdk\"",
    );
    let mixed = descriptor_text(
        3,
        None,
        "custom",
        "RW 16 FLAT \"f.raw\" 0\nRDONLY 8 ZERO\nRW 256 SPARSE \"s.vmdk\"\nRW 16 VMFS \"v.raw\"\nNOACCESS 8 ZERO",
    );
    let cowd_desc = descriptor_text(
        4,
        Some((3, "m.vmdk")),
        "vmfsSparse",
        "RW 304 VMFSSPARSE \"w-delta.vmdk\"",
    );
    let flat: Vec<u8> = (0..16 * 512).map(|i| (i % 253) as u8).collect();
    vec![
        (
            "hand-tiny".into(),
            vec![f(
                "t.vmdk",
                tiny_sparse(512, Some(&tiny_desc), &[(0, 1), (5, 2), (63, 3)]),
            )],
        ),
        (
            "hand-tiny-chain".into(),
            vec![
                f(
                    "u.vmdk",
                    tiny_sparse(512, Some(&child_desc), &[(1, 9), (5, 8)]),
                ),
                f(
                    "t.vmdk",
                    tiny_sparse(512, Some(&tiny_desc), &[(0, 1), (5, 2)]),
                ),
            ],
        ),
        (
            "hand-mixed".into(),
            vec![
                f("m.vmdk", mixed.clone().into_bytes()),
                f("f.raw", flat.clone()),
                f("s.vmdk", tiny_sparse(256, None, &[(2, 4), (31, 5)])),
                f("v.raw", flat.clone()),
            ],
        ),
        (
            "hand-vmfssparse".into(),
            vec![
                f("w.vmdk", cowd_desc.into_bytes()),
                f("w-delta.vmdk", cowd_file(304, 2, None, &[(0, 6), (7, 7)])),
                f("m.vmdk", mixed.into_bytes()),
                f("f.raw", flat.clone()),
                f("s.vmdk", tiny_sparse(256, None, &[(3, 4)])),
                f("v.raw", flat),
            ],
        ),
        (
            "hand-cowd-root".into(),
            vec![f(
                "r.vmdk",
                cowd_file(64, 4, None, &[(0, 1), (3, 2), (15, 3)]),
            )],
        ),
        (
            "hand-cowd-redo".into(),
            vec![
                f("r.vmdk.REDO", cowd_file(64, 4, Some("r.vmdk"), &[(1, 4)])),
                f("r.vmdk", cowd_file(64, 4, None, &[(0, 1), (3, 2)])),
            ],
        ),
    ]
}

fn is_sparse(bytes: &[u8]) -> bool {
    SparseHeader::has_magic(bytes) && bytes.len() >= 512
}

/// The header of a sparse file as a `sparse_header` seed: its file length in sectors goes into
/// the unused bytes the harness reads it from.
fn header_seed(bytes: &[u8], file_len: usize) -> Vec<u8> {
    let mut h = bytes[..512].to_vec();
    let sectors = (file_len as u64).div_ceil(512);
    h[79..87].copy_from_slice(&(sectors << 16).to_le_bytes());
    h
}

/// The descriptor text of a file: a text descriptor as is, an embedded one without padding.
fn descriptor_of(bytes: &[u8]) -> Option<Vec<u8>> {
    if is_sparse(bytes) {
        let h = SparseHeader::decode(&bytes[..512], (bytes.len() as u64).div_ceil(512)).ok()?;
        if h.descriptor_offset == 0 {
            return None;
        }
        let at = (h.descriptor_offset * 512) as usize;
        let end = at + (h.descriptor_size * 512) as usize;
        let text = bytes.get(at..end.min(bytes.len()))?;
        let len = text.iter().position(|&b| b == 0).unwrap_or(text.len());
        Some(text[..len].to_vec())
    } else if bytes.starts_with(b"#") && bytes.len() < 4096 {
        Descriptor::parse(&String::from_utf8_lossy(bytes)).ok()?;
        Some(bytes.to_vec())
    } else {
        None
    }
}

/// The grain markers of a stream file's first grains, as `stream` seeds: the slice from each
/// marker on, with byte 0 picking that file's grain size in the harness.
fn marker_seeds(scratch: &Path, bytes: &[u8]) -> Vec<Vec<u8>> {
    let path = scratch.join("marker-src.vmdk");
    std::fs::write(&path, bytes).unwrap();
    let file = std::fs::File::open(&path).unwrap();
    let Ok(sp) = SparseExtent::open(
        vixDiskLib::vmdk::fd_cache::CachedFile::pinned(std::sync::Arc::new(file), &path, false),
        &bytes[..512],
    ) else {
        return Vec::new();
    };
    let gs = sp.header().grain_sectors;
    let mut out = Vec::new();
    for grain in 0..3 {
        if let Ok((GrainMap::Compressed(marker), _)) = sp.map(grain * gs, 1) {
            let at = (marker * 512) as usize;
            let mut seed = bytes[at..(at + 8192).min(bytes.len())].to_vec();
            seed[0] = gs.trailing_zeros() as u8 - 3;
            out.push(seed);
        }
    }
    out
}

/// Disks whose files are too big to go into the corpus whole.
const BULKY: &[&str] = &[
    "engine-monosparse",
    "engine-splitsparse",
    "qemu-monosparse",
    "qemu-splitsparse",
    "qemu-zeroed",
];
/// Bulky disks whose sparse extent is kept for `sparse_extent` anyway.
/// The bytes of a hand-built seSparse extent (`common::write_sesparse`).
fn sesparse_bytes(capacity: u64, grains: &[(u64, SeGrain)]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x-sesparse.vmdk");
    write_sesparse(&path, capacity, grains);
    std::fs::read(&path).unwrap()
}

/// ESXi seSparse snapshots: over a flat base, and over another seSparse snapshot.
fn sesparse_disks() -> Vec<(String, DiskFiles)> {
    let f = |n: &str, b: Vec<u8>| (n.to_string(), b);
    let data = |index, fill| SeGrain::Data { index, fill };
    let base_desc = descriptor_text(0x5a5e5e00, None, "vmfs", "RW 64 VMFS \"b-flat.vmdk\"");
    let flat: Vec<u8> = (0..64 * 512).map(|i| (i % 251) as u8).collect();
    let snap1 = sesparse_descriptor(64, "s1-sesparse.vmdk", Some(("b.vmdk", 0x5a5e5e00)));
    // Both snapshots of this chain carry the CID sesparse_descriptor writes (5a5e5e01).
    let snap2 = sesparse_descriptor(64, "s2-sesparse.vmdk", Some(("s1.vmdk", 0x5a5e5e01)));
    let s1 = sesparse_bytes(
        64,
        &[
            (0, data(2, 0xa1)),
            (1, SeGrain::Zero),
            (3, SeGrain::Unmapped),
            (6, data(0, 0xa2)),
        ],
    );
    let s2 = sesparse_bytes(
        64,
        &[(1, data(1, 0xb1)), (6, SeGrain::Zero), (7, data(0, 0xb2))],
    );
    vec![
        (
            "hand-sesparse".into(),
            vec![
                f("s1.vmdk", snap1.clone().into_bytes()),
                f("s1-sesparse.vmdk", s1.clone()),
                f("b.vmdk", base_desc.clone().into_bytes()),
                f("b-flat.vmdk", flat.clone()),
            ],
        ),
        (
            "hand-sesparse-chain".into(),
            vec![
                f("s2.vmdk", snap2.into_bytes()),
                f("s2-sesparse.vmdk", s2),
                f("s1.vmdk", snap1.into_bytes()),
                f("s1-sesparse.vmdk", s1),
                f("b.vmdk", base_desc.into_bytes()),
                f("b-flat.vmdk", flat),
            ],
        ),
    ]
}

const SPARSE_KEPT: &[&str] = &["engine-monosparse", "qemu-zeroed"];

/// Writes every target's seeds into `corpus/<target>/seed-*` (old seeds are replaced;
/// reproducers are kept).
pub fn write_all(corpus: &Path) {
    let scratch = tempfile::tempdir().unwrap();
    let mut disks = engine_disks(scratch.path());
    disks.extend(qemu_disks(scratch.path()));
    disks.extend(hand_disks());
    disks.extend(sesparse_disks());

    let mut seeds: Vec<(&str, String, Vec<u8>)> = Vec::new();
    for (label, files) in &disks {
        let packed: Vec<(&str, &[u8])> = files
            .iter()
            .map(|(n, b)| (n.as_str(), b.as_slice()))
            .collect();
        // The corpus stays small: a real sparse disk is >= 64 KiB of mostly zeros, so only a
        // few of them go in whole; their descriptors and headers all do.
        let whole = !BULKY.contains(&label.as_str());
        if whole {
            seeds.push(("chain_open", label.clone(), pack_files(&packed)));
        }
        for (name, bytes) in files {
            let tag = format!("{label}-{name}");
            if let Some(text) = descriptor_of(bytes) {
                seeds.push(("descriptor", tag.clone(), text));
            }
            if CowdExtent::has_magic(bytes) {
                seeds.push(("cowd", tag.clone(), bytes.clone()));
            }
            if SeSparseHeader::has_magic(bytes) {
                seeds.push(("sesparse", tag.clone(), bytes.clone()));
            }
            if !is_sparse(bytes) {
                continue;
            }
            seeds.push((
                "sparse_header",
                tag.clone(),
                header_seed(bytes, bytes.len()),
            ));
            let compressed =
                SparseHeader::decode(&bytes[..512], (bytes.len() as u64).div_ceil(512))
                    .is_ok_and(|h| h.is_compressed());
            if compressed {
                seeds.push(("stream", tag.clone(), bytes.clone()));
                for (i, m) in marker_seeds(scratch.path(), bytes).into_iter().enumerate() {
                    seeds.push(("stream", format!("{tag}-marker{i}"), m));
                }
                // The footer's header copy is a header too.
                let end = bytes.len();
                if end >= 1024 {
                    let footer = &bytes[end - 1024..end - 512];
                    if SparseHeader::has_magic(footer) {
                        seeds.push((
                            "sparse_header",
                            format!("{tag}-footer"),
                            header_seed(footer, end),
                        ));
                    }
                }
            } else if bytes.len() <= 64 * 1024 || SPARSE_KEPT.contains(&label.as_str()) {
                seeds.push(("sparse_extent", tag.clone(), bytes.clone()));
            }
        }
    }
    // Descriptors no disk above has.
    for (tag, text) in [
        (
            "hand-crlf-ctk",
            "# Disk DescriptorFile\r\nversion=3\r\nencoding=\"UTF-8\"\r\nCID=fffffffe\r\nparentCID=12345678\r\nisNativeSnapshot=\"no\"\r\ncreateType=\"twoGbMaxExtentSparse\"\r\nparentFileNameHint=\"..\\\\base\\\\b.vmdk\"\r\n\r\n# Extent description\r\nRW 4192256 SPARSE \"t-s001.vmdk\"\r\nRDONLY 100 FLAT \"f.raw\" 7\r\nNOACCESS 8 ZERO\r\n\r\n# Change Tracking File\r\nchangeTrackPath=\"t-ctk.vmdk\"\r\n\r\n# The Disk Data Base\r\n#DDB\r\n\r\nddb.uuid = \"60 00 C2 93\"\r\nddb.custom.thing = \"x y\"\r\n",
        ),
        (
            "hand-vmfs",
            "version=1\nCID=0000abcd\nparentCID=ffffffff\ncreateType=\"vmfs\"\nRW 2048 VMFS \"x-flat.vmdk\"\nRW 64 VMFSSPARSE \"x-delta.vmdk\"\nddb.geometry.cylinders = \"2\"\n\0\0\0",
        ),
    ] {
        seeds.push(("descriptor", tag.into(), text.as_bytes().to_vec()));
    }
    // A few COWD shapes beyond the disks: several tables, the largest grain, a bare header.
    seeds.push((
        "cowd",
        "hand-two-tables".into(),
        cowd_file(8192 * 2, 2, None, &[(0, 1), (4097, 2)]),
    ));
    seeds.push((
        "cowd",
        "hand-big-grain".into(),
        cowd_file(4096, 64, Some("p.vmdk"), &[(1, 3)]),
    ));
    seeds.push(("cowd", "hand-empty".into(), cowd_file(100, 1, None, &[])));
    // seSparse shapes: two tables, a damaged entry, and
    // an empty extent.
    seeds.push((
        "sesparse",
        "hand-two-tables".into(),
        sesparse_bytes(
            4096 * 8 * 2,
            &[
                (0, SeGrain::Data { index: 1, fill: 1 }),
                (4097, SeGrain::Data { index: 0, fill: 2 }),
                (4098, SeGrain::Zero),
            ],
        ),
    ));
    seeds.push((
        "sesparse",
        "hand-bad-entry".into(),
        sesparse_bytes(64, &[(1, SeGrain::Raw(0x5000_0000_0000_0001))]),
    ));
    seeds.push(("sesparse", "hand-empty".into(), sesparse_bytes(100, &[])));

    for target in TARGETS {
        let dir = corpus.join(target);
        std::fs::create_dir_all(&dir).unwrap();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("seed-")
            {
                std::fs::remove_file(path).unwrap();
            }
        }
    }
    for (target, tag, bytes) in seeds {
        let name: String = tag
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        std::fs::write(corpus.join(target).join(format!("seed-{name}")), bytes).unwrap();
    }
}
