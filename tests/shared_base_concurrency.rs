//! A shared, read-only base image used by many processes at once (the "Sharing Virtual Disk
//! Base Images" seed): eight real processes each write and read their own redo log over one
//! base with mode 0444, checking every read against a model they can recompute from a seed;
//! commits into the shared base are refused while it is in use and whenever it is protected;
//! nonpersistent users share the base privately and leave no scratch file behind after
//! kill -9; CreateChild works while other processes read the base. Checked with qemu-img.
//!
//! Workers are this test binary run again (`--ignored --exact <worker>`) with the job in
//! environment variables.

mod common;

use std::fs::File;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use vixDiskLib::chain::Disk;
use vixDiskLib::chain::commit::commit;
use vixDiskLib::error::Error;
use vixDiskLib::vmdk::create::DiskKind;

/// Virtual size of every disk here: 32 MiB.
const SECTORS: u64 = 32 * 2048;
/// The base holds data in three of every four 64 KiB grains.
const GRAIN: u64 = 128;
/// Tag of the base's data in the sector fill.
const BASE_TAG: u64 = 0xba5e_0000_0000;
/// Longest read or write of a worker, in sectors.
const MAX_IO: u64 = 256;
/// How long a worker waits for its peers or its parent before giving up on its own.
const WORKER_PATIENCE: Duration = Duration::from_secs(90);

// ---------------------------------------------------------------------------
// Deterministic content: what each sector holds, recomputable by the checker
// ---------------------------------------------------------------------------

fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Fills one 512-byte sector with words derived from `tag` and the sector number, so a
/// sector written by another op, process or position never matches.
fn fill_sector(out: &mut [u8], tag: u64, sector: u64) {
    let key = mix(tag ^ sector.rotate_left(40));
    for (i, w) in out.chunks_exact_mut(8).enumerate() {
        w.copy_from_slice(&mix(key ^ i as u64).to_le_bytes());
    }
}

fn base_has(sector: u64) -> bool {
    (sector / GRAIN) % 4 != 3
}

/// Content of `sector` in the base.
fn base_sector(out: &mut [u8], sector: u64) {
    if base_has(sector) {
        fill_sector(out, BASE_TAG, sector);
    } else {
        out.fill(0);
    }
}

/// Tag of the data op number `op` of worker `seed` writes.
fn op_tag(seed: u64, op: u32) -> u64 {
    (seed << 32) | u64::from(op)
}

/// One step of a worker, fully determined by (seed, op number).
#[derive(Debug, Clone, Copy)]
enum Step {
    Write { sector: u64, count: u64 },
    Read { sector: u64, count: u64 },
    Flush,
    Reopen,
}

fn step(seed: u64, op: u32) -> Step {
    let mut r = mix(seed.wrapping_mul(0x1000_0000_01b3) ^ u64::from(op));
    let mut next = || {
        r = mix(r);
        r
    };
    let kind = next() % 64;
    if kind == 63 {
        return Step::Reopen;
    }
    if kind >= 60 {
        return Step::Flush;
    }
    let (mut sector, mut count) = (next() % SECTORS, 1 + next() % MAX_IO);
    if next() % 2 == 0 {
        // Whole grains half the time, partial grains the other half.
        sector -= sector % GRAIN;
        count = GRAIN * (1 + count % 2);
    }
    count = count.min(SECTORS - sector);
    if kind < 30 {
        Step::Write { sector, count }
    } else {
        Step::Read { sector, count }
    }
}

/// Which op last wrote each sector (0: none, the base shows through; else op + 1).
struct Model {
    seed: u64,
    last: Vec<u32>,
}

impl Model {
    fn new(seed: u64) -> Model {
        Model {
            seed,
            last: vec![0; SECTORS as usize],
        }
    }

    fn apply(&mut self, op: u32) {
        if let Step::Write { sector, count } = step(self.seed, op) {
            self.last[sector as usize..(sector + count) as usize].fill(op + 1);
        }
    }

    /// The model after the first `ops` ops.
    fn replay(seed: u64, ops: u32) -> Model {
        let mut m = Model::new(seed);
        for op in 0..ops {
            m.apply(op);
        }
        m
    }

    fn expected(&self, sector: u64, count: u64) -> Vec<u8> {
        let mut out = vec![0u8; count as usize * 512];
        for (i, chunk) in out.chunks_exact_mut(512).enumerate() {
            let s = sector + i as u64;
            match self.last[s as usize] {
                0 => base_sector(chunk, s),
                w => fill_sector(chunk, op_tag(self.seed, w - 1), s),
            }
        }
        out
    }
}

