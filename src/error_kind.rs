//! What kind of failure an engine `Error` is, as the VixError code a VDDK client gets for it
//! and that code's constant name. Every front end reports errors through this one mapping:
//! the C ABI returns `code()` (`ffi::errors`), the CLI prints `name()`.

use std::io;

use crate::error::Error;

macro_rules! kinds {
    ($($(#[$doc:meta])* $kind:ident = $code:literal, $name:literal;)*) => {
        /// The kinds of failure the engine reports, one per VixError code it uses.
        ///
        /// ```
        /// use vixDiskLib::ErrorKind;
        /// assert_eq!(ErrorKind::FileNotFound.code(), 4);
        /// assert!(ErrorKind::ALL.contains(&ErrorKind::InvalidArg));
        /// ```
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorKind {
            $($(#[$doc])* $kind,)*
        }

        impl ErrorKind {
            /// Every kind.
            ///
            /// ```
            /// assert!(vixDiskLib::ErrorKind::ALL.len() > 10);
            /// ```
            pub const ALL: &'static [ErrorKind] = &[$(ErrorKind::$kind,)*];

            /// The VixError code (values as VMware's header).
            ///
            /// ```
            /// assert_eq!(vixDiskLib::ErrorKind::InvalidArg.code(), 3);
            /// ```
            pub fn code(self) -> u64 {
                match self {
                    $(ErrorKind::$kind => $code,)*
                }
            }

            /// The code's constant name, e.g. `VIX_E_FILE_NOT_FOUND`.
            ///
            /// ```
            /// assert_eq!(vixDiskLib::ErrorKind::FileNotFound.name(), "VIX_E_FILE_NOT_FOUND");
            /// ```
            pub fn name(self) -> &'static str {
                match self {
                    $(ErrorKind::$kind => $name,)*
                }
            }
        }
    };
}

kinds! {
    /// Failed for no more specific reason (a bug the engine caught).
    Failed = 1, "VIX_E_FAIL";
    /// Out of memory.
    OutOfMemory = 2, "VIX_E_OUT_OF_MEMORY";
    /// A bad argument.
    InvalidArg = 3, "VIX_E_INVALID_ARG";
    /// A file (or remote export) does not exist.
    FileNotFound = 4, "VIX_E_FILE_NOT_FOUND";
    /// Something else uses what the call would change.
    Busy = 5, "VIX_E_OBJECT_IS_BUSY";
    /// Not implemented, or not possible for this kind of disk.
    NotSupported = 6, "VIX_E_NOT_SUPPORTED";
    /// An I/O error on a file.
    FileError = 7, "VIX_E_FILE_ERROR";
    /// No space left.
    DiskFull = 8, "VIX_E_DISK_FULL";
    /// A write to something read-only.
    ReadOnly = 11, "VIX_E_FILE_READ_ONLY";
    /// A file that must not exist does.
    FileExists = 12, "VIX_E_FILE_ALREADY_EXISTS";
    /// Permission denied.
    AccessDenied = 13, "VIX_E_FILE_ACCESS_ERROR";
    /// Another opener holds the disk.
    Locked = 15, "VIX_E_FILE_ALREADY_LOCKED";
    /// A file larger than the file system allows.
    FileTooBig = 21, "VIX_E_FILE_TOO_BIG";
    /// A malformed file name.
    FileNameInvalid = 22, "VIX_E_FILE_NAME_INVALID";
    /// The caller's buffer is too small.
    BufferTooSmall = 24, "VIX_E_BUFFER_TOOSMALL";
    /// A change id (or other named object) is unknown.
    ObjectNotFound = 25, "VIX_E_OBJECT_NOT_FOUND";
    /// The NBD server cannot be reached.
    ConnectionRefused = 14009, "VIX_E_HOST_NETWORK_CONN_REFUSED";
    /// The connection to the NBD server broke.
    ConnectionLost = 14011, "VIX_E_HOST_TCP_CONN_LOST";
    /// The NBD handshake or protocol failed.
    Handshake = 14006, "VIX_E_HOST_NETBLKDEV_HANDSHAKE";
    /// The library is not initialised.
    NotInitialized = 16001, "VIX_E_DISK_NOINIT";
    /// Damaged metadata that CheckRepair may fix.
    NeedsRepair = 16006, "VIX_E_DISK_NEEDSREPAIR";
    /// Sectors beyond the disk's end.
    OutOfRange = 16007, "VIX_E_DISK_OUTOFRANGE";
    /// A parent changed after its child was made.
    CidMismatch = 16008, "VIX_E_DISK_CID_MISMATCH";
    /// An unsupported disk version or feature.
    UnsupportedVersion = 16011, "VIX_E_DISK_UNSUPPORTEDDISKVERSION";
    /// A parent cannot be opened.
    OpenParent = 16012, "VIX_E_DISK_OPENPARENT";
    /// The disk does not support the call (change tracking is off).
    DiskNotSupported = 16013, "VIX_E_DISK_NOTSUPPORTED";
    /// A chain too deep or looping.
    TooManyLinks = 16028, "VIX_E_DISK_TOOMANYREDO";
    /// A metadata key does not exist.
    KeyNotFound = 16052, "VIX_E_DISK_KEY_NOTFOUND";
    /// Damage repair cannot fix.
    CantRepair = 16062, "VIX_E_DISK_CANTREPAIR";
    /// Not a virtual disk we can read.
    InvalidDisk = 16063, "VIX_E_DISK_INVALIDDISK";
    /// Links of a chain disagree on capacity.
    CapacityMismatch = 16067, "VIX_E_DISK_CAPACITY_MISMATCH";
    /// The NBD server did not answer in time.
    Timeout = 30028, "VIX_E_NET_HTTP_OPERATION_TIMEDOUT";
    /// TLS with the NBD server failed.
    Tls = 30035, "VIX_E_NET_HTTP_SSL_CONNECT_ERROR";
}

impl Error {
    /// What kind of failure this is (the VixError a VDDK client expects for it).
    ///
    /// ```
    /// # use vixDiskLib::{Connection, ErrorKind};
    /// # let dir = tempfile::tempdir()?;
    /// let err = Connection::local()
    ///     .open(dir.path().join("missing.vmdk"), &Default::default())
    ///     .err().unwrap();
    /// assert_eq!(err.kind(), ErrorKind::FileNotFound);
    /// assert_eq!(err.kind().name(), "VIX_E_FILE_NOT_FOUND");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Io { source, .. } => io_kind(source),
            Error::FileNotFound(_) => ErrorKind::FileNotFound,
            Error::FileExists(_) => ErrorKind::FileExists,
            Error::Locked(_) => ErrorKind::Locked,
            Error::InvalidArg(_) => ErrorKind::InvalidArg,
            Error::InvalidDisk(_) => ErrorKind::InvalidDisk,
            Error::UnsupportedVersion(_) => ErrorKind::UnsupportedVersion,
            Error::Corrupt(_) => ErrorKind::NeedsRepair,
            Error::Unrepairable(_) => ErrorKind::CantRepair,
            Error::OutOfRange { .. } => ErrorKind::OutOfRange,
            Error::ReadOnly(_) => ErrorKind::ReadOnly,
            Error::AccessDenied(_) => ErrorKind::AccessDenied,
            Error::NotInitialized => ErrorKind::NotInitialized,
            Error::CidMismatch { .. } => ErrorKind::CidMismatch,
            Error::OpenParent { .. } => ErrorKind::OpenParent,
            Error::CapacityMismatch(_) => ErrorKind::CapacityMismatch,
            Error::TooManyLinks(_) => ErrorKind::TooManyLinks,
            Error::KeyNotFound(_) => ErrorKind::KeyNotFound,
            Error::BufferTooSmall { .. } => ErrorKind::BufferTooSmall,
            Error::NotSupported(_) => ErrorKind::NotSupported,
            Error::InUse(_) => ErrorKind::Busy,
            Error::ChangeIdUnknown(_) => ErrorKind::ObjectNotFound,
            Error::NotTracked(_) => ErrorKind::DiskNotSupported,
            Error::OutOfMemory => ErrorKind::OutOfMemory,
            Error::Internal(_) => ErrorKind::Failed,
            Error::RemoteUnreachable(_) => ErrorKind::ConnectionRefused,
            Error::RemoteExportNotFound(_) => ErrorKind::FileNotFound,
            Error::RemoteTls(_) => ErrorKind::Tls,
            Error::RemoteTimeout(_) => ErrorKind::Timeout,
            Error::RemoteConnectionLost(_) => ErrorKind::ConnectionLost,
            Error::RemoteProtocol(_) => ErrorKind::Handshake,
        }
    }
}

/// The kind of an OS error on a file.
fn io_kind(e: &io::Error) -> ErrorKind {
    match e.raw_os_error() {
        Some(libc::ENOENT) => ErrorKind::FileNotFound,
        Some(libc::EACCES | libc::EPERM) => ErrorKind::AccessDenied,
        Some(libc::EROFS) => ErrorKind::ReadOnly,
        Some(libc::ENOSPC | libc::EDQUOT) => ErrorKind::DiskFull,
        Some(libc::EEXIST) => ErrorKind::FileExists,
        Some(libc::EFBIG) => ErrorKind::FileTooBig,
        Some(libc::ENAMETOOLONG) => ErrorKind::FileNameInvalid,
        Some(libc::ENOMEM) => ErrorKind::OutOfMemory,
        Some(libc::EWOULDBLOCK) => ErrorKind::Locked,
        _ => ErrorKind::FileError,
    }
}
