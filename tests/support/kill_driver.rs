//! Kill -9 sweep driver (issue 9): runs one disk operation in a child process, kills it with
//! SIGKILL at a random moment, then checks what is left: every image opens here, passes
//! `qemu-img check` and our CheckRepair, every write acknowledged by Flush reads back (here and
//! through qemu-io), and no temporary file survives the next call. On disks that track changes
//! ("tracked-*"), the change id taken before the writes stays answerable and its answer covers
//! every grain that differs now.
//!
//! Usage:
//!   kill_driver sweep <runs> [seed] [case-filter]   run the sweep, print a summary, exit 1 on failure
//!   kill_driver kill-after-flush [k]                 every write kind killed after Flush k + more writes
//!   kill_driver child <case> <dir>                   (internal) perform one case in <dir>
//!
//! `scripts/kill_sweep.sh` runs it by hand; `tests/crash_sweep.rs` runs it at a small count.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod oracles;

use oracles::{our_check, qemu_check, qemu_reads, stray_files, temp_files, verify_image};
use vixDiskLib::chain::tracking::set_change_tracking;
use vixDiskLib::chain::{Disk, OpenOptions};
use vixDiskLib::vmdk::create::{CreateSpec, DiskKind, create};
use vixDiskLib::vmdk::geometry::Adapter;
use vixDiskLib::vmdk::grow::grow;
use vixDiskLib::vmdk::link::Link;

/// Capacity of every test disk: 8 MiB.
const CAPACITY: u64 = 8 * 2048;
/// Writes (each followed by Flush) of a write case.
const WRITES: u64 = 20;
/// Sectors per write: one and a half grains, so grains are shared between writes.
const WRITE_SECTORS: u64 = 192;
/// Distance between write starts (sequential, for streams).
const STRIDE: u64 = 320;

const KINDS: [(&str, DiskKind); 7] = [
    ("sparse", DiskKind::MonolithicSparse),
    ("split", DiskKind::SplitSparse),
    ("flat", DiskKind::MonolithicFlat),
    ("splitflat", DiskKind::SplitFlat),
    ("vmfs", DiskKind::VmfsFlat),
    ("thin", DiskKind::VmfsThin),
    ("stream", DiskKind::StreamOptimized),
];

/// Every case of the sweep: "<operation>-<kind>".
fn cases() -> Vec<String> {
    let mut v = Vec::new();
    for (k, _) in KINDS {
        v.push(format!("write-{k}"));
    }
    for (k, _) in KINDS {
        v.push(format!("clone-{k}"));
    }
    for (k, _) in KINDS {
        v.push(format!("create-{k}"));
    }
    for k in ["sparse", "split"] {
        v.push(format!("child-{k}"));
        v.push(format!("shrink-{k}"));
        v.push(format!("defrag-{k}"));
    }
    v.push("grow-sparse".into());
    v.push("grow-splitflat".into());
    for k in ["sparse", "splitflat", "stream"] {
        v.push(format!("tracked-{k}"));
    }
    v
}

fn kind_of(name: &str) -> DiskKind {
    KINDS
        .iter()
        .find(|(k, _)| *k == name)
        .map(|(_, d)| *d)
        .unwrap_or_else(|| panic!("unknown kind {name}"))
}

/// The split-flat Grow case starts one sector short of a full 2047 MiB extent, so growing
/// adds an extent file (flat files are sparse: this costs no space).
const FULL_EXTENT: u64 = 2047 * 2048;

fn source_capacity(case: &str) -> u64 {
    if case == "grow-splitflat" {
        FULL_EXTENT - 1
    } else {
        CAPACITY
    }
}

fn spec(kind: DiskKind) -> CreateSpec {
    spec_sized(kind, CAPACITY)
}

fn spec_sized(kind: DiskKind, capacity: u64) -> CreateSpec {
    CreateSpec {
        kind,
        capacity,
        adapter: Adapter::LsiLogic,
        hw_version: 7,
    }
}

