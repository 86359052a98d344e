//! CheckRepair's damage matrix: disks made by the engine, damaged byte by byte, then checked
//! (must report the damage and change nothing), repaired (must fix what it can and keep every
//! grain that was reachable), checked again (must be clean) and compared with the expected
//! content through the engine and, where available, `qemu-img check`/`compare`.

mod common;

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use common::*;
use vixDiskLib::chain::{Disk, OpenOptions as DiskOptions};
use vixDiskLib::vmdk::check::{CheckReport, Outcome, ProblemKind, check_disk};
use vixDiskLib::vmdk::create::{CreateSpec, DiskKind, create};
use vixDiskLib::vmdk::geometry::Adapter;

const MIB: usize = 1 << 20;
const GRAIN: usize = 64 * 1024;

/// A 64 MiB monolithic sparse disk with data in both grain tables: grains 0-3, 16, 528-529
/// and one partial grain at 40 MiB. The engine lays it out like qemu: RGD at 21, RGTs at 22
/// and 26, GD at 30, GTs at 31 and 35, grains from sector 128 on (the one at 40 MiB is last).
fn sparse_disk(dir: &Path) -> (PathBuf, Vec<u8>) {
    let path = p(dir, "disk.vmdk");
    create_sparse(&path, 64);
    let mut model = vec![0u8; 64 * MIB];
    let d = open_rw(&path);
    write_pattern(&d, &mut model, 0, 4 * GRAIN, 0x11);
    write_pattern(&d, &mut model, MIB, GRAIN, 0x22);
    write_pattern(&d, &mut model, 33 * MIB, 2 * GRAIN, 0x33);
    write_pattern(&d, &mut model, 40 * MIB + 512, 1024, 0x44);
    d.close().unwrap();
    (path, model)
}

/// A 4 MiB monolithicFlat disk with 64 KiB of data at 1 MiB; returns (descriptor, flat, model).
fn flat_disk(dir: &Path) -> (PathBuf, PathBuf, Vec<u8>) {
    let path = p(dir, "flat.vmdk");
    let spec = CreateSpec {
        kind: DiskKind::MonolithicFlat,
        capacity: 4 * 2048,
        adapter: Adapter::LsiLogic,
        hw_version: 7,
    };
    create(&path, &spec, &mut |_| {}).unwrap();
    let mut model = vec![0u8; 4 * MIB];
    let d = open_rw(&path);
    write_pattern(&d, &mut model, MIB, GRAIN, 0x55);
    d.close().unwrap();
    (path, p(dir, "flat-flat.vmdk"), model)
}

fn u32_at(path: &Path, off: u64) -> u32 {
    let f = std::fs::File::open(path).unwrap();
    let mut b = [0u8; 4];
    f.read_exact_at(&mut b, off).unwrap();
    u32::from_le_bytes(b)
}

fn poke(path: &Path, off: u64, bytes: &[u8]) {
    let f = OpenOptions::new().write(true).open(path).unwrap();
    f.write_all_at(bytes, off).unwrap();
}

fn poke_u32(path: &Path, off: u64, v: u32) {
    poke(path, off, &v.to_le_bytes());
}

const GD: u64 = 30 * 512;
const RGD: u64 = 21 * 512;
/// Byte offset of entry `j` of primary (`rgt = false`) or redundant grain table `i`.
fn gte(path: &Path, rgt: bool, i: u64, j: u64) -> u64 {
    let table = u32_at(path, if rgt { RGD } else { GD } + 4 * i);
    u64::from(table) * 512 + 4 * j
}

/// Byte offset of `needle` inside the embedded descriptor (sectors 1 to 20).
fn find_in_descriptor(path: &Path, needle: &[u8]) -> u64 {
    let area = std::fs::read(path).unwrap()[512..21 * 512].to_vec();
    let at = area
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap_or_else(|| {
            panic!(
                "{:?} not in the descriptor",
                String::from_utf8_lossy(needle)
            )
        });
    512 + at as u64
}

