//! One file per command family; shared helpers for opening and closing disks.

pub mod backup;
pub mod check;
pub mod convert;
pub mod copy;
pub mod create;
pub mod info;
pub mod links;
pub mod map;
pub mod meta;
pub mod remote;
pub mod resize;

use std::path::Path;

use vixDiskLib::{Connection, Disk, OpenOptions};

use crate::failure::{CmdResult, OnFile};

/// Opens `path` (and its parents unless `single_link`).
pub fn open(path: &Path, read_only: bool, single_link: bool) -> CmdResult<Disk> {
    Connection::local()
        .open(
            path,
            &OpenOptions {
                read_only,
                single_link,
                ..Default::default()
            },
        )
        .on(path)
}

/// Opens `path` and its parents read-only; with `force_share` without the leaf's lock (a
/// writer may hold it), warning that the answer may be stale.
pub fn open_to_read(path: &Path, force_share: bool) -> CmdResult<Disk> {
    if !force_share {
        return open(path, true, false);
    }
    warn_force_share(path);
    Connection::local()
        .open(
            path,
            &OpenOptions {
                read_only: true,
                force_share: true,
                ..Default::default()
            },
        )
        .on(path)
}

/// The warning every `--force-share` read prints first.
pub fn warn_force_share(path: &Path) {
    crate::engine_log::warn(&format!(
        "{}: --force-share: read without a lock; if another process is writing the disk the \
         answer may be stale or inconsistent",
        path.display()
    ));
}

/// Refuses a new file whose directory does not exist, naming the path the user gave (the
/// engine would report the hidden temporary file it builds the target under).
pub fn target_dir_exists(target: &Path) -> CmdResult {
    let dir = match target.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if dir.is_dir() {
        return Ok(());
    }
    Err(crate::failure::Failure::Engine {
        file: target.to_path_buf(),
        error: vixDiskLib::Error::FileNotFound(dir.to_path_buf()),
    })
}

/// Flushes and closes `disk` cleanly (clears the unclean flag of links it wrote).
pub fn close(disk: Disk, path: &Path) -> CmdResult {
    disk.close().on(path)
}

/// Runs `work` on the open disk and closes it whatever happens, reporting the first error.
pub fn with_disk<T>(
    disk: Disk,
    path: &Path,
    work: impl FnOnce(&Disk) -> CmdResult<T>,
) -> CmdResult<T> {
    let result = work(&disk);
    let closed = close(disk, path);
    let value = result?;
    closed?;
    Ok(value)
}
