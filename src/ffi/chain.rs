//! Chain management: CreateChild, Attach, IsAttachPossible, Unlink, Rename.

use std::ffi::{c_char, c_void};
use std::sync::Arc;

use super::args::path_arg;
use super::boundary::guard;
use super::disk::disk_kind;
use super::handles::{DISKS, DiskHandle, retire, sole_owner, writable_connection};
use super::library::require_init;
use super::progress::progress_reporter;
use super::types::*;
use crate::{Error, Result, log_info};

/// Creates a sparse child (redo log) over the open disk's leaf at `childPath`. The child
/// records the leaf's CID and a parent hint relative to itself. Afterwards the parent handle
/// refuses writes with VIX_E_FILE_READ_ONLY: open the child to write. `diskType` is
/// VIXDISKLIB_DISK_MONOLITHIC_SPARSE or VIXDISKLIB_DISK_SPLIT_SPARSE (else VIX_E_INVALID_ARG).
#[unsafe(no_mangle)]
pub extern "C" fn VixDiskLib_CreateChild(
    diskHandle: VixDiskLibHandle,
    childPath: *const c_char,
    diskType: DiskTypeArg,
    progressFunc: VixDiskLibProgressFunc,
    progressCallbackData: *mut c_void,
) -> VixError {
    guard("VixDiskLib_CreateChild", || {
        require_init()?;
        let h = DISKS.get(diskHandle as usize)?;
        // A remote disk is refused before the other arguments are looked at.
        h.disk.require_local("CreateChild")?;
        let path = path_arg(childPath, "childPath")?;
        let kind = disk_kind(diskType)?;
        let mut progress = progress_reporter(progressFunc, progressCallbackData);
        h.pending.wait_idle();
        h.disk.create_child(&path, kind, &mut progress)?;
        log_info(format!("created child {}", path.display()));
        Ok(())
    })
}

fn attach_pair(parent: VixDiskLibHandle, child: VixDiskLibHandle) -> Result<()> {
    if parent == child {
        return Err(Error::InvalidArg(
            "parent and child are the same handle".into(),
        ));
    }
    let p = DISKS.get(parent as usize)?;
    let c = DISKS.get(child as usize)?;
    p.disk.can_attach(&c.disk)
}

/// VIX_OK if `child` (opened SINGLE_LINK, writable, same capacity) can be attached to `parent`.
#[unsafe(no_mangle)]
pub extern "C" fn VixDiskLib_IsAttachPossible(
    parent: VixDiskLibHandle,
    child: VixDiskLibHandle,
) -> VixError {
    guard("VixDiskLib_IsAttachPossible", || {
        require_init()?;
        attach_pair(parent, child)
    })
}

/// Attaches `child` on top of `parent`'s chain. The child handle then reads the combined chain
/// and the link is persisted in the child's descriptor (parentCID, parentFileNameHint). The
/// parent handle is consumed whether or not the call succeeds (as in VDDK); closing it later is
/// a harmless no-op.
#[unsafe(no_mangle)]
pub extern "C" fn VixDiskLib_Attach(parent: VixDiskLibHandle, child: VixDiskLibHandle) -> VixError {
    guard("VixDiskLib_Attach", || {
        require_init()?;
        if parent == child {
            return Err(Error::InvalidArg(
                "parent and child are the same handle".into(),
            ));
        }
        // Remote disks have no redo logs: refused before anything is consumed.
        for h in [parent, child] {
            if let Ok(d) = DISKS.get(h as usize) {
                d.disk.require_local("Attach")?;
            }
        }
        // From here on the parent handle is consumed, whatever happens (as in VDDK).
        let p = DISKS.remove(parent as usize)?;
        retire(parent as usize);
        p.pending.wait_idle();
        let c = DISKS.get(child as usize);
        if let Ok(c) = &c {
            c.pending.wait_idle();
        }
        // The parent's disk moves into the attach, which consumes it: on failure its links
        // are released with it, as its handle is gone.
        let parent_disk = take_disk(p)?;
        parent_disk.attach(&c?.disk)
    })
}

/// The disk of a handle that was taken out of `DISKS`, to consume, once other threads left
/// their calls on it (`sole_owner`). Fails if one stays inside past that wait (then the disk is
/// released when that call returns).
fn take_disk(h: Arc<DiskHandle>) -> Result<crate::Disk> {
    sole_owner(h)
        .map(|h| h.disk)
        .map_err(|_| Error::InUse("the parent handle is in use by another thread".into()))
}

/// Deletes every file of the disk link at `path` (which must not be open). A parent's
/// children are orphaned; deleting a child leaves its parent untouched.
#[unsafe(no_mangle)]
pub extern "C" fn VixDiskLib_Unlink(
    connection: VixDiskLibConnection,
    path: *const c_char,
) -> VixError {
    guard("VixDiskLib_Unlink", || {
        require_init()?;
        let conn = writable_connection(connection as usize, "Unlink")?;
        let path = path_arg(path, "path")?;
        conn.reach.unlink(&path)
    })
}

/// Renames a closed disk and all its extent files, rewriting the descriptor. Children that
/// name the old path in `parentFileNameHint` will not find it any more.
#[unsafe(no_mangle)]
pub extern "C" fn VixDiskLib_Rename(
    srcFileName: *const c_char,
    dstFileName: *const c_char,
) -> VixError {
    guard("VixDiskLib_Rename", || {
        require_init()?;
        let src = path_arg(srcFileName, "srcFileName")?;
        let dst = path_arg(dstFileName, "dstFileName")?;
        crate::Connection::local().rename(&src, &dst)
    })
}