fn check(path: &Path, repair: bool) -> CheckReport {
    let r = check_disk(path, repair)
        .unwrap_or_else(|e| panic!("check of {} failed: {e}", path.display()));
    for p in &r.problems {
        eprintln!("  problem {:?} fixable={}: {}", p.kind, p.fixable, p.detail);
    }
    for a in &r.repaired {
        eprintln!("  repaired: {a}");
    }
    r
}

fn read_disk(path: &Path) -> Vec<u8> {
    let d = Disk::open(
        path,
        DiskOptions {
            read_only: true,
            single_link: true,
        },
    )
    .expect("repaired disk opens");
    let data = read_all(&d);
    d.close().unwrap();
    data
}

/// The whole cycle for fixable damage: `kind` reported without writes, repair, clean second
/// check, content equal to `expected` through the engine and qemu-img.
fn assert_repairs(path: &Path, files: &[&Path], kind: ProblemKind, expected: &[u8]) {
    let before: Vec<String> = files.iter().map(|f| sha256(f)).collect();
    let r = check(path, false);
    assert!(r.has(kind), "expected {kind:?} in {:?}", r.problems);
    assert!(r.problems.iter().all(|p| p.fixable), "{:?}", r.problems);
    // The uncleanShutdown flag alone is a note, not damage (docs/decisions.md).
    let verdict = if kind == ProblemKind::UncleanShutdown {
        Outcome::Clean
    } else {
        Outcome::NeedsRepair
    };
    assert_eq!(r.outcome(), verdict);
    assert!(r.repaired.is_empty());
    let after: Vec<String> = files.iter().map(|f| sha256(f)).collect();
    assert_eq!(before, after, "a check without repair changed the files");

    let r = check(path, true);
    assert!(r.has(kind));
    assert_eq!(r.outcome(), Outcome::Repaired, "{:?}", r.problems);
    assert!(!r.repaired.is_empty());

    let r = check(path, false);
    assert_eq!(r.outcome(), Outcome::Clean, "{:?}", r.problems);
    assert!(read_disk(path) == expected, "content differs after repair");
    if have_qemu() {
        assert!(qemu_check(path), "qemu-img check fails after repair");
        let raw = path.with_extension("raw");
        save_raw(expected, &raw);
        assert!(
            qemu_same(&raw, path),
            "qemu-img compare differs after repair"
        );
    }
}

/// Damage beyond repair: reported, and neither the check nor the repair writes anything.
fn assert_unrepairable(path: &Path, files: &[&Path], kind: ProblemKind) {
    let before: Vec<String> = files.iter().map(|f| sha256(f)).collect();
    for repair in [false, true] {
        let r = check(path, repair);
        assert!(r.has(kind), "expected {kind:?} in {:?}", r.problems);
        assert!(r.unrepairable);
        assert_eq!(r.outcome(), Outcome::CantRepair);
        assert!(r.repaired.is_empty());
        let after: Vec<String> = files.iter().map(|f| sha256(f)).collect();
        assert_eq!(before, after, "repair={repair} changed unrepairable files");
    }
}

fn zero(model: &mut [u8], at: usize, len: usize) {
    model[at..at + len].fill(0);
}

#[test]
fn clean_disks_check_clean_and_repair_touches_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (path, model) = sparse_disk(dir.path());
    let (flat, flat_data, _) = flat_disk(dir.path());
    for (disk, files) in [
        (&path, vec![path.as_path()]),
        (&flat, vec![flat.as_path(), flat_data.as_path()]),
    ] {
        let before: Vec<String> = files.iter().map(|f| sha256(f)).collect();
        for repair in [false, true] {
            let r = check(disk, repair);
            assert_eq!(r.outcome(), Outcome::Clean, "{:?}", r.problems);
            assert!(r.problems.is_empty() && r.repaired.is_empty());
        }
        let after: Vec<String> = files.iter().map(|f| sha256(f)).collect();
        assert_eq!(before, after);
    }
    assert!(read_disk(&path) == model);
}

