//! Connections. Every connection here is local: params NULL, or `serverName` NULL. Remote
//! servers (vCenter/ESXi) are not supported and say so.

use std::ffi::c_char;
use std::mem::size_of;

use super::alloc::{Kind, calloc_owned, free_owned};
use super::args::{opt_str_arg, out_arg, store, store_opt};
use super::boundary::{guard, guard_ptr, guard_void};
use super::handles::{CONNECTIONS, Connection, DISKS};
use super::library::require_init;
use super::types::{Bool, VixDiskLibConnectParams, VixDiskLibConnection, VixError};
use crate::error::{Error, Result};
use crate::log;

/// Refuses remote parameters. Only `serverName` is read, which every layout (72, 80, 128 or
/// 136 bytes) has at the same offset, so old and new callers are both safe.
fn require_local(params: *const VixDiskLibConnectParams) -> Result<()> {
    if params.is_null() {
        return Ok(());
    }
    // SAFETY: non-NULL params point at a caller struct of at least the 6.0 layout (72 bytes),
    // which contains `serverName` at offset 8.
    let server = unsafe { std::ptr::addr_of!((*params).serverName).read() };
    match opt_str_arg(server, "serverName")? {
        None => Ok(()),
        Some(name) => Err(Error::NotSupported(format!(
            "remote server {name:?}: this library opens local (hosted) disks only"
        ))),
    }
}

fn connect(
    params: *const VixDiskLibConnectParams,
    read_only: bool,
    out: *mut VixDiskLibConnection,
) -> Result<()> {
    let out = out_arg(out, "connection")?;
    require_local(params)?;
    let token = CONNECTIONS.insert(Connection { read_only });
    store(out, token as VixDiskLibConnection);
    Ok(())
}

/// Allocates zeroed connection parameters (usable before InitEx); free with FreeConnectParams.
#[unsafe(no_mangle)]
pub extern "C" fn VixDiskLib_AllocateConnectParams() -> *mut VixDiskLibConnectParams {
    guard_ptr("VixDiskLib_AllocateConnectParams", || {
        calloc_owned(size_of::<VixDiskLibConnectParams>(), Kind::ConnectParams)
            .map_or(std::ptr::null_mut(), |p| p.cast())
    })
}

/// Frees parameters from AllocateConnectParams or GetConnectParams. Strings the caller stored
/// in them are the caller's and are not freed. Pointers we did not allocate are ignored.
#[unsafe(no_mangle)]
pub extern "C" fn VixDiskLib_FreeConnectParams(connectParams: *mut VixDiskLibConnectParams) {
    guard_void("VixDiskLib_FreeConnectParams", || {
        if !connectParams.is_null() && !free_owned(connectParams.cast(), Kind::ConnectParams) {
            log::warn(
                "VixDiskLib_FreeConnectParams: pointer was not allocated by this library; ignored",
            );
        }
    });
}

/// Connects to the local host (params NULL or without `serverName`).
#[unsafe(no_mangle)]
pub extern "C" fn VixDiskLib_Connect(
    connectParams: *const VixDiskLibConnectParams,
    connection: *mut VixDiskLibConnection,
) -> VixError {
    guard("VixDiskLib_Connect", || {
        require_init()?;
        connect(connectParams, false, connection)
    })
}

/// Like Connect; `readOnly` makes every disk opened through it read-only; `snapshotRef` is
/// ignored for local disks; `transportModes` must be NULL or name "file".
#[unsafe(no_mangle)]
pub extern "C" fn VixDiskLib_ConnectEx(
    connectParams: *const VixDiskLibConnectParams,
    readOnly: Bool,
    snapshotRef: *const c_char,
    transportModes: *const c_char,
    connection: *mut VixDiskLibConnection,
) -> VixError {
    let _ = snapshotRef;
    guard("VixDiskLib_ConnectEx", || {
        require_init()?;
        if let Some(modes) = opt_str_arg(transportModes, "transportModes")?
            && !modes.split(':').any(|m| m.eq_ignore_ascii_case("file"))
        {
            return Err(Error::NotSupported(format!(
                "transport modes {modes:?}: only \"file\" is available"
            )));
        }
        connect(connectParams, readOnly != 0, connection)
    })
}

/// Closes a connection; disks still open through it are closed (their handles become invalid).
#[unsafe(no_mangle)]
pub extern "C" fn VixDiskLib_Disconnect(connection: VixDiskLibConnection) -> VixError {
    guard("VixDiskLib_Disconnect", || {
        require_init()?;
        let token = connection as usize;
        CONNECTIONS.remove(token)?;
        // Close every disk left open on it, even if one fails, and report the first failure.
        let mut result = Ok(());
        for h in DISKS.remove_where(|d| d.connection == token) {
            log::warn(format!(
                "VixDiskLib_Disconnect: closing a disk left open on {token:#x}"
            ));
            h.pending.wait_idle();
            let closed = h.disk.close();
            if result.is_ok() {
                result = closed;
            }
        }
        result
    })
}

/// Nothing to clean up for local connections: VIX_OK, both counters 0.
#[unsafe(no_mangle)]
pub extern "C" fn VixDiskLib_Cleanup(
    connectParams: *const VixDiskLibConnectParams,
    numCleanedUp: *mut u32,
    numRemaining: *mut u32,
) -> VixError {
    guard("VixDiskLib_Cleanup", || {
        require_init()?;
        store_opt(numCleanedUp, 0);
        store_opt(numRemaining, 0);
        require_local(connectParams)
    })
}

/// Local disks need no vCenter notification: VIX_OK. Remote parameters: not supported.
#[unsafe(no_mangle)]
pub extern "C" fn VixDiskLib_PrepareForAccess(
    connectParams: *const VixDiskLibConnectParams,
    identity: *const c_char,
) -> VixError {
    let _ = identity;
    guard("VixDiskLib_PrepareForAccess", || {
        require_init()?;
        require_local(connectParams)
    })
}

/// Counterpart of PrepareForAccess: VIX_OK for local parameters.
#[unsafe(no_mangle)]
pub extern "C" fn VixDiskLib_EndAccess(
    connectParams: *const VixDiskLibConnectParams,
    identity: *const c_char,
) -> VixError {
    let _ = identity;
    guard("VixDiskLib_EndAccess", || {
        require_init()?;
        require_local(connectParams)
    })
}

/// Returns a copy of the connection's parameters (all zero: local); free with FreeConnectParams.
#[unsafe(no_mangle)]
pub extern "C" fn VixDiskLib_GetConnectParams(
    connection: VixDiskLibConnection,
    connectParams: *mut *mut VixDiskLibConnectParams,
) -> VixError {
    guard("VixDiskLib_GetConnectParams", || {
        require_init()?;
        let out = out_arg(connectParams, "connectParams")?;
        CONNECTIONS.get(connection as usize)?;
        let p = calloc_owned(size_of::<VixDiskLibConnectParams>(), Kind::ConnectParams)?;
        store(out, p.cast());
        Ok(())
    })
}
