//! CheckRepair on streamOptimized disks (issue 20, part 3): the check finds streams cut short
//! and salvage rebuilds them from their complete grains. Streams come from our writer and from
//! `qemu-img convert -o subformat=streamOptimized`, cut at many offsets; the oracles are an
//! independent walk of the uncut stream (which grains are complete before the cut), `qemu-img
//! check`, and `qemu-img convert -O raw` of the salvaged file against the source content.
//! The real truncated ovftool stream of the shared corpus is used where the corpus is present.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{have_qemu, open_single, qemu_raw, read_all, sh, sha256, xorshift_rng};
use vixDiskLib::error::Error;
use vixDiskLib::vmdk::check::{CheckReport, Outcome, ProblemKind, SalvageCounts, check_disk};
use vixDiskLib::vmdk::create::{CreateSpec, DiskKind, base_ddb, new_descriptor};
use vixDiskLib::vmdk::geometry::Adapter;
use vixDiskLib::vmdk::stream_writer::write_stream_optimized;

const GRAIN: usize = 65536;
const GRAIN_SECTORS: u64 = 128;

/// Source content: every third grain empty, the others half random (so grains compress to
/// different sizes), half a repeated byte.
fn content(bytes: usize, seed: u64) -> Vec<u8> {
    let mut r = xorshift_rng(seed);
    let mut v = vec![0u8; bytes];
    for (g, grain) in v.chunks_mut(GRAIN).enumerate() {
        if g % 3 == 1 {
            continue;
        }
        let random = (r() % (grain.len() as u64)) as usize;
        for b in &mut grain[..random] {
            *b = r() as u8;
        }
        grain[random..].fill(g as u8 | 1);
    }
    v
}

/// Writes `raw` as a stream with our writer.
fn ours(path: &Path, raw: &[u8]) {
    let cap = (raw.len() / 512) as u64;
    let spec = CreateSpec {
        kind: DiskKind::StreamOptimized,
        capacity: cap,
        adapter: Adapter::LsiLogic,
        hw_version: 7,
    };
    let d = new_descriptor("monolithicSparse", Vec::new(), base_ddb(&spec));
    write_stream_optimized(
        path,
        cap,
        d,
        &|g, b| {
            let s = g as usize * GRAIN;
            b.copy_from_slice(&raw[s..s + b.len()]);
            Ok(true)
        },
        1,
        &mut |_| {},
    )
    .expect("write stream");
}

/// Writes `raw` as a stream with qemu-img.
fn qemu(dir: &Path, path: &Path, raw: &[u8]) {
    let src = dir.join("qemu-src.raw");
    std::fs::write(&src, raw).unwrap();
    let (code, out) = sh(&format!(
        "qemu-img convert -f raw -O vmdk -o subformat=streamOptimized '{}' '{}'",
        src.display(),
        path.display()
    ));
    assert_eq!(code, 0, "{out}");
}

/// One grain of an uncut stream, found by a walk written for this test.
#[derive(Debug, Clone, Copy)]
struct G {
    /// Byte offset of its marker.
    start: u64,
    /// Byte offset just after its compressed data.
    end: u64,
    lba: u64,
}

fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(b[o..o + 4].try_into().unwrap())
}
fn u64_at(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(b[o..o + 8].try_into().unwrap())
}

/// The grains of a complete stream, in file order.
fn walk(b: &[u8]) -> Vec<G> {
    let mut at = u64_at(b, 64) as usize * 512;
    let mut out = Vec::new();
    while at + 512 <= b.len() {
        let s = &b[at..at + 512];
        if s.iter().all(|&x| x == 0) {
            at += 512;
            continue;
        }
        let (val, size) = (u64_at(s, 0), u32_at(s, 8) as usize);
        if size == 0 {
            at += 512 * (1 + val as usize);
            continue;
        }
        out.push(G {
            start: at as u64,
            end: (at + 12 + size) as u64,
            lba: val,
        });
        at += (12 + size).div_ceil(512) * 512;
    }
    out
}