#[test]
fn primary_directory_entry_pointing_at_another_table_is_rebuilt_from_the_redundant_one() {
    let dir = tempfile::tempdir().unwrap();
    let (path, model) = sparse_disk(dir.path());
    poke_u32(&path, GD + 4, u32_at(&path, GD)); // GD[1] = GD[0]
    assert_repairs(&path, &[&path], ProblemKind::DirectoryEntry, &model);
    assert_eq!(
        u32_at(&path, GD + 4),
        35,
        "table 1 goes back to its standard place"
    );
}

#[test]
fn primary_directory_entry_past_the_end_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let (path, model) = sparse_disk(dir.path());
    poke_u32(&path, GD, 0x00ab_cdef);
    assert_repairs(&path, &[&path], ProblemKind::DirectoryEntry, &model);
}

#[test]
fn zeroed_redundant_directory_entry_is_rebuilt_from_the_primary() {
    let dir = tempfile::tempdir().unwrap();
    let (path, model) = sparse_disk(dir.path());
    poke_u32(&path, RGD + 4, 0);
    assert_repairs(&path, &[&path], ProblemKind::RedundantDirectory, &model);
    assert_eq!(u32_at(&path, RGD + 4), 26);
}

#[test]
fn redundant_directory_sharing_the_primary_table_gets_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let (path, model) = sparse_disk(dir.path());
    poke_u32(&path, RGD, u32_at(&path, GD)); // RGD[0] == GD[0]: VirtualBox refuses this
    assert_repairs(&path, &[&path], ProblemKind::DirectoryEntry, &model);
    assert_ne!(u32_at(&path, RGD), u32_at(&path, GD));
}

#[test]
fn grain_table_differing_from_its_redundant_copy_is_made_identical() {
    let dir = tempfile::tempdir().unwrap();
    let (path, model) = sparse_disk(dir.path());
    poke_u32(&path, gte(&path, true, 0, 1), 0); // RGT[0][1] lost
    poke_u32(&path, gte(&path, true, 1, 17), 128); // RGT[1][17] aliases grain 0
    assert_repairs(&path, &[&path], ProblemKind::RedundantTable, &model);
    assert_eq!(
        u32_at(&path, gte(&path, true, 1, 17)),
        u32_at(&path, gte(&path, false, 1, 17))
    );
}

#[test]
fn entry_past_the_end_in_both_copies_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let (path, mut model) = sparse_disk(dir.path());
    for rgt in [false, true] {
        poke_u32(&path, gte(&path, rgt, 0, 16), 0x0010_0000);
    }
    if have_qemu() {
        assert!(!qemu_check(&path), "qemu-img check should see the damage");
    }
    zero(&mut model, MIB, GRAIN);
    assert_repairs(&path, &[&path], ProblemKind::GrainPastEnd, &model);
}

#[test]
fn entry_past_the_end_in_the_primary_only_is_taken_from_the_redundant_copy() {
    let dir = tempfile::tempdir().unwrap();
    let (path, model) = sparse_disk(dir.path());
    poke_u32(&path, gte(&path, false, 1, 17), 0xffff_fff0);
    assert_repairs(&path, &[&path], ProblemKind::GrainPastEnd, &model);
}

#[test]
fn entry_into_metadata_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let (path, mut model) = sparse_disk(dir.path());
    for rgt in [false, true] {
        poke_u32(&path, gte(&path, rgt, 0, 2), 30); // the grain directory itself
        poke_u32(&path, gte(&path, rgt, 0, 40), 1); // the descriptor (no zeroed-grain flag)
    }
    zero(&mut model, 2 * GRAIN, GRAIN);
    assert_repairs(&path, &[&path], ProblemKind::GrainInMetadata, &model);
}

