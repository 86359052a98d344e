//! Nightly redo logs (the "3:00 AM" scenario): a base disk gets one child (redo log) per night;
//! each day's writes go to the newest child, and any day's content can be read back later by
//! opening that day's link, which sees its parents but none of the later days.
//!
//! `cargo run --example nightly_redo_logs DIR` (DIR must exist; the disks are made in it).

use std::path::{Path, PathBuf};

use vixDiskLib::{Connection, CreateOptions, DiskKind, OpenOptions};

const DAYS: u8 = 3;

fn day_link(dir: &Path, day: u8) -> PathBuf {
    if day == 0 {
        dir.join("vm.vmdk")
    } else {
        dir.join(format!("vm-{day:03}.vmdk"))
    }
}

/// What day `day` writes: one sector of its number, at sector `day * 64`.
fn day_data(day: u8) -> Vec<u8> {
    vec![day + 1; 512]
}

pub fn run(dir: &Path) -> vixDiskLib::Result<()> {
    let conn = Connection::local();
    let base = day_link(dir, 0);
    conn.create(
        &base,
        &CreateOptions::new(DiskKind::MonolithicSparse, 64 * 1024),
        &mut |_| {},
    )?;
    for day in 0..=DAYS {
        if day > 0 {
            // 3:00 AM: yesterday's link gets a child, which takes today's writes.
            let yesterday = conn.open(day_link(dir, day - 1), &OpenOptions::default())?;
            yesterday.create_child(day_link(dir, day), DiskKind::MonolithicSparse, &mut |_| {})?;
            yesterday.close()?;
        }
        let today = conn.open(day_link(dir, day), &OpenOptions::default())?;
        today.write(u64::from(day) * 64, &day_data(day))?;
        today.close()?;
        println!("day {day}: wrote {}", day_link(dir, day).display());
    }
    // Re-create day 2: its link shows days 0..=2 and nothing of day 3.
    let day2 = conn.open(
        day_link(dir, 2),
        &OpenOptions {
            read_only: true,
            ..Default::default()
        },
    )?;
    let mut buf = vec![0; 512];
    for day in 0..=DAYS {
        day2.read(u64::from(day) * 64, &mut buf)?;
        let expected = if day <= 2 {
            day_data(day)
        } else {
            vec![0; 512]
        };
        if buf != expected {
            return Err(vixDiskLib::Error::Internal(format!(
                "day 2's view shows the wrong content at day {day}'s sector"
            )));
        }
    }
    println!("day 2 re-created from {} links", day2.info().links);
    day2.close()
}

#[allow(dead_code)] // a test includes this file and calls `run` only
fn main() {
    let dir = std::env::args()
        .nth(1)
        .expect("usage: nightly_redo_logs DIR");
    if let Err(e) = run(Path::new(&dir)) {
        eprintln!("nightly_redo_logs: {e} ({})", e.kind().name());
        std::process::exit(1);
    }
}
