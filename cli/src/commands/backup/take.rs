//! Taking a backup, as the seeds' algorithm does it:
//!
//! 1. (`--snapshot CHILD`) the disk is frozen under a new redo log CHILD (CreateChild); its
//!    writer continues on CHILD while the frozen disk is read, and `vixdisk commit CHILD`
//!    deletes the snapshot afterwards. Without a snapshot the disk is held open for the whole
//!    backup, which keeps every writer out.
//! 2. The change id of the frozen content is recorded: on the backup's read-only handle just
//!    before CreateChild, or (`--id-after-snapshot`) after it, from a new read-only open of
//!    the frozen disk. Read-only handles issue ids themselves (the tracking file alone is
//!    written, under its own lock).
//! 3. The blocks: for a full backup the allocated 128-sector chunks (QueryAllocatedBlocks'
//!    rules: at most 524288 chunks per query, the tail past the last whole chunk counted as
//!    allocated); for an incremental one the areas changed since the previous backup's id;
//!    for a differential one those changed since the full backup's id.
//! 4. They are copied into `DIR/data.bin`; `DIR/manifest.json` is written last (temporary
//!    name, fsync, rename): a directory without it is an unfinished backup restore refuses.

use std::fs::File;
use std::io::Write;
use std::path::Path;

use vixDiskLib::Disk;
use vixDiskLib::{ChangeId, DiskKind};
use vixDiskLib::{Error, Result};

use super::manifest::{self, Block, Kind, Loaded, Manifest, ParentRef, SourceInfo};
use super::{DATA, MANIFEST, STEP, fsync_dir, now_unix};
use crate::commands::copy::{ALLOCATION_CHUNK, MAX_CHUNKS, allocated_blocks, push_run};
use crate::commands::{close, open, remote, with_disk};
use crate::failure::{CmdResult, Failure, OnFile, since_failure};
use crate::interrupt;
use crate::progress::Progress;
use crate::units::SECTOR;

/// QueryAllocatedBlocks' smallest chunk, as the seed's backup uses.
const CHUNK: u64 = ALLOCATION_CHUNK;

/// The areas changed since `since`, window by window as QueryChangedAreas answers them.
fn changed_blocks(disk: &Disk, since: &str) -> Result<Vec<(u64, u64)>> {
    let capacity = disk.capacity();
    let mut blocks: Vec<(u64, u64)> = Vec::new();
    let mut start = 0;
    while start < capacity {
        let end = (start + MAX_CHUNKS * CHUNK).min(capacity);
        for a in disk.changed_areas(&ChangeId::new(since), start, end - start)? {
            push_run(&mut blocks, a.start, a.sectors);
        }
        start = end;
    }
    Ok(blocks)
}

/// VIX_E_FILE_ALREADY_EXISTS unless `dir` is missing or an empty directory.
fn refuse_used_dir(dir: &Path) -> CmdResult {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => match entries.next() {
            Some(_) => Err(Failure::Engine {
                file: dir.to_path_buf(),
                error: Error::FileExists(dir.to_path_buf()),
            }),
            None => Ok(()),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).on(dir),
    }
}

/// Prepares `dir`: created if missing, else it must be empty. Returns whether we created it.
fn prepare_dir(dir: &Path) -> CmdResult<bool> {
    match std::fs::read_dir(dir) {
        Ok(_) => {
            refuse_used_dir(dir)?;
            Ok(false)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir).on(dir)?;
            // The new directory's own entry must be durable too, or a finished backup can
            // vanish with a power loss after we said it was done.
            if let Some(parent) = std::fs::canonicalize(dir).on(dir)?.parent() {
                fsync_dir(parent)?;
            }
            Ok(true)
        }
        Err(e) => Err(e).on(dir),
    }
}

/// Copies `runs` of the disk into `data` and returns the manifest's block list.
fn copy_blocks(
    disk: &Disk,
    disk_path: &Path,
    runs: &[(u64, u64)],
    data: &mut File,
    data_path: &Path,
    quiet: bool,
) -> CmdResult<Vec<Block>> {
    let total: u64 = runs.iter().map(|r| r.1).sum();
    let bar = Progress::bytes("backup", total * SECTOR, quiet);
    let mut buf = vec![0u8; (STEP * SECTOR) as usize];
    let mut out = Vec::with_capacity(runs.len());
    let mut offset = 0u64;
    for &(start, length) in runs {
        let mut crc = crc32fast::Hasher::new();
        let mut s = start;
        while s < start + length {
            interrupt::check()?;
            let n = STEP.min(start + length - s);
            let piece = &mut buf[..(n * SECTOR) as usize];
            disk.read(s, piece).on(disk_path)?;
            data.write_all(piece).on(data_path)?;
            crc.update(piece);
            bar.inc(n * SECTOR);
            s += n;
        }
        out.push(Block {
            start,
            length,
            data_offset: offset,
            crc32: crc.finalize(),
        });
        offset += length * SECTOR;
    }
    Ok(out)
}