fn check(path: &Path, repair: bool) -> CheckReport {
    check_unlocked(path, repair).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `check_disk`, waiting while the disk is locked. Other tests of this binary spawn processes
/// (qemu-img, children): until such a child execs it holds copies of our open files, and with
/// them the lock of a file a check has just closed. On a loaded machine that outlasts the
/// checker's own short retry.
fn check_unlocked(path: &Path, repair: bool) -> vixDiskLib::error::Result<CheckReport> {
    for _ in 0..100 {
        match check_disk(path, repair) {
            Err(Error::Locked(_)) => std::thread::sleep(Duration::from_millis(50)),
            other => return other,
        }
    }
    check_disk(path, repair)
}

fn qemu_check_ok(path: &Path) {
    let (code, out) = sh(&format!("qemu-img check -f vmdk '{}'", path.display()));
    assert_eq!(code, 0, "qemu-img check {}: {out}", path.display());
}

/// What salvaging `whole` cut at `cut` bytes must give: the content (complete grains from
/// `raw`, zeros elsewhere) and the counts. `tables_survive`: the stream's tables sit before
/// its grains (qemu's layout), so every grain after the cut is known to be lost; otherwise
/// only a grain whose marker head survived the cut is.
fn expected(raw: &[u8], grains: &[G], cut: u64, tables_survive: bool) -> (Vec<u8>, SalvageCounts) {
    let cap = (raw.len() / 512) as u64;
    let sectors = |lba: u64| GRAIN_SECTORS.min(cap - lba);
    let mut want = vec![0u8; raw.len()];
    let mut c = SalvageCounts::default();
    for g in grains {
        let (s, e) = (
            g.lba as usize * 512,
            (g.lba + sectors(g.lba)) as usize * 512,
        );
        if g.end <= cut {
            want[s..e].copy_from_slice(&raw[s..e]);
            c.grains += 1;
            c.recovered_sectors += sectors(g.lba);
        } else if tables_survive || (g.start + 12 <= cut && g.start < cut) {
            c.lost_sectors += sectors(g.lba);
        }
    }
    (want, c)
}

/// Cuts `whole` at every offset in `cuts`, checks, salvages and verifies each.
fn sweep(dir: &Path, name: &str, whole: &[u8], raw: &[u8], cuts: &[u64], tables_survive: bool) {
    let grains = walk(whole);
    assert!(grains.len() > 10, "{name}: {} grains", grains.len());
    for &cut in cuts {
        let path = dir.join(format!("{name}-{cut}.vmdk"));
        std::fs::write(&path, &whole[..cut as usize]).unwrap();
        let (want, counts) = expected(raw, &grains, cut, tables_survive);
        let r = check(&path, false);
        let all_complete = counts.grains == grains.len() as u64;
        if tables_survive && all_complete {
            // qemu's tables precede the grains: a cut in the padding after them loses nothing.
            assert_eq!(
                r.outcome(),
                Outcome::Clean,
                "{name} cut {cut}: {:?}",
                r.problems
            );
            continue;
        }
        assert_eq!(
            r.outcome(),
            Outcome::NeedsRepair,
            "{name} cut {cut}: {:?}",
            r.problems
        );
        assert_eq!(
            r.salvage,
            Some(counts),
            "{name} cut {cut}: {:?}",
            r.problems
        );
        let before = sha256(&path);
        let fixed = check(&path, true);
        assert_eq!(
            fixed.outcome(),
            Outcome::Repaired,
            "{name} cut {cut}: {:?}",
            fixed.problems
        );
        assert_ne!(before, sha256(&path));
        assert_eq!(
            check(&path, false).outcome(),
            Outcome::Clean,
            "{name} cut {cut}"
        );
        qemu_check_ok(&path);
        assert!(
            qemu_raw(&path).expect("qemu-img") == want,
            "{name} cut {cut}: content differs"
        );
        std::fs::remove_file(&path).unwrap();
    }
}

/// Offsets to cut at: spread over the grain area, plus the edges of grains and of the tail.
fn cuts(whole: &[u8], seed: u64, tail_edges: bool) -> Vec<u64> {
    let grains = walk(whole);
    let len = whole.len() as u64;
    let first = grains[0].start;
    let mut r = xorshift_rng(seed);
    let mut v: Vec<u64> = (0..10).map(|_| first + r() % (len - first)).collect();
    let g = grains[grains.len() / 2];
    v.extend([
        g.start,
        g.start + 5,
        g.start + 12,
        g.end - 1,
        g.end,
        g.end + 1,
    ]);
    if tail_edges {
        v.extend([len - 1, len - 512, len - 1024, len - 1536]);
    }
    v.sort_unstable();
    v.dedup();
    v
}

#[test]
fn our_streams_cut_anywhere_are_salvaged_to_their_complete_grains() {
    if !have_qemu() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // 4 MiB and 20 KiB: the last grain is short.
    let raw = content(4 * 1024 * 1024 + 20 * 1024, 7);
    let src = dir.path().join("ours.vmdk");
    ours(&src, &raw);
    let whole = std::fs::read(&src).unwrap();
    let r = check(&src, false);
    assert_eq!(r.outcome(), Outcome::Clean, "{:?}", r.problems);
    sweep(
        dir.path(),
        "ours",
        &whole,
        &raw,
        &cuts(&whole, 1, true),
        false,
    );
}

#[test]
fn our_streams_with_tables_between_spans_are_salvaged_wherever_cut() {
    if !have_qemu() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // 66 MiB, one grain in 23 holding data: three 32 MiB spans, each followed by its grain
    // table (marker type 1) in our writer's layout, so cuts land between and inside tables too.
    let mut raw = content(66 * 1024 * 1024, 29);
    for (g, grain) in raw.chunks_mut(GRAIN).enumerate() {
        if g % 23 != 0 {
            grain.fill(0);
        }
    }
    let src = dir.path().join("spans.vmdk");
    ours(&src, &raw);
    let whole = std::fs::read(&src).unwrap();
    let grains = walk(&whole);
    // Around the first grain of the second span: its table is just before it.
    let second = grains.iter().find(|g| g.lba >= 32 * 2048).unwrap().start;
    let mut at = vec![second - 2048, second - 1500, second - 1, second + 700];
    let mut r = xorshift_rng(4);
    let first = grains[0].start;
    at.extend((0..2).map(|_| first + r() % (whole.len() as u64 - first)));
    at.sort_unstable();
    sweep(dir.path(), "spans", &whole, &raw, &at, false);
}

#[test]
fn qemu_streams_cut_anywhere_are_salvaged_to_their_complete_grains() {
    if !have_qemu() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let raw = content(3 * 1024 * 1024, 11);
    let src = dir.path().join("qemu.vmdk");
    qemu(dir.path(), &src, &raw);
    let whole = std::fs::read(&src).unwrap();
    let r = check(&src, false);
    assert_eq!(r.outcome(), Outcome::Clean, "{:?}", r.problems);
    sweep(
        dir.path(),
        "qemu",
        &whole,
        &raw,
        &cuts(&whole, 2, false),
        true,
    );
}

/// A truncated stream of ours with `edit` applied: it must be refused as invalid, unchanged.
fn refused(name: &str, edit: impl FnOnce(&mut Vec<u8>, &[G]), kind: ProblemKind) {
    let dir = tempfile::tempdir().unwrap();
    let raw = content(2 * 1024 * 1024, 5);
    let src = dir.path().join("src.vmdk");
    ours(&src, &raw);
    let whole = std::fs::read(&src).unwrap();
    let grains = walk(&whole);
    // Cut in the middle of the last grain: salvage is needed.
    let last = grains[grains.len() - 1];
    let mut b = whole[..(last.start + 100) as usize].to_vec();
    edit(&mut b, &grains);
    let path = dir.path().join(format!("{name}.vmdk"));
    std::fs::write(&path, &b).unwrap();
    let before = sha256(&path);
    let r = check(&path, false);
    assert_eq!(r.outcome(), Outcome::Invalid, "{name}: {:?}", r.problems);
    assert!(r.has(kind), "{name}: {:?}", r.problems);
    let r = check(&path, true);
    assert_eq!(r.outcome(), Outcome::Invalid, "{name}: {:?}", r.problems);
    assert_eq!(before, sha256(&path), "{name}: repair wrote");
    assert!(
        !dir.path()
            .join(format!(".{name}.vmdk.salvage-tmp"))
            .exists()
    );
}

#[test]
fn salvage_refuses_an_unknown_marker() {
    refused(
        "unknown-marker",
        |b, g| {
            // A metadata marker of type 7 between grains 2 and 3.
            let mut m = [0u8; 512];
            m[12] = 7;
            let at = g[3].start as usize;
            b.splice(at..at, m);
        },
        ProblemKind::StreamMarker,
    );
}

#[test]
fn salvage_refuses_two_grains_for_one_lba() {
    refused(
        "duplicate",
        |b, g| {
            let lba = g[1].lba.to_le_bytes();
            let at = g[4].start as usize;
            b[at..at + 8].copy_from_slice(&lba);
        },
        ProblemKind::StreamGrain,
    );
}

#[test]
fn salvage_refuses_a_grain_beyond_the_capacity() {
    refused(
        "beyond",
        |b, g| {
            let at = g[2].start as usize;
            b[at..at + 8].copy_from_slice(&(1u64 << 40).to_le_bytes());
        },
        ProblemKind::StreamMarker,
    );
}

#[test]
fn salvage_refuses_a_grain_that_does_not_inflate() {
    refused(
        "corrupt",
        |b, g| {
            let at = g[2].start as usize + 12;
            b[at + 2..at + 40].fill(0xff);
        },
        ProblemKind::StreamGrain,
    );
}

/// Where the shared corpus of real-world VMDKs is: `$WILD_VMDK_DIR`, else `../shared/wild-vmdk`
/// beside the checkout (as CI has it).
fn wild_dir() -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("WILD_VMDK_DIR").map(PathBuf::from),
        Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/wild-vmdk")),
    ];
    let found = candidates.into_iter().flatten().find(|d| d.is_dir());
    if found.is_none() {
        eprintln!(
            "skipping: the wild-vmdk corpus is not at ../shared/wild-vmdk (set WILD_VMDK_DIR)"
        );
    }
    found
}