fn write_data(seed: u64, op: u32, sector: u64, count: u64) -> Vec<u8> {
    let mut out = vec![0u8; count as usize * 512];
    for (i, chunk) in out.chunks_exact_mut(512).enumerate() {
        fill_sector(chunk, op_tag(seed, op), sector + i as u64);
    }
    out
}

/// Writes the base's content (three grains of every four) through the engine.
fn build_base(path: &Path) {
    create_sparse(path, SECTORS / 2048);
    let d = open_rw(path);
    let mut buf = vec![0u8; GRAIN as usize * 512];
    for g in (0..SECTORS / GRAIN).filter(|g| base_has(g * GRAIN)) {
        for (i, chunk) in buf.chunks_exact_mut(512).enumerate() {
            base_sector(chunk, g * GRAIN + i as u64);
        }
        d.write(g * GRAIN, &buf).expect("write base");
    }
    d.close().expect("close base");
}

fn base_content() -> Vec<u8> {
    Model::new(0).expected(0, SECTORS)
}

fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

fn create_child_of(base: &Path, child: &Path) {
    std::fs::create_dir_all(child.parent().unwrap()).unwrap();
    open_ro(base)
        .create_child(child, DiskKind::MonolithicSparse)
        .expect("create child");
}

// ---------------------------------------------------------------------------
// Worker processes
// ---------------------------------------------------------------------------

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

fn env_path(name: &str) -> PathBuf {
    PathBuf::from(env(name).unwrap_or_else(|| panic!("{name} not set")))
}

/// Spawns this binary running `worker` with `vars`, its output kept in `log`.
fn spawn_worker(worker: &str, vars: &[(&str, String)], log: &Path) -> Child {
    let out = File::create(log).expect("worker log");
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--ignored",
        "--exact",
        worker,
        "--test-threads=1",
        "--nocapture",
    ])
    .stdin(Stdio::null())
    .stdout(Stdio::from(out.try_clone().unwrap()))
    .stderr(Stdio::from(out));
    for (k, v) in vars {
        cmd.env(k, v);
    }
    cmd.spawn().expect("spawn worker")
}