/// Byte value of write `k` (never zero, so a lost write cannot read as a hole).
fn pattern(k: u64) -> u8 {
    (k * 37 % 251 + 1) as u8
}

fn open(path: &Path, read_only: bool) -> Disk {
    Disk::open(
        path,
        OpenOptions {
            read_only,
            single_link: false,
        },
    )
    .unwrap_or_else(|e| panic!("open {}: {e}", path.display()))
}

/// Source of clone/child/shrink cases: a sparse disk with data, all-zero grains and holes.
/// Returns its content.
fn make_source(path: &Path, kind: DiskKind, capacity: u64) -> Vec<u8> {
    create(path, &spec_sized(kind, capacity), &mut |_| {}).expect("create source");
    let d = open(path, false);
    let mut model = vec![0u8; (CAPACITY * 512) as usize];
    for k in 0..WRITES {
        let at = k * STRIDE;
        let data = if k % 4 == 3 {
            vec![0u8; (WRITE_SECTORS * 512) as usize]
        } else {
            vec![pattern(k); (WRITE_SECTORS * 512) as usize]
        };
        d.write(at, &data).expect("write source");
        model[(at * 512) as usize..][..data.len()].copy_from_slice(&data);
    }
    d.close().expect("close source");
    model
}

// ---------------------------------------------------------------- the child side

fn child(case: &str, dir: &Path) {
    let hang_after: Option<u64> = std::env::var("KILL_DRIVER_HANG_AFTER")
        .ok()
        .and_then(|v| v.parse().ok());
    let (op, kind) = case.split_once('-').expect("case");
    let target = dir.join("t.vmdk");
    let source = dir.join("s.vmdk");
    match op {
        "write" | "tracked" => {
            let d = open(&target, false);
            for k in 0..WRITES {
                d.write(
                    k * STRIDE,
                    &vec![pattern(k); (WRITE_SECTORS * 512) as usize],
                )
                .expect("write");
                d.flush().expect("flush");
                println!("ACK {k}");
                if hang_after == Some(k) {
                    // Unflushed writes after the Flush, then wait for the kill.
                    for j in 1..=3 {
                        let at = (k + 1) * STRIDE + j * WRITE_SECTORS;
                        d.write(at, &vec![0x5a; (WRITE_SECTORS * 512) as usize])
                            .expect("write");
                    }
                    println!("HANG");
                    loop {
                        std::thread::sleep(Duration::from_secs(1));
                    }
                }
            }
            d.close().expect("close");
        }
        "clone" => {
            let d = open(&source, true);
            d.clone_to(&target, &spec(kind_of(kind)), false, 1, &mut |_| {})
                .expect("clone");
        }
        "create" => create(&target, &spec(kind_of(kind)), &mut |_| {}).expect("create"),
        "child" => {
            let d = open(&source, false);
            d.create_child(&target, kind_of(kind))
                .expect("create child");
        }
        "shrink" | "defrag" => {
            let d = open(&source, false);
            d.compact(op == "shrink").expect("compact");
            d.close().expect("close");
        }
        "grow" => grow(&source, source_capacity(case) + CAPACITY, true).expect("grow"),
        _ => panic!("unknown case {case}"),
    }
    println!("DONE");
}

// ---------------------------------------------------------------- the parent side

/// Prepares `dir` for `case`; returns the content the source must keep, if any.
fn prepare(case: &str, dir: &Path) -> Option<Vec<u8>> {
    let (op, kind) = case.split_once('-').expect("case");
    match op {
        "write" => {
            create(&dir.join("t.vmdk"), &spec(kind_of(kind)), &mut |_| {}).expect("create");
            None
        }
        "tracked" => {
            let target = dir.join("t.vmdk");
            create(&target, &spec(kind_of(kind)), &mut |_| {}).expect("create");
            set_change_tracking(&target, true).expect("tracking on");
            let d = open(&target, false);
            let id = d.change_id().expect("change id");
            d.close().expect("close");
            std::fs::write(dir.join("id"), id).expect("save the id");
            None
        }
        "clone" | "child" => Some(make_source(
            &dir.join("s.vmdk"),
            DiskKind::MonolithicSparse,
            CAPACITY,
        )),
        "shrink" | "defrag" | "grow" => Some(make_source(
            &dir.join("s.vmdk"),
            kind_of(kind),
            source_capacity(case),
        )),
        _ => None,
    }
}

