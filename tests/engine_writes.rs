//! Write-path guarantees of the engine: tables allocated where the directory has none, the
//! unclean flag and CID session rules, qemu writing into our files, and a model-based
//! property test of random writes/reads/reopens on a two-link chain.

mod common;

use common::*;
use proptest::prelude::*;
use vixDiskLib::chain::{Disk, OpenOptions};
use vixDiskLib::vmdk::create::DiskKind;

const MIB: usize = 1 << 20;

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

#[test]
fn writing_where_the_directory_has_no_table_allocates_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = p(dir.path(), "nogt.vmdk");
    create_sparse(&path, 64);
    // Drop grain table 1 from both directories, as VMware stream files and foreign tools do.
    let mut bytes = std::fs::read(&path).unwrap();
    let (rgd, gd) = (
        le32(&bytes, 48) as usize * 512,
        le32(&bytes, 56) as usize * 512,
    );
    bytes[rgd + 4..rgd + 8].fill(0);
    bytes[gd + 4..gd + 8].fill(0);
    std::fs::write(&path, &bytes).unwrap();
    let mut model = vec![0u8; 64 * MIB];
    {
        let d = open_rw(&path);
        write_pattern(&d, &mut model, 33 * MIB, 64 * 1024, 0x42);
        write_pattern(&d, &mut model, 40 * MIB + 512, 512, 0x43);
        d.close().unwrap();
    }
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(&bytes[0..4], b"KDMV", "the header must survive");
    let (new_gt, new_rgt) = (le32(&bytes, gd + 4), le32(&bytes, rgd + 4));
    assert!(new_gt != 0 && new_rgt != 0 && new_gt != new_rgt);
    let table = |at: u32| bytes[at as usize * 512..at as usize * 512 + 2048].to_vec();
    assert_eq!(
        table(new_gt),
        table(new_rgt),
        "primary and redundant tables must match"
    );
    assert!(read_all(&open_ro(&path)) == model);
    if have_qemu() {
        let raw = p(dir.path(), "m.raw");
        save_raw(&model, &raw);
        assert!(qemu_check(&path));
        assert!(qemu_same(&raw, &path));
    }
}

#[test]
fn unclean_flag_and_cid_follow_the_write_session() {
    let dir = tempfile::tempdir().unwrap();
    let path = p(dir.path(), "s.vmdk");
    create_sparse(&path, 4);
    let unclean = || std::fs::read(&path).unwrap()[72];
    let cid = || open_ro(&path).chain().links[0].descriptor().cid;
    let first = cid();
    {
        let d = open_rw(&path);
        assert_eq!(unclean(), 0, "opening alone changes nothing");
        d.write(0, &[1u8; 512]).unwrap();
        assert_eq!(unclean(), 1, "set while open for writing");
        d.write(8, &[2u8; 512]).unwrap();
        d.close().unwrap();
    }
    assert_eq!(unclean(), 0, "cleared on clean close");
    let second = cid();
    assert_ne!(first, second, "the first write of an open renews the CID");
    {
        let d = open_rw(&path);
        d.close().unwrap();
    }
    assert_eq!(cid(), second, "an open without writes keeps the CID");
}

#[test]
fn qemu_writes_into_our_disk_and_we_read_them() {
    if !have_qemu() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = p(dir.path(), "q.vmdk");
    create_sparse(&path, 64);
    let mut model = vec![0u8; 64 * MIB];
    {
        let d = open_rw(&path);
        write_pattern(&d, &mut model, 0, MIB, 0xab);
        d.close().unwrap();
    }
    let (code, out) = sh(&format!(
        "qemu-io -f vmdk -c 'write -P 0x22 20M 64k' -c 'write -P 0x23 100k 4k' '{}'",
        path.display()
    ));
    assert_eq!(code, 0, "{out}");
    model[20 * MIB..20 * MIB + 65536].fill(0x22);
    model[100 * 1024..104 * 1024].fill(0x23);
    assert!(read_all(&open_ro(&path)) == model);
}

#[derive(Debug, Clone)]
enum Op {
    Write { sector: u64, sectors: u64, byte: u8 },
    Read { sector: u64, sectors: u64 },
    Flush,
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    const SECTORS: u64 = 8 * 2048;
    prop_oneof![
        4 => (0..SECTORS - 1, 1u64..300, any::<u8>()).prop_map(|(s, n, b)| Op::Write { sector: s, sectors: n.min(SECTORS - s), byte: b }),
        3 => (0..SECTORS - 1, 1u64..600).prop_map(|(s, n)| Op::Read { sector: s, sectors: n.min(SECTORS - s) }),
        1 => Just(Op::Flush),
        1 => Just(Op::Reopen),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]

    /// Random writes, reads, flushes and reopens on a child over a written base always read
    /// back like a byte model, and the parent never changes.
    #[test]
    fn chain_matches_a_byte_model(ops in proptest::collection::vec(op(), 1..40)) {
        let dir = tempfile::tempdir().unwrap();
        let base = p(dir.path(), "b.vmdk");
        create_sparse(&base, 8);
        let mut model = vec![0u8; 8 * MIB];
        {
            let d = open_rw(&base);
            write_pattern(&d, &mut model, 0, 3 * MIB, 0x5a);
            write_pattern(&d, &mut model, 5 * MIB + 512, 7000 / 512 * 512, 0x6b);
            d.create_child(&p(dir.path(), "c.vmdk"), DiskKind::MonolithicSparse).unwrap();
        }
        let base_sum = sha256(&base);
        let child = p(dir.path(), "c.vmdk");
        let mut d = Disk::open(&child, OpenOptions::default()).unwrap();
        for op in ops {
            match op {
                Op::Write { sector, sectors, byte } => {
                    let at = sector as usize * 512;
                    write_pattern(&d, &mut model, at, sectors as usize * 512, byte);
                }
                Op::Read { sector, sectors } => {
                    let mut buf = vec![0u8; sectors as usize * 512];
                    d.read(sector, &mut buf).unwrap();
                    let at = sector as usize * 512;
                    prop_assert!(buf == model[at..at + buf.len()]);
                }
                Op::Flush => d.flush().unwrap(),
                Op::Reopen => {
                    d.close().unwrap();
                    drop(d);
                    d = Disk::open(&child, OpenOptions::default()).unwrap();
                }
            }
        }
        d.close().unwrap();
        drop(d);
        prop_assert!(read_all(&open_ro(&child)) == model);
        prop_assert_eq!(sha256(&base), base_sum);
    }
}
