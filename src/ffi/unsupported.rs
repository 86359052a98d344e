//! Functions whose implementation has not landed yet: each returns VIX_E_NOT_SUPPORTED and
//! says so in the log, so no caller mistakes a missing feature for success.

use std::ffi::{c_char, c_void};

use super::boundary::guard;
use super::types::*;
use crate::error::Error;

fn not_yet(name: &str) -> Result<(), Error> {
    Err(Error::NotSupported(format!(
        "{name} is not implemented in this version of vixdisklib"
    )))
}

/// Copies a disk chain into a new disk (not implemented yet).
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
    let _ = (
        dstConnection,
        dstPath,
        srcConnection,
        srcPath,
        vixCreateParams,
    );
    let _ = (progressFunc, progressCallbackData, overWrite);
    guard("VixDiskLib_Clone", || not_yet("Clone"))
}

/// Predicts the size of a clone (not implemented yet).
#[unsafe(no_mangle)]
pub extern "C" fn VixDiskLib_SpaceNeededForClone(
    diskHandle: VixDiskLibHandle,
    cloneDiskType: DiskTypeArg,
    spaceNeeded: *mut u64,
) -> VixError {
    let _ = (diskHandle, cloneDiskType, spaceNeeded);
    guard("VixDiskLib_SpaceNeededForClone", || {
        not_yet("SpaceNeededForClone")
    })
}

/// Grows a closed disk (not implemented yet).
#[unsafe(no_mangle)]
pub extern "C" fn VixDiskLib_Grow(
    connection: VixDiskLibConnection,
    path: *const c_char,
    capacity: VixDiskLibSectorType,
    updateGeometry: Bool,
    progressFunc: VixDiskLibProgressFunc,
    progressCallbackData: *mut c_void,
) -> VixError {
    let _ = (
        connection,
        path,
        capacity,
        updateGeometry,
        progressFunc,
        progressCallbackData,
    );
    guard("VixDiskLib_Grow", || not_yet("Grow"))
}

/// Releases all-zero grains of a sparse disk (not implemented yet).
#[unsafe(no_mangle)]
pub extern "C" fn VixDiskLib_Shrink(
    diskHandle: VixDiskLibHandle,
    progressFunc: VixDiskLibProgressFunc,
    progressCallbackData: *mut c_void,
) -> VixError {
    let _ = (diskHandle, progressFunc, progressCallbackData);
    guard("VixDiskLib_Shrink", || not_yet("Shrink"))
}

/// Rewrites grains in LBA order (not implemented yet).
#[unsafe(no_mangle)]
pub extern "C" fn VixDiskLib_Defragment(
    diskHandle: VixDiskLibHandle,
    progressFunc: VixDiskLibProgressFunc,
    progressCallbackData: *mut c_void,
) -> VixError {
    let _ = (diskHandle, progressFunc, progressCallbackData);
    guard("VixDiskLib_Defragment", || not_yet("Defragment"))
}

/// Checks (and optionally repairs) a sparse disk's metadata (not implemented yet).
#[unsafe(no_mangle)]
pub extern "C" fn VixDiskLib_CheckRepair(
    connection: VixDiskLibConnection,
    filename: *const c_char,
    repair: Bool,
) -> VixError {
    let _ = (connection, filename, repair);
    guard("VixDiskLib_CheckRepair", || not_yet("CheckRepair"))
}
