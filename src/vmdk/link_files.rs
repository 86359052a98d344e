//! Opening a link's files: the extent files a descriptor names (confined to its directory),
//! and the advisory lock an open holds on the link.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use super::cowd::CowdExtent;
use super::descriptor::{Access, ExtentKind, ExtentLine};
use super::extent::{Extent, ExtentStore};
use super::fd_cache::CachedFile;
use super::fileio::{open_regular, read_exact_at};
use super::header::HEADER_SIZE;
use super::sesparse::SeSparseExtent;
use super::sparse::SparseExtent;
use crate::error::{Error, Result};
use crate::log;

pub(crate) fn open_file(path: &Path, writable: bool) -> Result<File> {
    open_regular(path, writable)
}

/// How long a conflicting lock is retried before the disk counts as in use.
const LOCK_PATIENCE: std::time::Duration = std::time::Duration::from_millis(500);

/// Takes the open's lock: exclusive for writers, shared for readers. A conflicting lock may be
/// held for a moment by a child process another thread is forking (it shares our open files
/// until it execs; on a busy machine that moment can last a scheduler tick or more), so a
/// refusal is retried with growing pauses for up to `LOCK_PATIENCE` before the disk counts as
/// in use. Every opener and CheckRepair take their locks here.
pub(crate) fn lock_file(file: &File, path: &Path, exclusive: bool) -> Result<()> {
    let start = std::time::Instant::now();
    let mut pause = std::time::Duration::from_millis(2);
    loop {
        let locked = if exclusive {
            file.try_lock()
        } else {
            file.try_lock_shared()
        };
        match locked {
            Ok(()) => return Ok(()),
            Err(std::fs::TryLockError::WouldBlock) if start.elapsed() < LOCK_PATIENCE => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(std::time::Duration::from_millis(50));
            }
            Err(std::fs::TryLockError::WouldBlock) => break,
            Err(std::fs::TryLockError::Error(e)) => return Err(Error::io(path, e)),
        }
    }
    Err(Error::Locked(path.to_path_buf()))
}

/// Largest disk we accept: 2^48 sectors (128 PiB), far beyond any VMDK, small enough that
/// byte offsets never overflow.
pub(crate) const MAX_CAPACITY_SECTORS: u64 = 1 << 48;

/// Resolves an extent file name. Extents must live in or below the descriptor's directory:
/// an absolute name or a `..` component would let a crafted descriptor read or overwrite any
/// file the caller can reach, so both are refused.
pub(crate) fn extent_path(dir: &Path, name: &str) -> Result<PathBuf> {
    let rel = Path::new(name).to_path_buf();
    let normalized = PathBuf::from(name.replace('\\', "/"));
    let escapes = |p: &Path| {
        p.is_absolute()
            || p.components().any(|c| {
                matches!(
                    c,
                    std::path::Component::ParentDir
                        | std::path::Component::RootDir
                        | std::path::Component::Prefix(_)
                )
            })
    };
    if name.is_empty()
        || escapes(&rel)
        || escapes(&normalized)
        || name.contains(':') && name.len() > 1 && name.as_bytes()[1] == b':'
    {
        return Err(Error::InvalidDisk(format!(
            "extent file {name:?} is outside the descriptor's directory; refusing to open it"
        )));
    }
    Ok(dir.join(normalized))
}

/// The InitEx config key that lets raw-disk descriptors be opened.
pub const ALLOW_RAW_DEVICES_KEY: &str = "vixDiskLib.allowRawDevices";

static ALLOW_RAW_DEVICES: AtomicBool = AtomicBool::new(false);

/// Sets whether raw-disk descriptors (`fullDevice`, `partitionedDevice`) may be opened: InitEx
/// does, from `vixDiskLib.allowRawDevices` in its config file.
pub fn set_allow_raw_devices(allow: bool) {
    ALLOW_RAW_DEVICES.store(allow, Ordering::Relaxed);
}

/// Whether raw-disk descriptors may be opened (see `set_allow_raw_devices`).
pub fn raw_devices_allowed() -> bool {
    ALLOW_RAW_DEVICES.load(Ordering::Relaxed)
}

