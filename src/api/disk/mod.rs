//! `Disk`: one open disk, a local chain of VMDK links or an NBD export, behind the engine's
//! `DiskBackend` trait; calls only a local chain answers refuse an export with
//! `ErrorKind::NotSupported`.

mod async_io;
mod maintenance;

pub use async_io::Completion;

use std::sync::Arc;

use super::inspect::{LinkInfo, MapRun, link_info, walk};
use super::types::{Area, ChangeId, Info};
use crate::backend::DiskBackend;
use crate::chain;
use crate::error::{Error, Result};
use crate::log;
use crate::remote::disk::NbdDisk;

enum Backend {
    Local(Arc<chain::Disk>),
    Remote(Arc<NbdDisk>),
}

/// An open disk, from [`Connection::open`](super::Connection::open). Dropping it closes it
/// (a failure is then only logged): call [`Disk::close`] to see the error.
///
/// ```
/// # use vixDiskLib::{Connection, CreateOptions, DiskKind};
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("d.vmdk");
/// let conn = Connection::local();
/// conn.create(&path, &CreateOptions::new(DiskKind::MonolithicSparse, 4096), &mut |_| {})?;
/// let disk = conn.open(&path, &Default::default())?;
/// disk.write(8, &[1; 1024])?;
/// disk.flush()?;
/// disk.close()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Disk {
    backend: Backend,
    closed: bool,
}

impl Disk {
    /// Bytes in a sector: every sector address and count of the API is in these units.
    ///
    /// ```
    /// assert_eq!(vixDiskLib::Disk::SECTOR_SIZE, 512);
    /// ```
    pub const SECTOR_SIZE: u64 = super::types::SECTOR_SIZE;

    pub(super) fn local(disk: Arc<chain::Disk>) -> Disk {
        Disk {
            backend: Backend::Local(disk),
            closed: false,
        }
    }

    pub(super) fn remote(disk: Arc<NbdDisk>) -> Disk {
        Disk {
            backend: Backend::Remote(disk),
            closed: false,
        }
    }

    fn backend(&self) -> &dyn DiskBackend {
        match &self.backend {
            Backend::Local(d) => &**d,
            Backend::Remote(r) => &**r,
        }
    }

    /// The disk as the engine's backend trait, shared: asynchronous requests keep it alive
    /// until they finish.
    fn shared(&self) -> Arc<dyn DiskBackend> {
        match &self.backend {
            Backend::Local(d) => Arc::clone(d) as Arc<dyn DiskBackend>,
            Backend::Remote(r) => Arc::clone(r) as Arc<dyn DiskBackend>,
        }
    }

    /// The local chain, or NotSupported naming `call` for an NBD export.
    pub(super) fn local_chain(&self, call: &str) -> Result<&chain::Disk> {
        match &self.backend {
            Backend::Local(d) => Ok(d),
            Backend::Remote(_) => Err(Error::NotSupported(format!(
                "{call} works on local disks only, not on a remote NBD export"
            ))),
        }
    }