#[test]
fn shared_grain_keeps_the_first_entry() {
    let dir = tempfile::tempdir().unwrap();
    let (path, mut model) = sparse_disk(dir.path());
    let first = u32_at(&path, gte(&path, false, 0, 1));
    for rgt in [false, true] {
        poke_u32(&path, gte(&path, rgt, 0, 16), first); // grain 16 aliases grain 1
    }
    // Grain 16 now reads grain 1's data; repair must keep that (issue 19: a repair may not
    // change what a readable sector reads), giving grain 16 its own copy.
    model.copy_within(GRAIN..2 * GRAIN, MIB);
    assert!(read_disk(&path) == model);
    assert_repairs(&path, &[&path], ProblemKind::SharedGrain, &model);
    assert_eq!(u32_at(&path, gte(&path, false, 0, 1)), first);
    let copy = u32_at(&path, gte(&path, false, 0, 16));
    assert!(copy != 0 && copy != first, "entry 16 = {copy}");
}

#[test]
fn unclean_shutdown_flag_is_cleared() {
    let dir = tempfile::tempdir().unwrap();
    let (path, model) = sparse_disk(dir.path());
    poke(&path, 72, &[1]);
    assert_repairs(&path, &[&path], ProblemKind::UncleanShutdown, &model);
    assert_eq!(u32_at(&path, 72) & 0xff, 0);
}

#[test]
fn mangled_newline_bytes_are_restored() {
    let dir = tempfile::tempdir().unwrap();
    let (path, model) = sparse_disk(dir.path());
    poke(&path, 73, b"\n \n\n");
    assert!(Disk::open(&path, DiskOptions::default()).is_err());
    assert_repairs(&path, &[&path], ProblemKind::NewlineDetector, &model);
}

#[test]
fn file_truncated_inside_the_last_grain_is_extended() {
    let dir = tempfile::tempdir().unwrap();
    let (path, model) = sparse_disk(dir.path());
    let f = OpenOptions::new().write(true).open(&path).unwrap();
    f.set_len(1088 * 512).unwrap(); // half of the grain at 1024 (40 MiB) survives
    drop(f);
    assert_repairs(&path, &[&path], ProblemKind::ShortExtent, &model);
}

#[test]
fn file_truncated_across_grains_drops_the_lost_ones_and_keeps_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let (path, mut model) = sparse_disk(dir.path());
    let f = OpenOptions::new().write(true).open(&path).unwrap();
    f.set_len(960 * 512).unwrap(); // grain at 896 half gone, grain at 1024 entirely
    drop(f);
    zero(&mut model, 33 * MIB + GRAIN + GRAIN / 2, GRAIN / 2);
    zero(&mut model, 40 * MIB, GRAIN);
    assert_repairs(&path, &[&path], ProblemKind::GrainPastEnd, &model);
}

#[test]
fn both_directory_copies_wiped_for_one_index_are_recovered_from_the_standard_place() {
    let dir = tempfile::tempdir().unwrap();
    let (path, model) = sparse_disk(dir.path());
    poke_u32(&path, GD + 4, 0);
    poke_u32(&path, RGD + 4, 0);
    assert_repairs(&path, &[&path], ProblemKind::DirectoryEntry, &model);
}

#[test]
fn garbage_line_in_the_embedded_descriptor_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let (path, model) = sparse_disk(dir.path());
    let at = find_in_descriptor(&path, b"# Extent description\n");
    poke(&path, at, b"\x01\x02\xff garbage \xfe\xfd!!!!!!");
    assert!(Disk::open(&path, DiskOptions::default()).is_err());
    assert_repairs(&path, &[&path], ProblemKind::Descriptor, &model);
}

