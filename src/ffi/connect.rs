//! Connections: local (params NULL, or no `serverName`) reach VMDK files on this host;
//! remote ones (`serverName` an NBD URI or host) reach exports of an NBD server, opened by
//! Open. Remote-only fields of the params (vmxSpec, thumbprint, password, …) mean nothing to
//! NBD and are ignored, so VDDK programs that must fill them in work unchanged.

use std::ffi::c_char;
use std::mem::size_of;

use super::alloc::{Kind, calloc_owned, free_owned};
use super::args::{opt_str_arg, out_arg, store, store_opt};
use super::boundary::{guard, guard_ptr, guard_void};
use super::handles::{CONNECTIONS, Connection, DISKS, RemoteParams, close_disk};
use super::library::require_init;
use super::types::{
    Bool, CredTypeArg, VixDiskLibConnectParams, VixDiskLibConnection, VixDiskLibCredType, VixError,
};
use crate::{Error, Result, log_info, log_warning};

/// The params' `serverName`, `port` and (for user/password credentials) `userName`. Only
/// fields of the oldest layout (72 bytes, VDDK 6.0) are read, so every caller is safe.
fn server_fields(
    params: *const VixDiskLibConnectParams,
) -> Result<Option<(String, u32, Option<String>)>> {
    if params.is_null() {
        return Ok(None);
    }
    // SAFETY: non-NULL params point at a caller struct of at least the 6.0 layout (72 bytes),
    // which holds serverName (offset 8), credType (32), creds (40) and port (64); fields are
    // read by address without claiming the whole struct.
    let (server, cred_type, user, port) = unsafe {
        (
            std::ptr::addr_of!((*params).serverName).read(),
            std::ptr::addr_of!((*params).credType).read(),
            std::ptr::addr_of!((*params).creds.uid.userName).read(),
            std::ptr::addr_of!((*params).port).read(),
        )
    };
    let Some(server) = opt_str_arg(server, "serverName")? else {
        return Ok(None);
    };
    let user = if cred_type == VixDiskLibCredType::VIXDISKLIB_CRED_UID as CredTypeArg {
        opt_str_arg(user, "creds.uid.userName")
            .ok()
            .flatten()
            .map(str::to_owned)
    } else {
        None
    };
    Ok(Some((server.to_string(), port, user)))
}

fn connect(
    params: *const VixDiskLibConnectParams,
    read_only: bool,
    modes: Option<&str>,
    out: *mut VixDiskLibConnection,
) -> Result<()> {
    let out = out_arg(out, "connection")?;
    let (reach, remote) = match server_fields(params)? {
        None => {
            if let Some(modes) = modes
                && !modes
                    .split(':')
                    .any(|m| m.trim().eq_ignore_ascii_case("file"))
            {
                return Err(Error::NotSupported(format!(
                    "transport modes {modes:?}: local disks are reached with \"file\""
                )));
            }
            (crate::Connection::local(), None)
        }
        Some((server, port, params_user)) => {
            let reach =
                crate::Connection::nbd_server(&server, port, modes, params_user.as_deref())?;
            if read_only {
                log_info(format!(
                    "connection to NBD server {} is read-only (ConnectEx readOnly)",
                    reach.server().unwrap_or_default()
                ));
            }
            let params = RemoteParams {
                server_name: server,
                port,
            };
            (reach, Some(params))
        }
    };
    let token = CONNECTIONS.insert(Connection {
        reach,
        read_only,
        remote,
    });
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
            log_warning(
                "VixDiskLib_FreeConnectParams: pointer was not allocated by this library; ignored",
            );
        }
    });
}

/// Connects to the local host (params NULL or without `serverName`) or to an NBD server
/// (`serverName` an `nbd://`, `nbds://`, `nbd+unix://`, `nbds+unix://` URI or a host, with
/// `port`). No network traffic happens until Open.
#[unsafe(no_mangle)]
pub extern "C" fn VixDiskLib_Connect(
    connectParams: *const VixDiskLibConnectParams,
    connection: *mut VixDiskLibConnection,
) -> VixError {
    guard("VixDiskLib_Connect", || {
        require_init()?;
        connect(connectParams, false, None, connection)
    })
}

/// Like Connect; `readOnly` makes every disk opened through it read-only; `snapshotRef` is
/// ignored; `transportModes` (NULL: any) must name "file" for local connections and "nbd"
/// or "nbdssl" for remote ones (their order decides whether TLS is tried first).
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
        let modes = opt_str_arg(transportModes, "transportModes")?;
        connect(connectParams, readOnly != 0, modes, connection)
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
            log_warning(format!(
                "VixDiskLib_Disconnect: closing a disk left open on {token:#x}"
            ));
            let closed = close_disk(h);
            if result.is_ok() {
                result = closed;
            }
        }
        result
    })
}

/// Nothing to clean up, locally or on NBD servers (no server-side state is left behind):
/// VIX_OK, both counters 0.
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
        server_fields(connectParams).map(drop)
    })
}

/// Neither local disks nor NBD servers need a vCenter notification: VIX_OK.
#[unsafe(no_mangle)]
pub extern "C" fn VixDiskLib_PrepareForAccess(
    connectParams: *const VixDiskLibConnectParams,
    identity: *const c_char,
) -> VixError {
    let _ = identity;
    guard("VixDiskLib_PrepareForAccess", || {
        require_init()?;
        server_fields(connectParams).map(drop)
    })
}

/// Counterpart of PrepareForAccess: VIX_OK.
#[unsafe(no_mangle)]
pub extern "C" fn VixDiskLib_EndAccess(
    connectParams: *const VixDiskLibConnectParams,
    identity: *const c_char,
) -> VixError {
    let _ = identity;
    guard("VixDiskLib_EndAccess", || {
        require_init()?;
        server_fields(connectParams).map(drop)
    })
}

/// Returns a copy of the connection's parameters (all zero for local connections; remote
/// ones carry `serverName` and `port`, stored in the same allocation); free with
/// FreeConnectParams.
#[unsafe(no_mangle)]
pub extern "C" fn VixDiskLib_GetConnectParams(
    connection: VixDiskLibConnection,
    connectParams: *mut *mut VixDiskLibConnectParams,
) -> VixError {
    guard("VixDiskLib_GetConnectParams", || {
        require_init()?;
        let out = out_arg(connectParams, "connectParams")?;
        let conn = CONNECTIONS.get(connection as usize)?;
        let base = size_of::<VixDiskLibConnectParams>();
        let name = conn
            .remote
            .as_ref()
            .map(|r| r.server_name.replace('\0', ""));
        let extra = name.as_ref().map_or(0, |n| n.len() + 1);
        let p = calloc_owned(base + extra, Kind::ConnectParams)?;
        if let (Some(name), Some(remote)) = (name, conn.remote.as_ref()) {
            let params = p.cast::<VixDiskLibConnectParams>();
            // SAFETY: `p` holds `base + extra` zeroed bytes: the struct, then room for the
            // name and its NUL (already zero), so the string lives as long as the params.
            unsafe {
                let text = p.add(base);
                std::ptr::copy_nonoverlapping(name.as_ptr(), text, name.len());
                std::ptr::addr_of_mut!((*params).serverName).write(text.cast::<c_char>());
                std::ptr::addr_of_mut!((*params).port).write(remote.port);
            }
        }
        store(out, p.cast());
        Ok(())
    })
}
