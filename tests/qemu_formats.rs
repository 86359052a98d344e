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
