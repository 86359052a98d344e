//! The VDDK 9.0 change API: OpenEx (an open that remembers a change id), QueryChangedAreas /
//! FreeChangedAreas, and GetConnectionFromDisk. Tracking itself is `chain::tracking`.

use std::mem::size_of;

use super::alloc::{Kind, calloc_owned, free_owned, is_owned};
use super::args::{opt_str_arg, out_arg, store, str_arg};
use super::blocks::block_list;
use super::boundary::{guard, guard_void};
use super::disk::open_disk;
use super::handles::DISKS;
use super::library::require_init;
use super::types::*;
use crate::{ChangeId, Error, log_verbose, log_warning};

/// Most sectors one QueryChangedAreas answer covers (2^31 sectors, 1 TiB), so the area list
/// of one answer stays bounded however large the disk is.
const CHANGED_AREAS_PIECE_SECTORS: u64 = 1 << 31;

/// Opens a disk like Open (`path` and `flags` as there). A non-empty `changeId` is
/// remembered by the handle: QueryChangedAreas then lists what changed since it (`"*"`: the
/// allocated areas). The id is checked by QueryChangedAreas, not here, so a disk can be
/// opened for a full backup whatever id the caller kept. NULL or "" is a plain Open.
#[unsafe(no_mangle)]
pub extern "C" fn VixDiskLib_OpenEx(
    connection: VixDiskLibConnection,
    openParams: *const VixDiskLibOpenParams,
    diskHandle: *mut VixDiskLibHandle,
) -> VixError {
    guard("VixDiskLib_OpenEx", || {
        let out = out_arg(diskHandle, "diskHandle")?;
        store(out, std::ptr::null_mut());
        require_init()?;
        if openParams.is_null() {
            return Err(Error::InvalidArg("openParams is NULL".into()));
        }
        // SAFETY: `openParams` is non-NULL and, by the API contract, points at a caller
        // VixDiskLibOpenParams for the duration of the call; fields are read by address.
        let (path, flags, change_id) = unsafe {
            (
                std::ptr::addr_of!((*openParams).path).read(),
                std::ptr::addr_of!((*openParams).flags).read(),
                std::ptr::addr_of!((*openParams).changeId).read(),
            )
        };
        let path = str_arg(path, "openParams->path")?;
        let change_id = opt_str_arg(change_id, "openParams->changeId")?
            .filter(|id| !id.is_empty())
            .map(ChangeId::new);
        let token = open_disk(connection, path, flags, change_id)?;
        store(out, token as VixDiskLibHandle);
        Ok(())
    })
}

/// Answers one piece of the disk: from `startOffset`, `length` = the rest of the disk but at
/// most 2^31 sectors; `areas` = the areas in it that changed since the handle's change id
/// (grain-granular, 64 KiB), ascending. Loop with `startOffset += length` until the capacity
/// is reached. Free the answer with FreeChangedAreas. Start at or past the end, or a handle
/// opened without a change id: VIX_E_INVALID_ARG; an id of another or an earlier tracking
/// history: VIX_E_OBJECT_NOT_FOUND; a disk that does not track changes (ids other than "*"):
/// VIX_E_DISK_NOTSUPPORTED.
#[unsafe(no_mangle)]
pub extern "C" fn VixDiskLib_QueryChangedAreas(
    diskHandle: VixDiskLibHandle,
    queryParams: *const VixDiskLibQueryChangedAreaParams,
    changeList: *mut *mut VixDiskLibDiskChangeInfo,
) -> VixError {
    guard("VixDiskLib_QueryChangedAreas", || {
        require_init()?;
        let out = out_arg(changeList, "changeList")?;
        store(out, std::ptr::null_mut());
        let h = DISKS.get(diskHandle as usize)?;
        if queryParams.is_null() {
            return Err(Error::InvalidArg("queryParams is NULL".into()));
        }
        // SAFETY: `queryParams` is non-NULL and, by the API contract, points at a caller
        // VixDiskLibQueryChangedAreaParams for the duration of the call.
        let start = unsafe { std::ptr::addr_of!((*queryParams).startOffset).read() };
        let Some(since) = h.change_id.as_ref() else {
            return Err(Error::InvalidArg(
                "the disk was not opened with a change id (OpenEx with openParams->changeId)"
                    .into(),
            ));
        };
        let capacity = h.disk.capacity();
        if start >= capacity {
            return Err(Error::InvalidArg(format!(
                "startOffset {start} is at or past the end of the disk ({capacity} sectors)"
            )));
        }
        let length = (capacity - start).min(CHANGED_AREAS_PIECE_SECTORS);
        let runs = h.disk.changed_areas(since, start, length)?;
        log_verbose(format!(
            "changed areas since {since} in [{start}, {}): {} run(s)",
            start + length,
            runs.len()
        ));
        let areas = block_list(&runs)?;
        let info = match calloc_owned(size_of::<VixDiskLibDiskChangeInfo>(), Kind::ChangeInfo) {
            Ok(p) => p.cast::<VixDiskLibDiskChangeInfo>(),
            Err(e) => {
                free_owned(areas.cast(), Kind::BlockList);
                return Err(e);
            }
        };
        store(
            info,
            VixDiskLibDiskChangeInfo {
                startOffset: start,
                length,
                areas,
            },
        );
        store(out, info);
        Ok(())
    })
}

/// Frees an answer of QueryChangedAreas with its area list (NULL is allowed; pointers that
/// are not such answers are ignored with a log line).
#[unsafe(no_mangle)]
pub extern "C" fn VixDiskLib_FreeChangedAreas(changeList: *mut VixDiskLibDiskChangeInfo) {
    guard_void("VixDiskLib_FreeChangedAreas", || {
        if changeList.is_null() {
            return;
        }
        if !is_owned(changeList.cast(), Kind::ChangeInfo) {
            log_warning("VixDiskLib_FreeChangedAreas: not an answer of QueryChangedAreas; ignored");
            return;
        }
        // SAFETY: `changeList` is a live VixDiskLibDiskChangeInfo this library allocated.
        let areas = unsafe { std::ptr::addr_of!((*changeList).areas).read() };
        free_owned(changeList.cast(), Kind::ChangeInfo);
        // A list the caller already freed with FreeBlockList is no longer ours: skipped.
        free_owned(areas.cast(), Kind::BlockList);
    });
}

/// The connection a disk handle was opened through.
#[unsafe(no_mangle)]
pub extern "C" fn VixDiskLib_GetConnectionFromDisk(
    diskHandle: VixDiskLibHandle,
    connection: *mut VixDiskLibConnection,
) -> VixError {
    guard("VixDiskLib_GetConnectionFromDisk", || {
        require_init()?;
        let out = out_arg(connection, "connection")?;
        store(out, std::ptr::null_mut());
        let h = DISKS.get(diskHandle as usize)?;
        store(out, h.connection as VixDiskLibConnection);
        Ok(())
    })
}