fn source_info(disk: &Disk, path: &Path) -> CmdResult<SourceInfo> {
    let info = disk.info();
    let links = disk.links().on(path)?;
    Ok(SourceInfo {
        path: absolute(path).display().to_string(),
        create_type: links[0].create_type.clone(),
        cid: format!("{:08x}", links[0].cid),
        links: links.len(),
        uuid: info.uuid,
        adapter: info.adapter.map(|a| a.ddb_name().to_string()),
        hw_version: disk.metadata("virtualHWVersion").on(path)?,
    })
}

/// The manifest's `source` for an NBD export: its URI, and none of a VMDK's details.
fn export_info(uri: &Path) -> SourceInfo {
    SourceInfo {
        path: uri.display().to_string(),
        create_type: "nbd export".into(),
        cid: String::new(),
        links: 1,
        uuid: None,
        adapter: None,
        hw_version: None,
    }
}

fn absolute(path: &Path) -> std::path::PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

/// The earlier backup a new one builds on, and the change id its changes are relative to.
fn base_of(kind: Kind, base: Option<&Path>) -> CmdResult<Option<(Loaded, String)>> {
    let base_dir = match (kind, base) {
        (Kind::Full, _) => return Ok(None),
        (_, Some(b)) => b,
        (_, None) => return Err(Failure::Usage("--base is required".into())),
    };
    let loaded = manifest::load(base_dir)?;
    let parent = if kind == Kind::Differential {
        loaded.full()?
    } else {
        loaded
    };
    let Some(id) = parent.manifest.change_id.clone() else {
        return Err(Failure::NeedFull {
            file: parent.dir.join(MANIFEST),
            error: Error::ChangeIdUnknown(format!(
                "the {} backup {} recorded no change id (its disk did not track changes: \
                 `vixdisk changeid --on`, then do a full backup)",
                parent.manifest.kind.name(),
                parent.dir.display()
            )),
        });
    };
    Ok(Some((parent, id)))
}

/// Bad usage for what a backup of an NBD export cannot do. An export has no change ids, so
/// there is nothing an incremental or differential backup could be relative to (a dirty
/// bitmap, which `vixdisk map --changed-since NAME URI` lists, is tied to no backup); and a
/// snapshot is a local redo log.
fn refuse_remote(kind: Kind, uri: &Path, snapshot: Option<&Path>) -> CmdResult {
    if kind != Kind::Full {
        return Err(Failure::Usage(format!(
            "{} backups cannot be taken of the NBD export {}: an export has no change ids to \
             relate one to an earlier backup (only `backup full` reads an export)",
            kind.name(),
            uri.display()
        )));
    }
    remote::refuse_flag(
        uri,
        snapshot.is_some(),
        "--snapshot",
        "a snapshot is a local redo log over a VMDK; freeze the export on the server instead",
    )
}

/// Opens the disk read-only (a shared lock: no writer until the backup ends; a read-only
/// handle issues the change id of the content it reads). With `id_after_snapshot` the
/// snapshot is taken first on that handle, and the frozen disk opened read-only anew.
fn open_for_id(disk_path: &Path, id_after_snapshot: Option<&Path>) -> CmdResult<Disk> {
    let disk = open(disk_path, true, false)?;
    let Some(child) = id_after_snapshot else {
        return Ok(disk);
    };
    disk.create_child(child, DiskKind::MonolithicSparse, &mut |_| {})
        .on(child)?;
    close(disk, disk_path)?;
    open(disk_path, true, false)
}

/// What was decided on the disk before copying.
struct Plan {
    change_id: Option<String>,
    runs: Vec<(u64, u64)>,
    source: SourceInfo,
    capacity: u64,
}

/// Records the change id, lists the blocks and takes the snapshot, all on the read-only
/// handle the blocks are then read through (nothing can write the disk in between).
fn plan(
    disk: &Disk,
    disk_path: &Path,
    since: Option<&str>,
    snapshot: Option<&Path>,
) -> CmdResult<Plan> {
    if disk.is_remote() {
        // `take` let only a full backup without a snapshot through.
        return Ok(Plan {
            change_id: None,
            runs: allocated_blocks(disk).on(disk_path)?,
            source: export_info(disk_path),
            capacity: disk.capacity(),
        });
    }
    let change_id = match disk.change_id().map(|id| id.to_string()) {
        Ok(id) => Some(id),
        Err(e) if since.is_some() => return Err(since_failure(disk_path, e)),
        Err(Error::NotTracked(_)) => None,
        Err(e @ Error::ChangeIdUnknown(_)) => {
            vixDiskLib::log_warning(format!(
                "{e}; this full backup records no change id (`vixdisk changeid --off` then \
                 `--on` starts a new history)"
            ));
            None
        }
        Err(e) => return Err(e).on(disk_path),
    };
    let runs = match since {
        None => allocated_blocks(disk).on(disk_path)?,
        Some(id) => changed_blocks(disk, id).map_err(|e| since_failure(disk_path, e))?,
    };
    if let Some(child) = snapshot {
        disk.create_child(child, DiskKind::MonolithicSparse, &mut |_| {})
            .on(child)?;
    }
    Ok(Plan {
        change_id,
        runs,
        source: source_info(disk, disk_path)?,
        capacity: disk.capacity(),
    })
}

