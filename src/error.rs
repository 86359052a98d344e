//! The one error type of the engine; `error_kind` maps each variant to a VixError code.

use std::io;
use std::path::{Path, PathBuf};

/// Everything that can go wrong below the C boundary.
///
/// Variants are nouns describing the failure; each carries the detail that goes into the log
/// line, while the C caller only sees the mapped VixError code.
///
/// ```
/// let err = vixDiskLib::Error::InvalidArg("capacity is 0".into());
/// assert_eq!(err.to_string(), "invalid argument: capacity is 0");
/// assert_eq!(err.kind(), vixDiskLib::ErrorKind::InvalidArg);
/// ```
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An operating-system I/O error on a named file.
    #[error("{path}: {source}")]
    Io {
        /// The file that was being accessed.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// A file that should exist does not.
    #[error("file not found: {0}")]
    FileNotFound(PathBuf),
    /// A file that must not exist yet does.
    #[error("file already exists: {0}")]
    FileExists(PathBuf),
    /// Another opener holds a conflicting lock on the disk.
    #[error("disk is locked by another process{}: {}", lock_holder(.0), .0.display())]
    Locked(PathBuf),
    /// A caller-supplied argument is invalid.
    #[error("invalid argument: {0}")]
    InvalidArg(String),
    /// The file is not a VMDK we can interpret (bad magic, bad descriptor, bad header fields).
    #[error("not a valid virtual disk: {0}")]
    InvalidDisk(String),
    /// The disk uses an on-disk version or incompatible feature we do not implement.
    #[error("unsupported disk version or feature: {0}")]
    UnsupportedVersion(String),
    /// The disk's metadata is inconsistent (CheckRepair may fix it).
    #[error("disk metadata is damaged: {0}")]
    Corrupt(String),
    /// The disk's metadata is damaged beyond what repair can fix without losing data.
    #[error("disk metadata is damaged beyond repair: {0}")]
    Unrepairable(String),
    /// A request reaches beyond the end of the disk.
    #[error("sectors {start}..{end} are beyond the disk capacity of {capacity} sectors")]
    OutOfRange {
        /// First sector requested.
        start: u64,
        /// One past the last sector requested.
        end: u64,
        /// Disk capacity in sectors.
        capacity: u64,
    },
    /// The disk forbids access to the requested data (a NOACCESS extent).
    #[error("access denied: {0}")]
    AccessDenied(String),
    /// The library is used before InitEx or after Exit.
    #[error("the library is not initialised: call VixDiskLib_InitEx first")]
    NotInitialized,
    /// A write was attempted through a read-only open, or on a link that must not change.
    #[error("read-only: {0}")]
    ReadOnly(String),
    /// A child's parentCID does not match its parent's CID.
    #[error(
        "{child}: parent {parent} was modified after the child was created (parentCID {expected:08x}, parent CID {found:08x})"
    )]
    CidMismatch {
        /// The child descriptor.
        child: PathBuf,
        /// The parent descriptor.
        parent: PathBuf,
        /// What the child recorded.
        expected: u32,
        /// What the parent has now.
        found: u32,
    },
    /// A parent link named by a child could not be opened.
    #[error("cannot open parent {parent} of {child}: {reason}")]
    OpenParent {
        /// The child descriptor.
        child: PathBuf,
        /// The resolved parent path.
        parent: PathBuf,
        /// Why it failed.
        reason: String,
    },
    /// Links of one chain disagree on capacity.
    #[error("capacity mismatch: {0}")]
    CapacityMismatch(String),
    /// A chain loops or is deeper than we allow.
    #[error("disk chain too deep or looping: {0}")]
    TooManyLinks(String),
    /// A metadata key does not exist.
    #[error("metadata key not found: {0}")]
    KeyNotFound(String),
    /// An output buffer is too small; `required` bytes are needed.
    #[error("buffer too small: {required} bytes required")]
    BufferTooSmall {
        /// Bytes needed.
        required: usize,
    },
    /// Memory for a result handed to the caller could not be allocated.
    #[error("out of memory")]
    OutOfMemory,
    /// A bug: the engine stopped an operation that panicked (VIX_E_FAIL).
    #[error("internal error: {0}")]
    Internal(String),
    /// Other disks depend on what the call would change (a commit into a shared parent).
    #[error("in use: {0}")]
    InUse(String),
    /// A change id this disk's tracking cannot answer correctly (the caller must do a full
    /// backup).
    #[error("change id cannot be answered: {0}")]
    ChangeIdUnknown(String),
    /// The disk does not track changes.
    #[error("change tracking is off: {0}")]
    NotTracked(String),
    /// A remote (NBD) server could not be reached: refused, no such socket, unknown host.
    #[error("cannot reach the NBD server: {0}")]
    RemoteUnreachable(String),
    /// The NBD server has no export of the requested name.
    #[error("NBD export not found: {0}")]
    RemoteExportNotFound(String),
    /// TLS with the NBD server could not be set up (refused, required, bad credentials).
    #[error("TLS with the NBD server failed: {0}")]
    RemoteTls(String),
    /// The NBD server did not answer within the configured timeout.
    #[error("NBD server timed out: {0}")]
    RemoteTimeout(String),
    /// The connection to the NBD server broke (reset, server gone); the handle is dead.
    #[error("NBD connection lost: {0}")]
    RemoteConnectionLost(String),
    /// The NBD server broke the protocol or the handshake failed for another reason.
    #[error("NBD protocol error: {0}")]
    RemoteProtocol(String),
    /// A feature exists in the API but not (yet) in this implementation.
    #[error("not supported: {0}")]
    NotSupported(String),
}