#[test]
fn corpus_streams_check_clean_and_the_truncated_ovftool_stream_is_salvaged() {
    let Some(wild) = wild_dir() else { return };
    for clean in [
        "vmdk-rs/streamOptimized.vmdk",
        "vmdk-rs/streamOptimizedWithMarkers.vmdk",
        "go-vmdk-parser/vmdk-streamoptimized.img",
        "xo-vmdk-to-vhd/test.vmdk",
        "vmdk-forensic/compressed_stream_opt.vmdk",
        "cot/input-vmware.vmdk",
        "cot/input-vmdktool.vmdk",
        "cot/blank-vmdktool.vmdk",
        "cot/ubuntu.2.0-disk1.vmdk",
    ] {
        let r = check(&wild.join(clean), false);
        assert_eq!(r.outcome(), Outcome::Clean, "{clean}: {:?}", r.problems);
    }
    let original = wild.join("govmomi/ttylinux-pc_i486-16.1-disk1.vmdk");
    let whole = std::fs::read(&original).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ttylinux.vmdk");
    std::fs::write(&path, &whole).unwrap();
    let r = check(&path, false);
    assert_eq!(r.outcome(), Outcome::NeedsRepair, "{:?}", r.problems);
    assert!(r.has(ProblemKind::StreamTruncated), "{:?}", r.problems);
    // 35 complete grains of 128 sectors; the 36th (LBA 13696) is cut after its marker.
    let counts = SalvageCounts {
        grains: 35,
        recovered_sectors: 35 * 128,
        lost_sectors: 128,
    };
    assert_eq!(r.salvage, Some(counts));
    if !have_qemu() {
        return;
    }
    let r = check(&path, true);
    assert_eq!(r.outcome(), Outcome::Repaired, "{:?}", r.problems);
    assert_eq!(r.salvage, Some(counts));
    qemu_check_ok(&path);
    let got = qemu_raw(&path).expect("qemu-img");
    // Every complete grain of the original, inflated by this test, reads back as it was.
    let mut complete = 0;
    for g in walk_prefix(&whole) {
        let mut data = Vec::new();
        let mut z = flate2::read::ZlibDecoder::new(&whole[g.start as usize + 12..g.end as usize]);
        std::io::Read::read_to_end(&mut z, &mut data).unwrap();
        let s = g.lba as usize * 512;
        assert_eq!(&got[s..s + data.len()], &data[..], "LBA {}", g.lba);
        complete += 1;
    }
    assert_eq!(complete, 35);
}

