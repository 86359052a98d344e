//! Maintenance: Clone, SpaceNeededForClone, Grow, Shrink, Defragment, CheckRepair.

use std::ffi::{c_char, c_void};

use super::args::{out_arg, path_arg, store};
use super::boundary::guard;
use super::disk::{adapter_from_c, create_params, disk_kind};
use super::handles::{DISKS, local_connection, writable_connection};
use super::library::require_init;
use super::progress::progress_reporter;
use super::types::*;
use crate::{CreateOptions, DiskKind, log_info};

/// Copies the flattened content of the chain at `srcPath` into a new disk at `dstPath` of the
/// type, adapter and hardware version in `vixCreateParams` (its capacity is taken from the
/// source). Unallocated source grains stay unallocated in sparse targets. `overWrite` FALSE
/// refuses an existing target (VIX_E_FILE_ALREADY_EXISTS). Progress rises to 100.
#[unsafe(no_mangle)]
pub extern "C" fn VixDiskLib_Clone(
    dstConnection: VixDiskLibConnection,
    dstPath: *const c_char,
    srcConnection: VixDiskLibConnection,
    srcPath: *const c_char,
    vixCreateParams: *const VixDiskLibCreateParams,
    progressFunc: VixDiskLibProgressFunc,
    progressCallbackData: *mut c_void,
    overWrite: Bool,
) -> VixError {
    guard("VixDiskLib_Clone", || {
        require_init()?;
        let dst_conn = writable_connection(dstConnection as usize, "Clone")?;
        local_connection(srcConnection as usize, "Clone")?;
        let dst = path_arg(dstPath, "dstPath")?;
        let src = path_arg(srcPath, "srcPath")?;
        let (disk_type, adapter_type, hw, _) = create_params(vixCreateParams)?;
        let spec = CreateOptions {
            kind: disk_kind(disk_type)?,
            capacity: 0,
            adapter: adapter_from_c(adapter_type)?,
            hw_version: hw,
        };
        let mut progress = progress_reporter(progressFunc, progressCallbackData);
        dst_conn
            .reach
            .clone_disk(&src, &dst, &spec, overWrite != 0, &mut progress)?;
        log_info(format!(
            "cloned {} to {} ({:?})",
            src.display(),
            dst.display(),
            spec.kind
        ));
        Ok(())
    })
}

/// Bytes a clone of the open disk into `cloneDiskType` needs at most
/// (VIXDISKLIB_DISK_UNKNOWN: a monolithic sparse clone).
#[unsafe(no_mangle)]
pub extern "C" fn VixDiskLib_SpaceNeededForClone(
    diskHandle: VixDiskLibHandle,
    cloneDiskType: DiskTypeArg,
    spaceNeeded: *mut u64,
) -> VixError {
    guard("VixDiskLib_SpaceNeededForClone", || {
        require_init()?;
        let out = out_arg(spaceNeeded, "spaceNeeded")?;
        let h = DISKS.get(diskHandle as usize)?;
        let kind = if cloneDiskType == 256 {
            DiskKind::MonolithicSparse
        } else {
            disk_kind(cloneDiskType)?
        };
        store(out, h.disk.space_needed_for_clone(kind)?);
        Ok(())
    })
}

/// Grows a closed base disk to `capacity` sectors (sparse: larger grain directory; flat: longer
/// file; split: more extents); `updateGeometry` recomputes the DDB geometry.
#[unsafe(no_mangle)]
pub extern "C" fn VixDiskLib_Grow(
    connection: VixDiskLibConnection,
    path: *const c_char,
    capacity: VixDiskLibSectorType,
    updateGeometry: Bool,
    progressFunc: VixDiskLibProgressFunc,
    progressCallbackData: *mut c_void,
) -> VixError {
    guard("VixDiskLib_Grow", || {
        require_init()?;
        let conn = writable_connection(connection as usize, "Grow")?;
        let path = path_arg(path, "path")?;
        let mut progress = progress_reporter(progressFunc, progressCallbackData);
        conn.reach
            .grow(&path, capacity, updateGeometry != 0, &mut progress)
    })
}

/// Releases the grains of the open (writable) sparse leaf that hold only zeros and hide no
/// parent data; the file gets smaller, capacity and content stay the same.
#[unsafe(no_mangle)]
pub extern "C" fn VixDiskLib_Shrink(
    diskHandle: VixDiskLibHandle,
    progressFunc: VixDiskLibProgressFunc,
    progressCallbackData: *mut c_void,
) -> VixError {
    guard("VixDiskLib_Shrink", || {
        require_init()?;
        let h = DISKS.get(diskHandle as usize)?;
        h.disk.require_local("Shrink")?;
        h.pending.wait_idle();
        let mut progress = progress_reporter(progressFunc, progressCallbackData);
        h.disk.shrink(&mut progress).map(drop)
    })
}

/// Rewrites the open sparse leaf's grains in LBA order (a flat disk: VIX_OK, unchanged).
#[unsafe(no_mangle)]
pub extern "C" fn VixDiskLib_Defragment(
    diskHandle: VixDiskLibHandle,
    progressFunc: VixDiskLibProgressFunc,
    progressCallbackData: *mut c_void,
) -> VixError {
    guard("VixDiskLib_Defragment", || {
        require_init()?;
        let h = DISKS.get(diskHandle as usize)?;
        h.disk.require_local("Defragment")?;
        h.pending.wait_idle();
        let mut progress = progress_reporter(progressFunc, progressCallbackData);
        h.disk.defragment(&mut progress)
    })
}

/// Checks a disk's metadata (header, descriptor, grain directories and tables against their
/// redundant copies, entries past the end of file, into metadata or shared, missing or short
/// extents, the unclean-shutdown flag); with `repair`, fixes what can be fixed without losing
/// data and logs each action. VIX_OK: clean or fully repaired; VIX_E_DISK_NEEDSREPAIR: problems
/// found and left; VIX_E_DISK_CANTREPAIR: problems that cannot be repaired. streamOptimized
/// disks are checked marker by marker; a damaged one (cut short, footer or tables lost) is
/// salvaged from its complete grains; one holding what no repair can account for (unknown
/// markers, bad grains) gives VIX_E_DISK_INVALIDDISK and is never rewritten.
#[unsafe(no_mangle)]
pub extern "C" fn VixDiskLib_CheckRepair(
    connection: VixDiskLibConnection,
    filename: *const c_char,
    repair: Bool,
) -> VixError {
    guard("VixDiskLib_CheckRepair", || {
        require_init()?;
        let conn = if repair != 0 {
            writable_connection(connection as usize, "CheckRepair")?
        } else {
            local_connection(connection as usize, "CheckRepair")?
        };
        let path = path_arg(filename, "filename")?;
        // The check logs every problem and every repair it made.
        conn.reach.check(&path, repair != 0)
    })
}