/// Result alias used throughout the engine.
///
/// ```
/// fn capacity(path: &std::path::Path) -> vixDiskLib::Result<u64> {
///     Ok(vixDiskLib::Connection::local().open(path, &Default::default())?.capacity())
/// }
/// assert!(capacity(std::path::Path::new("/nonexistent.vmdk")).is_err());
/// ```
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// Wraps an `io::Error` with the path it happened on, turning the common kinds into the
    /// dedicated variants so callers get the right VixError.
    ///
    /// ```
    /// use vixDiskLib::{Error, ErrorKind};
    /// let e = Error::io("/backup/disk.vmdk", std::io::ErrorKind::NotFound.into());
    /// assert_eq!(e.kind(), ErrorKind::FileNotFound);
    /// ```
    pub fn io(path: impl Into<PathBuf>, source: io::Error) -> Error {
        let path = path.into();
        match source.kind() {
            io::ErrorKind::NotFound => Error::FileNotFound(path),
            io::ErrorKind::AlreadyExists => Error::FileExists(path),
            _ => Error::Io { path, source },
        }
    }
}

/// " (pid N)" naming a process that holds a lock on `path`, as the kernel lists it in
/// /proc/locks (our locks are flock(2) locks), or "" when that cannot be found out. Looked up
/// when the message is made, right after the refusal, so the user can see who has the disk.
fn lock_holder(path: &Path) -> String {
    use std::os::unix::fs::MetadataExt;
    let (Ok(meta), Ok(locks)) = (
        std::fs::metadata(path),
        std::fs::read_to_string("/proc/locks"),
    ) else {
        return String::new();
    };
    // /proc/locks names the file as "major:minor:inode", the device numbers in hex.
    let dev = meta.dev();
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
    let file = format!("{major:02x}:{minor:02x}:{}", meta.ino());
    let me = std::process::id();
    let holders: Vec<u32> = locks
        .lines()
        .filter(|l| !l.contains("->")) // waiters, not holders
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 6 && f[5] == file).then(|| f[4].parse::<u32>().ok())?
        })
        .filter(|&pid| pid != 0)
        .collect();
    // Another process first: our own shared lock may be listed next to the one in the way.
    let pid = holders.iter().find(|&&p| p != me).or(holders.first());
    match pid.copied() {
        Some(pid) if pid == me => format!(" (pid {pid}, this process)"),
        Some(pid) => format!(" (pid {pid})"),
        None => String::new(),
    }
}
