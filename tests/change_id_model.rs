//! The change-id rule as a property (issue 15): random sequences of writes (one at a time, and
//! several at once from threads, as asynchronous writes arrive), ids from writable and
//! read-only handles, CreateChild with the writer moving to the child, siblings of one base,
//! Commit of a middle link, Attach, reopens, kill -9 of a writing process at random moments
//! and foreign writes by `qemu-io` between sessions. The oracle is `qemu-img convert -O raw`,
//! taken when each id is issued. Every id, asked on every disk of the tree, must be refused or
//! answered with a superset of the sectors that differ now; an id asked on the link that
//! issued it, with no foreign write since, must be answered. Bases are monolithicSparse,
//! twoGbMaxExtentSparse (writes across the 2 GB boundary), monolithicFlat and streamOptimized.
//!
//! The tightness (sectors reported ÷ sectors that differ) is printed; run with
//! `--nocapture` to see it.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};

use common::*;
use proptest::prelude::*;
use vixDiskLib::chain::commit::commit;
use vixDiskLib::chain::tracking::set_change_tracking;
use vixDiskLib::chain::{Disk, OpenOptions};
use vixDiskLib::error::Error;
use vixDiskLib::vmdk::create::{CreateSpec, DiskKind, create};
use vixDiskLib::vmdk::geometry::Adapter;

/// Sectors of the window every write lands in (4 MiB).
const WINDOW: u64 = 8192;

#[derive(Debug, Clone)]
enum Op {
    Write { at: u64, sectors: u64, byte: u8 },
    Concurrent { at: u64, byte: u8 },
    IdWritable,
    IdReadOnly,
    Snapshot { read_only_id: bool },
    Sibling,
    CommitMiddle,
    Attach { at: u64 },
    Reopen,
    Kill { delay_ms: u64 },
    Foreign { at: u64 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..WINDOW, 1u64..300, 1u8..255).prop_map(|(at, sectors, byte)| Op::Write { at, sectors, byte }),
        2 => (0..WINDOW, 1u8..255).prop_map(|(at, byte)| Op::Concurrent { at, byte }),
        3 => Just(Op::IdWritable),
        2 => Just(Op::IdReadOnly),
        2 => any::<bool>().prop_map(|read_only_id| Op::Snapshot { read_only_id }),
        1 => Just(Op::Sibling),
        1 => Just(Op::CommitMiddle),
        1 => (0..WINDOW).prop_map(|at| Op::Attach { at }),
        1 => Just(Op::Reopen),
        1 => (0u64..25).prop_map(|delay_ms| Op::Kill { delay_ms }),
        1 => (0..WINDOW).prop_map(|at| Op::Foreign { at }),
    ]
}

/// One issued id: the link that issued it, its content's window (the oracle), and whether it
/// must still be answered on that link (no foreign write since).
struct Issued {
    id: String,
    home: PathBuf,
    content: Vec<u8>,
    must_answer: bool,
}

struct Run {
    dir: PathBuf,
    capacity: u64,
    /// First sector of the window.
    base_sector: u64,
    /// Parent of each link created (None for bases).
    parent: Vec<(PathBuf, Option<PathBuf>)>,
    leaf: PathBuf,
    writer: Option<Disk>,
    issued: Vec<Issued>,
    counter: usize,
    /// Whether the leaf's format can be written by qemu-io.
    leaf_foreign_ok: bool,
    stream_base: bool,
}

static REPORTED: AtomicU64 = AtomicU64::new(0);
static DIFFERING: AtomicU64 = AtomicU64::new(0);
static REFUSED: AtomicU64 = AtomicU64::new(0);
static ANSWERED: AtomicU64 = AtomicU64::new(0);
static REPORTED_GRAINS: AtomicU64 = AtomicU64::new(0);
static DIFFERING_GRAINS: AtomicU64 = AtomicU64::new(0);

fn rw(path: &Path) -> Disk {
    Disk::open(path, OpenOptions::default()).expect("open rw")
}

fn ro(path: &Path) -> Option<Disk> {
    Disk::open(
        path,
        OpenOptions {
            read_only: true,
            single_link: false,
        },
    )
    .ok()
}