#[test]
fn descriptor_capacity_differing_from_the_header_is_corrected() {
    let dir = tempfile::tempdir().unwrap();
    let (path, model) = sparse_disk(dir.path());
    let at = find_in_descriptor(&path, b"RW 131072 ");
    poke(&path, at, b"RW 262144 ");
    assert_repairs(&path, &[&path], ProblemKind::CapacityMismatch, &model);
}

#[test]
fn header_capacity_differing_from_the_descriptor_is_corrected() {
    let dir = tempfile::tempdir().unwrap();
    let (path, model) = sparse_disk(dir.path());
    poke(&path, 12, &262_144u64.to_le_bytes());
    assert_repairs(&path, &[&path], ProblemKind::CapacityMismatch, &model);
    assert_eq!(u32_at(&path, 12), 131_072);
}

#[test]
fn short_flat_extent_is_extended_with_zeros() {
    let dir = tempfile::tempdir().unwrap();
    let (path, flat, model) = flat_disk(dir.path());
    let f = OpenOptions::new().write(true).open(&flat).unwrap();
    f.set_len(2 * MIB as u64).unwrap();
    drop(f);
    assert_repairs(&path, &[&path, &flat], ProblemKind::ShortExtent, &model);
    assert_eq!(std::fs::metadata(&flat).unwrap().len(), 4 * MIB as u64);
}

#[test]
fn missing_flat_extent_cannot_be_repaired() {
    let dir = tempfile::tempdir().unwrap();
    let (path, flat, _) = flat_disk(dir.path());
    std::fs::remove_file(&flat).unwrap();
    assert_unrepairable(&path, &[&path], ProblemKind::MissingExtent);
}

#[test]
fn destroyed_descriptor_file_cannot_be_repaired() {
    let dir = tempfile::tempdir().unwrap();
    let (path, flat, _) = flat_disk(dir.path());
    let garbage: Vec<u8> = (0..600u32).map(|i| (i * 7 % 200 + 40) as u8).collect();
    std::fs::write(&path, garbage).unwrap();
    assert_unrepairable(&path, &[&path, &flat], ProblemKind::Descriptor);
}

#[test]
fn destroyed_header_cannot_be_repaired() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = sparse_disk(dir.path());
    poke(&path, 0, b"\xde\xad\xbe\xef");
    assert_unrepairable(&path, &[&path], ProblemKind::Header);
    let (other, _) = {
        let d = p(dir.path(), "v");
        std::fs::create_dir(&d).unwrap();
        sparse_disk(&d)
    };
    poke(&other, 20, &100u64.to_le_bytes()); // grain size 100 sectors
    assert_unrepairable(&other, &[&other], ProblemKind::Header);
}

#[test]
fn grain_directory_destroyed_in_both_copies_cannot_be_repaired() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = sparse_disk(dir.path());
    poke(&path, GD, &[0xff; 8]);
    poke(&path, RGD, &[0xff; 8]);
    assert_unrepairable(&path, &[&path], ProblemKind::LostTable);
}

#[test]
fn several_kinds_of_damage_at_once_are_repaired_together() {
    let dir = tempfile::tempdir().unwrap();
    let (path, mut model) = sparse_disk(dir.path());
    poke(&path, 72, &[1]);
    poke(&path, 73, b"\r\n\r\n");
    poke_u32(&path, RGD, 0);
    poke_u32(&path, gte(&path, false, 1, 16), 0x7fff_0000);
    poke_u32(&path, gte(&path, true, 1, 16), 0x7fff_0000);
    zero(&mut model, 33 * MIB, GRAIN);
    assert_repairs(&path, &[&path], ProblemKind::GrainPastEnd, &model);
    let r = check(&path, false);
    assert!(r.problems.is_empty());
}

