//! The facade's asynchronous I/O (`Disk::read_async`/`write_async`, what VixDiskLib_ReadAsync
//! and _WriteAsync call) as a property over random sequences.
//!
//! Four threads share one open `Disk`; each owns a stripe of it and runs a random mix of
//! asynchronous and synchronous reads and writes (up to 8 asynchronous requests in flight,
//! unaligned to grains, some crossing grain-table spans) and flushes. A request whose range
//! overlaps one still in flight first waits for every request of that thread, so the expected
//! content is always defined. The promises checked:
//! - every started request's completion runs (within 20 s), with Ok;
//! - a read returns the content the model has for its range when it was started;
//! - after flush and close the disk holds the model, byte for byte, read by qemu-img (the
//!   oracle), and `qemu-img check` is clean; a reopen through the facade reads the same.
//!
//! It runs on monolithicSparse, twoGbMaxExtentSparse and monolithicFlat disks, and on an NBD
//! export (a raw file served by qemu-nbd, whose content is then compared directly).
//! `FACADE_ASYNC_SEEDS=N` runs N seeds per disk kind instead of 2.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

use common::{have_qemu, qemu_check, qemu_raw, xorshift_rng};
use vixDiskLib::{Connection, CreateOptions, Disk, DiskKind, IoBuf, OpenOptions};

const THREADS: u64 = 4;
/// Sectors each thread owns: 3 MiB, so stripes cross the 2 MiB span of a grain table.
const STRIPE: u64 = 6144;
const OPS_PER_THREAD: usize = 120;
const MAX_IN_FLIGHT: usize = 8;
const SECTOR: usize = 512;

/// One asynchronous request in flight: its range, its memory (kept alive and untouched until
/// the completion reported), what a read must find, and where the completion reports.
struct InFlight {
    start: u64,
    sectors: u64,
    memory: Box<[u8]>,
    expect: Option<Vec<u8>>,
    done: Receiver<vixDiskLib::Result<()>>,
}

impl InFlight {
    fn overlaps(&self, start: u64, sectors: u64) -> bool {
        start < self.start + self.sectors && self.start < start + sectors
    }

    fn finish(self, what: &str) {
        let result = self
            .done
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("{what}: a completion never ran"));
        result.unwrap_or_else(|e| panic!("{what}: request at {} failed: {e}", self.start));
        if let Some(expect) = &self.expect {
            assert!(
                self.memory[..] == expect[..],
                "{what}: async read at sector {} (+{}) returned other content than the model",
                self.start,
                self.sectors
            );
        }
    }
}

/// Bytes that name where they were written and by which step, so a misplaced sector shows.
fn fill(buf: &mut [u8], first_sector: u64, step: u64) {
    for (i, sector) in buf.chunks_mut(SECTOR).enumerate() {
        let tag = (first_sector + i as u64) ^ (step << 32);
        for (j, b) in sector.iter_mut().enumerate() {
            *b = (tag >> ((j % 8) * 8)) as u8 ^ (j as u8);
        }
    }
}

/// One thread's random run over its stripe; returns the stripe's expected content.
fn run_stripe(disk: &Disk, thread: u64, seed: u64, what: &str) -> Vec<u8> {
    let base = thread * STRIPE;
    let mut model = vec![0u8; STRIPE as usize * SECTOR];
    let mut rng = xorshift_rng(seed ^ (thread + 1).wrapping_mul(0x5851_f42d));
    let mut flight: Vec<InFlight> = Vec::new();
    for step in 0..OPS_PER_THREAD as u64 {
        let choice = rng() % 100;
        if choice < 4 {
            for f in flight.drain(..) {
                f.finish(what);
            }
            disk.flush().unwrap();
            continue;
        }
        let sectors = 1 + rng() % 300;
        let offset = rng() % (STRIPE - sectors + 1);
        let start = base + offset;
        if flight.len() >= MAX_IN_FLIGHT || flight.iter().any(|f| f.overlaps(start, sectors)) {
            for f in flight.drain(..) {
                f.finish(what);
            }
        }
        let range = offset as usize * SECTOR..(offset + sectors) as usize * SECTOR;
        let (tx, rx) = channel();
        let complete: vixDiskLib::Completion = Box::new(move |r| {
            let _ = tx.send(r);
        });
        match choice {
            4..=44 => {
                let mut memory = vec![0u8; range.len()].into_boxed_slice();
                fill(&mut memory, start, step);
                model[range].copy_from_slice(&memory);
                // SAFETY: `memory` lives in the InFlight entry, unchanged, until `finish`
                // has seen the completion.
                let buf = unsafe { IoBuf::from_raw(memory.as_ptr(), memory.len()) };
                disk.write_async(start, buf, complete).unwrap();
                flight.push(InFlight {
                    start,
                    sectors,
                    memory,
                    expect: None,
                    done: rx,
                });
            }
            45..=84 => {
                let mut memory = vec![0xeeu8; range.len()].into_boxed_slice();
                // SAFETY: as above; nothing reads `memory` before `finish`.
                let buf = unsafe { IoBuf::from_raw_mut(memory.as_mut_ptr(), memory.len()) };
                disk.read_async(start, buf, complete).unwrap();
                flight.push(InFlight {
                    start,
                    sectors,
                    memory,
                    expect: Some(model[range].to_vec()),
                    done: rx,
                });
            }
            85..=92 => {
                let mut data = vec![0u8; range.len()];
                fill(&mut data, start, step);
                disk.write(start, &data).unwrap();
                model[range].copy_from_slice(&data);
            }
            _ => {
                let mut data = vec![0u8; range.len()];
                disk.read(start, &mut data).unwrap();
                assert!(
                    data[..] == model[range.clone()],
                    "{what}: sync read at sector {start} (+{sectors}) differs from the model"
                );
            }
        }
    }
    for f in flight.drain(..) {
        f.finish(what);
    }
    model
}