/// Takes a `kind` backup of the chain at `disk_path` into the new directory `dir`.
pub fn take(
    kind: Kind,
    disk_path: &Path,
    dir: &Path,
    base: Option<&Path>,
    snapshot: Option<&Path>,
    id_after_snapshot: bool,
    quiet: bool,
) -> CmdResult {
    remote::refuse_uri(dir, "the backup directory")?;
    if remote::is_uri(disk_path) {
        refuse_remote(kind, disk_path, snapshot)?;
    }
    // A directory that is not empty is refused before anything is printed or snapshotted
    // (prepare_dir checks again when it makes the directory).
    refuse_used_dir(dir)?;
    let base = base_of(kind, base)?;
    if let Some((parent, _)) = &base
        && kind == Kind::Differential
        && !quiet
    {
        say!(
            "differential since the full backup {}",
            parent.dir.display()
        );
    }
    let disk = if remote::is_uri(disk_path) {
        remote::open_source(disk_path)?
    } else {
        open_for_id(disk_path, snapshot.filter(|_| id_after_snapshot))?
    };
    let since = base.as_ref().map(|(_, id)| id.as_str());
    // Read-only from here to the end: the writer continues on the snapshot (whose open takes
    // the shared lock on this disk too) while we read the frozen disk.
    let planned = plan(
        &disk,
        disk_path,
        since,
        snapshot.filter(|_| !id_after_snapshot),
    );
    if let (Ok(p), false) = (&planned, quiet) {
        if let Some(child) = snapshot {
            say!("snapshot: {} now holds new writes", child.display());
        }
        say!(
            "change id: {}",
            p.change_id
                .as_deref()
                .unwrap_or(if remote::is_uri(disk_path) {
                    "none (an NBD export has no change ids)"
                } else {
                    "none (not tracked)"
                })
        );
        say!(
            "blocks: {} area(s), {} sectors {}",
            p.runs.len(),
            p.runs.iter().map(|r| r.1).sum::<u64>(),
            since.map_or("allocated".to_string(), |id| format!("changed since {id}"))
        );
    }
    let data_path = dir.join(DATA);
    let partial = manifest::partial_path(dir);
    let (mut created_dir, mut made_data) = (false, false);
    let result = with_disk(disk, disk_path, |disk| {
        let plan = planned?;
        created_dir = prepare_dir(dir)?;
        let mut data = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&data_path)
            .on(&data_path)?;
        made_data = true;
        let blocks = copy_blocks(disk, disk_path, &plan.runs, &mut data, &data_path, quiet)?;
        data.sync_all().on(&data_path)?;
        let parent = base.as_ref().map(|(p, id)| ParentRef {
            dir: manifest::relative_dir(&absolute(dir), &absolute(&p.dir))
                .display()
                .to_string(),
            path: absolute(&p.dir).display().to_string(),
            kind: p.manifest.kind,
            change_id: id.clone(),
            created_unix: p.manifest.created_unix,
        });
        let m = Manifest {
            format: manifest::MANIFEST_FORMAT.into(),
            version: manifest::MANIFEST_VERSION,
            kind,
            created_unix: now_unix(),
            source: plan.source,
            capacity_sectors: plan.capacity,
            chunk_sectors: CHUNK,
            change_id: plan.change_id,
            parent,
            data_file: DATA.into(),
            copied_sectors: blocks.iter().map(|b| b.length).sum(),
            blocks,
            manifest_crc32: None,
        };
        manifest::store(&m, dir)?;
        Ok(m)
    });
    let m = match result {
        Ok(m) => m,
        Err(e) => {
            // An unfinished backup is removed rather than left looking usable.
            if made_data {
                let _ = std::fs::remove_file(&partial);
                let _ = std::fs::remove_file(&data_path);
            }
            if created_dir {
                let _ = std::fs::remove_dir(dir);
            }
            return Err(e);
        }
    };
    let bytes = m.copied_sectors * SECTOR;
    if !quiet {
        say!(
            "copy: read {bytes} bytes from {}, wrote {bytes} bytes to {}",
            disk_path.display(),
            data_path.display()
        );
    }
    say!(
        "backed up {} into {}: {} of {} sectors in {} block(s) ({}{})",
        disk_path.display(),
        dir.display(),
        m.copied_sectors,
        m.capacity_sectors,
        m.blocks.len(),
        kind.name(),
        m.change_id
            .as_deref()
            .map_or(String::new(), |id| format!(", change id {id}"))
    );
    if let (Some(child), false) = (snapshot, quiet) {
        say!(
            "the snapshot stays: `vixdisk commit {}` deletes it once nothing writes it",
            child.display()
        );
    }
    Ok(())
}
