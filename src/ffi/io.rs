//! Sector I/O: Read, Write, ReadAsync, WriteAsync, Wait, Flush.

use std::ffi::c_void;
use std::sync::Arc;

use super::args::{buf, buf_mut, sector_bytes};
use super::boundary::{guard, guard_code};
use super::codes::{VIX_ASYNC, VIX_OK};
use super::errors::to_vix;
use super::handles::{DISKS, DiskHandle};
use super::library::require_init;
use super::types::{VixDiskLibCompletionCB, VixDiskLibHandle, VixDiskLibSectorType, VixError};
use crate::{Completion, Error, IoBuf, log_warning};

/// Reads `numSectors` sectors from `startSector` into `readBuffer` (numSectors × 512 bytes).
/// Unallocated sectors read as zeros; sectors past the end give VIX_E_DISK_OUTOFRANGE.
#[unsafe(no_mangle)]
pub extern "C" fn VixDiskLib_Read(
    diskHandle: VixDiskLibHandle,
    startSector: VixDiskLibSectorType,
    numSectors: VixDiskLibSectorType,
    readBuffer: *mut u8,
) -> VixError {
    guard("VixDiskLib_Read", || {
        require_init()?;
        let h = DISKS.get(diskHandle as usize)?;
        h.disk.check_range(startSector, numSectors)?;
        let out = buf_mut(readBuffer, sector_bytes(numSectors)?, "readBuffer")?;
        h.disk.read(startSector, out)
    })
}

/// Writes `numSectors` sectors from `writeBuffer` at `startSector` (into the chain's leaf).
#[unsafe(no_mangle)]
pub extern "C" fn VixDiskLib_Write(
    diskHandle: VixDiskLibHandle,
    startSector: VixDiskLibSectorType,
    numSectors: VixDiskLibSectorType,
    writeBuffer: *const u8,
) -> VixError {
    guard("VixDiskLib_Write", || {
        require_init()?;
        let h = DISKS.get(diskHandle as usize)?;
        h.disk.check_range(startSector, numSectors)?;
        let data = buf(writeBuffer, sector_bytes(numSectors)?, "writeBuffer")?;
        h.disk.write(startSector, data)
    })
}

/// Starts an asynchronous request on the handle's disk (`start` gets the completion to hand
/// it) and adapts its completion to the C callback: `callback(cbData, result)` runs exactly
/// once, on a library thread, unless starting fails (then it never runs).
fn start_async(
    name: &'static str,
    h: Arc<DiskHandle>,
    callback: VixDiskLibCompletionCB,
    cb_data: *mut c_void,
    start: impl FnOnce(&DiskHandle, Completion) -> Result<(), Error>,
) -> Result<VixError, Error> {
    let cb_data = cb_data as usize;
    h.pending.begin();
    let pending = Arc::clone(&h.pending);
    let finish: Completion = Box::new(move |result| {
        let code = match result {
            Ok(()) => VIX_OK,
            Err(e) => {
                log_warning(format!("{name}: {e}"));
                to_vix(&e)
            }
        };
        if let Some(cb) = callback {
            // SAFETY: the caller registered this callback and data for this request.
            unsafe { cb(cb_data as *mut c_void, code) };
        }
        pending.end();
    });
    match start(&h, finish) {
        Ok(()) => Ok(VIX_ASYNC),
        Err(e) => {
            h.pending.end();
            Err(e)
        }
    }
}

/// Starts a read; returns VIX_ASYNC when accepted, after which `callback(cbData, result)` runs
/// exactly once on a library thread, whether or not the caller ever calls Wait. Invalid
/// arguments are reported immediately (no callback). The buffer must stay valid until then.
#[unsafe(no_mangle)]
pub extern "C" fn VixDiskLib_ReadAsync(
    diskHandle: VixDiskLibHandle,
    startSector: VixDiskLibSectorType,
    numSectors: VixDiskLibSectorType,
    readBuffer: *mut u8,
    callback: VixDiskLibCompletionCB,
    cbData: *mut c_void,
) -> VixError {
    guard_code("VixDiskLib_ReadAsync", || {
        require_init()?;
        let h = DISKS.get(diskHandle as usize)?;
        h.disk.check_range(startSector, numSectors)?;
        let len = sector_bytes(numSectors)?;
        buf_mut(readBuffer, len, "readBuffer")?;
        // SAFETY: `readBuffer` is non-NULL with room for `len` bytes (checked above), and
        // VDDK's contract keeps it valid and untouched until the callback ran.
        let out = unsafe { IoBuf::from_raw_mut(readBuffer, len) };
        start_async("VixDiskLib_ReadAsync", h, callback, cbData, |h, f| {
            h.disk.read_async(startSector, out, f)
        })
    })
}

/// Starts a write; same completion rules as ReadAsync.
#[unsafe(no_mangle)]
pub extern "C" fn VixDiskLib_WriteAsync(
    diskHandle: VixDiskLibHandle,
    startSector: VixDiskLibSectorType,
    numSectors: VixDiskLibSectorType,
    writeBuffer: *const u8,
    callback: VixDiskLibCompletionCB,
    cbData: *mut c_void,
) -> VixError {
    guard_code("VixDiskLib_WriteAsync", || {
        require_init()?;
        let h = DISKS.get(diskHandle as usize)?;
        h.disk.check_range(startSector, numSectors)?;
        let len = sector_bytes(numSectors)?;
        buf(writeBuffer, len, "writeBuffer")?;
        // SAFETY: `writeBuffer` is non-NULL with `len` readable bytes (checked above), and
        // VDDK's contract keeps it valid and unchanged until the callback ran.
        let data = unsafe { IoBuf::from_raw(writeBuffer, len) };
        start_async("VixDiskLib_WriteAsync", h, callback, cbData, |h, f| {
            h.disk.write_async(startSector, data, f)
        })
    })
}

/// Waits until every asynchronous request on the handle has completed (callbacks included).
#[unsafe(no_mangle)]
pub extern "C" fn VixDiskLib_Wait(diskHandle: VixDiskLibHandle) -> VixError {
    guard("VixDiskLib_Wait", || {
        require_init()?;
        DISKS.get(diskHandle as usize)?.pending.wait_idle();
        Ok(())
    })
}

/// Makes every completed write durable: grain data, then grain tables, then directories, each
/// fsync'd in that order.
#[unsafe(no_mangle)]
pub extern "C" fn VixDiskLib_Flush(diskHandle: VixDiskLibHandle) -> VixError {
    guard("VixDiskLib_Flush", || {
        require_init()?;
        DISKS.get(diskHandle as usize)?.disk.flush()
    })
}