/// `walk` for a stream that may be cut: only grains that end inside the file.
fn walk_prefix(b: &[u8]) -> Vec<G> {
    let mut padded = b.to_vec();
    padded.resize(b.len().next_multiple_of(512) + 512, 0);
    walk(&padded)
        .into_iter()
        .filter(|g| g.end <= b.len() as u64)
        .collect()
}

/// The child side of the kill test: salvages the file named in the environment.
#[test]
fn salvage_child() {
    if let Some(p) = std::env::var_os("STREAM_SALVAGE_CHILD") {
        let _ = check_disk(Path::new(&p), true);
    }
}

#[test]
fn salvage_killed_at_any_moment_leaves_the_original_or_the_salvaged_stream() {
    if !have_qemu() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let raw = content(12 * 1024 * 1024, 3);
    let src = dir.path().join("src.vmdk");
    ours(&src, &raw);
    let whole = std::fs::read(&src).unwrap();
    let cut = &whole[..whole.len() * 2 / 3];
    // The reference result, and how long a whole salvage takes in a child.
    let path = dir.path().join("disk.vmdk");
    std::fs::write(&path, cut).unwrap();
    let original = sha256(&path);
    let started = Instant::now();
    run_child(&path, None);
    let span = started.elapsed();
    let salvaged = sha256(&path);
    assert_ne!(original, salvaged);
    qemu_check_ok(&path);
    let mut r = xorshift_rng(9);
    let mut seen = (0, 0);
    for _ in 0..10 {
        std::fs::write(&path, cut).unwrap();
        let delay = Duration::from_micros(r() % (span.as_micros() as u64 + 1));
        run_child(&path, Some(delay));
        let now = sha256(&path);
        if now == original {
            seen.0 += 1;
            // The next repair finishes the job, whatever the kill left beside the file.
            assert_eq!(check(&path, true).outcome(), Outcome::Repaired);
            assert_eq!(sha256(&path), salvaged);
        } else {
            assert_eq!(now, salvaged, "a kill after {delay:?} left a third state");
            seen.1 += 1;
        }
        assert!(!dir.path().join(".disk.vmdk.salvage-tmp").exists());
    }
    eprintln!(
        "killed with the original left {} times, the salvaged stream {}",
        seen.0, seen.1
    );
}

