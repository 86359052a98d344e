//! The calls of [`Disk`] that change a chain's shape or copy it: redo logs (create, attach),
//! compaction (shrink, defragment) and clones.

use std::path::Path;

use super::Disk;
use crate::api::types::CreateOptions;
use crate::error::Result;
use crate::vmdk::create::DiskKind;

/// Copies of the chain at a time: as many as the machine has cores.
fn worker_threads() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

impl Disk {
    /// Creates a redo log (child) at `path` over this disk; from now on writes go through the
    /// child, and this handle refuses them.
    ///
    /// ```
    /// # use vixDiskLib::{Connection, CreateOptions, DiskKind};
    /// # let dir = tempfile::tempdir()?;
    /// # let (base, redo) = (dir.path().join("base.vmdk"), dir.path().join("redo.vmdk"));
    /// let conn = Connection::local();
    /// conn.create(&base, &CreateOptions::new(DiskKind::MonolithicSparse, 4096), &mut |_| {})?;
    /// conn.open(&base, &Default::default())?
    ///     .create_child(&redo, DiskKind::MonolithicSparse, &mut |_| {})?;
    /// assert_eq!(conn.open(&redo, &Default::default())?.info().links, 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn create_child(
        &self,
        path: impl AsRef<Path>,
        kind: DiskKind,
        progress: &mut dyn FnMut(u32),
    ) -> Result<()> {
        let disk = self.local_chain("CreateChild")?;
        progress(0);
        disk.create_child(path.as_ref(), kind)?;
        progress(100);
        Ok(())
    }

    /// Ok if `child` (opened single-link and writable, same capacity) can be attached to this
    /// disk.
    ///
    /// ```
    /// # use vixDiskLib::{Connection, CreateOptions, DiskKind, OpenOptions};
    /// # let dir = tempfile::tempdir()?;
    /// # let (a, b) = (dir.path().join("a.vmdk"), dir.path().join("b.vmdk"));
    /// let conn = Connection::local();
    /// conn.create(&a, &CreateOptions::new(DiskKind::MonolithicSparse, 4096), &mut |_| {})?;
    /// conn.create(&b, &CreateOptions::new(DiskKind::MonolithicSparse, 8192), &mut |_| {})?;
    /// let parent = conn.open(&a, &Default::default())?;
    /// let child = conn.open(&b, &OpenOptions { single_link: true, ..Default::default() })?;
    /// assert!(parent.can_attach(&child).is_err()); // capacities differ
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn can_attach(&self, child: &Disk) -> Result<()> {
        self.local_chain("IsAttachPossible")?
            .check_attach(child.local_chain("IsAttachPossible")?)
    }

    /// Attaches `child` on top of this disk's chain: `child` then reads the combined chain
    /// and its descriptor names this disk as parent. This handle is consumed either way.
    ///
    /// ```
    /// # use vixDiskLib::{Connection, CreateOptions, DiskKind, OpenOptions};
    /// # let dir = tempfile::tempdir()?;
    /// # let (a, b) = (dir.path().join("a.vmdk"), dir.path().join("b.vmdk"));
    /// let conn = Connection::local();
    /// conn.create(&a, &CreateOptions::new(DiskKind::MonolithicSparse, 4096), &mut |_| {})?;
    /// conn.create(&b, &CreateOptions::new(DiskKind::MonolithicSparse, 4096), &mut |_| {})?;
    /// let parent = conn.open(&a, &Default::default())?;
    /// let child = conn.open(&b, &OpenOptions { single_link: true, ..Default::default() })?;
    /// parent.attach(&child)?;
    /// assert_eq!(child.info().links, 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn attach(self, child: &Disk) -> Result<()> {
        // Remote disks have no redo logs: refused before anything happens.
        self.local_chain("Attach")?;
        child.local_chain("Attach")?;
        // On success the links moved into the child and Drop's close finds none; on failure
        // Drop releases them, as the handle is gone.
        self.local_chain("Attach")?
            .attach_under(child.local_chain("Attach")?)
    }

    /// Releases the grains of this (writable, sparse) leaf that hold only zeros and hide no
    /// parent data; content and capacity stay the same. Returns the number of grains released.
    ///
    /// ```
    /// # use vixDiskLib::{Connection, CreateOptions, DiskKind};
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("d.vmdk");
    /// # let conn = Connection::local();
    /// # conn.create(&path, &CreateOptions::new(DiskKind::MonolithicSparse, 4096), &mut |_| {})?;
    /// let disk = conn.open(&path, &Default::default())?;
    /// disk.write(0, &[0; 65536])?;
    /// disk.shrink(&mut |_| {})?;
    /// assert!(disk.allocated_areas(0, 4096, 128)?.is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn shrink(&self, progress: &mut dyn FnMut(u32)) -> Result<u64> {
        let disk = self.local_chain("Shrink")?;
        progress(0);
        let released = disk.compact(true)?;
        progress(100);
        Ok(released)
    }

    /// Rewrites this (writable) sparse leaf's grains in sector order; a flat disk is left as
    /// it is.
    ///
    /// ```
    /// # use vixDiskLib::{Connection, CreateOptions, DiskKind};
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("d.vmdk");
    /// # let conn = Connection::local();
    /// # conn.create(&path, &CreateOptions::new(DiskKind::MonolithicSparse, 4096), &mut |_| {})?;
    /// let disk = conn.open(&path, &Default::default())?;
    /// disk.write(2048, &[2; 512])?;
    /// disk.write(0, &[1; 512])?;
    /// disk.defragment(&mut |_| {})?;
    /// let mut buf = [0; 512];
    /// disk.read(2048, &mut buf)?;
    /// assert_eq!(buf, [2; 512]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn defragment(&self, progress: &mut dyn FnMut(u32)) -> Result<()> {
        let disk = self.local_chain("Defragment")?;
        progress(0);
        disk.compact(false)?;
        progress(100);
        Ok(())
    }

    /// Copies this disk's content into a new disk at `dst` of the layout in `opts` (capacity:
    /// this disk's), replacing `dst` if `overwrite`. Stops between runs once `cancelled()`
    /// says so: the partial target is removed and an interrupted I/O error returned.
    ///
    /// ```
    /// # use vixDiskLib::{Connection, CreateOptions, DiskKind};
    /// # let dir = tempfile::tempdir()?;
    /// # let (src, dst) = (dir.path().join("a.vmdk"), dir.path().join("b.vmdk"));
    /// let conn = Connection::local();
    /// conn.create(&src, &CreateOptions::new(DiskKind::MonolithicSparse, 2048), &mut |_| {})?;
    /// let disk = conn.open(&src, &Default::default())?;
    /// let opts = CreateOptions::new(DiskKind::MonolithicFlat, 0);
    /// assert!(disk.clone_to(&dst, &opts, false, &mut |_| {}, &|| true).is_err());
    /// assert!(!dst.exists());
    /// disk.clone_to(&dst, &opts, false, &mut |_| {}, &|| false)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn clone_to(
        &self,
        dst: impl AsRef<Path>,
        opts: &CreateOptions,
        overwrite: bool,
        progress: &mut dyn FnMut(u32),
        cancelled: &(dyn Fn() -> bool + Sync),
    ) -> Result<()> {
        self.local_chain("Clone")?.clone_to_cancellable(
            dst.as_ref(),
            &opts.spec(),
            overwrite,
            worker_threads(),
            progress,
            cancelled,
        )
    }

    /// The bytes a clone of this disk into `kind` needs at most.
    ///
    /// ```
    /// # use vixDiskLib::{Connection, CreateOptions, DiskKind};
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("d.vmdk");
    /// # let conn = Connection::local();
    /// # conn.create(&path, &CreateOptions::new(DiskKind::MonolithicSparse, 4096), &mut |_| {})?;
    /// let disk = conn.open(&path, &Default::default())?;
    /// assert!(disk.space_needed_for_clone(DiskKind::MonolithicFlat)? >= 4096 * 512);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn space_needed_for_clone(&self, kind: DiskKind) -> Result<u64> {
        self.local_chain("SpaceNeededForClone")?
            .space_needed_for_clone(kind)
    }
}
