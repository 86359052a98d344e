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
pub mod resize;

use std::path::Path;

use vixDiskLib::chain::{Disk, OpenOptions};

use crate::failure::{CmdResult, OnFile};

/// Opens `path` (and its parents unless `single_link`).
pub fn open(path: &Path, read_only: bool, single_link: bool) -> CmdResult<Disk> {
    Disk::open(
        path,
        OpenOptions {
            read_only,
            single_link,
        },
    )
    .on(path)
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
