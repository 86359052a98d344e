//! Opening a link's files: the extent files a descriptor names (confined to its directory),
//! and the advisory lock an open holds on the link.

use std::fs::File;
use std::path::{Path, PathBuf};

use super::cowd::CowdExtent;
use super::descriptor::{Access, ExtentKind, ExtentLine};
use super::extent::{Extent, ExtentStore};
use super::fd_cache::CachedFile;
use super::fileio::{open_regular, read_exact_at};
use super::header::HEADER_SIZE;
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

pub(crate) fn open_extent(
    dir: &Path,
    line: &ExtentLine,
    start: u64,
    writable: bool,
) -> Result<Extent> {
    let rw = writable && line.access == Access::ReadWrite;
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