impl Run {
    fn new(dir: &Path, kind: DiskKind) -> Run {
        let (capacity, base_sector) = match kind {
            // Writes straddle the 2 GB extent boundary.
            DiskKind::SplitSparse => ((2 << 21) + WINDOW, (2 << 21) - WINDOW / 2),
            _ => (WINDOW, 0),
        };
        let base = dir.join("base.vmdk");
        let spec = CreateSpec {
            kind,
            capacity,
            adapter: Adapter::LsiLogic,
            hw_version: 7,
        };
        create(&base, &spec, &mut |_| {}).expect("create");
        let mut run = Run {
            dir: dir.to_path_buf(),
            capacity,
            base_sector,
            parent: vec![(base.clone(), None)],
            leaf: base.clone(),
            writer: None,
            issued: Vec::new(),
            counter: 0,
            leaf_foreign_ok: kind != DiskKind::StreamOptimized,
            stream_base: kind == DiskKind::StreamOptimized,
        };
        if kind == DiskKind::StreamOptimized {
            // A stream takes sequential appends only: the VM writes to a child from the start.
            let d = rw(&base);
            let child = run.new_name();
            d.create_child(&child, DiskKind::MonolithicSparse).unwrap();
            d.close().unwrap();
            run.parent.push((child.clone(), Some(base)));
            run.leaf = child;
            run.leaf_foreign_ok = true;
        }
        set_change_tracking(&run.leaf, true).unwrap();
        run
    }

    fn new_name(&mut self) -> PathBuf {
        self.counter += 1;
        self.dir.join(format!("l{}.vmdk", self.counter))
    }

    fn writer(&mut self) -> &Disk {
        if self.writer.is_none() {
            self.writer = Some(rw(&self.leaf));
        }
        self.writer.as_ref().unwrap()
    }

    fn close_writer(&mut self) {
        if let Some(d) = self.writer.take() {
            d.close().unwrap();
        }
    }

    fn parent_of(&self, link: &Path) -> Option<PathBuf> {
        self.parent
            .iter()
            .find(|(l, _)| l == link)
            .and_then(|(_, p)| p.clone())
    }

    /// The window of `link`'s content (whole chain), by qemu-img convert.
    fn oracle(&self, link: &Path) -> Vec<u8> {
        let raw = self.dir.join("oracle.raw");
        let (code, out) = sh(&format!(
            "qemu-img convert -f vmdk -O raw '{}' '{}'",
            link.display(),
            raw.display()
        ));
        assert_eq!(code, 0, "{out}");
        let f = std::fs::File::open(&raw).unwrap();
        let mut buf = vec![0u8; (WINDOW * 512) as usize];
        std::os::unix::fs::FileExt::read_exact_at(&f, &mut buf, self.base_sector * 512).unwrap();
        std::fs::remove_file(&raw).unwrap();
        buf
    }

    fn record(&mut self, id: String, home: PathBuf) {
        let content = self.oracle(&home);
        self.issued.push(Issued {
            id,
            home,
            content,
            must_answer: true,
        });
    }

