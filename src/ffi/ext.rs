//! Our additions to VMware's API, declared in `include/vixDiskLibExt.h` (generated from this
//! file alone) with the `VixDiskLibExt_` / `VIXDISKLIBEXT_` prefixes, so no future VMware
//! name can collide with them. Exported under their own symbol-version node.

use std::ffi::{c_char, c_void};

use super::args::{free_cstring, malloc_cstring, out_arg, path_arg, store};
use super::boundary::{guard, guard_void};
use super::handles::{DISKS, writable_connection};
use super::library::require_init;
use super::progress::progress_reporter;
use super::types::{
    Bool, VixDiskLibConnection, VixDiskLibHandle, VixDiskLibProgressFunc, VixError,
};
use crate::log_info;

/// Open flag for `VixDiskLib_Open`: a nonpersistent open. The handle is writable, but every
/// write goes to a private, temporary redo log (in the `tmpDirectory` of the InitEx config
/// file, else `$TMPDIR`, else `/tmp`) that vanishes at Close and when the process dies; the
/// disk itself is opened read-only with shared locks, so any number of nonpersistent users
/// (and read-only users) share it at once. VMware's open flags do not use this bit.
/// `VIXDISKLIB_FLAG_OPEN_READ_ONLY` or a read-only connection wins: the open is then plain
/// read-only. CreateChild, Attach (as parent), Shrink and Defragment refuse such handles.
pub const VIXDISKLIBEXT_FLAG_OPEN_NONPERSISTENT: u32 = 1 << 24;

/// Commits the redo log `childPath` into its immediate parent (Workstation's "Commit"):
/// every grain it stores is written into the parent, the parent gets a new CID, redo logs in
/// the child's directory that sit on the child are re-pointed to the parent, and the child's
/// files are deleted. Progress rises monotonically to 100.
///
/// Refused with nothing changed: the parent is open anywhere (`VIX_E_FILE_ALREADY_LOCKED`),
/// a file of the parent has no write-permission bits (`VIX_E_FILE_READ_ONLY`, even for
/// root), the parent is a kind we do not write (`VIX_E_NOT_SUPPORTED`, or
/// `VIX_E_FILE_READ_ONLY` for change-tracked extents), another disk in the child's or the
/// parent's directory depends on the parent (`VIX_E_OBJECT_IS_BUSY`), the child is open
/// (`VIX_E_FILE_ALREADY_LOCKED`) or has no parent (`VIX_E_INVALID_ARG`), the parent was
/// modified since the child was made (`VIX_E_DISK_CID_MISMATCH`). A commit interrupted by
/// a crash leaves the chain readable; calling Commit again finishes it.
#[unsafe(no_mangle)]
pub extern "C" fn VixDiskLibExt_Commit(
    connection: VixDiskLibConnection,
    childPath: *const c_char,
    progressFunc: VixDiskLibProgressFunc,
    progressCallbackData: *mut c_void,
) -> VixError {
    guard("VixDiskLibExt_Commit", || {
        require_init()?;
        let conn = writable_connection(connection as usize, "Commit")?;
        let path = path_arg(childPath, "childPath")?;
        conn.reach.commit(
            &path,
            &mut progress_reporter(progressFunc, progressCallbackData),
        )?;
        log_info(format!("committed {} into its parent", path.display()));
        Ok(())
    })
}

/// Turns change tracking on (`enable` TRUE) or off for the closed disk at `path` (its leaf
/// link; any kind we write). Turning it on starts a new history, so change ids of an earlier
/// one are refused afterwards; turning it off deletes the tracking data. Tracking data lives
/// in `<file>.vdltrack` beside the descriptor, named by the DDB key
/// `vixdisklibext.changeTrackingFile` (VMware's `changeTrackPath` is never written), and
/// takes 48 KiB per GiB of capacity plus 1 KiB, however many ids are issued.
#[unsafe(no_mangle)]
pub extern "C" fn VixDiskLibExt_SetChangeTracking(
    connection: VixDiskLibConnection,
    path: *const c_char,
    enable: Bool,
) -> VixError {
    guard("VixDiskLibExt_SetChangeTracking", || {
        require_init()?;
        let conn = writable_connection(connection as usize, "SetChangeTracking")?;
        let path = path_arg(path, "path")?;
        conn.reach.set_change_tracking(&path, enable != 0)
    })
}

/// Returns, in `*changeId`, the change id of the content the handle sees now, in vSphere's
/// shape (`"52 ab f5 21 86 ad f2 ff-5b ef c0 f2 3b 53 eb 3b/78"`): two calls with no write
/// between them give the same id, a write in between gives a new one. One id names one
/// content: after `VixDiskLib_CreateChild` the frozen parent has its final id (from any
/// handle, read-only ones included) and the child's later contents get ids of their own.
/// Read-only handles issue ids too (only the tracking file is written, under its own lock;
/// readers of one content get one id); `VIX_E_FILE_READ_ONLY` only when the tracking file
/// cannot be written. Free it with `VixDiskLibExt_FreeChangeId`. A disk that does not track
/// changes: `VIX_E_DISK_NOTSUPPORTED`; damaged tracking data: `VIX_E_OBJECT_NOT_FOUND`.
#[unsafe(no_mangle)]
pub extern "C" fn VixDiskLibExt_GetChangeId(
    diskHandle: VixDiskLibHandle,
    changeId: *mut *mut c_char,
) -> VixError {
    guard("VixDiskLibExt_GetChangeId", || {
        require_init()?;
        let out = out_arg(changeId, "changeId")?;
        store(out, std::ptr::null_mut());
        let h = DISKS.get(diskHandle as usize)?;
        let id = h.disk.change_id()?;
        store(out, malloc_cstring(id.as_str()));
        Ok(())
    })
}

/// Frees a change id from `VixDiskLibExt_GetChangeId` (NULL is allowed).
#[unsafe(no_mangle)]
pub extern "C" fn VixDiskLibExt_FreeChangeId(changeId: *mut c_char) {
    guard_void("VixDiskLibExt_FreeChangeId", || free_cstring(changeId));
}
