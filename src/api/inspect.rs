//! Looking inside an open local chain: its links (files, content ids, parent hints, change
//! tracking) and which link holds each area (`vixdisk info` and `map` print these).

use std::path::PathBuf;

use crate::error::Result;
use crate::vmdk::descriptor::NO_PARENT_CID;
use crate::vmdk::extent::{ExtentStore, Mapping};
use crate::vmdk::link::Link;

/// Whether a link tracks changes.
///
/// ```
/// assert_ne!(vixDiskLib::Tracking::On, vixDiskLib::Tracking::Off);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tracking {
    /// Tracked, with a tracking file this library reads.
    On,
    /// Not tracked.
    Off,
    /// Tracked in a way this library does not read (VMware's `-ctk` files, version 3 sparse
    /// extents).
    Unsupported,
}

impl Tracking {
    /// `"on"`, `"off"` or `"unsupported"`.
    ///
    /// ```
    /// assert_eq!(vixDiskLib::Tracking::Unsupported.name(), "unsupported");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            Tracking::On => "on",
            Tracking::Off => "off",
            Tracking::Unsupported => "unsupported",
        }
    }
}

/// One link of an open chain, as [`Disk::links`](super::Disk::links) lists them (leaf first).
///
/// ```
/// # use vixDiskLib::{Connection, CreateOptions, DiskKind};
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("d.vmdk");
/// let conn = Connection::local();
/// conn.create(&path, &CreateOptions::new(DiskKind::MonolithicFlat, 2048), &mut |_| {})?;
/// let links = conn.open(&path, &Default::default())?.links()?;
/// assert_eq!(links[0].create_type, "monolithicFlat");
/// assert_eq!(links[0].files.len(), 2); // descriptor and flat extent
/// assert!(links[0].parent_cid.is_none());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct LinkInfo {
    /// The link's descriptor (or monolithic) file.
    pub path: PathBuf,
    /// The descriptor's `createType`.
    pub create_type: String,
    /// Content id.
    pub cid: u32,
    /// The parent's content id when this link was made, for a redo log.
    pub parent_cid: Option<u32>,
    /// The parent's file name hint, for a redo log.
    pub parent_hint: Option<String>,
    /// Every file of the link (descriptor, extents, tracking file).
    pub files: Vec<PathBuf>,
    /// Whether the link tracks changes.
    pub tracking: Tracking,
}

fn tracking(link: &Link) -> Tracking {
    if link.tracking_file().is_some() {
        return Tracking::On;
    }
    let tracked_extent = link.extents().iter().any(|e| match &e.store {
        ExtentStore::Sparse(sp) => sp.header().version == 3 && !sp.header().is_compressed(),
        _ => false,
    });
    let ctk_file = link
        .descriptor()
        .extra_header
        .iter()
        .any(|l| l.trim_start().starts_with("changeTrackPath"));
    if tracked_extent || ctk_file {
        Tracking::Unsupported
    } else {
        Tracking::Off
    }
}

pub(super) fn link_info(link: &Link) -> LinkInfo {
    let d = link.descriptor();
    let has_parent = d.parent_cid != NO_PARENT_CID && d.parent_hint.is_some();
    LinkInfo {
        path: link.path().to_path_buf(),
        create_type: d.create_type.clone(),
        cid: d.cid,
        parent_cid: has_parent.then_some(d.parent_cid),
        parent_hint: if has_parent { d.parent_hint } else { None },
        files: link.files(),
        tracking: tracking(link),
    }
}

/// What holds a run of sectors.
///
/// ```
/// let m = vixDiskLib::Mapped::Zero;
/// assert!(matches!(m, vixDiskLib::Mapped::Zero));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mapped {
    /// Data at byte `offset` of `file`.
    Data {
        /// The extent file.
        file: Option<PathBuf>,
        /// Byte offset in it.
        offset: u64,
    },
    /// Compressed data (a streamOptimized grain).
    Compressed,
    /// Zeros recorded as such.
    Zero,
    /// Nothing in any link: reads as zeros.
    Unallocated,
}

/// One run of [`Disk::map`](super::Disk::map): `sectors` sectors from `start`, held by the
/// link at `depth` (0 = leaf; for unallocated runs, the base's depth).
///
/// ```
/// # use vixDiskLib::{Connection, CreateOptions, DiskKind, Mapped};
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("d.vmdk");
/// let conn = Connection::local();
/// conn.create(&path, &CreateOptions::new(DiskKind::MonolithicSparse, 2048), &mut |_| {})?;
/// let disk = conn.open(&path, &Default::default())?;
/// disk.write(0, &[1; 512])?;
/// let runs = disk.map(0, 2048)?;
/// assert!(matches!(runs[0].mapped, Mapped::Data { .. }));
/// assert_eq!(runs.last().unwrap().mapped, Mapped::Unallocated);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapRun {
    /// First sector.
    pub start: u64,
    /// Length in sectors.
    pub sectors: u64,
    /// Index of the link in the chain (0 = leaf).
    pub depth: usize,
    /// The link's descriptor (or monolithic) file.
    pub link: PathBuf,
    /// What holds the run.
    pub mapped: Mapped,
}

/// Appends the runs of `[sector, sector + count)` as seen from `links[level]` downwards.
pub(super) fn walk(
    links: &[Link],
    level: usize,
    sector: u64,
    count: u64,
    out: &mut Vec<MapRun>,
) -> Result<()> {
    let link = &links[level];
    let end = sector + count;
    let mut s = sector;
    while s < end {
        let (m, n) = link.map(s, end - s)?;
        let mapped = match m {
            Mapping::Data { extent, offset } => Mapped::Data {
                file: link.extents()[extent].data_path().map(PathBuf::from),
                offset,
            },
            Mapping::Compressed { .. } => Mapped::Compressed,
            Mapping::Zero => Mapped::Zero,
            Mapping::Unallocated if level + 1 < links.len() => {
                walk(links, level + 1, s, n, out)?;
                s += n;
                continue;
            }
            Mapping::Unallocated => Mapped::Unallocated,
        };
        out.push(MapRun {
            start: s,
            sectors: n,
            depth: level,
            link: link.path().to_path_buf(),
            mapped,
        });
        s += n;
    }
    Ok(())
}
