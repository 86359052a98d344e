//! Our additions to VMware's API, declared in `include/vixDiskLibExt.h` (generated from this
//! file alone) with the `VixDiskLibExt_` / `VIXDISKLIBEXT_` prefixes, so no future VMware
//! name can collide with them. Exported under their own symbol-version node.

use std::ffi::{c_char, c_void};

use super::args::path_arg;
use super::boundary::guard;
use super::disk::progress_reporter;
use super::handles::CONNECTIONS;
use super::types::{VixDiskLibConnection, VixDiskLibProgressFunc, VixError};
use crate::chain::commit::commit;
use crate::error::Error;
use crate::log;

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
        let conn = CONNECTIONS.get(connection as usize)?;
        if conn.read_only {
            return Err(Error::ReadOnly("the connection is read-only".into()));
        }
        let path = path_arg(childPath, "childPath")?;
        commit(
            &path,
            &mut progress_reporter(progressFunc, progressCallbackData),
        )?;
        log::info(format!("committed {} into its parent", path.display()));
        Ok(())
    })
}
