//! Damaged and hostile disks: random corruption of every metadata byte of a real disk must
//! give an error or consistent data, never a panic, a hang, or a write to the damaged file.

mod common;

use common::*;
use vixDiskLib::chain::{Disk, OpenOptions};

const MIB: usize = 1 << 20;

/// A small deterministic generator (xorshift), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Opens and reads everything; returns whether the open succeeded.
fn exercise(path: &std::path::Path) -> bool {
    let ro = OpenOptions {
        read_only: true,
        single_link: false,
    };
    let Ok(d) = Disk::open(path, ro) else {
        return false;
    };
    {
        let mut buf = vec![0u8; MIB];
        for s in (0..d.capacity()).step_by(2048) {
            let n = (d.capacity() - s).min(2048) as usize;
            let _ = d.read(s, &mut buf[..n * 512]);
        }
        let _ = d.allocated_chunks(0, d.capacity() / 128 * 128, 128);
        let _ = d.info();
    }
    true
}

#[test]
fn random_metadata_corruption_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    let good = p(dir.path(), "good.vmdk");
    create_sparse(&good, 4);
    {
        let d = open_rw(&good);
        let mut model = vec![0u8; 4 * MIB];
        write_pattern(&d, &mut model, 0, 256 * 1024, 0x11);
        write_pattern(&d, &mut model, 3 * MIB, 4096, 0x22);
        d.close().unwrap();
    }
    let original = std::fs::read(&good).unwrap();
    // Metadata is the first 128 sectors (header, descriptor, directories, tables).
    let metadata = 128 * 512;
    // VIXDISKLIB_FUZZ_ROUNDS / _SEED widen the search when hunting bugs by hand.
    let rounds: usize = std::env::var("VIXDISKLIB_FUZZ_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let seed: u64 = std::env::var("VIXDISKLIB_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x9e37_79b9_7f4a_7c15);
    let mut rng = Rng(seed | 1);
    let victim = p(dir.path(), "bad.vmdk");
    let mut opened = 0;
    for round in 0..rounds {
        let mut bytes = original.clone();
        for _ in 0..1 + rng.next() % 8 {
            // Aim at what matters: header fields, descriptor text, directories and tables.
            let at = match rng.next() % 3 {
                0 => (rng.next() % 80) as usize,
                1 => 512 + (rng.next() % 400) as usize,
                _ => 21 * 512 + (rng.next() % (metadata as u64 - 21 * 512)) as usize,
            };
            bytes[at] = match rng.next() % 4 {
                0 => 0,
                1 => 0xff,
                2 => bytes[at] ^ (1 << (rng.next() % 8)),
                _ => rng.next() as u8,
            };
        }
        if round % 10 == 0 {
            bytes.truncate((rng.next() % bytes.len() as u64) as usize);
        }
        std::fs::write(&victim, &bytes).unwrap();
        opened += usize::from(exercise(&victim));
        let unchanged = std::fs::read(&victim).unwrap() == bytes;
        // Writing into a damaged disk may fail, but must not panic.
        if let Ok(d) = Disk::open(&victim, OpenOptions::default()) {
            let _ = d.write(0, &[0x5a; 4096]);
            let _ = d.write(d.capacity().saturating_sub(129), &[0x5b; 65536]);
            let _ = d.flush();
            let _ = d.close();
        }
        assert!(
            unchanged,
            "round {round}: a read-only open changed the file"
        );
    }
    // Many damaged files must still open (so the read paths are exercised), and not all.
    assert!(
        opened > rounds / 10 && opened < rounds,
        "{opened} of {rounds} damaged disks opened"
    );
    eprintln!("{opened} of {rounds} damaged disks opened and were read");
}

#[test]
fn hostile_descriptors_are_refused_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(p(dir.path(), "data.raw"), vec![7u8; 4096]).unwrap();
    let cases = [
        "RW 8 FLAT \"../../../../etc/hostname\" 0",
        "RW 8 FLAT \"/etc/hostname\" 0",
        "RW 8 FLAT \"sub/../../x.raw\" 0",
        "RW 18446744073709551615 FLAT \"data.raw\" 0",
        "RW 8 FLAT \"data.raw\" 18446744073709551615",
        "RW 8 SPARSE \"data.raw\"",
        "RW 8 FLAT \"missing.raw\" 0",
    ];
    for line in cases {
        let d = p(dir.path(), "evil.vmdk");
        std::fs::write(
            &d,
            format!("# Disk DescriptorFile\nversion=1\nCID=1\nparentCID=ffffffff\ncreateType=\"monolithicFlat\"\n\n# Extent description\n{line}\n\n# The Disk Data Base\n#DDB\n\n"),
        )
        .unwrap();
        assert!(
            Disk::open(&d, OpenOptions::default()).is_err(),
            "{line} was accepted"
        );
    }
}

#[test]
fn random_corruption_of_a_stream_optimized_disk_never_panics() {
    use vixDiskLib::vmdk::create::{CreateSpec, DiskKind};
    use vixDiskLib::vmdk::geometry::Adapter;
    let dir = tempfile::tempdir().unwrap();
    let src = p(dir.path(), "src.vmdk");
    create_sparse(&src, 4);
    {
        let d = open_rw(&src);
        let mut model = vec![0u8; 4 * MIB];
        write_pattern(&d, &mut model, 0, 128 * 1024, 0x31);
        write_pattern(&d, &mut model, 2 * MIB, 64 * 1024, 0x32);
        d.close().unwrap();
    }
    let stream = p(dir.path(), "s.vmdk");
    let spec = CreateSpec {
        kind: DiskKind::StreamOptimized,
        capacity: 0,
        adapter: Adapter::Ide,
        hw_version: 0,
    };
    open_ro(&src)
        .clone_to(&stream, &spec, false, 2, &mut |_| {})
        .unwrap();
    let original = std::fs::read(&stream).unwrap();
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let victim = p(dir.path(), "bad.vmdk");
    let mut opened = 0;
    for _ in 0..300 {
        let mut bytes = original.clone();
        for _ in 0..1 + rng.next() % 6 {
            // Header, descriptor, grain markers and compressed data, tables, directory, footer.
            let at = match rng.next() % 3 {
                0 => (rng.next() % 80) as usize,
                1 => bytes.len() - 1 - (rng.next() % 4096) as usize,
                _ => (rng.next() % bytes.len() as u64) as usize,
            };
            bytes[at] = rng.next() as u8;
        }
        std::fs::write(&victim, &bytes).unwrap();
        opened += usize::from(exercise(&victim));
        // Appending to a damaged stream may fail, but must not panic.
        if let Ok(d) = Disk::open(&victim, OpenOptions::default()) {
            let _ = d.write(d.capacity().saturating_sub(256), &[0x5c; 4096]);
            let _ = d.close();
        }
    }
    assert!(opened > 0, "no damaged stream opened at all");
}
