//! The plain values the facade passes around: options, change ids, areas, disk info.

use std::fmt;

use crate::vmdk::create::DiskKind;
use crate::vmdk::geometry::{Adapter, Geometry};

/// Bytes in a sector (the facade's one unit; see [`Disk::SECTOR_SIZE`](super::Disk::SECTOR_SIZE)).
/// Not a `pub const`: cbindgen would put any public constant into the C header.
pub(crate) const SECTOR_SIZE: u64 = 512;

/// How [`Connection::open`](super::Connection::open) opens a disk.
///
/// ```
/// let opts = vixDiskLib::OpenOptions { read_only: true, ..Default::default() };
/// assert!(opts.read_only && !opts.single_link);
/// ```
#[derive(Debug, Clone, Default)]
pub struct OpenOptions {
    /// Open every link read-only (shared locks); writes are refused.
    pub read_only: bool,
    /// Open only the named link, not its parents.
    pub single_link: bool,
    /// Read a local disk without the lock on its leaf (implies `read_only`): a disk another
    /// process writes can be inspected, with answers that may be stale.
    pub force_share: bool,
    /// Writable, but every write goes to a private, temporary redo log (in
    /// [`Settings::tmp_directory`](super::Settings::tmp_directory)) that vanishes at close and
    /// when the process dies; the disk itself is opened read-only with shared locks, so any
    /// number of nonpersistent and read-only users share it. `read_only` wins. Local disks
    /// only.
    pub nonpersistent: bool,
    /// For an NBD export: the change id whose dirty bitmap
    /// [`Disk::changed_areas`](super::Disk::changed_areas) will be asked about.
    pub change_id: Option<ChangeId>,
}

/// What [`Connection::create`](super::Connection::create) makes.
///
/// ```
/// use vixDiskLib::{Adapter, CreateOptions, DiskKind};
/// let o = CreateOptions::new(DiskKind::StreamOptimized, 4096);
/// assert_eq!((o.adapter, o.capacity), (Adapter::LsiLogic, 4096));
/// ```
#[derive(Debug, Clone, Copy)]
pub struct CreateOptions {
    /// Layout of the new disk.
    pub kind: DiskKind,
    /// Capacity in sectors (ignored by clone, which takes the source's).
    pub capacity: u64,
    /// Controller type written to the descriptor.
    pub adapter: Adapter,
    /// `ddb.virtualHWVersion`.
    pub hw_version: u16,
}

impl CreateOptions {
    /// `kind` and `capacity` sectors, on an LSI Logic adapter, hardware version 7.
    ///
    /// ```
    /// let o = vixDiskLib::CreateOptions::new(vixDiskLib::DiskKind::MonolithicFlat, 2048);
    /// assert_eq!(o.hw_version, 7);
    /// ```
    pub fn new(kind: DiskKind, capacity: u64) -> CreateOptions {
        CreateOptions {
            kind,
            capacity,
            adapter: Adapter::LsiLogic,
            hw_version: 7,
        }
    }

    pub(crate) fn spec(&self) -> crate::vmdk::create::CreateSpec {
        crate::vmdk::create::CreateSpec {
            kind: self.kind,
            capacity: self.capacity,
            adapter: self.adapter,
            hw_version: self.hw_version,
        }
    }
}

/// A change id: names the content of a change-tracked disk at one moment, so that a later
/// [`Disk::changed_areas`](super::Disk::changed_areas) can say what changed since.
/// [`ChangeId::all`] (`"*"`) asks for every allocated area instead.
///
/// ```
/// let id = vixDiskLib::ChangeId::new("52 3c-1/4");
/// assert_eq!(id.as_str(), "52 3c-1/4");
/// assert_eq!(vixDiskLib::ChangeId::all().to_string(), "*");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ChangeId(String);

impl ChangeId {
    /// The id spelled `id` (as a previous [`Disk::change_id`](super::Disk::change_id) gave).
    ///
    /// ```
    /// let kept = "52 3c-1/4".to_string(); // from the last backup's manifest
    /// assert_eq!(vixDiskLib::ChangeId::new(kept).as_str(), "52 3c-1/4");
    /// ```
    pub fn new(id: impl Into<String>) -> ChangeId {
        ChangeId(id.into())
    }

    /// `"*"`: every allocated area counts as changed (a full backup).
    ///
    /// ```
    /// assert_eq!(vixDiskLib::ChangeId::all().as_str(), "*");
    /// ```
    pub fn all() -> ChangeId {
        ChangeId("*".into())
    }

    /// `text` if it is `"*"` or has the shape of a change id a tracked disk issues
    /// (`"UUID/number"`), else `None`.
    ///
    /// ```
    /// use vixDiskLib::ChangeId;
    /// assert!(ChangeId::parse("*").is_some());
    /// assert!(ChangeId::parse("not an id").is_none());
    /// ```
    pub fn parse(text: &str) -> Option<ChangeId> {
        if text == "*" || crate::vmdk::track::ChangeId::parse(text).is_some() {
            Some(ChangeId(text.to_string()))
        } else {
            None
        }
    }

    /// The id's text.
    ///
    /// ```
    /// assert_eq!(vixDiskLib::ChangeId::new("x/1").as_str(), "x/1");
    /// ```
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ChangeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A run of sectors: `sectors` sectors from `start`.
///
/// ```
/// let a = vixDiskLib::Area { start: 128, sectors: 64 };
/// assert_eq!(a.end(), 192);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Area {
    /// First sector.
    pub start: u64,
    /// Length in sectors.
    pub sectors: u64,
}

impl Area {
    /// The sector after the last one.
    ///
    /// ```
    /// assert_eq!(vixDiskLib::Area { start: 0, sectors: 128 }.end(), 128);
    /// ```
    pub fn end(&self) -> u64 {
        self.start + self.sectors
    }

    pub(crate) fn from_runs(runs: Vec<(u64, u64)>) -> Vec<Area> {
        runs.into_iter()
            .map(|(start, sectors)| Area { start, sectors })
            .collect()
    }
}

/// What [`Disk::info`](super::Disk::info) reports.
///
/// ```
/// # use vixDiskLib::{Connection, CreateOptions, DiskKind, OpenOptions};
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("d.vmdk");
/// # let conn = Connection::local();
/// # conn.create(&path, &CreateOptions::new(DiskKind::MonolithicSparse, 4096), &mut |_| {})?;
/// let info = conn.open(&path, &Default::default())?.info();
/// assert_eq!((info.capacity, info.links), (4096, 1));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Info {
    /// Capacity in sectors.
    pub capacity: u64,
    /// Physical geometry.
    pub geometry: Geometry,
    /// BIOS geometry.
    pub bios_geometry: Geometry,
    /// Adapter type, if the descriptor names a known one.
    pub adapter: Option<Adapter>,
    /// Number of links open.
    pub links: usize,
    /// The leaf's parent hint (a redo log's parent file name).
    pub parent_hint: Option<String>,
    /// `ddb.uuid`.
    pub uuid: Option<String>,
}

impl From<crate::chain::DiskInfo> for Info {
    fn from(i: crate::chain::DiskInfo) -> Info {
        Info {
            capacity: i.capacity,
            geometry: i.geometry,
            bios_geometry: i.bios_geometry,
            adapter: i.adapter,
            links: i.num_links,
            parent_hint: i.parent_hint,
            uuid: i.uuid,
        }
    }
}