/// A descriptor file naming the engine's sparse file as a SPARSE extent (the split-sparse path).
fn descriptor_over_sparse(dir: &Path, sectors: u64) -> (PathBuf, PathBuf, Vec<u8>) {
    let (extent, model) = sparse_disk(dir);
    let desc = p(dir, "split.vmdk");
    std::fs::write(
        &desc,
        format!(
            "# Disk DescriptorFile\nversion=1\nCID=1234abcd\nparentCID=ffffffff\ncreateType=\"twoGbMaxExtentSparse\"\n\n# Extent description\nRW {sectors} SPARSE \"disk.vmdk\"\n\n# The Disk Data Base\n#DDB\n\nddb.adapterType = \"lsilogic\"\n"
        ),
    )
    .unwrap();
    (desc, extent, model)
}

#[test]
fn damage_inside_an_extent_named_by_a_descriptor_file_is_repaired() {
    let dir = tempfile::tempdir().unwrap();
    let (desc, extent, mut model) = descriptor_over_sparse(dir.path(), 131_072);
    assert_eq!(check(&desc, false).outcome(), Outcome::Clean);
    for rgt in [false, true] {
        poke_u32(&extent, gte(&extent, rgt, 1, 17), 5); // inside the descriptor area
    }
    zero(&mut model, 33 * MIB + GRAIN, GRAIN);
    assert_repairs(
        &desc,
        &[&desc, &extent],
        ProblemKind::GrainInMetadata,
        &model,
    );
}

#[test]
fn extent_header_smaller_than_its_extent_line_is_raised() {
    let dir = tempfile::tempdir().unwrap();
    let (desc, extent, model) = descriptor_over_sparse(dir.path(), 131_072);
    poke(&extent, 12, &130_944u64.to_le_bytes()); // one grain short, same directory size
    assert!(Disk::open(&desc, DiskOptions::default()).is_err());
    assert_repairs(
        &desc,
        &[&desc, &extent],
        ProblemKind::CapacityMismatch,
        &model,
    );
    assert_eq!(u32_at(&extent, 12), 131_072);
}

#[test]
fn missing_sparse_extent_cannot_be_repaired() {
    let dir = tempfile::tempdir().unwrap();
    let (desc, extent, _) = descriptor_over_sparse(dir.path(), 131_072);
    std::fs::remove_file(&extent).unwrap();
    assert_unrepairable(&desc, &[&desc], ProblemKind::MissingExtent);
}

#[test]
fn disks_made_by_qemu_check_clean() {
    if !have_qemu() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for (name, opts) in [
        ("mono.vmdk", "subformat=monolithicSparse"),
        ("zeroed.vmdk", "subformat=monolithicSparse,zeroed_grain=on"),
        ("split.vmdk", "subformat=twoGbMaxExtentSparse"),
        ("flat.vmdk", "subformat=monolithicFlat"),
        ("splitflat.vmdk", "subformat=twoGbMaxExtentFlat"),
    ] {
        let path = p(dir.path(), name);
        let (code, out) = sh(&format!(
            "qemu-img create -q -f vmdk -o {opts} '{0}' 3G && qemu-io -f vmdk -c 'write -P 0x61 0 192k' -c 'write -P 0x62 2100M 4k' -c 'write -z 1G 64k' '{0}'",
            path.display()
        ));
        assert_eq!(code, 0, "{out}");
        let r = check(&path, false);
        assert_eq!(r.outcome(), Outcome::Clean, "{name}: {:?}", r.problems);
    }
    let stream = p(dir.path(), "stream.vmdk");
    let (code, out) = sh(&format!(
        "qemu-img create -q -f vmdk -o subformat=streamOptimized '{}' 64M",
        stream.display()
    ));
    assert_eq!(code, 0, "{out}");
    let r = check(&stream, false);
    assert_eq!(r.outcome(), Outcome::Clean, "stream: {:?}", r.problems);
}

