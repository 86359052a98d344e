//! Disks made by qemu-img in every subformat it writes are read by us byte for byte.

mod common;

use common::*;

fn reference(dir: &std::path::Path, size: &str) -> std::path::PathBuf {
    let raw = p(dir, "ref.raw");
    let (code, out) = sh(&format!(
        "qemu-img create -q -f raw '{r}' {size} && qemu-io -f raw -c 'write -P 0xab 0 1M' -c 'write -P 0xcd 10M 64k' -c 'write -P 0x11 63M 512' -c 'write -P 0x5e 33554000 3000' '{r}' >/dev/null",
        r = raw.display()
    ));
    assert_eq!(code, 0, "{out}");
    raw
}

fn converted_reads_back(subformat: &str) {
    if !have_qemu() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let raw = reference(dir.path(), "64M");
    let vmdk = p(dir.path(), &format!("c_{subformat}.vmdk"));
    let (code, out) = sh(&format!(
        "qemu-img convert -f raw -O vmdk -o subformat={subformat} '{}' '{}'",
        raw.display(),
        vmdk.display()
    ));
    assert_eq!(code, 0, "{out}");
    let d = open_ro(&vmdk);
    assert_eq!(d.capacity(), 64 * 2048);
    assert!(
        read_all(&d) == std::fs::read(&raw).unwrap(),
        "{subformat} content differs"
    );
}

#[test]
fn qemu_monolithic_sparse_reads_back() {
    converted_reads_back("monolithicSparse");
}

#[test]
fn qemu_monolithic_flat_reads_back() {
    converted_reads_back("monolithicFlat");
}

#[test]
fn qemu_split_sparse_reads_back() {
    converted_reads_back("twoGbMaxExtentSparse");
}

#[test]
fn qemu_split_flat_reads_back() {
    converted_reads_back("twoGbMaxExtentFlat");
}

#[test]
fn qemu_stream_optimized_reads_back() {
    converted_reads_back("streamOptimized");
}

#[test]
fn qemu_stream_optimized_refuses_writes() {
    if !have_qemu() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let raw = reference(dir.path(), "64M");
    let vmdk = p(dir.path(), "s.vmdk");
    let (code, out) = sh(&format!(
        "qemu-img convert -f raw -O vmdk -o subformat=streamOptimized '{}' '{}'",
        raw.display(),
        vmdk.display()
    ));
    assert_eq!(code, 0, "{out}");
    let before = sha256(&vmdk);
    let d = open_rw(&vmdk);
    assert!(d.write(0, &[1u8; 512]).is_err());
    d.close().unwrap();
    drop(d);
    assert_eq!(sha256(&vmdk), before, "a refused write changed the file");
    assert!(read_all(&open_ro(&vmdk)) == std::fs::read(&raw).unwrap());
}

#[test]
fn qemu_zeroed_grains_read_as_zeros() {
    if !have_qemu() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let z = p(dir.path(), "z.vmdk");
    let (code, out) = sh(&format!(
        "qemu-img create -q -f vmdk -o zeroed_grain=on '{z}' 64M && qemu-io -f vmdk -c 'write -P 0xab 0 256k' -c 'write -z 64k 64k' -c 'write -z 1M 128k' '{z}' >/dev/null && qemu-img convert -O raw '{z}' '{z}.raw'",
        z = z.display()
    ));
    assert_eq!(code, 0, "{out}");
    let d = open_ro(&z);
    let all = read_all(&d);
    assert!(all == std::fs::read(format!("{}.raw", z.display())).unwrap());
    assert!(all[65536..131072].iter().all(|&b| b == 0));
    assert!(all[..65536].iter().all(|&b| b == 0xab));
}

#[test]
fn qemu_split_sizes_are_honoured_for_5_gib() {
    if !have_qemu() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let big = p(dir.path(), "big.vmdk");
    let (code, out) = sh(&format!(
        "qemu-img create -q -f vmdk -o subformat=twoGbMaxExtentSparse '{b}' 5G && qemu-io -f vmdk -c 'write -P 0x42 2047M 2M' -c 'write -P 0x43 5119M 1M' '{b}' >/dev/null",
        b = big.display()
    ));
    assert_eq!(code, 0, "{out}");
    let d = open_ro(&big);
    assert_eq!(d.capacity(), 5 * 1024 * 2048);
    let mut buf = vec![0u8; 2 << 20];
    d.read(2047 * 2048, &mut buf).unwrap();
    assert!(
        buf.iter().all(|&b| b == 0x42),
        "I/O across the extent boundary"
    );
    let mut tail = vec![0u8; 1 << 20];
    d.read(5119 * 2048, &mut tail).unwrap();
    assert!(tail.iter().all(|&b| b == 0x43));
}

