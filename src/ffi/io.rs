//! Sector I/O: Read, Write, ReadAsync, WriteAsync, Wait, Flush.

use std::ffi::c_void;
use std::sync::Arc;

use super::args::{buf, buf_mut, sector_bytes};
use super::async_pool::submit;
use super::backend::Backend;
use super::boundary::{guard, guard_code};
use super::codes::{VIX_ASYNC, VIX_OK};
use super::errors::to_vix;
use super::handles::{DISKS, DiskHandle};
use super::library::require_init;
use super::nbd::disk::NbdDisk;
use super::nbd::ops::Finish;
use super::types::{VixDiskLibCompletionCB, VixDiskLibHandle, VixDiskLibSectorType, VixError};
use crate::error::Error;
use crate::log;

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

/// Runs `op` on the pool and reports its result to `callback`, exactly once.
fn start_async(
    name: &'static str,
    h: Arc<DiskHandle>,
    callback: VixDiskLibCompletionCB,
    cb_data: *mut c_void,
    op: impl FnOnce(&DiskHandle) -> Result<(), Error> + Send + 'static,
) -> Result<VixError, Error> {
    let cb_data = cb_data as usize;
    h.pending.begin();
    let job_handle = Arc::clone(&h);
    let accepted = submit(Box::new(move || {
        let result =
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| op(&job_handle))) {
                Ok(Ok(())) => VIX_OK,
                Ok(Err(e)) => {
                    log::warn(format!("{name}: {e}"));
                    to_vix(&e)
                }
                Err(_) => {
                    log::warn(format!("{name}: internal error"));
                    super::codes::VIX_E_FAIL
                }
            };
        if let Some(cb) = callback {
            // SAFETY: the caller registered this callback and data for this request.
            unsafe { cb(cb_data as *mut c_void, result) };
        }
        job_handle.pending.end();
    }));
    if !accepted {
        h.pending.end();
        return Err(Error::NotSupported(
            "cannot start I/O worker threads".into(),
        ));
    }
    Ok(VIX_ASYNC)
}

/// Like `start_async` for a remote disk: `submit` sends the NBD commands, which the poller
/// completes; `callback` runs on the NBD callback thread, outside libnbd's locks. No thread per
/// request. If `submit` fails, nothing was started and the callback never runs.
fn start_remote(
    name: &'static str,
    h: Arc<DiskHandle>,
    callback: VixDiskLibCompletionCB,
    cb_data: *mut c_void,
    submit: impl FnOnce(&NbdDisk, Finish) -> Result<(), Error>,
) -> Result<VixError, Error> {
    let Backend::Remote(remote) = &h.disk else {
        return Err(Error::InvalidArg("not a remote disk".into()));
    };
    let cb_data = cb_data as usize;
    h.pending.begin();
    let done = Arc::clone(&h);
    let finish: Finish = Box::new(move |result| {
        let code = match result {
            Ok(()) => VIX_OK,
            Err(e) => {
                log::warn(format!("{name}: {e}"));
                to_vix(&e)
            }
        };
        if let Some(cb) = callback {
            // SAFETY: the caller registered this callback and data for this request.
            unsafe { cb(cb_data as *mut c_void, code) };
        }
        done.pending.end();
    });
    match submit(remote, finish) {
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
        let addr = readBuffer as usize;
        if matches!(h.disk, Backend::Remote(_)) {
            return start_remote("VixDiskLib_ReadAsync", h, callback, cbData, |r, f| {
                r.read_async(startSector, addr, len, f)
            });
        }
        start_async("VixDiskLib_ReadAsync", h, callback, cbData, move |h| {
            let out = buf_mut(addr as *mut u8, len, "readBuffer")?;
            h.disk.read(startSector, out)
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
        let addr = writeBuffer as usize;
        if matches!(h.disk, Backend::Remote(_)) {
            return start_remote("VixDiskLib_WriteAsync", h, callback, cbData, |r, f| {
                r.write_async(startSector, addr, len, f)
            });
        }
        start_async("VixDiskLib_WriteAsync", h, callback, cbData, move |h| {
            let data = buf(addr as *const u8, len, "writeBuffer")?;
            h.disk.write(startSector, data)
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