/// Runs `salvage_child` on `path` in a new process, killing it after `kill_after` if given.
fn run_child(path: &Path, kill_after: Option<Duration>) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["salvage_child", "--exact", "--quiet", "--test-threads=1"])
        .env("STREAM_SALVAGE_CHILD", path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    match kill_after {
        Some(d) => {
            std::thread::sleep(d);
            let _ = child.kill();
            let _ = child.wait();
        }
        None => assert!(child.wait().unwrap().success()),
    }
}

#[test]
fn the_c_api_reports_needs_repair_invalid_disk_and_repairs() {
    use std::ffi::CString;
    use vixDiskLib::ffi::codes::*;
    use vixDiskLib::ffi::connect::VixDiskLib_Connect;
    use vixDiskLib::ffi::maintenance::VixDiskLib_CheckRepair;
    use vixDiskLib::ffi::types::VixDiskLibConnection;
    common::ffi_init();
    let mut conn: VixDiskLibConnection = std::ptr::null_mut();
    assert_eq!(VixDiskLib_Connect(std::ptr::null(), &mut conn), VIX_OK);
    let dir = tempfile::tempdir().unwrap();
    let raw = content(1024 * 1024, 13);
    let src = dir.path().join("src.vmdk");
    ours(&src, &raw);
    let whole = std::fs::read(&src).unwrap();
    let cut = dir.path().join("cut.vmdk");
    std::fs::write(&cut, &whole[..whole.len() - 4000]).unwrap();
    let bad = dir.path().join("bad.vmdk");
    let mut b = whole[..whole.len() - 4000].to_vec();
    let g = walk(&whole);
    b[g[1].start as usize..][..8].copy_from_slice(&g[0].lba.to_le_bytes());
    std::fs::write(&bad, &b).unwrap();
    let c = |p: &Path| CString::new(p.to_str().unwrap()).unwrap();
    assert_eq!(
        VixDiskLib_CheckRepair(conn, c(&cut).as_ptr(), 0),
        VIX_E_DISK_NEEDSREPAIR
    );
    assert_eq!(
        VixDiskLib_CheckRepair(conn, c(&bad).as_ptr(), 1),
        VIX_E_DISK_INVALIDDISK
    );
    assert_eq!(VixDiskLib_CheckRepair(conn, c(&cut).as_ptr(), 1), VIX_OK);
    assert_eq!(VixDiskLib_CheckRepair(conn, c(&cut).as_ptr(), 0), VIX_OK);
    assert_eq!(VixDiskLib_CheckRepair(conn, c(&src).as_ptr(), 0), VIX_OK);
}

