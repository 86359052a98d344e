//! `vixdisk grow`, `shrink`, `defragment`.

use std::path::Path;

use vixDiskLib::Connection;

use super::{open, with_disk};
use crate::failure::{CmdResult, OnFile};
use crate::units::{SECTOR, human_bytes};

/// Grows the base disk at `path` to `size` bytes.
pub fn grow(path: &Path, size: u64, keep_geometry: bool) -> CmdResult {
    // Grow also extends the change history (the new sectors count as changed), as Grow
    // through the C API does.
    Connection::local()
        .grow(path, size / SECTOR, !keep_geometry, &mut |_| {})
        .on(path)?;
    say!("grew {} to {}", path.display(), human_bytes(size));
    Ok(())
}

/// Rewrites the disk's leaf in LBA order; `drop_zeros` also releases all-zero grains.
/// The engine replaces each extent file atomically, so an interruption leaves the old file.
pub fn compact(path: &Path, drop_zeros: bool) -> CmdResult {
    let released = with_disk(open(path, false, false)?, path, |disk| {
        if drop_zeros {
            disk.shrink(&mut |_| {}).on(path)
        } else {
            disk.defragment(&mut |_| {}).on(path).map(|()| 0)
        }
    })?;
    if drop_zeros {
        say!("shrank {}: released {released} grain(s)", path.display());
    } else {
        say!("defragmented {}", path.display());
    }
    Ok(())
}
