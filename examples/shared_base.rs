//! A shared base: one golden image, never written again, under two virtual machines' redo
//! logs. Each machine sees the base plus its own writes, and none of the other's.
//!
//! `cargo run --example shared_base DIR` (DIR must exist; the disks are made in it).

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use vixDiskLib::{Connection, CreateOptions, DiskCursor, DiskKind, OpenOptions};

pub fn run(dir: &Path) -> vixDiskLib::Result<()> {
    let io = |e: std::io::Error| vixDiskLib::Error::Internal(e.to_string());
    let conn = Connection::local();
    let base = dir.join("golden.vmdk");
    conn.create(
        &base,
        &CreateOptions::new(DiskKind::MonolithicSparse, 8192),
        &mut |_| {},
    )?;
    let golden = conn.open(&base, &OpenOptions::default())?;
    DiskCursor::new(&golden).write_at(0, b"golden image v1")?;
    golden.close()?;

    for vm in ["vm-a", "vm-b"] {
        let parent = conn.open(&base, &OpenOptions::default())?;
        parent.create_child(
            dir.join(format!("{vm}.vmdk")),
            DiskKind::MonolithicSparse,
            &mut |_| {},
        )?;
        parent.close()?;
    }
    // Both machines run at once: the base is opened read-only under each.
    let a = conn.open(dir.join("vm-a.vmdk"), &OpenOptions::default())?;
    let b = conn.open(dir.join("vm-b.vmdk"), &OpenOptions::default())?;
    let mut ca = DiskCursor::new(&a);
    ca.seek(SeekFrom::Start(4096)).map_err(io)?;
    ca.write_all(b"written by vm-a").map_err(io)?;

    let mut seen = [0u8; 15];
    let mut cb = DiskCursor::new(&b);
    cb.read_exact(&mut seen).map_err(io)?;
    let base_ok = &seen == b"golden image v1";
    cb.seek(SeekFrom::Start(4096)).map_err(io)?;
    cb.read_exact(&mut seen).map_err(io)?;
    let isolated = seen == [0; 15];
    if !base_ok || !isolated {
        return Err(vixDiskLib::Error::Internal(
            "a machine does not see the base, or sees the other machine's writes".into(),
        ));
    }
    a.close()?;
    b.close()?;
    conn.check(&base, false)?;
    println!("two machines share {}", base.display());
    Ok(())
}

#[allow(dead_code)] // a test includes this file and calls `run` only
fn main() {
    let dir = std::env::args().nth(1).expect("usage: shared_base DIR");
    if let Err(e) = run(Path::new(&dir)) {
        eprintln!("shared_base: {e} ({})", e.kind().name());
        std::process::exit(1);
    }
}
