//! The one place where engine errors become VixError codes (the C text of a code is in
//! `error_texts`).

use std::io;

use super::codes::*;
use super::types::VixError;
use crate::error::Error;

/// Maps an engine error to the VixError a VDDK client expects for it.
pub fn to_vix(e: &Error) -> VixError {
    match e {
        Error::Io { source, .. } => errno_to_vix(source),
        Error::FileNotFound(_) => VIX_E_FILE_NOT_FOUND,
        Error::FileExists(_) => VIX_E_FILE_ALREADY_EXISTS,
        Error::Locked(_) => VIX_E_FILE_ALREADY_LOCKED,
        Error::InvalidArg(_) => VIX_E_INVALID_ARG,
        Error::InvalidDisk(_) => VIX_E_DISK_INVALIDDISK,
        Error::UnsupportedVersion(_) => VIX_E_DISK_UNSUPPORTEDDISKVERSION,
        Error::Corrupt(_) => VIX_E_DISK_NEEDSREPAIR,
        Error::Unrepairable(_) => VIX_E_DISK_CANTREPAIR,
        Error::OutOfRange { .. } => VIX_E_DISK_OUTOFRANGE,
        Error::ReadOnly(_) => VIX_E_FILE_READ_ONLY,
        Error::AccessDenied(_) => VIX_E_FILE_ACCESS_ERROR,
        Error::NotInitialized => VIX_E_DISK_NOINIT,
        Error::CidMismatch { .. } => VIX_E_DISK_CID_MISMATCH,
        Error::OpenParent { .. } => VIX_E_DISK_OPENPARENT,
        Error::CapacityMismatch(_) => VIX_E_DISK_CAPACITY_MISMATCH,
        Error::TooManyLinks(_) => VIX_E_DISK_TOOMANYREDO,
        Error::KeyNotFound(_) => VIX_E_DISK_KEY_NOTFOUND,
        Error::BufferTooSmall { .. } => VIX_E_BUFFER_TOOSMALL,
        Error::NotSupported(_) => VIX_E_NOT_SUPPORTED,
        Error::InUse(_) => VIX_E_OBJECT_IS_BUSY,
        Error::ChangeIdUnknown(_) => VIX_E_OBJECT_NOT_FOUND,
        Error::NotTracked(_) => VIX_E_DISK_NOTSUPPORTED,
        Error::OutOfMemory => VIX_E_OUT_OF_MEMORY,
        Error::Internal(_) => VIX_E_FAIL,
        Error::RemoteUnreachable(_) => VIX_E_HOST_NETWORK_CONN_REFUSED,
        Error::RemoteExportNotFound(_) => VIX_E_FILE_NOT_FOUND,
        Error::RemoteTls(_) => VIX_E_NET_HTTP_SSL_CONNECT_ERROR,
        Error::RemoteTimeout(_) => VIX_E_NET_HTTP_OPERATION_TIMEDOUT,
        Error::RemoteConnectionLost(_) => VIX_E_HOST_TCP_CONN_LOST,
        Error::RemoteProtocol(_) => VIX_E_HOST_NETBLKDEV_HANDSHAKE,
    }
}

fn errno_to_vix(e: &io::Error) -> VixError {
    match e.raw_os_error() {
        Some(libc::ENOENT) => VIX_E_FILE_NOT_FOUND,
        Some(libc::EACCES | libc::EPERM) => VIX_E_FILE_ACCESS_ERROR,
        Some(libc::EROFS) => VIX_E_FILE_READ_ONLY,
        Some(libc::ENOSPC | libc::EDQUOT) => VIX_E_DISK_FULL,
        Some(libc::EEXIST) => VIX_E_FILE_ALREADY_EXISTS,
        Some(libc::EFBIG) => VIX_E_FILE_TOO_BIG,
        Some(libc::ENAMETOOLONG) => VIX_E_FILE_NAME_INVALID,
        Some(libc::ENOMEM) => VIX_E_OUT_OF_MEMORY,
        Some(libc::EWOULDBLOCK) => VIX_E_FILE_ALREADY_LOCKED,
        _ => VIX_E_FILE_ERROR,
    }
}
