//! New disks that appear only when complete: one filled under a temporary name and published
//! at the end (`StagedDisk`), and a streamOptimized disk written in one pass from a source.

use std::path::Path;

use super::types::CreateOptions;
use crate::error::Result;
use crate::vmdk::atomic::NewDisk;

/// A new disk being filled under a temporary name: open [`StagedDisk::fill_path`], write it,
/// close it, then [`publish`](StagedDisk::publish) it under its real name (or
/// [`discard`](StagedDisk::discard) it). A crash midway leaves nothing that looks like a
/// finished disk at the real name.
///
/// ```
/// # use vixDiskLib::{Connection, CreateOptions, DiskKind, OpenOptions};
/// # let dir = tempfile::tempdir()?;
/// let path = dir.path().join("copy.vmdk");
/// let conn = Connection::local();
/// let staged = conn.create_staged(&path, &CreateOptions::new(DiskKind::MonolithicSparse, 2048))?;
/// let disk = conn.open(staged.fill_path(), &OpenOptions { single_link: true, ..Default::default() })?;
/// disk.write(0, &[5; 512])?;
/// disk.close()?;
/// assert!(!path.exists());
/// staged.publish()?;
/// assert!(path.exists());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct StagedDisk(NewDisk);

impl StagedDisk {
    pub(super) fn new(disk: NewDisk) -> StagedDisk {
        StagedDisk(disk)
    }

    /// Where the disk is while it is filled: open it here.
    ///
    /// ```
    /// # use vixDiskLib::{Connection, CreateOptions, DiskKind};
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("s.vmdk");
    /// let staged = Connection::local()
    ///     .create_staged(&path, &CreateOptions::new(DiskKind::MonolithicSparse, 2048))?;
    /// assert_ne!(staged.fill_path(), path.as_path());
    /// staged.discard();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn fill_path(&self) -> &Path {
        &self.0.tmp
    }

    /// Gives the complete (closed) disk its real name, durably.
    ///
    /// ```
    /// # use vixDiskLib::{Connection, CreateOptions, DiskKind};
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("p.vmdk");
    /// Connection::local()
    ///     .create_staged(&path, &CreateOptions::new(DiskKind::SplitSparse, 2048))?
    ///     .publish()?;
    /// assert!(path.exists());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn publish(self) -> Result<()> {
        self.0.publish()
    }

    /// Removes the unfinished disk.
    ///
    /// ```
    /// # use vixDiskLib::{Connection, CreateOptions, DiskKind};
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("d.vmdk");
    /// Connection::local()
    ///     .create_staged(&path, &CreateOptions::new(DiskKind::MonolithicFlat, 2048))?
    ///     .discard();
    /// assert_eq!(std::fs::read_dir(dir.path())?.count(), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn discard(self) {
        self.0.discard()
    }
}

/// Creates the staged disk (see [`StagedDisk`]).
pub(super) fn create_staged(path: &Path, opts: &CreateOptions) -> Result<StagedDisk> {
    crate::vmdk::create::create_unpublished(path, &opts.spec(), &mut |_| {}).map(StagedDisk::new)
}

/// Writes a streamOptimized disk at `path` in one pass (see `Connection::create_stream`).
pub(super) fn create_stream(
    path: &Path,
    opts: &CreateOptions,
    read_grain: &(dyn Fn(u64, &mut [u8]) -> Result<bool> + Sync),
    progress: &mut dyn FnMut(u32),
) -> Result<()> {
    use crate::vmdk::create::{base_ddb, new_descriptor};
    let spec = opts.spec();
    let descriptor = new_descriptor("streamOptimized", Vec::new(), base_ddb(&spec));
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    crate::vmdk::stream_writer::write_stream_optimized(
        path,
        spec.capacity,
        descriptor,
        read_grain,
        threads,
        progress,
    )
}