/// Random bit flips (outside the header's flags and directory offset, which make it another
/// format) and cuts: the checker never panics, a check never writes, a refusal never writes,
/// and whatever repair accepts checks clean afterwards, reads in full, and passes qemu-img check.
#[test]
fn random_damage_to_a_stream_never_panics_and_never_half_repairs() {
    use std::collections::BTreeMap;
    use vixDiskLib::chain::{Disk, OpenOptions};
    let dir = tempfile::tempdir().unwrap();
    let raw = content(512 * 1024 + 4096, 17);
    let src = dir.path().join("src.vmdk");
    ours(&src, &raw);
    let whole = std::fs::read(&src).unwrap();
    let path = dir.path().join("d.vmdk");
    let qemu = have_qemu();
    // `STREAM_DAMAGE_SEED=n` explores other damage by hand.
    let seed = std::env::var("STREAM_DAMAGE_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(23);
    let mut r = xorshift_rng(seed);
    let mut tally: BTreeMap<String, u32> = BTreeMap::new();
    let mut qemu_checked = 0;
    for round in 0..160 {
        let mut b = whole.clone();
        if r().is_multiple_of(2) {
            let cut = 512 + (r() % (b.len() as u64 - 512)) as usize;
            b.truncate(cut);
        }
        for _ in 0..1 + r() % 4 {
            let at = if r().is_multiple_of(4) {
                r() % 512
            } else {
                r() % b.len() as u64
            } as usize;
            if (8..12).contains(&at) || (56..64).contains(&at) {
                continue;
            }
            b[at] ^= 1 << (r() % 8);
        }
        std::fs::write(&path, &b).unwrap();
        let before = sha256(&path);
        let Ok(first) = check_unlocked(&path, false) else {
            assert_eq!(before, sha256(&path), "round {round}");
            *tally.entry("error".into()).or_insert(0) += 1;
            continue;
        };
        assert_eq!(before, sha256(&path), "round {round}: check wrote");
        let rep = check(&path, true);
        *tally.entry(format!("{:?}", rep.outcome())).or_insert(0) += 1;
        match rep.outcome() {
            Outcome::Invalid | Outcome::CantRepair => {
                assert_eq!(before, sha256(&path), "round {round}: a refusal wrote")
            }
            Outcome::Repaired | Outcome::Clean => {
                let again = check(&path, false);
                assert!(
                    !again.is_damaged(),
                    "round {round}: {:?} after {:?}",
                    again.problems,
                    first.problems
                );
                let d = Disk::open(
                    &path,
                    OpenOptions {
                        read_only: true,
                        single_link: true,
                    },
                )
                .unwrap_or_else(|e| panic!("round {round}: open: {e}"));
                let mut buf = vec![0u8; raw.len()];
                d.read(0, &mut buf)
                    .unwrap_or_else(|e| panic!("round {round}: read: {e}"));
                if qemu && rep.outcome() == Outcome::Repaired && qemu_checked < 8 {
                    qemu_check_ok(&path);
                    qemu_checked += 1;
                }
            }
            Outcome::NeedsRepair => panic!("round {round}: repair left {:?}", rep.problems),
        }
    }
    eprintln!("outcomes: {tally:?}");
}

#[test]
fn salvage_through_a_symlink_repairs_the_file_and_keeps_the_link() {
    let dir = tempfile::tempdir().unwrap();
    let raw = content(1024 * 1024, 31);
    let src = dir.path().join("src.vmdk");
    ours(&src, &raw);
    let whole = std::fs::read(&src).unwrap();
    let real = dir.path().join("real.vmdk");
    std::fs::write(&real, &whole[..whole.len() / 2]).unwrap();
    let link = dir.path().join("link.vmdk");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    assert_eq!(check(&link, true).outcome(), Outcome::Repaired);
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(check(&real, false).outcome(), Outcome::Clean);
}

/// The child side of the interrupted-append test: Create(stream), 1 MiB of writes, Flush, 1 MiB
/// more, then the process dies without closing (abort: no destructor runs, like kill -9).
#[test]
fn append_child() {
    use vixDiskLib::chain::{Disk, OpenOptions};
    use vixDiskLib::vmdk::create::create;
    let Some(p) = std::env::var_os("STREAM_APPEND_CHILD") else {
        return;
    };
    let path = PathBuf::from(p);
    let spec = CreateSpec {
        kind: DiskKind::StreamOptimized,
        capacity: 8 * 2048,
        adapter: Adapter::LsiLogic,
        hw_version: 7,
    };
    create(&path, &spec, &mut |_| {}).unwrap();
    let d = Disk::open(&path, OpenOptions::default()).unwrap();
    let data = content(2 * 1024 * 1024, 37);
    d.write(0, &data[..1 << 20]).unwrap();
    d.flush().unwrap();
    d.write(2048, &data[1 << 20..]).unwrap();
    std::process::abort();
}

#[test]
fn grains_appended_after_the_last_flush_are_a_note_and_repair_keeps_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.vmdk");
    let status = Command::new(std::env::current_exe().unwrap())
        .args(["append_child", "--exact", "--quiet", "--test-threads=1"])
        .env("STREAM_APPEND_CHILD", &path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(!status.success(), "the child must die");
    let data = content(2 * 1024 * 1024, 37);
    let r = check(&path, false);
    assert_eq!(r.outcome(), Outcome::Clean, "{:?}", r.problems);
    assert!(r.has(ProblemKind::StreamUnflushed), "{:?}", r.problems);
    let before = read_disk(&path);
    assert!(before[..1 << 20] == data[..1 << 20], "flushed data");
    assert!(before[1 << 20..].iter().all(|&b| b == 0), "as of the Flush");
    let r = check(&path, true);
    assert_eq!(r.outcome(), Outcome::Repaired, "{:?}", r.problems);
    assert_eq!(check(&path, false).problems, vec![]);
    if have_qemu() {
        qemu_check_ok(&path);
    }
    let after = read_disk(&path);
    assert!(after[..1 << 20] == data[..1 << 20], "flushed data kept");
    // Unflushed grains that reached the file are kept, in write order: a prefix of the grains
    // written after the Flush reads as written, the rest as zeros.
    let grains: Vec<bool> = (16..32)
        .map(|g| {
            let s = g * GRAIN;
            if after[s..s + GRAIN] == data[s..s + GRAIN] {
                true
            } else {
                assert!(after[s..s + GRAIN].iter().all(|&b| b == 0), "grain {g}");
                false
            }
        })
        .collect();
    let kept = grains.iter().take_while(|&&k| k).count();
    assert!(kept > 0 && grains[kept..].iter().all(|&k| !k), "{grains:?}");
    // All-zero grains are not stored.
    let stored = (0..16 + kept)
        .filter(|g| data[g * GRAIN..(g + 1) * GRAIN].iter().any(|&b| b != 0))
        .count() as u64;
    assert_eq!(r.salvage.unwrap().recovered_sectors, stored * 128);
}

fn read_disk(path: &Path) -> Vec<u8> {
    read_all(&open_single(path, false))
}

#[test]
fn a_symlink_planted_at_the_salvage_temporary_is_never_written_through() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let victim = outside.path().join("victim");
    std::fs::write(&victim, b"somebody else's bytes").unwrap();
    let raw = content(1024 * 1024, 41);
    let src = dir.path().join("src.vmdk");
    ours(&src, &raw);
    let whole = std::fs::read(&src).unwrap();
    let disk = dir.path().join("d.vmdk");
    std::fs::write(&disk, &whole[..whole.len() / 2]).unwrap();
    std::os::unix::fs::symlink(&victim, dir.path().join(".d.vmdk.salvage-tmp")).unwrap();
    assert_eq!(check(&disk, true).outcome(), Outcome::Repaired);
    assert_eq!(std::fs::read(&victim).unwrap(), b"somebody else's bytes");
    assert_eq!(check(&disk, false).outcome(), Outcome::Clean);
}