/// Random damage to the header, descriptor and tables: the checker never panics, a check never
/// writes, an unrepairable verdict never writes, and a repaired disk checks clean and reads.
#[test]
fn random_metadata_damage_never_panics_and_repair_converges() {
    let dir = tempfile::tempdir().unwrap();
    let (pristine, _) = sparse_disk(dir.path());
    let bytes = std::fs::read(&pristine).unwrap();
    let iterations: u64 = std::env::var("CHECK_FUZZ_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let path = p(dir.path(), "fuzz.vmdk");
    let mut tally = std::collections::BTreeMap::new();
    for round in 0..iterations {
        let mut b = bytes.clone();
        for _ in 0..1 + next() % 4 {
            let at = match next() % 3 {
                // Header fields except descriptorOffset/Size (28..44): a sparse file without a
                // descriptor is a legal split-disk extent, so zeroing them is not detectable.
                0 => [4 + next() % 24, 44 + next() % 36][(next() % 2) as usize],
                1 => 30 * 512 + next() % 4608, // GD and primary tables
                _ => 21 * 512 + next() % 4608, // RGD and redundant tables
            } as usize;
            b[at] = next() as u8;
        }
        std::fs::write(&path, &b).unwrap();
        let before = sha256(&path);
        let Ok(r) = check_disk(&path, false) else {
            assert_eq!(before, sha256(&path));
            continue; // e.g. a flipped compression flag: not a format this checker knows
        };
        assert_eq!(before, sha256(&path), "round {round}: check wrote");
        let r2 = check_disk(&path, true).unwrap();
        *tally.entry(format!("{:?}", r2.outcome())).or_insert(0) += 1;
        match r2.outcome() {
            Outcome::CantRepair | Outcome::Invalid => {
                assert_eq!(before, sha256(&path), "round {round}")
            }
            Outcome::Repaired | Outcome::Clean => {
                let again = check_disk(&path, false).unwrap();
                assert_eq!(
                    again.outcome(),
                    Outcome::Clean,
                    "round {round}: {:?}",
                    again.problems
                );
                let _ = read_disk(&path);
            }
            Outcome::NeedsRepair => panic!("round {round}: repair left {:?}", r.problems),
        }
    }
    eprintln!("outcomes over {iterations} rounds: {tally:?}");
}

#[test]
fn redundant_tables_behind_the_primary_after_an_interrupted_flush_are_a_note() {
    let dir = tempfile::tempdir().unwrap();
    let (path, model) = sparse_disk(dir.path());
    // A Flush stopped after the primary table and before its redundant copy.
    poke_u32(&path, gte(&path, true, 0, 1), 0);
    poke_u32(&path, gte(&path, true, 0, 2), 0);
    // A clean close writes both copies: without the unclean flag the lag is damage.
    let r = check(&path, false);
    assert!(r.has(ProblemKind::RedundantBehind), "{:?}", r.problems);
    assert_eq!(r.outcome(), Outcome::NeedsRepair);
    // With the flag it is what a kill leaves: a note, nothing written.
    poke(&path, 72, &[1]);
    let before = sha256(&path);
    let r = check(&path, false);
    assert!(r.has(ProblemKind::RedundantBehind), "{:?}", r.problems);
    assert_eq!(r.outcome(), Outcome::Clean);
    assert_eq!(sha256(&path), before);
    // An entry the redundant copy has and the primary lacks is not what a Flush leaves.
    poke_u32(&path, gte(&path, true, 1, 17), 128);
    let r = check(&path, false);
    assert!(r.has(ProblemKind::RedundantTable), "{:?}", r.problems);
    assert_eq!(r.outcome(), Outcome::NeedsRepair);
    // Repair makes the copies identical and clears the flag; the content is untouched.
    assert_eq!(check(&path, true).outcome(), Outcome::Repaired);
    assert!(check(&path, false).problems.is_empty());
    assert_eq!(
        u32_at(&path, gte(&path, true, 0, 1)),
        u32_at(&path, gte(&path, false, 0, 1))
    );
    assert_eq!(read_disk(&path), model);
    if have_qemu() {
        assert!(qemu_check(&path));
    }
}