/// Verifies the outcome of a killed (or finished) `case` in `dir`; `acked` = the highest write
/// acknowledged by Flush. Returns a label of the state found.
fn verify(
    case: &str,
    dir: &Path,
    acked: Option<u64>,
    model: Option<&[u8]>,
) -> Result<&'static str, String> {
    let (op, kind) = case.split_once('-').expect("case");
    let target = dir.join("t.vmdk");
    let source = dir.join("s.vmdk");
    let stream = kind == "stream";
    match op {
        "write" => {
            our_check(&target, stream)?;
            qemu_check(&target)?;
            let Some(acked) = acked else {
                return Ok("no write acknowledged");
            };
            let d = Disk::open(
                &target,
                OpenOptions {
                    read_only: true,
                    single_link: false,
                },
            )
            .map_err(|e| format!("open: {e}"))?;
            let mut runs = Vec::new();
            for k in 0..=acked {
                let mut buf = vec![0u8; (WRITE_SECTORS * 512) as usize];
                d.read(k * STRIDE, &mut buf)
                    .map_err(|e| format!("read: {e}"))?;
                if buf.iter().any(|&b| b != pattern(k)) {
                    return Err(format!("flushed write {k} of {acked} lost"));
                }
                runs.push((k * STRIDE, WRITE_SECTORS, pattern(k)));
            }
            drop(d);
            qemu_reads(&target, &runs)?;
            // A new session after the kill must work and keep everything flushed.
            if stream {
                let d = open(&target, false);
                let at = (acked + 1) * STRIDE + CAPACITY / 2;
                d.write(at, &[7u8; 512])
                    .map_err(|e| format!("write: {e}"))?;
                d.close().map_err(|e| format!("close: {e}"))?;
                qemu_reads(&target, &[(at, 1, 7), (0, WRITE_SECTORS, pattern(0))])?;
            }
            Ok("flushed writes intact")
        }
        "clone" | "create" | "child" => {
            let state = if std::fs::symlink_metadata(&target).is_ok() {
                let expected = if op == "create" { None } else { model };
                verify_image(&target, stream, expected)?;
                // The next Create of the name is refused, and tidies what a kill left.
                if create(&target, &spec(kind_of(kind)), &mut |_| {}).is_ok() {
                    return Err("Create over a complete target succeeded".into());
                }
                "complete"
            } else {
                // Absent: the next call of the same kind must clean up and succeed.
                if op == "child" {
                    let d = open(&source, false);
                    d.create_child(&target, kind_of(kind))
                        .map_err(|e| format!("create child again: {e}"))?;
                    drop(d);
                } else if op == "clone" {
                    let d = open(&source, true);
                    d.clone_to(&target, &spec(kind_of(kind)), false, 1, &mut |_| {})
                        .map_err(|e| format!("clone again: {e}"))?;
                } else {
                    create(&target, &spec(kind_of(kind)), &mut |_| {})
                        .map_err(|e| format!("create again: {e}"))?;
                }
                verify_image(&target, stream, if op == "create" { None } else { model })?;
                "absent"
            };
            let links: Vec<&Path> = if op == "create" {
                vec![&target]
            } else {
                vec![&source, &target]
            };
            let stray = stray_files(dir, &links);
            if !stray.is_empty() {
                return Err(format!("stray files: {stray:?}"));
            }
            Ok(state)
        }
        "tracked" => {
            let state = verify(&format!("write-{kind}"), dir, acked, model)?;
            let id = std::fs::read_to_string(dir.join("id")).map_err(|e| format!("id: {e}"))?;
            let d = Disk::open(
                &target,
                OpenOptions {
                    read_only: true,
                    single_link: false,
                },
            )
            .map_err(|e| format!("open: {e}"))?;
            let mut content = vec![0u8; (d.capacity() * 512) as usize];
            d.read(0, &mut content).map_err(|e| format!("read: {e}"))?;
            // The id was taken on the empty disk: every grain holding data changed since.
            let truth: Vec<u64> = content
                .chunks(64 << 10)
                .enumerate()
                .filter(|(_, g)| g.iter().any(|&b| b != 0))
                .map(|(i, _)| i as u64)
                .collect();
            let answer = d
                .changed_areas(&id, 0, d.capacity())
                .map_err(|e| format!("the id taken before the kill: {e}"))?;
            let covered = |g: u64| answer.iter().any(|&(s, n)| s <= g * 128 && g * 128 < s + n);
            if let Some(g) = truth.iter().find(|&&g| !covered(g)) {
                return Err(format!(
                    "changed grain {g} missing from the answer {answer:?}"
                ));
            }
            Ok(state)
        }
        "shrink" | "defrag" | "grow" => {
            verify_image(&source, false, model)?;
            let grown = Link::open(&source, false)
                .map(|l| l.capacity() == source_capacity(case) + CAPACITY)
                .unwrap_or(false);
            let left = temp_files(dir);
            if !left.is_empty() {
                return Err(format!("temporary files after an open: {left:?}"));
            }
            // The same call again must work (nothing half-made in its way) and leave nothing
            // but the disk's own files.
            if op == "grow" && !grown {
                grow(&source, source_capacity(case) + CAPACITY, true)
                    .map_err(|e| format!("grow again: {e}"))?;
                verify_image(&source, false, model)?;
            }
            let stray = stray_files(dir, &[&source]);
            if !stray.is_empty() {
                return Err(format!("stray files: {stray:?}"));
            }
            Ok(if op == "grow" && grown {
                "grown"
            } else {
                "intact"
            })
        }
        _ => Err(format!("unknown case {case}")),
    }
}

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// Runs `case` in a child, killing it after `delay` (None: let it finish). Returns the highest
/// acknowledged write and whether the child finished on its own.
/// When the parent kills the child.
#[derive(Clone, Copy)]
enum Kill {
    /// Never: the child runs to the end.
    Never,
    /// After this long.
    After(Duration),
    /// When the child says HANG (it flushed write `k`, then wrote more without a Flush).
    AtHang(u64),
}

