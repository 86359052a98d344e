//! Chain management: CreateChild, Attach, IsAttachPossible, Unlink, Rename.

use std::ffi::{c_char, c_void};

use super::args::path_arg;
use super::boundary::guard;
use super::disk::disk_kind;
use super::handles::{DISKS, retire, writable_connection};
use super::library::require_init;
use super::progress::progress_reporter;
use super::types::*;
use crate::Connection;
use crate::error::{Error, Result};
use crate::log;

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
        let disk = h.disk.local("CreateChild")?;
        let path = path_arg(childPath, "childPath")?;
        let kind = disk_kind(diskType)?;
        let mut progress = progress_reporter(progressFunc, progressCallbackData);
        progress(0);
        h.pending.wait_idle();
        disk.create_child(&path, kind)?;
        progress(100);
        log::info(format!("created child {}", path.display()));
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
    p.disk
        .local("IsAttachPossible")?
        .check_attach(c.disk.local("IsAttachPossible")?)
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
                d.disk.local("Attach")?;
            }
        }
        // From here on the parent handle is consumed, whatever happens (as in VDDK).
        let p = DISKS.remove(parent as usize)?;
        retire(parent as usize);
        p.pending.wait_idle();
        let result = DISKS.get(child as usize).and_then(|c| {
            c.pending.wait_idle();
            p.disk
                .local("Attach")?
                .attach_under(c.disk.local("Attach")?)
        });
        if result.is_err() {
            // The parent's links stayed with it: release them now, as its handle is gone.
            if let Err(e) = p.disk.close() {
                log::warn(format!(
                    "VixDiskLib_Attach: closing the parent after failure: {e}"
                ));
            }
        }
        result
    })
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
        writable_connection(connection as usize, "Unlink")?;
        let path = path_arg(path, "path")?;
        Connection::local().unlink(&path)
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
        Connection::local().rename(&src, &dst)
    })
}