fn run(kind: DiskKind, seed: u64) {
    let what = format!("{kind:?} seed {seed:#x}");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.vmdk");
    let conn = Connection::local();
    conn.create(
        &path,
        &CreateOptions::new(kind, THREADS * STRIPE),
        &mut |_| {},
    )
    .unwrap();
    let disk = conn.open(&path, &OpenOptions::default()).unwrap();
    let model = run_threads(disk, seed, &what);
    check_on_disk(&conn, &path, &model, &what);
}

/// Runs every thread's stripe on `disk`, then flushes and closes it; returns the model.
fn run_threads(disk: Disk, seed: u64, what: &str) -> Vec<u8> {
    let what = what.to_string();
    let disk = Arc::new(disk);
    let stripes: Vec<Vec<u8>> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..THREADS)
            .map(|t| {
                let disk = Arc::clone(&disk);
                let what = what.clone();
                s.spawn(move || run_stripe(&disk, t, seed, &what))
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    disk.flush().unwrap();
    Arc::into_inner(disk)
        .expect("the threads gave their handles back")
        .close()
        .unwrap();
    stripes.concat()
}

/// The closed disk holds `model`: qemu-img's reading of it, its check, and a reopen.
fn check_on_disk(conn: &Connection, path: &Path, model: &[u8], what: &str) {
    if let Some(raw) = qemu_raw(path) {
        assert!(raw == model, "{what}: qemu-img reads other content");
        assert!(qemu_check(path), "{what}: qemu-img check is not clean");
    }
    let again = conn
        .open(
            path,
            &OpenOptions {
                read_only: true,
                ..Default::default()
            },
        )
        .unwrap();
    let mut back = vec![0u8; model.len()];
    again.read(0, &mut back).unwrap();
    assert!(back == model, "{what}: a reopen reads other content");
    again.close().unwrap();
}

fn seeds() -> u64 {
    std::env::var("FACADE_ASYNC_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2)
}

#[test]
fn async_requests_on_a_sparse_disk_match_the_model() {
    if !have_qemu() {
        eprintln!("qemu-img missing: the oracle is qemu-img");
    }
    for seed in 0..seeds() {
        run(DiskKind::MonolithicSparse, 0xa5c0 + seed);
    }
}

#[test]
fn async_requests_on_a_split_sparse_disk_match_the_model() {
    for seed in 0..seeds() {
        run(DiskKind::SplitSparse, 0xb5c0 + seed);
    }
}

#[test]
fn async_requests_on_a_flat_disk_match_the_model() {
    for seed in 0..seeds() {
        run(DiskKind::MonolithicFlat, 0xc5c0 + seed);
    }
}

/// The same property over the NBD backend: a raw file served by qemu-nbd, written and read
/// through `Connection::nbd`; the file then holds the model.
#[test]
fn async_requests_on_an_nbd_export_match_the_model() {
    let have_server = std::process::Command::new("qemu-nbd")
        .arg("--version")
        .output()
        .is_ok();
    if !have_server {
        eprintln!("qemu-nbd missing: NBD case skipped");
        return;
    }
    for seed in 0..seeds() {
        let what = format!("NBD export seed {seed:#x}");
        let dir = tempfile::tempdir().unwrap();
        let raw = dir.path().join("export.raw");
        let sock = dir.path().join("nbd.sock");
        std::fs::File::create(&raw)
            .unwrap()
            .set_len(THREADS * STRIPE * SECTOR as u64)
            .unwrap();
        // The client first (libnbd loads here, no traffic yet), so a machine without it
        // starts no server that would wait forever.
        let uri = format!("nbd+unix:///?socket={}", sock.display());
        let conn = match Connection::nbd(&uri) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("no NBD client here ({e}): NBD case skipped");
                return;
            }
        };
        // --fork returns once the socket listens; the server exits after its one client.
        let status = std::process::Command::new("qemu-nbd")
            .args(["--fork", "-f", "raw", "-k"])
            .arg(&sock)
            .arg(&raw)
            .status()
            .unwrap();
        assert!(status.success(), "qemu-nbd did not start");
        let disk = conn.open("", &OpenOptions::default()).unwrap();
        let model = run_threads(disk, 0xd5c0 + seed, &what);
        assert!(
            std::fs::read(&raw).unwrap() == model,
            "{what}: the served file holds other content"
        );
    }
}