/// Runs `case` in a child and kills it as `kill` says. Returns the highest acknowledged
/// write and whether the child finished on its own.
fn run_child(case: &str, dir: &Path, kill: Kill) -> (Option<u64>, bool) {
    let exe = std::env::current_exe().expect("own path");
    let mut cmd = Command::new(exe);
    cmd.arg("child")
        .arg(case)
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if let Kill::AtHang(k) = kill {
        cmd.env("KILL_DRIVER_HANG_AFTER", k.to_string());
    }
    let mut c = cmd.spawn().expect("spawn child");
    let out = c.stdout.take().expect("stdout");
    let mut acked = None;
    let mut done = false;
    let mut lines = BufReader::new(out).lines();
    match kill {
        Kill::Never => {}
        Kill::After(delay) => {
            std::thread::sleep(delay);
            // Child::kill sends SIGKILL on Unix; a child that already exited is fine.
            let _ = c.kill();
        }
        Kill::AtHang(_) => {
            for line in lines.by_ref().map_while(|l| l.ok()) {
                if let Some(k) = line.strip_prefix("ACK ") {
                    acked = k.parse().ok();
                } else if line == "HANG" {
                    break;
                }
            }
            let _ = c.kill();
        }
    }
    let _ = c.wait();
    for line in lines.map_while(|l| l.ok()) {
        if let Some(k) = line.strip_prefix("ACK ") {
            acked = k.parse().ok();
        } else if line == "DONE" {
            done = true;
        }
    }
    (acked, done)
}