/// Opens an extent of a Workstation raw-disk descriptor (`fullDevice`, `partitionedDevice`),
/// which the caller allowed. Names in the descriptor's directory (the partition-table files
/// VMware keeps beside it) open as usual. An absolute name must be a block device: the opt-in
/// lets a descriptor reach host disks, never other files such as /etc/shadow. Device extents
/// are opened read-only and marked so (writing a host disk through a descriptor is refused).
pub(crate) fn open_raw_disk_extent(dir: &Path, line: &ExtentLine, start: u64) -> Result<Extent> {
    let Some(name) = line.file.as_deref().filter(|n| n.starts_with('/')) else {
        if line.file.as_deref().is_some_and(|n| n.starts_with("\\\\")) {
            return Err(Error::NotSupported(format!(
                "raw-disk extent {:?} names a Windows device",
                line.file.as_deref().unwrap_or_default()
            )));
        }
        // Beside the descriptor (the partition table): read-only like the whole raw disk.
        let mut extent = open_extent(dir, line, start, false)?;
        if extent.access == Access::ReadWrite {
            extent.access = Access::ReadOnly;
        }
        return Ok(extent);
    };
    let path = PathBuf::from(name);
    if !matches!(line.kind, ExtentKind::Flat) {
        return Err(Error::NotSupported(format!(
            "raw-disk extent {name}: only FLAT extents may name a device"
        )));
    }
    let not_block = || {
        Error::InvalidDisk(format!(
            "raw-disk extent {name} is not a block device; only block devices may lie outside the descriptor's directory"
        ))
    };
    // Looked at before opening (opening some character devices has effects, e.g. a watchdog)
    // and again on the opened descriptor (the path may have changed in between).
    let before = std::fs::metadata(&path).map_err(|e| Error::io(&path, e))?;
    if !before.file_type().is_block_device() {
        return Err(not_block());
    }
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&path)
        .map_err(|e| Error::io(&path, e))?;
    let kind = file
        .metadata()
        .map_err(|e| Error::io(&path, e))?
        .file_type();
    if !kind.is_block_device() {
        return Err(not_block());
    }
    let offset = line
        .offset
        .checked_add(line.sectors)
        .filter(|&end| end <= MAX_CAPACITY_SECTORS)
        .map(|_| line.offset * 512)
        .ok_or_else(|| Error::InvalidDisk(format!("{name}: extent offset out of range")))?;
    log::verbose(format!("raw-disk extent {name} opened read-only"));
    Ok(Extent {
        start,
        sectors: line.sectors,
        access: match line.access {
            Access::NoAccess => Access::NoAccess,
            _ => Access::ReadOnly,
        },
        kind: line.kind,
        file_name: line.file.clone(),
        store: ExtentStore::Flat {
            file: CachedFile::pinned(std::sync::Arc::new(file), &path, false),
            path,
            offset,
        },
    })
}

pub(crate) fn open_extent(
    dir: &Path,
    line: &ExtentLine,
    start: u64,
    writable: bool,
) -> Result<Extent> {
    // seSparse files are never written here: open them read-only even in a writable open.
    let rw = writable && line.access == Access::ReadWrite && line.kind != ExtentKind::SeSparse;
    let store = match (line.kind, &line.file) {
        (ExtentKind::Zero, _) => ExtentStore::Zero,
        (_, None) => return Err(Error::InvalidDisk("extent without a file name".into())),
        (kind, Some(name)) => {
            let path = extent_path(dir, name)?;
            let file = CachedFile::open(&path, rw)?;
            match kind {
                ExtentKind::Flat | ExtentKind::Vmfs => ExtentStore::Flat {
                    offset: line
                        .offset
                        .checked_add(line.sectors)
                        .filter(|&end| end <= MAX_CAPACITY_SECTORS)
                        .map(|_| line.offset * 512)
                        .ok_or_else(|| {
                            Error::InvalidDisk(format!(
                                "{}: extent offset out of range",
                                path.display()
                            ))
                        })?,
                    path,
                    file,
                },
                ExtentKind::Sparse => {
                    let mut first = vec![0u8; HEADER_SIZE];
                    read_exact_at(&*file.get()?, &path, &mut first, 0)?;
                    let sp = SparseExtent::open(file, &first)?;
                    if sp.header().capacity < line.sectors {
                        return Err(Error::InvalidDisk(format!(
                            "{}: extent holds {} sectors but the descriptor says {}",
                            path.display(),
                            sp.header().capacity,
                            line.sectors
                        )));
                    }
                    ExtentStore::Sparse(Box::new(sp))
                }
                ExtentKind::VmfsSparse => ExtentStore::Cowd(Box::new(CowdExtent::open(file)?)),
                ExtentKind::SeSparse => {
                    // Read-only and never written: a descriptor of its own, outside the cache.
                    let own = file.get()?.try_clone().map_err(|e| Error::io(&path, e))?;
                    let se = SeSparseExtent::open(&path, own)?;
                    if se.capacity() < line.sectors {
                        return Err(Error::InvalidDisk(format!(
                            "{}: extent holds {} sectors but the descriptor says {}",
                            path.display(),
                            se.capacity(),
                            line.sectors
                        )));
                    }
                    ExtentStore::SeSparse(Box::new(se))
                }
                ExtentKind::Zero => unreachable!("handled above"),
            }
        }
    };
    if !writable || line.access != Access::ReadWrite {
        log::verbose(format!("extent {:?} opened read-only", line.file));
    }
    Ok(Extent {
        start,
        sectors: line.sectors,
        access: line.access,
        kind: line.kind,
        file_name: line.file.clone(),
        store,
    })
}
