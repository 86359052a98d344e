//! The checks every crash state goes through, and the workloads' shared setup: the content a
//! disk must hold per durable step (`Expect`), opening with CheckRepair as the fallback, the
//! slow oracles (writable open/close, qemu-img check) and the recording harness (`run`).

use std::path::Path;

use super::model::Recorder;
use super::{RECORDING, State, explore};
use crate::common::{have_qemu, qemu_check};
use vixDiskLib::chain::{Disk, OpenOptions};
use vixDiskLib::vmdk::check::check_disk;
use vixDiskLib::vmdk::create::{CreateSpec, DiskKind, create};
use vixDiskLib::vmdk::geometry::Adapter;

pub const MIB: u64 = 2048;

pub fn spec(kind: DiskKind, capacity: u64) -> CreateSpec {
    CreateSpec {
        kind,
        capacity,
        adapter: Adapter::LsiLogic,
        hw_version: 7,
    }
}

pub fn ro() -> OpenOptions {
    OpenOptions {
        read_only: true,
        single_link: false,
    }
}

/// What the disk must hold, per durable step: `imgs[p]` after step `p` (0 = before the
/// workload), over the sector ranges `ranges` (concatenated).
pub struct Expect {
    pub ranges: Vec<(u64, u64)>,
    pub imgs: Vec<Vec<u8>>,
    pub cur: Vec<u8>,
}

impl Expect {
    pub fn new(ranges: Vec<(u64, u64)>) -> Expect {
        let n: u64 = ranges.iter().map(|r| r.1).sum();
        let zero = vec![0u8; n as usize * 512];
        Expect {
            ranges,
            imgs: vec![zero.clone()],
            cur: zero,
        }
    }

    /// Byte index in the image of `sector`, if it is checked.
    pub fn index(&self, sector: u64) -> Option<usize> {
        let mut base = 0;
        for &(s, n) in &self.ranges {
            if sector >= s && sector < s + n {
                return Some((base + sector - s) as usize * 512);
            }
            base += n;
        }
        None
    }

    /// Writes `data` at `sector` of `d` and of the expected content.
    pub fn write(&mut self, d: &Disk, sector: u64, data: &[u8]) {
        d.write(sector, data).expect("write");
        self.note(sector, data);
    }

    pub fn note(&mut self, sector: u64, data: &[u8]) {
        for (i, chunk) in data.chunks(512).enumerate() {
            if let Some(at) = self.index(sector + i as u64) {
                self.cur[at..at + 512].copy_from_slice(chunk);
            }
        }
    }

    /// The current content is durable from now on (after Flush/Close): a new step.
    pub fn step(&mut self, rec: &Recorder) {
        rec.mark();
        self.imgs.push(self.cur.clone());
    }

    /// Every checked sector of `d` holds step `phase`'s content or the next step's.
    pub fn check(&self, d: &Disk, phase: usize) -> Result<(), String> {
        let old = &self.imgs[phase.min(self.imgs.len() - 1)];
        let new = &self.imgs[(phase + 1).min(self.imgs.len() - 1)];
        let mut base = 0usize;
        for &(s, n) in &self.ranges {
            let n = n.min(d.capacity().saturating_sub(s));
            let mut buf = vec![0u8; n as usize * 512];
            d.read(s, &mut buf).map_err(|e| format!("read: {e}"))?;
            for (i, got) in buf.chunks(512).enumerate() {
                let at = base + i * 512;
                if got != &old[at..at + 512] && got != &new[at..at + 512] {
                    let what =
                        if phase + 1 >= self.imgs.len() || old[at..at + 512] == new[at..at + 512] {
                            "lost a durable write"
                        } else {
                            "neither old nor new content"
                        };
                    let tag = |b: &[u8]| (b[0..8].to_vec(), b[8]);
                    return Err(format!(
                        "sector {}: {what} (got {:?}, old {:?}, new {:?})",
                        s + i as u64,
                        tag(got),
                        tag(&old[at..at + 512]),
                        tag(&new[at..at + 512])
                    ));
                }
            }
            base += n as usize * 512;
        }
        Ok(())
    }
}

/// A recognisable sector pattern for step `tag`.
pub fn pattern(tag: u8, sectors: usize) -> Vec<u8> {
    let mut v = vec![tag; sectors * 512];
    for (i, s) in v.chunks_mut(512).enumerate() {
        s[..8].copy_from_slice(&(i as u64).to_le_bytes());
    }
    v
}