/// Deterministic regression: every write kind is killed after Flush number `k` plus unflushed
/// writes (the state that used to destroy streams); everything flushed must survive.
fn kill_after_flush(k: u64) -> bool {
    let base = std::env::temp_dir().join(format!("vixdisklib-kill-flush-{}", std::process::id()));
    let mut ok = true;
    for (i, (kind, _)) in KINDS.iter().enumerate() {
        let case = format!("write-{kind}");
        let dir = fresh_dir(&base, i);
        prepare(&case, &dir);
        let (acked, done) = run_child(&case, &dir, Kill::AtHang(k));
        let result = if done || acked != Some(k) {
            Err(format!(
                "child did not stop after Flush {k} (acked {acked:?})"
            ))
        } else {
            verify(&case, &dir, acked, None)
        };
        match result {
            Ok(_) => println!("{case}: killed after Flush {k} with unflushed writes: ok"),
            Err(e) => {
                ok = false;
                eprintln!("FAIL {case}: {e}; kept {}", dir.display());
            }
        }
    }
    if ok {
        let _ = std::fs::remove_dir_all(&base);
    }
    ok
}

fn fresh_dir(base: &Path, n: usize) -> PathBuf {
    let d = base.join(format!("run{n}"));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("mkdir");
    d
}

fn sweep(runs: usize, seed: u64, filter: &str) -> bool {
    let base = std::env::temp_dir().join(format!("vixdisklib-kill-sweep-{}", std::process::id()));
    let cases: Vec<String> = cases().into_iter().filter(|c| c.contains(filter)).collect();
    let mut rng = Rng(seed | 1);
    // Calibration: each case once without a kill, to learn how long it runs.
    let mut lengths = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let dir = fresh_dir(&base, i);
        let model = prepare(case, &dir);
        let t = Instant::now();
        let (acked, done) = run_child(case, &dir, Kill::Never);
        let took = t.elapsed();
        if !done {
            eprintln!("{case}: did not finish without a kill");
            return false;
        }
        if let Err(e) = verify(case, &dir, acked, model.as_deref()) {
            eprintln!("{case}: unkilled run fails verification: {e}");
            return false;
        }
        lengths.push(took);
        let _ = std::fs::remove_dir_all(&dir);
    }
    let mut failures = 0;
    let mut states: std::collections::BTreeMap<String, usize> = Default::default();
    for n in 0..runs {
        let i = n % cases.len();
        let case = &cases[i];
        let dir = fresh_dir(&base, n);
        let model = prepare(case, &dir);
        // Uniform over the case's unkilled run time (child start included).
        let span = lengths[i].as_micros() as u64 + 1;
        let delay = Duration::from_micros(rng.next() % span);
        let (acked, done) = run_child(case, &dir, Kill::After(delay));
        match verify(case, &dir, acked, model.as_deref()) {
            Ok(state) => {
                let key = format!("{case}: {}", if done { "finished" } else { state });
                *states.entry(key).or_default() += 1;
                let _ = std::fs::remove_dir_all(&dir);
            }
            Err(e) => {
                failures += 1;
                eprintln!(
                    "FAIL run {n} {case} (killed after {delay:?}, acked {acked:?}): {e}; kept {}",
                    dir.display()
                );
            }
        }
    }
    println!(
        "kill sweep: {runs} runs over {} cases, seed {seed}",
        cases.len()
    );
    for (k, v) in &states {
        println!("  {k:<40} {v}");
    }
    println!("  failures: {failures}");
    if failures == 0 {
        let _ = std::fs::remove_dir_all(&base);
    }
    failures == 0
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("child") if args.len() == 4 => child(&args[2], Path::new(&args[3])),
        Some("kill-after-flush") => {
            let k = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(4);
            if !kill_after_flush(k) {
                std::process::exit(1);
            }
        }
        Some("sweep") => {
            let runs = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(100);
            let seed = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(1);
            let filter = args.get(4).map_or("", String::as_str);
            if !sweep(runs, seed, filter) {
                std::process::exit(1);
            }
        }
        _ => {
            eprintln!("usage: kill_driver sweep <runs> [seed] [case-filter] | child <case> <dir>");
            std::process::exit(2);
        }
    }
}