/// Waits until every path in `paths` exists, failing after `limit`.
fn wait_for_files(paths: &[PathBuf], limit: Duration, what: &str) {
    let t = Instant::now();
    while !paths.iter().all(|p| p.exists()) {
        assert!(t.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Kills (SIGKILL) and reaps the processes.
fn kill_all(procs: &mut [Child]) {
    for c in procs.iter_mut() {
        let _ = c.kill();
    }
    for c in procs.iter_mut() {
        let _ = c.wait();
    }
}

/// Kills the workers if the test fails half-way, so none outlives it.
struct Reaper(Vec<Child>);

impl Drop for Reaper {
    fn drop(&mut self) {
        kill_all(&mut self.0);
    }
}

/// Checked read of `count` sectors against the model.
fn verify(d: &Disk, model: &Model, sector: u64, count: u64, when: &str) {
    let mut buf = vec![0u8; count as usize * 512];
    d.read(sector, &mut buf).expect("read");
    if buf != model.expected(sector, count) {
        let exp = model.expected(sector, count);
        let bad = (0..count as usize)
            .find(|&i| buf[i * 512..(i + 1) * 512] != exp[i * 512..(i + 1) * 512])
            .unwrap();
        panic!(
            "worker {}: {when}: sector {} differs from the model",
            model.seed,
            sector + bad as u64
        );
    }
}

/// Random reads and writes on its own redo log (env VDL_SHARED_REDO) for VDL_SHARED_SECS
/// seconds, every read checked against the model; the number of ops done goes to
/// VDL_SHARED_REPORT after the final close.
#[test]
#[ignore = "worker process of random_io_on_eight_redo_logs_over_one_protected_base"]
fn redo_worker() {
    let Some(redo) = env("VDL_SHARED_REDO") else {
        return;
    };
    let redo = PathBuf::from(redo);
    let seed: u64 = env("VDL_SHARED_SEED").unwrap().parse().unwrap();
    let secs: f64 = env("VDL_SHARED_SECS").unwrap().parse().unwrap();
    let mut model = Model::new(seed);
    let mut d = open_rw(&redo);
    assert_eq!(d.num_links(), 2, "the redo log opens over the base");
    verify(&d, &model, 0, MAX_IO, "first read");
    File::create(env_path("VDL_SHARED_READY")).unwrap();
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let mut op = 0u32;
    while Instant::now() < deadline {
        match step(seed, op) {
            Step::Write { sector, count } => {
                d.write(sector, &write_data(seed, op, sector, count))
                    .expect("write");
            }
            Step::Read { sector, count } => verify(&d, &model, sector, count, "read"),
            Step::Flush => d.flush().expect("flush"),
            Step::Reopen => {
                d.close().expect("close");
                drop(d);
                d = open_rw(&redo);
            }
        }
        model.apply(op);
        op += 1;
    }
    d.close().expect("final close");
    drop(d);
    // What is on disk now, through a fresh open.
    let d = open_ro(&redo);
    verify(&d, &model, 0, SECTORS, "final read");
    drop(d);
    std::fs::write(env_path("VDL_SHARED_REPORT"), op.to_string()).unwrap();
}

/// Holds the base (VDL_HOLD_BASE) open: read-only, or nonpersistent when VDL_HOLD_SCRATCH
/// names a scratch directory. A nonpersistent holder writes its own data over the base,
/// waits until all VDL_HOLD_PEERS holders have written theirs, checks it reads back only its
/// own, then waits to be killed.
#[test]
#[ignore = "worker process of the nonpersistent and CreateChild tests"]
fn base_holder() {
    let Some(base) = env("VDL_HOLD_BASE") else {
        return;
    };
    let base = PathBuf::from(base);
    let id: u64 = env("VDL_HOLD_ID").unwrap().parse().unwrap();
    let sync_dir = env_path("VDL_HOLD_SYNC");
    let d = match env("VDL_HOLD_SCRATCH") {
        Some(scratch) => {
            Disk::open_nonpersistent(&base, false, Path::new(&scratch)).expect("nonpersistent")
        }
        None => open_ro(&base),
    };
    let mut model = Model::new(0);
    verify(&d, &model, 0, SECTORS, "base");
    if d.is_nonpersistent() {
        // Every holder writes the same ranges with its own data.
        model.seed = id;
        for op in 0..64u32 {
            let sector = u64::from(op) * 1000 + id % 7;
            let count = 64 + u64::from(op % 3) * 64;
            d.write(sector, &write_data(id, op, sector, count))
                .expect("private write");
            model.last[sector as usize..(sector + count) as usize].fill(op + 1);
        }
        d.flush().expect("flush");
        File::create(sync_dir.join(format!("written-{id}"))).unwrap();
        let peers: u64 = env("VDL_HOLD_PEERS").unwrap().parse().unwrap();
        let all: Vec<PathBuf> = (0..peers)
            .map(|p| sync_dir.join(format!("written-{p}")))
            .collect();
        wait_for_files(&all, WORKER_PATIENCE, "the other holders' writes");
        verify(&d, &model, 0, SECTORS, "own writes after the others wrote");
    }
    File::create(sync_dir.join(format!("ready-{id}"))).unwrap();
    // Killed by the test; give up on our own if it never comes.
    std::thread::sleep(WORKER_PATIENCE);
}

// ---------------------------------------------------------------------------
// The tests
// ---------------------------------------------------------------------------

fn duration_secs() -> f64 {
    env("VDL_SHARED_SECS")
        .and_then(|s| s.parse().ok())
        .unwrap_or(20.0)
}

#[test]
fn random_io_on_eight_redo_logs_over_one_protected_base() {
    const WORKERS: u64 = 8;
    let secs = duration_secs();
    let dir = tempfile::tempdir().unwrap();
    let base = p(dir.path(), "mydisk.vmdk");
    build_base(&base);
    set_mode(&base, 0o444);
    let base_sum = sha256(&base);
    // One redo directory per "machine", Workstation's names with a random-looking suffix.
    let redo_of = |i: u64| {
        p(dir.path(), &format!("vm{i}"))
            .join(format!("mydisk.vmdk.REDO_{:06x}", 0xa01000 + i * 0x1111))
    };
    for i in 0..=WORKERS {
        create_child_of(&base, &redo_of(i));
    }
    // Machine 8 never runs: its redo log is the candidate for a commit into the base.
    let idle = redo_of(WORKERS);
    {
        let d = open_rw(&idle);
        d.write(0, &write_data(99, 0, 0, GRAIN)).unwrap();
        d.close().unwrap();
    }
    let idle_sum = sha256(&idle);

    let work = |i: u64, what: &str| p(dir.path(), &format!("vm{i}/{what}"));
    let mut procs = Reaper(
        (0..WORKERS)
            .map(|i| {
                spawn_worker(
                    "redo_worker",
                    &[
                        ("VDL_SHARED_REDO", redo_of(i).display().to_string()),
                        ("VDL_SHARED_SEED", (i + 1).to_string()),
                        ("VDL_SHARED_SECS", secs.to_string()),
                        ("VDL_SHARED_READY", work(i, "ready").display().to_string()),
                        ("VDL_SHARED_REPORT", work(i, "ops").display().to_string()),
                    ],
                    &work(i, "log"),
                )
            })
            .collect(),
    );
    let ready: Vec<PathBuf> = (0..WORKERS).map(|i| work(i, "ready")).collect();
    wait_for_files(&ready, Duration::from_secs(30), "the workers to open");

    // While all eight have the base open: a commit into it is refused, protected or not.
    match commit(&idle, &mut |_| {}) {
        Err(Error::ReadOnly(_)) => {}
        other => panic!("commit into the protected, shared base: {other:?}"),
    }
    set_mode(&base, 0o644);
    let refused = commit(&idle, &mut |_| {});
    set_mode(&base, 0o444);
    match refused {
        Err(Error::Locked(_)) => {}
        other => panic!("commit into a base others have open: {other:?}"),
    }
    // A new machine joins while the others run.
    let late = redo_of(WORKERS + 1);
    create_child_of(&base, &late);
    {
        let d = open_rw(&late);
        assert_eq!(d.num_links(), 2);
        d.write(GRAIN * 3, &write_data(77, 0, GRAIN * 3, GRAIN))
            .unwrap();
        d.close().unwrap();
    }

    for (i, c) in procs.0.iter_mut().enumerate() {
        let status = c.wait().unwrap();
        let log = std::fs::read_to_string(work(i as u64, "log")).unwrap_or_default();
        assert!(status.success(), "worker {i} failed:\n{log}");
    }
    procs.0.clear();

    // Nobody has it open now; the mode bits alone still protect it.
    match commit(&idle, &mut |_| {}) {
        Err(Error::ReadOnly(_)) => {}
        other => panic!("commit into the protected base: {other:?}"),
    }
    assert_eq!(
        sha256(&idle),
        idle_sum,
        "the refused commit changed the redo log"
    );
    assert_eq!(sha256(&base), base_sum, "the shared base changed");
    assert_eq!(read_all(&open_ro(&base)), base_content());

    let qemu = have_qemu();
    let mut total_ops = 0;
    for i in 0..WORKERS {
        let ops: u32 = std::fs::read_to_string(work(i, "ops"))
            .unwrap()
            .parse()
            .unwrap();
        total_ops += ops;
        let expected = Model::replay(i + 1, ops).expected(0, SECTORS);
        let redo = redo_of(i);
        assert!(
            read_all(&open_ro(&redo)) == expected,
            "redo log {i} differs from its model"
        );
        if qemu {
            let raw = work(i, "expected.raw");
            save_raw(&expected, &raw);
            assert!(
                qemu_same(&raw, &redo),
                "qemu reads redo log {i} differently"
            );
            assert!(qemu_check(&redo), "qemu-img check: redo log {i}");
            std::fs::remove_file(&raw).unwrap();
        }
    }
    if qemu {
        assert!(qemu_check(&base), "qemu-img check: base");
        assert!(qemu_check(&idle) && qemu_check(&late));
    }
    eprintln!("{WORKERS} workers, {secs} s: {total_ops} ops in all");
    assert!(total_ops > WORKERS as u32 * 50, "the workers barely ran");
}

/// Spawns `n` holders of `base` (nonpersistent in `scratch`, else read-only) and waits until
/// each is ready.
fn spawn_holders(n: u64, base: &Path, scratch: Option<&Path>, sync_dir: &Path) -> Reaper {
    std::fs::create_dir_all(sync_dir).unwrap();
    let procs = (0..n)
        .map(|id| {
            let mut vars = vec![
                ("VDL_HOLD_BASE", base.display().to_string()),
                ("VDL_HOLD_ID", id.to_string()),
                ("VDL_HOLD_SYNC", sync_dir.display().to_string()),
                ("VDL_HOLD_PEERS", n.to_string()),
            ];
            if let Some(s) = scratch {
                vars.push(("VDL_HOLD_SCRATCH", s.display().to_string()));
            }
            spawn_worker("base_holder", &vars, &sync_dir.join(format!("log-{id}")))
        })
        .collect();
    let mut holders = Reaper(procs);
    let ready: Vec<PathBuf> = (0..n)
        .map(|id| sync_dir.join(format!("ready-{id}")))
        .collect();
    let t = Instant::now();
    while !ready.iter().all(|p| p.exists()) {
        for (id, c) in holders.0.iter_mut().enumerate() {
            if let Ok(Some(status)) = c.try_wait() {
                let log = std::fs::read_to_string(sync_dir.join(format!("log-{id}")));
                panic!(
                    "holder {id} exited ({status}):\n{}",
                    log.unwrap_or_default()
                );
            }
        }
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "holders never got ready"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    holders
}

/// Files in `dir`, by name.
fn names_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Open files of process `pid` that were in `dir` and are deleted now.
fn deleted_files_open_in(pid: u32, dir: &Path) -> usize {
    let dir = std::fs::canonicalize(dir).unwrap();
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|fds| {
            fds.flatten()
                .filter_map(|fd| std::fs::read_link(fd.path()).ok())
                .filter(|t| t.starts_with(&dir) && t.to_string_lossy().ends_with(" (deleted)"))
                .count()
        })
        .unwrap_or(0)
}

#[test]
fn nonpersistent_users_share_the_base_privately_and_leave_no_scratch_after_kill_9() {
    const HOLDERS: u64 = 4;
    let dir = tempfile::tempdir().unwrap();
    let base = p(dir.path(), "mydisk.vmdk");
    build_base(&base);
    set_mode(&base, 0o444);
    let base_sum = sha256(&base);
    let scratch = p(dir.path(), "scratch");
    std::fs::create_dir(&scratch).unwrap();
    // What a process killed between creating its scratch log and unlinking it leaves behind
    // (no process has this id: it is above the kernel's pid limit).
    let stale = scratch.join("vixdisklib-nonpersistent-4194305-00000000deadbeef.vmdk");
    std::fs::write(&stale, b"stale").unwrap();

    let mut holders = spawn_holders(HOLDERS, &base, Some(&scratch), &p(dir.path(), "sync"));
    // Each holds a private, already unlinked redo log; the stale one was swept.
    for c in &holders.0 {
        assert!(
            deleted_files_open_in(c.id(), &scratch) >= 1,
            "holder {} has no scratch redo log open",
            c.id()
        );
    }
    assert_eq!(names_in(&scratch), Vec::<String>::new());
    // The base is shared, not locked: readers join; a commit into it is refused.
    assert_eq!(read_all(&open_ro(&base)), base_content());
    let child = p(dir.path(), "vm1/mydisk.vmdk.REDO_a01000");
    create_child_of(&base, &child);
    open_rw(&child).write(0, &[1u8; 512]).unwrap();
    set_mode(&base, 0o644);
    let refused = commit(&child, &mut |_| {});
    set_mode(&base, 0o444);
    assert!(matches!(refused, Err(Error::Locked(_))), "{refused:?}");

    kill_all(&mut holders.0);
    holders.0.clear();
    assert_eq!(
        names_in(&scratch),
        Vec::<String>::new(),
        "scratch files left"
    );
    assert_eq!(
        sha256(&base),
        base_sum,
        "a nonpersistent user changed the base"
    );
    if have_qemu() {
        assert!(qemu_check(&base));
    }
}

#[test]
fn create_child_over_a_base_other_processes_read() {
    let dir = tempfile::tempdir().unwrap();
    let base = p(dir.path(), "mydisk.vmdk");
    build_base(&base);
    set_mode(&base, 0o444);
    let base_sum = sha256(&base);
    let holders = spawn_holders(3, &base, None, &p(dir.path(), "sync"));

    let redo = p(dir.path(), "vm2/mydisk.vmdk.REDO_a01000");
    create_child_of(&base, &redo);
    let mut model = Model::new(5);
    {
        let d = open_rw(&redo);
        for op in 0..40u32 {
            if let Step::Write { sector, count } = step(5, op) {
                d.write(sector, &write_data(5, op, sector, count)).unwrap();
            }
            model.apply(op);
        }
        d.close().unwrap();
    }
    let expected = model.expected(0, SECTORS);
    assert!(read_all(&open_ro(&redo)) == expected, "the new redo log");
    drop(holders);
    assert_eq!(sha256(&base), base_sum);
    if have_qemu() {
        let raw = p(dir.path(), "expected.raw");
        save_raw(&expected, &raw);
        assert!(qemu_same(&raw, &redo));
        assert!(qemu_check(&redo) && qemu_check(&base));
    }
}