/// Opens `path` read-only; a disk that refuses to open gets CheckRepair once.
pub fn open_or_repair(path: &Path) -> Result<Disk, String> {
    match Disk::open(path, ro()) {
        Ok(d) => Ok(d),
        Err(first) => {
            check_disk(path, true).map_err(|e| format!("open: {first}; CheckRepair: {e}"))?;
            Disk::open(path, ro())
                .map_err(|e| format!("open after CheckRepair: {e} (first: {first})"))
        }
    }
}

/// The slow oracles for a chosen state: a writable open and close (what the next user does),
/// then `qemu-img check`.
pub fn deep_check(path: &Path) -> Result<(), String> {
    let d = Disk::open(path, OpenOptions::default()).map_err(|e| format!("writable open: {e}"))?;
    d.close().map_err(|e| format!("close: {e}"))?;
    drop(d);
    // qemu-img opens no vmfsThin disks.
    let thin = std::fs::read(path).is_ok_and(|b| b.windows(8).any(|w| w == b"vmfsThin"));
    if !thin && have_qemu() && !qemu_check(path) {
        return Err("qemu-img check fails".into());
    }
    Ok(())
}

/// Runs `workload` in a fresh directory after `setup`, recording, and explores its states.
pub fn run(
    name: &str,
    setup: impl FnOnce(&Path),
    workload: impl FnOnce(&Path, &Recorder) -> Expect,
    check: impl Fn(&State, &Expect) -> Result<(), String>,
) {
    let _one = RECORDING.lock().unwrap_or_else(|e| e.into_inner());
    let dir = crate::crash::scratch();
    setup(dir.path());
    let rec = Recorder::start(dir.path());
    let expect = workload(dir.path(), &rec);
    rec.stop();
    explore(name, &rec, &mut |s| check(s, &expect));
}

/// The common check: the disk at `name` opens, holds the expected content, and (deep) a
/// writable open/close and qemu-img check pass.
pub fn disk_holds(s: &State, name: &str, ex: &Expect) -> Result<(), String> {
    let path = s.dir.join(name);
    let d = open_or_repair(&path)?;
    ex.check(&d, s.phase)?;
    drop(d);
    if s.deep {
        deep_check(&path)?;
        let d = open_or_repair(&path)?;
        ex.check(&d, s.phase)?;
    }
    Ok(())
}

/// A closed disk of `kind` at `dir/name` holding pattern 1 over sectors 0..300.
pub fn disk_with_data(dir: &Path, name: &str, kind: DiskKind, cap: u64) {
    create(&dir.join(name), &spec(kind, cap), &mut |_| {}).unwrap();
    let d = Disk::open(&dir.join(name), OpenOptions::default()).unwrap();
    d.write(0, &pattern(1, 300)).unwrap();
    d.close().unwrap();
}

/// The expected content of `disk_with_data` (plus `extra` writes of the setup).
pub fn expect_data(cap: u64, extra: &[(u64, Vec<u8>)]) -> Expect {
    let mut ex = Expect::new(vec![(0, cap)]);
    ex.note(0, &pattern(1, 300));
    for (s, d) in extra {
        ex.note(*s, d);
    }
    ex.imgs[0] = ex.cur.clone();
    ex
}

/// A base with data and a child over it that wrote pattern 2 at 200..500 (closed).
pub fn base_and_child(dir: &Path, cap: u64) {
    disk_with_data(dir, "base.vmdk", DiskKind::MonolithicSparse, cap);
    let d = Disk::open(&dir.join("base.vmdk"), OpenOptions::default()).unwrap();
    d.create_child(&dir.join("child.vmdk"), DiskKind::MonolithicSparse)
        .unwrap();
    d.close().unwrap();
    drop(d);
    let c = Disk::open(&dir.join("child.vmdk"), OpenOptions::default()).unwrap();
    c.write(200, &pattern(2, 300)).unwrap();
    c.close().unwrap();
}

/// Every id in `ids` (step issued, id, content then) issued by step `phase` is refused or
/// answered with every sector whose content differs now.
pub fn ids_answered(
    d: &Disk,
    ids: &[(usize, String, Vec<u8>)],
    phase: usize,
) -> Result<(), String> {
    let mut now = vec![0u8; d.capacity() as usize * 512];
    d.read(0, &mut now).map_err(|e| e.to_string())?;
    for (step, id, then) in ids {
        if *step > phase {
            continue;
        }
        let Ok(areas) = d.changed_areas(id, 0, d.capacity()) else {
            continue; // refused: the caller does a full backup
        };
        for (i, (a, b)) in now.chunks(512).zip(then.chunks(512)).enumerate() {
            let sector = i as u64;
            if a != b && !areas.iter().any(|&(st, n)| sector >= st && sector < st + n) {
                return Err(format!(
                    "id {id} (step {step}) misses changed sector {sector}: {areas:?}"
                ));
            }
        }
    }
    Ok(())
}