    /// Every id asked on `link` (opened read-only, whose content is `now`).
    fn check_on(&self, link: &Path, disk: &Disk, now: &[u8]) {
        for is in &self.issued {
            match disk.changed_areas(&is.id, 0, self.capacity) {
                Err(Error::ChangeIdUnknown(why)) => {
                    assert!(why.contains("do a full backup"), "{why}");
                    assert!(
                        !(is.must_answer && is.home == link),
                        "{} refused on the link that issued it ({}): {why}",
                        is.id,
                        link.display()
                    );
                    REFUSED.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => panic!("{}: {e}", is.id),
                Ok(runs) => {
                    let mut reported = vec![false; WINDOW as usize];
                    for (s, n) in runs {
                        for x in s..s + n {
                            if (self.base_sector..self.base_sector + WINDOW).contains(&x) {
                                reported[(x - self.base_sector) as usize] = true;
                            }
                        }
                    }
                    let mut differing = 0;
                    for (i, (a, b)) in is.content.chunks(512).zip(now.chunks(512)).enumerate() {
                        if a != b {
                            differing += 1;
                            assert!(
                                reported[i],
                                "id {} on {}: sector {} differs but is not reported",
                                is.id,
                                link.display(),
                                self.base_sector + i as u64
                            );
                        }
                    }
                    let n = reported.iter().filter(|&&r| r).count() as u64;
                    let grains = |f: &dyn Fn(usize) -> bool| {
                        (0..WINDOW as usize / 128)
                            .filter(|g| (g * 128..(g + 1) * 128).any(f))
                            .count() as u64
                    };
                    let diff_g = grains(&|i| {
                        is.content[i * 512..(i + 1) * 512] != now[i * 512..(i + 1) * 512]
                    });
                    REPORTED_GRAINS.fetch_add(grains(&|i| reported[i]), Ordering::Relaxed);
                    DIFFERING_GRAINS.fetch_add(diff_g, Ordering::Relaxed);
                    REPORTED.fetch_add(n, Ordering::Relaxed);
                    DIFFERING.fetch_add(differing, Ordering::Relaxed);
                    ANSWERED.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    /// Every id on every link that still opens (siblings of a committed link no longer do).
    fn check_everywhere(&mut self) {
        self.close_writer();
        let links: Vec<PathBuf> = self
            .parent
            .iter()
            .map(|(l, _)| l.clone())
            .filter(|l| l.exists())
            .collect();
        for link in links {
            let Some(disk) = ro(&link) else { continue };
            if !disk.is_tracked() {
                continue;
            }
            let now = self.oracle(&link);
            let mut buf = vec![0u8; now.len()];
            disk.read(self.base_sector, &mut buf).unwrap();
            assert!(
                buf == now,
                "{}: the library and qemu-img disagree",
                link.display()
            );
            self.check_on(&link, &disk, &now);
        }
    }

    fn apply(&mut self, op: Op) {
        let base = self.base_sector;
        match op {
            Op::Write { at, sectors, byte } => {
                let n = sectors.min(WINDOW - at);
                self.writer()
                    .write(base + at, &vec![byte; n as usize * 512])
                    .unwrap();
            }
            Op::Concurrent { at, byte } => {
                let d = self.writer();
                std::thread::scope(|s| {
                    for k in 0..4u64 {
                        s.spawn(move || {
                            let at = (at + k * 1000) % (WINDOW - 64);
                            d.write(base + at, &vec![byte ^ k as u8; 64 * 512]).unwrap();
                        });
                    }
                });
            }
            Op::IdWritable => {
                let id = self.writer().change_id().unwrap();
                let home = self.leaf.clone();
                self.close_writer();
                self.record(id, home);
            }
            Op::IdReadOnly => {
                self.close_writer();
                let (a, b) = (ro(&self.leaf).unwrap(), ro(&self.leaf).unwrap());
                let id = a.change_id().unwrap();
                assert_eq!(b.change_id().unwrap(), id, "readers of one content, one id");
                drop((a, b));
                self.record(id, self.leaf.clone());
            }
            Op::Snapshot { read_only_id } => {
                let child = self.new_name();
                let parent = self.leaf.clone();
                let d = self.writer();
                d.create_child(&child, DiskKind::MonolithicSparse).unwrap();
                let id = if read_only_id {
                    None
                } else {
                    Some(d.change_id().unwrap())
                };
                self.close_writer();
                let id = id.unwrap_or_else(|| ro(&parent).unwrap().change_id().unwrap());
                self.record(id, parent.clone());
                self.parent.push((child.clone(), Some(parent)));
                self.leaf = child;
            }
            Op::Sibling => {
                let Some(p) = self.parent_of(&self.leaf) else {
                    return;
                };
                self.close_writer();
                let Some(d) = Disk::open(&p, OpenOptions::default()).ok() else {
                    return;
                };
                let s = self.new_name();
                d.create_child(&s, DiskKind::MonolithicSparse).unwrap();
                d.close().unwrap();
                // Over an untracked stream base the sibling starts a history of its own.
                set_change_tracking(&s, true).unwrap();
                self.parent.push((s.clone(), Some(p)));
                self.leaf = s;
            }
            Op::CommitMiddle => {
                let Some(mid) = self.parent_of(&self.leaf) else {
                    return;
                };
                let Some(below) = self.parent_of(&mid) else {
                    return;
                };
                if self.stream_base && self.parent_of(&below).is_none() {
                    return; // a stream takes no commit
                }
                self.close_writer();
                match commit(&mid, &mut |_| {}) {
                    // Another child of `below` would change: Commit refuses, rightly.
                    Err(Error::InUse(_)) => return,
                    r => r.unwrap(),
                }
                for (_, p) in &mut self.parent {
                    if p.as_deref() == Some(mid.as_path()) {
                        *p = Some(below.clone());
                    }
                }
                self.parent.retain(|(l, _)| l != &mid);
                // `below` continues mid's branch: its own earlier ids stay answerable only if
                // mid descends from them (not after an Attach of an unrelated disk).
                for is in &mut self.issued {
                    if is.home == below {
                        is.must_answer = false;
                    }
                    if is.home == mid {
                        is.home = below.clone();
                    }
                }
            }
            Op::Attach { at } => {
                // A new tracked disk with content and an id of its own goes on top of the leaf.
                self.close_writer();
                let x = self.new_name();
                create(
                    &x,
                    &CreateSpec {
                        kind: DiskKind::MonolithicSparse,
                        capacity: self.capacity,
                        adapter: Adapter::LsiLogic,
                        hw_version: 7,
                    },
                    &mut |_| {},
                )
                .unwrap();
                set_change_tracking(&x, true).unwrap();
                let cd = open_single(&x, true);
                cd.write(base + at.min(WINDOW - 8), &[0x77; 4096]).unwrap();
                let id = cd.change_id().unwrap();
                cd.close().unwrap();
                drop(cd);
                self.parent.push((x.clone(), None));
                self.record(id, x.clone());
                let cd = open_single(&x, true);
                let pd = rw(&self.leaf);
                pd.attach_under(&cd).unwrap();
                cd.close().unwrap();
                let p = self.leaf.clone();
                self.parent.last_mut().unwrap().1 = Some(p);
                self.leaf = x;
            }
            Op::Reopen => self.close_writer(),
            Op::Kill { delay_ms } => {
                self.close_writer();
                let started = self.dir.join("started");
                let _ = std::fs::remove_file(&started);
                let mut worker = Command::new(std::env::current_exe().unwrap())
                    .args(["--ignored", "--exact", "model_kill_worker"])
                    .env("VDL_MODEL_DISK", &self.leaf)
                    .env("VDL_MODEL_BASE", base.to_string())
                    .env("VDL_MODEL_STARTED", &started)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap();
                wait_for_file(&started, 2);
                std::thread::sleep(std::time::Duration::from_millis(delay_ms));
                worker.kill().unwrap();
                worker.wait().unwrap();
            }
            Op::Foreign { at } if self.leaf_foreign_ok => {
                self.close_writer();
                let (code, out) = sh(&format!(
                    "qemu-io -f vmdk -c 'write -P 0x5a {} 4k' '{}'",
                    (base + at.min(WINDOW - 8)) * 512,
                    self.leaf.display()
                ));
                assert_eq!(code, 0, "{out}");
                for is in &mut self.issued {
                    if is.home == self.leaf {
                        is.must_answer = false;
                    }
                }
            }
            Op::Foreign { .. } => {}
        }
    }
}

/// Writes in the window until killed (a writer of the model killed with its session open).
#[test]
#[ignore = "helper process for the model's kill -9"]
fn model_kill_worker() {
    let Ok(path) = std::env::var("VDL_MODEL_DISK") else {
        return;
    };
    let base: u64 = std::env::var("VDL_MODEL_BASE").unwrap().parse().unwrap();
    let d = Disk::open(Path::new(&path), OpenOptions::default()).unwrap();
    let mut x: u64 = u64::from(std::process::id()) | 1;
    let mut n = 0u64;
    loop {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let len = 1 + x % 200;
        let at = (x >> 20) % (WINDOW - len);
        d.write(base + at, &vec![(x >> 56) as u8 | 1; len as usize * 512])
            .unwrap();
        n += 1;
        if n == 2 {
            std::fs::write(std::env::var("VDL_MODEL_STARTED").unwrap(), b"").unwrap();
        }
        if x.is_multiple_of(11) {
            d.flush().unwrap();
        }
    }
}

fn run_sequence(kind: DiskKind, ops: Vec<Op>) {
    let dir = tempfile::tempdir().unwrap();
    let mut run = Run::new(dir.path(), kind);
    let id = run.writer().change_id().unwrap();
    let home = run.leaf.clone();
    run.close_writer();
    run.record(id, home);
    for op in ops {
        let check_leaf = matches!(op, Op::IdWritable | Op::IdReadOnly);
        run.apply(op);
        if check_leaf {
            let now = run.oracle(&run.leaf);
            let d = ro(&run.leaf).unwrap();
            run.check_on(&run.leaf.clone(), &d, &now);
        }
    }
    run.check_everywhere();
}

fn sequences(kind: DiskKind, cases: u32) {
    if !have_qemu() {
        eprintln!("qemu-img not installed: skipped");
        return;
    }
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    runner
        .run(&proptest::collection::vec(op(), 4..18), |ops| {
            run_sequence(kind, ops);
            Ok(())
        })
        .unwrap();
    let (r, d) = (
        REPORTED.load(Ordering::Relaxed),
        DIFFERING.load(Ordering::Relaxed),
    );
    let (rg, dg) = (
        REPORTED_GRAINS.load(Ordering::Relaxed),
        DIFFERING_GRAINS.load(Ordering::Relaxed),
    );
    println!(
        "{kind:?} (totals so far): answers {} refusals {}; sectors reported {r}, differing {d}, \
         tightness {:.2}; 64 KiB grains reported {rg}, differing {dg}, tightness {:.2}",
        ANSWERED.load(Ordering::Relaxed),
        REFUSED.load(Ordering::Relaxed),
        r as f64 / d.max(1) as f64,
        rg as f64 / dg.max(1) as f64
    );
    assert!(ANSWERED.load(Ordering::Relaxed) > 0);
}

#[test]
fn ids_hold_on_monolithic_sparse() {
    sequences(DiskKind::MonolithicSparse, 10);
}

#[test]
fn ids_hold_on_two_gb_max_extent_sparse_across_the_boundary() {
    sequences(DiskKind::SplitSparse, 5);
}

#[test]
fn ids_hold_on_monolithic_flat() {
    sequences(DiskKind::MonolithicFlat, 5);
}

#[test]
fn ids_hold_on_stream_optimized() {
    sequences(DiskKind::StreamOptimized, 5);
}
