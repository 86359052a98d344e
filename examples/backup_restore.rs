//! Backup and restore with change ids: a full backup copies the allocated areas of a
//! change-tracked disk and remembers its change id; an incremental backup later copies only
//! the areas changed since that id; restoring the backup gives the disk's content back.
//!
//! `cargo run --example backup_restore DIR` (DIR must exist; the disks are made in it).

use std::path::Path;

use vixDiskLib::{Area, ChangeId, Connection, CreateOptions, Disk, DiskKind, OpenOptions};

const CAPACITY: u64 = 32 * 1024; // 16 MiB

/// Copies `areas` of `from` into `to`; returns the sectors copied.
fn copy_areas(from: &Disk, to: &Disk, areas: &[Area]) -> vixDiskLib::Result<u64> {
    let mut buf = vec![0; 128 * 512];
    let mut copied = 0;
    for area in areas {
        let mut s = area.start;
        while s < area.end() {
            let n = (area.end() - s).min(128);
            let chunk = &mut buf[..n as usize * 512];
            from.read(s, chunk)?;
            to.write(s, chunk)?;
            s += n;
            copied += n;
        }
    }
    Ok(copied)
}

/// Changes since `since` (`ChangeId::all()`: everything allocated), copied into the backup;
/// returns the change id the backup now matches.
fn backup(
    conn: &Connection,
    disk: &Path,
    target: &Path,
    since: &ChangeId,
) -> vixDiskLib::Result<ChangeId> {
    let src = conn.open(
        disk,
        &OpenOptions {
            read_only: true,
            ..Default::default()
        },
    )?;
    let id = src.change_id()?; // taken first: later writes show up in the next increment
    let areas = src.changed_areas(since, 0, src.capacity())?;
    let dst = conn.open(target, &OpenOptions::default())?;
    let copied = copy_areas(&src, &dst, &areas)?;
    dst.close()?;
    println!(
        "backup since {since}: {} areas, {copied} sectors",
        areas.len()
    );
    Ok(id)
}

fn same_content(a: &Disk, b: &Disk) -> vixDiskLib::Result<bool> {
    let (mut x, mut y) = (vec![0; 1024 * 512], vec![0; 1024 * 512]);
    for s in (0..a.capacity()).step_by(1024) {
        a.read(s, &mut x)?;
        b.read(s, &mut y)?;
        if x != y {
            return Ok(false);
        }
    }
    Ok(true)
}

pub fn run(dir: &Path) -> vixDiskLib::Result<()> {
    let conn = Connection::local();
    let disk = dir.join("vm.vmdk");
    let target = dir.join("backup.vmdk");
    let restored = dir.join("restored.vmdk");
    let opts = CreateOptions::new(DiskKind::MonolithicSparse, CAPACITY);
    conn.create(&disk, &opts, &mut |_| {})?;
    conn.set_change_tracking(&disk, true)?;
    conn.create(&target, &opts, &mut |_| {})?;

    // T1: some data, then a full backup.
    let vm = conn.open(&disk, &OpenOptions::default())?;
    vm.write(0, &[1; 4096])?;
    vm.write(10_000, &[2; 512])?;
    vm.close()?;
    let t1 = backup(&conn, &disk, &target, &ChangeId::all())?;

    // T2: more changes, then an incremental backup of only those.
    let vm = conn.open(&disk, &OpenOptions::default())?;
    vm.write(10_000, &[3; 512])?;
    vm.write(30_000, &[4; 8192])?;
    vm.close()?;
    let _t2 = backup(&conn, &disk, &target, &t1)?;

    // Restore: a new disk from the backup, equal to the disk at T2.
    conn.clone_disk(&target, &restored, &opts, false, &mut |_| {})?;
    let ro = OpenOptions {
        read_only: true,
        ..Default::default()
    };
    let (a, b) = (conn.open(&disk, &ro)?, conn.open(&restored, &ro)?);
    if !same_content(&a, &b)? {
        return Err(vixDiskLib::Error::Internal(
            "the restored disk differs".into(),
        ));
    }
    println!("restored {} equals {}", restored.display(), disk.display());
    Ok(())
}

#[allow(dead_code)] // a test includes this file and calls `run` only
fn main() {
    let dir = std::env::args().nth(1).expect("usage: backup_restore DIR");
    if let Err(e) = run(Path::new(&dir)) {
        eprintln!("backup_restore: {e} ({})", e.kind().name());
        std::process::exit(1);
    }
}