    /// Capacity in sectors.
    ///
    /// ```
    /// # use vixDiskLib::{Connection, CreateOptions, DiskKind};
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("d.vmdk");
    /// # let conn = Connection::local();
    /// # conn.create(&path, &CreateOptions::new(DiskKind::MonolithicSparse, 4096), &mut |_| {})?;
    /// assert_eq!(conn.open(&path, &Default::default())?.capacity(), 4096);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn capacity(&self) -> u64 {
        self.backend().capacity()
    }

    /// Size in bytes: the capacity's sectors for a local disk; for an NBD export the size the
    /// server reports, which may end in a partial sector that [`Disk::read`] cannot reach
    /// (the capacity leaves it out): a copy of such an export would lose those bytes.
    ///
    /// ```
    /// # use vixDiskLib::{Connection, CreateOptions, DiskKind};
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("d.vmdk");
    /// # let conn = Connection::local();
    /// # conn.create(&path, &CreateOptions::new(DiskKind::MonolithicSparse, 4096), &mut |_| {})?;
    /// let disk = conn.open(&path, &Default::default())?;
    /// assert_eq!(disk.size_bytes(), disk.capacity() * vixDiskLib::Disk::SECTOR_SIZE);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn size_bytes(&self) -> u64 {
        match &self.backend {
            Backend::Local(d) => d.capacity() * Self::SECTOR_SIZE,
            Backend::Remote(r) => r.size_bytes(),
        }
    }

    /// Ok for a local disk; `ErrorKind::NotSupported` naming `call` for an NBD export (the
    /// refusal every local-only call gives, for front ends that check before anything else).
    ///
    /// ```
    /// # use vixDiskLib::{Connection, CreateOptions, DiskKind};
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("d.vmdk");
    /// # let conn = Connection::local();
    /// # conn.create(&path, &CreateOptions::new(DiskKind::MonolithicSparse, 4096), &mut |_| {})?;
    /// conn.open(&path, &Default::default())?.require_local("CreateChild")?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn require_local(&self, call: &str) -> Result<()> {
        self.local_chain(call).map(drop)
    }

    /// True for an NBD export.
    ///
    /// ```
    /// # use vixDiskLib::{Connection, CreateOptions, DiskKind};
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("d.vmdk");
    /// # let conn = Connection::local();
    /// # conn.create(&path, &CreateOptions::new(DiskKind::MonolithicSparse, 4096), &mut |_| {})?;
    /// assert!(!conn.open(&path, &Default::default())?.is_remote());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_remote(&self) -> bool {
        matches!(self.backend, Backend::Remote(_))
    }

    /// How the disk is reached, in VDDK's words: `"file"`, `"nbd"` or `"nbdssl"`.
    ///
    /// ```
    /// # use vixDiskLib::{Connection, CreateOptions, DiskKind};
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("d.vmdk");
    /// # let conn = Connection::local();
    /// # conn.create(&path, &CreateOptions::new(DiskKind::MonolithicSparse, 4096), &mut |_| {})?;
    /// assert_eq!(conn.open(&path, &Default::default())?.transport(), "file");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn transport(&self) -> &'static str {
        self.backend().transport().name()
    }

    /// Ok if `[start, start + count)` lies inside the disk, else `ErrorKind::OutOfRange`
    /// (the check every sector call makes before it touches a buffer).
    ///
    /// ```
    /// # use vixDiskLib::{Connection, CreateOptions, DiskKind, ErrorKind};
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("d.vmdk");
    /// # let conn = Connection::local();
    /// # conn.create(&path, &CreateOptions::new(DiskKind::MonolithicSparse, 4096), &mut |_| {})?;
    /// let disk = conn.open(&path, &Default::default())?;
    /// disk.check_range(4000, 96)?;
    /// assert_eq!(disk.check_range(4000, 97).unwrap_err().kind(), ErrorKind::OutOfRange);
    /// assert!(disk.check_range(u64::MAX, 2).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn check_range(&self, start: u64, count: u64) -> Result<()> {
        self.backend().check_range(start, count)
    }

    /// Reads whole sectors from `sector` into `buf` (a multiple of 512 bytes).
    ///
    /// ```
    /// # use vixDiskLib::{Connection, CreateOptions, DiskKind};
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("d.vmdk");
    /// # let conn = Connection::local();
    /// # conn.create(&path, &CreateOptions::new(DiskKind::MonolithicSparse, 4096), &mut |_| {})?;
    /// let disk = conn.open(&path, &Default::default())?;
    /// let mut buf = vec![0xff; 1024];
    /// disk.read(100, &mut buf)?;
    /// assert!(buf.iter().all(|&b| b == 0)); // never written: zeros
    /// assert!(disk.read(4095, &mut buf).is_err()); // past the end
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn read(&self, sector: u64, buf: &mut [u8]) -> Result<()> {
        self.backend().read(sector, buf)
    }

    /// Writes whole sectors at `sector`.
    ///
    /// ```
    /// # use vixDiskLib::{Connection, CreateOptions, DiskKind};
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("d.vmdk");
    /// # let conn = Connection::local();
    /// # conn.create(&path, &CreateOptions::new(DiskKind::MonolithicSparse, 4096), &mut |_| {})?;
    /// let disk = conn.open(&path, &Default::default())?;
    /// disk.write(0, &[9; 512])?;
    /// assert!(disk.write(0, &[9; 100]).is_err()); // not a whole sector
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn write(&self, sector: u64, data: &[u8]) -> Result<()> {
        self.backend().write(sector, data)
    }

    /// Makes every completed write durable.
    ///
    /// ```
    /// # use vixDiskLib::{Connection, CreateOptions, DiskKind};
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("d.vmdk");
    /// # let conn = Connection::local();
    /// # conn.create(&path, &CreateOptions::new(DiskKind::MonolithicSparse, 4096), &mut |_| {})?;
    /// let disk = conn.open(&path, &Default::default())?;
    /// disk.write(0, &[9; 512])?;
    /// disk.flush()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn flush(&self) -> Result<()> {
        self.backend().flush()
    }

    /// Flushes and closes the disk, reporting any failure.
    ///
    /// ```
    /// # use vixDiskLib::{Connection, CreateOptions, DiskKind};
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("d.vmdk");
    /// # let conn = Connection::local();
    /// # conn.create(&path, &CreateOptions::new(DiskKind::MonolithicSparse, 4096), &mut |_| {})?;
    /// conn.open(&path, &Default::default())?.close()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn close(mut self) -> Result<()> {
        self.closed = true;
        self.backend().close()
    }

    /// Capacity, geometry, adapter, number of links, parent hint and uuid.
    ///
    /// ```
    /// # use vixDiskLib::{Connection, CreateOptions, DiskKind};
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("d.vmdk");
    /// # let conn = Connection::local();
    /// # conn.create(&path, &CreateOptions::new(DiskKind::MonolithicSparse, 4096), &mut |_| {})?;
    /// let info = conn.open(&path, &Default::default())?.info();
    /// assert_eq!(info.adapter, Some(vixDiskLib::Adapter::LsiLogic));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn info(&self) -> Info {
        self.backend().info().into()
    }

    /// The value of descriptor (DDB) key `key`, looked up from the leaf towards the base.
    ///
    /// ```
    /// # use vixDiskLib::{Connection, CreateOptions, DiskKind};
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("d.vmdk");
    /// # let conn = Connection::local();
    /// # conn.create(&path, &CreateOptions::new(DiskKind::MonolithicSparse, 4096), &mut |_| {})?;
    /// let disk = conn.open(&path, &Default::default())?;
    /// disk.set_metadata("backup.tag", "nightly")?;
    /// assert_eq!(disk.metadata("backup.tag")?.as_deref(), Some("nightly"));
    /// assert_eq!(disk.metadata("no.such.key")?, None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn metadata(&self, key: &str) -> Result<Option<String>> {
        Ok(self.local_chain("ReadMetadata")?.ddb_lookup(key))
    }

    /// Every descriptor key visible through the chain (leaf first).
    ///
    /// ```
    /// # use vixDiskLib::{Connection, CreateOptions, DiskKind};
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("d.vmdk");
    /// # let conn = Connection::local();
    /// # conn.create(&path, &CreateOptions::new(DiskKind::MonolithicSparse, 4096), &mut |_| {})?;
    /// let keys = conn.open(&path, &Default::default())?.metadata_keys()?;
    /// assert!(keys.iter().any(|k| k == "adapterType"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn metadata_keys(&self) -> Result<Vec<String>> {
        Ok(self.local_chain("GetMetadataKeys")?.ddb_keys())
    }

    /// Sets descriptor key `key` in the leaf.
    ///
    /// ```
    /// # use vixDiskLib::{Connection, CreateOptions, DiskKind};
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("d.vmdk");
    /// # let conn = Connection::local();
    /// # conn.create(&path, &CreateOptions::new(DiskKind::MonolithicSparse, 4096), &mut |_| {})?;
    /// let disk = conn.open(&path, &Default::default())?;
    /// assert!(disk.set_metadata("bad\"key", "x").is_err());
    /// disk.set_metadata("owner", "ops")?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set_metadata(&self, key: &str, value: &str) -> Result<()> {
        self.local_chain("WriteMetadata")?.ddb_set(key, value)
    }

    /// The allocated `chunk`-sector chunks of `[start, start + count)` (VDDK's
    /// QueryAllocatedBlocks rules: `chunk` a power of two of at least 8 sectors).
    ///
    /// ```
    /// # use vixDiskLib::{Area, Connection, CreateOptions, DiskKind};
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("d.vmdk");
    /// # let conn = Connection::local();
    /// # conn.create(&path, &CreateOptions::new(DiskKind::MonolithicSparse, 4096), &mut |_| {})?;
    /// let disk = conn.open(&path, &Default::default())?;
    /// disk.write(256, &[1; 512])?;
    /// assert_eq!(disk.allocated_areas(0, 4096, 128)?, vec![Area { start: 256, sectors: 128 }]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn allocated_areas(&self, start: u64, count: u64, chunk: u64) -> Result<Vec<Area>> {
        Ok(Area::from_runs(
            self.backend().allocated_chunks(start, count, chunk)?,
        ))
    }

    /// One flag per 64 KiB grain (128 sectors) of the disk: does any link of the chain hold
    /// data there?
    ///
    /// ```
    /// # use vixDiskLib::{Connection, CreateOptions, DiskKind};
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("d.vmdk");
    /// # let conn = Connection::local();
    /// # conn.create(&path, &CreateOptions::new(DiskKind::MonolithicSparse, 1024), &mut |_| {})?;
    /// let disk = conn.open(&path, &Default::default())?;
    /// disk.write(300, &[1; 512])?;
    /// assert_eq!(disk.allocated_grains()?, [false, false, true, false, false, false, false, false]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn allocated_grains(&self) -> Result<Vec<bool>> {
        self.local_chain("allocated_grains")?.allocated_grains()
    }

    /// The areas of `[start, start + count)` that may have changed since `since` was issued
    /// ([`ChangeId::all`]: every allocated area).
    ///
    /// ```
    /// # use vixDiskLib::{ChangeId, Connection, CreateOptions, DiskKind};
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("d.vmdk");
    /// let conn = Connection::local();
    /// conn.create(&path, &CreateOptions::new(DiskKind::MonolithicSparse, 4096), &mut |_| {})?;
    /// conn.set_change_tracking(&path, true)?;
    /// let disk = conn.open(&path, &Default::default())?;
    /// let before = disk.change_id()?;
    /// disk.write(512, &[1; 512])?;
    /// let changed = disk.changed_areas(&before, 0, 4096)?;
    /// assert!(changed.iter().any(|a| a.start <= 512 && 512 < a.end()));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn changed_areas(&self, since: &ChangeId, start: u64, count: u64) -> Result<Vec<Area>> {
        let end = start
            .checked_add(count)
            .ok_or_else(|| Error::InvalidArg("start + count overflows".into()))?;
        Ok(Area::from_runs(self.backend().changed_areas(
            since.as_str(),
            start,
            end,
        )?))
    }

    /// The change id of the content as it is now (the disk must track changes).
    ///
    /// ```
    /// # use vixDiskLib::{Connection, CreateOptions, DiskKind, ErrorKind};
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("d.vmdk");
    /// let conn = Connection::local();
    /// conn.create(&path, &CreateOptions::new(DiskKind::MonolithicSparse, 4096), &mut |_| {})?;
    /// let err = conn.open(&path, &Default::default())?.change_id().unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::DiskNotSupported); // tracking is off
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn change_id(&self) -> Result<ChangeId> {
        Ok(ChangeId::new(self.local_chain("GetChangeId")?.change_id()?))
    }

    /// The links of the chain, leaf first.
    ///
    /// ```
    /// # use vixDiskLib::{Connection, CreateOptions, DiskKind};
    /// # let dir = tempfile::tempdir()?;
    /// # let (base, redo) = (dir.path().join("base.vmdk"), dir.path().join("redo.vmdk"));
    /// let conn = Connection::local();
    /// conn.create(&base, &CreateOptions::new(DiskKind::MonolithicSparse, 2048), &mut |_| {})?;
    /// conn.open(&base, &Default::default())?
    ///     .create_child(&redo, DiskKind::MonolithicSparse, &mut |_| {})?;
    /// let links = conn.open(&redo, &Default::default())?.links()?;
    /// assert_eq!(links.len(), 2);
    /// assert_eq!(links[0].parent_cid, Some(links[1].cid));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn links(&self) -> Result<Vec<LinkInfo>> {
        let chain = self.local_chain("links")?.chain();
        Ok(chain.links.iter().map(link_info).collect())
    }

    /// Which link holds each run of `[start, start + count)`, in sector order.
    ///
    /// ```
    /// # use vixDiskLib::{Connection, CreateOptions, DiskKind, Mapped};
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("d.vmdk");
    /// # let conn = Connection::local();
    /// # conn.create(&path, &CreateOptions::new(DiskKind::MonolithicSparse, 2048), &mut |_| {})?;
    /// let disk = conn.open(&path, &Default::default())?;
    /// assert_eq!(disk.map(0, 2048)?[0].mapped, Mapped::Unallocated);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn map(&self, start: u64, count: u64) -> Result<Vec<MapRun>> {
        let disk = self.local_chain("map")?;
        disk.check_range(start, count)?;
        let chain = disk.chain();
        let mut out = Vec::new();
        walk(&chain.links, 0, start, count, &mut out)?;
        Ok(out)
    }

    /// True if the leaf tracks changes (even if its tracking file is damaged).
    ///
    /// ```
    /// # use vixDiskLib::{Connection, CreateOptions, DiskKind};
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("d.vmdk");
    /// # let conn = Connection::local();
    /// # conn.create(&path, &CreateOptions::new(DiskKind::MonolithicSparse, 2048), &mut |_| {})?;
    /// assert!(!conn.open(&path, &Default::default())?.is_change_tracked());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_change_tracked(&self) -> bool {
        match &self.backend {
            Backend::Local(d) => d.is_tracked(),
            Backend::Remote(_) => false,
        }
    }
}

impl Drop for Disk {
    fn drop(&mut self) {
        if !self.closed
            && let Err(e) = self.backend().close()
        {
            log::warn(format!("closing a dropped disk: {e}"));
        }
    }
}