/// A COWD (vmfsSparse) delta with 512-byte grains (see `common::cowd_file`).
fn write_cowd(path: &std::path::Path, capacity: u32, grains: &[(u32, u8)]) {
    std::fs::write(path, cowd_file(capacity, 1, None, grains)).unwrap();
}

#[test]
fn cowd_delta_over_a_flat_base_reads_like_qemu() {
    if !have_qemu() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let raw = reference(dir.path(), "64M");
    let base = p(dir.path(), "base.vmdk");
    let (code, out) = sh(&format!(
        "qemu-img convert -f raw -O vmdk -o subformat=monolithicFlat '{}' '{}'",
        raw.display(),
        base.display()
    ));
    assert_eq!(code, 0, "{out}");
    let base_cid = open_ro(&base).chain().links[0].descriptor().cid;
    write_cowd(
        &p(dir.path(), "snap-delta.vmdk"),
        131072,
        &[(0, 0x71), (7, 0x72), (5000, 0x73), (131071, 0x74)],
    );
    std::fs::write(
        p(dir.path(), "snap.vmdk"),
        format!(
            "# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID={base_cid:08x}\ncreateType=\"vmfsSparse\"\nparentFileNameHint=\"base.vmdk\"\n\n# Extent description\nRW 131072 VMFSSPARSE \"snap-delta.vmdk\"\n\n# The Disk Data Base\n#DDB\n\nddb.adapterType = \"lsilogic\"\n"
        ),
    )
    .unwrap();
    let snap = p(dir.path(), "snap.vmdk");
    let (code, out) = sh(&format!(
        "qemu-img convert -O raw '{}' '{}.raw'",
        snap.display(),
        snap.display()
    ));
    assert_eq!(code, 0, "{out}");
    let d = open_ro(&snap);
    assert_eq!(d.num_links(), 2);
    let ours = read_all(&d);
    assert!(ours == std::fs::read(format!("{}.raw", snap.display())).unwrap());
    assert!(ours[7 * 512..8 * 512].iter().all(|&b| b == 0x72));
    let blocks = d.allocated_chunks(0, d.capacity(), 128).unwrap();
    assert!(!blocks.is_empty());
    drop(d);
    let before = sha256(&snap);
    let rw = open_rw(&snap);
    assert!(rw.write(0, &[0u8; 512]).is_err(), "COWD is read-only");
    rw.close().unwrap();
    drop(rw);
    assert_eq!(
        sha256(&snap),
        before,
        "a refused write changed the descriptor"
    );
}

#[test]
fn zero_rdonly_and_noaccess_extents_keep_their_place() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(p(dir.path(), "a.raw"), vec![0xa1u8; 4096]).unwrap();
    std::fs::write(p(dir.path(), "b.raw"), vec![0xb2u8; 4096]).unwrap();
    std::fs::write(p(dir.path(), "c.raw"), vec![0xc3u8; 4096]).unwrap();
    let desc = p(dir.path(), "mixed.vmdk");
    std::fs::write(
        &desc,
        "# Disk DescriptorFile\nversion=1\nCID=1\nparentCID=ffffffff\ncreateType=\"custom\"\n\n# Extent description\nRW 8 FLAT \"a.raw\" 0\nRW 16 ZERO\nRDONLY 8 FLAT \"b.raw\" 0\nNOACCESS 8 FLAT \"c.raw\" 0\nRW 8 FLAT \"c.raw\" 0\n\n# The Disk Data Base\n#DDB\n\n",
    )
    .unwrap();
    let d = open_rw(&desc);
    assert_eq!(d.capacity(), 48);
    let mut all = vec![0u8; 48 * 512];
    d.read(0, &mut all[..16384]).unwrap();
    d.read(40, &mut all[20480..]).unwrap();
    assert!(all[..4096].iter().all(|&b| b == 0xa1));
    assert!(all[4096..12288].iter().all(|&b| b == 0));
    assert!(
        all[12288..16384].iter().all(|&b| b == 0xb2),
        "RDONLY extent after a ZERO one"
    );
    assert!(
        d.read(32, &mut all[16384..20480]).is_err(),
        "NOACCESS refuses reads"
    );
    assert!(all[20480..].iter().all(|&b| b == 0xc3));
    assert!(
        d.write(24, &[0u8; 512]).is_err(),
        "RDONLY extents refuse writes"
    );
    d.write(40, &[0x55u8; 512]).unwrap();
    let mut s = [0u8; 512];
    d.read(40, &mut s).unwrap();
    assert!(s.iter().all(|&b| b == 0x55));
}
